"""Prepared TFDS datasets as a random-access source of preprocessed images.

``config.data.name`` is a TFDS name (``imagenet2012``, ``cifar10``,
``celeb_a_hq/1024``, ``lsun/bedroom``, with ``config.data.data_dir``), or
the directory of a dataset written by ``python -m gan.data.prepare``.

Records are read by index from the dataset's ArrayRecord files (the only
TFDS format with random access; ``python -m gan.data.tfds_prepare`` prepares
or converts a dataset to it), decoded and preprocessed with
``gan.data.image_ops.preprocess`` (center crop, resize with
``config.data.resize_filter``) in a thread pool: PIL releases the GIL while
decoding and resizing. Each process reads only the records of its share of
each batch (see gan/data/pipeline.py).
"""

import concurrent.futures
import difflib
import os

import ml_collections
import numpy as np
from etils import epath

from gan.config import ConfigError
from gan.data import image_ops

class DatasetUnavailableError(FileNotFoundError):
  """The configured dataset is not readable here; the message says how to prepare it."""


def default_tfds_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


_TFDS_PREPARE = "python -m gan.data.tfds_prepare {name} --data_dir={data_dir}"
MANUAL_DOWNLOADS = {  # What TFDS cannot download itself, and where it goes.
    "imagenet2012": (
        "put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (from "
        "https://image-net.org/download-images, registration required) in "
        "{data_dir}/downloads/manual/"),
    "celeb_a_hq": (
        "build CelebA-HQ with the official progressive_growing_of_gans dataset_tool "
        "(https://github.com/tkarras/progressive_growing_of_gans#preparing-datasets-for-training) "
        "and put its data2x2.tar ... data1024x1024.tar in {data_dir}/downloads/manual/"),
}


def _import_tfds():
  import tensorflow as tf
  import tensorflow_datasets as tfds
  tf.config.set_visible_devices([], "GPU")  # Keep TensorFlow off the accelerators.
  return tfds


def is_directory_name(name: str) -> bool:
  return name.startswith(("/", "./", "../", "~", "gs://")) or os.sep in name and os.path.isdir(name)


def open_builder(name: str, data_dir: str | None):
  """The TFDS builder for a registered name or a dataset directory."""
  tfds = _import_tfds()
  if is_directory_name(name):
    path = epath.Path(os.path.expanduser(name))
    if not (path / "dataset_info.json").exists():
      raise DatasetUnavailableError(
          f"config.data.name={name!r} is a directory without dataset_info.json. Write a dataset "
          f"there from a folder of images with: python -m gan.data.prepare SRC_DIR {name} "
          "--resolution=R")
    return tfds.builder_from_directory(str(path))
  try:
    return tfds.builder(name, data_dir=data_dir or default_tfds_data_dir())
  except Exception as e:  # Unknown names raise DatasetNotFoundError and friends.
    raise ConfigError(_unknown_dataset(tfds, name, e)) from e


def _unknown_dataset(tfds, name: str, error: Exception) -> str:
  """Names the closest few datasets (TFDS's own message lists every registered one)."""
  base, _, variant = name.partition("/")
  registered = tfds.list_builders(with_community_datasets=False)
  if base not in registered:
    close = difflib.get_close_matches(base, registered, n=4, cutoff=0.6)
    problem = "not a registered TFDS dataset" + (f"; did you mean {', '.join(close)}?" if close
                                                 else ".")
  else:
    try:
      configs = sorted(tfds.builder_cls(base).builder_configs)
    except Exception:  # pylint: disable=broad-except
      configs = []
    close = difflib.get_close_matches(variant.split(":")[0], configs, n=4, cutoff=0.5)
    problem = (f"{base} has no config {variant!r}; did you mean "
               f"{', '.join(f'{base}/{c}' for c in close or configs[:4])}?" if configs else
               (str(error).splitlines() or [""])[0][:200])
  return (f"config.data.name={name!r}: {problem} Use a TFDS dataset name (python -c \"import "
          "tensorflow_datasets as tfds; print(tfds.list_builders())\" lists them), the embedded "
          "'shapes10', or a directory written by python -m gan.data.prepare.")


def check_prepared(data: ml_collections.ConfigDict):
  """Raises DatasetUnavailableError / ConfigError naming the fix; returns the builder."""
  tfds = _import_tfds()
  name, data_dir = data.name, data.data_dir or default_tfds_data_dir()
  builder = open_builder(name, data_dir)
  prepare = _TFDS_PREPARE.format(name=name, data_dir=data_dir)
  # A gan.data.prepare directory has no <name>/<version> layout; open_builder checked it.
  if not is_directory_name(name) and not builder.is_prepared():
    manual = MANUAL_DOWNLOADS.get(name.split("/")[0])
    steps = (f"{manual.format(data_dir=data_dir)}, then run: {prepare}" if manual
             else f"run: {prepare}")
    raise DatasetUnavailableError(
        f"Dataset {name!r} is not prepared in the TFDS data_dir {data_dir!r} (looked for "
        f"{builder.data_dir}). To prepare it, {steps}. Point config.data.data_dir (or "
        "$TFDS_DATA_DIR) elsewhere if it is prepared there, or train on the embedded dataset "
        "with --config.data.name=shapes10 --config.data.num_classes=10 "
        "--config.data.num_examples=20000.")
  if tfds.core.file_adapters.FileFormat.ARRAY_RECORD not in builder.info.available_file_formats():
    raise DatasetUnavailableError(
        f"Dataset {name!r} in {builder.data_dir} is stored as {builder.info.file_format.value} "
        "only; the pipeline reads examples by index, which TFDS supports for ArrayRecord. "
        f"Add an ArrayRecord copy next to it with: {prepare}")
  if data.split.split("[")[0] not in builder.info.splits:
    raise ConfigError(f"config.data.split={data.split!r}: {name} has splits "
                     f"{sorted(builder.info.splits)}.")
  features = builder.info.features
  if "image" not in features:
    raise ConfigError(f"{name} has no 'image' feature (features: {sorted(features)}).")
  if data.label_key:
    label = features[data.label_key] if data.label_key in features else None
    if label is None or not hasattr(label, "num_classes"):
      raise ConfigError(
          f"config.data.label_key={data.label_key!r} is not a class label of {name} "
          f"(features: {sorted(features)}). For an unconditional model set "
          "--config.data.label_key='' --config.data.num_classes=1.")
    if label.num_classes != data.num_classes:
      raise ConfigError(f"config.data.num_classes={data.num_classes} but {name} has "
                       f"{label.num_classes} classes; set --config.data.num_classes="
                       f"{label.num_classes}.")
  elif data.num_classes != 1:
    raise ConfigError(f"config.data.label_key='' (unconditional) needs "
                     f"config.data.num_classes=1, not {data.num_classes}.")
  return builder


class TfdsSource:
  """Random access to a prepared TFDS split, preprocessed to (R, R, 3) uint8."""

  def __init__(self, data: ml_collections.ConfigDict, resolution: int):
    tfds = _import_tfds()
    builder = check_prepared(data)
    self.name, self.resolution = data.name, resolution
    self.label_key, self.resize_filter = data.label_key, data.resize_filter
    self._records = builder.as_data_source(split=data.split, file_format="array_record",
                                           decoders={"image": tfds.decode.SkipDecoding()})
    self._pool = concurrent.futures.ThreadPoolExecutor(data.num_workers or os.cpu_count(),
                                                       thread_name_prefix="decode")

  def __len__(self) -> int:
    return len(self._records)

  def _preprocess(self, index_and_record) -> np.ndarray:
    index, record = index_and_record
    try:
      return image_ops.preprocess(record["image"], self.resolution, self.resize_filter)[0]
    except image_ops.UnreadableImageError as e:
      raise image_ops.UnreadableImageError(
          f"record {index} of {self.name} cannot be decoded ({e}); rebuild the dataset, or "
          "prepare the images with python -m gan.data.prepare, which skips bad files.") from e

  def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    records = self._records.__getitems__([int(i) for i in indices])
    images = np.stack(list(self._pool.map(self._preprocess, zip(indices, records))))
    if self.label_key:
      labels = np.asarray([r[self.label_key] for r in records], np.int32)
    else:
      labels = np.zeros(len(records), np.int32)
    return images, labels
