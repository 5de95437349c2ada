"""StyleGAN2 as a family of the one training loop (gan/families/interface.py).

A run is one phase of ``train.num_steps`` iterations over ``batch_size`` reals
each (no growing). Lazy regularisation makes some steps different programs
(path length every pl_interval, R1 every r1_interval steps): the phase's
TrainStep names each step's variant, and the loop compiles each variant once.
"""

import functools
import math

import jax
import jax.numpy as jnp

from gan.data.pipeline import Pipeline
from gan.families import interface
from gan.families.stylegan import config2, grids, step2, styles


def make_pipeline(source, config, process_index: int = 0, process_count: int = 1) -> Pipeline:
  """Whole batches (one D main step each); each process reads its share."""
  t = config.train
  pipeline = Pipeline(source, seed=config.seed, micro_batch=t.batch_size,
                      random_flip=config.data.random_flip, process_index=process_index,
                      process_count=process_count)
  pipeline.require_examples(t.batch_size, f"config.train.batch_size={t.batch_size}")
  return pipeline


@functools.lru_cache(maxsize=None)
def _eval_fn(gan: step2.StyleGAN2, psi: float, cutoff: int | None):
  """(params, w_avg), rng, count -> (images, labels or None): one per truncation."""
  def generate(inputs, rng, count):
    params, w_avg = inputs
    ws_key, noise_key = jax.random.split(rng)
    ws, labels = styles.sampling_ws(lambda z, labels: gan.map(params, z, labels), ws_key, count,
                                    gan.z_dim, gan.num_classes, gan.num_ws, w_avg, psi, cutoff)
    return jnp.clip(gan.synthesize(params, ws, noise_key), -1, 1), labels
  return generate


class StyleGAN2Family(interface.Family):
  name = "stylegan2"
  defaults_name = "gan.families.stylegan.config2.stylegan2_defaults()"
  conditional = True  # optional: data.num_classes > 1 conditions G's mapping and D
  config_module = config2

  def defaults(self):
    return config2.stylegan2_defaults()

  def describe(self, config) -> str:
    m, t = config.model, config.train
    classes = (f", conditional on {config.data.num_classes} classes"
               if config.data.num_classes > 1 else "")
    bf16 = (f", top {m.num_bf16_res} resolutions in bfloat16 (clamp {m.conv_clamp:g})"
            if m.num_bf16_res else "")
    return (f"StyleGAN2 {m.resolution}x{m.resolution} ({m.g_architecture} G, "
            f"{m.d_architecture} D{bf16}), "
            f"{config2.num_ws(m.resolution)} w's{classes}; batch {t.batch_size}, R1 gamma "
            f"{t.r1_gamma:g} every {t.r1_interval}, path length {t.pl_weight:g} every "
            f"{t.pl_interval}, style mixing {t.style_mixing_prob:g}, EMA {t.ema_kimg:g} kimg")

  def make_pipeline(self, source, config, process_index: int, process_count: int) -> Pipeline:
    return make_pipeline(source, config, process_index, process_count)

  def build(self, config) -> step2.StyleGAN2:
    return step2.build(config)

  def init_state(self, model, config):
    return step2.init_state(model, config.seed)

  def _phase(self, config) -> interface.Phase:
    return interface.Phase(index=0, label="train", examples_per_step=config.train.batch_size)

  def phases(self, config):
    return [self._phase(config)]

  def phase_at(self, config, step_index: int, images_shown: int) -> interface.Phase:
    return self._phase(config)

  def images_shown(self, config, state) -> int:
    return int(state.step) * config.train.batch_size

  def finished(self, config, step_index: int, images_shown: int) -> bool:
    return step_index >= config.train.num_steps

  def total_steps(self, config) -> int:
    return config.train.num_steps

  def train_step(self, model, config, phase, mesh) -> interface.TrainStep:
    names = {step2.variant_at(config, s) for s in range(_period(config))}
    return interface.TrainStep(
        fn=step2.make_train_step(model, mesh), example_axis=0,
        variants={name: step2.make_train_step(model, mesh, name) for name in names if name},
        variant=lambda step: step2.variant_at(config, step))

  def host_batch(self, config, pipeline, phase, step_index: int, images_shown: int):
    """{'image': uint8 (local batch, R, R, 3), 'label': int32 (local batch,)}."""
    positions = pipeline.host_positions(images_shown, config.train.batch_size)
    examples = pipeline.examples(positions)
    return {"image": examples["image"], "label": examples["label"].astype("int32")}

  def sampler(self, model, config) -> grids.StyleSampler:
    render = jax.jit(lambda params, ws: model.synthesize(params, ws))
    return grids.StyleSampler(config, model.z_dim, model.num_ws, model.num_classes, model.map,
                              lambda params, ws, phase, images_shown: render(params, ws),
                              label=lambda phase, images_shown: "StyleGAN2")

  def eval_generator(self, model, config, state, images_shown: int,
                     truncation: float | None) -> interface.EvalGenerator:
    psi = truncation or 1.0  # config.eval.truncation: psi for StyleGAN (0: none)
    cutoff = config.sample.truncation_cutoff or None
    described = (f"truncation psi {psi:g}" + (f" on the first {cutoff} w's" if cutoff else "")
                 if psi != 1 else "no truncation")
    return interface.EvalGenerator(
        fn=_eval_fn(model, psi, cutoff), inputs=(state.ema_params, state.w_avg),
        key=("stylegan2", psi, cutoff), conditional=model.num_classes > 0,
        description=f"StyleGAN2 EMA generator, random noise, {described}"
                    + (", uniform classes" if model.num_classes else ""))


def _period(config) -> int:
  """Steps after which the pattern of lazy-regularisation variants repeats."""
  t = config.train
  return math.lcm(t.pl_interval, t.r1_interval)


FAMILY = StyleGAN2Family()
