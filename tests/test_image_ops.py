"""Crop, resize, box filters and the ProGAN fade-in blend, against independent numpy."""

import io

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gan.data import image_ops
from gan.growth.reals import blend_fade_in


def triangle_resize(image: np.ndarray, size: int) -> np.ndarray:
  """Antialiased bilinear (triangle filter widened by the scale), pixel centres at i + 0.5."""
  def along(axis_len):
    scale = axis_len / size
    support = max(scale, 1.0)
    weights = np.zeros((size, axis_len))
    for i in range(size):
      centre = (i + 0.5) * scale
      w = np.maximum(0.0, 1.0 - np.abs((np.arange(axis_len) + 0.5 - centre) / support))
      weights[i] = w / w.sum()
    return weights

  rows, cols = along(image.shape[0]), along(image.shape[1])
  return np.einsum("ih,hwc,jw->ijc", rows, image.astype(float), cols)


def test_center_crop_takes_the_middle_of_the_long_edge():
  wide = np.tile(np.arange(10, dtype=np.uint8)[None, :, None], (6, 1, 3))  # value = column
  np.testing.assert_array_equal(image_ops.center_crop_square(wide)[..., 0],
                                np.tile(np.arange(2, 8), (6, 1)))
  tall = np.transpose(wide, (1, 0, 2))
  np.testing.assert_array_equal(image_ops.center_crop_square(tall)[..., 0],
                                np.tile(np.arange(2, 8)[:, None], (1, 6)))


@pytest.mark.parametrize("source_size,size", [(64, 16), (48, 32), (20, 7), (8, 24)])
def test_bilinear_resize_is_the_antialiased_triangle_filter(source_size, size):
  image = np.random.default_rng(source_size).integers(0, 256, (source_size, source_size, 3),
                                                      dtype=np.uint8)
  got = image_ops.resize_square(image, size).astype(float)
  # PIL filters in 8-bit fixed point: within 1 level of the exact filter.
  np.testing.assert_allclose(got, triangle_resize(image, size), atol=1.0)


def test_box_downsample_equals_repeated_2x2_means():
  images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
  halved = images.astype(float)
  for factor in (2, 4, 8, 16):
    halved = (halved[:, 0::2, 0::2] + halved[:, 0::2, 1::2] + halved[:, 1::2, 0::2]
              + halved[:, 1::2, 1::2]) / 4
    np.testing.assert_array_equal(image_ops.box_downsample(images, factor),
                                  np.clip(np.rint(halved), 0, 255).astype(np.uint8))


def test_truncated_and_garbage_bytes_are_unreadable():
  buffer = io.BytesIO()
  Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(buffer, format="JPEG")
  data = buffer.getvalue()
  image_ops.preprocess(data, 8)  # the whole file is fine
  for bad in (data[:len(data) // 2], b"", b"not an image at all"):
    with pytest.raises(image_ops.UnreadableImageError):
      image_ops.preprocess(bad, 8)


def test_fade_in_blend_matches_the_generator_lerp():
  x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
  coarse = np.zeros_like(x)  # nearest-upsampled 2x2 means, written out with loops
  for i in range(0, 8, 2):
    for j in range(0, 8, 2):
      coarse[:, i:i + 2, j:j + 2] = x[:, i:i + 2, j:j + 2].mean(axis=(1, 2), keepdims=True)
  for alpha in (0.0, 0.3, 1.0):
    np.testing.assert_allclose(np.asarray(blend_fade_in(jnp.asarray(x), alpha)),
                               (1 - alpha) * coarse + alpha * x, atol=1e-6)
