"""StyleGAN (v1)'s convolution layers: equalised-LR conv with the reference's fused
up/downscaling, the [1, 2, 1] blur, and the fixed noise maps (networks1.py uses them).

Facts checked in NVlabs/stylegan training/networks_stylegan.py: blur2d is the normalised
separable [1, 2, 1] with zero padding; upscale2d_conv2d (fused from 128x128) is a
stride-2 transposed conv with the 3x3 kernel padded to 4x4 and summed over its four
shifts; conv2d_downscale2d (fused from 128x128 inputs) is the same 4x4 kernel times 0.25
at stride 2.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.families.stylegan.ops import filter2d, fir_filter
from gan.growth.layers import SQRT2
from gan.growth.reals import downsample_2x, upsample_2x

CONST_NOISE_SEED = 0
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def blur(x: jax.Array, taps: Sequence[float] | None) -> jax.Array:
  """(N, H, W, C) -> (N, H, W, C): normalised separable low-pass, zero padding ('SAME')."""
  if not taps:
    return x
  return filter2d(x, fir_filter(taps))


def fused_kernel(kernel: jax.Array) -> jax.Array:
  """(3, 3, I, O) -> (4, 4, I, O): the sum of the kernel at its four one-pixel shifts."""
  if kernel.shape[:2] != (3, 3):
    raise ValueError(f"fused up/down-scaling needs a 3x3 kernel, got {kernel.shape[:2]}")
  padded = jnp.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))
  return padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]


def conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """(N, H, W, I), kernel (k, k, I, O) -> (N, H, W, O): stride 1, 'SAME' correlation."""
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=_DIMENSIONS)


def upscale_conv2d_fused(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """(N, H, W, I), kernel (3, 3, I, O) -> (N, 2H, 2W, O), as TF's conv2d_transpose.

  The reference's transposed conv adds x[i] * K4[a] to y[2i + a - 1] (K4 = fused_kernel).
  As a correlation of the 2x-dilated input that is the flipped K4 with padding 2.
  """
  k4 = fused_kernel(kernel)[::-1, ::-1]
  return jax.lax.conv_general_dilated(x, k4, (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                      dimension_numbers=_DIMENSIONS)


def conv2d_downscale_fused(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """(N, H, W, I), kernel (3, 3, I, O) -> (N, H/2, W/2, O): stride-2 conv, TF 'SAME' padding."""
  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"fused downscaling needs even sizes, got {x.shape}")
  k4 = fused_kernel(kernel) * 0.25
  return jax.lax.conv_general_dilated(x, k4, (2, 2), ((1, 1), (1, 1)),
                                      dimension_numbers=_DIMENSIONS)


class EqualizedConv2d(nn.Module):
  """x (N, H, W, in) -> (N, H', W', features); kernel N(0, 1) scaled by gain / sqrt(k*k*in).

  ``up``: nearest 2x upscale then conv (H' = 2H); ``down``: conv then 2x2 mean (H' = H/2).
  ``fused`` does either in one (transposed) stride-2 conv as the reference's fused_scale.
  """
  features: int
  kernel_size: int = 3
  gain: float = SQRT2
  use_bias: bool = True
  up: bool = False
  down: bool = False
  fused: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    k, in_channels = self.kernel_size, x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(1.0),
                        (k, k, in_channels, self.features), jnp.float32)
    kernel = kernel * (self.gain / math.sqrt(k * k * in_channels))
    if self.up and self.down:
      raise ValueError("EqualizedConv2d: up and down are exclusive")
    if self.up:
      y = upscale_conv2d_fused(x, kernel) if self.fused else conv2d(upsample_2x(x), kernel)
    elif self.down:
      y = conv2d_downscale_fused(x, kernel) if self.fused else downsample_2x(conv2d(x, kernel))
    else:
      y = conv2d(x, kernel)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    return y


def const_noise(layer_index: int, resolution: int) -> jax.Array:
  """The fixed noise map (1, R, R, 1) of synthesis layer ``layer_index`` (noise_mode 'const')."""
  key = jax.random.fold_in(jax.random.key(CONST_NOISE_SEED, impl="threefry2x32"), layer_index)
  return jax.random.normal(key, (1, resolution, resolution, 1), jnp.float32)
