"""Child process: evaluates one tiny BigGAN state on meshes of 1 and of all devices.

  python tests/eval_worker.py OUT.npz STATS_DIR

Writes, for each mesh size, the figures, the reference statistics (shapes10
features' mean and covariance) and the first SWD descriptors of the reals, so
the parent test can compare a sharded evaluation with an unsharded one.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

from conftest import tiny_config  # noqa: E402
from gan.evaluation.protocol import Evaluator  # noqa: E402
from gan.families import registry  # noqa: E402
from gan.train.sharding import DATA_AXIS, replicated  # noqa: E402

METRICS = "swd,shapes10_fid,class_accuracy"


def eval_config(stats_dir: str):
  c = tiny_config()
  c.eval.metrics = METRICS
  c.eval.num_samples = 40    # not a multiple of the batch: the last batch is padded
  c.eval.batch_size = 16
  c.eval.stats_dir = stats_dir
  c.data.num_examples = 56   # reference images: also a padded last batch
  return c


def evaluate(num_devices: int, stats_dir: str) -> dict:
  config = eval_config(stats_dir)
  mesh = Mesh(np.asarray(jax.devices()[:num_devices]), (DATA_AXIS,))
  family = registry.get("biggan")
  model = family.build(config)
  state = jax.jit(lambda: family.init_state(model, config), out_shardings=replicated(mesh))()
  evaluator = Evaluator(config, mesh, verbose=False)
  result = evaluator.evaluate(family.eval_generator(model, config, state, 0, None))
  reference = evaluator.reference()
  stats = reference.stats["shapes10"]
  return {f"{num_devices}_figures": np.array(json.dumps(result.figures)),
          f"{num_devices}_mean": stats.mean(), f"{num_devices}_cov": stats.cov(),
          f"{num_devices}_swd_real": reference.swd_descriptors()[0][:2000],
          f"{num_devices}_count": np.int64(stats.count)}


def main(out: str, stats_dir: str) -> None:
  arrays = {}
  for n in sorted({1, jax.device_count()}):
    arrays.update(evaluate(n, os.path.join(stats_dir, str(n))))
  np.savez(out, device_count=jax.device_count(), **arrays)


if __name__ == "__main__":
  main(*sys.argv[1:])
