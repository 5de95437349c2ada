"""Orbax checkpoints of the whole TrainState under ``<workdir>/checkpoints``.

Each checkpoint holds params, EMA, BN/SN statistics, optimiser states, step
and RNG. Only complete checkpoints are visible to ``latest_step`` (orbax
writes into a temporary directory and renames it when finished). Restoring
reads arrays only (no pickled code) into the shardings of a target state.
"""

import jax
import orbax.checkpoint as ocp
from etils import epath


class Checkpointer:
  def __init__(self, workdir: str, keep: int):
    # epath keeps gs:// and other remote paths intact (os.path.abspath would not).
    self.directory = epath.Path(workdir).resolve() / "checkpoints"
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, step: int, target):
    """Restores ``step`` with the structure, dtypes and shardings of ``target``."""
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
