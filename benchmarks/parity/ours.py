"""Our BigGAN run as the parity harness drives it: config, state, jitted step, batches."""

import importlib.util

import jax
import numpy as np

from gan.families import registry
from gan.families.biggan.family import make_pipeline
from gan.families.biggan.sampling import sample_labels, sample_latents
from gan.families.biggan.state import build_gan, init_state
from gan.families.biggan.step import make_train_step
from gan.train.sharding import host_to_global, jit_train_step, make_mesh, replicated


def load_config(path: str, overrides: list[str]):
  """get_config() of the file at ``path`` with 'section.key=value' overrides applied."""
  spec = importlib.util.spec_from_file_location("parity_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  for item in overrides:
    key, value = item.split("=", 1)
    section, name = key.split(".", 1)
    old = config[section][name]
    config[section][name] = type(old)(value) if not isinstance(old, bool) else value == "true"
  return config


def step_latents(rng: jax.Array, config) -> list[tuple[np.ndarray, np.ndarray]]:
  """The (z, labels) our train step draws from ``rng``, in the order it uses them:
  d_steps x grad_accum_steps D micro-batches, then grad_accum_steps G micro-batches.

  Mirrors the key derivation of gan/families/biggan/step.py (train_step, d_update,
  g_update, generate); the pinned test tests/test_reference_parity.py fails if the
  two drift apart, because the reference's recorded numbers were made with these.
  """
  t, m = config.train, config.model
  accum, micro = t.grad_accum_steps, t.batch_size // t.grad_accum_steps
  d_key, g_key = jax.random.split(rng)
  keys = [k for d in jax.random.split(d_key, t.d_steps) for k in jax.random.split(d, accum)]
  keys += list(jax.random.split(g_key, accum))
  out = []
  for key in keys:
    kz, ky = jax.random.split(key)
    z = sample_latents(kz, (micro, m.z_dim))
    y = sample_labels(ky, micro, config.data.num_classes)
    out.append((np.asarray(z), np.asarray(y)))
  return out


def float_batch(pipeline, step: int):
  """(uint8 batch for our step, float [-1, 1] images (n, R, R, 3), labels (n,)) of ``step``."""
  batch = pipeline.batch(step)
  images = batch["image"].reshape(-1, *batch["image"].shape[-3:])
  floats = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
  return batch, floats, batch["label"].reshape(-1)


class Ours:
  """Our state, compiled train step and data pipeline for ``config``."""

  def __init__(self, config):
    registry.validate(config, jax.device_count(), 1, None)
    self.config = config
    self.mesh = make_mesh()
    self.gan = build_gan(config)
    self.state = jax.jit(lambda: init_state(self.gan, config.seed),
                         out_shardings=replicated(self.mesh))()
    self.train_step = jit_train_step(make_train_step(self.gan, config, self.mesh), self.mesh,
                                     example_axis=2)
    self.pipeline = make_pipeline(config)

  def batch(self, step: int):
    return float_batch(self.pipeline, step)

  def step(self, step: int, batch) -> tuple[dict, list]:
    """One update on ``batch``; returns (metrics, the latents it drew)."""
    rng = jax.random.fold_in(self.state.rng, step)
    latents = step_latents(rng, self.config)
    global_batch = host_to_global(self.mesh, batch, example_axis=2)
    self.state, metrics = self.train_step(self.state, global_batch, rng)
    return jax.device_get(metrics), latents
