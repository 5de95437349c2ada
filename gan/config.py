"""Defaults shared by every BigGAN config, and validation of a whole config.

``configs/*.py`` start from ``biggan_defaults()`` and override what differs.
``validate`` runs before anything is compiled and names the fix for every
problem it finds: each field against its rule in ``gan/config_fields.py``,
then the checks that combine fields.
"""

import ml_collections

from gan.models.architectures import get_architecture, parse_attention


class ConfigError(ValueError):
  """A config that cannot run; the message names the fix."""


def add_run_fields(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds the fields every model shares: resuming, non-finite policy, logging and checkpoints."""
  c.resume = "auto"  # or 'force': continue a workdir's run with changed settings
  # Non-finite losses/gradients (gan/train/health.py): the update is always skipped;
  # after `nonfinite_patience` in a row: 'skip' (go on), 'rollback' or 'stop'.
  c.train.nonfinite_policy = "skip"
  c.train.nonfinite_patience = 10
  c.train.inject_nonfinite_steps = ""  # fault injection, e.g. "100,101"
  c.log_every_steps = 100
  c.sample_every_steps = 2_000  # ProGAN: also at the end of every phase
  c.checkpoint_every_steps = 2_000  # ProGAN: also at the end of every phase
  c.checkpoint_every_secs = 0   # > 0: also when this long has passed since the last save
  c.keep_checkpoints = 3
  return c


def biggan_defaults() -> ml_collections.ConfigDict:
  """BigGAN at 128x128 on ImageNet with the paper's hyperparameters."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.name = "biggan"
  c.model.resolution = 128
  c.model.ch = 96
  c.model.z_dim = 120          # split into (num_G_blocks + 1) equal chunks
  c.model.shared_dim = 128
  c.model.attention = "64"     # resolutions with self-attention, "_"-separated
  c.model.sn_eps = 1e-6
  c.model.bn_eps = 1e-5
  c.model.compute_dtype = "float32"  # or "bfloat16" (params/stats stay float32)

  c.data = ml_collections.ConfigDict()
  # A TFDS name, a directory written by `python -m gan.data.prepare`, or
  # "shapes10" (embedded). See gan/data/pipeline.py.
  c.data.name = "imagenet2012"
  c.data.data_dir = ml_collections.FieldReference(None, field_type=str)  # TFDS data_dir
  c.data.split = "train"
  c.data.label_key = "label"    # '' for an unconditional dataset (then num_classes = 1)
  c.data.num_classes = 1000
  c.data.num_examples = 0       # shapes10 only: size of the generated set
  c.data.random_flip = True
  c.data.resize_filter = "bilinear"  # after the center crop; see gan/data/image_ops.py
  c.data.num_workers = 0        # decoding threads per process; 0: one per CPU core

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 250_000   # G updates
  c.train.batch_size = 2048     # global, per optimiser update
  c.train.grad_accum_steps = 8  # micro-batch = batch_size / grad_accum_steps
  c.train.d_steps = 2           # D updates per G update (paper: 2)
  c.train.g_lr = 5e-5
  c.train.d_lr = 2e-4
  c.train.adam_b1 = 0.0
  c.train.adam_b2 = 0.999
  c.train.adam_eps = 1e-6
  c.train.ortho_reg = 1e-4      # paper's beta; the reference code's update equals beta / 2
  c.train.ema_decay = 0.9999
  c.train.ema_start = 20_000    # before this step the EMA copies G
  # D-step / accumulation loops: 'auto' unrolls on CPU (XLA:CPU is ~30x slower on
  # convolutions inside loops), lax.scan elsewhere; or 'true' / 'false'.
  c.train.unroll_loops = "auto"

  c.sample = ml_collections.ConfigDict()
  c.sample.num_classes_shown = 10  # rows of the sample grid
  c.sample.per_class = 8           # columns
  c.sample.truncation = 0.0        # 0: plain N(0, I); > 0: truncated normal
  c.sample.standing_stats_batches = 0  # > 0: sample with standing BN statistics

  return add_run_fields(c)


def validate(config: ml_collections.ConfigDict, num_devices: int, num_processes: int = 1) -> None:
  """Raises ConfigError naming every problem with ``config`` and its fix.

  Every field is checked against its rule in gan/config_fields.py; the checks
  here combine fields, and each runs only if the fields it reads passed theirs.
  """
  # Imported here: the rules import jax (via gan.losses and gan.train.health),
  # which the data tools that import ConfigError from this module do not need.
  from gan.config_fields import BIGGAN_FIELDS, PROGAN_FIELDS, check_fields, fields_valid, flatten
  name = flatten(config).get("model.name")
  if name not in ("biggan", "progan"):
    # Misspelt: report against the model whose fields the config matches best.
    name = min(("biggan", "progan"), key=lambda n: len(
        check_fields(config, BIGGAN_FIELDS if n == "biggan" else PROGAN_FIELDS)))
  if name == "progan":
    from gan import progan_config
    return progan_config.validate(config, num_devices, num_processes)

  errors = check_fields(config, BIGGAN_FIELDS, start_from="gan.config.biggan_defaults()")
  def valid(*paths):
    return fields_valid(config, BIGGAN_FIELDS, *paths)

  m, t = config.get("model"), config.get("train")  # read only where their fields are valid
  if valid("model.resolution", "model.z_dim"):
    chunks = get_architecture(m.resolution).num_g_blocks + 1
    if m.z_dim % chunks:
      errors.append(f"config.model.z_dim={m.z_dim} must split into {chunks} equal chunks at "
                    f"{m.resolution}x{m.resolution}; use a multiple of {chunks} "
                    f"(e.g. {chunks * 20}).")
  if valid("model.resolution", "model.attention"):
    arch = get_architecture(m.resolution)
    valid_attention = set(arch.g_resolutions()) & set(arch.d_resolutions(m.resolution))
    bad = [r for r in parse_attention(m.attention) if r not in valid_attention]
    if bad:
      errors.append(f"config.model.attention={m.attention!r}: {bad} not a feature-map "
                    f"resolution of both G and D at {m.resolution}x{m.resolution}; choose from "
                    f"{sorted(valid_attention)} joined by '_', or '' for none.")
  if valid("train.batch_size", "train.grad_accum_steps"):
    if t.batch_size % t.grad_accum_steps:
      errors.append(f"config.train.batch_size={t.batch_size} is not divisible by "
                    f"grad_accum_steps={t.grad_accum_steps}.")
    else:
      micro = t.batch_size // t.grad_accum_steps
      if micro % num_devices:
        errors.append(f"the micro-batch batch_size/grad_accum_steps={micro} is not divisible by "
                      f"the {num_devices} devices; use a multiple of {num_devices}.")
      if micro % num_processes:
        errors.append(f"the micro-batch batch_size/grad_accum_steps={micro} is not divisible by "
                      f"the {num_processes} processes; use a multiple of {num_processes}.")
  if valid("sample.num_classes_shown", "data.num_classes"):
    shown, num_classes = config.sample.num_classes_shown, config.data.num_classes
    if shown > num_classes:
      errors.append(f"config.sample.num_classes_shown={shown} exceeds "
                    f"data.num_classes={num_classes}; use at most {num_classes}.")
  if errors:
    raise ConfigError("Invalid config:\n  - " + "\n  - ".join(errors))
