"""Converting a TFRecord TFDS dataset to ArrayRecord, and the manual-download error."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from gan.data.tfds_prepare import (convert_to_array_record, ensure_array_record, incomplete_path,
                                   main)

SHARD_LENGTHS = {"train": [5, 3, 4], "test": [2]}


def _image(index: int) -> np.ndarray:
  """An 8x8 image whose pixels spell its example index."""
  image = np.zeros((8, 8, 3), np.uint8)
  image[0, 0], image[0, 1] = index % 256, index // 256
  return image


def _write_tfrecord_dataset(data_dir) -> None:
  """A TFRecord-format dataset (2 splits, 4 shards) with dataset_info.json, as TFDS writes one."""
  features = tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(8, 8, 3), encoding_format="png"),
      "label": tfds.features.ClassLabel(num_classes=5),
  })
  template = tfds.core.ShardedFileTemplate(data_dir=data_dir, dataset_name="tiny",
                                           filetype_suffix="tfrecord")
  split_infos, index = [], 0
  for split, lengths in SHARD_LENGTHS.items():
    split_template = template.replace(split=split)
    for shard, length in enumerate(lengths):
      path = split_template.sharded_filepath(shard_index=shard, num_shards=len(lengths))
      with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(length):
          writer.write(features.serialize_example({"image": _image(index), "label": index % 5}))
          index += 1
    split_infos.append(tfds.core.SplitInfo(name=split, shard_lengths=lengths, num_bytes=0,
                                           filename_template=split_template))
  tfds.folder_dataset.write_metadata(data_dir=data_dir, features=features,
                                     split_infos=split_infos, filename_template=template,
                                     check_data=True)


def _assert_array_record_matches_tfrecord(data_dir) -> None:
  # Reloaded, so it reads the new dataset_info.json. Two builders: as_data_source switches
  # its builder's info.file_format to array_record, after which as_dataset fails.
  tfrecord, array_record = (tfds.builder_from_directory(str(data_dir)) for _ in range(2))
  assert array_record.info.available_file_formats() == {tfds.core.FileFormat.TFRECORD,
                                                        tfds.core.FileFormat.ARRAY_RECORD}
  first_index = 0
  for split, lengths in SHARD_LENGTHS.items():
    expected = list(tfds.as_numpy(tfrecord.as_dataset(split, shuffle_files=False)))
    source = array_record.as_data_source(split, file_format="array_record")
    assert len(source) == len(expected) == sum(lengths)
    assert [int(e["image"][0, 0, 0]) for e in expected] == list(
        range(first_index, first_index + sum(lengths)))
    first_index += sum(lengths)
    for index, want in enumerate(expected):
      got = source[index]
      np.testing.assert_array_equal(got["image"], want["image"])
      assert got["label"] == want["label"]


@pytest.fixture
def tfrecord_dir(tmp_path):
  data_dir = tmp_path / "tiny" / "1.0.0"
  data_dir.mkdir(parents=True)
  _write_tfrecord_dataset(data_dir)
  return data_dir


def test_conversion_keeps_every_example_in_order(tfrecord_dir, capsys):
  convert_to_array_record(tfds.builder_from_directory(str(tfrecord_dir)))
  _assert_array_record_matches_tfrecord(tfrecord_dir)
  out = capsys.readouterr().out
  assert "train: 3/3 shards, 12 examples" in out and "test: 1/1 shards, 2 examples" in out
  assert len(list(tfrecord_dir.glob("*.tfrecord*"))) == 4  # the originals are kept
  assert not list(tfrecord_dir.glob(".incomplete-*"))


def test_second_run_is_a_no_op(tfrecord_dir, capsys):
  assert ensure_array_record(str(tfrecord_dir)) == "converted"
  mtimes = {p: p.stat().st_mtime_ns for p in tfrecord_dir.iterdir()}
  capsys.readouterr()
  assert main([str(tfrecord_dir)]) == 0
  assert {p: p.stat().st_mtime_ns for p in tfrecord_dir.iterdir()} == mtimes
  out = capsys.readouterr().out
  assert "nothing to do" in out and out.endswith(f"--config.data.name={tfrecord_dir}\n")


def test_interrupted_conversion_resumes(tfrecord_dir):
  convert_to_array_record(tfds.builder_from_directory(str(tfrecord_dir)))
  # As if killed while writing shard 1 of train: no final shard, a half-written temp file,
  # and dataset_info.json not yet listing ArrayRecord.
  shard = tfrecord_dir / "tiny-train.array_record-00001-of-00003"
  shard.unlink()
  kept = {p: p.stat().st_mtime_ns for p in tfrecord_dir.glob("*.array_record-*")}
  incomplete_path(shard).write_bytes(b"half a shard")
  info_path = tfrecord_dir / "dataset_info.json"
  info = json.loads(info_path.read_text())
  del info["alternativeFileFormats"]
  info_path.write_text(json.dumps(info))
  assert tfds.core.FileFormat.ARRAY_RECORD not in (
      tfds.builder_from_directory(str(tfrecord_dir)).info.available_file_formats())

  assert ensure_array_record(str(tfrecord_dir)) == "converted"
  assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished shards are not redone
  _assert_array_record_matches_tfrecord(tfrecord_dir)
  assert not list(tfrecord_dir.glob(".incomplete-*"))


def test_manual_download_missing_fails_fast_with_instructions(tmp_path, capsys):
  assert main(["imagenet2012", f"--data_dir={tmp_path}"]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "ILSVRC2012_img_train.tar" in err
  assert str(tmp_path / "downloads" / "manual") in err
  assert not list(tmp_path.iterdir())  # nothing downloaded or created


def test_unprepared_dataset_is_prepared_as_array_record(tmp_path, capsys):
  # TFDS 4.9.10 imports importlib_resources to generate but does not depend on it
  # (tensorflow/datasets#11212).
  pytest.importorskip("importlib_resources")

  class TinyGeneratedForPrepareTest(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
          {"image": tfds.features.Image(shape=(8, 8, 3)),
           "label": tfds.features.ClassLabel(num_classes=5)}))

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for index in range(6):
        yield index, {"image": _image(index), "label": index % 5}

  name = TinyGeneratedForPrepareTest.name
  assert main([name, f"--data_dir={tmp_path}"]) == 0
  assert ensure_array_record(name, str(tmp_path)) == "already"
  builder = tfds.builder(name, data_dir=str(tmp_path))
  assert tfds.core.FileFormat.ARRAY_RECORD in builder.info.available_file_formats()
  source = builder.as_data_source("train")
  assert sorted(int(source[i]["image"][0, 0, 0]) for i in range(len(source))) == list(range(6))
  assert f"--config.data.name={name} --config.data.data_dir={tmp_path}" in capsys.readouterr().out


def test_a_prepare_directory_needs_nothing(tmp_path):
  from gan.data.tfds_writer import image_features, write_dataset
  features = image_features((4, 4, 3), "png", None)
  write_dataset(str(tmp_path / "mine"), ({"image": np.zeros((4, 4, 3), np.uint8)}
                                          for _ in range(3)), features=features,
                dataset_name="mine")
  assert ensure_array_record(str(tmp_path / "mine")) == "already"
