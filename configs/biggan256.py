"""BigGAN 256x256 on ImageNet: ch 96, attention at 128, z 140 = 7 chunks of 20.

Other hyperparameters as at 128 (gan/families/biggan/config.py). Needs TFDS imagenet2012.
"""

from gan.families.biggan.config import biggan_defaults


def get_config():
  config = biggan_defaults()
  config.model.resolution = 256
  config.model.z_dim = 140
  config.model.attention = "128"
  return config
