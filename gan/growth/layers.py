"""Layers and stage helpers of the growing Karras et al. networks (ProGAN, StyleGAN v1).

Equalised learning rate: every kernel is stored N(0, 1) and multiplied at run time by
gain / sqrt(fan_in), so Adam's per-parameter steps act alike on every layer (Karras et
al. 2017, 4.1). Stages: the resolutions 4 .. max a network grows through, and the
fade-in lerp between the old and the new path.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

LRELU_SLOPE = 0.2
SQRT2 = math.sqrt(2.0)
Alpha = jax.Array | float | None  # fade-in weight of the new block; None: stable stage


def num_channels(resolution: int, fmap_base: int = 8192, fmap_max: int = 512,
                 fmap_decay: float = 1.0) -> int:
  """Feature maps at ``resolution`` (4x4 is stage 1): min(fmap_base / 2^(stage*decay), fmap_max)."""
  stage = int(math.log2(resolution)) - 1
  return min(int(fmap_base / 2.0 ** (stage * fmap_decay)), fmap_max)


def lrelu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, LRELU_SLOPE)


class EqualizedDense(nn.Module):
  """x (..., in) -> (..., features); kernel N(0, 1) scaled by gain / sqrt(in) at run time."""
  features: int
  gain: float = SQRT2

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    fan_in = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(1.0), (fan_in, self.features),
                        jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    return x @ (kernel * (self.gain / math.sqrt(fan_in))) + bias


def stage_resolutions(max_resolution: int) -> list[int]:
  """[4, 8, ..., max_resolution]; max_resolution must be a power of two >= 4."""
  if max_resolution < 4 or max_resolution & (max_resolution - 1):
    raise ValueError(f"max_resolution must be a power of two >= 4, got {max_resolution}")
  return [2 ** i for i in range(2, int(math.log2(max_resolution)) + 1)]


def check_stage(resolution: int, max_resolution: int, alpha: Alpha) -> None:
  if resolution not in stage_resolutions(max_resolution):
    raise ValueError(f"resolution must be a power of two in [4, {max_resolution}], "
                     f"got {resolution}")
  if alpha is not None and resolution < 8:
    raise ValueError("a fade-in (alpha not None) needs resolution >= 8: 4x4 is the first stage")


def lerp(old: jax.Array, new: jax.Array, alpha: Alpha) -> jax.Array:
  # Written as old + (new - old) * alpha so that alpha == 0 returns ``old`` bit-exactly.
  return old + (new - old) * jnp.asarray(alpha, jnp.float32)
