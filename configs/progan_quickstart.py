"""A small ProGAN that grows 4x4 -> 32x32 on the embedded shapes10 dataset in minutes.

Same code path as the CelebA-HQ config, scaled down: 64 channels up to 16x16 and
32 at 32x32, latent 64, batch 32, 4,000-image fade-in and stable phases (7
phases, 28k images, 875 steps). It writes a sample grid at the end of every
phase, so samples/ shows one grid per resolution and fade. The G EMA decays at
0.99 per step instead of the paper's 0.999: over 875 steps an average with a
1,000-step horizon would still be mostly the random initialisation.
"""

from gan.families.progan.config import progan_defaults


def get_config():
  config = progan_defaults()
  config.model.resolution = 32
  config.model.latent_dim = 64
  config.model.fmap_base = 512
  config.model.fmap_max = 64

  config.data.name = "shapes10"
  config.data.num_classes = 1  # unconditional: shapes10's labels are not read
  config.data.num_examples = 10_000

  config.schedule.fade_images = 4_000
  config.schedule.stable_images = 4_000
  config.schedule.total_images = 28_000
  config.schedule.batch_sizes = ""
  config.schedule.default_batch_size = 32
  config.schedule.learning_rates = ""

  config.train.ema_decay = 0.99

  # Evaluated at the end with the networks that need no download: SWD (ProGAN's own
  # metric) and the shapes10 classifier's features (docs/evaluation.md).
  config.eval.at_end = True
  config.eval.metrics = "swd,shapes10_fid"
  config.eval.num_samples = 2_000

  config.log_every_steps = 25
  config.sample_every_steps = 1_000
  config.checkpoint_every_steps = 250
  return config
