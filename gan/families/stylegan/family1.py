"""StyleGAN (v1) as a family of the one training loop (gan/families/interface.py).

Progressive growing on the shared growth schedule (gan/growth/: phases in images
shown, one compiled step per (resolution, fade or stable), alpha traced, Adam reset
per phase, exact mid-fade resume); this module adds StyleGAN's networks, state,
step and grids (fixed z, style mixing, truncation rows).
"""

import functools

import jax
import jax.numpy as jnp

from gan.families import interface
from gan.families.stylegan import config1, grids, step1, styles
from gan.growth.family import GrowingFamily, grid_alpha, schedule_of


@functools.lru_cache(maxsize=None)
def _eval_fn(gan: step1.StyleGAN, resolution: int, fading: bool, psi: float,
             cutoff: int | None):
  """(params, w_avg, alpha), rng, count -> (images at the final resolution, labels or None).

  A phase below the final resolution is shown upscaled (nearest), as ProGAN's are.
  """
  final = gan.config.model.resolution

  def generate(inputs, rng, count):
    params, w_avg, alpha = inputs
    ws_key, noise_key = jax.random.split(rng)
    ws, labels = styles.sampling_ws(lambda z, labels: gan.map(params, z, labels), ws_key, count,
                                    gan.z_dim, gan.num_classes, gan.num_ws, w_avg, psi, cutoff)
    images = jnp.clip(gan.synthesize(params, ws, resolution, alpha if fading else None,
                                     noise_key), -1, 1)
    factor = final // resolution
    if factor > 1:
      images = jnp.repeat(jnp.repeat(images, factor, axis=1), factor, axis=2)
    return images, labels
  return generate


class StyleGANFamily(GrowingFamily):
  name = "stylegan"
  defaults_name = "gan.families.stylegan.config1.stylegan_defaults()"
  conditional = True  # optional: data.num_classes > 1 conditions the mapping and D
  config_module = config1

  def defaults(self):
    return config1.stylegan_defaults()

  def describe(self, config) -> str:
    t = config.train
    classes = (f", conditional on {config.data.num_classes} classes"
               if config.data.num_classes > 1 else "")
    return (f"StyleGAN (v1){classes}; R1 gamma {t.r1_gamma:g}, style mixing "
            f"{t.style_mixing_prob:g}, EMA {t.ema_kimg:g} kimg. Schedule:\n"
            + schedule_of(config).describe())

  def build(self, config) -> step1.StyleGAN:
    return step1.build(config)

  def init_state(self, model, config):
    return step1.init_state(model, config.seed, schedule_of(config).phases[0])

  def reset_optimizers(self, model, state, schedule_phase):
    return step1.reset_optimizers(model, state, schedule_phase)

  def train_step(self, model, config, phase, mesh) -> interface.TrainStep:
    return interface.TrainStep(fn=step1.make_train_step(model, phase.detail, mesh),
                               example_axis=0, extras=self.alpha_extras(config))

  def host_batch(self, config, pipeline, phase, step_index: int, images_shown: int):
    """{'image': uint8 (local batch, r, r, 3) at the phase's resolution r, 'label': int32}."""
    p = phase.detail
    positions = pipeline.host_positions(images_shown, p.batch_size)
    return pipeline.examples(positions, resolution=p.resolution)

  def sampler(self, model, config) -> grids.StyleSampler:
    render = jax.jit(lambda params, ws, resolution, alpha: model.synthesize(
        params, ws, resolution, alpha), static_argnums=2)

    def render_phase(params, ws, phase, images_shown):
      alpha = grid_alpha(config, phase, images_shown)
      return render(params, ws, phase.detail.resolution,
                    None if alpha is None else jnp.float32(alpha))

    def label(phase, images_shown):
      alpha = grid_alpha(config, phase, images_shown)
      return f"StyleGAN {phase.label}" + (f", alpha {alpha:.3f}" if alpha is not None else "")

    return grids.StyleSampler(config, model.z_dim, model.num_ws, model.num_classes, model.map,
                              render_phase, label)

  def eval_generator(self, model, config, state, images_shown: int,
                     truncation: float | None) -> interface.EvalGenerator:
    last = max(images_shown - 1, 0)  # the last image shown, as the grids do
    p = schedule_of(config).phase_at(last)
    alpha = p.alpha_at(last)
    psi = truncation or 1.0  # config.eval.truncation: psi for StyleGAN (0: none)
    cutoff = config.sample.truncation_cutoff or None
    final = config.model.resolution
    described = (f", truncation psi {psi:g}" + (f" on the first {cutoff} w's" if cutoff else "")
                 if psi != 1 else ", no truncation")
    mixing = f", alpha {alpha:.3f}" if p.fading else ""
    upscaled = f", upscaled (nearest) to {final}x{final}" if p.resolution < final else ""
    return interface.EvalGenerator(
        fn=_eval_fn(model, p.resolution, p.fading, psi, cutoff),
        inputs=(state.ema_params, state.w_avg, jnp.float32(alpha)),
        key=("stylegan", p.resolution, p.fading, psi, cutoff),
        conditional=model.num_classes > 0,
        description=f"StyleGAN EMA generator at {p.resolution}x{p.resolution} {p.kind}{mixing}"
                    f"{upscaled}, random noise{described}")


FAMILY = StyleGANFamily()
