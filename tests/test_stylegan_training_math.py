"""StyleGAN's training arithmetic against independent computations: style mixing,
truncation, the tracked average w, the EMA half-life, R1 and path length (finite
differences in float64) and lazy regularisation's Adam (a numpy Adam)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.families.stylegan import regularizers, styles
from gan.losses import r1_penalty


def test_style_mixing_takes_w1_before_the_crossover_and_w2_from_it():
  n, layers, dim = 3, 8, 5
  ws1 = jnp.broadcast_to(jnp.arange(n * dim, dtype=jnp.float32).reshape(n, 1, dim), (n, layers, dim))
  ws2 = -1.0 - ws1
  seen = set()
  for seed in range(40):
    mixed, cutoff = styles.mix_styles(ws1, ws2, jax.random.PRNGKey(seed), prob=1.0)
    cutoff = int(cutoff)
    assert 1 <= cutoff < layers  # with probability 1 a crossover always happens
    np.testing.assert_array_equal(mixed[:, :cutoff], ws1[:, :cutoff])
    np.testing.assert_array_equal(mixed[:, cutoff:], ws2[:, cutoff:])
    seen.add(cutoff)
  assert seen == set(range(1, layers))  # uniform over [1, L): all seen in 40 draws
  for seed in range(10):
    mixed, cutoff = styles.mix_styles(ws1, ws2, jax.random.PRNGKey(seed), prob=0.0)
    assert int(cutoff) == layers
    np.testing.assert_array_equal(mixed, ws1)


def test_style_mixing_probability():
  draws = [int(styles.mix_styles(jnp.zeros((1, 6, 1)), jnp.ones((1, 6, 1)),
                                 jax.random.PRNGKey(seed), prob=0.9)[1]) < 6
           for seed in range(400)]
  # Binomial(400, 0.9): mean 360, std 6; [330, 390] is 5 std either side.
  assert 330 <= sum(draws) <= 390


def test_truncation_at_psi_0_gives_w_avg_and_at_1_leaves_w():
  ws = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 3))
  w_avg = jnp.array([0.5, -1.0, 2.0])
  np.testing.assert_array_equal(styles.truncate(ws, w_avg, 1.0), ws)
  np.testing.assert_allclose(styles.truncate(ws, w_avg, 0.0), jnp.broadcast_to(w_avg, ws.shape))
  half = styles.truncate(ws, w_avg, 0.7, cutoff=2)
  np.testing.assert_allclose(half[:, :2], np.asarray(w_avg) + 0.7 * (np.asarray(ws[:, :2]) -
                                                                     np.asarray(w_avg)), rtol=1e-6)
  np.testing.assert_array_equal(half[:, 2:], ws[:, 2:])


def test_tracked_average_moves_toward_the_batch_mean_by_1_minus_beta():
  w_avg, w = jnp.array([1.0, 2.0]), jnp.array([[3.0, 0.0], [5.0, 2.0]])
  np.testing.assert_allclose(styles.update_w_avg(w_avg, w, 0.995),
                             0.995 * np.array([1.0, 2.0]) + 0.005 * np.array([4.0, 1.0]),
                             rtol=1e-6)


def test_ema_half_life_in_images():
  beta = float(styles.ema_beta(32, 10.0, images_shown=10**6))
  assert beta ** (10_000 / 32) == pytest.approx(0.5, rel=1e-5)  # 10k images halve the weight
  # Ramp-up: the half-life is at most images_shown * rampup.
  ramped = float(styles.ema_beta(32, 10.0, images_shown=3200, rampup=0.05))
  assert ramped == pytest.approx(0.5 ** (32 / 160), rel=1e-6)
  assert float(styles.ema_beta(32, 10.0, images_shown=0, rampup=0.05)) == 0.0


def _d_apply(x):
  """A small nonlinear 'discriminator' with a cross-example term, float64."""
  features = jnp.tanh(x.reshape(x.shape[0], -1) @ jnp.linspace(-1, 1, 12 * 3).reshape(-1, 3))
  return jnp.sum(features ** 2, axis=1) + 0.1 * jnp.mean(x)


def test_r1_penalty_against_finite_differences():
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 2, 2, 3), jnp.float64)
    penalty, scores = r1_penalty(_d_apply, x)
    np.testing.assert_allclose(scores, _d_apply(x))
    total = lambda v: float(jnp.sum(_d_apply(jnp.asarray(v))))
    xs, h = np.asarray(x), 1e-6
    grads = np.zeros_like(xs)
    for index in np.ndindex(xs.shape):
      step = np.zeros_like(xs)
      step[index] = h
      grads[index] = (total(xs + step) - total(xs - step)) / (2 * h)
    np.testing.assert_allclose(penalty, np.sum(grads ** 2, axis=(1, 2, 3)), rtol=1e-7)


def _synthesize(ws):
  """ws (N, L, D) -> images (N, 4, 4, 2): nonlinear and mixing the layers, float64."""
  n = ws.shape[0]
  mixed = jnp.sin(ws.reshape(n, -1) @ jnp.linspace(-0.5, 1.0, 3 * 2 * 32).reshape(6, 32))
  return mixed.reshape(n, 4, 4, 2)


def test_path_lengths_against_finite_differences():
  with jax.enable_x64(True):
    ws = jax.random.normal(jax.random.PRNGKey(2), (3, 3, 2), jnp.float64)
    key = jax.random.PRNGKey(3)
    lengths, images = regularizers.path_lengths(_synthesize, ws, key)
    direction = np.asarray(jax.random.normal(key, images.shape, jnp.float64)) / np.sqrt(16)
    value = lambda w: float(jnp.sum(_synthesize(jnp.asarray(w)) * direction))
    w0, h = np.asarray(ws), 1e-6
    jty = np.zeros_like(w0)
    for index in np.ndindex(w0.shape):
      step = np.zeros_like(w0)
      step[index] = h
      jty[index] = (value(w0 + step) - value(w0 - step)) / (2 * h)
    expected = np.sqrt(np.mean(np.sum(jty ** 2, axis=2), axis=1))
    np.testing.assert_allclose(lengths, expected, rtol=1e-7)


def test_path_length_penalty_and_its_gradient_through_the_running_mean():
  with jax.enable_x64(True):
    lengths = jnp.array([0.5, 1.5, 2.0], jnp.float64)
    penalty, new_mean = regularizers.path_length_penalty(lengths, jnp.float64(1.0), 0.01)
    assert float(new_mean) == pytest.approx(1.0 + 0.01 * (4.0 / 3 - 1.0))
    np.testing.assert_allclose(penalty, (np.asarray(lengths) - float(new_mean)) ** 2)
    loss = lambda l: jnp.mean(regularizers.path_length_penalty(l, jnp.float64(1.0), 0.01)[0])
    grad = np.asarray(jax.grad(loss)(lengths))
    l0, h = np.asarray(lengths), 1e-6
    numeric = [(float(loss(jnp.asarray(l0 + h * e))) - float(loss(jnp.asarray(l0 - h * e))))
               / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-7)


def numpy_adam(params, grads_seq, lr, b1, b2, eps):
  """Plain Adam (Kingma & Ba, bias-corrected), numpy float64."""
  m = v = np.zeros_like(params)
  for t, g in enumerate(grads_seq, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    params = params - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
  return params


@pytest.mark.parametrize("interval", [1, 4, 16])
def test_lazy_adam_adjusts_lr_and_betas_by_k_over_k_plus_1(interval):
  c = interval / (interval + 1) if interval > 1 else 1.0
  assert regularizers.lazy_ratio(interval) == c
  tx = regularizers.lazy_adam(0.002, 0.0, 0.99, 1e-8, interval)
  params = jnp.array([0.3, -0.2, 1.0])
  grads = [jnp.array([0.1, -0.5, 2.0]), jnp.array([-0.3, 0.2, 1.0]), jnp.array([1.0, 1e-3, -4.0])]
  state, p = tx.init(params), params
  for g in grads:
    updates, state = tx.update(g, state, p)
    p = p + updates
  want = numpy_adam(np.asarray(params, np.float64), [np.asarray(g, np.float64) for g in grads],
                    0.002 * c, 0.0, 0.99 ** c, 1e-8)
  np.testing.assert_allclose(np.asarray(p), want, rtol=1e-5)
