"""The TFDS source through the real pipeline, on a small JPEG 'imagenet2012' written here."""

import os
import socket
import subprocess

import numpy as np
import pytest

import data_fixtures as fx
from conftest import PYTHON, REPO, subprocess_env, tiny_config, train
from gan.config import ConfigError
from gan.data.pipeline import Pipeline, create_source
from gan.data.tfds_source import DatasetUnavailableError
from gan.families.biggan.family import make_pipeline as create_pipeline
from gan.families.interface import to_float_images

NUM_EXAMPLES = 48
RESOLUTION = 16


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  fx.write_fake_imagenet(str(path), NUM_EXAMPLES)
  return str(path)


def config_for(data_dir, **train):
  config = tiny_config(**train)
  config.data.name, config.data.data_dir, config.data.num_classes = "imagenet2012", data_dir, 1000
  config.model.resolution = RESOLUTION
  return config


@pytest.fixture(scope="module")
def source(data_dir):
  return create_source(config_for(data_dir))


def pipeline(source, seed=0, process_index=0, process_count=1, flip=True):
  return Pipeline(source, seed=seed, d_steps=2, grad_accum_steps=2, micro_batch=4,
                  process_index=process_index, process_count=process_count, random_flip=flip)


def test_batch_layout_dtypes_values_and_labels(data_dir):
  batch = create_pipeline(config_for(data_dir, d_steps=2, grad_accum_steps=2)).batch(0)
  assert batch["image"].shape == (2, 2, 4, RESOLUTION, RESOLUTION, 3)
  assert batch["image"].dtype == np.uint8 and batch["label"].dtype == np.int32
  assert batch["label"].shape == (2, 2, 4)
  ids = fx.example_ids(batch["image"])
  np.testing.assert_array_equal(batch["label"], fx.label_of(ids))  # label of that very image
  assert 0 <= batch["label"].min() and batch["label"].max() < 1000
  # Every image (wide, tall, square) was center-cropped: one half green, the other not.
  green = batch["image"][..., 1].astype(float)
  left, right = green[..., :, :6].mean(axis=(-1, -2)), green[..., :, -6:].mean(axis=(-1, -2))
  assert np.all(np.maximum(left, right) > 240) and np.all(np.minimum(left, right) < 15)
  # Red is 4 * index everywhere: resizing a constant keeps it (JPEG: +-2).
  red = batch["image"][..., 0].astype(int)
  assert np.abs(red - 4 * ids[..., None, None]).max() <= 2
  # The train step maps uint8 [0, 255] onto [-1, 1].
  scaled = np.asarray(to_float_images(batch["image"]))
  np.testing.assert_allclose(scaled, batch["image"] / 127.5 - 1, atol=1e-6)
  assert scaled.min() >= -1 and scaled.max() <= 1
  np.testing.assert_array_equal(np.asarray(to_float_images(np.array([0, 255], np.uint8))),
                                [-1, 1])


def test_same_seed_same_batches_other_seed_other_batches(source):
  a, b, c = pipeline(source), pipeline(source), pipeline(source, seed=1)
  for step in (0, 3, 11):
    np.testing.assert_array_equal(a.batch(step)["image"], b.batch(step)["image"])
  assert not np.array_equal(fx.example_ids(a.batch(0)["image"]),
                            fx.example_ids(c.batch(0)["image"]))


def test_resume_at_step_n_reads_only_batch_n(source):
  uninterrupted = pipeline(source).iterate(0)
  expected = [next(uninterrupted) for _ in range(7)]
  resumed = pipeline(source)
  reads = []
  original_read = source.read
  resumed.source = type("Counting", (), {
      "resolution": source.resolution, "__len__": lambda self: len(source),
      "read": lambda self, idx: (reads.append(np.array(idx)), original_read(idx))[1]})()
  batches = resumed.iterate(5)
  for want in expected[5:]:
    got = next(batches)
    np.testing.assert_array_equal(got["image"], want["image"])
    np.testing.assert_array_equal(got["label"], want["label"])
  assert len(reads) == 2 and all(len(r) == 16 for r in reads)  # nothing replayed


def test_two_processes_read_disjoint_shares_that_cover_each_epoch(source):
  # 16 examples per step, 48 examples: 3 steps per epoch.
  parts = [pipeline(source, process_index=i, process_count=2) for i in range(2)]
  whole = pipeline(source)
  for epoch in range(2):
    ids = [np.concatenate([fx.example_ids(p.batch(s)["image"]).ravel()
                           for s in range(3 * epoch, 3 * epoch + 3)]) for p in parts]
    assert not set(ids[0]) & set(ids[1])
    np.testing.assert_array_equal(np.sort(np.concatenate(ids)), np.arange(NUM_EXAMPLES))
  step = 4
  np.testing.assert_array_equal(
      np.concatenate([p.batch(step)["image"] for p in parts], axis=2), whole.batch(step)["image"])


def test_flips_mirror_about_half_the_examples(source):
  plain, flipped = pipeline(source, flip=False), pipeline(source)
  a = np.concatenate([plain.batch(s)["image"].reshape(-1, RESOLUTION, RESOLUTION, 3)
                      for s in range(12)])
  b = np.concatenate([flipped.batch(s)["image"].reshape(-1, RESOLUTION, RESOLUTION, 3)
                      for s in range(12)])
  assert not fx.is_flipped(a).any()
  mirrored = fx.is_flipped(b)
  np.testing.assert_array_equal(b[mirrored], a[mirrored][:, :, ::-1])
  np.testing.assert_array_equal(b[~mirrored], a[~mirrored])
  assert 0.36 < mirrored.mean() < 0.64  # 192 fair coins: +-0.14 is 4 sigma


def test_box_downsampled_reals_for_progan(source):
  p = pipeline(source, flip=False)
  positions = np.arange(8).reshape(2, 4)
  full, low = p.examples(positions)["image"], p.examples(positions, resolution=4)["image"]
  assert low.shape == (2, 4, 4, 4, 3)
  expected = full.reshape(2, 4, 4, 4, 4, 4, 3).astype(float).mean(axis=(3, 5))
  np.testing.assert_array_equal(low, np.rint(expected).astype(np.uint8))


def test_two_jax_processes_assemble_the_single_process_batch(data_dir, tmp_path, source):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  workers = [subprocess.Popen(
      [PYTHON, os.path.join(REPO, "tests", "data_worker.py"), f"127.0.0.1:{port}", "2", str(i),
       data_dir, str(tmp_path)], env=subprocess_env(2), stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True) for i in range(2)]
  for worker in workers:
    out, _ = worker.communicate(timeout=300)
    assert worker.returncode == 0, out
  results = [np.load(tmp_path / f"process{i}.npz") for i in range(2)]
  single = create_pipeline(config_for(data_dir, batch_size=8, d_steps=2))
  for step in range(3):
    want = single.batch(step)
    for r in results:  # Both processes hold the same global batch ...
      np.testing.assert_array_equal(r["image"][step], want["image"])
      np.testing.assert_array_equal(r["label"][step], want["label"])
  # ... but each read only its own half of it.
  reads = [set(r["read"].tolist()) for r in results]
  assert len(results[0]["read"]) == len(results[1]["read"]) == 3 * 8
  assert not reads[0] & reads[1]


def test_errors_name_the_fix(data_dir, tmp_path):
  config = config_for(data_dir)
  config.data.num_classes = 10
  with pytest.raises(ConfigError, match="num_classes=1000"):
    create_source(config)
  config = config_for(data_dir)
  config.data.label_key = "species"
  with pytest.raises(ConfigError, match="label_key=''"):
    create_source(config)
  config = config_for(data_dir)
  config.data.split = "validation"
  with pytest.raises(ConfigError, match=r"splits \['train'\]"):
    create_source(config)
  config.data.name = str(tmp_path / "nothing_here")
  with pytest.raises(DatasetUnavailableError, match="gan.data.prepare"):
    create_source(config)


def test_trainer_runs_on_the_tfds_source(data_dir, tmp_path):
  config = config_for(data_dir, num_steps=2)
  config.model.resolution = 32
  state = train(config, tmp_path / "run")
  assert int(state.step) == 2
  assert (tmp_path / "run" / "checkpoints" / "2").is_dir()


def test_manual_download_datasets_say_which_files_go_where(tmp_path):
  config = config_for(str(tmp_path))
  config.data.name, config.data.label_key, config.data.num_classes = "celeb_a_hq/1024", "", 1
  with pytest.raises(DatasetUnavailableError) as e:
    create_source(config)
  for fragment in ("data1024x1024.tar", f"{tmp_path}/downloads/manual",
                   "python -m gan.data.tfds_prepare celeb_a_hq/1024"):
    assert fragment in str(e.value), fragment
