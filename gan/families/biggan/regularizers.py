"""BigGAN orthogonal regularisation (Brock et al. 2018, eq. 3).

R(W) = beta * || W^T W (.) (1 - I) ||_F^2, with W the weight reshaped so each
output filter is one column: a Flax kernel (..., in, out) becomes (-1, out).
Only the off-diagonal terms are penalised, so filter norms are free.

Autodiff of R gives 4 * beta * W (W^T W (.) (1 - I)). The reference PyTorch
code instead adds 2 * beta * W (W^T W (.) (1 - I)) to the gradient directly,
i.e. it optimises R with beta / 2. We implement the paper's formula; to match
the reference code's update exactly, halve ``ortho_reg`` in the config.
"""

import jax
import jax.numpy as jnp
from flax import traverse_util


def off_diagonal_penalty(kernel: jax.Array) -> jax.Array:
  """|| W^T W (.) (1 - I) ||_F^2 for kernel (..., out)."""
  w = kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)
  gram = w.T @ w
  off_diag = gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))
  return jnp.sum(jnp.square(off_diag))


def is_regularized(path: tuple[str, ...], leaf: jax.Array) -> bool:
  """Every weight with >= 2 dims except the shared class embedding."""
  return leaf.ndim >= 2 and "shared" not in path


def orthogonal_regularization(params, beta: float) -> jax.Array:
  """beta * sum of off-diagonal penalties over the regularised weights of ``params``."""
  flat = traverse_util.flatten_dict(params)
  terms = [off_diagonal_penalty(w) for path, w in flat.items() if is_regularized(path, w)]
  return beta * sum(terms, jnp.zeros((), jnp.float32))
