"""gan/evaluation/swd.py: the pyramid against scipy, descriptors, normalisation and SWD."""

import jax
import numpy as np
import pytest
import scipy.ndimage
import scipy.stats

from gan.evaluation import swd

# The reference's gaussian_filter, applied to NCHW as scipy.ndimage.convolve does there.
GAUSS = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256.0


def _convolve_nhwc(x, kernel):
  out = scipy.ndimage.convolve(x.transpose(0, 3, 1, 2), kernel[None, None], mode="mirror")
  return out.transpose(0, 2, 3, 1)


def _smooth_images(n, size, seed):
  """uint8 [n, size, size, 3] with structure at several scales."""
  rng = np.random.default_rng(seed)
  coarse = scipy.ndimage.zoom(rng.uniform(0, 255, (n, size // 8, size // 8, 3)), (1, 8, 8, 1),
                              order=1)
  return np.clip(coarse + rng.normal(0, 10, coarse.shape), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def descriptors_fn():
  return jax.jit(swd.descriptors)


def test_pyr_down_and_up_match_scipy():
  x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(swd.pyr_down(x)), _convolve_nhwc(x, GAUSS)[:, ::2, ::2],
                             atol=1e-3)
  small = x[:, ::2, ::2]
  zeros = np.zeros_like(x)
  zeros[:, ::2, ::2] = small
  np.testing.assert_allclose(np.asarray(swd.pyr_up(small)), _convolve_nhwc(zeros, 4 * GAUSS),
                             atol=1e-3)


def test_laplacian_pyramid_reconstructs_the_image():
  x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
  pyramid = swd.laplacian_pyramid(x, 3)
  assert [p.shape for p in pyramid] == [(2, 64, 64, 3), (2, 32, 32, 3), (2, 16, 16, 3)]
  np.testing.assert_allclose(np.asarray(swd.reconstruct(pyramid)), x, atol=1e-3)
  # Levels: G0 - up(G1), G1 - up(G2), G2 with G_{i+1} = pyr_down(G_i).
  g1 = _convolve_nhwc(x, GAUSS)[:, ::2, ::2]
  np.testing.assert_allclose(np.asarray(pyramid[1]) + np.asarray(swd.pyr_up(pyramid[2])), g1,
                             atol=1e-3)


def test_resolutions_and_sizes_it_rejects():
  assert swd.resolutions(128) == [128, 64, 32, 16]
  assert swd.resolutions(16) == [16]
  for size in (8, 24):
    with pytest.raises(ValueError, match="power-of-two resolution >= 16"):
      swd.descriptors(np.zeros((1, size, size, 3), np.uint8), jax.random.PRNGKey(0))


def test_descriptors_are_image_major_patches(descriptors_fn):
  images = _smooth_images(3, 16, 2)  # one level: the image itself
  (desc,) = descriptors_fn(images, jax.random.PRNGKey(0))
  desc = np.asarray(desc)
  assert desc.shape == (3 * 128, 7 * 7 * 3) and desc.dtype == np.float32
  # Every row is a 7x7 neighbourhood of its own image, laid out (channel, x, y).
  f = images.astype(np.float32)
  patches = {i: {f[i, r - 3:r + 4, c - 3:c + 4].transpose(2, 1, 0).tobytes()
                 for r in range(3, 13) for c in range(3, 13)} for i in range(3)}
  assert all(row.tobytes() in patches[k // 128] for k, row in enumerate(desc))


def test_normalize_gives_zero_mean_unit_std_per_channel():
  rng = np.random.default_rng(3)
  scale, shift = np.array([5.0, 1.0, 0.2])[:, None], np.array([9.0, -3.0, 0.0])[:, None]
  desc = rng.standard_normal((500, 3, 49)) * scale + shift  # channel-major, as descriptors
  out = swd.normalize(desc.reshape(500, 147).astype(np.float32)).reshape(500, 3, 49)
  assert out.dtype == np.float32
  np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-6)
  np.testing.assert_allclose(out.std(axis=(0, 2)), 1, atol=1e-5)


def test_sliced_wasserstein_in_1d_is_the_wasserstein_distance():
  rng = np.random.default_rng(4)
  a, b = rng.standard_normal(300), rng.standard_normal(300) * 2 + 1
  # Every unit direction in 1-D is +-1: each gives W1 of the empirical distributions.
  got = swd.sliced_wasserstein(a[:, None], b[:, None], 0)
  assert got == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-5)
  with pytest.raises(ValueError, match="equal-size"):
    swd.sliced_wasserstein(a[:, None], b[:200, None], 0)


def test_swd_is_zero_for_identical_sets_and_grows_with_noise(descriptors_fn):
  images = _smooth_images(16, 32, 5)
  key = jax.random.PRNGKey(1)  # the same patches everywhere: only the noise differs
  real = [np.asarray(d) for d in descriptors_fn(images, key)]
  same = swd.swd(real, real)
  assert set(same) == {"swd_32", "swd_16", "swd"}
  assert all(v == 0.0 for v in same.values())
  noise = np.random.default_rng(6).standard_normal(images.shape)
  results = []
  for sigma in (4, 16, 64):
    noisy = np.clip(images + sigma * noise, 0, 255).round().astype(np.uint8)
    results.append(swd.swd(real, [np.asarray(d) for d in descriptors_fn(noisy, key)]))
  for key_ in ("swd_32", "swd_16", "swd"):
    values = [r[key_] for r in results]
    assert 0 < values[0] < values[1] < values[2], (key_, values)
  assert results[0]["swd"] == pytest.approx(np.mean([results[0]["swd_32"],
                                                     results[0]["swd_16"]]))
