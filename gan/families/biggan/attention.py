"""SAGAN self-attention block as used by BigGAN (Zhang et al. 2018)."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.families.biggan.spectral_norm import SNConv

Dtype = Any


def max_pool_2x2(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (2, 2), strides=(2, 2))


class SelfAttention(nn.Module):
  """x (N, H, W, C) -> x + gamma * attention(x), same shape.

  theta and phi project to C/8 channels, g to C/2; phi and g are max-pooled 2x2
  so each of the H*W queries attends over H*W/4 keys. All four 1x1 convolutions
  are spectrally normalised and bias-free. gamma starts at 0, so a fresh block
  is exactly the identity.
  """
  sn_eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    n, h, w, c = x.shape
    conv = lambda features, name: SNConv(features, kernel_size=1, use_bias=False,
                                         eps=self.sn_eps, dtype=self.dtype, name=name)
    theta = conv(c // 8, "theta")(x, train).reshape(n, h * w, c // 8)
    phi = max_pool_2x2(conv(c // 8, "phi")(x, train)).reshape(n, h * w // 4, c // 8)
    g = max_pool_2x2(conv(c // 2, "g")(x, train)).reshape(n, h * w // 4, c // 2)
    logits = jnp.einsum("nqc,nkc->nqk", theta, phi).astype(jnp.float32)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    attended = jnp.einsum("nqk,nkc->nqc", weights, g).reshape(n, h, w, c // 2)
    out = conv(c, "out")(attended, train)
    gamma = self.param("gamma", nn.initializers.zeros, (), jnp.float32)
    return x + gamma.astype(self.dtype) * out
