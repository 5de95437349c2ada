"""Resizing images to a feature network's input size, in JAX, as the FID protocols do.

  legacy  TF1 ResizeBilinear(align_corners=False, half_pixel_centers=False), the op
          inside the 2015 Inception graph of TTUR's FID: source coordinate
          out_index * in / out, no antialiasing (so downsampling aliases).
  clean   clean-fid's "clean" resize (cleanfid/resize.py, make_resizer("PIL", False,
          "bicubic")): each channel as a float32 PIL 'F' image, Image.BICUBIC,
          then clip to [0, 255] and no quantisation. Pillow's bicubic
          (libImaging/Resample.c) is Keys' kernel with a = -0.5 on half-pixel
          centres, its support stretched by in / out when downsampling
          (antialiasing), the taps renormalised to sum to 1 at the borders.

Both are separable: per axis an (out, in) weight matrix, built in numpy at trace
time (shapes are static) and applied with einsum at HIGHEST precision (the
default rounds operands to bf16 on TPUs, to TF32 on recent GPUs). Input: float32
[N, H, W, 3] pixel values in [0, 255]. clean-fid feeds uint8 files converted
to float32 (exact); quantising generated images first is the caller's choice.

jax.image.resize is neither: its 'bilinear' samples at half-pixel centres and
antialiases, unlike legacy; its 'bicubic' (antialias=True) is Pillow's algorithm
but with float32 coordinates, ~1e-2 grey levels off PIL, and unclipped.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

MODES = ("legacy", "clean")


@functools.lru_cache(maxsize=None)
def legacy_weights(in_size: int, out_size: int) -> np.ndarray:
  """[out, in] float32 weights of TF1 ResizeBilinear with its legacy scaler along one axis.

  As tensorflow/core/kernels/image/resize_bilinear_op.cc: scale = in / out in
  float32, source = float(i) * scale, lower = floor, upper = min(ceil, in - 1),
  lerp = source - floor, all in float32.
  """
  scale = np.float32(in_size) / np.float32(out_size)
  src = np.arange(out_size, dtype=np.float32) * scale
  floor = np.floor(src)
  lower = np.maximum(floor.astype(np.int64), 0)
  upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
  lerp = src - floor
  weights = np.zeros((out_size, in_size), np.float32)
  rows = np.arange(out_size)
  np.add.at(weights, (rows, lower), 1.0 - lerp)
  np.add.at(weights, (rows, upper), lerp)
  return weights


def _pil_bicubic(x: np.ndarray) -> np.ndarray:
  """Pillow's bicubic_filter: Keys' cubic convolution kernel with a = -0.5."""
  a = -0.5
  x = np.abs(x)
  near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
  far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
  return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=None)
def clean_weights(in_size: int, out_size: int) -> np.ndarray:
  """[out, in] float32 weights of Pillow's BICUBIC resample along one axis.

  As precompute_coeffs in Pillow's src/libImaging/Resample.c (in float64):
  scale = in / out, filterscale = max(scale, 1), support = 2 * filterscale;
  output pixel i has centre (i + 0.5) * scale and takes input pixels
  [int(centre - support + 0.5), int(centre + support + 0.5)) clipped to the
  image, weighted bicubic((x - centre + 0.5) / filterscale), normalised to sum 1.
  """
  scale = in_size / out_size
  filterscale = max(scale, 1.0)
  support = 2.0 * filterscale
  centre = (np.arange(out_size) + 0.5) * scale
  # C's (int) truncates toward 0; values below 0 are clipped to 0 just after anyway.
  xmin = np.maximum(np.trunc(centre - support + 0.5), 0)
  xmax = np.minimum(np.trunc(centre + support + 0.5), in_size)
  x = np.arange(in_size)[None, :]
  taken = (x >= xmin[:, None]) & (x < xmax[:, None])
  weights = np.where(taken, _pil_bicubic((x - centre[:, None] + 0.5) / filterscale), 0.0)
  total = weights.sum(axis=1, keepdims=True)
  weights = np.where(total != 0.0, weights / np.where(total != 0.0, total, 1.0), weights)
  return weights.astype(np.float32)


def _separable(images: jax.Array, weights_h: np.ndarray, weights_w: np.ndarray) -> jax.Array:
  """[N, H, W, C] -> [N, out_h, out_w, C]: width pass first (Pillow's order), then height."""
  hi = jax.lax.Precision.HIGHEST
  x = jnp.einsum("pw,nhwc->nhpc", jnp.asarray(weights_w), images, precision=hi)
  return jnp.einsum("oh,nhpc->nopc", jnp.asarray(weights_h), x, precision=hi)


def _size(size) -> tuple[int, int]:
  if isinstance(size, int):
    return size, size
  height, width = size
  return int(height), int(width)


def resize(images: jax.Array, size, mode: str) -> jax.Array:
  """float32 [N, H, W, 3] in [0, 255] -> float32 [N, h, w, 3]; size: int or (h, w).

  mode: one of MODES (see the module docstring). Jittable.
  """
  if mode not in MODES:
    raise ValueError(f"unknown resize mode {mode!r}; known modes: {', '.join(MODES)}")
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4:
    raise ValueError(f"resize takes images [N, H, W, C], got shape {images.shape}")
  out_h, out_w = _size(size)
  _, in_h, in_w, _ = images.shape
  if mode == "legacy":
    return _separable(images, legacy_weights(in_h, out_h), legacy_weights(in_w, out_w))
  # clean-fid clips the float result (bicubic overshoots) and does not quantise it.
  resized = _separable(images, clean_weights(in_h, out_h), clean_weights(in_w, out_w))
  return jnp.clip(resized, 0.0, 255.0)
