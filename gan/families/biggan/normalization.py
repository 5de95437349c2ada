"""Batch normalisation for BigGAN: plain and class-conditional.

Statistics are computed over the whole global batch. Under ``jax.jit`` with a
batch sharded over a device mesh, ``jnp.mean`` over the batch axis is a global
reduction (XLA inserts the all-reduce), so the statistics are cross-replica by
construction and identical on 1 or N devices.

Running statistics follow the PyTorch convention used by the reference code:
``running = (1 - momentum) * running + momentum * batch`` with momentum 0.1, and
the running variance uses the unbiased batch variance. Statistics are always in
float32, whatever the compute dtype.

In training mode each layer also ``sow``s its batch mean and variance into the
``"intermediates"`` collection (a no-op unless that collection is mutable);
``gan.sampling.standing_statistics`` averages them over many batches.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.families.biggan.spectral_norm import SNDense

Dtype = Any


class BatchNorm(nn.Module):
  """x (N, H, W, C) -> normalised x, optionally with a learned affine transform."""
  use_affine: bool = True
  momentum: float = 0.1
  eps: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    channels = x.shape[-1]
    running_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((channels,), jnp.float32))
    running_var = self.variable("batch_stats", "var", lambda: jnp.ones((channels,), jnp.float32))
    if train:
      x32 = x.astype(jnp.float32)
      axes = tuple(range(x.ndim - 1))
      mean = jnp.mean(x32, axes)
      var = jnp.mean(jnp.square(x32 - mean), axes)
      self.sow("intermediates", "batch_mean", mean)
      self.sow("intermediates", "batch_var", var)
      if not self.is_initializing():
        count = x.size // channels
        unbiased = var * count / max(count - 1, 1)
        running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
        running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased
    else:
      mean, var = running_mean.value, running_var.value
    inv = jax.lax.rsqrt(var + self.eps)
    y = (x - mean.astype(self.dtype)) * inv.astype(self.dtype)
    if self.use_affine:
      scale = self.param("scale", nn.initializers.ones, (channels,), jnp.float32)
      bias = self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
      y = y * scale.astype(self.dtype) + bias.astype(self.dtype)
    return y.astype(self.dtype)


class ConditionalBatchNorm(nn.Module):
  """BigGAN conditional BN: BN(x) * (1 + W_g c) + W_b c.

  x (N, H, W, C), cond (N, D) -> (N, H, W, C). W_g and W_b are bias-free,
  spectrally normalised linear maps. The "1 +" makes a freshly initialised
  layer start near the identity gain (compare_gan once shipped without it).
  """
  momentum: float = 0.1
  eps: float = 1e-5
  sn_eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array, train: bool) -> jax.Array:
    channels = x.shape[-1]
    linear = lambda name: SNDense(channels, use_bias=False, eps=self.sn_eps, dtype=self.dtype, name=name)
    gain = 1.0 + linear("gain")(cond, update_stats=train)
    bias = linear("bias")(cond, update_stats=train)
    y = BatchNorm(use_affine=False, momentum=self.momentum, eps=self.eps, dtype=self.dtype,
                  name="bn")(x, train)
    return y * gain[:, None, None, :] + bias[:, None, None, :]
