"""A small class-conditional BigGAN on the embedded shapes10 dataset (32x32).

Needs no download: the dataset is generated procedurally (gan/data/shapes.py).
Same code path as the ImageNet configs, scaled down: width 16, batch 32, one D
step per G step, attention at 16x16, EMA (decay 0.99) from step 200. About 17
minutes on 2 idle CPU cores (~1 step/s); samples go from noise (step 0) to coloured
blobs (~400) to the class's shape in each row (~1000: rings, triangles, stripes).

Learning rate: 8e-4 for G and D, 4x the paper's 128x128 D rate. Measured on
shapes10 (seed 0, class accuracy of EMA samples at step 600 / 1000): 2e-4 both
0.18 / 0.31, G 1e-4 and D 4e-4 (the paper's ratio) 0.15 / 0.24, 4e-4 both
0.32 / 0.50, 8e-4 both 0.41 / 0.84. docs/parity.md has the 3-seed comparison
with BigGAN-PyTorch at these settings.
"""

from gan.families.biggan.config import biggan_defaults


def get_config():
  config = biggan_defaults()
  config.model.resolution = 32
  config.model.ch = 16
  config.model.z_dim = 64          # 4 chunks of 16
  config.model.shared_dim = 32
  config.model.attention = "16"

  config.data.name = "shapes10"
  config.data.num_classes = 10
  config.data.num_examples = 20_000

  config.train.num_steps = 1000
  config.train.batch_size = 32
  config.train.grad_accum_steps = 1
  config.train.d_steps = 1
  config.train.g_lr = 8e-4
  config.train.d_lr = 8e-4
  config.train.ema_decay = 0.99
  config.train.ema_start = 200

  # Evaluated at every checkpoint with the networks that need no download: SWD and the
  # shapes10 classifier (docs/evaluation.md); the best checkpoint by shapes10 FID is kept.
  config.eval.every_steps = 200
  config.eval.at_end = True
  config.eval.metrics = "swd,shapes10_fid,class_accuracy"
  config.eval.num_samples = 2_000
  config.eval.best_metric = "shapes10_fid"

  config.log_every_steps = 50
  config.sample_every_steps = 100
  config.checkpoint_every_steps = 200
  return config
