"""What a checkpoint holds against what a run expects: leaf shapes, mismatches, errors.

Used by gan/train/checkpointing.py before any array is read (orbax metadata only).
"""

import jax
import numpy as np

from gan.train import integrity

MAX_LISTED = 10  # lines per kind of problem in an error message


class CheckpointMismatchError(ValueError):
  """The checkpoint was written by a run with a different architecture."""


class CorruptCheckpointError(RuntimeError):
  """A checkpoint's data is damaged: bad checksums, NaN/Inf, unreadable metadata."""


class NoRestorableCheckpointError(RuntimeError):
  """Checkpoints exist but none of them could be restored."""


class CheckpointNotWrittenError(RuntimeError):
  """A run ended (finished or preempted) without its final state on disk."""


def leaf_shapes(tree) -> dict[str, tuple]:
  """{'g_params/block0/conv1/kernel': shape, ...} of arrays or orbax ArrayMetadata."""
  leaves = jax.tree.leaves(tree)
  return {path: tuple(getattr(leaf, "shape", np.shape(leaf)))
          for path, leaf in zip(integrity.leaf_paths(tree), leaves)}


def listed(lines: list[str]) -> list[str]:
  """At most MAX_LISTED of ``lines``, then how many more there are."""
  extra = len(lines) - MAX_LISTED
  return lines[:MAX_LISTED] + ([f"... and {extra} more"] if extra > 0 else [])


def describe_mismatch(saved: dict[str, tuple], wanted: dict[str, tuple]) -> list[str]:
  """One line per differing leaf: shape mismatches, then missing, then unexpected paths."""
  shapes = [f"{p}: checkpoint {saved[p]} vs config {wanted[p]}"
            for p in sorted(saved.keys() & wanted.keys()) if saved[p] != wanted[p]]
  missing = [f"{p}: missing from the checkpoint" for p in sorted(wanted.keys() - saved.keys())]
  unexpected = [f"{p}: in the checkpoint but not in the config"
                for p in sorted(saved.keys() - wanted.keys())]
  return listed(shapes) + listed(missing) + listed(unexpected)
