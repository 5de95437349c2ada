"""ProGAN generator and discriminator (Karras et al. 2017), grown 4x4 -> max_resolution.

Architecture (nf(R) = num_channels(R), lrelu slope 0.2):
  G  4x4: pixel_norm(z) -> dense 4*4*nf(4) -> lrelu -> PN -> conv3x3 -> lrelu -> PN;
     R >= 8: upsample 2x (nearest) -> [conv3x3 nf(R) -> lrelu -> PN] x 2;
     to_rgb_R: linear conv1x1 to 3 channels (no tanh).
  D  from_rgb_R: conv1x1 nf(R) -> lrelu;
     R >= 8: conv3x3 nf(R) -> lrelu -> conv3x3 nf(R/2) -> lrelu -> 2x2 average pool;
     4x4: minibatch stddev -> conv3x3 nf(4) -> lrelu -> dense nf(4) -> lrelu -> dense 1.
While block R fades in with weight alpha, G outputs
lerp(upsample(to_rgb_{R/2}(h_{R/2})), to_rgb_R(h_R), alpha) and D mixes
from_rgb_{R/2}(avgpool(x)) into block_R(from_rgb_R(x)) the same way.

Equalized learning rate: every kernel is stored N(0, 1) and multiplied at run
time by gain / sqrt(fan_in); gain is sqrt(2) everywhere except G's first dense
(sqrt(2)/4), to_rgb and D's last dense (1). Biases start at zero.

Official-code conventions followed: the wscale is applied to the weights (not
the outputs), pixel norm uses eps 1e-8 over channels, the minibatch-stddev group
of example n is n % (N / G) (tf.reshape(x, [G, -1, ...])) and its statistic is
one averaged feature map. One parameter tree holds every resolution's layers;
a forward pass at resolution R uses only the layers up to R.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.growth.layers import SQRT2, Alpha, EqualizedDense, lrelu, num_channels  # noqa: F401
from gan.growth.layers import check_stage, lerp, stage_resolutions
from gan.growth.reals import downsample_2x, upsample_2x



def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """(..., C) -> (..., C) with unit root-mean-square over the channel axis."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def minibatch_stddev(x: jax.Array, group_size: int = 4) -> jax.Array:
  """(N, H, W, C) -> (N, H, W, C + 1): appends each group's mean feature stddev.

  Examples are grouped as in the official reshape to (G, M, H, W, C), M = N / G,
  so example n belongs to group n % M.
  """
  n, height, width, _ = x.shape
  group = min(group_size, n)
  if n % group:
    raise ValueError(f"minibatch_stddev: batch size {n} is not divisible by the group size "
                     f"{group} (min(group_size={group_size}, batch))")
  x = x.astype(jnp.float32)
  grouped = x.reshape(group, n // group, *x.shape[1:])                 # (G, M, H, W, C)
  centered = grouped - grouped.mean(axis=0, keepdims=True)
  stddev = jnp.sqrt(jnp.mean(jnp.square(centered), axis=0) + 1e-8)     # (M, H, W, C)
  per_group = stddev.mean(axis=(1, 2, 3))                              # (M,)
  feature = jnp.tile(per_group, group)                                 # (N,): n -> n % M
  feature = jnp.broadcast_to(feature[:, None, None, None], (n, height, width, 1))
  return jnp.concatenate([x, feature], axis=-1)


class EqualizedConv(nn.Module):
  """x (N, H, W, in) -> (N, H, W, features), 'SAME' padding, stride 1.

  Kernel (k, k, in, features) N(0, 1), scaled by gain / sqrt(k * k * in) at run time.
  """
  features: int
  kernel_size: int = 3
  gain: float = SQRT2

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    k, in_channels = self.kernel_size, x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(1.0),
                        (k, k, in_channels, self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    scale = self.gain / math.sqrt(k * k * in_channels)
    y = jax.lax.conv_general_dilated(x, kernel * scale, window_strides=(1, 1), padding="SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


class GeneratorFirstBlock(nn.Module):
  """z (N, latent) -> features (N, 4, 4, features)."""
  features: int
  normalize_latents: bool = True

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    z = z.astype(jnp.float32)
    if self.normalize_latents:
      z = pixel_norm(z)
    # Gain sqrt(2)/4 as in the official code, which matches the original Theano
    # layer: a 4x4 conv on the 1x1 latent, whose fan_in counted 4*4*latent_dim.
    h = EqualizedDense(4 * 4 * self.features, gain=SQRT2 / 4, name="dense")(z)
    h = pixel_norm(lrelu(h.reshape(z.shape[0], 4, 4, self.features)))
    return pixel_norm(lrelu(EqualizedConv(self.features, 3, name="conv")(h)))


class GeneratorBlock(nn.Module):
  """(N, H, W, C) -> (N, 2H, 2W, features): upsample, then two conv3x3 -> lrelu -> PN."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = upsample_2x(x)
    h = pixel_norm(lrelu(EqualizedConv(self.features, 3, name="conv1")(h)))
    return pixel_norm(lrelu(EqualizedConv(self.features, 3, name="conv2")(h)))


class DiscriminatorBlock(nn.Module):
  """(N, H, W, C) -> (N, H/2, W/2, out_features): conv3x3 -> lrelu -> conv3x3 -> lrelu -> pool."""
  features: int
  out_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = lrelu(EqualizedConv(self.features, 3, name="conv1")(x))
    h = lrelu(EqualizedConv(self.out_features, 3, name="conv2")(h))
    return downsample_2x(h)


class DiscriminatorFinalBlock(nn.Module):
  """(N, 4, 4, C) -> scores (N,) float32."""
  features: int
  mbstd_group_size: int = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.astype(jnp.float32)
    if self.mbstd_group_size > 1:
      h = minibatch_stddev(h, self.mbstd_group_size)
    h = lrelu(EqualizedConv(self.features, 3, name="conv")(h))
    h = lrelu(EqualizedDense(self.features, name="dense")(h.reshape(h.shape[0], -1)))
    return EqualizedDense(1, gain=1.0, name="score")(h)[:, 0]


class Generator(nn.Module):
  """z (N, latent_dim) -> images (N, R, R, 3) float32 (linear, no tanh) at a chosen stage R.

  Parameters: block_4 (dense, conv), block_8 ... block_{max} (conv1, conv2), to_rgb_4 ...
  to_rgb_{max}. Create them all with ``init(rng, z, method=Generator.init_all)``.
  """
  max_resolution: int
  latent_dim: int = 512
  fmap_base: int = 8192
  fmap_max: int = 512
  fmap_decay: float = 1.0
  normalize_latents: bool = True

  def nf(self, resolution: int) -> int:
    return num_channels(resolution, self.fmap_base, self.fmap_max, self.fmap_decay)

  def setup(self):
    resolutions = stage_resolutions(self.max_resolution)
    # Dicts keyed by resolution: Flax names the layers block_4, block_8, to_rgb_4, ...
    self.block = {r: (GeneratorFirstBlock(self.nf(4), self.normalize_latents) if r == 4
                      else GeneratorBlock(self.nf(r))) for r in resolutions}
    self.to_rgb = {r: EqualizedConv(3, kernel_size=1, gain=1.0) for r in resolutions}

  def _features(self, z: jax.Array, resolution: int) -> jax.Array:
    """(N, latent_dim) -> (N, resolution, resolution, nf(resolution)), blocks 4 .. resolution."""
    h = self.block[4](z)
    for r in stage_resolutions(resolution)[1:]:
      h = self.block[r](h)
    return h

  def __call__(self, z: jax.Array, resolution: int, alpha: Alpha = None) -> jax.Array:
    """Stable stage when ``alpha`` is None, else fade-in of block ``resolution`` (>= 8)."""
    check_stage(resolution, self.max_resolution, alpha)
    if alpha is None:
      return self.to_rgb[resolution](self._features(z, resolution))
    coarse = self._features(z, resolution // 2)
    old_rgb = upsample_2x(self.to_rgb[resolution // 2](coarse))
    new_rgb = self.to_rgb[resolution](self.block[resolution](coarse))
    return lerp(old_rgb, new_rgb, alpha)

  def init_all(self, z: jax.Array) -> jax.Array:
    """Touches every block and every to_rgb; returns the max-resolution images."""
    h = self.block[4](z)
    images = self.to_rgb[4](h)
    for r in stage_resolutions(self.max_resolution)[1:]:
      h = self.block[r](h)
      images = self.to_rgb[r](h)
    return images


class Discriminator(nn.Module):
  """images (N, R, R, 3) -> scores (N,) float32 at a chosen stage R.

  Parameters: from_rgb_4 ... from_rgb_{max}, block_8 ... block_{max} (conv1, conv2) and
  block_4 (conv, dense, score). Create them all with
  ``init(rng, x, method=Discriminator.init_all)``.
  """
  max_resolution: int
  fmap_base: int = 8192
  fmap_max: int = 512
  fmap_decay: float = 1.0
  mbstd_group_size: int = 4

  def nf(self, resolution: int) -> int:
    return num_channels(resolution, self.fmap_base, self.fmap_max, self.fmap_decay)

  def setup(self):
    resolutions = stage_resolutions(self.max_resolution)
    self.from_rgb = {r: EqualizedConv(self.nf(r), kernel_size=1) for r in resolutions}
    self.block = {r: (DiscriminatorFinalBlock(self.nf(4), self.mbstd_group_size) if r == 4
                      else DiscriminatorBlock(self.nf(r), self.nf(r // 2))) for r in resolutions}

  def _from_rgb(self, x: jax.Array, resolution: int) -> jax.Array:
    return lrelu(self.from_rgb[resolution](x))

  def _scores(self, h: jax.Array, resolution: int) -> jax.Array:
    """Features (N, R, R, nf(R)) at R = ``resolution`` -> blocks R .. 8, then the 4x4 block."""
    for r in reversed(stage_resolutions(resolution)):
      h = self.block[r](h)
    return h

  def __call__(self, x: jax.Array, resolution: int, alpha: Alpha = None) -> jax.Array:
    """Stable stage when ``alpha`` is None, else fade-in of block ``resolution`` (>= 8)."""
    check_stage(resolution, self.max_resolution, alpha)
    if x.shape[1:] != (resolution, resolution, 3):
      raise ValueError(f"expected images (N, {resolution}, {resolution}, 3), got {x.shape}")
    x = x.astype(jnp.float32)
    if alpha is None:
      return self._scores(self._from_rgb(x, resolution), resolution)
    new = self.block[resolution](self._from_rgb(x, resolution))
    old = self._from_rgb(downsample_2x(x), resolution // 2)
    return self._scores(lerp(old, new, alpha), resolution // 2)

  def init_all(self, x: jax.Array) -> jax.Array:
    """x (N, max, max, 3): touches every from_rgb and block; returns the max-resolution scores."""
    scores = self(x, self.max_resolution)
    coarse = x.astype(jnp.float32)
    for r in reversed(stage_resolutions(self.max_resolution)[:-1]):
      coarse = downsample_2x(coarse)
      self._from_rgb(coarse, r)
    return scores
