"""Input pipelines: each process reads and yields only its share of every global batch.

Every source is random access (``len(source)``, ``source.read(indices)``), so
the example at global position p (the p-th example the run consumes) is a pure
function of (seed, p):

  epoch, offset = divmod(p, N)
  index = permutation(seed, epoch)[offset];  flipped = coin(seed, epoch)[offset]

Two runs with the same seed see the same batches, and a run resumed at step
N reads batch N directly: nothing is replayed or skipped through.

Two ways to ask for a step's examples (a family picks its own):
  ``batch(s)``: the layout (d_steps, grad_accum_steps, micro_batch) (BigGAN):
    image uint8 (d_steps, grad_accum_steps, local_micro, R, R, 3)
    label int32 (d_steps, grad_accum_steps, local_micro)
    holding positions s * examples_per_step + arange(...) reshaped to the
    layout, of which process i takes the slice [i * local_micro, (i + 1) *
    local_micro) of the micro-batch axis;
  ``examples(host_positions(start, count), resolution)``: this process's share
    of positions [start, start + count), at any resolution (ProGAN).
``gan.train.sharding.host_to_global`` makes them one globally sharded array.

Sources:
  shapes10      the embedded procedural dataset (gan/data/shapes.py), in memory.
  <tfds name>   a prepared TFDS dataset (imagenet2012, cifar10, celeb_a_hq/1024,
  <directory>   lsun/bedroom, ...) or a directory written by gan.data.prepare;
                see gan/data/tfds_source.py.
"""

import functools
import queue
import threading
from typing import Iterator, Protocol

import ml_collections
import numpy as np

from gan.config import ConfigError
from gan.data import shapes
from gan.data.image_ops import box_downsample

EMBEDDED_DATASETS = ("shapes10",)


class Source(Protocol):
  resolution: int

  def __len__(self) -> int: ...

  def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int (n,) -> images uint8 (n, R, R, 3), labels int32 (n,)."""


class ArraySource:
  """Images and labels held in memory (the embedded dataset, tests)."""

  def __init__(self, images: np.ndarray, labels: np.ndarray):
    self.images, self.labels = images, labels.astype(np.int32)
    self.resolution = images.shape[1]

  def __len__(self) -> int:
    return len(self.images)

  def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return self.images[indices], self.labels[indices]


class Pipeline:
  """Deterministic, per-process batches from a random-access source."""

  def __init__(self, source: Source, *, seed: int, d_steps: int = 1, grad_accum_steps: int = 1,
               micro_batch: int, process_index: int = 0, process_count: int = 1,
               random_flip: bool = True):
    if micro_batch % process_count:
      raise ValueError(f"micro-batch {micro_batch} not divisible by {process_count} processes")
    if len(source) < 1:
      raise ValueError("the data source is empty.")
    self.source, self.seed, self.random_flip = source, seed, random_flip
    self.layout = (d_steps, grad_accum_steps, micro_batch)
    self.local_micro = micro_batch // process_count
    self.process_index, self.process_count = process_index, process_count
    # Per-epoch tables are O(N) to draw; a batch spans at most two epochs.
    self._epoch_order = functools.lru_cache(maxsize=2)(self._draw_epoch_order)

  def require_examples(self, count: int, what: str) -> None:
    """Raises ConfigError if one batch of ``count`` examples would repeat examples."""
    if count > len(self.source):
      raise ConfigError(f"{what} is larger than the dataset ({len(self.source)} examples): "
                        "every batch would repeat images. Use a smaller batch or more data "
                        "(shapes10: config.data.num_examples).")

  def _draw_epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """(permutation of the N examples, per-example flip coins) of ``epoch``."""
    rng = np.random.default_rng([self.seed, epoch])
    return rng.permutation(len(self.source)), rng.random(len(self.source)) < 0.5

  def order(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global positions (any shape) -> (example indices, flip flags), same shape."""
    epochs, offsets = np.divmod(positions, len(self.source))
    indices = np.empty_like(positions)
    flips = np.zeros(positions.shape, bool)
    for epoch in np.unique(epochs):
      permutation, coins = self._epoch_order(int(epoch))
      mask = epochs == epoch
      indices[mask] = permutation[offsets[mask]]
      flips[mask] = coins[offsets[mask]] & self.random_flip
    return indices, flips

  def examples(self, positions: np.ndarray, resolution: int | None = None
               ) -> dict[str, np.ndarray]:
    """Reads the examples at ``positions``: image uint8 (*shape, r, r, 3), label (*shape).

    ``resolution`` below the source's box-downsamples (ProGAN's lower stages).
    """
    indices, flips = self.order(positions)
    images, labels = self.source.read(indices.ravel())
    images = np.where(flips.reshape(-1, 1, 1, 1), images[:, :, ::-1], images)
    if resolution is not None and resolution != self.source.resolution:
      if self.source.resolution % resolution:
        raise ValueError(f"cannot box-downsample {self.source.resolution} to {resolution}.")
      images = box_downsample(images, self.source.resolution // resolution)
    return {"image": images.reshape(*positions.shape, *images.shape[1:]),
            "label": labels.reshape(positions.shape).astype(np.int32)}

  def local_positions(self, step: int) -> np.ndarray:
    """int64 (d_steps, grad_accum_steps, local_micro): this process's positions at ``step``."""
    per_step = int(np.prod(self.layout))
    positions = (step * per_step + np.arange(per_step, dtype=np.int64)).reshape(self.layout)
    lo = self.process_index * self.local_micro
    return positions[:, :, lo:lo + self.local_micro]

  def host_positions(self, start: int, count: int) -> np.ndarray:
    """This process's share of the global positions [start, start + count) (ProGAN)."""
    if count % self.process_count:
      raise ValueError(f"batch {count} not divisible by {self.process_count} processes")
    share = count // self.process_count
    return start + self.process_index * share + np.arange(share, dtype=np.int64)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    return self.examples(self.local_positions(step))

  def iterate(self, start_step: int) -> Iterator[dict[str, np.ndarray]]:
    step = start_step
    while True:
      yield self.batch(step)
      step += 1


def check_available(config: ml_collections.ConfigDict) -> None:
  """Raises DatasetUnavailableError / ConfigError if ``config.data`` cannot be read here."""
  d = config.data
  if d.name in EMBEDDED_DATASETS:
    if d.label_key and d.num_classes != shapes.NUM_CLASSES:
      raise ConfigError(f"config.data.num_classes={d.num_classes} but {d.name} has "
                       f"{shapes.NUM_CLASSES} classes; set --config.data.num_classes=10 (or "
                       "--config.data.label_key='' --config.data.num_classes=1 to ignore them).")
    if d.num_examples < 1:
      raise ConfigError(f"config.data.num_examples={d.num_examples}: set how many {d.name} "
                       "images to generate, e.g. --config.data.num_examples=20000.")
    return
  from gan.data import tfds_source  # Imports TensorFlow: only when needed.
  tfds_source.check_prepared(d)


def create_source(config: ml_collections.ConfigDict) -> Source:
  """The source for ``config.data`` at ``config.model.resolution``; checks it first."""
  d, resolution = config.data, config.model.resolution
  if d.name == "shapes10":
    check_available(config)
    # Drawn at >= 16x16 (the smallest its shapes are legible at), box-filtered below.
    drawn = max(resolution, 16)
    images, labels = shapes.generate(d.num_examples, drawn, seed=config.seed)
    if not d.label_key:  # unconditional: one class
      labels = np.zeros_like(labels)
    return ArraySource(box_downsample(images, drawn // resolution), labels)
  from gan.data import tfds_source
  return tfds_source.TfdsSource(d, resolution)  # checks the dataset as it opens it once


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
