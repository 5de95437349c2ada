"""A small class-conditional StyleGAN2 on the embedded shapes10 dataset (32x32).

Needs no download. Same code path as config F, scaled down: z = w = 64, 2 mapping
layers, path-length regularisation and style mixing off (stylegan2-ada's CIFAR-10
setting), 32 channels at every resolution (channel_base 1024, channel_max 32), batch
32, Adam at 0.005 for G and D (twice the reference's 0.0025: chosen by a measured
search, docs/stylegan.md), R1 gamma 0.01 every 16 steps, EMA half-life 10 kimg with
ramp-up 0.05, class conditioning through the mapping network and a projection D;
2000 steps.
"""

from gan.families.stylegan.config2 import stylegan2_defaults


def get_config():
  config = stylegan2_defaults()
  config.model.resolution = 32
  config.model.z_dim = config.model.w_dim = 64
  config.model.mapping_layers = 2
  config.model.channel_base = 1024
  config.model.channel_max = 32

  config.data.name = "shapes10"
  config.data.label_key = "label"
  config.data.num_classes = 10
  config.data.num_examples = 20_000

  config.train.num_steps = 2000
  config.train.batch_size = 32
  config.train.g_lr = config.train.d_lr = 0.005
  config.train.r1_gamma = 0.01
  config.train.pl_weight = 0.0
  config.train.style_mixing_prob = 0.0
  config.train.ema_kimg = 10.0
  config.train.ema_rampup = 0.05

  config.sample.rows = 10
  config.sample.cols = 8
  config.sample.mixing_resolution = 8

  # Evaluated with the networks that need no download: SWD and the shapes10 classifier.
  config.eval.every_steps = 250
  config.eval.at_end = True
  config.eval.metrics = "swd,shapes10_fid,class_accuracy"
  config.eval.num_samples = 2_000
  config.eval.best_metric = "shapes10_fid"

  config.log_every_steps = 50
  config.sample_every_steps = 250
  config.checkpoint_every_steps = 250
  return config
