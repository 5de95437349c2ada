"""A small class-conditional StyleGAN (v1) that grows 8x8 -> 32x32 on the embedded shapes10.

Same code path as the FFHQ config, scaled down: z = w = 64, 2 mapping layers, 64
channels up to 16x16 and 32 at 32x32 (fmap_base 512, fmap_max 64), batch 32, 6,000-image
fade-in and stable phases, R1 gamma 0.1, style mixing 0.9, G EMA half-life 2 kimg;
class conditioning through the mapping network and D's per-class output (the
reference's label switch).
"""

from gan.families.stylegan.config1 import stylegan_defaults


def get_config():
  config = stylegan_defaults()
  config.model.resolution = 32
  config.model.z_dim = config.model.w_dim = 64
  config.model.mapping_layers = 2
  config.model.fmap_base = 512
  config.model.fmap_max = 64

  config.data.name = "shapes10"
  config.data.label_key = "label"
  config.data.num_classes = 10
  config.data.num_examples = 20_000

  config.schedule.start_resolution = 8
  config.schedule.fade_images = 6_000
  config.schedule.stable_images = 6_000
  config.schedule.total_images = 32_000
  config.schedule.batch_sizes = ""
  config.schedule.default_batch_size = 32
  config.schedule.learning_rates = ""
  config.train.lr = 2e-3
  config.train.r1_gamma = 0.1
  config.train.ema_kimg = 2.0

  config.sample.rows = 10
  config.sample.cols = 8
  config.sample.mixing_resolution = 8
  config.sample.truncation_cutoff = 0

  config.eval.at_end = True
  config.eval.metrics = "swd,shapes10_fid,class_accuracy"
  config.eval.num_samples = 2_000

  config.log_every_steps = 25
  config.sample_every_steps = 1_000
  config.checkpoint_every_steps = 250
  return config
