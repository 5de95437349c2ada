"""One of several processes reading the fake ImageNet through the real pipeline.

  python tests/data_worker.py COORDINATOR NUM_PROCESSES PROCESS_ID DATA_DIR OUT_DIR

Each process builds its share of steps 0..2 with ``gan.data.pipeline``,
assembles the global batch with ``host_to_global`` over its local devices,
gathers it back, and saves (npz) the example indices it read itself and the
gathered global images and labels.
"""

import sys

import jax
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from conftest import tiny_config  # noqa: E402
from gan.families.biggan.family import make_pipeline as create_pipeline  # noqa: E402
from gan.train.sharding import host_to_global, make_mesh  # noqa: E402

STEPS = 3


def main(coordinator, num_processes, process_id, data_dir, out_dir):
  jax.distributed.initialize(coordinator, int(num_processes), int(process_id))
  from jax.experimental import multihost_utils

  config = tiny_config(batch_size=8, d_steps=2)
  config.data.name, config.data.data_dir, config.data.num_classes = "imagenet2012", data_dir, 1000
  config.model.resolution = 16
  pipeline = create_pipeline(config, jax.process_index(), jax.process_count())
  read = []
  source_read = pipeline.source.read
  pipeline.source.read = lambda indices: (read.append(np.array(indices)), source_read(indices))[1]

  mesh = make_mesh()
  gathered = {"image": [], "label": []}
  for step in range(STEPS):
    batch = host_to_global(mesh, pipeline.batch(step), example_axis=2)
    assert len(batch["image"].addressable_shards) == jax.local_device_count()
    for key in gathered:
      gathered[key].append(multihost_utils.process_allgather(batch[key], tiled=True))
  np.savez(f"{out_dir}/process{jax.process_index()}.npz", read=np.concatenate(read),
           image=np.stack(gathered["image"]), label=np.stack(gathered["label"]))


if __name__ == "__main__":
  main(*sys.argv[1:])
