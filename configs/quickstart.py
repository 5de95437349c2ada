"""A small class-conditional BigGAN on the embedded shapes10 dataset (32x32).

Needs no download: the dataset is generated procedurally (gan/data/shapes.py).
Same code path as the ImageNet configs, scaled down: width 16, batch 32, one D
step per G step, attention at 16x16, EMA (decay 0.99) from step 200. About ten
minutes on 2 CPU cores (~1 step/s); samples go from noise (step 0) to coloured
blobs on dark backgrounds (~300) to compact shapes whose look depends on the
class (~600).
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

  config.train.num_steps = 600
  config.train.batch_size = 32
  config.train.grad_accum_steps = 1
  config.train.d_steps = 1
  config.train.g_lr = 2e-4
  config.train.d_lr = 2e-4
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
