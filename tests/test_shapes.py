"""Tests for the procedural shapes10 dataset (gan/data/shapes.py).

Expectations are computed independently of the generator: labels from the
documented i % 10 rule, foreground masks from a plain luminance threshold, and
class separability from a numpy nearest-class-mean classifier.
"""

import numpy as np
import pytest

from gan.data import shapes

LUMA = np.array([0.2126, 0.7152, 0.0722])


def luminance(images):
    """uint8 [n, h, w, 3] -> float luminance in [0, 1], [n, h, w]."""
    return (images.astype(np.float64) / 255.0) @ LUMA


def foreground_mask(images):
    # Documented contrast: background luma <= 0.28, foreground luma >= 0.55; split halfway.
    return luminance(images) > 0.415


def bbox_mask_features(images, size=12):
    """Foreground mask cropped to its bounding box and resampled to size x size (position/scale free)."""
    feats = []
    for mask in foreground_mask(images):
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        ri = ((np.arange(size) + 0.5) * crop.shape[0] / size).astype(int)
        ci = ((np.arange(size) + 0.5) * crop.shape[1] / size).astype(int)
        feats.append(crop[ri][:, ci].ravel())
    return np.asarray(feats, np.float64)


@pytest.fixture(scope="module")
def data32():
    return shapes.generate(1500, 32, seed=1)


def test_class_names():
    assert shapes.NUM_CLASSES == 10
    assert len(shapes.CLASS_NAMES) == 10 and len(set(shapes.CLASS_NAMES)) == 10


def test_shapes_dtypes_labels(data32):
    images, labels = data32
    assert images.shape == (1500, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (1500,) and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, np.arange(1500) % 10)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 150))


def test_range_labels_and_empty():
    _, labels = shapes.generate_range(7, 23, 16, seed=0)
    np.testing.assert_array_equal(labels, np.arange(7, 23) % 10)
    images, labels = shapes.generate(0, 32)
    assert images.shape == (0, 32, 32, 3) and labels.shape == (0,)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        shapes.generate(4, 8)
    with pytest.raises(ValueError):
        shapes.generate_range(5, 3, 32)
    with pytest.raises(ValueError):
        shapes.generate(4, 32, seed=-1)


def test_determinism_and_seed_dependence():
    a, la = shapes.generate(30, 32, seed=5)
    b, lb = shapes.generate(30, 32, seed=5)
    c, _ = shapes.generate(30, 32, seed=6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    # Every single example differs under another seed.
    assert np.all(np.any(a != c, axis=(1, 2, 3)))


def test_examples_independent_of_batch():
    big, big_labels = shapes.generate(50, 32, seed=3)
    small, small_labels = shapes.generate(10, 32, seed=3)
    np.testing.assert_array_equal(big[:10], small)
    np.testing.assert_array_equal(big_labels[:10], small_labels)
    part, part_labels = shapes.generate_range(10, 20, 32, seed=3)
    np.testing.assert_array_equal(part, big[10:20])
    np.testing.assert_array_equal(part_labels, big_labels[10:20])
    # A range that is not aligned with the class cycle, rendered alone.
    np.testing.assert_array_equal(shapes.generate_range(17, 18, 32, seed=3)[0][0], big[17])


def test_images_not_constant_and_contrasted(data32):
    images, labels = data32
    assert images.reshape(len(images), -1).std(axis=1).min() > 15.0   # measured min ~29
    luma = luminance(images)
    assert (luma.max(axis=(1, 2)) - luma.min(axis=(1, 2))).min() > 0.25
    # Examples of one class are not copies of each other.
    for c in range(10):
        same = images[labels == c][:20].astype(np.float64)
        assert np.abs(same[1:] - same[:-1]).mean(axis=(1, 2, 3)).min() > 5.0


def test_classes_separable_by_nearest_class_mean(data32):
    images, labels = data32
    feats = bbox_mask_features(images)
    train, test = slice(0, 1000), slice(1000, 1500)
    means = np.stack([feats[train][labels[train] == c].mean(0) for c in range(10)])
    dists = ((feats[test][:, None, :] - means[None]) ** 2).sum(-1)
    accuracy = (dists.argmin(1) == labels[test]).mean()
    assert accuracy > 0.9, accuracy   # measured 0.996 (seed 1)


@pytest.mark.parametrize("resolution", [32, 48, 64])
def test_foreground_fraction(resolution):
    images, labels = shapes.generate(300, resolution, seed=2)
    assert images.shape == (300, resolution, resolution, 3)
    fraction = foreground_mask(images).mean(axis=(1, 2))
    # Measured per-image range ~0.047 (triangle, two_dots) .. ~0.63 (square).
    assert fraction.min() > 0.03 and fraction.max() < 0.8
    for c in range(10):
        assert 0.05 < fraction[labels == c].mean() < 0.8, shapes.CLASS_NAMES[c]


def test_resolutions_render_the_same_scene():
    # Same (seed, i) -> same scene: a 64 px image box-downsampled 2x matches the 32 px one.
    small, _ = shapes.generate(40, 32, seed=4)
    large, _ = shapes.generate(40, 64, seed=4)
    pooled = large.astype(np.float64).reshape(40, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    assert np.abs(pooled - small).mean() < 3.0   # measured ~0.6 grey levels
