"""Orbax checkpoints of the whole TrainState under ``<workdir>/checkpoints``.

Each checkpoint holds params, EMA, BN/SN statistics, optimiser states, step
and RNG. Guarantees:

* Asynchronous: ``save`` returns once the arrays are copied off the devices;
  a background thread writes the files (orbax's
  ``enable_async_checkpointing=True``). The next ``save``, ``wait`` or
  ``close`` waits for it.
* Atomic: orbax writes ``<step>.orbax-checkpoint-tmp`` and renames it to
  ``<step>`` only when it is complete, so a half-written checkpoint (crash,
  preemption) is never listed by ``latest_step`` or restored. Leftover
  temporary folders are removed (at start-up, and after a failed save).
* Checksummed: with the arrays, a checkpoint commits (in the same atomic
  rename) a record of every leaf's dtype, shape and 64-bit checksum
  (gan/train/integrity.py). A restore recomputes the checksums of what it
  read: a flipped bit or byte in the stored data, or a NaN/Inf in a restored
  value, makes the checkpoint corrupt (``CorruptCheckpointError``).
* Save policy: ``should_save(step)`` is true every ``every_steps`` steps or once
  ``every_seconds`` have passed since the last save (pure Python, no device
  sync). After a restore it counts from the restored step.
* Retention: the last ``keep`` checkpoints plus, with ``best_metric``, the best
  one by that metric among the checkpoints saved with it.
* Corruption fallback: ``restore_latest`` logs a WARNING naming the step, its
  directory and what is wrong with a checkpoint that fails to restore (bad
  checksum, NaN/Inf, truncated or missing files, a stray folder), moves it to
  ``checkpoints/corrupt/`` (so it never counts among the kept ones and is not
  deleted) and tries the next older one. With several processes the verdict is
  the same on all: the checksums are global sums, and a damaged file fails every
  process that reads it (each reads every replicated array). A file that only
  some processes read (sharded state) would leave the others waiting in orbax's
  restore barrier: not handled yet.
* Incompatibility refusal: a checkpoint whose tree or leaf shapes differ from
  the target raises ``CheckpointMismatchError`` before any array is read, and
  never falls back: it is a different architecture, not corruption. (Metadata
  that disagrees with the checkpoint's own checksum record is corruption.)
* Layout upgrades: a checkpoint written before a family changed the shape of
  some state (``Family.checkpoint_upgrades``: e.g. BigGAN's projection-embedding u moving to class
  space) restores into the old layout, verified against its own checksums, and
  is converted; the run continues and a WARNING says what was converted.
* Re-sharding: arrays are restored into the target's shardings, whatever the
  device count they were saved from.
* No code execution on load: restoring reads JSON metadata and tensorstore
  array data only; nothing in the directory is unpickled or imported.
* Failed saves (disk full, unwritable directory) never raise into the training
  loop: ``save`` logs one ERROR line, counts ``failed_saves`` and returns False.
  Earlier checkpoints stay intact (orbax deletes old steps only after a new one
  is finalised).
"""

import errno
import json
import math
import os
import time
from typing import Sequence

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from orbax.checkpoint import checkpoint_managers as policies

from gan.train import integrity
# The error types are part of this module's interface (gan.main, gan.evaluate, tests).
from gan.train.checkpoint_layout import (CheckpointMismatchError,  # noqa: F401
                                         CheckpointNotWrittenError, CorruptCheckpointError,
                                         NoRestorableCheckpointError, describe_mismatch,
                                         leaf_shapes, listed)

# Orbax and tensorstore report write failures as OSError, or wrapped in these.
_SAVE_ERRORS = (OSError, ValueError, RuntimeError)
CORRUPT_DIR = "corrupt"  # under checkpoints/: damaged checkpoints, set aside
_INTEGRITY_KEY = "gan_integrity"  # in orbax's per-step custom metadata,
_STEP_METADATA_FILE = "_CHECKPOINT_METADATA"  # which orbax writes into every step folder


def _save_error_reason(error: BaseException) -> str:
  """'No space left on device (ENOSPC)' for the usual causes, else the error's first line.

  Tensorstore reports them as ValueError('RESOURCE_EXHAUSTED: ...[os_error_code='28']').
  """
  text = str(error)
  for code in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
    if getattr(error, "errno", None) == code or f"os_error_code='{code}'" in text:
      return f"{os.strerror(code)} ({errno.errorcode[code]})"
  return f"{type(error).__name__}: {(text.splitlines() or [''])[0][:300]}"


class Checkpointer:
  """Saves and restores a state pytree under ``<workdir>/checkpoints``; see the module docstring."""

  def __init__(self, workdir: str, keep: int, *, every_steps: int | None = None,
               every_seconds: float | None = None, best_metric: str | None = None,
               best_mode: str = "min", read_only: bool = False,
               upgrades: Sequence = ()):
    """``read_only``: only restore (gan.evaluate beside a live run): nothing is created,
    cleaned up or deleted. ``upgrades``: older state layouts this run can convert
    (gan.families.interface.Upgrade, from ``Family.checkpoint_upgrades``)."""
    self.upgrades = tuple(upgrades)
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
        create=not read_only,
        read_only=read_only,
        enable_async_checkpointing=True,
        # Directories are created before save() returns, so an unwritable or full disk
        # fails there. Created in the background, a failure left orbax threads waiting
        # forever for a "directory created" signal, and the process never exited.
        async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
        cleanup_tmp_directories=not read_only,  # what a killed or failed save left behind
        preservation_policy=policies.AnyPreservationPolicy(retention),
        best_fn=best_fn,  # Also makes orbax write metrics and re-read them on restart.
        best_mode=best_mode)
    # Registering the handler lets a fresh manager read item metadata before any save.
    self.manager = ocp.CheckpointManager(
        self.directory, item_handlers=ocp.StandardCheckpointHandler(), options=options)
    self._pending_step = None
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
      if step in self.manager.all_steps():
        logging.info("Checkpoint %d already exists in %s; not saving it again.", step, self.directory)
        return False
      self.manager.save(step, args=ocp.args.StandardSave(state),
                        metrics=self._ranking_metrics(metrics), force=True,
                        custom_metadata={_INTEGRITY_KEY: integrity.record(state)})
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
    """Restores ``step`` with the structure, dtypes and shardings of ``target``, verified.

    Raises CheckpointMismatchError if the stored tree or shapes differ from
    ``target``, CorruptCheckpointError if what was read does not match the
    checksums stored with it or holds NaN/Inf.
    """
    stored = self._integrity_record(step)
    try:
      self.check_compatible(step, target, stored)
    except CheckpointMismatchError:
      upgrade, old_target = self._matching_upgrade(step, target, stored)
      if upgrade is None:
        raise
      restored = upgrade.convert(self._read_verified(step, old_target, stored))
      logging.warning("Checkpoint step %d in %s has the layout from before %s; converted on "
                      "restore (%s). It is saved in the new layout from the next checkpoint on.",
                      step, self.step_directory(step), upgrade.change, upgrade.conversion)
      return restored
    return self._read_verified(step, target, stored)

  def _matching_upgrade(self, step: int, target, stored):
    """(upgrade, old target) for the first upgrade whose old layout the checkpoint has."""
    for upgrade in self.upgrades:
      old_target = upgrade.old_target(target)
      if old_target is None:
        continue
      try:
        self.check_compatible(step, old_target, stored)
      except CheckpointMismatchError:
        continue
      return upgrade, old_target
    return None, None

  def _read_verified(self, step: int, target, stored):
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
    restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
    problems = integrity.problems(restored, stored)  # the same on every process: global sums
    if problems:
      raise CorruptCheckpointError(
          f"{len(problems)} array(s) damaged: " + "; ".join(listed(problems)))
    if stored is None:
      logging.warning("Checkpoint step %d in %s has no checksum record (written by an older "
                      "version): only checked for NaN/Inf.", step, self.step_directory(step))
    return restored

  def restore_latest(self, target):
    """(state, step) of the newest checkpoint that restores, or (None, None) if there is none.

    A checkpoint that fails to restore is reported with a WARNING, moved to
    ``checkpoints/corrupt/`` and skipped; a CheckpointMismatchError is raised
    at once. Raises NoRestorableCheckpointError if checkpoints exist but none
    restores. The save cadence continues from the restored step.
    """
    failures = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        state = self.restore(step, target)
      except CheckpointMismatchError:
        raise
      except Exception as error:  # pylint: disable=broad-except
        reason = f"{type(error).__name__}: {error}"
        failures.append(f"step {step} ({self.step_directory(step)}): {reason}")
        self._set_aside(step, reason)
        continue
      self._last_saved_step = step
      return state, step
    if failures:
      raise NoRestorableCheckpointError(
          f"No checkpoint in {self.directory} could be restored (each was moved to "
          f"{self.directory / CORRUPT_DIR}):\n  " + "\n  ".join(failures))
    self._last_saved_step = None
    return None, None

  def check_compatible(self, step: int, target, stored: dict | None = None) -> None:
    """Raises CheckpointMismatchError if ``step``'s stored tree or shapes differ from ``target``'s.

    ``stored`` is the step's checksum record: orbax metadata that disagrees
    with it is damaged (CorruptCheckpointError), not another architecture.
    """
    metadata = self.manager.item_metadata(step)  # Reads JSON metadata only, no arrays.
    if metadata is None or getattr(metadata, "tree", None) is None:
      raise FileNotFoundError(f"no tree metadata in {self.step_directory(step)}")
    saved, wanted = leaf_shapes(metadata.tree), leaf_shapes(target)
    recorded = integrity.recorded_shapes(stored)
    if recorded is not None and recorded != saved:
      raise CorruptCheckpointError(
          "its array metadata disagrees with its checksum record:\n  "
          + "\n  ".join(describe_mismatch(saved, recorded)))
    problems = describe_mismatch(saved, wanted)
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
    self.wait()
    on_disk = step in self.manager.all_steps()
    latest = self.manager.latest_step()
    self.close()
    if not on_disk:
      raise CheckpointNotWrittenError(
          f"The checkpoint of step {step} could not be written to {self.directory} "
          f"({self.failed_saves} failed saves, see the ERROR lines above); the latest on disk "
          f"is {latest if latest is not None else '(none)'}. Free space or fix the permissions, "
          "then run the same command again: it resumes from there.")

  def close(self) -> bool:
    """Waits for the pending save (False if it failed) and releases orbax's resources."""
    written = self.wait()
    try:
      self.manager.close()
    except _SAVE_ERRORS:  # orbax raises the failed background save again: reported by wait()
      written = False
    self._remove_partial()  # orbax's threads are done: nothing writes into them any more
    return written

  def _remove_partial(self, step: int | None = None) -> None:
    """Deletes temporary folders of failed saves (of ``step``, or all), on process 0."""
    if jax.process_index() != 0:
      return
    for partial in self.directory.glob(f"{'*' if step is None else step}.orbax-checkpoint-tmp*"):
      try:
        partial.rmtree()
      except OSError as error:
        logging.error("Could not remove the partial checkpoint %s (%s); delete it by hand.",
                      partial, error)

  def _integrity_record(self, step: int) -> dict | None:
    """The checksum record committed with ``step`` (None for checkpoints without one).

    Read here, not through orbax, which takes unparseable step metadata for empty.
    """
    path = self.step_directory(step) / _STEP_METADATA_FILE
    try:
      text = path.read_text() if path.exists() else "{}"
      custom = json.loads(text).get("custom_metadata") or {}
    except (OSError, ValueError, AttributeError) as error:
      raise CorruptCheckpointError(f"{path} cannot be read ({error})") from error
    return custom.get(_INTEGRITY_KEY)

  def _set_aside(self, step: int, reason: str) -> None:
    """Moves a checkpoint that does not restore to checkpoints/corrupt/ (process 0 only)."""
    source = self.step_directory(step)
    if jax.process_index() == 0:
      corrupt = self.directory / CORRUPT_DIR
      target = corrupt / str(step)
      for n in range(1, 1000):  # keep earlier casualties of the same step
        if not target.exists():
          break
        target = corrupt / f"{step}.{n}"
      try:
        corrupt.mkdir(parents=True, exist_ok=True)
        source.rename(target)
        where = (f"moved it to {target}, where it no longer counts among the kept checkpoints "
                 "(delete it once you have looked at it)")
      except OSError as error:
        where = (f"could not move it to {target} ({error}); move or delete {source} by hand, "
                 "or it keeps a slot of the kept checkpoints")
      logging.warning("Checkpoint step %d in %s could not be restored (%s); %s. Trying the "
                      "previous one.", step, source, reason, where)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f"gan_set_aside_checkpoint_{step}")
    self.manager.reload()

  def _ranking_metrics(self, metrics: dict | None) -> dict | None:
    if self.best_metric is None or not metrics or self.best_metric not in metrics:
      return None
    value = float(metrics[self.best_metric])
    return {self.best_metric: value} if math.isfinite(value) else None

  def _report_failed_save(self, step: int | None, error: BaseException) -> None:
    self.failed_saves += 1
    if step is not None:  # no half-written folder stays behind (close() sweeps again)
      self._remove_partial(step)
    try:
      self.manager.reload()  # Forget the failed step; the older ones are still on disk.
    except OSError:
      pass
    previous = self.manager.latest_step()
    logging.error("Checkpoint step %s in %s: checkpoint not written (%s); the previous "
                  "checkpoint %s is intact; training continues (%d failed saves).",
                  step, self.directory, _save_error_reason(error),
                  "(none)" if previous is None else previous, self.failed_saves)
