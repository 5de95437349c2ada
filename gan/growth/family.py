"""The half of a growing family (ProGAN, StyleGAN v1) that the schedule decides.

Phases come from the growth schedule (gan/growth/schedule.py), counted in real
images shown: one compiled step per (resolution, fade or stable), over one
parameter tree that holds every resolution's layers. A step reads its batch at
the phase's resolution (box-filtered from the dataset's) and takes alpha as a
traced input, so one compiled step serves a whole fade. Entering a phase resets
both Adam states (config.train.reset_optimizer). A family subclasses
``GrowingFamily`` and adds its networks, state, step and grids; its state has
``images_shown`` and ``opt_phase``.
"""

import abc

import jax
import jax.numpy as jnp

from gan.data.pipeline import Pipeline
from gan.families import interface
from gan.growth.schedule import Schedule

_cache: list = [None, None]  # (config, its Schedule): phase_at runs every step


def schedule_of(config) -> Schedule:
  """The growth schedule of ``config`` (built once per config object)."""
  if _cache[0] is not config:
    _cache[:] = [config, Schedule.from_config(config)]
  return _cache[1]


def make_pipeline(source, config, process_index: int = 0, process_count: int = 1) -> Pipeline:
  """Batches are whole (no micro-batching); each process reads its share of each."""
  pipeline = Pipeline(source, seed=config.seed, micro_batch=process_count,
                      random_flip=config.data.random_flip, process_index=process_index,
                      process_count=process_count)
  largest = max(schedule_of(config).phases, key=lambda phase: phase.batch_size)
  pipeline.require_examples(largest.batch_size, f"the batch {largest.batch_size} at "
                            f"{largest.resolution}x{largest.resolution}")
  return pipeline


def as_phase(schedule_phase) -> interface.Phase:
  p = schedule_phase
  return interface.Phase(index=p.index, label=f"{p.resolution}x{p.resolution} {p.kind}",
                         examples_per_step=p.batch_size, detail=p,
                         log_fields={"resolution": p.resolution, "batch_size": p.batch_size})


def grid_alpha(config, phase: interface.Phase, images_shown: int) -> float | None:
  """The alpha a grid shows: the last image shown so far's (a fade's end: near 1)."""
  return (schedule_of(config).alpha(max(images_shown - 1, 0)) if phase.detail.fading
          else None)


class GrowingFamily(interface.Family):
  """Phases, counters, optimiser resets and batches of a family on a growth schedule."""

  @abc.abstractmethod
  def reset_optimizers(self, model, state, schedule_phase):
    """``state`` with fresh optimiser states for ``schedule_phase`` and opt_phase set."""

  def describe(self, config) -> str:
    return f"{self.name} schedule:\n" + schedule_of(config).describe()

  def make_pipeline(self, source, config, process_index: int, process_count: int) -> Pipeline:
    return make_pipeline(source, config, process_index, process_count)

  def phases(self, config):
    return [as_phase(p) for p in schedule_of(config).phases]

  def phase_at(self, config, step_index: int, images_shown: int) -> interface.Phase:
    return as_phase(schedule_of(config).phase_at(images_shown))

  def images_shown(self, config, state) -> int:
    return int(state.images_shown)

  def finished(self, config, step_index: int, images_shown: int) -> bool:
    max_steps = config.train.max_steps
    return (images_shown >= config.schedule.total_images
            or 0 < max_steps <= step_index)

  def total_steps(self, config) -> int:
    return self.phase_spans(config)[-1][2]

  def phase_spans(self, config) -> list[tuple[str, int, int]]:
    spans = [(as_phase(p).label, start, end)
             for p, start, end in schedule_of(config).step_spans()]
    max_steps = config.train.max_steps
    if max_steps > 0:  # the run stops early: its spans end there
      spans = [(label, start, min(end, max_steps)) for label, start, end in spans
               if start < max_steps]
    return spans

  def state_phase(self, state) -> int:
    return int(state.opt_phase)

  def enter_phase(self, model, state, phase):
    if not model.config.train.reset_optimizer:
      return state.replace(opt_phase=jnp.asarray(phase.index, jnp.int32))
    return self._reset(model, phase.index)(state)

  def alpha_extras(self, config):
    """The TrainStep extras of a growing step: (alpha at the step's first image,)."""
    schedule = schedule_of(config)
    return lambda images_shown: (jnp.float32(schedule.alpha(images_shown)),)

  def host_batch(self, config, pipeline, phase, step_index: int, images_shown: int):
    """uint8 (local batch, r, r, 3) at the phase's resolution r."""
    p = phase.detail
    positions = pipeline.host_positions(images_shown, p.batch_size)
    return pipeline.examples(positions, resolution=p.resolution)["image"]

  def step_record(self, phase, images_shown: int) -> dict:
    p = phase.detail
    alpha = float(jnp.float32(p.alpha_at(images_shown)))  # as the step receives it
    return {"resolution": p.resolution, "kind": p.kind, "alpha": alpha}

  def _reset(self, model, index: int):
    """Jitted: fresh optimiser states for phase ``index`` (the state's buffers are donated)."""
    resets = self.__dict__.setdefault("_resets", {})  # (id of the model, index) -> its jit
    key = (id(model), index)
    if key not in resets:
      phase = schedule_of(model.config).phases[index]
      resets[key] = jax.jit(lambda state: self.reset_optimizers(model, state, phase),
                            donate_argnums=0)
    return resets[key]
