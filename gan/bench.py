"""Benchmark of the train step: python -m gan.bench --config=configs/quickstart.py.

Prints compile time, the median step time over --steps timed steps (after
--warmup), images/s (real images through D per second: d_steps x batch_size
per step), XLA's estimated FLOPs per step and the achieved FLOP/s. The batch
is synthetic (random uint8 images, uniform labels), so no dataset is needed;
the config's data settings are ignored.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/*.py file.",
                                          lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps (the median is reported).")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps after compiling.")
flags.mark_flags_as_required(["config"])


def benchmark(config, steps: int, warmup: int) -> dict[str, float]:
  import jax
  import numpy as np

  from gan.config import validate
  from gan.train.biggan_step import jit_train_step, make_train_step
  from gan.train.sharding import host_to_global, make_mesh, replicated
  from gan.train.state import build_gan, init_state

  validate(config, jax.device_count(), jax.process_count())
  t = config.train
  mesh = make_mesh()
  gan = build_gan(config)
  state = jax.jit(lambda: init_state(gan, config.seed), out_shardings=replicated(mesh))()
  layout = (t.d_steps, t.grad_accum_steps, t.batch_size // t.grad_accum_steps // jax.process_count())
  rng = np.random.default_rng(0)
  res = config.model.resolution
  batch = host_to_global(mesh, {
      "image": rng.integers(0, 256, layout + (res, res, 3), dtype=np.uint8),
      "label": rng.integers(0, config.data.num_classes, layout, dtype=np.int32)}, example_axis=2)
  step_fn = jit_train_step(make_train_step(gan, config, mesh), mesh)

  start = time.perf_counter()
  compiled = step_fn.lower(state, batch, jax.random.PRNGKey(0)).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", float("nan"))) if cost else float("nan")

  times = []
  for i in range(warmup + steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch, jax.random.PRNGKey(i))
    jax.block_until_ready((state, metrics))
    if i >= warmup:
      times.append(time.perf_counter() - start)
  step_s = statistics.median(times)
  return {"compile_s": compile_s, "step_s": step_s,
          "images_per_s": t.d_steps * t.batch_size / step_s, "flops_per_step": flops,
          "flops_per_s": flops / step_s, "devices": jax.device_count(),
          "platform": jax.devices()[0].platform}


def main(argv):
  del argv
  config = _CONFIG.value
  r = benchmark(config, _STEPS.value, _WARMUP.value)
  m, t = config.model, config.train
  print(f"BigGAN {m.resolution}x{m.resolution} ch={m.ch} batch={t.batch_size} "
        f"(d_steps={t.d_steps}, grad_accum={t.grad_accum_steps}) dtype={m.compute_dtype} "
        f"on {r['devices']} {r['platform']} device(s)")
  print(f"  compile time        {r['compile_s']:.1f} s")
  print(f"  step time (median)  {r['step_s'] * 1e3:.1f} ms over {_STEPS.value} steps")
  print(f"  images/s            {r['images_per_s']:.1f}")
  print(f"  XLA FLOPs per step  {r['flops_per_step'] / 1e9:.2f} GFLOP")
  print(f"  achieved            {r['flops_per_s'] / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
  app.run(main)
