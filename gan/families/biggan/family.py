"""BigGAN as a family of the one training loop (gan/families/interface.py).

A run is a single phase of ``train.num_steps`` steps; each step is
``d_steps`` D updates and one G update over ``d_steps x batch_size`` real
images, laid out (d_steps, grad_accum_steps, micro_batch) by the pipeline.
"""

import functools

import jax
import numpy as np

from gan.data.pipeline import Pipeline, create_source
from gan.data.shapes import CLASS_NAMES
from gan.families import interface
from gan.families.biggan import config as biggan_config
from gan.families.biggan import sampling, state, step, upgrades
from gan.images import make_grid


def make_pipeline(config, process_index: int = 0, process_count: int = 1,
                  source=None) -> Pipeline:
  """This process's share of each step's batch, laid out (d_steps, grad_accum_steps, micro).

  ``source`` defaults to the one ``config.data`` names (gan.data.pipeline.create_source).
  """
  t = config.train
  pipeline = Pipeline(create_source(config) if source is None else source, seed=config.seed,
                      d_steps=t.d_steps, grad_accum_steps=t.grad_accum_steps,
                      micro_batch=t.batch_size // t.grad_accum_steps,
                      process_index=process_index, process_count=process_count,
                      random_flip=config.data.random_flip)
  pipeline.require_examples(t.batch_size, f"config.train.batch_size={t.batch_size}")
  return pipeline


class BigGANSampler(interface.Sampler):
  """EMA-generator grids at fixed z and classes: one row per class shown."""

  def __init__(self, gan: state.GAN, config):
    s = config.sample
    self.gan, self.config, self.rows = gan, config, s.num_classes_shown
    classes = np.linspace(0, gan.num_classes - 1, s.num_classes_shown).round().astype(np.int32)
    self.labels = jax.numpy.asarray(np.repeat(classes, s.per_class))
    names = CLASS_NAMES if config.data.name == "shapes10" else None
    self.row_labels = [names[c] if names else f"class {c}" for c in classes]
    key = jax.random.PRNGKey(config.seed + 1)
    self.z = sampling.sample_latents(key, (len(self.labels), gan.z_dim), s.truncation or None)
    self.sample_fn = sampling.make_sample_fn(gan.generator)

  def grid(self, train_state, phase, step: int, images_shown: int) -> interface.Grid:
    variables = train_state.ema_vars
    s = self.config.sample
    if s.standing_stats_batches > 0:
      stats = sampling.standing_statistics(
          self.gan.generator, train_state.ema_params, variables,
          jax.random.PRNGKey(self.config.seed), s.standing_stats_batches, len(self.labels),
          self.gan.z_dim, self.gan.num_classes, s.truncation or None)
      variables = {**variables, "batch_stats": stats}
    images = self.sample_fn(train_state.ema_params, variables, self.z, self.labels)
    truncation = f", truncation {s.truncation}" if s.truncation else ""
    image = make_grid(np.asarray(jax.device_get(images)), rows=self.rows,
                      row_labels=self.row_labels,
                      caption=f"step {step}: EMA generator, one row per class{truncation}")
    return interface.Grid(image, f"step_{step:08d}.png", "samples_ema")


@functools.lru_cache(maxsize=None)
def _eval_fn(generator, z_dim: int, num_classes: int, truncation: float | None):
  """(params, variables), rng, count -> (images, uniform labels): one per truncation."""
  def generate(inputs, rng, count):
    params, variables = inputs
    kz, ky = jax.random.split(rng)
    z = sampling.sample_latents(kz, (count, z_dim), truncation)
    labels = sampling.sample_labels(ky, count, num_classes)
    return generator.apply({"params": params, **variables}, z, labels, train=False), labels
  return generate


def eval_generator(gan: state.GAN, config, train_state,
                   truncation: float | None) -> interface.EvalGenerator:
  """The EMA generator, with standing statistics if config.sample asks for them."""
  variables, batches = train_state.ema_vars, config.sample.standing_stats_batches
  standing = ""
  if batches > 0:
    stats = sampling.standing_statistics(
        gan.generator, train_state.ema_params, variables, jax.random.PRNGKey(config.seed),
        batches, config.eval.batch_size, gan.z_dim, gan.num_classes, truncation)
    variables = {**variables, "batch_stats": stats}
    standing = f", standing statistics over {batches} batches"
  described = f"truncation {truncation}" if truncation else "no truncation"
  return interface.EvalGenerator(
      fn=_eval_fn(gan.generator, gan.z_dim, gan.num_classes, truncation or None),
      inputs=(train_state.ema_params, variables), key=("biggan", truncation or None),
      conditional=gan.num_classes > 1,
      description=f"BigGAN EMA generator{standing}, {described}, uniform classes")


class BigGAN(interface.Family):
  name = "biggan"
  defaults_name = "gan.families.biggan.config.biggan_defaults()"
  conditional = True
  config_module = biggan_config

  def defaults(self):
    return biggan_config.biggan_defaults()

  def describe(self, config) -> str:
    m, t = config.model, config.train
    return (f"BigGAN {m.resolution}x{m.resolution}, ch {m.ch}, attention at "
            f"{m.attention or 'none'}; {t.d_steps} D step(s) per G step, batch {t.batch_size} "
            f"in {t.grad_accum_steps} micro-batch(es)")

  def make_pipeline(self, source, config, process_index: int, process_count: int) -> Pipeline:
    return make_pipeline(config, process_index, process_count, source)

  def build(self, config) -> state.GAN:
    return state.build_gan(config)

  def init_state(self, model, config):
    return state.init_state(model, config.seed)

  def _phase(self, config) -> interface.Phase:
    t = config.train
    return interface.Phase(index=0, label="train", examples_per_step=t.d_steps * t.batch_size)

  def phases(self, config):
    return [self._phase(config)]

  def phase_at(self, config, step_index: int, images_shown: int) -> interface.Phase:
    return self._phase(config)

  def images_shown(self, config, train_state) -> int:
    return int(train_state.step) * self._phase(config).examples_per_step

  def finished(self, config, step_index: int, images_shown: int) -> bool:
    return step_index >= config.train.num_steps

  def total_steps(self, config) -> int:
    return config.train.num_steps

  def train_step(self, model, config, phase, mesh) -> interface.TrainStep:
    return interface.TrainStep(fn=step.make_train_step(model, config, mesh), example_axis=2)

  def host_batch(self, config, pipeline, phase, step_index: int, images_shown: int):
    return pipeline.batch(step_index)  # image (d_steps, accum, local micro, R, R, 3), label

  def sampler(self, model, config) -> BigGANSampler:
    return BigGANSampler(model, config)

  def checkpoint_upgrades(self, model):
    return [upgrades.feature_space_embed_u()]

  def eval_generator(self, model, config, train_state, images_shown: int,
                     truncation: float | None) -> interface.EvalGenerator:
    return eval_generator(model, config, train_state, truncation)


FAMILY = BigGAN()
