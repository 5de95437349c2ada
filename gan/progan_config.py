"""Defaults shared by every ProGAN config, and their validation.

``configs/progan_*.py`` start from ``progan_defaults()`` (CelebA-HQ 1024 with
the official 8-GPU preset) and override what differs. ``validate`` runs before
anything compiles and names the fix for every problem it finds.
"""

import ml_collections

from gan.data.image_ops import RESIZE_FILTERS
from gan.losses import LOSSES


def progan_defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.resume = "auto"  # or 'force': continue a workdir's run with changed settings

  c.model = ml_collections.ConfigDict()
  c.model.name = "progan"
  c.model.resolution = 1024     # final resolution; growth starts at schedule.start_resolution
  c.model.latent_dim = 512
  c.model.fmap_base = 8192      # channels at resolution R: min(fmap_base / (R / 2), fmap_max)
  c.model.fmap_max = 512
  c.model.fmap_decay = 1.0
  c.model.mbstd_group_size = 4  # minibatch standard deviation before D's last block; 0: off
  c.model.normalize_latents = True

  c.data = ml_collections.ConfigDict()
  c.data.name = "celeb_a_hq/1024"  # see gan/data/pipeline.py and docs/data.md
  c.data.data_dir = ml_collections.FieldReference(None, field_type=str)
  c.data.split = "train"
  c.data.label_key = ""         # ProGAN is unconditional: labels are not read
  c.data.num_classes = 1
  c.data.num_examples = 0       # shapes10 only
  c.data.random_flip = True     # the official CelebA-HQ run mirrors
  c.data.resize_filter = "bilinear"
  c.data.num_workers = 0

  # Counted in real images shown to D, not in steps (see gan/train/progan_schedule.py).
  c.schedule = ml_collections.ConfigDict()
  c.schedule.start_resolution = 4
  c.schedule.fade_images = 600_000
  c.schedule.stable_images = 600_000
  c.schedule.total_images = 12_000_000
  # "res:batch,..." (global batch). The 8-GPU preset: 512/256/128/64/32 at 4-64, then 16, 8
  # and 4 per GPU at 256, 512 and 1024 (x 8 GPUs); the official minibatch_base 32 elsewhere.
  c.schedule.batch_sizes = "4:512,8:256,16:128,32:64,64:32,128:32,256:128,512:64,1024:32"
  c.schedule.default_batch_size = 32
  c.schedule.learning_rates = "128:1.5e-3,256:2e-3,512:3e-3,1024:3e-3"  # G and D

  c.train = ml_collections.ConfigDict()
  c.train.lr = 1e-3             # where schedule.learning_rates has no entry
  c.train.adam_b1 = 0.0
  c.train.adam_b2 = 0.99
  c.train.adam_eps = 1e-8
  c.train.loss = "wgan"         # one of gan.losses.LOSSES
  c.train.gp_weight = 10.0      # WGAN-GP lambda; 0 disables the gradient penalty
  c.train.gp_target = 1.0       # ||grad D|| target (CIFAR-10: 750)
  c.train.drift = 1e-3          # epsilon_drift * D(real)^2
  c.train.ema_decay = 0.999     # per step
  c.train.reset_optimizer = True  # fresh Adam state at every phase change (official default)
  c.train.max_steps = 0         # > 0: stop after this many steps (total, not per run)
  # Non-finite losses/gradients (gan/train/health.py): the update is always skipped;
  # after `nonfinite_patience` in a row: 'skip' (go on), 'rollback' or 'stop'.
  c.train.nonfinite_policy = "skip"
  c.train.nonfinite_patience = 10
  c.train.inject_nonfinite_steps = ""  # fault injection, e.g. "100,101"

  c.sample = ml_collections.ConfigDict()
  c.sample.rows = 8
  c.sample.cols = 8

  c.log_every_steps = 100
  c.sample_every_steps = 2_000  # and at the end of every phase
  c.checkpoint_every_steps = 2_000  # and at the end of every phase
  c.checkpoint_every_secs = 0   # > 0: also when this long has passed since the last save
  c.keep_checkpoints = 3
  return c


def validate(config: ml_collections.ConfigDict, num_devices: int, num_processes: int) -> None:
  """Raises ConfigError naming every problem with a ProGAN ``config`` and its fix."""
  from gan.config import ConfigError, validate_reliability
  from gan.train.progan_schedule import Schedule

  errors = []
  m, t, d = config.model, config.train, config.data
  if m.resolution < 4 or m.resolution & (m.resolution - 1):
    errors.append(f"config.model.resolution={m.resolution} must be a power of two >= 4.")
  for name in ("latent_dim", "fmap_base", "fmap_max"):
    if m[name] < 1:
      errors.append(f"config.model.{name}={m[name]} must be >= 1.")
  if t.loss not in LOSSES:
    errors.append(f"config.train.loss={t.loss!r}; choose one of {list(LOSSES)}.")
  errors += validate_reliability(config)
  if not 0 <= t.ema_decay < 1:
    errors.append(f"config.train.ema_decay={t.ema_decay} must be in [0, 1).")
  if t.gp_weight < 0 or t.gp_target <= 0 or t.drift < 0:
    errors.append("config.train.gp_weight and drift must be >= 0 and gp_target > 0.")
  if d.resize_filter not in RESIZE_FILTERS:
    errors.append(f"config.data.resize_filter={d.resize_filter!r}; choose one of "
                  f"{sorted(RESIZE_FILTERS)}.")
  for name in ("log_every_steps", "sample_every_steps", "checkpoint_every_steps",
               "keep_checkpoints"):
    if config[name] < 1:
      errors.append(f"config.{name}={config[name]} must be >= 1.")
  try:
    schedule = Schedule.from_config(config)
  except ValueError as e:
    errors.append(f"config.schedule: {e}")
  else:
    for phase in schedule.phases:
      batch = phase.batch_size
      if batch % num_devices or batch % num_processes:
        errors.append(f"batch {batch} at {phase.resolution}x{phase.resolution} is not divisible "
                      f"by the {num_devices} devices / {num_processes} processes; fix "
                      "config.schedule.batch_sizes.")
      group = min(m.mbstd_group_size, batch)
      if m.mbstd_group_size > 1 and batch % group:
        errors.append(f"batch {batch} at {phase.resolution}x{phase.resolution} is not divisible "
                      f"by the minibatch-stddev group size {group}.")
  if errors:
    raise ConfigError("Invalid config:\n  - " + "\n  - ".join(errors))
