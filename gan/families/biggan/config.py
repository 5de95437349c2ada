"""BigGAN's config: the defaults every configs/biggan*.py starts from, its field rules,
and the checks that combine its fields.

``biggan_defaults()`` carries the paper's hyperparameters at 128x128 on ImageNet;
configs override what differs. The run-level fields (resume, non-finite
policy, cadence) come from gan.config.run.add_run_fields.
"""

import ml_collections

from gan.config.rules import ADAM_FIELDS, COUNT, RATE, Choice, Float, Int, Text
from gan.config.run import add_run_fields, data_fields
from gan.families.biggan.architectures import ARCHITECTURES, get_architecture, parse_attention


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

  c.data = data_fields("imagenet2012", label_key="label", num_classes=1000)

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
  c.train.ema_start = 20_000    # G updates 1..ema_start-1 copy G into the EMA; it decays from this one on
  # D-step / accumulation loops: 'auto' unrolls on CPU (XLA:CPU is ~30x slower on
  # convolutions inside loops), lax.scan elsewhere; or 'true' / 'false'.
  c.train.unroll_loops = "auto"

  c.sample = ml_collections.ConfigDict()
  c.sample.num_classes_shown = 10  # rows of the sample grid
  c.sample.per_class = 8           # columns
  c.sample.truncation = 0.0        # 0: plain N(0, I); > 0: truncated normal
  c.sample.standing_stats_batches = 0  # > 0: sample with standing BN statistics

  return add_run_fields(c)


_FIELDS = {  # beyond gan.config.run.RUN_FIELDS
    **ADAM_FIELDS,
    "model.resolution": Choice(*sorted(ARCHITECTURES)),
    "model.ch": Int(min=8, multiple_of=2),  # self-attention uses ch / 8 and ch / 2 channels
    "model.z_dim": COUNT,
    "model.shared_dim": COUNT,
    "model.attention": Text(parse_attention, "64_128", "64,128"),
    "model.sn_eps": RATE,
    "model.bn_eps": RATE,
    "model.compute_dtype": Choice("float32", "bfloat16"),
    "train.num_steps": COUNT,
    "train.batch_size": COUNT,
    "train.grad_accum_steps": COUNT,
    "train.d_steps": COUNT,
    "train.g_lr": RATE,
    "train.d_lr": RATE,
    "train.ortho_reg": Float(min=0),
    "train.ema_start": Int(min=0),
    "train.unroll_loops": Choice("auto", "true", "false"),
    "sample.num_classes_shown": COUNT,
    "sample.per_class": COUNT,
    "sample.truncation": Float(min=0),
    "sample.standing_stats_batches": Int(min=0),
}


def field_rules() -> dict:
  """{path: rule} of BigGAN's fields, beyond gan.config.run.RUN_FIELDS."""
  return dict(_FIELDS)


def check(config: ml_collections.ConfigDict, num_devices: int, num_processes: int,
          valid) -> list[str]:
  """Problems in combinations of BigGAN's fields; ``valid(*paths)``: they passed their rules."""
  errors = []
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
  return errors


def largest_step_input(config: ml_collections.ConfigDict, valid) -> tuple[int, str] | None:
  """(real examples one step reads: d_steps batches, the field that sets it)."""
  if not valid("train.batch_size", "train.d_steps"):
    return None
  t = config.train
  return t.d_steps * t.batch_size, f"config.train.batch_size={t.batch_size}"
