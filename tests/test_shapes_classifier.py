"""Tests for the shipped shapes10 classifier (gan/evaluation/shapes_classifier.py).

Accuracy is measured here on a fresh shapes10 set (a seed used neither for
training nor for the held-out figure in the JSON sidecar); resizing is checked
against a plain numpy block mean.
"""

import hashlib
import json
import os

import jax
import numpy as np
import pytest
from flax import traverse_util

from gan.data import shapes
from gan.evaluation import shapes_classifier as sc

SIDECAR = os.path.join(os.path.dirname(sc.WEIGHTS_PATH), "shapes10_classifier.json")
TEST_SEED = 303  # training uses 101, the sidecar's held-out figure 202
# Measured by train_shapes_classifier: 1.0000 on 3,000 held-out 32px images (every
# class 1.0000) and 1.0000 on 1,000 each rendered at 16 and 64 px. The bounds leave
# room for a retrain on other software, not for a broken net (chance is 0.1).
MIN_ACCURACY_32 = 0.98
MIN_ACCURACY_16 = 0.95


@pytest.fixture(scope="module")
def params():
  return sc.load_params()


def sha256(path):
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def test_shipped_weights_match_the_module(params):
  init = sc.ShapesClassifier().init(jax.random.PRNGKey(0),
                                    np.zeros((1, sc.INPUT_SIZE, sc.INPUT_SIZE, 3), np.float32))
  want = jax.tree.map(lambda a: (a.shape, a.dtype), init["params"])
  assert jax.tree.map(lambda a: (a.shape, a.dtype), params) == want
  assert os.path.getsize(sc.WEIGHTS_PATH) < 1_000_000


def test_sidecar_records_the_shipped_file(params):
  with open(SIDECAR) as f:
    meta = json.load(f)
  assert meta["npz_sha256"] == sha256(sc.WEIGHTS_PATH)
  assert meta["parameter_count"] == sum(a.size for a in jax.tree.leaves(params))
  assert meta["heldout_data"]["seed"] != meta["train_data"]["seed"]
  assert TEST_SEED not in (meta["heldout_data"]["seed"], meta["train_data"]["seed"])
  assert meta["heldout_accuracy"] >= MIN_ACCURACY_32


def test_save_params_reproduces_the_shipped_bytes(params, tmp_path):
  path = str(tmp_path / "w.npz")
  sc.save_params(params, path)
  assert sha256(path) == sha256(sc.WEIGHTS_PATH)


def test_accuracy_and_outputs_on_a_fresh_heldout_set(params):
  images, labels = shapes.generate_range(0, 500, 32, seed=TEST_SEED)
  out = sc.apply(params, sc.prepare(images))
  assert out["features"].shape == (500, sc.FEATURE_DIM)
  assert out["logits"].shape == (500, sc.NUM_CLASSES)
  assert out["features"].dtype == out["logits"].dtype == np.float32
  accuracy = np.mean(np.argmax(out["logits"], -1) == labels)
  assert accuracy >= MIN_ACCURACY_32, accuracy
  # Rendered at 16 px and upsampled, like ProGAN's 16x16 phase.
  images, labels = shapes.generate_range(500, 700, 16, seed=TEST_SEED)
  accuracy = np.mean(np.argmax(sc.apply(params, sc.prepare(images))["logits"], -1) == labels)
  assert accuracy >= MIN_ACCURACY_16, accuracy


def test_prepare_area_averages_integer_downscales_and_keeps_32():
  rng = np.random.default_rng(0)
  big = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
  b = big.astype(np.float64)
  mean = (b[:, 0::2, 0::2] + b[:, 1::2, 0::2] + b[:, 0::2, 1::2] + b[:, 1::2, 1::2]) / 4.0
  got = np.asarray(sc.prepare(big))
  assert got.dtype == np.float32 and got.shape == (3, 32, 32, 3)
  np.testing.assert_allclose(got, mean, rtol=0, atol=1e-4)

  small = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  np.testing.assert_array_equal(sc.prepare(small), small.astype(np.float32))
  up = sc.prepare(rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8))
  assert up.shape == (2, 32, 32, 3) and 0 <= up.min() and up.max() <= 255
  with pytest.raises(ValueError, match="RGB"):
    sc.prepare(np.zeros((2, 32, 32), np.uint8))
  # Jittable: the evaluation protocol calls it inside jit on device images.
  np.testing.assert_allclose(jax.jit(sc.prepare)(big), got, rtol=0, atol=1e-4)


def test_load_params_names_the_file_and_the_fix(params, tmp_path):
  flat = traverse_util.flatten_dict(params, sep="/")
  flat["conv1/kernel"] = np.zeros((3, 3, 32, 16), np.float32)
  path = str(tmp_path / "bad.npz")
  np.savez(path, **flat)
  with pytest.raises(sc.WeightsError) as e:
    sc.load_params(path)
  message = str(e.value)
  for part in (path, "conv1/kernel", "(3, 3, 32, 16)", "(3, 3, 32, 32)",
               "python -m gan.evaluation.train_shapes_classifier --out " + path):
    assert part in message, message
  with pytest.raises(FileNotFoundError, match="train_shapes_classifier"):
    sc.load_params(str(tmp_path / "absent.npz"))

