"""StyleGAN (v1)'s config: the defaults every configs/stylegan_*.py starts from, its field
rules, and the checks that combine its fields.

``stylegan_defaults()`` is FFHQ 1024 with the official 8-GPU settings (NVlabs/stylegan
train.py and training_loop.py): growth from 8x8, 600k images fade + 600k stable per
resolution, minibatch 512/256/128/64/32 at 4-64 then 32, lr 1e-3 (1.5e-3 at 128, 2e-3 at
256, 3e-3 at 512 and 1024), Adam(0, 0.99, 1e-8) reset per resolution, non-saturating
logistic loss with R1 gamma 10, style mixing 0.9, G EMA half-life 10 kimg, 25,000 kimg;
truncation psi 0.7 on the first 8 w's for the paper's figures.
"""

import ml_collections

from gan.config.rules import COUNT, RESOLUTION, Float
from gan.config.run import add_run_fields, data_fields
from gan.families.stylegan.config2 import check_common, common_fields, common_rules
from gan.growth.config import check_schedule, largest_batch, schedule_rules


def stylegan_defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  common_fields(c, 1024)
  c.model.name = "stylegan"
  c.model.fmap_base = 8192      # channels at R: min(fmap_base / 2^(log2 R - 1), fmap_max)
  c.model.fmap_max = 512
  c.model.fmap_decay = 1.0

  # FFHQ is not in TFDS: a directory written by gan.data.prepare (configs/stylegan_ffhq1024.py).
  c.data = data_fields("~/datasets/ffhq1024", label_key="", num_classes=1)

  # Counted in real images shown to D (gan/growth/schedule.py).
  c.schedule = ml_collections.ConfigDict()
  c.schedule.start_resolution = 8
  c.schedule.fade_images = 600_000
  c.schedule.stable_images = 600_000
  c.schedule.total_images = 25_000_000
  c.schedule.batch_sizes = "4:512,8:256,16:128,32:64,64:32"
  c.schedule.default_batch_size = 32
  c.schedule.learning_rates = "128:1.5e-3,256:2e-3,512:3e-3,1024:3e-3"  # G and D

  c.train.lr = 1e-3             # where schedule.learning_rates has no entry
  c.train.reset_optimizer = True
  c.train.max_steps = 0         # > 0: stop after this many steps (total, not per run)
  c.sample.truncation_cutoff = 8  # the paper's figures: psi 0.7 on the first 8 w's
  return add_run_fields(c)


def field_rules() -> dict:
  """{path: rule} of StyleGAN's fields, beyond gan.config.run.RUN_FIELDS."""
  return {
      **common_rules(),
      **schedule_rules(),
      "model.resolution": RESOLUTION,
      "model.fmap_base": COUNT,
      "model.fmap_max": COUNT,
      "model.fmap_decay": Float(min=0),
  }


def check(config, num_devices: int, num_processes: int, valid) -> list[str]:
  """Problems in combinations of StyleGAN's fields; ``valid(*paths)``: they passed their rules."""
  m = config.get("model")
  group_size = m.mbstd_group_size if valid("model.mbstd_group_size") else 0
  errors = check_schedule(config, num_devices, num_processes, valid, group_size)
  return errors + check_common(config, num_devices, num_processes, valid, batches={})


def largest_step_input(config, valid) -> tuple[int, str] | None:
  """(the largest batch of the schedule, where it is used)."""
  return largest_batch(config, valid)
