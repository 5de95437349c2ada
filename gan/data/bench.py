"""Input-pipeline benchmark: images/s one host delivers, from JPEG-encoded records.

  python -m gan.data.bench --records=prepared   # 128x128 JPEGs (gan.data.prepare --encoding=jpeg)
  python -m gan.data.bench --records=imagenet   # ImageNet-sized JPEGs, cropped and resized
  python -m gan.data.bench --dataset=DIR_OR_NAME [--data_dir=...]  # a real prepared dataset

Writes a synthetic ArrayRecord dataset of --num_images smooth, textured
images (JPEG quality 90, so record sizes resemble photographs) in a temporary
directory unless --dataset is given, then times the real ``Pipeline``
(random-access reads, decode, crop, resize, flip, batch assembly) for --steps
BigGAN-layout batches of --batch_size after one warm-up batch. One process is
one host: the figure is per host, with --num_workers decoding threads.
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_RECORDS = flags.DEFINE_enum("records", "imagenet", ["prepared", "imagenet"],
                             "Synthetic records: 'prepared' 128x128 JPEGs, or 'imagenet' JPEGs "
                             "of ImageNet's typical sizes (about 500x375).")
_DATASET = flags.DEFINE_string("dataset", None, "Benchmark this dataset (a TFDS name or a "
                               "gan.data.prepare directory) instead of synthetic records.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir for --dataset.")
_RESOLUTION = flags.DEFINE_integer("resolution", 128, "Training resolution.")
_NUM_IMAGES = flags.DEFINE_integer("num_images", 1024, "Synthetic dataset size.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Examples per timed batch.")
_STEPS = flags.DEFINE_integer("steps", 8, "Timed batches.")
_WORKERS = flags.DEFINE_integer("num_workers", 0, "Decoding threads (0: one per core).")

IMAGENET_SIZES = [(375, 500), (500, 375), (333, 500), (500, 500), (400, 600), (480, 640)]


def synthetic_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
  """Smooth colour fields plus fine texture: compresses like a photograph, not like noise."""
  from PIL import Image
  small = (max(height // 4, 1), max(width // 4, 1))  # cheap to draw, upsampled below
  y, x = np.mgrid[0:small[0], 0:small[1]] / max(small)
  field = np.zeros(small + (3,))
  for _ in range(6):
    freq, phase = rng.uniform(1, 12, 2), rng.uniform(0, 2 * np.pi, 3)
    field += rng.uniform(10, 40) * np.sin(2 * np.pi * (freq[0] * x + freq[1] * y)[..., None]
                                          + phase)
  field = Image.fromarray(np.clip(field + 128, 0, 255).astype(np.uint8))
  image = np.asarray(field.resize((width, height), Image.Resampling.BICUBIC), np.float32)
  image = image + rng.normal(0, 6, image.shape).astype(np.float32)
  return np.clip(image, 0, 255).astype(np.uint8)


def write_synthetic(out_dir: str, kind: str, num_images: int, resolution: int) -> float:
  """Writes the synthetic dataset; returns the mean record size in kB."""
  import io

  from PIL import Image

  from gan.data.tfds_writer import image_features, write_dataset
  rng = np.random.default_rng(0)
  sizes = []

  def examples():
    for i in range(num_images):
      shape = (resolution, resolution) if kind == "prepared" else IMAGENET_SIZES[i % 6]
      buffer = io.BytesIO()
      Image.fromarray(synthetic_image(rng, *shape)).save(buffer, format="JPEG", quality=90)
      sizes.append(buffer.tell())
      yield {"image": buffer.getvalue(), "label": i % 1000}

  shape = (resolution, resolution, 3) if kind == "prepared" else (None, None, 3)
  write_dataset(out_dir, examples(), features=image_features(shape, "jpeg", [str(i) for i in
                                                                               range(1000)]),
                dataset_name=f"bench_{kind}")
  return float(np.mean(sizes)) / 1e3


def main(argv):
  del argv
  from gan.config.run import data_fields
  from gan.data.pipeline import Pipeline
  from gan.data.tfds_source import TfdsSource, open_builder

  with tempfile.TemporaryDirectory() as tmp:
    data = data_fields("imagenet2012", label_key="label", num_classes=1000)
    data.num_workers = _WORKERS.value
    if _DATASET.value:
      data.name, data.data_dir = _DATASET.value, _DATA_DIR.value
      label = open_builder(data.name, data.data_dir).info.features.get("label")
      data.num_classes = label.num_classes if label is not None else 1
      data.label_key = "label" if label is not None else ""
      what = f"dataset {data.name}"
    else:
      data.name = os.path.join(tmp, "records")
      start = time.perf_counter()
      kb = write_synthetic(data.name, _RECORDS.value, _NUM_IMAGES.value, _RESOLUTION.value)
      what = (f"{_NUM_IMAGES.value} synthetic '{_RECORDS.value}' JPEG records, mean {kb:.1f} kB "
              f"(written in {time.perf_counter() - start:.1f} s)")
    source = TfdsSource(data, _RESOLUTION.value)
    pipeline = Pipeline(source, seed=0, micro_batch=_BATCH.value)
    pipeline.batch(0)  # warm-up: thread pool, file handles
    start = time.perf_counter()
    for step in range(1, _STEPS.value + 1):
      batch = pipeline.batch(step)
    seconds = time.perf_counter() - start
    assert batch["image"].shape[-3:] == (_RESOLUTION.value, _RESOLUTION.value, 3)
    workers = _WORKERS.value or os.cpu_count()
    rate = _STEPS.value * _BATCH.value / seconds
    print(f"Input pipeline, one host: {what}")
    print(f"  {_RESOLUTION.value}x{_RESOLUTION.value} batches of {_BATCH.value}, "
          f"{workers} decoding threads, {os.cpu_count()} cores")
    print(f"  images/s per host   {rate:.0f}  ({rate / workers:.0f} per thread)")
    print(f"  ms per batch        {seconds / _STEPS.value * 1e3:.0f}")


if __name__ == "__main__":
  app.run(main)
