"""StyleGAN mapping network z (+ class) -> w, after the reference MappingNetwork.

Tracking w_avg, truncation, style mixing and broadcasting w to every layer are
left to the caller (w_avg lives in the training state, not in these params).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.families.stylegan.ops import FullyConnected, normalize_2nd_moment


class MappingNetwork(nn.Module):
  """z (N, z_dim), labels (N,) int32 or None -> w (N, w_dim) float32.

  x = normalize_2nd_moment(z), then with classes concat(x, normalize_2nd_moment(
  embed(one_hot(labels)))) in that order; then num_layers lrelu FullyConnected
  layers with lr_multiplier. z_dim 0 maps labels alone (StyleGAN2's D uses it so).
  Params: embed (with classes), fc0 ... fc{num_layers - 1}.
  """
  z_dim: int
  w_dim: int
  num_classes: int = 0
  num_layers: int = 8
  layer_features: int | None = None
  embed_features: int | None = None
  lr_multiplier: float = 0.01
  # StyleGAN v1's G_mapping: the sqrt(2) gain in the weights, lrelu without a gain after.
  gain_in_weights: bool = False

  @nn.compact
  def __call__(self, z: jax.Array | None, labels: jax.Array | None = None) -> jax.Array:
    parts = []
    if self.z_dim > 0:
      if z is None or z.shape[-1] != self.z_dim:
        raise ValueError(f"expected z (N, {self.z_dim}), got {None if z is None else z.shape}")
      parts.append(normalize_2nd_moment(z.astype(jnp.float32)))
    if self.num_classes > 0:
      if labels is None:
        raise ValueError("a class-conditional mapping network needs labels")
      embed_features = self.embed_features or self.w_dim
      one_hot = jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32)
      parts.append(normalize_2nd_moment(FullyConnected(embed_features, name="embed")(one_hot)))
    if not parts:
      raise ValueError("the mapping network needs z_dim > 0 or num_classes > 0")
    x = jnp.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
    layer_features = self.layer_features or self.w_dim
    for idx in range(self.num_layers):
      features = self.w_dim if idx == self.num_layers - 1 else layer_features
      x = FullyConnected(features, activation="lrelu", lr_multiplier=self.lr_multiplier,
                         weight_gain=math.sqrt(2.0) if self.gain_in_weights else None,
                         name=f"fc{idx}")(x)
    return x
