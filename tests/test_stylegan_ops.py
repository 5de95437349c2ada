"""StyleGAN ops against independent numpy / scipy computations (NHWC, tiny shapes)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from gan.families.stylegan import ops

RNG = np.random.default_rng(0)
TAPS = np.array([1, 3, 3, 1], np.float32)


def normal(*shape) -> np.ndarray:
  return RNG.standard_normal(shape).astype(np.float32)


def upfirdn_1d(x: np.ndarray, taps: np.ndarray, up: int, down: int, p0: int, p1: int,
               axis: int) -> np.ndarray:
  """The reference's 1-D upfirdn along ``axis`` from scipy's full upfirdn (float64).

  scipy gives full[m] = sum_i u[i] h[m - i] for the zero-inserted u. With pads p0, p1
  the reference's output j is full[j + k - 1 - p0] (zero outside), j < n*up + p0 + p1 - k + 1,
  then every down-th sample.
  """
  x = np.moveaxis(x.astype(np.float64), axis, -1)
  n, k = x.shape[-1], len(taps)
  full = scipy.signal.upfirdn(taps.astype(np.float64), x, up=up, axis=-1)
  length = n * up + p0 + p1 - k + 1
  idx = np.arange(length) + k - 1 - p0
  valid = (idx >= 0) & (idx < full.shape[-1])
  out = np.where(valid, full[..., np.clip(idx, 0, full.shape[-1] - 1)], 0.0)
  return np.moveaxis(out[..., ::down], -1, axis)


def upfirdn_2d(x, taps, up, down, padding):
  """Separable reference: taps (normalised to sum 1) along W (x pads), then H (y pads)."""
  x0, x1, y0, y1 = padding
  taps = taps / taps.sum()
  x = upfirdn_1d(x, taps, up, down, x0, x1, axis=2)
  return upfirdn_1d(x, taps, up, down, y0, y1, axis=1)


def test_fir_filter():
  np.testing.assert_array_equal(ops.fir_filter([1, 3, 3, 1]), np.outer(TAPS, TAPS) / 64)
  np.testing.assert_array_equal(ops.fir_filter([1, 2, 1]), np.outer([1, 2, 1], [1, 2, 1]) / 16)
  assert ops.fir_filter([1, 2, 1]).dtype == np.float32


def test_upfirdn2d_equals_scipy_upfirdn():
  x = normal(2, 7, 6, 3)
  f = ops.fir_filter(TAPS)
  k = len(TAPS)
  # With padding (k - 1, k - up) the op is exactly scipy's upfirdn, down included.
  for up, down in [(1, 1), (2, 1), (1, 2), (3, 2), (2, 3)]:
    taps = TAPS / TAPS.sum()
    want = scipy.signal.upfirdn(taps, x.astype(np.float64), up, down, axis=2)
    want = scipy.signal.upfirdn(taps, want, up, down, axis=1)
    got = ops.upfirdn2d(jnp.asarray(x), f, up=up, down=down, padding=(k - 1, k - up) * 2)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6, err_msg=f"up={up} down={down}")
  # Other paddings, negative ones crop; x and y differ.
  for up, down, padding in [(1, 1, (0, 0, 0, 0)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)),
                            (3, 2, (-1, 2, 0, -3)), (2, 3, (-2, -1, 3, 1)), (1, 1, (-2, 3, 1, -1))]:
    got = ops.upfirdn2d(jnp.asarray(x), f, up=up, down=down, padding=padding)
    want = upfirdn_2d(x, TAPS, up, down, padding)
    assert got.shape == want.shape, (padding, got.shape, want.shape)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6, err_msg=f"{up} {down} {padding}")


def test_upfirdn2d_gain_flip_and_non_separable_filter():
  x = normal(1, 6, 5, 2)
  f = normal(3, 2)  # asymmetric: convolution and correlation differ
  got = ops.upfirdn2d(jnp.asarray(x), f, up=2, padding=(1, 0, 2, 1), gain=1.5)
  got_flip = ops.upfirdn2d(jnp.asarray(x), f, up=2, padding=(1, 0, 2, 1), gain=1.5,
                           flip_filter=True)
  u = np.zeros((1, 12, 10, 2))
  u[:, ::2, ::2] = x
  u = np.pad(u, ((0, 0), (2, 1), (1, 0), (0, 0)))
  for c in range(2):
    conv = 1.5 * scipy.signal.convolve2d(u[0, :, :, c], f, mode="valid")
    corr = 1.5 * scipy.signal.correlate2d(u[0, :, :, c], f, mode="valid")
    np.testing.assert_allclose(np.asarray(got[0, :, :, c]), conv, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got_flip[0, :, :, c]), corr, atol=1e-5)


def test_resampling_wrappers():
  x = normal(2, 8, 8, 3)
  f = ops.fir_filter(TAPS)
  up = ops.upsample2d(jnp.asarray(x), f)
  assert up.shape == (2, 16, 16, 3)
  np.testing.assert_allclose(np.asarray(up), 4 * upfirdn_2d(x, TAPS, 2, 1, (2, 1, 2, 1)),
                             atol=1e-5)
  down = ops.downsample2d(jnp.asarray(x), f, padding=(0, 1, 1, 0))
  np.testing.assert_allclose(np.asarray(down), upfirdn_2d(x, TAPS, 1, 2, (1, 2, 2, 1)),
                             atol=1e-6)
  same = ops.filter2d(jnp.asarray(x), f, gain=2.0)
  np.testing.assert_allclose(np.asarray(same), 2 * upfirdn_2d(x, TAPS, 1, 1, (2, 1, 2, 1)),
                             atol=1e-5)
  # The upsampling gain keeps a constant image constant away from the borders.
  ones = ops.upsample2d(jnp.ones((1, 6, 6, 1)), f)
  np.testing.assert_allclose(np.asarray(ones[0, 2:-2, 2:-2, 0]), 1.0, atol=1e-6)


def modulated_reference(x, weight, styles, up, demodulate):
  """Per-sample scipy convolutions with explicitly modulated (and demodulated) weights.

  up == 1: 'same' correlation (padding 1). up == 2 (the reference's transposed conv,
  flip_weight False): zero-insert, full convolution with the kernel, then the
  [1,3,3,1] FIR with padding 1 and gain 4.
  """
  n, h, w_, cin = x.shape
  cout = weight.shape[-1]
  f = 4 * np.outer(TAPS, TAPS) / 64
  out = np.zeros((n, h * up, w_ * up, cout))
  for s in range(n):
    wn = weight.astype(np.float64) * styles[s][None, None, :, None]
    if demodulate:
      wn = wn / np.sqrt(np.sum(wn ** 2, axis=(0, 1, 2)) + 1e-8)
    for o in range(cout):
      for i in range(cin):
        if up == 1:
          xi = np.pad(x[s, :, :, i], 1)
          out[s, :, :, o] += scipy.signal.correlate2d(xi, wn[:, :, i, o], mode="valid")
        else:
          u = np.zeros((2 * h - 1, 2 * w_ - 1))
          u[::2, ::2] = x[s, :, :, i]
          t = np.pad(scipy.signal.convolve2d(u, wn[:, :, i, o], mode="full"), 1)
          out[s, :, :, o] += scipy.signal.convolve2d(t, f, mode="valid")
  return out


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_matches_per_sample_loop(up, demodulate):
  x, weight, styles = normal(2, 5, 5, 3), normal(3, 3, 3, 4), normal(2, 3)
  noise = normal(2, 5 * up, 5 * up, 1)
  want = modulated_reference(x, weight, styles, up, demodulate) + noise
  kwargs = dict(noise=jnp.asarray(noise), up=up, padding=1, demodulate=demodulate,
                resample_filter=ops.fir_filter(TAPS))
  fused = ops.modulated_conv2d(jnp.asarray(x), jnp.asarray(weight), jnp.asarray(styles),
                               fused=True, **kwargs)
  separate = ops.modulated_conv2d(jnp.asarray(x), jnp.asarray(weight), jnp.asarray(styles),
                                  fused=False, **kwargs)
  scale = np.abs(want).max()
  np.testing.assert_allclose(np.asarray(fused), want, atol=1e-5 * scale)
  np.testing.assert_allclose(np.asarray(separate), want, atol=1e-5 * scale)
  np.testing.assert_allclose(np.asarray(fused), np.asarray(separate), atol=1e-5 * scale)


def test_demodulation_gives_unit_variance():
  # A 3x3 input with no padding gives one output pixel per sample: for x iid N(0, 1)
  # each output is N(0, sum w'^2) = N(0, 1) after demodulation, independent over
  # samples. mean(y^2) over N samples has std sqrt(2 / N) (chi-square), so 5 sigma
  # with N = 4096 is 0.11; the data are seeded, so the check is deterministic.
  n = 4096
  x = normal(n, 3, 3, 8)
  weight, styles = normal(3, 3, 8, 4), 3 * normal(n, 8)
  for fused in (True, False):
    y = ops.modulated_conv2d(jnp.asarray(x), jnp.asarray(weight), jnp.asarray(styles),
                             fused=fused)
    assert y.shape == (n, 1, 1, 4)
    second_moment = np.mean(np.square(np.asarray(y, np.float64)), axis=(0, 1, 2))
    np.testing.assert_allclose(second_moment, 1.0, atol=5 * math.sqrt(2 / n))


def test_instance_norm_and_adain():
  x = normal(2, 4, 3, 5) * 3 + 1
  mean = x.mean(axis=(1, 2), keepdims=True)
  centred = x - mean
  want = centred / np.sqrt((centred ** 2).mean(axis=(1, 2), keepdims=True) + 1e-8)
  np.testing.assert_allclose(np.asarray(ops.instance_norm(jnp.asarray(x))), want, atol=1e-5)
  scale, bias = normal(2, 5), normal(2, 5)
  got = ops.adain(jnp.asarray(x), jnp.asarray(scale), jnp.asarray(bias))
  np.testing.assert_allclose(np.asarray(got), x * (scale[:, None, None] + 1) + bias[:, None, None],
                             atol=1e-5)
  z = normal(3, 7)
  np.testing.assert_allclose(np.asarray(ops.normalize_2nd_moment(jnp.asarray(z))),
                             z / np.sqrt((z ** 2).mean(-1, keepdims=True) + 1e-8), rtol=1e-5)


def test_bias_act():
  x, b = normal(2, 3, 4), normal(4)
  lrelu = lambda v, a: np.where(v >= 0, v, a * v)
  got = ops.bias_act(jnp.asarray(x), jnp.asarray(b), act="lrelu")
  np.testing.assert_allclose(np.asarray(got), math.sqrt(2) * lrelu(x + b, 0.2), rtol=1e-6)
  got = ops.bias_act(jnp.asarray(x), jnp.asarray(b), act="lrelu", alpha=0.1, gain=3.0, clamp=1.0)
  np.testing.assert_allclose(np.asarray(got), np.clip(3 * lrelu(x + b, 0.1), -1, 1), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(ops.bias_act(jnp.asarray(x))), x)
  got = ops.bias_act(jnp.asarray(x), jnp.asarray(b), clamp=0.5)
  np.testing.assert_allclose(np.asarray(got), np.clip(x + b, -0.5, 0.5), rtol=1e-6)


def test_fully_connected_learning_rate_multiplier():
  # Stored w_s is used as w_e = c w_s, c = lr / sqrt(in); dL/dw_s = c dL/dw_e, so an SGD
  # step eta moves w_e by -eta c^2 dL/dw_e. Bias: b_e = lr b_s moves by -eta lr^2 dL/db_e.
  # With equal effective parameters, the lr layer's effective change is lr^2 times the
  # plain layer's (c^2 / (1 / in) = lr^2).
  lr, fan_in, eta = 0.01, 6, 0.1
  x = jnp.asarray(normal(5, fan_in))
  plain = ops.FullyConnected(3, activation="lrelu")
  slow = ops.FullyConnected(3, activation="lrelu", lr_multiplier=lr, bias_init=0.5)
  p_plain = plain.init(jax.random.PRNGKey(0), x)["params"]
  p_slow = slow.init(jax.random.PRNGKey(1), x)["params"]
  np.testing.assert_allclose(p_slow["bias"], 0.5)
  assert 50 < float(jnp.std(p_slow["weight"])) < 200  # N(0, 1) / lr
  p_plain = {"weight": p_plain["weight"], "bias": jnp.asarray(normal(3))}
  p_slow = {"weight": p_plain["weight"] / lr, "bias": p_plain["bias"] / lr}
  loss = lambda model, p: jnp.sum(jnp.sin(model.apply({"params": p}, x)))
  np.testing.assert_allclose(loss(plain, p_plain), loss(slow, p_slow), rtol=1e-5)

  def effective_change(model, p, weight_gain, bias_gain):
    g = jax.grad(lambda p: loss(model, p))(p)
    return -eta * g["weight"] * weight_gain, -eta * g["bias"] * bias_gain

  dw_plain, db_plain = effective_change(plain, p_plain, 1 / math.sqrt(fan_in), 1.0)
  dw_slow, db_slow = effective_change(slow, p_slow, lr / math.sqrt(fan_in), lr)
  np.testing.assert_allclose(dw_slow, lr ** 2 * dw_plain, rtol=1e-4)
  np.testing.assert_allclose(db_slow, lr ** 2 * db_plain, rtol=1e-4)


def test_conv2d_downsample_against_scipy():
  # Down path: FIR with padding 2 (k = 3, [1,3,3,1]), then stride-2 correlation.
  x = normal(1, 8, 8, 2)
  layer = ops.Conv2d(3, 3, down=2, activation="lrelu", conv_clamp=0.8)
  params = layer.init(jax.random.PRNGKey(0), jnp.asarray(x))["params"]
  params = {"weight": params["weight"], "bias": jnp.asarray(normal(3))}
  got = layer.apply({"params": params}, jnp.asarray(x), gain=0.5)
  w = np.asarray(params["weight"]) / math.sqrt(2 * 9)
  filtered = upfirdn_2d(x, TAPS, 1, 1, (2, 2, 2, 2))   # (1, 9, 9, 2)
  want = np.zeros((1, 4, 4, 3))
  for o in range(3):
    for i in range(2):
      want[0, :, :, o] += scipy.signal.correlate2d(filtered[0, :, :, i], w[:, :, i, o],
                                                   mode="valid")[::2, ::2]
  v = want + np.asarray(params["bias"])
  want = np.clip(np.where(v >= 0, v, 0.2 * v) * math.sqrt(2) * 0.5, -0.4, 0.4)
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def minibatch_stddev_loop(x: np.ndarray, group_size: int, num_channels: int) -> np.ndarray:
  n, h, w, c = x.shape
  g = min(group_size, n)
  m = n // g
  chunk = c // num_channels
  out = np.zeros((n, h, w, c + num_channels))
  out[..., :c] = x
  for e in range(n):
    members = x[[j for j in range(n) if j % m == e % m]].astype(np.float64)  # (G, H, W, C)
    std = np.sqrt(members.var(axis=0) + 1e-8)
    for f in range(num_channels):
      out[e, :, :, c + f] = std[..., f * chunk:(f + 1) * chunk].mean()
  return out


@pytest.mark.parametrize("group_size,num_channels", [(4, 1), (2, 2), (8, 3), (16, 1)])
def test_minibatch_stddev(group_size, num_channels):
  x = normal(8, 3, 2, 6)
  got = ops.minibatch_stddev(jnp.asarray(x), group_size, num_channels)
  np.testing.assert_allclose(np.asarray(got), minibatch_stddev_loop(x, group_size, num_channels),
                             atol=1e-6)
  with pytest.raises(ValueError):
    ops.minibatch_stddev(jnp.asarray(x[:6]), 4)
