"""Latent sampling, the truncation trick and standing statistics."""

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import traverse_util


def sample_latents(rng: jax.Array, shape: tuple[int, ...], truncation: float | None = None,
                   dtype=jnp.float32) -> jax.Array:
  """z ~ N(0, I), or a true truncated normal when ``truncation`` is set.

  The truncated normal equals "resample every entry with |z| > truncation"
  (the BigGAN truncation trick) in distribution; it is drawn by inverse CDF,
  so it takes one pass with no rejection loop. Smaller thresholds trade
  variety for fidelity.
  """
  if truncation is None or truncation <= 0:
    return jax.random.normal(rng, shape, dtype)
  return jax.random.truncated_normal(rng, -truncation, truncation, shape, dtype)


def sample_labels(rng: jax.Array, batch: int, num_classes: int) -> jax.Array:
  """Uniform class labels (N,) int32."""
  return jax.random.randint(rng, (batch,), 0, num_classes, jnp.int32)


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7))
def _batch_moments(generator, params, variables, key, batch_size, z_dim, num_classes, truncation):
  """Per-layer BN batch mean/var of G in training mode on one sampled batch.

  Jitted once at module level so repeated calls (every sample grid) reuse the
  compiled function instead of tracing a new closure each time.
  """
  kz, ky = jax.random.split(key)
  z = sample_latents(kz, (batch_size, z_dim), truncation)
  y = sample_labels(ky, batch_size, num_classes)
  _, state = generator.apply({"params": params, **variables}, z, y, train=True,
                             mutable=["intermediates", "batch_stats", "spectral"])
  return state["intermediates"]


def standing_statistics(generator, params, variables: dict[str, Any], rng: jax.Array,
                        num_batches: int, batch_size: int, z_dim: int, num_classes: int,
                        truncation: float | None = None) -> dict[str, Any]:
  """BN statistics averaged over ``num_batches`` batches of G in training mode.

  Sampling with these "standing statistics" instead of the running averages
  removes the dependence on the last training batches (BigGAN appendix).
  Returns a new ``batch_stats`` tree; spectral vectors are not touched.
  Per layer: mean = average of batch means, var = average of batch variances.
  """

  sums = None
  for key in jax.random.split(rng, num_batches):
    moments = _batch_moments(generator, params, variables, key, batch_size, z_dim, num_classes,
                             truncation)
    sums = moments if sums is None else jax.tree.map(jnp.add, sums, moments)
  flat = traverse_util.flatten_dict(sums)
  stats = {}
  for path, total in flat.items():
    name = {"batch_mean": "mean", "batch_var": "var"}[path[-1]]
    # sow stores a 1-tuple per call; each layer runs once per forward pass.
    stats[path[:-1] + (name,)] = total[0] / num_batches
  new_stats = traverse_util.unflatten_dict(stats)
  _check_same_structure(variables["batch_stats"], new_stats)
  return new_stats


def _check_same_structure(old, new) -> None:
  old_paths = set(traverse_util.flatten_dict(old))
  new_paths = set(traverse_util.flatten_dict(new))
  if old_paths != new_paths:
    raise RuntimeError(f"standing statistics missed BN layers: {sorted(old_paths ^ new_paths)}")


SampleFn = Callable[[Any, Any, jax.Array, jax.Array], jax.Array]


def make_sample_fn(generator) -> SampleFn:
  """Jitted G in eval mode: (params, variables, z, labels) -> images in [-1, 1]."""

  @jax.jit
  def sample(params, variables, z, labels):
    return generator.apply({"params": params, **variables}, z, labels, train=False)

  return sample
