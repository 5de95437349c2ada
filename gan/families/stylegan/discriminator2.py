"""StyleGAN2 discriminator (Karras et al. 2020), after NVlabs/stylegan2-ada-pytorch.

Layout NHWC, kernels HWIO, parameter names as the reference's (b{res}/conv0, b4/fc ...).

D  blocks R .. 8 ('resnet': fromRGB on the first block only; skip 1x1 conv down 2
   without bias, gain sqrt(0.5); conv0 3x3; conv1 3x3 down 2, gain sqrt(0.5)); epilogue
   at 4x4: minibatch stddev -> conv 3x3 -> fc -> out fc. The fc flattens NHWC
   (the reference flattens NCHW: a converter permutes its rows). With classes, a
   mapping network (z_dim 0) maps labels to cmap and the logit is
   sum(out * cmap) / sqrt(cmap_dim).
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.families.stylegan.mapping import MappingNetwork
from gan.families.stylegan.networks2 import (FILTER, SQRT_HALF, block_dtype, block_resolutions,
                                             num_channels)
from gan.families.stylegan.ops import (Conv2d, FullyConnected, downsample2d, fir_filter,
                                       minibatch_stddev)


class DiscriminatorBlock(nn.Module):
  """(x (N, R, R, tmp) or None, img (N, R, R, 3) or None) -> (x (N, R/2, R/2, out), img or None)."""
  in_channels: int  # 0: first block (reads the image)
  tmp_channels: int
  out_channels: int
  architecture: str = "resnet"
  resample_filter: Sequence[float] = FILTER
  conv_clamp: float | None = None
  dtype: jnp.dtype = jnp.float32  # x leaves in this dtype

  @nn.compact
  def __call__(self, x, img):
    if self.in_channels == 0 or self.architecture == "skip":
      y = Conv2d(self.tmp_channels, 1, activation="lrelu", conv_clamp=self.conv_clamp,
                 dtype=self.dtype, name="fromrgb")(img)
      x = y if x is None else x.astype(self.dtype) + y
      skip = self.architecture == "skip"
      img = downsample2d(img, fir_filter(self.resample_filter)) if skip else None
    conv = dict(activation="lrelu", conv_clamp=self.conv_clamp, dtype=self.dtype)
    conv0 = Conv2d(self.tmp_channels, 3, **conv, name="conv0")
    conv1 = Conv2d(self.out_channels, 3, down=2, resample_filter=self.resample_filter, **conv,
                   name="conv1")
    if self.architecture == "resnet":
      y = Conv2d(self.out_channels, 1, bias=False, down=2, resample_filter=self.resample_filter,
                 dtype=self.dtype, name="skip")(x, gain=SQRT_HALF)
      x = y + conv1(conv0(x), gain=SQRT_HALF)
    else:
      x = conv1(conv0(x))
    return x, img


class DiscriminatorEpilogue(nn.Module):
  """x (N, 4, 4, C), img, cmap (N, cmap_dim) or None -> logits (N, 1)."""
  in_channels: int
  cmap_dim: int = 0
  architecture: str = "resnet"
  mbstd_group_size: int | None = 4
  mbstd_num_channels: int = 1
  conv_clamp: float | None = None

  @nn.compact
  def __call__(self, x, img, cmap):
    x = x.astype(jnp.float32)  # the epilogue always runs in float32, as the reference's
    if self.architecture == "skip":
      x = x + Conv2d(self.in_channels, 1, activation="lrelu", name="fromrgb")(img)
    if self.mbstd_num_channels > 0:
      x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
    x = Conv2d(self.in_channels, 3, activation="lrelu", conv_clamp=self.conv_clamp,
               name="conv")(x)
    x = FullyConnected(self.in_channels, activation="lrelu", name="fc")(x.reshape(x.shape[0], -1))
    x = FullyConnected(self.cmap_dim or 1, name="out")(x)
    if self.cmap_dim > 0:
      x = jnp.sum(x * cmap, axis=1, keepdims=True) / math.sqrt(self.cmap_dim)
    return x


class Discriminator(nn.Module):
  """images (N, R, R, channels) float32, labels (N,) int32 or None -> logits (N,) float32.

  Params b{R} ... b8 (DiscriminatorBlock), b4 (epilogue), mapping (with classes).
  """
  resolution: int
  num_classes: int = 0
  architecture: str = "resnet"
  channel_base: int = 32768
  channel_max: int = 512
  mbstd_group_size: int | None = 4
  mbstd_num_channels: int = 1
  cmap_dim: int | None = None   # None: channels at 4x4
  conv_clamp: float | None = None
  mapping_layers: int = 8       # the reference D's MappingNetwork defaults
  mapping_lr_multiplier: float = 0.01
  num_bf16_res: int = 0  # the top this many resolutions compute in bfloat16
  channels: int = 3

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    if self.architecture not in ("orig", "skip", "resnet"):
      raise ValueError("architecture must be 'orig', 'skip' or 'resnet', "
                       f"got {self.architecture!r}")
    r = self.resolution
    if images.shape[1:] != (r, r, self.channels):
      raise ValueError(f"expected images (N, {r}, {r}, {self.channels}), got {images.shape}")
    nc = lambda res: num_channels(res, self.channel_base, self.channel_max)
    x, img = None, images.astype(jnp.float32)
    for res in reversed(block_resolutions(r)[1:]):
      x, img = DiscriminatorBlock(
          in_channels=0 if res == r else nc(res), tmp_channels=nc(res), out_channels=nc(res // 2),
          architecture=self.architecture, conv_clamp=self.conv_clamp,
          dtype=block_dtype(res, r, self.num_bf16_res), name=f"b{res}")(x, img)
    if x is None:  # resolution 4: the epilogue reads the image through its own fromRGB
      raise ValueError("the discriminator needs resolution >= 8")
    cmap, cmap_dim = None, 0
    if self.num_classes > 0:
      cmap_dim = self.cmap_dim or nc(4)
      cmap = MappingNetwork(0, cmap_dim, num_classes=self.num_classes,
                            num_layers=self.mapping_layers,
                            lr_multiplier=self.mapping_lr_multiplier, name="mapping")(None, labels)
    x = DiscriminatorEpilogue(nc(4), cmap_dim=cmap_dim, architecture=self.architecture,
                              mbstd_group_size=self.mbstd_group_size,
                              mbstd_num_channels=self.mbstd_num_channels,
                              conv_clamp=self.conv_clamp, name="b4")(x, img, cmap)
    return x[:, 0]
