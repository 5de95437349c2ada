"""BigGAN 128x128 on ImageNet (Brock et al. 2018), the paper's hyperparameters.

Global batch 2048 = micro-batch 256 x 8 gradient accumulations, 2 D steps per
G step, G/D learning rates 5e-5 / 2e-4 (the reference launch script uses
1e-4 / 4e-4 with 1 D step: override train.g_lr, train.d_lr, train.d_steps).

Needs the TFDS imagenet2012 dataset prepared in data.data_dir (see README).
To try it without ImageNet, on the embedded dataset:
  --config.data.name=shapes10 --config.data.num_classes=10
  --config.data.num_examples=20000 (plus smaller widths/batches on a CPU)
"""

from gan.families.biggan.config import biggan_defaults


def get_config():
  return biggan_defaults()
