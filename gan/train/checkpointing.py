"""Orbax checkpoints of the whole TrainState under ``<workdir>/checkpoints``.

Each checkpoint holds params, EMA, BN/SN statistics, optimiser states, step
and RNG. Guarantees:

* Asynchronous: ``save`` returns once the arrays are copied off the devices;
  a background thread writes the files (orbax's
  ``enable_async_checkpointing=True``). The next ``save``, ``wait`` or
  ``close`` waits for it.
* Atomic: orbax writes ``<step>.orbax-checkpoint-tmp`` and renames it to
  ``<step>`` only when it is complete, so a half-written checkpoint (crash,
  preemption) is never listed by ``latest_step`` or restored.
* Save policy: ``should_save(step)`` is true every ``every_steps`` steps or once
  ``every_seconds`` have passed since the last save (pure Python, no device
  sync).
* Retention: the last ``keep`` checkpoints plus, with ``best_metric``, the best
  one by that metric among the checkpoints saved with it.
* Corruption fallback: ``restore_latest`` logs a WARNING for a checkpoint that
  fails to restore (truncated or missing files) and tries the next older one.
* Incompatibility refusal: a checkpoint whose tree or leaf shapes differ from
  the target raises ``CheckpointMismatchError`` before any array is read, and
  never falls back: it is a different architecture, not corruption.
* Re-sharding: arrays are restored into the target's shardings, whatever the
  device count they were saved from.
* No code execution on load: restoring reads JSON metadata and tensorstore
  array data only; nothing in the directory is unpickled or imported.
* Failed saves (disk full, unwritable directory) never raise into the training
  loop: ``save`` logs an ERROR, counts ``failed_saves`` and returns False.
  Earlier checkpoints stay intact (orbax deletes old steps only after a new one
  is finalised).
"""

import math
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from orbax.checkpoint import checkpoint_managers as policies

# Orbax and tensorstore report write failures as OSError, or wrapped in these.
_SAVE_ERRORS = (OSError, ValueError, RuntimeError)
_MAX_LISTED = 10


class CheckpointMismatchError(ValueError):
  """The checkpoint was written by a run with a different architecture."""


class NoRestorableCheckpointError(RuntimeError):
  """Checkpoints exist but none of them could be restored."""


class CheckpointNotWrittenError(RuntimeError):
  """A run ended (finished or preempted) without its final state on disk."""


def _key_name(key) -> str:
  for attr in ("name", "key", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def leaf_shapes(tree) -> dict[str, tuple]:
  """{'g_params/block0/conv1/kernel': shape, ...} of arrays or orbax ArrayMetadata."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {"/".join(_key_name(k) for k in path): tuple(getattr(leaf, "shape", np.shape(leaf)))
          for path, leaf in leaves}


def _listed(lines: list[str]) -> list[str]:
  extra = len(lines) - _MAX_LISTED
  return lines[:_MAX_LISTED] + ([f"... and {extra} more"] if extra > 0 else [])


def describe_mismatch(saved: dict[str, tuple], wanted: dict[str, tuple]) -> list[str]:
  """One line per differing leaf: shape mismatches, then missing, then unexpected paths."""
  shapes = [f"{p}: checkpoint {saved[p]} vs config {wanted[p]}"
            for p in sorted(saved.keys() & wanted.keys()) if saved[p] != wanted[p]]
  missing = [f"{p}: missing from the checkpoint" for p in sorted(wanted.keys() - saved.keys())]
  unexpected = [f"{p}: in the checkpoint but not in the config"
                for p in sorted(saved.keys() - wanted.keys())]
  return _listed(shapes) + _listed(missing) + _listed(unexpected)


class Checkpointer:
  """Saves and restores a state pytree under ``<workdir>/checkpoints``; see the module docstring."""

  def __init__(self, workdir: str, keep: int, *, every_steps: int | None = None,
               every_seconds: float | None = None, best_metric: str | None = None,
               best_mode: str = "min"):
    if best_mode not in ("min", "max"):
      raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
    # epath keeps gs:// and other remote paths intact (os.path.abspath would not).
    self.directory = epath.Path(workdir).resolve() / "checkpoints"
    self.every_steps, self.every_seconds = every_steps, every_seconds
    self.best_metric = best_metric
    self.failed_saves = 0
    retention = [policies.LatestN(n=keep)]
    best_fn = None
    if best_metric is not None:
      worst = math.inf if best_mode == "min" else -math.inf
      best_fn = lambda metrics: float(metrics.get(best_metric, worst))
      # BestN sorts ascending and keeps the tail: reverse for 'min'.
      retention.append(policies.BestN(get_metric_fn=best_fn, reverse=best_mode == "min", n=1,
                                      keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        create=True,
        enable_async_checkpointing=True,
        # Directories are created before save() returns, so an unwritable or full disk
        # fails there. Created in the background, a failure left orbax threads waiting
        # forever for a "directory created" signal, and the process never exited.
        async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
        preservation_policy=policies.AnyPreservationPolicy(retention),
        best_fn=best_fn,  # Also makes orbax write metrics and re-read them on restart.
        best_mode=best_mode)
    # Registering the handler lets a fresh manager read item metadata before any save.
    self.manager = ocp.CheckpointManager(
        self.directory, item_handlers=ocp.StandardCheckpointHandler(), options=options)
    self._pending_step = None
    self._unrestorable_steps = set()
    self._last_saved_step = self.manager.latest_step()
    self._last_save_time = time.monotonic()

  def step_directory(self, step: int) -> epath.Path:
    return self.directory / str(step)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def best_step(self) -> int | None:
    """The best step by ``best_metric`` (None if none has it); the latest without best_metric."""
    return self.manager.best_step()

  def should_save(self, step: int) -> bool:
    """True every ``every_steps`` steps or once ``every_seconds`` have passed since the last save."""
    if self._last_saved_step is not None and step <= self._last_saved_step:
      return False
    if self.every_steps and step % self.every_steps == 0:
      return True
    return (self.every_seconds is not None
            and time.monotonic() - self._last_save_time >= self.every_seconds)

  def save(self, step: int, state, metrics: dict | None = None) -> bool:
    """Starts writing ``state`` in the background; False (ERROR logged) if it failed.

    ``metrics[best_metric]`` (if present and finite) ranks the checkpoint for
    keep-best. A failure of the background write of the previous save is
    reported here (or by ``wait`` / ``close``).
    """
    self._last_save_time = time.monotonic()
    self.wait()
    try:
      if step in self._unrestorable_steps:  # A corrupt checkpoint is replaced, not kept.
        self.manager.delete(step)
        self._unrestorable_steps.discard(step)
      if step in self.manager.all_steps():
        logging.info("Checkpoint %d already exists in %s; not saving it again.", step, self.directory)
        return False
      self.manager.save(step, args=ocp.args.StandardSave(state),
                        metrics=self._ranking_metrics(metrics), force=True)
    except _SAVE_ERRORS as error:
      self._report_failed_save(step, error)
      return False
    self._pending_step = self._last_saved_step = step
    return True

  def wait(self) -> bool:
    """Blocks until the pending background save is on disk; False (ERROR logged) if it failed."""
    step, self._pending_step = self._pending_step, None
    try:
      self.manager.wait_until_finished()
    except _SAVE_ERRORS as error:
      self._report_failed_save(step, error)
      return False
    return True

  def restore(self, step: int, target):
    """Restores ``step`` with the structure, dtypes and shardings of ``target``.

    Raises CheckpointMismatchError if the stored tree or shapes differ from ``target``.
    """
    self.check_compatible(step, target)
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def restore_latest(self, target):
    """(state, step) of the newest checkpoint that restores, or (None, None) if there is none.

    A checkpoint that fails to restore is skipped with a WARNING; a
    CheckpointMismatchError is raised at once. Raises NoRestorableCheckpointError
    if checkpoints exist but none restores.
    """
    failures = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        return self.restore(step, target), step
      except CheckpointMismatchError:
        raise
      except Exception as error:  # Corrupt, truncated or missing files. pylint: disable=broad-except
        logging.warning("Checkpoint step %d in %s could not be restored (%s: %s); trying the "
                        "previous one.", step, self.step_directory(step), type(error).__name__, error)
        failures.append(f"step {step} ({self.step_directory(step)}): {type(error).__name__}: {error}")
        self._unrestorable_steps.add(step)
    if failures:
      raise NoRestorableCheckpointError(
          f"No checkpoint in {self.directory} could be restored:\n  " + "\n  ".join(failures))
    return None, None

  def check_compatible(self, step: int, target) -> None:
    """Raises CheckpointMismatchError if ``step``'s stored tree or shapes differ from ``target``'s."""
    metadata = self.manager.item_metadata(step)  # Reads JSON metadata only, no arrays.
    if metadata is None or getattr(metadata, "tree", None) is None:
      raise FileNotFoundError(f"no tree metadata in {self.step_directory(step)}")
    problems = describe_mismatch(leaf_shapes(metadata.tree), leaf_shapes(target))
    if problems:
      raise CheckpointMismatchError(
          f"Checkpoint step {step} in {self.step_directory(step)} does not match the model:\n  "
          + "\n  ".join(problems)
          + "\nThis workdir holds a run with a different architecture; use a new --workdir "
          "or the matching config.")

  def finish(self, step: int) -> None:
    """Waits for the pending save and closes; raises unless checkpoint ``step`` is on disk.

    The end of a run (finished, stopped by a signal) must not look successful
    when its last state could not be written (disk full, unwritable directory).
    """
    self.close()
    latest = self.manager.latest_step()
    if latest is None or latest < step:
      raise CheckpointNotWrittenError(
          f"The checkpoint of step {step} could not be written to {self.directory} "
          f"({self.failed_saves} failed saves, see the ERROR lines above); the latest on disk "
          f"is {latest if latest is not None else '(none)'}. Free space or fix the permissions, "
          "then run the same command again: it resumes from there.")

  def close(self) -> bool:
    """Waits for the pending save (False if it failed) and releases orbax's resources."""
    written = self.wait()
    self.manager.close()
    return written

  def _ranking_metrics(self, metrics: dict | None) -> dict | None:
    if self.best_metric is None or not metrics or self.best_metric not in metrics:
      return None
    value = float(metrics[self.best_metric])
    return {self.best_metric: value} if math.isfinite(value) else None

  def _report_failed_save(self, step: int | None, error: BaseException) -> None:
    self.failed_saves += 1
    try:
      self.manager.reload()  # Forget the failed step; the older ones are still on disk.
    except OSError:
      pass
    previous = self.manager.latest_step()
    logging.error("Checkpoint step %s in %s: checkpoint not written (%s: %s); the previous "
                  "checkpoint %s is intact; training continues (%d failed saves).",
                  step, self.directory, type(error).__name__, error,
                  "(none)" if previous is None else previous, self.failed_saves)
