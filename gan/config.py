"""Defaults shared by every BigGAN config, and validation of a whole config.

``configs/*.py`` start from ``biggan_defaults()`` and override what differs.
``validate`` runs before anything is compiled and names the fix for every
problem it finds.
"""

import ml_collections

from gan.data.image_ops import RESIZE_FILTERS
from gan.models.architectures import ARCHITECTURES, get_architecture, parse_attention


class ConfigError(ValueError):
  """A config that cannot run; the message names the fix."""


def biggan_defaults() -> ml_collections.ConfigDict:
  """BigGAN at 128x128 on ImageNet with the paper's hyperparameters."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.resume = "auto"  # or 'force': continue a workdir's run with changed settings

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
  # Non-finite losses/gradients (gan/train/health.py): the update is always skipped;
  # after `nonfinite_patience` in a row: 'skip' (go on), 'rollback' or 'stop'.
  c.train.nonfinite_policy = "skip"
  c.train.nonfinite_patience = 10
  c.train.inject_nonfinite_steps = ""  # fault injection, e.g. "100,101"

  c.sample = ml_collections.ConfigDict()
  c.sample.num_classes_shown = 10  # rows of the sample grid
  c.sample.per_class = 8           # columns
  c.sample.truncation = 0.0        # 0: plain N(0, I); > 0: truncated normal
  c.sample.standing_stats_batches = 0  # > 0: sample with standing BN statistics

  c.log_every_steps = 100
  c.sample_every_steps = 2_000
  c.checkpoint_every_steps = 2_000
  c.checkpoint_every_secs = 0   # > 0: also when this long has passed since the last save
  c.keep_checkpoints = 3
  return c


def validate_reliability(config: ml_collections.ConfigDict) -> list[str]:
  """Problems with the non-finite policy and checkpoint-interval fields (any model)."""
  from gan.train.health import POLICIES, parse_steps
  train, errors = config.train, []
  if config.checkpoint_every_secs < 0:
    errors.append(f"config.checkpoint_every_secs={config.checkpoint_every_secs} must be >= 0 "
                  "(0: by steps only).")
  if train.nonfinite_policy not in POLICIES:
    errors.append(f"config.train.nonfinite_policy={train.nonfinite_policy!r}; choose one of "
                  f"{list(POLICIES)}.")
  if train.nonfinite_patience < 1:
    errors.append(f"config.train.nonfinite_patience={train.nonfinite_patience} must be >= 1.")
  try:
    parse_steps(train.inject_nonfinite_steps)
  except ValueError:
    errors.append(f"config.train.inject_nonfinite_steps={train.inject_nonfinite_steps!r}: "
                  "comma-separated step numbers, e.g. '100,101'.")
  return errors


def validate(config: ml_collections.ConfigDict, num_devices: int, num_processes: int = 1) -> None:
  """Raises ConfigError naming every problem with ``config`` and its fix."""
  if config.model.name == "progan":
    from gan import progan_config
    return progan_config.validate(config, num_devices, num_processes)
  errors = []
  m, t, d = config.model, config.train, config.data
  if m.name != "biggan":
    errors.append(f"config.model.name={m.name!r} is unknown; choose 'biggan' or 'progan'.")
  if m.resolution not in ARCHITECTURES:
    errors.append(f"config.model.resolution={m.resolution} has no architecture; "
                  f"choose one of {sorted(ARCHITECTURES)}.")
  else:
    arch = get_architecture(m.resolution)
    chunks = arch.num_g_blocks + 1
    if m.z_dim % chunks:
      errors.append(f"config.model.z_dim={m.z_dim} must split into {chunks} equal chunks at "
                    f"{m.resolution}x{m.resolution}; use a multiple of {chunks} "
                    f"(e.g. {chunks * 20}).")
    valid_attention = set(arch.g_resolutions()) & set(arch.d_resolutions(m.resolution))
    try:
      bad = [r for r in parse_attention(m.attention) if r not in valid_attention]
    except ValueError:
      bad = [m.attention]
    if bad:
      errors.append(f"config.model.attention={m.attention!r}: {bad} not a feature-map "
                    f"resolution of both G and D; choose from {sorted(valid_attention)} "
                    "joined by '_', or '' for none.")
  if m.compute_dtype not in ("float32", "bfloat16"):
    errors.append(f"config.model.compute_dtype={m.compute_dtype!r}; choose 'float32' or "
                  "'bfloat16'.")
  if m.ch < 8 or m.ch % 2:
    errors.append(f"config.model.ch={m.ch}; use an even width >= 8 (attention uses ch/8).")
  if d.num_classes < 1:
    errors.append(f"config.data.num_classes={d.num_classes}; BigGAN is class-conditional.")
  for name in ("batch_size", "grad_accum_steps", "d_steps", "num_steps"):
    if t[name] < 1:
      errors.append(f"config.train.{name}={t[name]} must be >= 1.")
  if t.batch_size >= 1 and t.grad_accum_steps >= 1:
    if t.batch_size % t.grad_accum_steps:
      errors.append(f"config.train.batch_size={t.batch_size} is not divisible by "
                    f"grad_accum_steps={t.grad_accum_steps}.")
    else:
      micro = t.batch_size // t.grad_accum_steps
      if micro % num_devices:
        errors.append(f"the micro-batch batch_size/grad_accum_steps={micro} is not divisible by "
                      f"the {num_devices} devices; use a multiple of {num_devices}.")
      if micro % num_processes:
        errors.append(f"the micro-batch {micro} is not divisible by the {num_processes} "
                      "processes.")
  if t.unroll_loops not in ("auto", "true", "false"):
    errors.append(f"config.train.unroll_loops={t.unroll_loops!r}; choose 'auto', 'true' or "
                  "'false'.")
  for name in ("g_lr", "d_lr"):
    if not t[name] > 0:
      errors.append(f"config.train.{name}={t[name]} must be > 0.")
  if not 0 <= t.ema_decay < 1:
    errors.append(f"config.train.ema_decay={t.ema_decay} must be in [0, 1).")
  if t.ortho_reg < 0:
    errors.append(f"config.train.ortho_reg={t.ortho_reg} must be >= 0.")
  for name in ("log_every_steps", "sample_every_steps", "checkpoint_every_steps",
               "keep_checkpoints"):
    if config[name] < 1:
      errors.append(f"config.{name}={config[name]} must be >= 1.")
  errors += validate_reliability(config)
  if d.resize_filter not in RESIZE_FILTERS:
    errors.append(f"config.data.resize_filter={d.resize_filter!r}; choose one of "
                  f"{sorted(RESIZE_FILTERS)}.")
  if d.num_workers < 0:
    errors.append(f"config.data.num_workers={d.num_workers} must be >= 0 (0: one per core).")
  if config.sample.num_classes_shown > d.num_classes:
    errors.append(f"config.sample.num_classes_shown={config.sample.num_classes_shown} exceeds "
                  f"data.num_classes={d.num_classes}.")
  if errors:
    raise ConfigError("Invalid config:\n  - " + "\n  - ".join(errors))
