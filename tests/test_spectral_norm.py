"""Spectral normalisation against numpy's SVD."""

import jax
import jax.numpy as jnp
import numpy as np

from gan.families.biggan.spectral_norm import SNConv, SNDense, SNEmbed


def _run(module, x, variables, train):
  return module.apply(variables, x, update_stats=train, mutable=["spectral"])


def _iterate(module, x, variables, n):
  for _ in range(n):
    _, updates = _run(module, x, variables, train=True)
    variables = {**variables, **updates}
  return variables


def test_dense_sigma_converges_to_top_singular_value():
  module = SNDense(12)
  x = jnp.ones((3, 20))
  variables = module.init(jax.random.PRNGKey(0), x, update_stats=False)
  # A kernel with a clear spectral gap so power iteration converges quickly.
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(20, 12)).astype(np.float32)
  kernel[:, 0] *= 5.0
  variables = {"params": {"kernel": jnp.asarray(kernel), "bias": jnp.zeros(12)},
               "spectral": variables["spectral"]}
  variables = _iterate(module, x, variables, 50)
  y, _ = _run(module, x, variables, train=False)
  sigma = np.linalg.svd(kernel, compute_uv=False)[0]
  np.testing.assert_allclose(np.asarray(y), np.asarray(x) @ kernel / sigma, rtol=1e-4, atol=1e-5)


def test_conv_sigma_is_that_of_the_reshaped_kernel():
  module = SNConv(6, kernel_size=3, use_bias=False)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 5, 4))
  variables = module.init(jax.random.PRNGKey(2), x, update_stats=False)
  variables = _iterate(module, x, variables, 200)
  kernel = np.asarray(variables["params"]["kernel"])
  sigma = np.linalg.svd(kernel.reshape(-1, 6), compute_uv=False)[0]
  u = np.asarray(variables["spectral"]["u"])
  # The stored u converges to the top right-singular vector of W, so ||W u|| = sigma.
  np.testing.assert_allclose(np.linalg.norm(kernel.reshape(-1, 6) @ u), sigma, rtol=1e-4)
  y, _ = _run(module, x, variables, train=False)
  expected = jax.lax.conv_general_dilated(x, kernel / sigma, (1, 1), "SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(np.asarray(y), np.asarray(expected), rtol=1e-4, atol=1e-5)


def test_u_persists_and_one_power_iteration_per_training_call():
  module = SNDense(4, use_bias=False)
  x = jnp.ones((1, 7))
  variables = module.init(jax.random.PRNGKey(3), x, update_stats=False)
  kernel = np.asarray(variables["params"]["kernel"])
  u0 = np.asarray(variables["spectral"]["u"])
  _, updates = _run(module, x, variables, train=True)
  u1 = np.asarray(updates["spectral"]["u"])
  # One numpy power iteration from u0.
  v = kernel @ u0
  v /= np.linalg.norm(v)
  expected_u1 = kernel.T @ v
  expected_u1 /= np.linalg.norm(expected_u1)
  np.testing.assert_allclose(u1, expected_u1, rtol=1e-5, atol=1e-6)
  # The next call starts from u1, not from u0.
  _, updates2 = _run(module, x, {**variables, **updates}, train=True)
  v = kernel @ u1
  v /= np.linalg.norm(v)
  expected_u2 = kernel.T @ v
  np.testing.assert_allclose(np.asarray(updates2["spectral"]["u"]),
                             expected_u2 / np.linalg.norm(expected_u2), rtol=1e-5, atol=1e-6)


def test_no_update_in_eval():
  module = SNDense(4)
  x = jnp.ones((2, 3))
  variables = module.init(jax.random.PRNGKey(4), x, update_stats=False)
  _, updates = _run(module, x, variables, train=False)
  np.testing.assert_array_equal(np.asarray(updates["spectral"]["u"]),
                                np.asarray(variables["spectral"]["u"]))


def test_embedding_rows_are_divided_by_table_sigma():
  module = SNEmbed(num_classes=5, features=3)
  labels = jnp.array([0, 4, 2])
  variables = module.init(jax.random.PRNGKey(5), labels, update_stats=False)
  for _ in range(200):
    _, updates = module.apply(variables, labels, update_stats=True, mutable=["spectral"])
    variables = {**variables, **updates}
  table = np.asarray(variables["params"]["embedding"])
  sigma = np.linalg.svd(table, compute_uv=False)[0]
  out = module.apply(variables, labels, update_stats=False)
  np.testing.assert_allclose(np.asarray(out), table[[0, 4, 2]] / sigma, rtol=1e-4, atol=1e-6)
