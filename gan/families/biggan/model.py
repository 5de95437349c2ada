"""BigGAN generator and projection discriminator (Brock et al. 2018).

Pure linen modules. Variable collections:
  params       weights (orthogonal init), CBN/BN affine, attention gamma;
  batch_stats  BN running mean/var (G only);
  spectral     spectral-norm power-iteration vectors u (G and D).
``train=True`` uses batch statistics and runs one power iteration per layer
(make ``batch_stats``/``spectral`` mutable); ``train=False`` uses the stored
statistics and changes nothing.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.families.biggan.architectures import get_architecture
from gan.families.biggan.attention import SelfAttention
from gan.families.biggan.normalization import BatchNorm, ConditionalBatchNorm
from gan.families.biggan.spectral_norm import SNConv, SNDense, SNEmbed, orthogonal_init

Dtype = Any


def upsample_2x(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling.  (N, H, W, C) -> (N, 2H, 2W, C)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool_2x(x: jax.Array) -> jax.Array:
  """2x2 average pooling.  (N, H, W, C) -> (N, H/2, W/2, C)."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class GBlock(nn.Module):
  """CBN -> ReLU -> up -> conv3x3 -> CBN -> ReLU -> conv3x3, plus up -> conv1x1 shortcut."""
  features: int
  sn_eps: float = 1e-6
  bn_eps: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array, train: bool) -> jax.Array:
    cbn = lambda name: ConditionalBatchNorm(eps=self.bn_eps, sn_eps=self.sn_eps, dtype=self.dtype,
                                            name=name)
    conv = lambda k, name: SNConv(self.features, kernel_size=k, eps=self.sn_eps, dtype=self.dtype,
                                  name=name)
    h = upsample_2x(nn.relu(cbn("bn1")(x, cond, train)))
    h = conv(3, "conv1")(h, train)
    h = conv(3, "conv2")(nn.relu(cbn("bn2")(h, cond, train)), train)
    # Every G block upsamples, so the shortcut always has a learnable 1x1 conv.
    shortcut = conv(1, "conv_sc")(upsample_2x(x.astype(self.dtype)), train)
    return h + shortcut


class DBlock(nn.Module):
  """'Wide' residual D block: [ReLU] -> conv3x3 -> ReLU -> conv3x3 -> [pool], plus shortcut.

  The first block has no pre-activation (its input is the image) and pools
  before its 1x1 shortcut conv; later blocks convolve then pool, as in the
  reference code.
  """
  features: int
  downsample: bool
  preactivation: bool
  sn_eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = lambda k, name: SNConv(self.features, kernel_size=k, eps=self.sn_eps, dtype=self.dtype,
                                  name=name)
    x = x.astype(self.dtype)
    h = nn.relu(x) if self.preactivation else x
    h = conv(3, "conv2")(nn.relu(conv(3, "conv1")(h, train)), train)
    if self.downsample:
      h = avg_pool_2x(h)
    shortcut = x
    learnable_sc = x.shape[-1] != self.features or self.downsample
    if self.preactivation:
      if learnable_sc:
        shortcut = conv(1, "conv_sc")(shortcut, train)
      if self.downsample:
        shortcut = avg_pool_2x(shortcut)
    else:
      if self.downsample:
        shortcut = avg_pool_2x(shortcut)
      if learnable_sc:
        shortcut = conv(1, "conv_sc")(shortcut, train)
    return h + shortcut


class Generator(nn.Module):
  """z (N, z_dim), labels (N,) int -> images (N, R, R, 3) in [-1, 1].

  Hierarchical z: z is split into (num_blocks + 1) equal chunks; chunk 0 feeds
  the first linear layer, and block i's conditional BNs see
  concat(shared_embedding(label), chunk i + 1).
  """
  resolution: int
  num_classes: int
  ch: int = 96
  z_dim: int = 120
  shared_dim: int = 128
  attention: tuple[int, ...] = (64,)
  sn_eps: float = 1e-6
  bn_eps: float = 1e-5
  dtype: Dtype = jnp.float32

  @property
  def num_z_chunks(self) -> int:
    return get_architecture(self.resolution).num_g_blocks + 1

  @nn.compact
  def __call__(self, z: jax.Array, labels: jax.Array, train: bool) -> jax.Array:
    arch = get_architecture(self.resolution)
    chunks = jnp.split(z, self.num_z_chunks, axis=-1)
    shared = nn.Embed(self.num_classes, self.shared_dim, embedding_init=orthogonal_init,
                      name="shared")(labels)
    h = SNDense(4 * 4 * arch.g_channels[0] * self.ch, eps=self.sn_eps, dtype=self.dtype,
                name="linear")(chunks[0], train)
    h = h.reshape(z.shape[0], 4, 4, arch.g_channels[0] * self.ch)
    for i, (mult, res) in enumerate(zip(arch.g_channels[1:], arch.g_resolutions())):
      cond = jnp.concatenate([shared, chunks[i + 1]], axis=-1)
      h = GBlock(mult * self.ch, sn_eps=self.sn_eps, bn_eps=self.bn_eps, dtype=self.dtype,
                 name=f"block{i}")(h, cond, train)
      if res in self.attention:
        h = SelfAttention(sn_eps=self.sn_eps, dtype=self.dtype, name=f"attention{i}")(h, train)
    h = nn.relu(BatchNorm(eps=self.bn_eps, dtype=self.dtype, name="out_bn")(h, train))
    h = SNConv(3, kernel_size=3, eps=self.sn_eps, dtype=self.dtype, name="out_conv")(h, train)
    return jnp.tanh(h.astype(jnp.float32))


class Discriminator(nn.Module):
  """images (N, R, R, 3), labels (N,) int -> logits (N,) float32.

  Projection discriminator: logit = w^T h + <embed(label), h>, with h the
  globally SUM-pooled ReLU features of the last block.
  """
  resolution: int
  num_classes: int
  ch: int = 96
  attention: tuple[int, ...] = (64,)
  sn_eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, labels: jax.Array, train: bool) -> jax.Array:
    arch = get_architecture(self.resolution)
    h = images
    for i, (mult, down, res) in enumerate(zip(
        arch.d_channels, arch.d_down, arch.d_resolutions(self.resolution))):
      h = DBlock(mult * self.ch, downsample=down, preactivation=i > 0, sn_eps=self.sn_eps,
                 dtype=self.dtype, name=f"block{i}")(h, train)
      if res in self.attention:
        h = SelfAttention(sn_eps=self.sn_eps, dtype=self.dtype, name=f"attention{i}")(h, train)
    h = jnp.sum(nn.relu(h).astype(jnp.float32), axis=(1, 2))
    logits = SNDense(1, eps=self.sn_eps, name="linear")(h, train)[:, 0]
    embed = SNEmbed(self.num_classes, h.shape[-1], eps=self.sn_eps, name="embed")(labels, train)
    return logits + jnp.sum(embed * h, axis=-1)
