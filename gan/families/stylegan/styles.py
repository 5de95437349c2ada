"""What StyleGAN v1 and v2 do with w between the mapping and the synthesis network.

The mapping network gives one w (N, w_dim) per latent; the synthesis reads
``num_ws`` of them (N, num_ws, w_dim), one per layer. In training, style mixing
replaces the w's from a random crossover layer on with those of a second
latent; the tracked average w (the centre of truncation) follows every
training batch. For sampling, truncation pulls w's toward that average.
Official code: stylegan (training/networks_stylegan.py, G_style) and
stylegan2-ada-pytorch (training/networks.py MappingNetwork, training/loss.py run_G).
"""

import jax
import jax.numpy as jnp


def broadcast(w: jax.Array, num_ws: int) -> jax.Array:
  """(N, w_dim) -> (N, num_ws, w_dim): the same w for every layer."""
  return jnp.broadcast_to(w[:, None, :], (w.shape[0], num_ws, w.shape[1]))


def update_w_avg(w_avg: jax.Array, w: jax.Array, beta: float) -> jax.Array:
  """The tracked average after a batch w (N, w_dim): lerp(mean(w), w_avg, beta)."""
  mean = jnp.mean(jax.lax.stop_gradient(w).astype(jnp.float32), axis=0)
  return mean + (w_avg - mean) * beta


def mix_styles(ws: jax.Array, mixed_ws: jax.Array, key: jax.Array, prob: float,
               active_layers: int | None = None) -> tuple[jax.Array, jax.Array]:
  """Style mixing of one batch: (ws (N, L, D) with layers >= cutoff from mixed_ws, cutoff).

  With probability ``prob`` the crossover ``cutoff`` is uniform in [1, active_layers)
  (default L; StyleGAN v1 while growing: the layers the current resolution uses, its
  cur_layers), else L (no mixing); one cutoff for the whole batch, as both official
  codes draw it.
  """
  num_ws = ws.shape[1]
  use_key, cutoff_key = jax.random.split(key)
  cutoff = jax.random.randint(cutoff_key, (), 1, active_layers or num_ws)
  cutoff = jnp.where(jax.random.uniform(use_key) < prob, cutoff, num_ws)
  layer = jnp.arange(num_ws)[None, :, None]
  return jnp.where(layer < cutoff, ws, mixed_ws), cutoff


def truncate(ws: jax.Array, w_avg: jax.Array, psi: float, cutoff: int | None = None
             ) -> jax.Array:
  """ws (N, L, D) pulled toward w_avg: w_avg + psi (w - w_avg) on layers < cutoff (None: all).

  psi 1 leaves ws unchanged, psi 0 gives w_avg.
  """
  if psi == 1:
    return ws
  truncated = w_avg + (ws - w_avg) * psi
  if cutoff is None:
    return truncated
  layer = jnp.arange(ws.shape[1])[None, :, None]
  return jnp.where(layer < cutoff, truncated, ws)


def ema_beta(batch_size: int, ema_kimg: float, images_shown, rampup: float = 0.0):
  """Per-step decay of G's EMA with a half-life of ``ema_kimg`` thousand images.

  0.5 ** (batch / half-life images); with ``rampup`` > 0 the half-life is at most
  images_shown * rampup (stylegan2-ada's ema_rampup), so early averages follow G closely.
  """
  half_life = jnp.float32(ema_kimg * 1000.0)
  if rampup > 0:
    half_life = jnp.minimum(half_life, jnp.asarray(images_shown, jnp.float32) * rampup)
  return 0.5 ** (batch_size / jnp.maximum(half_life, 1e-8))


def training_ws(map_fn, key: jax.Array, count: int, z_dim: int, num_classes: int, num_ws: int,
                mixing_prob: float, w_avg: jax.Array, w_avg_beta: float,
                shard=lambda x: x, active_layers: int | None = None):
  """The ws of ``count`` fresh latents in training: (ws (count, num_ws, D), labels or None,
  the moved w_avg).

  ``map_fn(z, labels) -> w``; labels are uniform over ``num_classes`` (0: none); style
  mixing with ``mixing_prob`` (the mixing latents' mapping does not move w_avg, as the
  reference's skip_w_avg_update); ``shard`` constrains each new batch array.
  """
  z_key, label_key, mix_key, mix_z_key = jax.random.split(key, 4)
  z = shard(jax.random.normal(z_key, (count, z_dim), jnp.float32))
  labels = (shard(jax.random.randint(label_key, (count,), 0, num_classes)) if num_classes
            else None)
  w = map_fn(z, labels)
  ws = broadcast(w, num_ws)
  if mixing_prob > 0:
    mixed_z = shard(jax.random.normal(mix_z_key, (count, z_dim), jnp.float32))
    ws, _ = mix_styles(ws, broadcast(map_fn(mixed_z, labels), num_ws), mix_key, mixing_prob,
                       active_layers)
  return ws, labels, update_w_avg(w_avg, w, w_avg_beta)


def sampling_ws(map_fn, key: jax.Array, count: int, z_dim: int, num_classes: int, num_ws: int,
                w_avg: jax.Array, psi: float, cutoff: int | None):
  """The ws evaluation samples with: (truncated ws, uniform labels or None)."""
  z_key, label_key = jax.random.split(key)
  z = jax.random.normal(z_key, (count, z_dim))
  labels = jax.random.randint(label_key, (count,), 0, num_classes) if num_classes else None
  return truncate(broadcast(map_fn(z, labels), num_ws), w_avg, psi, cutoff), labels
