"""BigGAN training state: every piece of a run's state in one pytree."""

import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan.families.biggan.architectures import parse_attention
from gan.families.biggan.model import Discriminator, Generator
from gan.families.interface import init_health

Pytree = Any

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@flax.struct.dataclass
class TrainState:
  """step counts completed G updates; rng is a raw uint32[2] key.

  g_vars holds G's ``batch_stats`` and ``spectral`` collections, d_vars D's
  ``spectral``. ema_params / ema_vars are the exponential moving average of G's
  parameters and of its BN statistics and spectral vectors. health counts
  skipped non-finite updates (gan/train/health.py).
  """
  step: jax.Array
  rng: jax.Array
  g_params: Pytree
  g_vars: Pytree
  d_params: Pytree
  d_vars: Pytree
  g_opt_state: Pytree
  d_opt_state: Pytree
  ema_params: Pytree
  ema_vars: Pytree
  health: Pytree


@dataclasses.dataclass(frozen=True)
class GAN:
  """The static (non-pytree) half of a run: modules and optimisers."""
  generator: Generator
  discriminator: Discriminator
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  z_dim: int
  num_classes: int
  resolution: int


def build_gan(config: ml_collections.ConfigDict) -> GAN:
  m, t = config.model, config.train
  dtype = COMPUTE_DTYPES[m.compute_dtype]
  attention = parse_attention(m.attention)
  generator = Generator(resolution=m.resolution, num_classes=config.data.num_classes, ch=m.ch,
                        z_dim=m.z_dim, shared_dim=m.shared_dim, attention=attention,
                        sn_eps=m.sn_eps, bn_eps=m.bn_eps, dtype=dtype)
  discriminator = Discriminator(resolution=m.resolution, num_classes=config.data.num_classes,
                                ch=m.ch, attention=attention, sn_eps=m.sn_eps, dtype=dtype)
  adam = lambda lr: optax.adam(lr, b1=t.adam_b1, b2=t.adam_b2, eps=t.adam_eps)
  return GAN(generator, discriminator, g_tx=adam(t.g_lr), d_tx=adam(t.d_lr), z_dim=m.z_dim,
             num_classes=config.data.num_classes, resolution=m.resolution)


def split_params(variables: dict) -> tuple[Pytree, dict]:
  """{'params': p, **rest} -> (p, rest)."""
  return variables["params"], {k: v for k, v in variables.items() if k != "params"}


def init_state(gan: GAN, seed: int) -> TrainState:
  """Fresh state. Deterministic in ``seed``; shapes need no real data."""
  rng = jax.random.PRNGKey(seed)
  g_key, d_key, run_key = jax.random.split(rng, 3)
  z = jnp.zeros((2, gan.z_dim), jnp.float32)
  labels = jnp.zeros((2,), jnp.int32)
  images = jnp.zeros((2, gan.resolution, gan.resolution, 3), jnp.float32)
  g_vars = gan.generator.init(g_key, z, labels, train=True)
  d_vars = gan.discriminator.init(d_key, images, labels, train=True)
  g_params, g_rest = split_params(g_vars)
  d_params, d_rest = split_params(d_vars)
  return TrainState(
      step=jnp.zeros((), jnp.int32), rng=run_key,
      g_params=g_params, g_vars=g_rest, d_params=d_params, d_vars=d_rest,
      g_opt_state=gan.g_tx.init(g_params), d_opt_state=gan.d_tx.init(d_params),
      ema_params=g_params, ema_vars=g_rest, health=init_health())
