"""Batch norm, conditional batch norm and self-attention against numpy."""

import jax
import jax.numpy as jnp
import numpy as np

from gan.families.biggan.attention import SelfAttention
from gan.families.biggan.normalization import BatchNorm, ConditionalBatchNorm


def test_batchnorm_train_normalises_and_updates_running_stats_like_torch():
  x = np.random.default_rng(0).normal(2.0, 3.0, size=(4, 3, 3, 5)).astype(np.float32)
  bn = BatchNorm(use_affine=False)
  variables = bn.init(jax.random.PRNGKey(0), jnp.asarray(x), train=False)
  y, updates = bn.apply(variables, jnp.asarray(x), train=True, mutable=["batch_stats"])
  flat = x.reshape(-1, 5).astype(np.float64)
  mean, var = flat.mean(0), flat.var(0)
  np.testing.assert_allclose(np.asarray(y), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4,
                             atol=1e-5)
  n = flat.shape[0]
  np.testing.assert_allclose(np.asarray(updates["batch_stats"]["mean"]), 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(updates["batch_stats"]["var"]),
                             0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)


def test_batchnorm_eval_uses_running_stats_and_changes_nothing():
  x = jnp.ones((2, 2, 2, 3))
  bn = BatchNorm(use_affine=False)
  variables = {"batch_stats": {"mean": jnp.full((3,), 0.5), "var": jnp.full((3,), 4.0)}}
  y, updates = bn.apply(variables, x, train=False, mutable=["batch_stats"])
  np.testing.assert_allclose(np.asarray(y), 0.5 / np.sqrt(4.0 + 1e-5), rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(updates["batch_stats"]["mean"]), 0.5)


def test_conditional_bn_gain_and_bias_depend_on_the_class():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
  cond = rng.normal(size=(2, 6)).astype(np.float32)   # e.g. [embed(y), z chunk]
  cbn = ConditionalBatchNorm()
  variables = cbn.init(jax.random.PRNGKey(1), jnp.asarray(x), jnp.asarray(cond), train=False)
  y = np.asarray(cbn.apply(variables, jnp.asarray(x), jnp.asarray(cond), train=False))

  def sn(name):  # eval-mode spectral norm: W / (||W u|| / ||u||)
    w = np.asarray(variables["params"][name]["kernel"], np.float64)
    u = np.asarray(variables["spectral"][name]["u"], np.float64)
    return w / (np.linalg.norm(w @ u) / np.linalg.norm(u))

  gain, bias = 1.0 + cond @ sn("gain"), cond @ sn("bias")
  x_hat = x / np.sqrt(1.0 + 1e-5)   # fresh running stats: mean 0, var 1
  expected = x_hat * gain[:, None, None, :] + bias[:, None, None, :]
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
  # Same x, different conditioning -> different per-example affine transform.
  assert not np.allclose(y[0] / x_hat[0], y[1] / x_hat[1])


def test_conditional_bn_starts_from_unit_gain():
  cbn = ConditionalBatchNorm()
  x = jnp.ones((1, 2, 2, 4))
  variables = cbn.init(jax.random.PRNGKey(2), x, jnp.zeros((1, 5)), train=False)
  y = cbn.apply(variables, x, jnp.zeros((1, 5)), train=False)
  np.testing.assert_allclose(np.asarray(y), 1.0 / np.sqrt(1.0 + 1e-5), rtol=1e-6)


def _numpy_attention(x, variables):
  p, s = variables["params"], variables["spectral"]

  def conv1x1(name, h):
    w = np.asarray(p[name]["kernel"], np.float64)[0, 0]
    u = np.asarray(s[name]["u"], np.float64)
    return h @ (w / (np.linalg.norm(w @ u) / np.linalg.norm(u)))

  def pool(h):
    n, hh, ww, c = h.shape
    return h.reshape(n, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))

  n, h, w, c = x.shape
  theta = conv1x1("theta", x).reshape(n, h * w, -1)
  phi = pool(conv1x1("phi", x)).reshape(n, h * w // 4, -1)
  g = pool(conv1x1("g", x)).reshape(n, h * w // 4, -1)
  logits = theta @ phi.transpose(0, 2, 1)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  out = conv1x1("out", (weights @ g).reshape(n, h, w, -1))
  return x + float(p["gamma"]) * out


def test_attention_with_gamma_zero_is_identity():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 16))
  attn = SelfAttention()
  variables = attn.init(jax.random.PRNGKey(1), x, train=False)
  assert float(variables["params"]["gamma"]) == 0.0
  np.testing.assert_array_equal(np.asarray(attn.apply(variables, x, train=False)), np.asarray(x))


def test_attention_matches_numpy_when_gamma_is_nonzero():
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 4, 16))
  attn = SelfAttention()
  variables = attn.init(jax.random.PRNGKey(3), x, train=False)
  variables["params"]["gamma"] = jnp.float32(0.7)
  y = attn.apply(variables, x, train=False)
  np.testing.assert_allclose(np.asarray(y), _numpy_attention(np.asarray(x, np.float64), variables),
                             rtol=1e-4, atol=1e-5)
