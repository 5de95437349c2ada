"""ProGAN's growth schedule, counted in images shown to D (not optimiser steps).

Phases, in order: 'stable' at the start resolution (no fade there), then for
each next resolution R = 2 * previous up to the final one: a 'fade' phase, in
which the new R x R block fades in (alpha 0 -> 1, linear in images shown),
followed by a 'stable' phase at R. The last stable phase lasts until
``total_images``. This is the official code's TrainingSchedule
(progressive_growing_of_gans/train.py): per level lod_training_kimg of training
then lod_transition_kimg of transition, and during the transition into R the
minibatch size and learning rates are already R's (its resolution is
2**(log2(final) - floor(lod)), the new one).

How a training loop uses it: a step that starts at ``images_shown`` trains its
whole batch with ``phase_at(images_shown)`` and ``alpha(images_shown)`` (the
official code also computes lod once per minibatch), then advances the counter
by that phase's batch size. So phase boundaries are crossed between steps, and
when a batch size does not divide a phase's length, the first step of the next
phase starts up to one batch after that phase's nominal ``start_images``.

If ``total_images`` ends before the full schedule does, the run stops there:
phases that would start at or after ``total_images`` are left out of
``phases`` (``describe`` says so), and a phase cut short keeps its nominal end,
so its alpha still ramps over its nominal length.

Pure Python, no JAX: it decides shapes, so it runs outside jit.
"""

import bisect
import dataclasses
import math
from typing import Callable, Mapping, TypeVar

STABLE, FADE = "stable", "fade"
Value = TypeVar("Value")
# A phase length for every resolution, or one per resolution ({8: 600_000, ...}).
Length = int | Mapping[int, int]
_EXAMPLES = {"int": "'4:512,8:256,16:128'", "float": "'128:1.5e-3,256:2e-3'"}


@dataclasses.dataclass(frozen=True)
class Phase:
  """One span of images shown: [start_images, end_images), end None = until total_images."""
  index: int
  resolution: int
  kind: str  # STABLE or FADE
  start_images: int
  end_images: int | None
  batch_size: int
  g_lr: float
  d_lr: float

  @property
  def fading(self) -> bool:
    return self.kind == FADE

  def alpha_at(self, images_shown: int) -> float:
    """Weight of the newest block at ``images_shown`` (in this phase): linear over a fade."""
    if not self.fading:
      return 1.0
    progress = (images_shown - self.start_images) / (self.end_images - self.start_images)
    return min(progress, 1.0)  # only reachable past total_images in a cut-short fade


def is_power_of_two(n: int) -> bool:
  return isinstance(n, int) and n >= 1 and n & (n - 1) == 0


def parse_resolution_map(text: str, value_type: Callable[[str], Value]) -> dict[int, Value]:
  """'4:512, 8:256' -> {4: 512, 8: 256}; '' -> {} (the default everywhere).

  Command-line overrides cannot set int-keyed dicts in an ml_collections
  config, hence a string. Raises ValueError naming the bad entry.
  """
  type_name = getattr(value_type, "__name__", str(value_type))
  expected = (f"expected comma-separated 'resolution:{type_name}' pairs, "
              f"e.g. {_EXAMPLES.get(type_name, _EXAMPLES['int'])}")
  result: dict[int, Value] = {}
  for entry in (e.strip() for e in text.split(",")):
    if not entry:
      continue  # '' or a trailing comma
    key_text, separator, value_text = entry.partition(":")
    try:
      if not separator:
        raise ValueError
      resolution, value = int(key_text), value_type(value_text.strip())
    except ValueError:
      raise ValueError(f"Bad entry {entry!r} in {text!r}: {expected}.") from None
    if not is_power_of_two(resolution):
      raise ValueError(f"Bad entry {entry!r} in {text!r}: resolution {resolution} is not a "
                       "power of two (4, 8, 16, ...).")
    if resolution in result:
      raise ValueError(f"Bad entry {entry!r} in {text!r}: resolution {resolution} appears "
                       "twice; give each resolution once.")
    result[resolution] = value
  return result


def _as_resolution_map(setting, value_type) -> dict:
  """A config value that is a 'res:value,...' string or already a mapping."""
  if isinstance(setting, str):
    return parse_resolution_map(setting, value_type)
  return {int(k): value_type(v) for k, v in dict(setting or {}).items()}


class Schedule:
  """The phases of one ProGAN run; see the module docstring."""

  def __init__(self, *, start_resolution: int = 4, final_resolution: int,
               fade_images: Length, stable_images: Length, total_images: int,
               batch_sizes: Mapping[int, int], default_batch_size: int,
               g_learning_rates: Mapping[int, float] | None = None,
               d_learning_rates: Mapping[int, float] | None = None,
               default_lr: float):
    """Per-resolution maps fall back to the defaults for missing resolutions.

    fade_images[R]: length of the fade into R; stable_images[R]: length of the
    stable phase at R (unused for the final resolution, which runs until
    total_images). A dict for either must name every resolution that needs one.
    """
    g_learning_rates, d_learning_rates = dict(g_learning_rates or {}), dict(d_learning_rates or {})
    _validate(start_resolution, final_resolution, fade_images, stable_images, total_images,
              batch_sizes, default_batch_size, g_learning_rates, d_learning_rates, default_lr)
    self.start_resolution, self.final_resolution = start_resolution, final_resolution
    self.total_images = total_images

    phases, cursor, resolution = [], 0, start_resolution
    def add(kind, length):
      nonlocal cursor
      if cursor >= total_images:
        return  # the run stops before this phase starts
      end = None if length is None else cursor + length
      phases.append(Phase(len(phases), resolution, kind, cursor, end,
                          batch_sizes.get(resolution, default_batch_size),
                          g_learning_rates.get(resolution, default_lr),
                          d_learning_rates.get(resolution, default_lr)))
      cursor = end if end is not None else cursor
    while resolution <= final_resolution:
      if resolution != start_resolution:
        add(FADE, _length(fade_images, resolution))
      add(STABLE, None if resolution == final_resolution else _length(stable_images, resolution))
      resolution *= 2
    self.phases: tuple[Phase, ...] = tuple(phases)
    self._starts = [p.start_images for p in phases]

  @property
  def reaches_final_resolution(self) -> bool:
    return self.phases[-1].resolution == self.final_resolution

  def phase_at(self, images_shown: int) -> Phase:
    """The phase a step starting at ``images_shown`` trains in.

    At or past ``total_images`` (after the last step): the last phase.
    """
    if images_shown < 0:
      raise ValueError(f"images_shown must be >= 0, got {images_shown}.")
    return self.phases[bisect.bisect_right(self._starts, images_shown) - 1]

  def alpha(self, images_shown: int) -> float:
    """Weight of the newest block: linear in [0, 1) during a fade, 1.0 when stable."""
    return self.phase_at(images_shown).alpha_at(images_shown)

  def step_spans(self) -> list[tuple[Phase, int, int]]:
    """(phase, its first step, one past its last) for every phase that gets a step.

    A step starting at ``images_shown`` trains in ``phase_at(images_shown)``
    and advances the counter by that phase's batch size (see the module
    docstring), so a phase gets ceil(images left in it / its batch) steps.
    """
    spans, images, step = [], 0, 0
    for index, phase in enumerate(self.phases):
      last = index + 1 == len(self.phases)
      end = self.total_images if last else min(self.phases[index + 1].start_images,
                                                self.total_images)
      if images >= end:
        continue  # the previous phase's last batch went past all of it
      count = -(-(end - images) // phase.batch_size)
      spans.append((phase, step, step + count))
      step, images = step + count, images + count * phase.batch_size
    return spans

  def describe(self) -> str:
    """A table of the phases, for logs."""
    lines = [f"{'phase':>5} {'res':>5} {'kind':<6} {'start kimg':>11} {'end kimg':>11} "
             f"{'batch':>6} {'G lr':>9} {'D lr':>9}"]
    for p in self.phases:
      end = self.total_images if p.end_images is None else p.end_images
      lines.append(f"{p.index:>5} {p.resolution:>5} {p.kind:<6} {p.start_images / 1e3:>11.1f} "
                   f"{end / 1e3:>11.1f} {p.batch_size:>6} {p.g_lr:>9.3g} {p.d_lr:>9.3g}")
    lines.append(f"total: {self.total_images / 1e3:.1f} kimg")
    if not self.reaches_final_resolution:
      lines.append(f"NOTE: total_images ends the run at {self.phases[-1].resolution}x"
                   f"{self.phases[-1].resolution}, before {self.final_resolution}x"
                   f"{self.final_resolution}; raise schedule.total_images to get there.")
    return "\n".join(lines)

  @classmethod
  def from_config(cls, config) -> "Schedule":
    """From ``config.model.resolution`` (final), ``config.schedule.*`` and ``config.train.lr``.

    batch_sizes and learning_rates are 'res:value,...' strings (learning rates
    apply to G and D); fade_images / stable_images are ints, or strings of an
    int or of 'res:images,...' (a field's type is fixed once set).
    """
    s = config.schedule
    def lengths(setting):  # 600_000, "600000" or "8:600000,16:800000"
      if isinstance(setting, str) and ":" not in setting:
        return int(setting)
      return setting if isinstance(setting, int) else _as_resolution_map(setting, int)
    learning_rates = _as_resolution_map(s.learning_rates, float)
    return cls(start_resolution=s.start_resolution, final_resolution=config.model.resolution,
               fade_images=lengths(s.fade_images), stable_images=lengths(s.stable_images),
               total_images=s.total_images,
               batch_sizes=_as_resolution_map(s.batch_sizes, int),
               default_batch_size=s.default_batch_size,
               g_learning_rates=learning_rates, d_learning_rates=learning_rates,
               default_lr=config.train.lr)


def _length(setting: Length, resolution: int) -> int:
  return setting if isinstance(setting, int) else setting[resolution]


def _validate(start, final, fade_images, stable_images, total_images, batch_sizes,
              default_batch_size, g_learning_rates, d_learning_rates, default_lr) -> None:
  """Raises one ValueError listing every problem, each with its fix."""
  errors = []
  for name, value in (("start_resolution", start), ("final_resolution", final)):
    if not is_power_of_two(value):
      errors.append(f"{name} = {value} is not a power of two; use 4, 8, 16, ...")
  if not errors and start > final:
    errors.append(f"start_resolution {start} > final_resolution {final}; "
                  "start at or below the final resolution.")
  if not isinstance(total_images, int) or total_images <= 0:
    errors.append(f"total_images = {total_images!r} must be a positive int.")
  growth = [start * 2 ** i for i in range(int(math.log2(final / start)) + 1)] if not errors else []
  for name, setting, needed in (("fade_images", fade_images, growth[1:]),
                                ("stable_images", stable_images, growth[:-1])):
    per_resolution = ({r: setting for r in needed} if isinstance(setting, int)
                      else {r: setting.get(r) for r in needed})
    for resolution, length in per_resolution.items():
      if not isinstance(length, int) or length <= 0:
        errors.append(f"{name} for {resolution}x{resolution} is {length!r}; give a positive "
                      "int (images shown), for every resolution if a dict.")
  maps = (("batch_sizes", batch_sizes), ("g_learning_rates", g_learning_rates),
          ("d_learning_rates", d_learning_rates))
  for name, mapping in maps:
    bad_keys = [r for r in mapping if not is_power_of_two(r)]
    if bad_keys:
      errors.append(f"{name} has resolutions {bad_keys} that are not powers of two.")
  for resolution, size in [("default", default_batch_size), *batch_sizes.items()]:
    if not isinstance(size, int) or size < 1:
      errors.append(f"batch size {size!r} for {resolution} must be an int >= 1.")
  for resolution, lr in [("default", default_lr), *g_learning_rates.items(),
                         *d_learning_rates.items()]:
    if not lr > 0:
      errors.append(f"learning rate {lr!r} for {resolution} must be > 0.")
  if errors:
    raise ValueError("Invalid ProGAN schedule:\n  " + "\n  ".join(errors))
