"""StyleGAN2 generator (Karras et al. 2020), after NVlabs/stylegan2-ada-pytorch.

Layout NHWC, kernels HWIO; parameter names mirror the reference's module names
(mapping/fc0.., synthesis/b4/conv1/affine, D b{res}/conv0, b4/fc ...), so a
converter is a rename plus transposes. Channels at resolution R:
min(channel_base // R, channel_max).

G  mapping z -> w; synthesis blocks 4 .. R: a learned 4x4 constant (N(0, 1)) then
   per block [conv0 (up 2), conv1] modulated 3x3 convs (affine w -> styles, bias
   init 1; weight demodulation; per-pixel noise times a learned scalar, init 0;
   lrelu gain sqrt(2)) and a toRGB (1x1 modulated, not demodulated, styles scaled
   by 1 / sqrt(in)). 'skip': images summed over blocks, each upsampled with the
   [1,3,3,1] FIR. Output linear (no tanh), float32.
   ws (N, num_ws, w_dim): block b reads num_conv + num_torgb consecutive ws starting
   after the previous blocks' convs, so a toRGB shares its w with the next block's
   first conv (num_ws = 2 log2(R) - 2: 18 at 1024).
The discriminator is in discriminator2.py.

Noise: noise_mode 'random' draws from the 'noise' rng collection
(``apply(..., rngs={'noise': key})``); 'const' uses a fixed per-layer map derived
from CONST_NOISE_KEY (no state); 'none' adds nothing.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.families.stylegan.mapping import MappingNetwork
from gan.families.stylegan.ops import (Conv2d, FullyConnected, bias_act, fir_filter,
                                       modulated_conv2d, upsample2d)

CONST_NOISE_KEY = 0x5717E2  # seeds the 'const' noise maps; layer i uses fold_in(key, i)
SQRT_HALF = math.sqrt(0.5)
FILTER = (1, 3, 3, 1)


def num_channels(resolution: int, channel_base: int = 32768, channel_max: int = 512) -> int:
  return min(channel_base // resolution, channel_max)


def block_resolutions(resolution: int) -> list[int]:
  """[4, 8, ..., resolution]; resolution must be a power of two >= 4."""
  if resolution < 4 or resolution & (resolution - 1):
    raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
  return [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]


def num_ws(resolution: int) -> int:
  """The reference's count: every block's convs (1 at 4x4, else 2) plus the last toRGB."""
  return 2 * len(block_resolutions(resolution)) - 1 + 1


def block_dtype(res: int, resolution: int, num_bf16_res: int):
  """bfloat16 for the top ``num_bf16_res`` resolutions (never below 8x8), else float32.

  The reference's rule for its float16 blocks: res >= max(2 ** (log2 R + 1 - n), 8).
  """
  if num_bf16_res <= 0:
    return jnp.float32
  return jnp.bfloat16 if res >= max(2 ** (resolution.bit_length() - num_bf16_res), 8) \
      else jnp.float32


def const_noise(resolution: int, seed: int) -> jax.Array:
  """(R, R, 1) N(0, 1), fixed: the stateless stand-in for the reference's noise_const buffer."""
  key = jax.random.fold_in(jax.random.key(CONST_NOISE_KEY, impl="threefry2x32"), seed)
  return jax.random.normal(key, (resolution, resolution, 1), jnp.float32)


class SynthesisLayer(nn.Module):
  """x (N, R/up, R/up, Cin), w (N, w_dim) -> (N, R, R, features); modulated conv + noise + bias_act.

  Params: affine (FullyConnected, bias 1), weight (k, k, Cin, features) N(0, 1),
  noise_strength () 0, bias (features,) 0.
  """
  features: int
  resolution: int
  kernel_size: int = 3
  up: int = 1
  use_noise: bool = True
  activation: str = "lrelu"
  resample_filter: Sequence[float] = FILTER
  conv_clamp: float | None = None
  noise_seed: int = 0
  dtype: jnp.dtype = jnp.float32  # compute type; params stay float32

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, noise_mode: str = "random",
               fused_modconv: bool = False, gain: float = 1.0) -> jax.Array:
    if noise_mode not in ("random", "const", "none"):
      raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
    k, in_channels = self.kernel_size, x.shape[-1]
    styles = FullyConnected(in_channels, bias_init=1.0, name="affine")(w)
    weight = self.param("weight", nn.initializers.normal(1.0),
                        (k, k, in_channels, self.features), jnp.float32)
    noise = None
    if self.use_noise:
      strength = self.param("noise_strength", nn.initializers.zeros, (), jnp.float32)
      r = self.resolution
      if noise_mode == "random":
        noise = jax.random.normal(self.make_rng("noise"), (x.shape[0], r, r, 1)) * strength
      elif noise_mode == "const":
        noise = const_noise(r, self.noise_seed) * strength
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    f = fir_filter(self.resample_filter) if self.up > 1 else None
    x = modulated_conv2d(x, weight, styles, noise=noise, up=self.up, padding=k // 2,
                         resample_filter=f, fused=fused_modconv, dtype=self.dtype)
    clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
    return bias_act(x, bias, act=self.activation, gain=math.sqrt(2.0) * gain, clamp=clamp)


class ToRGB(nn.Module):
  """x (N, R, R, Cin), w (N, w_dim) -> (N, R, R, channels); modulated, not demodulated."""
  channels: int = 3
  kernel_size: int = 1
  conv_clamp: float | None = None
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, fused_modconv: bool = False) -> jax.Array:
    k, in_channels = self.kernel_size, x.shape[-1]
    styles = FullyConnected(in_channels, bias_init=1.0, name="affine")(w)
    styles = styles / math.sqrt(in_channels * k * k)
    weight = self.param("weight", nn.initializers.normal(1.0),
                        (k, k, in_channels, self.channels), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.channels,), jnp.float32)
    x = modulated_conv2d(x, weight, styles, demodulate=False, fused=fused_modconv,
                         dtype=self.dtype)
    return bias_act(x, bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
  """(x (N, R/2, R/2, in_channels) or None, img or None, ws (N, num_conv + num_torgb, w_dim))
  -> (x (N, R, R, features), img (N, R, R, img_channels) or None).

  in_channels 0 marks the first (4x4) block: its input is the learned ``const``.
  """
  in_channels: int
  features: int
  resolution: int
  img_channels: int = 3
  is_last: bool = False
  architecture: str = "skip"
  resample_filter: Sequence[float] = FILTER
  conv_clamp: float | None = None
  dtype: jnp.dtype = jnp.float32  # x in this dtype; img always float32

  @property
  def num_conv(self) -> int:
    return 1 if self.in_channels == 0 else 2

  @property
  def num_torgb(self) -> int:
    return 1 if self.is_last or self.architecture == "skip" else 0

  @nn.compact
  def __call__(self, x, img, ws: jax.Array, noise_mode: str = "random",
               fused_modconv: bool = False):
    if self.architecture not in ("orig", "skip", "resnet"):
      raise ValueError("architecture must be 'orig', 'skip' or 'resnet', "
                       f"got {self.architecture!r}")
    if ws.shape[1] != self.num_conv + self.num_torgb:
      raise ValueError(f"block {self.resolution} takes {self.num_conv + self.num_torgb} ws, "
                       f"got {ws.shape}")
    seed = 2 * int(math.log2(self.resolution))  # distinct const noise per layer
    layer = dict(features=self.features, resolution=self.resolution,
                 resample_filter=self.resample_filter, conv_clamp=self.conv_clamp,
                 dtype=self.dtype)
    call = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)
    if self.in_channels == 0:
      const = self.param("const", nn.initializers.normal(1.0),
                         (self.resolution, self.resolution, self.features), jnp.float32)
      x = jnp.broadcast_to(const.astype(self.dtype), (ws.shape[0], *const.shape))
      x = SynthesisLayer(**layer, noise_seed=seed + 1, name="conv1")(x, ws[:, 0], **call)
    else:
      if x.shape[1:] != (self.resolution // 2, self.resolution // 2, self.in_channels):
        raise ValueError(f"block {self.resolution} expects x (N, {self.resolution // 2}, "
                         f"{self.resolution // 2}, {self.in_channels}), got {x.shape}")
      x = x.astype(self.dtype)
      conv0 = SynthesisLayer(**layer, up=2, noise_seed=seed, name="conv0")
      conv1 = SynthesisLayer(**layer, noise_seed=seed + 1, name="conv1")
      if self.architecture == "resnet":
        y = Conv2d(self.features, 1, bias=False, up=2, resample_filter=self.resample_filter,
                   dtype=self.dtype, name="skip")(x, gain=SQRT_HALF)
        x = conv1(conv0(x, ws[:, 0], **call), ws[:, 1], gain=SQRT_HALF, **call)
        x = y + x
      else:
        x = conv1(conv0(x, ws[:, 0], **call), ws[:, 1], **call)
    if img is not None:
      img = upsample2d(img, fir_filter(self.resample_filter))
    if self.num_torgb:
      y = ToRGB(self.img_channels, conv_clamp=self.conv_clamp, dtype=self.dtype, name="torgb")(
          x, ws[:, self.num_conv], fused_modconv=fused_modconv).astype(jnp.float32)
      img = y if img is None else img + y
    return x, img


class SynthesisNetwork(nn.Module):
  """ws (N, num_ws, w_dim) -> images (N, R, R, channels) float32. Params b4, b8, ..., b{R}."""
  w_dim: int
  resolution: int
  channels: int = 3
  channel_base: int = 32768
  channel_max: int = 512
  conv_clamp: float | None = None
  architecture: str = "skip"
  num_bf16_res: int = 0  # the top this many resolutions compute in bfloat16

  @property
  def num_ws(self) -> int:
    return num_ws(self.resolution)

  @staticmethod
  def count_ws(resolution: int) -> int:
    """num_ws without an instance: 2 log2(resolution) - 2."""
    return num_ws(resolution)

  @nn.compact
  def __call__(self, ws: jax.Array, noise_mode: str = "random",
               fused_modconv: bool = False) -> jax.Array:
    if ws.shape[1:] != (self.num_ws, self.w_dim):
      raise ValueError(f"expected ws (N, {self.num_ws}, {self.w_dim}), got {ws.shape}")
    ws = ws.astype(jnp.float32)
    x = img = None
    w_idx = 0
    for res in block_resolutions(self.resolution):
      block = SynthesisBlock(
          in_channels=0 if res == 4 else self._nc(res // 2), features=self._nc(res),
          resolution=res, img_channels=self.channels, is_last=res == self.resolution,
          architecture=self.architecture, conv_clamp=self.conv_clamp,
          dtype=block_dtype(res, self.resolution, self.num_bf16_res), name=f"b{res}")
      x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + block.num_torgb],
                     noise_mode=noise_mode, fused_modconv=fused_modconv)
      w_idx += block.num_conv
    return img

  def _nc(self, res: int) -> int:
    return num_channels(res, self.channel_base, self.channel_max)


class Generator(nn.Module):
  """z (N, z_dim), labels (N,) int32 or None -> images (N, R, R, channels) float32.

  ``map`` gives w, ``synthesize`` renders ws (N, num_ws, w_dim); the caller owns
  w_avg, truncation and style mixing. ``__call__`` (map, broadcast, synthesize)
  touches every parameter, so it serves for init.
  """
  z_dim: int
  w_dim: int
  resolution: int
  num_classes: int = 0
  mapping_layers: int = 8
  mapping_lr_multiplier: float = 0.01
  channel_base: int = 32768
  channel_max: int = 512
  conv_clamp: float | None = None
  architecture: str = "skip"
  num_bf16_res: int = 0
  channels: int = 3

  @property
  def num_ws(self) -> int:
    return num_ws(self.resolution)

  @staticmethod
  def count_ws(resolution: int) -> int:
    """num_ws without an instance: 2 log2(resolution) - 2."""
    return num_ws(resolution)

  def setup(self):
    self.mapping = MappingNetwork(self.z_dim, self.w_dim, num_classes=self.num_classes,
                                  num_layers=self.mapping_layers,
                                  lr_multiplier=self.mapping_lr_multiplier)
    self.synthesis = SynthesisNetwork(self.w_dim, self.resolution, channels=self.channels,
                                      channel_base=self.channel_base,
                                      channel_max=self.channel_max,
                                      conv_clamp=self.conv_clamp, architecture=self.architecture,
                                      num_bf16_res=self.num_bf16_res)

  def map(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """-> w (N, w_dim)."""
    return self.mapping(z, labels)

  def synthesize(self, ws: jax.Array, noise_mode: str = "random",
                 fused_modconv: bool = False) -> jax.Array:
    return self.synthesis(ws, noise_mode=noise_mode, fused_modconv=fused_modconv)

  def __call__(self, z: jax.Array, labels: jax.Array | None = None,
               noise_mode: str = "random", fused_modconv: bool = False) -> jax.Array:
    w = self.map(z, labels)
    ws = jnp.broadcast_to(w[:, None, :], (w.shape[0], self.num_ws, self.w_dim))
    return self.synthesize(ws, noise_mode=noise_mode, fused_modconv=fused_modconv)
