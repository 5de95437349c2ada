"""ProGAN losses and penalties against hand-computed numbers and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan import losses

# One compile instead of op-by-op dispatch: 10x faster on a CPU.
jit_gradient_penalty = jax.jit(losses.gradient_penalty, static_argnums=0)
jit_interpolate = jax.jit(losses.interpolate)

REAL = np.array([2.0, 0.5, -1.0], np.float32)
FAKE = np.array([-3.0, 0.0, 1.0], np.float32)


def softplus(x):
  return np.log1p(np.exp(x))


@pytest.mark.parametrize("kind, expected_d, expected_g", [
    # fake - real; -mean(fake) = 2/3.
    ("wgan", [-5.0, -0.5, 2.0], 2.0 / 3),
    # softplus(fake) + softplus(-real); mean softplus(-fake).
    ("nonsaturating",
     softplus(FAKE.astype(np.float64)) + softplus(-REAL.astype(np.float64)),
     np.mean(softplus(-FAKE.astype(np.float64)))),
    # 0.5 (real - 1)^2 + 0.5 fake^2 = [0.5 + 4.5, 0.125 + 0, 2 + 0.5]; 0.5 mean (fake - 1)^2.
    ("lsgan", [5.0, 0.125, 2.5], 0.5 * (16 + 1 + 0) / 3),
    # relu(1 - real) + relu(1 + fake) = [0 + 0, 0.5 + 1, 2 + 2]; -mean(fake).
    ("hinge", [0.0, 1.5, 4.0], 2.0 / 3),
])
def test_losses_on_known_scores(kind, expected_d, expected_g):
  d_terms = losses.d_loss_terms(kind, jnp.asarray(REAL), jnp.asarray(FAKE))
  assert d_terms.shape == (3,)
  np.testing.assert_allclose(np.asarray(d_terms), expected_d, rtol=1e-6, atol=1e-7)
  g = losses.g_loss(kind, jnp.asarray(FAKE))
  assert g.shape == ()
  np.testing.assert_allclose(float(g), expected_g, rtol=1e-6)


def test_hinge_matches_the_biggan_hinge_losses():
  d_terms = losses.d_loss_terms("hinge", jnp.asarray(REAL), jnp.asarray(FAKE))
  np.testing.assert_allclose(float(jnp.mean(d_terms)),
                             float(sum(losses.hinge_d_loss(jnp.asarray(REAL), jnp.asarray(FAKE)))),
                             rtol=1e-6)
  assert float(losses.g_loss("hinge", FAKE)) == float(losses.hinge_g_loss(jnp.asarray(FAKE)))


def test_unknown_kind_and_mismatched_shapes():
  with pytest.raises(ValueError, match="choose one of wgan, nonsaturating, lsgan, hinge"):
    losses.d_loss_terms("wasserstein", jnp.asarray(REAL), jnp.asarray(FAKE))
  with pytest.raises(ValueError, match="Unknown loss 'ls'"):
    losses.g_loss("ls", jnp.asarray(FAKE))
  with pytest.raises(ValueError, match="pair up per example"):
    losses.d_loss_terms("wgan", jnp.asarray(REAL), jnp.asarray(FAKE[:2]))


def small_discriminator(rng):
  """A nonlinear per-example D: (N, 4, 4, 3) -> (N,), sum over pixels of tanh(x w) v."""
  w, v = rng.normal(size=(3, 5)), rng.normal(size=(5,))
  d_jax = lambda x: jnp.einsum("nhwk,k->n", jnp.tanh(x @ jnp.asarray(w)), jnp.asarray(v))
  d_numpy = lambda x: np.einsum("nhwk,k->n", np.tanh(x @ w), v)
  return d_jax, d_numpy


def finite_difference_grad_norms(d_numpy, x, eps=1e-5):
  grad = np.zeros_like(x)
  for index in np.ndindex(x.shape):
    plus, minus = x.copy(), x.copy()
    plus[index] += eps
    minus[index] -= eps
    grad[index] = (d_numpy(plus)[index[0]] - d_numpy(minus)[index[0]]) / (2 * eps)
  return np.sqrt(np.sum(grad ** 2, axis=(1, 2, 3)))


def test_interpolate_lies_between_reals_and_fakes():
  reals, fakes = jnp.zeros((64, 2, 2, 1)), jnp.ones((64, 2, 2, 1))
  x_hat = np.asarray(jit_interpolate(reals, fakes, jax.random.key(0)))
  assert x_hat.shape == (64, 2, 2, 1)
  assert np.all(x_hat == x_hat[:, :1, :1, :])  # one u per example
  assert 0.0 <= x_hat.min() and x_hat.max() <= 1.0 and x_hat.std() > 0.1


@pytest.mark.parametrize("target", [1.0, 750.0])
def test_gradient_penalty_against_finite_differences(target):
  rng = np.random.default_rng(0)
  d_jax, d_numpy = small_discriminator(rng)
  reals, fakes = rng.normal(size=(3, 4, 4, 3)), rng.normal(size=(3, 4, 4, 3))
  key = jax.random.key(1)
  with jax.enable_x64(True):  # float64 so central differences are exact to ~1e-9
    penalty, norms = jit_gradient_penalty(d_jax, jnp.asarray(reals), jnp.asarray(fakes), key,
                                             target=target)
    x_hat = np.asarray(jit_interpolate(jnp.asarray(reals), jnp.asarray(fakes), key))
  assert penalty.dtype == jnp.float64 and penalty.shape == norms.shape == (3,)
  expected_norms = finite_difference_grad_norms(d_numpy, x_hat)
  np.testing.assert_allclose(np.asarray(norms), expected_norms, rtol=1e-7)
  np.testing.assert_allclose(np.asarray(penalty), (expected_norms - target) ** 2 / target ** 2,
                             rtol=1e-6)


def test_gradient_penalty_float32_is_close():
  rng = np.random.default_rng(2)
  d_jax, d_numpy = small_discriminator(rng)
  reals, fakes = rng.normal(size=(3, 4, 4, 3)), rng.normal(size=(3, 4, 4, 3))
  key = jax.random.key(3)
  penalty, norms = jit_gradient_penalty(d_jax, jnp.asarray(reals, jnp.float32),
                                           jnp.asarray(fakes, jnp.float32), key)
  x_hat = np.asarray(jit_interpolate(jnp.asarray(reals, jnp.float32),
                                        jnp.asarray(fakes, jnp.float32), key), np.float64)
  np.testing.assert_allclose(np.asarray(norms), finite_difference_grad_norms(d_numpy, x_hat),
                             rtol=1e-4)
  assert penalty.dtype == jnp.float32


def test_gradient_penalty_is_differentiable_at_a_zero_gradient():
  """A D flat in its input has gradient 0 there: penalty 1 and a finite (zero) parameter grad."""
  images = jnp.ones((2, 4, 4, 3))
  def penalty_of(scale):
    d_apply = lambda x: scale * jnp.sum(0.0 * x, axis=(1, 2, 3))
    return jnp.sum(jit_gradient_penalty(d_apply, images, -images, jax.random.key(0))[0])
  assert float(jax.jit(penalty_of)(2.0)) == 2.0
  assert float(jax.jit(jax.grad(penalty_of))(2.0)) == 0.0


def test_drift_penalty():
  np.testing.assert_allclose(np.asarray(losses.drift_penalty(jnp.asarray(REAL))), [4.0, 0.25, 1.0])
