"""gan/evaluation/resize.py against TF1's ResizeBilinear and PIL's float bicubic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gan.evaluation import resize

SIZE = 299


def _images(n, h, w, seed=0):
  """float32 [n, h, w, 3]: uint8 noise (the worst case for both filters) as float."""
  return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3)).astype(np.float32)


def _tf_legacy(images, size):
  return tf.raw_ops.ResizeBilinear(images=images, size=size, align_corners=False,
                                   half_pixel_centers=False).numpy()


def _clean_fid(image, size):
  """clean-fid's make_resizer('PIL', False, 'bicubic', size) on one [H, W, 3] image."""
  h, w = size
  channels = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F")
                         .resize((w, h), resample=Image.BICUBIC)) for c in range(3)]
  return np.clip(np.stack(channels, axis=-1), 0, 255)


@pytest.mark.parametrize("h, w", [(32, 32), (64, 64), (300, 300), (48, 80)])
def test_legacy_equals_tf1_resize_bilinear(h, w):
  x = _images(2, h, w)
  got = np.asarray(resize.resize(x, SIZE, "legacy"))
  assert got.shape == (2, SIZE, SIZE, 3) and got.dtype == np.float32
  np.testing.assert_allclose(got, _tf_legacy(x, (SIZE, SIZE)), atol=1e-4, rtol=0)


def test_legacy_equals_tf_compat_v1_non_square_output():
  x = _images(1, 17, 40, seed=1)
  want = tf.compat.v1.image.resize_bilinear(x, (23, 11), align_corners=False).numpy()
  np.testing.assert_allclose(np.asarray(resize.resize(x, (23, 11), "legacy")), want,
                             atol=1e-4, rtol=0)


@pytest.mark.parametrize("h, w", [(32, 32), (512, 512), (64, 48), (300, 300)])
def test_clean_equals_pil_float_bicubic(h, w):
  x = _images(1, h, w, seed=2)
  got = np.asarray(resize.resize(x, SIZE, "clean"))[0]
  np.testing.assert_allclose(got, _clean_fid(x[0], (SIZE, SIZE)), atol=1e-3, rtol=0)


def test_same_size_is_the_identity_and_modes_jit():
  x = _images(1, 32, 32, seed=3)
  for mode in resize.MODES:
    np.testing.assert_allclose(np.asarray(resize.resize(x, 32, mode)), x, atol=1e-4)
  fn = jax.jit(resize.resize, static_argnums=(1, 2))
  np.testing.assert_allclose(np.asarray(fn(x, (40, 20), "clean")),
                             np.asarray(resize.resize(x, (40, 20), "clean")), atol=1e-4)


def test_unknown_mode_lists_the_modes():
  with pytest.raises(ValueError, match="legacy, clean"):
    resize.resize(_images(1, 8, 8), SIZE, "bilinear")


def test_jax_image_resize_is_neither_protocol():
  """A guard of the distinction: the obvious jax.image.resize calls are not the protocols.

  'bilinear' samples at half-pixel centres and antialiases when downsampling;
  TF1's legacy op does neither, so they differ by many grey levels. 'bicubic'
  with antialias=False keeps the kernel's support at 2 input pixels when
  downsampling, unlike Pillow. (With antialias=True, jax's 'bicubic' is Pillow's
  algorithm, Keys a = -0.5 with stretched support, but with float32 coordinates,
  so it agrees with PIL only to ~1e-2 grey levels, and it does not clip.)
  """
  up, down = _images(1, 32, 32, seed=4), _images(1, 512, 512, seed=5)
  for x in (up, down):
    linear = np.asarray(jax.image.resize(jnp.asarray(x), (1, SIZE, SIZE, 3), "bilinear"))
    assert np.abs(linear - _tf_legacy(x, (SIZE, SIZE))).max() > 1.0
    assert np.abs(linear[0] - _clean_fid(x[0], (SIZE, SIZE))).max() > 1.0
  cubic = np.asarray(jax.image.resize(jnp.asarray(down), (1, SIZE, SIZE, 3), "bicubic",
                                      antialias=False))
  assert np.abs(cubic[0] - _clean_fid(down[0], (SIZE, SIZE))).max() > 1.0
