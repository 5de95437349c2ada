"""Child process for test_checkpointing.py: one save/restore on this process's device count.

usage: checkpoint_worker.py {save,reshard,check} WORKDIR
  save:    saves step 1 of state(0) (run with 8 devices).
  reshard: restores step 1 into this process's shardings, saves step 2 of state(1).
  check:   restores step 2 and checks it equals state(1).
"""

import sys

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan.train.checkpointing import Checkpointer


def host_state(offset: int) -> dict:
  return {"table": np.arange(32, dtype=np.float32).reshape(8, 4) + offset,
          "scale": np.float32(0.5 + offset)}


def device_state(offset: int) -> dict:
  """host_state(offset): table sharded by rows over all devices, scale replicated."""
  mesh = Mesh(np.array(jax.devices()), ("data",))
  values = host_state(offset)
  return {"table": jax.device_put(values["table"], NamedSharding(mesh, PartitionSpec("data"))),
          "scale": jax.device_put(values["scale"], NamedSharding(mesh, PartitionSpec()))}


def check_restored(restored: dict, target: dict, offset: int) -> None:
  for name, want in host_state(offset).items():
    got = restored[name]
    np.testing.assert_array_equal(np.asarray(got), want, err_msg=name)
    assert got.dtype == want.dtype, (name, got.dtype)
    assert got.sharding == target[name].sharding, (name, got.sharding)
  rows = [shard.data.shape[0] for shard in restored["table"].addressable_shards]
  assert rows == [8 // jax.device_count()] * jax.device_count(), rows


def main(mode: str, workdir: str) -> None:
  checkpointer = Checkpointer(workdir, keep=3)
  if mode == "save":
    assert checkpointer.save(1, device_state(0))
  else:
    target = device_state(100)  # Other values, this process's shardings.
    restored, step = checkpointer.restore_latest(target)
    assert step == (1 if mode == "reshard" else 2), step
    check_restored(restored, target, 0 if mode == "reshard" else 1)
    if mode == "reshard":
      modified = jax.tree.map(lambda x: x + 1, restored)
      assert checkpointer.save(2, modified)
  assert checkpointer.close()
  print(f"{mode} on {jax.device_count()} devices: OK")


if __name__ == "__main__":
  main(*sys.argv[1:])
