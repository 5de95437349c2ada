"""Layers and ops shared by StyleGAN (v1) and StyleGAN2, after NVlabs/stylegan2-ada-pytorch.

Layout is NHWC and kernels are HWIO (the reference is NCHW / OIHW). Padding tuples
keep the reference's order (x0, x1, y0, y1): x is the width axis (axis 2 here), y
the height axis (axis 1). Filters are numpy arrays, i.e. compile-time constants.

Reference facts reproduced here:
  * upfirdn2d: zero-insertion upsample (up - 1 zeros after every pixel), signed pad
    (negative crops), true convolution with the FIR filter (correlation when
    flip_filter) scaled by gain ** (f.ndim / 2), then keep every down-th pixel.
  * conv2d_resample: down = FIR then strided conv; up = transposed conv then FIR.
    The networks call it with flip_weight = (up == 1), so an upsampling layer
    convolves with its kernel while every other layer correlates; ``flip_weight``
    below keeps that convention, which matters only when copying weights.
  * Equalized learning rate everywhere: parameters stored N(0, 1), scaled at run
    time (FullyConnected by lr_multiplier / sqrt(in), Conv2d by 1 / sqrt(in k k)).
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Padding = int | Sequence[int]
_DIMS = ("NHWC", "HWIO", "NHWC")
_DEFAULT_GAIN = {"linear": 1.0, "relu": math.sqrt(2.0), "lrelu": math.sqrt(2.0)}


def fir_filter(taps: Sequence[float]) -> np.ndarray:
  """1-D taps -> (k, k) float32 outer product normalised to sum 1 (setup_filter)."""
  taps = np.asarray(taps, np.float32)
  f = np.outer(taps, taps) if taps.ndim == 1 else taps
  return (f / f.sum()).astype(np.float32)


def _parse_padding(padding: Padding) -> tuple[int, int, int, int]:
  """int, (x, y) or (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
  if isinstance(padding, int):
    return padding, padding, padding, padding
  padding = tuple(int(p) for p in padding)
  if len(padding) == 2:
    return padding[0], padding[0], padding[1], padding[1]
  if len(padding) != 4:
    raise ValueError(f"padding must be an int, (x, y) or (x0, x1, y0, y1), got {padding}")
  return padding


def _filter_2d(f) -> np.ndarray:
  if f is None:
    return np.ones((1, 1), np.float32)
  f = np.asarray(f, np.float32)
  # A 1-D filter is separable in the reference (f * sqrt(gain) along each axis):
  # its outer product with the full gain is the same operator.
  return np.outer(f, f) if f.ndim == 1 else f


def _conv(x: jax.Array, w: jax.Array, stride: int = 1, padding=((0, 0), (0, 0)),
          dilation: int = 1, groups: int = 1) -> jax.Array:
  """Correlation of NHWC x with HWIO w; padding ((y0, y1), (x0, x1)) of the dilated input.

  ``dilation`` inserts dilation - 1 zeros between input pixels; negative padding crops.
  """
  (y0, y1), (x0, x1) = padding
  if dilation > 1 or min(y0, y1, x0, x1) < 0:
    # Zero insertion and crops as an explicit pad: negative conv padding is not on every
    # backend, and with XLA:CPU's input-dilated convolution the StyleGAN2 quickstart G's
    # parameter gradient took 0.89 s against 0.46 s with the pad (batch 32, 2 cores).
    pads = [(0, 0, 0), (y0, y1, dilation - 1), (x0, x1, dilation - 1), (0, 0, 0)]
    x = jax.lax.pad(x, jnp.zeros((), x.dtype), pads)
    padding, dilation = ((0, 0), (0, 0)), 1
  return jax.lax.conv_general_dilated(
      x, w.astype(x.dtype), window_strides=(stride, stride), padding=padding,
      dimension_numbers=_DIMS, feature_group_count=groups)


def upfirdn2d(x: jax.Array, f, up: int = 1, down: int = 1, padding: Padding = 0,
              gain: float = 1.0, flip_filter: bool = False) -> jax.Array:
  """(N, H, W, C) -> (N, (H*up + y0 + y1 - kh + 1) / down, ..., C): upsample, pad, FIR, downsample.

  ``f`` is a (kh, kw) numpy filter (1-D: separable, None: identity), applied per channel.
  A separable filter (all of StyleGAN's) runs as two 1-D passes of shifted multiply-adds,
  each followed by its axis' striding: XLA:CPU's depthwise convolution was 60x slower
  (32 x 32 x 32 x 64, [1, 3, 3, 1] upsampling: 1.16 s against 20 ms forward).
  """
  x0, x1, y0, y1 = _parse_padding(padding)
  f = _filter_2d(f)
  kernel = (f if flip_filter else f[::-1, ::-1]) * np.float32(gain)
  # Zero insertion leaves up - 1 zeros after the last pixel too: the extra high pad.
  pads = [(0, 0, 0), (y0, y1 + up - 1, up - 1), (x0, x1 + up - 1, up - 1), (0, 0, 0)]
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), pads)  # negative pads crop
  rows, cols = _separate(kernel)
  if rows is None:  # not separable: one depthwise convolution
    channels = x.shape[-1]
    depthwise = np.tile(kernel[:, :, None, None], (1, 1, 1, channels))
    return jax.lax.conv_general_dilated(x, jnp.asarray(depthwise, x.dtype), (down, down),
                                        "VALID", dimension_numbers=_DIMS,
                                        feature_group_count=channels)
  return _fir_1d(_fir_1d(x, rows, down, axis=1), cols, down, axis=2)


def _separate(kernel: np.ndarray):
  """(rows, cols) 1-D taps with outer(rows, cols) == kernel, or (None, None) if none exist."""
  i, j = np.unravel_index(np.argmax(np.abs(kernel)), kernel.shape)
  rows, cols = kernel[:, j] / kernel[i, j], kernel[i, :].copy()
  if not np.allclose(np.outer(rows, cols), kernel, rtol=1e-6, atol=1e-9):
    return None, None
  return rows, cols


def _fir_1d(x: jax.Array, taps: np.ndarray, stride: int, axis: int) -> jax.Array:
  """Valid correlation of ``x`` with ``taps`` along ``axis``, keeping every stride-th output."""
  out = (x.shape[axis] - len(taps)) // stride + 1
  total = None
  for k, tap in enumerate(taps):
    if tap == 0:
      continue
    start = [0] * x.ndim
    limit = list(x.shape)
    strides = [1] * x.ndim
    start[axis], limit[axis], strides[axis] = k, k + (out - 1) * stride + 1, stride
    term = jax.lax.slice(x, start, limit, strides) * float(tap)  # weak: keeps bf16
    total = term if total is None else total + term
  return total


def filter2d(x: jax.Array, f, padding: Padding = 0, gain: float = 1.0) -> jax.Array:
  """FIR filter keeping the shape; ``padding`` is added on top of the centring padding."""
  x0, x1, y0, y1 = _parse_padding(padding)
  fh, fw = _filter_2d(f).shape
  p = (x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2)
  return upfirdn2d(x, f, padding=p, gain=gain)


def upsample2d(x: jax.Array, f, factor: int = 2, padding: Padding = 0,
               gain: float = 1.0) -> jax.Array:
  """(N, H, W, C) -> (N, H*factor, W*factor, C) with the FIR filter as interpolator."""
  x0, x1, y0, y1 = _parse_padding(padding)
  fh, fw = _filter_2d(f).shape
  p = (x0 + (fw + factor - 1) // 2, x1 + (fw - factor) // 2,
       y0 + (fh + factor - 1) // 2, y1 + (fh - factor) // 2)
  return upfirdn2d(x, f, up=factor, padding=p, gain=gain * factor ** 2)


def downsample2d(x: jax.Array, f, factor: int = 2, padding: Padding = 0,
                 gain: float = 1.0) -> jax.Array:
  """(N, H, W, C) -> (N, H/factor, W/factor, C): FIR low-pass, then keep every factor-th pixel."""
  x0, x1, y0, y1 = _parse_padding(padding)
  fh, fw = _filter_2d(f).shape
  p = (x0 + (fw - factor + 1) // 2, x1 + (fw - factor) // 2,
       y0 + (fh - factor + 1) // 2, y1 + (fh - factor) // 2)
  return upfirdn2d(x, f, down=factor, padding=p, gain=gain)


def conv2d_resample(x: jax.Array, w: jax.Array, f=None, up: int = 1, down: int = 1,
                    padding: Padding = 0, groups: int = 1, flip_weight: bool = True) -> jax.Array:
  """x (N, H, W, Cin) * w (k, k, Cin/groups, Cout), the reference's conv2d_resample.

  ``padding`` is with respect to the upsampled image, applied once. flip_weight
  True correlates with w (torch conv2d), False convolves (w flipped spatially).
  """
  kh, kw = w.shape[:2]
  fh, fw = _filter_2d(f).shape
  px0, px1, py0, py1 = _parse_padding(padding)
  if up > 1:
    px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
    py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
  if down > 1:
    px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
    py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
  if not flip_weight:
    w = w[::-1, ::-1]
  pad = (px0, px1, py0, py1)
  if kh == kw == 1 and down > 1 and up == 1:  # 1x1: downsample first, then convolve
    return _conv(upfirdn2d(x, f, down=down, padding=pad), w, groups=groups)
  if kh == kw == 1 and up > 1 and down == 1:  # 1x1: convolve first, then upsample
    return upfirdn2d(_conv(x, w, groups=groups), f, up=up, padding=pad, gain=up ** 2)
  if down > 1 and up == 1:
    return _conv(upfirdn2d(x, f, padding=pad), w, stride=down, groups=groups)
  if up > 1:
    # The reference's transposed conv (stride up, padding pt) equals a correlation of
    # the zero-dilated input padded by k - 1 - pt with the same effective kernel.
    px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
    pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
    x = _conv(x, w, padding=((kh - 1 - pyt,) * 2, (kw - 1 - pxt,) * 2), dilation=up,
              groups=groups)
    x = upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up ** 2)
    return upfirdn2d(x, f, down=down) if down > 1 else x
  return _conv(x, w, padding=((py0, py1), (px0, px1)), groups=groups)


def bias_act(x: jax.Array, b: jax.Array | None = None, act: str = "linear", alpha: float = 0.2,
             gain: float | None = None, clamp: float | None = None) -> jax.Array:
  """(..., C): add bias (C,), activate, multiply by gain (default per act), clamp to +-clamp."""
  if b is not None:
    x = x + b.astype(x.dtype)
  if act == "lrelu":
    x = jnp.where(x >= 0, x, x * alpha)
  elif act == "relu":
    x = jax.nn.relu(x)
  elif act != "linear":
    raise ValueError(f"unknown activation {act!r}")
  gain = _DEFAULT_GAIN[act] if gain is None else gain
  if gain != 1:
    x = x * gain
  if clamp is not None:
    x = jnp.clip(x, -clamp, clamp)
  return x


class FullyConnected(nn.Module):
  """x (..., in) -> (..., features); the reference FullyConnectedLayer.

  weight (in, features) is stored N(0, 1) / lr_multiplier and used times
  lr_multiplier / sqrt(in); bias is stored bias_init and used times lr_multiplier.
  The stored values move at the optimizer's rate while the effective ones move
  lr_multiplier^2 times as fast (for SGD), hence the name. ``weight_gain`` multiplies
  the weight and replaces the activation's gain (StyleGAN v1 puts sqrt(2) in the
  weights: lrelu(sqrt(2) W x + b), where StyleGAN2 writes sqrt(2) lrelu(W x + b)).
  """
  features: int
  bias: bool = True
  bias_init: float = 0.0
  lr_multiplier: float = 1.0
  activation: str = "linear"
  weight_gain: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    fan_in = x.shape[-1]
    lr = self.lr_multiplier
    weight = self.param("weight", nn.initializers.normal(1.0 / lr), (fan_in, self.features),
                        jnp.float32)
    gain = 1.0 if self.weight_gain is None else self.weight_gain
    x = x @ (weight * (gain * lr / math.sqrt(fan_in)))
    b = None
    if self.bias:
      b = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,),
                     jnp.float32) * lr
    return bias_act(x, b, act=self.activation, gain=None if self.weight_gain is None else 1.0)


class Conv2d(nn.Module):
  """x (N, H, W, in) -> (N, H*up/down, W*up/down, features); the reference Conv2dLayer.

  weight (k, k, in, features) N(0, 1) times 1 / sqrt(in k k), 'same' padding k // 2,
  resampling through conv2d_resample with the FIR ``resample_filter``. ``gain``
  multiplies the activation gain and the clamp, as in the reference.
  """
  features: int
  kernel_size: int
  bias: bool = True
  activation: str = "linear"
  up: int = 1
  down: int = 1
  resample_filter: Sequence[float] = (1, 3, 3, 1)
  conv_clamp: float | None = None
  dtype: jnp.dtype = jnp.float32  # compute type; params stay float32

  @nn.compact
  def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
    x = x.astype(self.dtype)
    k, in_channels = self.kernel_size, x.shape[-1]
    weight = self.param("weight", nn.initializers.normal(1.0),
                        (k, k, in_channels, self.features), jnp.float32)
    b = (self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
         if self.bias else None)
    f = fir_filter(self.resample_filter) if self.up > 1 or self.down > 1 else None
    x = conv2d_resample(x, weight / math.sqrt(in_channels * k * k), f, up=self.up,
                        down=self.down, padding=k // 2, flip_weight=self.up == 1)
    clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
    return bias_act(x, b, act=self.activation, gain=_DEFAULT_GAIN[self.activation] * gain,
                    clamp=clamp)


def modulated_conv2d(x: jax.Array, weight: jax.Array, styles: jax.Array,
                     noise: jax.Array | None = None, up: int = 1, down: int = 1,
                     padding: Padding = 0, resample_filter=None, demodulate: bool = True,
                     fused: bool = True, flip_weight: bool | None = None,
                     dtype=jnp.float32) -> jax.Array:
  """x (N, H, W, Cin), weight (k, k, Cin, Cout), styles (N, Cin) -> (N, H', W', Cout).

  Sample n uses weight[..., i, o] * styles[n, i], demodulated (demodulate) by
  rsqrt(sum_{k, k, i} (weight * styles)^2 + 1e-8) per output channel; ``noise``
  (broadcastable to the output) is added last. fused: one grouped conv with the
  batch folded into feature groups; else scale x, run the shared conv, scale the
  output (the reference's training path). flip_weight None means up == 1, which is
  how the reference's SynthesisLayer calls it. ``dtype``: the convolution's compute type
  (bfloat16 in the top resolutions); the demodulation coefficients are always float32.
  """
  n, _, _, in_channels = x.shape
  kh, kw, _, out_channels = weight.shape
  if flip_weight is None:
    flip_weight = up == 1
  x, weight = x.astype(dtype), weight.astype(jnp.float32)
  styles = styles.astype(jnp.float32)
  resample = dict(f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
  dcoefs = None
  if demodulate:
    # sum_{k,k,i} (w s_i)^2 = sum_i s_i^2 sum_{k,k} w^2: no per-sample weights needed.
    # HIGHEST: a tiny matmul, kept out of TF32 on GPUs.
    sum_sq = jnp.matmul(jnp.square(styles), jnp.sum(jnp.square(weight), axis=(0, 1)),
                        precision=jax.lax.Precision.HIGHEST)
    dcoefs = jax.lax.rsqrt(sum_sq + 1e-8)                                # (N, Cout)

  if not fused:
    x = conv2d_resample(x * styles[:, None, None, :].astype(dtype), weight, **resample)
    if demodulate:
      x = x * dcoefs[:, None, None, :].astype(dtype)
    return x if noise is None else x + noise.astype(dtype)

  w = weight[None] * styles[:, None, None, :, None]                      # (N, k, k, Cin, Cout)
  if demodulate:
    w = w * dcoefs[:, None, None, None, :]
  # Sample n's channels become group n: x (1, H, W, N*Cin), w (k, k, Cin, N*Cout).
  x = x.transpose(1, 2, 0, 3).reshape(1, x.shape[1], x.shape[2], n * in_channels)
  w = w.transpose(1, 2, 3, 0, 4).reshape(kh, kw, in_channels, n * out_channels)
  x = conv2d_resample(x, w, groups=n, **resample)
  x = x.reshape(x.shape[1], x.shape[2], n, out_channels).transpose(2, 0, 1, 3)
  return x if noise is None else x + noise.astype(dtype)


def normalize_2nd_moment(x: jax.Array, axis: int = -1, eps: float = 1e-8) -> jax.Array:
  """x * rsqrt(mean(x^2 over ``axis``) + eps)."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps)


def instance_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """(N, H, W, C): zero mean, then unit mean square over H, W per example and channel (v1)."""
  x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + eps)


def adain(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
  """x (N, H, W, C), scale and bias (N, C) -> x * (scale + 1) + bias (v1's style_mod)."""
  return x * (scale[:, None, None, :] + 1) + bias[:, None, None, :]


def minibatch_stddev(x: jax.Array, group_size: int | None = 4, num_channels: int = 1) -> jax.Array:
  """(N, H, W, C) -> (N, H, W, C + num_channels); the reference MinibatchStdLayer.

  Groups of G = min(group_size, N) examples (example n is in group n % (N / G), as
  the reference's reshape to (G, N/G, ...)); channels split into num_channels
  chunks; each appended map is the chunk's stddev over the group, averaged over
  the chunk's channels and pixels.
  """
  n, height, width, channels = x.shape
  group = n if group_size is None else min(group_size, n)
  if n % group or channels % num_channels:
    raise ValueError(f"minibatch_stddev: batch {n} must be divisible by the group size {group} "
                     f"and channels {channels} by num_channels {num_channels}")
  y = x.astype(jnp.float32).reshape(group, n // group, height, width, num_channels, -1)
  y = y - y.mean(axis=0)
  y = jnp.sqrt(jnp.square(y).mean(axis=0) + 1e-8)                   # (M, H, W, F, c)
  y = y.mean(axis=(1, 2, 4))                                         # (M, F)
  y = jnp.tile(y, (group, 1))                                        # (N, F): n -> n % M
  y = jnp.broadcast_to(y[:, None, None, :], (n, height, width, num_channels))
  return jnp.concatenate([x, y.astype(x.dtype)], axis=-1)
