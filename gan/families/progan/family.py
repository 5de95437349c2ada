"""ProGAN as a family of the one training loop (gan/families/interface.py).

Its phases come from the growth schedule (gan/families/progan/schedule.py),
counted in real images shown: one compiled step per (resolution, fade or
stable), over one parameter tree that holds every resolution's layers. A
step reads its batch at the phase's resolution (box-filtered from the
dataset's) and takes alpha as a traced input, so one compiled step serves a
whole fade. Entering a phase resets both Adam states (config.train.reset_optimizer).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan.data.pipeline import Pipeline
from gan.families import interface
from gan.families.progan import config as progan_config
from gan.families.progan import step as progan_step
from gan.families.progan.schedule import Schedule
from gan.images import make_grid


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


def _phase(schedule_phase) -> interface.Phase:
  p = schedule_phase
  return interface.Phase(index=p.index, label=f"{p.resolution}x{p.resolution} {p.kind}",
                         examples_per_step=p.batch_size, detail=p,
                         log_fields={"resolution": p.resolution, "batch_size": p.batch_size})


class ProGANSampler(interface.Sampler):
  """EMA-generator grids at fixed latents, at the phase's resolution and alpha."""

  def __init__(self, gan: progan_step.Progan, config):
    s = config.sample
    self.schedule, self.rows = schedule_of(config), s.rows
    self.z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (s.rows * s.cols,
                                                                      gan.latent_dim))
    self.sample = progan_step.sample_fn(gan)

  def grid(self, state, phase, step: int, images_shown: int) -> interface.Grid:
    p = phase.detail
    # The last image shown so far: a grid closing a fade shows its end, alpha near 1.
    alpha = self.schedule.alpha(max(images_shown - 1, 0)) if p.fading else None
    images = self.sample(state.ema_params, self.z, p.resolution,
                         None if alpha is None else jnp.float32(alpha))
    mixing = f", alpha {alpha:.3f}" if alpha is not None else ""
    image = make_grid(np.asarray(jax.device_get(images)), rows=self.rows,
                      caption=f"step {step}: {phase.label}{mixing}, EMA generator")
    return interface.Grid(image, f"step_{step:08d}_{p.resolution}x{p.resolution}_{p.kind}.png",
                          f"samples_ema_{p.resolution}")


@functools.lru_cache(maxsize=None)
def _eval_fn(generator, latent_dim: int, resolution: int, fading: bool, final_resolution: int):
  """(params, alpha), rng, count -> (images at final_resolution, None): one per phase.

  A phase below the final resolution is shown upscaled (nearest), as
  ProGAN's own generator outputs every level of detail at full size.
  """
  def generate(inputs, rng, count):
    params, alpha = inputs
    z = jax.random.normal(rng, (count, latent_dim))
    images = jnp.clip(generator.apply({"params": params}, z, resolution,
                                      alpha if fading else None), -1, 1)
    factor = final_resolution // resolution
    if factor > 1:
      images = jnp.repeat(jnp.repeat(images, factor, axis=1), factor, axis=2)
    return images, None
  return generate


class ProGAN(interface.Family):
  name = "progan"
  defaults_name = "gan.families.progan.config.progan_defaults()"
  conditional = False
  config_module = progan_config

  def defaults(self):
    return progan_config.progan_defaults()

  def describe(self, config) -> str:
    return "ProGAN schedule:\n" + schedule_of(config).describe()

  def make_pipeline(self, source, config, process_index: int, process_count: int) -> Pipeline:
    return make_pipeline(source, config, process_index, process_count)

  def build(self, config) -> progan_step.Progan:
    return progan_step.build_progan(config)

  def init_state(self, model, config):
    return progan_step.init_state(model, config.seed, schedule_of(config).phases[0])

  def phases(self, config):
    return [_phase(p) for p in schedule_of(config).phases]

  def phase_at(self, config, step_index: int, images_shown: int) -> interface.Phase:
    return _phase(schedule_of(config).phase_at(images_shown))

  def images_shown(self, config, state) -> int:
    return int(state.images_shown)

  def finished(self, config, step_index: int, images_shown: int) -> bool:
    max_steps = config.train.max_steps
    return (images_shown >= config.schedule.total_images
            or 0 < max_steps <= step_index)

  def total_steps(self, config) -> int:
    return self.phase_spans(config)[-1][2]

  def phase_spans(self, config) -> list[tuple[str, int, int]]:
    spans = [(_phase(p).label, start, end)
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
    return _reset(model, phase.index)(state)

  def train_step(self, model, config, phase, mesh) -> interface.TrainStep:
    schedule = schedule_of(config)
    return interface.TrainStep(
        fn=progan_step.make_train_step(model, phase.detail, mesh), example_axis=0,
        extras=lambda images_shown: (jnp.float32(schedule.alpha(images_shown)),))

  def host_batch(self, config, pipeline, phase, step_index: int, images_shown: int):
    """uint8 (local batch, r, r, 3) at the phase's resolution r."""
    p = phase.detail
    positions = pipeline.host_positions(images_shown, p.batch_size)
    return pipeline.examples(positions, resolution=p.resolution)["image"]

  def sampler(self, model, config) -> ProGANSampler:
    return ProGANSampler(model, config)

  def eval_generator(self, model, config, state, images_shown: int,
                     truncation: float | None) -> interface.EvalGenerator:
    schedule = schedule_of(config)
    last = max(images_shown - 1, 0)  # the last image shown, as the grids do
    p = schedule.phase_at(last)
    alpha = p.alpha_at(last)
    final = config.model.resolution
    mixing = f", alpha {alpha:.3f}" if p.fading else ""
    upscaled = f", upscaled (nearest) to {final}x{final}" if p.resolution < final else ""
    return interface.EvalGenerator(
        fn=_eval_fn(model.generator, model.latent_dim, p.resolution, p.fading, final),
        inputs=(state.ema_params, jnp.float32(alpha)), key=("progan", p.resolution, p.fading),
        conditional=False,
        description=f"ProGAN EMA generator at {p.resolution}x{p.resolution} {p.kind}{mixing}"
                    f"{upscaled}")

  def step_record(self, phase, images_shown: int) -> dict:
    p = phase.detail
    alpha = float(jnp.float32(p.alpha_at(images_shown)))  # as the step receives it
    return {"resolution": p.resolution, "kind": p.kind, "alpha": alpha}


_resets: dict = {}  # (id of the model, phase index) -> its jitted reset


def _reset(model: progan_step.Progan, index: int):
  """Jitted: fresh Adam states for phase ``index`` (the state's buffers are donated)."""
  key = (id(model), index)
  if key not in _resets:
    phase = schedule_of(model.config).phases[index]
    _resets[key] = jax.jit(lambda state: progan_step.reset_optimizers(model, state, phase),
                           donate_argnums=0)
  return _resets[key]


FAMILY = ProGAN()
