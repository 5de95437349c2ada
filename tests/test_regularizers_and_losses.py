"""Orthogonal regularisation and hinge losses against numpy."""

import jax
import jax.numpy as jnp
import numpy as np

from gan import losses
from gan.families.biggan.regularizers import off_diagonal_penalty, orthogonal_regularization


def numpy_penalty(kernel: np.ndarray) -> float:
  w = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
  gram = w.T @ w
  return float(np.sum((gram * (1.0 - np.eye(gram.shape[0]))) ** 2))


def test_penalty_matches_numpy_formula():
  kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32)
  np.testing.assert_allclose(float(off_diagonal_penalty(jnp.asarray(kernel))),
                             numpy_penalty(kernel), rtol=1e-5)


def test_orthonormal_columns_have_zero_penalty():
  q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 4)))
  assert float(off_diagonal_penalty(jnp.asarray(q * 3.0, jnp.float32))) < 1e-8


def test_gradient_matches_finite_differences():
  rng = np.random.default_rng(2)
  kernel = rng.normal(size=(6, 4)).astype(np.float64)
  beta = 1e-4
  grad = np.asarray(jax.grad(orthogonal_regularization)({"k": jnp.asarray(kernel, jnp.float32)},
                                                        beta)["k"])
  eps, fd = 1e-5, np.zeros_like(kernel)
  for idx in np.ndindex(kernel.shape):
    plus, minus = kernel.copy(), kernel.copy()
    plus[idx] += eps
    minus[idx] -= eps
    fd[idx] = beta * (numpy_penalty(plus) - numpy_penalty(minus)) / (2 * eps)
  np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-9)
  # The closed form 4 * beta * W (W^T W (.) (1 - I)) (twice the reference code's update).
  gram = kernel.T @ kernel
  np.testing.assert_allclose(grad, 4 * beta * kernel @ (gram * (1 - np.eye(4))), rtol=1e-3)


def test_only_weights_with_two_or_more_dims_except_shared_embedding():
  rng = np.random.default_rng(3)
  conv = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
  shared = rng.normal(size=(10, 4)).astype(np.float32)
  params = {"block0": {"conv1": {"kernel": conv, "bias": rng.normal(size=(4,)).astype(np.float32)}},
            "shared": {"embedding": shared}, "attention0": {"gamma": np.float32(0.5)}}
  value = float(orthogonal_regularization(jax.tree.map(jnp.asarray, params), 1.0))
  np.testing.assert_allclose(value, numpy_penalty(conv), rtol=1e-5)


def test_hinge_losses_on_known_logits():
  real = jnp.array([2.0, 0.5, -1.0])   # relu(1 - x): 0, 0.5, 2
  fake = jnp.array([-3.0, 0.0, 1.0])   # relu(1 + x): 0, 1, 2
  loss_real, loss_fake = losses.hinge_d_loss(real, fake)
  np.testing.assert_allclose(float(loss_real), 2.5 / 3, rtol=1e-6)
  np.testing.assert_allclose(float(loss_fake), 1.0, rtol=1e-6)
  np.testing.assert_allclose(float(losses.hinge_g_loss(fake)), 2.0 / 3, rtol=1e-6)
