"""ProGAN as a family of the one training loop (gan/families/interface.py).

Its phases come from the growth schedule (gan/growth/: one compiled step per
(resolution, fade or stable) over one parameter tree, alpha traced, Adam reset
per phase); this module adds ProGAN's networks, state, step and grids.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan.families import interface
from gan.families.progan import config as progan_config
from gan.families.progan import step as progan_step
from gan.growth.family import GrowingFamily, grid_alpha, schedule_of
from gan.images import make_grid


class ProGANSampler(interface.Sampler):
  """EMA-generator grids at fixed latents, at the phase's resolution and alpha."""

  def __init__(self, gan: progan_step.Progan, config):
    s = config.sample
    self.config, self.rows = config, s.rows
    self.z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (s.rows * s.cols,
                                                                      gan.latent_dim))
    self.sample = progan_step.sample_fn(gan)

  def grid(self, state, phase, step: int, images_shown: int) -> interface.Grid:
    p = phase.detail
    alpha = grid_alpha(self.config, phase, images_shown)
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


class ProGAN(GrowingFamily):
  name = "progan"
  defaults_name = "gan.families.progan.config.progan_defaults()"
  conditional = False
  config_module = progan_config

  def defaults(self):
    return progan_config.progan_defaults()

  def describe(self, config) -> str:
    return "ProGAN schedule:\n" + schedule_of(config).describe()

  def build(self, config) -> progan_step.Progan:
    return progan_step.build_progan(config)

  def init_state(self, model, config):
    return progan_step.init_state(model, config.seed, schedule_of(config).phases[0])

  def reset_optimizers(self, model, state, schedule_phase):
    return progan_step.reset_optimizers(model, state, schedule_phase)

  def train_step(self, model, config, phase, mesh) -> interface.TrainStep:
    return interface.TrainStep(fn=progan_step.make_train_step(model, phase.detail, mesh),
                               example_axis=0, extras=self.alpha_extras(config))

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


FAMILY = ProGAN()
