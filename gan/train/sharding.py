"""Device mesh and shardings for data-parallel training.

One mesh axis, ``data``, spans every device of every process. Batches are
sharded along their example axis; the train state is replicated (for now).
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, example_axis: int = 0) -> NamedSharding:
  """Shards axis ``example_axis`` over the data axis, the others replicated."""
  return NamedSharding(mesh, P(*([None] * example_axis), DATA_AXIS))


def host_to_global(mesh: Mesh, local_batch, example_axis: int):
  """Host-local numpy arrays -> one globally sharded jax.Array per leaf.

  Each process passes its own share of the examples (along ``example_axis``);
  the result's global shape is the concatenation over processes.
  """
  sharding = batch_sharding(mesh, example_axis)

  def to_global(x):
    global_shape = list(x.shape)
    global_shape[example_axis] *= jax.process_count()
    return jax.make_array_from_process_local_data(sharding, x, tuple(global_shape))

  return jax.tree.map(to_global, local_batch)


def jit_train_step(fn, mesh: Mesh, example_axis: int, num_extras: int = 0):
  """jit of ``fn(state, batch, *extras, rng) -> (state, metrics)`` with explicit shardings.

  The state is replicated and donated, every leaf of the batch is split along
  ``example_axis`` over the data axis, extras, rng and metrics are replicated.
  """
  everywhere = replicated(mesh)
  return jax.jit(fn, in_shardings=(everywhere, batch_sharding(mesh, example_axis),
                                   *([everywhere] * num_extras), everywhere),
                 out_shardings=(everywhere, everywhere), donate_argnums=(0,))
