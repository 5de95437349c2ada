"""Progress reporting for the training loop: one line and a few scalars per log step.

Pure Python (standard library only), no clock of its own: every call takes
``now`` (the caller passes ``time.monotonic()``), so tests drive it with a fake
clock. One ``Progress`` serves every GAN family; a run is a list of
``PhaseSpan`` in steps (BigGAN: one phase; ProGAN: stable/fade phases, whose
image spans the caller converts to steps).

What it measures:

* Rates (steps/s, images/s) over the *window* since the previous ``update``
  (or since construction / ``restart_window``): what the run does now, not an
  average since the start that a long compilation would drag down.
* ETA from a *smoothed* step rate: an exponential moving average of the
  per-window step rates, ``ema = 0.3 * window_rate + 0.7 * ema`` (the first
  window sets it). One slow window (a checkpoint save, an evaluation) moves
  the ETA by 30% of that window's slowdown instead of all of it, and a lasting
  change in speed (a ProGAN resolution change) still shows after a few log
  steps (its weight is 1 - 0.7**n after n windows). Windows are weighted
  equally, not by length: log steps are evenly spaced, so they are about the
  same length anyway.
* Whole-run ETA = (total_steps - step) / ema; with more than one phase, also
  the current phase's fraction and ETA = (phase.end_step - step) / ema.
* Elapsed time since construction, i.e. since this process's run started
  (compilation included), not since step 0 of the whole training: a resumed
  run starts its clock at its ``start_step``.

The loop should call ``restart_window`` after a pause it does not want in the
rates: compilation of the first step, a rollback, a long evaluation. The
pause still counts in the elapsed time, and the smoothed rate is kept.
"""

import bisect
import dataclasses
import math
from typing import Sequence

# Weight of the newest window in the smoothed step rate that the ETA uses.
ETA_SMOOTHING = 0.3


@dataclasses.dataclass(frozen=True)
class PhaseSpan:
  """One phase of a run, in steps: [start_step, end_step). BigGAN has a single phase."""
  name: str  # e.g. "train", "8x8 fade"
  start_step: int  # first step of the phase
  end_step: int  # one past its last step

  def __post_init__(self):
    if not isinstance(self.name, str) or not self.name:
      raise ValueError(f"PhaseSpan name must be a non-empty string, got {self.name!r}.")
    for field in ("start_step", "end_step"):
      value = getattr(self, field)
      if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"PhaseSpan {self.name!r}: {field} must be an int, got {value!r}.")
    if not 0 <= self.start_step < self.end_step:
      raise ValueError(f"PhaseSpan {self.name!r}: need 0 <= start_step < end_step, got "
                       f"[{self.start_step}, {self.end_step}).")

  @property
  def length(self) -> int:
    return self.end_step - self.start_step


def format_duration(seconds: float | None) -> str:
  """Seconds as '45s', '6m02s', '2h05m', '3d04h' (truncated to the unit shown).

  None, NaN or infinity -> '?'; negative -> '0s'.
  """
  if seconds is None or not math.isfinite(seconds):
    return "?"
  s = max(0, int(seconds))
  if s < 60:
    return f"{s}s"
  if s < 3600:
    return f"{s // 60}m{s % 60:02d}s"
  if s < 86400:
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
  return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _percent(fraction: float, decimals: int) -> str:
  """'66.7%'; never shows 100% before the end (0.9996 -> '99.9%', not '100.0%')."""
  text = f"{100 * fraction:.{decimals}f}"
  if fraction < 1 and float(text) >= 100:
    text = f"{100 - 10 ** -decimals:.{decimals}f}"
  return text + "%"


def _check_int(name: str, value) -> None:
  if not isinstance(value, int) or isinstance(value, bool):
    raise ValueError(f"{name} must be an int, got {value!r}.")


class Progress:
  """Progress of one training run (this process), for the log line and TensorBoard.

  Usage in the loop::

    progress = Progress(total_steps, phases, start_step, start_images, time.monotonic())
    ...  # first step compiles
    progress.restart_window(time.monotonic(), step, images_shown)
    ...
    if step % log_every == 0:
      line, scalars = progress.update(step, images_shown, time.monotonic())
      print(line); write scalars

  ``phases`` must be the phases of the whole training (so that 'phase 3/7'
  numbers them as the schedule does), contiguous, the last ending at
  ``total_steps``; the first may start after 0 but not after ``start_step``.
  """

  def __init__(self, total_steps: int, phases: Sequence[PhaseSpan], start_step: int,
               start_images: int, now: float):
    """Starts the elapsed clock and the first rate window at ``now``.

    Raises ValueError if the arguments do not describe a run: total_steps < 1,
    start_step outside [0, total_steps], start_images < 0, no phases, phases
    that are not PhaseSpans, overlap or leave a gap, do not end at
    total_steps, or start after start_step.
    """
    _check_int("total_steps", total_steps)
    _check_int("start_step", start_step)
    _check_int("start_images", start_images)
    if total_steps < 1:
      raise ValueError(f"total_steps must be >= 1, got {total_steps}.")
    if not 0 <= start_step <= total_steps:
      raise ValueError(f"start_step must be in [0, total_steps={total_steps}], got {start_step}.")
    if start_images < 0:
      raise ValueError(f"start_images must be >= 0, got {start_images}.")
    phases = tuple(phases)
    if not phases:
      raise ValueError("phases is empty: a run needs at least one phase (e.g. "
                       f"PhaseSpan('train', 0, {total_steps})).")
    for i, phase in enumerate(phases):
      if not isinstance(phase, PhaseSpan):
        raise ValueError(f"phases[{i}] is a {type(phase).__name__}, not a PhaseSpan: {phase!r}.")
    for before, after in zip(phases, phases[1:]):
      if after.start_step != before.end_step:
        kind = "gap" if after.start_step > before.end_step else "overlap"
        raise ValueError(
            f"phases are not contiguous ({kind}): {before.name!r} ends at step "
            f"{before.end_step} but {after.name!r} starts at step {after.start_step}.")
    if phases[-1].end_step != total_steps:
      raise ValueError(f"The last phase {phases[-1].name!r} ends at step {phases[-1].end_step}, "
                       f"but total_steps is {total_steps}: phases must end at total_steps.")
    if phases[0].start_step > start_step:
      raise ValueError(f"The first phase {phases[0].name!r} starts at step "
                       f"{phases[0].start_step}, after start_step {start_step}: phases must "
                       f"cover every step from start_step to total_steps.")

    self.total_steps = total_steps
    self.phases = phases
    self.start_step = start_step
    self.start_images = start_images
    self.start_time = float(now)
    self._starts = [p.start_step for p in phases]
    # The open rate window starts here.
    self._window_time = float(now)
    self._window_step = start_step
    self._window_images = start_images
    self._last_step = start_step
    self._last_images = start_images
    # Rates of the last closed window, and the smoothed step rate (None: not known yet).
    self._steps_per_sec: float | None = None
    self._images_per_sec: float | None = None
    self._smoothed_steps_per_sec: float | None = None

  @property
  def smoothed_steps_per_sec(self) -> float | None:
    """The EMA of per-window step rates that the ETA uses; None before the first window."""
    return self._smoothed_steps_per_sec

  def phase_at(self, step: int) -> tuple[int, PhaseSpan]:
    """(0-based index, phase) of the phase the next step (after ``step`` done) trains in.

    The phase with start_step <= step < end_step, so at a phase's end_step
    the next phase; at or past total_steps the last one; before the first
    phase's start, the first.
    """
    index = min(max(bisect.bisect_right(self._starts, step) - 1, 0), len(self.phases) - 1)
    return index, self.phases[index]

  def restart_window(self, now: float, step: int | None = None,
                     images_shown: int | None = None) -> None:
    """Starts a new rate window at ``now``: the time since the last update is not in any rate.

    For a pause the loop does not want counted (compilation, rollback, long
    evaluation). ``step`` and ``images_shown`` (default: those of the last
    update, or the start) are the counters at ``now``; pass them when they
    moved since, e.g. after the compiling first step or a rollback. The
    smoothed rate and the elapsed clock are kept.
    """
    if step is not None:
      self._last_step = step
    if images_shown is not None:
      self._last_images = images_shown
    self._window_time = float(now)
    self._window_step = self._last_step
    self._window_images = self._last_images

  def update(self, step: int, images_shown: int, now: float) -> tuple[str, dict[str, float]]:
    """Called at a log step after ``step`` steps are done; returns (line, scalars).

    Closes the current rate window and opens the next one at ``now``. A
    window of zero (or negative) length measures nothing and stays open, so
    the next update measures from its start; a window in which step or
    images_shown went backwards (a rollback without ``restart_window``)
    measures nothing and is restarted at ``now``. Until some window has been
    measured, rates and ETA are unknown ('?' in the line, left out of the
    scalars), except that at or past total_steps the ETA is 0.

    line: 'step 400/600 (66.7%) | 12,800 images | 33.1 img/s | elapsed 6m02s | ETA 3m01s',
    with ' | phase 3/7 8x8 fade 45% ETA 1m10s' appended when there are several phases.

    scalars (plain floats): progress (step / total_steps, 0..1), elapsed_seconds,
    images_shown, and when known eta_seconds, steps_per_sec, images_per_sec
    (of this window); with several phases also phase_progress and, when
    known, phase_eta_seconds.
    """
    now = float(now)
    dt = now - self._window_time
    d_steps = step - self._window_step
    d_images = images_shown - self._window_images
    if d_steps < 0 or d_images < 0:
      self.restart_window(now, step, images_shown)
    elif dt > 0:
      self._steps_per_sec = d_steps / dt
      self._images_per_sec = d_images / dt
      if self._smoothed_steps_per_sec is None:
        self._smoothed_steps_per_sec = self._steps_per_sec
      else:
        self._smoothed_steps_per_sec = (ETA_SMOOTHING * self._steps_per_sec
                                        + (1 - ETA_SMOOTHING) * self._smoothed_steps_per_sec)
      self.restart_window(now, step, images_shown)
    else:
      self._last_step, self._last_images = step, images_shown

    elapsed = max(0.0, now - self.start_time)
    fraction = min(max(step / self.total_steps, 0.0), 1.0)
    eta = self._eta(self.total_steps - step)

    parts = [
        f"step {step}/{self.total_steps} ({_percent(fraction, 1)})",
        f"{images_shown:,} images",
        (f"{self._images_per_sec:,.1f} img/s" if self._images_per_sec is not None else "? img/s"),
        f"elapsed {format_duration(elapsed)}",
        f"ETA {self._format_eta(eta)}",
    ]
    scalars = {
        "progress": float(fraction),
        "elapsed_seconds": float(elapsed),
        "images_shown": float(images_shown),
    }
    if eta is not None:
      scalars["eta_seconds"] = float(eta)
    if self._steps_per_sec is not None:
      scalars["steps_per_sec"] = float(self._steps_per_sec)
      scalars["images_per_sec"] = float(self._images_per_sec)

    if len(self.phases) > 1:
      index, phase = self.phase_at(step)
      phase_fraction = min(max((step - phase.start_step) / phase.length, 0.0), 1.0)
      phase_eta = self._eta(phase.end_step - step)
      parts.append(f"phase {index + 1}/{len(self.phases)} {phase.name} "
                   f"{_percent(phase_fraction, 0)} ETA {self._format_eta(phase_eta)}")
      scalars["phase_progress"] = float(phase_fraction)
      if phase_eta is not None:
        scalars["phase_eta_seconds"] = float(phase_eta)
    return " | ".join(parts), scalars

  def _eta(self, remaining_steps: int) -> float | None:
    """Seconds for ``remaining_steps`` at the smoothed rate; 0 when none remain; None if unknown."""
    if remaining_steps <= 0:
      return 0.0
    rate = self._smoothed_steps_per_sec
    if rate is None or rate <= 0:
      return None
    return remaining_steps / rate

  @staticmethod
  def _format_eta(eta: float | None) -> str:
    # Rounded up, so the line says '0s' only when nothing remains (after rounding
    # away float noise, so 100.0000001 s shows as 1m40s, not 1m41s).
    return "?" if eta is None else format_duration(math.ceil(round(eta, 6)))
