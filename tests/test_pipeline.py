"""Deterministic, per-process input batches from in-memory data."""

import numpy as np
import pytest

from gan.data.pipeline import ArraySource, Pipeline, prefetch


def make(process_index=0, process_count=1, flip=False, n=40):
  images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
  images[:, :, 0] = 255  # left column marks orientation
  labels = np.arange(n, dtype=np.int32) % 7
  return Pipeline(ArraySource(images, labels), seed=3, d_steps=2, grad_accum_steps=2,
                  micro_batch=4, process_index=process_index, process_count=process_count,
                  random_flip=flip)


def ids(batch):
  return batch["image"][..., 0, 1, 0].astype(int)  # the example index, from a pixel


def test_layout_dtypes_and_labels():
  batch = make().batch(0)
  assert batch["image"].shape == (2, 2, 4, 4, 4, 3) and batch["image"].dtype == np.uint8
  assert batch["label"].shape == (2, 2, 4) and batch["label"].dtype == np.int32
  np.testing.assert_array_equal(batch["label"], ids(batch) % 7)


def test_batches_are_a_pure_function_of_seed_and_step():
  a, b = make(), make()
  for step in (0, 5, 17):
    np.testing.assert_array_equal(a.batch(step)["image"], b.batch(step)["image"])
  assert not np.array_equal(a.batch(0)["image"], a.batch(1)["image"])
  # Resuming at step N starts with exactly batch N, without replaying 0..N-1.
  np.testing.assert_array_equal(next(a.iterate(9))["image"], a.batch(9)["image"])


def test_every_example_once_per_epoch():
  pipeline = make()  # 16 examples per step, 40 examples: 5 steps = 2 epochs
  seen = np.concatenate([ids(pipeline.batch(s)).ravel() for s in range(5)])
  np.testing.assert_array_equal(np.sort(seen[:40]), np.arange(40))
  np.testing.assert_array_equal(np.sort(seen[40:]), np.arange(40))
  assert not np.array_equal(seen[:40], seen[40:])  # reshuffled per epoch


def test_two_processes_split_the_global_batch():
  whole = make().batch(4)
  parts = [make(i, 2).batch(4) for i in range(2)]
  assert parts[0]["image"].shape[2] == 2
  np.testing.assert_array_equal(np.concatenate([p["image"] for p in parts], axis=2),
                                whole["image"])
  assert not set(ids(parts[0]).ravel()) & set(ids(parts[1]).ravel())


def test_random_flip_mirrors_about_half():
  plain, flipped = make(), make(flip=True)
  a = np.concatenate([plain.batch(s)["image"].reshape(-1, 4, 4, 3) for s in range(20)])
  b = np.concatenate([flipped.batch(s)["image"].reshape(-1, 4, 4, 3) for s in range(20)])
  is_flipped = (b[:, :, -1] == 255).all(axis=(1, 2))
  np.testing.assert_array_equal(b[is_flipped], a[is_flipped][:, :, ::-1])
  np.testing.assert_array_equal(b[~is_flipped], a[~is_flipped])
  assert 0.4 < is_flipped.mean() < 0.6  # 320 draws: 5 sigma is +-0.14


def test_prefetch_keeps_order_and_raises_pipeline_errors():
  assert list(prefetch(iter(range(5)))) == list(range(5))

  def broken():
    yield 1
    raise OSError("disk gone")

  with pytest.raises(OSError, match="disk gone"):
    list(prefetch(broken()))
