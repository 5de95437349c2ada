"""Defaults shared by every ProGAN config, and their validation.

``configs/progan_*.py`` start from ``progan_defaults()`` (CelebA-HQ 1024 with
the official 8-GPU preset) and override what differs. ``validate`` runs before
anything compiles and names the fix for every problem it finds: each field against
its rule in ``gan/config_fields.py``, then the checks that combine fields.
"""

import ml_collections

from gan.config import ConfigError, add_run_fields, data_problems
from gan.config_fields import PROGAN_FIELDS, check_fields, fields_valid


def progan_defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

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

  c.sample = ml_collections.ConfigDict()
  c.sample.rows = 8
  c.sample.cols = 8

  return add_run_fields(c)


def validate(config: ml_collections.ConfigDict, num_devices: int, num_processes: int = 1,
             host_memory: int | None = None) -> None:
  """Raises ConfigError naming every problem with a ProGAN ``config`` and its fix.

  ``host_memory``: bytes available for input batches (default: measured now).

  Every field is checked against its rule in gan/config_fields.py; the checks
  here combine fields, and each runs only if the fields it reads passed theirs.
  """
  from gan.models.progan import num_channels
  from gan.train.progan_schedule import Schedule

  errors = check_fields(config, PROGAN_FIELDS, start_from="gan.progan_config.progan_defaults()")
  def valid(*paths):
    return fields_valid(config, PROGAN_FIELDS, *paths)

  m = config.get("model")  # read only where its fields are valid
  if valid("model.resolution", "model.fmap_base", "model.fmap_max", "model.fmap_decay"):
    channels = num_channels(m.resolution, m.fmap_base, m.fmap_max, m.fmap_decay)
    if channels < 1:  # the fewest channels are at the final resolution
      errors.append(f"config.model.fmap_base={m.fmap_base} with fmap_decay={m.fmap_decay} leaves "
                    f"{channels} channels at {m.resolution}x{m.resolution}; raise fmap_base or "
                    "lower fmap_decay.")
  schedule_fields = ["model.resolution", "train.lr",
                     *(path for path in PROGAN_FIELDS if path.startswith("schedule."))]
  if valid(*schedule_fields):
    try:
      schedule = Schedule.from_config(config)
    except ValueError as e:
      errors.append(f"config.schedule: {e}")
    else:
      resolutions = {}  # batch size -> the resolutions that use it
      for phase in schedule.phases:
        resolutions.setdefault(phase.batch_size, {})[phase.resolution] = None
      group_size = m.mbstd_group_size if valid("model.mbstd_group_size") else 0
      for batch, where in resolutions.items():
        where = ", ".join(f"{r}x{r}" for r in where)
        for count, what in ((num_devices, "devices"), (num_processes, "processes")):
          if batch % count:
            errors.append(f"batch {batch} (at {where}) is not divisible by the {count} {what}; "
                          f"use a multiple of {count} in config.schedule.batch_sizes or "
                          "default_batch_size.")
        group = min(group_size, batch)
        if group > 1 and batch % group:
          errors.append(f"batch {batch} (at {where}) is not divisible by the minibatch-stddev "
                        f"group size {group}; change config.model.mbstd_group_size or the batch.")
      if valid("data.name", "data.label_key", "data.num_classes", "data.num_examples"):
        largest = max(resolutions)  # the source is read at the final resolution
        errors += data_problems(config, conditional=False,
                                batch_field=f"the batch {largest} at "
                                f"{', '.join(f'{r}x{r}' for r in resolutions[largest])}",
                                examples_per_step=largest, num_processes=num_processes,
                                host_memory=host_memory)
  if errors:
    raise ConfigError("Invalid config:\n  - " + "\n  - ".join(errors))
