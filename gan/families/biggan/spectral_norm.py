"""Spectrally normalised layers (Miyato et al. 2018) with persistent power iteration.

Every weight W is divided by an estimate of its largest singular value sigma.
The estimate comes from power iteration whose left vector ``u`` persists across
calls in the ``"spectral"`` variable collection:

* training forward pass (``update_stats=True``): one power iteration,
      v = normalize(W u),  u' = normalize(W^T v),  sigma = ||W^T v||,
  and ``u'`` is written back;
* sampling / evaluation (``update_stats=False``): no iteration and no write,
      sigma = ||W u|| / ||u||  (the estimate from the stored ``u``).

W here is the Flax kernel flattened to (fan_in, out), i.e. each output filter is
one column; sigma is the same as for the PyTorch (out, fan_in) layout. As in
torch.nn.utils.spectral_norm, u and v are treated as constants by autodiff.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
orthogonal_init = nn.initializers.orthogonal()


def fan_in_uniform(fan_in: int):
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default bias init for Linear and
  Conv2d, which the reference keeps (its G_init/D_init re-initialise weights only)."""
  bound = 1.0 / max(fan_in, 1) ** 0.5
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _normalize(x: jax.Array, eps: float) -> jax.Array:
  """x / max(||x||, eps), as torch.nn.functional.normalize (the reference's)."""
  return x / jnp.maximum(jnp.linalg.norm(x), eps)


def power_iteration(w_mat: jax.Array, u: jax.Array, eps: float,
                    update: bool) -> tuple[jax.Array, jax.Array]:
  """Returns (sigma, new_u) for w_mat (fan_in, out) and unit u (out,)."""
  w_mat = w_mat.astype(jnp.float32)
  if not update:
    # Normalise defensively: an EMA of unit vectors is only nearly unit.
    return jnp.linalg.norm(w_mat @ u) / jnp.linalg.norm(u), u
  v = jax.lax.stop_gradient(_normalize(w_mat @ u, eps))
  wt_v = w_mat.T @ v
  new_u = jax.lax.stop_gradient(_normalize(wt_v, eps))
  # sigma = u'^T W^T v = ||W^T v|| (for ||W^T v|| >= eps); keep the bilinear form so the
  # gradient is the classic u v^T outer product.
  sigma = jnp.dot(new_u, wt_v)
  return sigma, new_u


def spectral_normalize(module: nn.Module, kernel: jax.Array, update_stats: bool,
                       eps: float) -> jax.Array:
  """Divides ``kernel`` (..., out) by sigma, managing ``module``'s u variable."""
  out = kernel.shape[-1]

  def init_u():
    u = jax.random.normal(module.make_rng("params"), (out,), jnp.float32)
    return u / jnp.linalg.norm(u)

  u_var = module.variable("spectral", "u", init_u)
  update = update_stats and not module.is_initializing()
  sigma, new_u = power_iteration(kernel.reshape(-1, out), u_var.value, eps, update)
  if update:
    u_var.value = new_u
  return kernel / sigma.astype(kernel.dtype)


class SNDense(nn.Module):
  """Dense layer with a spectrally normalised kernel.  x (..., in) -> (..., features)."""
  features: int
  use_bias: bool = True
  eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, update_stats: bool) -> jax.Array:
    kernel = self.param("kernel", orthogonal_init, (x.shape[-1], self.features), jnp.float32)
    kernel = spectral_normalize(self, kernel, update_stats, self.eps)
    y = jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param("bias", fan_in_uniform(x.shape[-1]), (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


class SNConv(nn.Module):
  """'SAME'-padded stride-1 conv with a spectrally normalised kernel.

  x (N, H, W, C_in) -> (N, H, W, features).
  """
  features: int
  kernel_size: int = 3
  use_bias: bool = True
  eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, update_stats: bool) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", orthogonal_init, (k, k, x.shape[-1], self.features), jnp.float32)
    kernel = spectral_normalize(self, kernel, update_stats, self.eps)
    y = jax.lax.conv_general_dilated(
        x.astype(self.dtype), kernel.astype(self.dtype), window_strides=(1, 1),
        padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      bias = self.param("bias", fan_in_uniform(k * k * x.shape[-1]), (self.features,),
                        jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


class SNEmbed(nn.Module):
  """Class embedding with a spectrally normalised table.  labels (N,) -> (N, features).

  The table (num_classes, features) has the same sigma as a dense kernel mapping a
  one-hot class vector to features. Its u lives in class space (num_classes,),
  as in the reference's SNEmbedding (whose W is the table itself, rows = classes):
  the power iteration runs on the transposed table, so one step from the same u
  gives the reference's u and sigma exactly.
  """
  num_classes: int
  features: int
  eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, labels: jax.Array, update_stats: bool) -> jax.Array:
    table = self.param("embedding", orthogonal_init, (self.num_classes, self.features), jnp.float32)
    table = spectral_normalize(self, table.T, update_stats, self.eps).T
    return jnp.take(table, labels, axis=0).astype(self.dtype)
