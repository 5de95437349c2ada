"""Prepared TFDS image datasets (ImageNet and others) as BigGAN batches.

Preprocessing (BigGAN): center crop on the long edge to a square, resize to
the training resolution with antialiased bilinear filtering (the reference
prepares ImageNet with PIL's bilinear resize), random horizontal flip, uint8
out; scaling to [-1, 1] happens inside the train step.

Each process reads a disjoint, equal share of the split
(``tfds.split_for_jax_process``). Shuffling is seeded by (seed, start step):
runs are reproducible, but a resumed run sees a fresh order rather than the
continuation of the interrupted one.
"""

import os

import ml_collections
import numpy as np

from gan.config import ConfigError
from gan.data.pipeline import DatasetUnavailableError, default_tfds_data_dir

RESIZE_METHOD = "bilinear (antialias)"

PREPARE_HINTS = {
    "imagenet2012": (
        "put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (from "
        "https://image-net.org/download-images, registration required) in "
        "{data_dir}/downloads/manual/, then run: "
        "tfds build imagenet2012 --data_dir={data_dir}"),
}


def _import_tfds():
  import tensorflow as tf
  import tensorflow_datasets as tfds
  tf.config.set_visible_devices([], "GPU")  # Keep TensorFlow off the accelerators.
  return tf, tfds


def check_prepared(name: str, data_dir: str | None, split: str, num_classes: int) -> None:
  """Raises DatasetUnavailableError naming the dataset, the directory and how to prepare it."""
  _, tfds = _import_tfds()
  data_dir = data_dir or default_tfds_data_dir()
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # Unknown names raise DatasetNotFoundError and friends.
    raise ConfigError(f"config.data.name={name!r} is neither an embedded dataset ('shapes10') "
                     f"nor a TFDS dataset ({type(e).__name__}: {e}).") from e
  if not builder.is_prepared():
    hint = PREPARE_HINTS.get(name, f"run: tfds build {name} --data_dir={{data_dir}}")
    raise DatasetUnavailableError(
        f"Dataset {name!r} is not prepared in the TFDS data_dir {data_dir!r} "
        f"(looked for {builder.data_dir}). To prepare it, {hint.format(data_dir=data_dir)}. "
        "Point config.data.data_dir (or $TFDS_DATA_DIR) at another directory if it is "
        "prepared elsewhere, or train on the embedded dataset with "
        "--config.data.name=shapes10 --config.data.num_classes=10 "
        "--config.data.num_examples=20000.")
  label = builder.info.features.get("label") if hasattr(builder.info.features, "get") else None
  if label is not None and getattr(label, "num_classes", num_classes) != num_classes:
    raise ConfigError(f"config.data.num_classes={num_classes} but {name} has "
                     f"{label.num_classes} classes; set --config.data.num_classes="
                     f"{label.num_classes}.")
  if split.split("[")[0] not in builder.info.splits:
    raise ConfigError(f"config.data.split={split!r}: {name} has splits "
                     f"{sorted(builder.info.splits)}.")


def center_crop_resize(image, resolution: int):
  """uint8 (H, W, 3) -> float32 (resolution, resolution, 3) in [0, 255]."""
  tf, _ = _import_tfds()
  shape = tf.shape(image)
  side = tf.minimum(shape[0], shape[1])
  top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
  image = tf.image.crop_to_bounding_box(image, top, left, side, side)
  return tf.image.resize(image, (resolution, resolution), method="bilinear", antialias=True)


class TfdsPipeline:
  def __init__(self, config: ml_collections.ConfigDict, *, d_steps: int, grad_accum_steps: int,
               micro_batch: int, process_index: int = 0, process_count: int = 1):
    self.config = config
    self.layout = (d_steps, grad_accum_steps, micro_batch // process_count)
    self.process_index, self.process_count = process_index, process_count

  def iterate(self, start_step: int):
    tf, tfds = _import_tfds()
    d, res = self.config.data, self.config.model.resolution
    # Mix the start step into the seed so a resumed run does not replay from the start.
    seed = (self.config.seed * 1_000_003 + start_step) % 2**31
    builder = tfds.builder(d.name, data_dir=d.data_dir or default_tfds_data_dir())
    split = tfds.even_splits(d.split, n=self.process_count, drop_remainder=True)[
        self.process_index]
    read_config = tfds.ReadConfig(shuffle_seed=seed,
                                  interleave_cycle_length=os.cpu_count() or 1)
    ds = builder.as_dataset(split=split, shuffle_files=True, read_config=read_config)

    def preprocess(example):
      image = center_crop_resize(example["image"], res)
      if d.random_flip:
        image = tf.image.random_flip_left_right(image)
      image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
      return {"image": image, "label": tf.cast(example["label"], tf.int32)}

    ds = ds.repeat().shuffle(d.shuffle_buffer, seed=seed)
    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    d_steps, accum, local_micro = self.layout
    ds = ds.batch(local_micro, drop_remainder=True).batch(accum).batch(d_steps)
    for batch in tfds.as_numpy(ds.prefetch(tf.data.AUTOTUNE)):
      yield {"image": np.asarray(batch["image"]), "label": np.asarray(batch["label"])}
