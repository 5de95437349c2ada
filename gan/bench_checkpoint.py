"""What checkpoint checksums cost: python -m gan.bench_checkpoint --config=configs/biggan128.py.

Builds the config's full train state (params, EMA, statistics, both Adam
states) with random values, without running a step, and times on this
machine: computing the checksum record (gan/train/integrity.py), a
checksummed save until it is on disk, a verified restore, and the same save
and restore with plain orbax. Medians of --repeats, after one untimed round
(which includes compiling the checksum function).
"""

import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/*.py file.",
                                          lock_config=True)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed rounds (the median is reported).")
_DIR = flags.DEFINE_string("dir", None, "Where to write the checkpoints (default: a temp dir).")
flags.mark_flags_as_required(["config"])


def _median_seconds(fn, repeats: int) -> float:
  fn()  # untimed: compiles, warms caches
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def random_state(config):
  """The config's state shapes, filled with random normals (int leaves with zeros)."""
  import jax
  import jax.numpy as jnp
  from gan.families import registry

  family = registry.for_config(config)
  model = family.build(config)
  shapes = jax.eval_shape(lambda: family.init_state(model, config))
  keys = iter(jax.random.split(jax.random.PRNGKey(0), len(jax.tree.leaves(shapes))))
  def fill(leaf):
    key = next(keys)
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      return jax.random.normal(key, leaf.shape, leaf.dtype)
    return jnp.zeros(leaf.shape, leaf.dtype)
  return jax.tree.map(fill, shapes)


def main(argv):
  del argv
  import jax
  import orbax.checkpoint as ocp

  from gan.train import integrity
  from gan.train.checkpointing import Checkpointer

  state = random_state(_CONFIG.value)
  size = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
  root = _DIR.value or tempfile.mkdtemp(prefix="gan-ckpt-bench-")
  repeats = _REPEATS.value
  record = _median_seconds(lambda: integrity.record(state), repeats)

  ours = Checkpointer(os.path.join(root, "ours"), keep=1)
  plain = ocp.CheckpointManager(os.path.join(root, "plain", "checkpoints"),
                                item_handlers=ocp.StandardCheckpointHandler(),
                                options=ocp.CheckpointManagerOptions(max_to_keep=1))
  steps = iter(range(1, 1000))
  def save_ours():
    ours.save(next(steps), state)
    ours.wait()
  def save_plain():
    plain.save(next(steps), args=ocp.args.StandardSave(state))
    plain.wait_until_finished()
  save_ours_s, save_plain_s = _median_seconds(save_ours, repeats), _median_seconds(save_plain,
                                                                                   repeats)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                          state)
  restore_ours = _median_seconds(lambda: ours.restore(ours.latest_step(), state), repeats)
  restore_plain = _median_seconds(lambda: plain.restore(
      plain.latest_step(), args=ocp.args.StandardRestore(abstract)), repeats)
  print(f"state: {len(jax.tree.leaves(state))} leaves, {size / 2**20:.1f} MiB on "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s)")
  print(f"checksum record: {record * 1e3:.0f} ms ({size / 2**30 / record:.2f} GiB/s)")
  print(f"save until on disk: {save_ours_s * 1e3:.0f} ms checksummed, {save_plain_s * 1e3:.0f} ms "
        "plain orbax")
  print(f"restore: {restore_ours * 1e3:.0f} ms verified, {restore_plain * 1e3:.0f} ms plain orbax")


if __name__ == "__main__":
  app.run(main)
