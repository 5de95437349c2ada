"""The TFDS source (ImageNet path) on TFDS mock data, and its crop/resize."""

import numpy as np
import tensorflow_datasets as tfds

from conftest import tiny_config
from gan.data.tfds_source import TfdsPipeline, center_crop_resize


def test_center_crop_takes_the_middle_square_of_the_long_edge():
  # 6 x 10 image whose value is the column index: the centre 6 x 6 is columns 2..7.
  image = np.tile(np.arange(10, dtype=np.uint8)[None, :, None], (6, 1, 3))
  out = np.asarray(center_crop_resize(image, 6))
  np.testing.assert_allclose(out[..., 0], np.tile(np.arange(2, 8), (6, 1)), atol=1e-4)
  tall = np.transpose(image, (1, 0, 2))  # 10 x 6: rows 2..7
  np.testing.assert_allclose(np.asarray(center_crop_resize(tall, 6))[..., 0],
                             np.tile(np.arange(2, 8)[:, None], (1, 6)), atol=1e-4)


def test_resize_keeps_constant_images_constant():
  image = np.full((50, 70, 3), 200, np.uint8)
  np.testing.assert_allclose(np.asarray(center_crop_resize(image, 32)), 200.0, atol=1e-3)


def test_pipeline_batches_on_mock_imagenet(tmp_path):
  config = tiny_config(batch_size=4, d_steps=2)
  config.data.name, config.data.num_classes = "imagenet2012", 1000
  config.data.data_dir = str(tmp_path)
  with tfds.testing.mock_data(num_examples=24):
    pipeline = TfdsPipeline(config, d_steps=2, grad_accum_steps=1, micro_batch=4,
                            process_index=1, process_count=2)
    batches = pipeline.iterate(0)
    batch = next(batches)
    next(batches)  # the dataset repeats
  assert batch["image"].shape == (2, 1, 2, 32, 32, 3) and batch["image"].dtype == np.uint8
  assert batch["label"].shape == (2, 1, 2) and batch["label"].dtype == np.int32
  assert 0 <= batch["label"].min() and batch["label"].max() < 1000
