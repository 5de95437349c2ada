"""Small TFDS datasets the tests write themselves, with images that identify themselves.

Example i is a JPEG of size SIZES[i % 4] (wide, tall, square, very wide):
red channel 4 * i everywhere, green 255 on the left half and 0 on the right
half. After any center crop and resize the example is recognisable by its
red value and its orientation by which side is green; edges sit on 8-pixel
JPEG block boundaries, so JPEG keeps both clear.
"""

import io

import numpy as np
from PIL import Image

SIZES = [(32, 48), (48, 32), (40, 40), (32, 64)]  # (height, width)
NUM_CLASSES = 1000


def label_of(i):
  return (i * 31) % NUM_CLASSES


def make_image(i: int) -> np.ndarray:
  height, width = SIZES[i % len(SIZES)]
  image = np.zeros((height, width, 3), np.uint8)
  image[..., 0] = 4 * i
  image[:, :width // 2, 1] = 255
  return image


def jpeg(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="JPEG", quality=95, subsampling=0)  # 4:4:4 chroma
  return buffer.getvalue()


def write_fake_imagenet(data_dir: str, num_examples: int = 48) -> None:
  """A prepared 'imagenet2012' (the registered builder's features) in ``data_dir``."""
  import tensorflow_datasets as tfds
  from gan.data.tfds_writer import write_dataset
  builder = tfds.builder("imagenet2012", data_dir=data_dir)
  examples = ({"image": jpeg(make_image(i)), "label": label_of(i), "file_name": f"img{i}.JPEG"}
              for i in range(num_examples))
  write_dataset(str(builder.data_dir), examples, features=builder.info.features,
                dataset_name="imagenet2012", examples_per_shard=10)


def example_ids(images: np.ndarray) -> np.ndarray:
  """uint8 (..., R, R, 3) -> the example index of each image, from its red channel."""
  return np.rint(images[..., 0].mean(axis=(-1, -2)) / 4).astype(int)


def is_flipped(images: np.ndarray) -> np.ndarray:
  """uint8 (..., R, R, 3) -> whether the green half is on the right."""
  green = images[..., 1].astype(float)
  half = green.shape[-1] // 2
  return green[..., :half].mean(axis=(-1, -2)) < green[..., half:].mean(axis=(-1, -2))
