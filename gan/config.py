"""Defaults shared by every BigGAN config, and validation of a whole config.

``configs/*.py`` start from ``biggan_defaults()`` and override what differs.
``validate`` runs before anything is compiled and names the fix for every
problem it finds: each field against its rule in ``gan/config_fields.py``,
then the checks that combine fields.
"""

import os

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


# Copies of a step's input batch that a process holds at once: the prefetch queue
# (2, gan.data.pipeline.prefetch), the one being assembled, and its device copy
# (host memory too on CPU). Per example: the uint8 image, its int64 position, its label.
INPUT_BATCH_COPIES = 4
_BYTES_PER_POSITION_AND_LABEL = 8 + 4


def available_host_memory() -> int | None:
  """Bytes of memory available to this process now (Linux MemAvailable), if known."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  try:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError, AttributeError):
    return None


def _size(num_bytes: float) -> str:
  for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
    if num_bytes < 1024 or unit == "PiB":
      return f"{num_bytes:.1f} {unit}"
    num_bytes /= 1024
  return ""


def data_problems(config: ml_collections.ConfigDict, *, conditional: bool, batch_field: str,
                  examples_per_step: int, num_processes: int,
                  host_memory: int | None = None) -> list[str]:
  """Contradictions in config.data, and input batches that cannot fit in host memory.

  ``examples_per_step``: the most examples one step reads (all processes, at
  config.model.resolution); ``batch_field`` names the field that sets it.
  """
  d, problems = config.data, []
  if not d.label_key and d.num_classes != 1:
    problems.append(f"config.data.label_key='' (unconditional) needs config.data.num_classes=1, "
                    f"not {d.num_classes}; or name the label feature (e.g. "
                    "--config.data.label_key=label) to train class-conditionally.")
  if d.label_key and not conditional:
    problems.append(f"config.data.label_key={d.label_key!r}: {config.model.name} is "
                    "unconditional and reads no labels; set --config.data.label_key='' "
                    "--config.data.num_classes=1.")
  if d.name == "shapes10" and d.label_key not in ("", "label"):
    problems.append(f"config.data.label_key={d.label_key!r}: shapes10's label feature is "
                    "'label' ('' for unconditional).")
  resolution = config.model.resolution
  per_example = resolution * resolution * 3 + _BYTES_PER_POSITION_AND_LABEL
  need = INPUT_BATCH_COPIES * -(-examples_per_step // num_processes) * per_example
  what = (f"{INPUT_BATCH_COPIES} copies of {examples_per_step} / {num_processes} examples of "
          f"{resolution}x{resolution}x3 bytes")
  if d.name == "shapes10":  # generated into memory: drawn at >= 16x16, then box-filtered
    drawn = max(resolution, 16)
    need += d.num_examples * (drawn * drawn * 3 + resolution * resolution * 3 + 4)
    what += f", plus the {d.num_examples} shapes10 images (config.data.num_examples)"
  available = available_host_memory() if host_memory is None else host_memory
  if available is not None and need > available:
    problems.append(f"{batch_field}: each process would hold about {_size(need)} of input "
                    f"data ({what}), but this machine has {_size(available)} of memory "
                    "available; use a smaller batch (or dataset), or more processes (hosts).")
  return problems


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


def validate(config: ml_collections.ConfigDict, num_devices: int, num_processes: int = 1,
             host_memory: int | None = None) -> None:
  """Raises ConfigError naming every problem with ``config`` and its fix.

  ``host_memory``: bytes available for input batches (default: measured now).

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
    return progan_config.validate(config, num_devices, num_processes, host_memory)

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
  data_fields = ["data.name", "data.label_key", "data.num_classes", "data.num_examples",
                 "model.resolution", "train.batch_size", "train.d_steps"]
  if valid(*data_fields):
    errors += data_problems(config, conditional=True,
                            batch_field=f"config.train.batch_size={t.batch_size}",
                            examples_per_step=t.d_steps * t.batch_size,
                            num_processes=num_processes, host_memory=host_memory)
  if valid("sample.num_classes_shown", "data.num_classes"):
    shown, num_classes = config.sample.num_classes_shown, config.data.num_classes
    if shown > num_classes:
      errors.append(f"config.sample.num_classes_shown={shown} exceeds "
                    f"data.num_classes={num_classes}; use at most {num_classes}.")
  if errors:
    raise ConfigError("Invalid config:\n  - " + "\n  - ".join(errors))
