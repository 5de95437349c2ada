"""Input pipelines: each process yields its share of every global batch.

A pipeline yields host-local numpy batches
  image uint8 (d_steps, grad_accum_steps, local_micro, R, R, 3)
  label int32 (d_steps, grad_accum_steps, local_micro)
where local_micro = micro_batch / process_count; ``gan.train.sharding``
assembles them into one globally sharded array.

Sources:
  shapes10     the embedded procedural dataset (gan/data/shapes.py), held in
               memory; batch contents are a pure function of (seed, step).
  <tfds name>  any prepared TFDS image-classification dataset, e.g.
               imagenet2012 (see gan/data/tfds_source.py).
"""

import os
import queue
import threading
from typing import Iterator

import ml_collections
import numpy as np

from gan.config import ConfigError
from gan.data import shapes

EMBEDDED_DATASETS = ("shapes10",)


class DatasetUnavailableError(FileNotFoundError):
  """The configured dataset is not readable here; the message says how to prepare it."""


class ArrayPipeline:
  """Deterministic batches from in-memory arrays.

  Global example position p = step * examples_per_step + j reads example
  perm_epoch[p % N] with epoch = p // N and perm_epoch a permutation seeded by
  (seed, epoch); horizontal flips are seeded by (seed, step). So batch(step)
  depends on nothing but (seed, step): resuming at step N needs no replay.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray, *, seed: int, d_steps: int,
               grad_accum_steps: int, micro_batch: int, process_index: int = 0,
               process_count: int = 1, random_flip: bool = True):
    if micro_batch % process_count:
      raise ValueError(f"micro-batch {micro_batch} not divisible by {process_count} processes")
    self.images, self.labels = images, labels
    self.seed, self.random_flip = seed, random_flip
    self.layout = (d_steps, grad_accum_steps, micro_batch)
    self.local_micro = micro_batch // process_count
    self.process_index = process_index

  def batch(self, step: int) -> dict[str, np.ndarray]:
    d_steps, accum, micro = self.layout
    per_step = d_steps * accum * micro
    positions = (step * per_step + np.arange(per_step)).reshape(self.layout)
    lo = self.process_index * self.local_micro
    positions = positions[:, :, lo:lo + self.local_micro]
    indices = self._indices(positions.ravel()).reshape(positions.shape)
    images = self.images[indices]
    if self.random_flip:
      flips = np.random.default_rng([self.seed, step, 1]).random(self.layout) < 0.5
      flips = flips[:, :, lo:lo + self.local_micro]
      images = np.where(flips[..., None, None, None], images[..., ::-1, :], images)
    return {"image": images, "label": self.labels[indices].astype(np.int32)}

  def _indices(self, positions: np.ndarray) -> np.ndarray:
    n = len(self.images)
    epochs, offsets = np.divmod(positions, n)
    out = np.empty_like(positions)
    for epoch in np.unique(epochs):
      perm = np.random.default_rng([self.seed, int(epoch)]).permutation(n)
      mask = epochs == epoch
      out[mask] = perm[offsets[mask]]
    return out

  def iterate(self, start_step: int) -> Iterator[dict[str, np.ndarray]]:
    step = start_step
    while True:
      yield self.batch(step)
      step += 1


def check_available(config: ml_collections.ConfigDict) -> None:
  """Raises DatasetUnavailableError / ConfigError if ``config.data`` cannot be read here."""
  d = config.data
  if d.name in EMBEDDED_DATASETS:
    if d.num_classes != shapes.NUM_CLASSES:
      raise ConfigError(f"config.data.num_classes={d.num_classes} but {d.name} has "
                       f"{shapes.NUM_CLASSES} classes; set --config.data.num_classes=10.")
    if d.num_examples < 1:
      raise ConfigError(f"config.data.num_examples={d.num_examples}: set how many {d.name} "
                       "images to generate, e.g. --config.data.num_examples=20000.")
    return
  from gan.data import tfds_source  # Imports TensorFlow: only when needed.
  tfds_source.check_prepared(d.name, d.data_dir, d.split, d.num_classes)


def create_pipeline(config: ml_collections.ConfigDict, process_index: int = 0,
                    process_count: int = 1):
  """The pipeline for ``config.data``; ``check_available`` first for a clear error."""
  check_available(config)
  d, t = config.data, config.train
  layout = dict(d_steps=t.d_steps, grad_accum_steps=t.grad_accum_steps,
                micro_batch=t.batch_size // t.grad_accum_steps, process_index=process_index,
                process_count=process_count)
  if d.name == "shapes10":
    images, labels = shapes.generate(d.num_examples, config.model.resolution, seed=config.seed)
    return ArrayPipeline(images, labels, seed=config.seed, random_flip=d.random_flip, **layout)
  from gan.data import tfds_source
  return tfds_source.TfdsPipeline(config, **layout)


def prefetch(iterator: Iterator, size: int = 2) -> Iterator:
  """Runs ``iterator`` in a background thread, ``size`` items ahead."""
  items: queue.Queue = queue.Queue(maxsize=size)
  sentinel = object()

  def produce():
    try:
      for item in iterator:
        items.put(item)
    except BaseException as e:  # Surface pipeline errors in the training thread.
      items.put(e)
    items.put(sentinel)

  threading.Thread(target=produce, daemon=True, name="prefetch").start()
  while (item := items.get()) is not sentinel:
    if isinstance(item, BaseException):
      raise item
    yield item


def default_tfds_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))
