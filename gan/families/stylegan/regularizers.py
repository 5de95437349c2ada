"""StyleGAN2's path-length regularisation and lazy regularisation (Karras et al. 2020).

Path length: for w's (N, L, D) and images G(w) (N, H, W, C), a random image-space
direction y ~ N(0, I) / sqrt(H W) gives J^T y = grad_w sum(G(w) * y); the length
of example n is sqrt(mean over layers of the squared norm of (J^T y)_n); the
penalty is (length - a)^2 where a, the running mean of the lengths, moves by
``decay`` toward the batch mean first (its new value is used, and it passes the
gradient of that move, as both official codes compute it).

Lazy regularisation: a regulariser computed every k-th step, as its own
optimiser step on (regulariser x k), with Adam's learning rate times c = k / (k + 1)
and betas raised to the power c for both the main and the regulariser steps
(stylegan2-ada-pytorch training/training_loop.py, mb_ratio).
"""

import math

import jax
import jax.numpy as jnp
import optax


def path_lengths(synthesize, ws: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(lengths (N,), images): ``synthesize``: ws (N, L, D) -> images (N, H, W, C)."""
  images, vjp = jax.vjp(synthesize, ws)
  height, width = images.shape[1:3]
  direction = jax.random.normal(key, images.shape, images.dtype) / math.sqrt(height * width)
  (grads,) = vjp(direction)
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1)), images


def path_length_penalty(lengths: jax.Array, pl_mean: jax.Array, decay: float
                        ) -> tuple[jax.Array, jax.Array]:
  """(penalty (N,), the new running mean) for path lengths (N,)."""
  new_mean = pl_mean + (jnp.mean(lengths) - pl_mean) * decay
  return jnp.square(lengths - new_mean), new_mean


def lazy_ratio(interval: int) -> float:
  """c = k / (k + 1) for a regulariser every k steps; 1 when it runs in every step."""
  return 1.0 if interval <= 1 else interval / (interval + 1)


def lazy_adam(learning_rate: float, b1: float, b2: float, eps: float, interval: int
              ) -> optax.GradientTransformation:
  """Adam for the main and regulariser steps of a network regularised every ``interval``."""
  c = lazy_ratio(interval)
  return optax.adam(learning_rate * c, b1=b1 ** c, b2=b2 ** c, eps=eps)
