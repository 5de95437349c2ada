"""ProGAN on CIFAR-10 (unconditional), as in the paper's CIFAR-10 run (IS 8.80).

128 channels at every resolution, latent 128, growth 4x4 -> 32x32 in 400k-image
fade-in and stable phases, 20M images, batch 16, WGAN-GP with target norm 750,
no mirroring. Reads TFDS cifar10 (python -m gan.data.tfds_prepare cifar10).
"""

from gan.families.progan.config import progan_defaults


def get_config():
  config = progan_defaults()
  config.model.resolution = 32
  config.model.latent_dim = 128
  config.model.fmap_base = 8192
  config.model.fmap_max = 128   # 128 at every resolution

  config.data.name = "cifar10"
  config.data.random_flip = False

  config.schedule.fade_images = 400_000
  config.schedule.stable_images = 400_000
  config.schedule.total_images = 20_000_000
  config.schedule.batch_sizes = ""
  config.schedule.default_batch_size = 16
  config.schedule.learning_rates = ""

  config.train.gp_target = 750.0
  return config
