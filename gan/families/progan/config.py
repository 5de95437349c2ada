"""ProGAN's config: the defaults every configs/progan_*.py starts from, its field
rules, and the checks that combine its fields.

``progan_defaults()`` is CelebA-HQ 1024 with the official 8-GPU preset;
configs override what differs. The run-level fields come from
gan.config.run.add_run_fields.
"""

import ml_collections

from gan.config.rules import ADAM_FIELDS, COUNT, RATE, RESOLUTION, Bool, Choice, Float, Int
from gan.config.run import add_run_fields, data_fields
from gan.growth.config import check_schedule, largest_batch, schedule_rules


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

  # Unconditional: labels are not read. The official CelebA-HQ run mirrors (random_flip).
  c.data = data_fields("celeb_a_hq/1024", label_key="", num_classes=1)

  # Counted in real images shown to D, not in steps (see gan/growth/schedule.py).
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


def field_rules() -> dict:
  """{path: rule} of ProGAN's fields, beyond gan.config.run.RUN_FIELDS."""
  from gan.losses import LOSSES  # imports jax: only when validating
  return {
      **ADAM_FIELDS,
      **schedule_rules(),
      "model.resolution": RESOLUTION,
      "model.latent_dim": COUNT,
      "model.fmap_base": COUNT,
      "model.fmap_max": COUNT,
      "model.fmap_decay": Float(min=0),
      "model.mbstd_group_size": Int(min=0),
      "model.normalize_latents": Bool(),
      "train.loss": Choice(*LOSSES),
      "train.gp_weight": Float(min=0),
      "train.gp_target": RATE,
      "train.drift": Float(min=0),
      "sample.rows": COUNT,
      "sample.cols": COUNT,
  }


def check(config: ml_collections.ConfigDict, num_devices: int, num_processes: int,
          valid) -> list[str]:
  """Problems in combinations of ProGAN's fields; ``valid(*paths)``: they passed their rules."""
  from gan.families.progan.model import num_channels  # imports flax: only when validating
  errors = []
  m = config.get("model")  # read only where its fields are valid
  if valid("model.resolution", "model.fmap_base", "model.fmap_max", "model.fmap_decay"):
    channels = num_channels(m.resolution, m.fmap_base, m.fmap_max, m.fmap_decay)
    if channels < 1:  # the fewest channels are at the final resolution
      errors.append(f"config.model.fmap_base={m.fmap_base} with fmap_decay={m.fmap_decay} leaves "
                    f"{channels} channels at {m.resolution}x{m.resolution}; raise fmap_base or "
                    "lower fmap_decay.")
  group_size = m.mbstd_group_size if valid("model.mbstd_group_size") else 0
  errors += check_schedule(config, num_devices, num_processes, valid, group_size)
  return errors


def largest_step_input(config: ml_collections.ConfigDict, valid) -> tuple[int, str] | None:
  """(the largest batch of the schedule, where it is used); the source is read at the
  final resolution and box-filtered down."""
  return largest_batch(config, valid)
