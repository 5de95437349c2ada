"""Benchmark of the train step: python -m gan.bench --config=configs/quickstart.py.

Any registered family (by config.model.name). Prints compile time, the median
step time over --steps timed steps (after --warmup), images/s (real images
through D per second), XLA's estimated FLOPs per step and the achieved
FLOP/s. The batch comes from the family's own pipeline over synthetic data
(random uint8 images, uniform labels), so no dataset is needed.
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
_IMAGES_SHOWN = flags.DEFINE_integer(
    "images_shown", 0, "Time the step of the phase a run is in after this many images (ProGAN).")
_VARIANTS = flags.DEFINE_list(
    "variants", None, "Time only these step variants ('plain', and StyleGAN2's lazy "
    "regularisation steps 'pl', 'r1', 'pl+r1'); the default times every one the run takes.")
flags.mark_flags_as_required(["config"])


def benchmark(config, steps: int, warmup: int, images_shown: int = 0,
              only: list[str] | None = None) -> dict[str, float]:
  """Compiles and times the step of the phase at ``images_shown`` (ProGAN: pick a phase).

  ``only`` names the variants to time ('plain' for the step without lazy regularisers);
  the figures of a run's mix of variants ('step_s', ...) need every variant the run
  takes, and are None when one of those was left out.
  """
  import jax
  import numpy as np

  from gan.config.validate import validate
  from gan.data.pipeline import ArraySource
  from gan.families import registry
  from gan.train.sharding import host_to_global, jit_train_step, make_mesh, replicated

  family = registry.for_config(config)
  validate(config, family, jax.device_count(), jax.process_count())
  mesh = make_mesh()
  model = family.build(config)
  state = jax.jit(lambda: family.init_state(model, config), out_shardings=replicated(mesh))()
  phase = family.phase_at(config, 0, images_shown)
  rng = np.random.default_rng(0)
  res, count = config.model.resolution, max(phase.examples_per_step, 256)
  source = ArraySource(rng.integers(0, 256, (count, res, res, 3), dtype=np.uint8),
                       rng.integers(0, config.data.num_classes, count, dtype=np.int32))
  pipeline = family.make_pipeline(source, config, jax.process_index(), jax.process_count())
  spec = family.train_step(model, config, phase, mesh)
  batch = host_to_global(mesh, family.host_batch(config, pipeline, phase, 0, images_shown),
                         example_axis=spec.example_axis)
  extras = spec.extras(images_shown)
  available = ["", *sorted(spec.variants)]  # StyleGAN2's lazy-regularisation steps
  wanted = available if only is None else ["" if v == "plain" else v for v in only]
  unknown = sorted(set(wanted) - set(available))
  if unknown:
    raise ValueError(f"--variants: no step variant {unknown} in this config; it has "
                     f"{['plain' if v == '' else v for v in available]}")
  variants = {}
  for variant in [v for v in available if v in wanted]:
    step_fn = jit_train_step(spec.fn_of(variant), mesh, spec.example_axis, len(extras))
    start = time.perf_counter()
    compiled = step_fn.lower(state, batch, *extras, jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    times = []
    for i in range(warmup + steps):
      start = time.perf_counter()
      state, metrics = compiled(state, batch, *extras, jax.random.PRNGKey(i))
      jax.block_until_ready((state, metrics))
      if i >= warmup:
        times.append(time.perf_counter() - start)
    variants[variant] = {"compile_s": compile_s, "step_s": statistics.median(times),
                         "flops_per_step": flops}
  # Over a run, each variant runs as often as ``spec.variant`` picks it (1000 steps' mix).
  mix = [spec.variant(s) for s in range(1000)]
  result = {"compile_s": sum(v["compile_s"] for v in variants.values()), "phase": phase.label,
            "devices": jax.device_count(), "platform": jax.devices()[0].platform,
            "variants": variants, "examples_per_step": phase.examples_per_step,
            "step_s": None, "images_per_s": None, "flops_per_step": None, "flops_per_s": None}
  if all(v in variants for v in mix):
    step_s = statistics.fmean(variants[v]["step_s"] for v in mix)
    flops = statistics.fmean(variants[v]["flops_per_step"] for v in mix)
    result.update(step_s=step_s, images_per_s=phase.examples_per_step / step_s,
                  flops_per_step=flops, flops_per_s=flops / step_s)
  return result


def main(argv):
  del argv
  config = _CONFIG.value
  try:
    r = benchmark(config, _STEPS.value, _WARMUP.value, _IMAGES_SHOWN.value, _VARIANTS.value)
  except ValueError as e:
    raise SystemExit(f"gan.bench: {e}") from None
  m = config.model
  print(f"{m.name} {m.resolution}x{m.resolution}, phase {r['phase']}, on {r['devices']} "
        f"{r['platform']} device(s)")
  if len(r["variants"]) > 1 or r["step_s"] is None:
    for name, v in r["variants"].items():
      print(f"  step {name or 'plain':<14} {v['step_s'] * 1e3:.1f} ms (median of {_STEPS.value}), "
            f"{r['examples_per_step'] / v['step_s']:.2f} images/s, "
            f"{v['flops_per_step'] / 1e9:.2f} GFLOP, "
            f"{v['flops_per_step'] / v['step_s'] / 1e9:.1f} GFLOP/s, "
            f"compiled in {v['compile_s']:.1f} s")
  if r["step_s"] is None:
    print("  (a run's average needs every variant it takes: leave out --variants for it)")
    return
  if len(r["variants"]) > 1:
    print("  (the figures below average the variants as often as a run takes them)")
  print(f"  compile time        {r['compile_s']:.1f} s")
  print(f"  step time (median)  {r['step_s'] * 1e3:.1f} ms over {_STEPS.value} steps")
  print(f"  images/s            {r['images_per_s']:.1f}")
  print(f"  XLA FLOPs per step  {r['flops_per_step'] / 1e9:.2f} GFLOP")
  print(f"  achieved            {r['flops_per_s'] / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
  app.run(main)
