"""BigGAN 512x512 on ImageNet: ch 96, attention at 64, z 128 = 8 chunks of 16.

Other hyperparameters as at 128 (gan/families/biggan/config.py). Needs TFDS imagenet2012.
"""

from gan.families.biggan.config import biggan_defaults


def get_config():
  config = biggan_defaults()
  config.model.resolution = 512
  config.model.z_dim = 128
  config.model.attention = "64"
  return config
