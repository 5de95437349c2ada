"""StyleGAN2's config: the defaults every configs/stylegan2_*.py starts from, its field
rules, and the checks that combine its fields.

``stylegan2_defaults()`` is config F at FFHQ 1024 as stylegan2-ada-pytorch's
``--cfg=stylegan2`` sets it (8 GPUs, batch 32, lr 0.002, gamma 10, EMA 10 kimg, no
EMA ramp-up, 8 mapping layers, channel_base 32768, 25,000 kimg); configs override
what differs. The run-level fields come from gan.config.run.add_run_fields.
"""

import ml_collections

from gan.config.rules import ADAM_FIELDS, COUNT, RATE, Choice, Float, Int, Text
from gan.config.run import add_run_fields, data_fields

RESOLUTION = Int(min=8, power_of_two=True)  # the synthesis starts from a 4x4 constant


def common_fields(c: ml_collections.ConfigDict, resolution: int) -> None:
  """The fields StyleGAN v1 and v2 share: mapping, loss, regularisation, EMA, samples."""
  c.seed = 0
  c.model = ml_collections.ConfigDict()
  c.model.resolution = resolution
  c.model.z_dim = 512
  c.model.w_dim = 512
  c.model.mapping_layers = 8
  c.model.mapping_lr_multiplier = 0.01
  c.model.mbstd_group_size = 4   # minibatch standard deviation in D's last block
  c.model.w_avg_beta = 0.995     # the tracked average of w (truncation's centre)

  c.train = ml_collections.ConfigDict()
  c.train.adam_b1 = 0.0
  c.train.adam_b2 = 0.99
  c.train.adam_eps = 1e-8
  c.train.r1_gamma = 10.0        # R1 = gamma / 2 * ||grad D(x)||^2 on reals; 0: off
  c.train.style_mixing_prob = 0.9
  c.train.ema_kimg = 10.0        # G EMA half-life in thousands of images

  c.sample = ml_collections.ConfigDict()
  c.sample.rows = 8
  c.sample.cols = 8
  c.sample.truncation_psi = 1.0  # the fixed-z grid; 1: none
  c.sample.truncation_cutoff = 0  # truncate the first this many w's; 0: all
  c.sample.truncation_rows = "1.0,0.7,0.5,0.0"  # psi per row of the truncation grid; '': none
  c.sample.mixing_resolution = 8  # style-mixing grid: styles up to this resolution are "coarse"


def stylegan2_defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  common_fields(c, 1024)
  c.model.name = "stylegan2"
  c.model.channel_base = 32768   # channels at resolution R: min(channel_base / R, channel_max)
  c.model.channel_max = 512
  c.model.mbstd_num_channels = 1
  c.model.g_architecture = "skip"   # 'orig', 'skip' (config E/F) or 'resnet'
  c.model.d_architecture = "resnet"  # 'orig', 'skip' or 'resnet' (config E/F)
  c.model.d_mapping_layers = 8      # D's class mapping (the reference's MappingNetwork default)
  # The top num_bf16_res resolutions of G and D compute in bfloat16 (params, optimiser
  # state and the rest stay float32); conv_clamp clamps their conv outputs to +-it (0:
  # none). The reference runs its top 4 in float16 with clamp 256; docs/stylegan.md has
  # what bfloat16 changes, measured.
  c.model.num_bf16_res = 0
  c.model.conv_clamp = 0.0

  # FFHQ is not in TFDS: a directory written by gan.data.prepare (configs/stylegan2_ffhq1024.py).
  c.data = data_fields("~/datasets/ffhq1024", label_key="", num_classes=1)

  c.train.num_steps = 781_250    # 25,000 kimg at batch 32
  c.train.batch_size = 32
  c.train.g_lr = 0.002
  c.train.d_lr = 0.002
  c.train.r1_interval = 16       # lazy R1: every 16 D steps (1: in every D step)
  c.train.pl_weight = 2.0        # path-length regularisation; 0: off
  c.train.pl_decay = 0.01
  c.train.pl_batch_shrink = 2
  c.train.pl_interval = 4        # lazy path length: every 4 G steps (1: in every G step)
  c.train.ema_rampup = 0.0       # > 0: EMA horizon min(ema_kimg, images shown * this)
  return add_run_fields(c)


def common_rules() -> dict:
  adam = {k: v for k, v in ADAM_FIELDS.items() if k != "train.ema_decay"}  # EMA in kimg here
  return {
      **adam,
      "model.z_dim": COUNT,
      "model.w_dim": COUNT,
      "model.mapping_layers": COUNT,
      "model.mapping_lr_multiplier": RATE,
      "model.mbstd_group_size": Int(min=0),
      "model.w_avg_beta": Float(min=0, max=1, max_inclusive=False),
      "train.r1_gamma": Float(min=0),
      "train.style_mixing_prob": Float(min=0, max=1),
      "train.ema_kimg": Float(min=0),
      "sample.rows": COUNT,
      "sample.cols": COUNT,
      "sample.truncation_psi": Float(),
      "sample.truncation_cutoff": Int(min=0),
      "sample.truncation_rows": Text(parse_psis, "1.0,0.7,0.5", "1.0;0.7"),
      "sample.mixing_resolution": Int(min=4, power_of_two=True),
  }


def parse_psis(text: str) -> tuple[float, ...]:
  """'1.0,0.7' -> (1.0, 0.7); raises ValueError for anything that is not a number."""
  return tuple(float(s) for s in text.replace(" ", "").split(",") if s)


def field_rules() -> dict:
  """{path: rule} of StyleGAN2's fields, beyond gan.config.run.RUN_FIELDS."""
  return {
      **common_rules(),
      "model.resolution": RESOLUTION,
      "model.channel_base": COUNT,
      "model.channel_max": COUNT,
      "model.mbstd_num_channels": COUNT,
      "model.g_architecture": Choice("orig", "skip", "resnet"),
      "model.d_architecture": Choice("orig", "skip", "resnet"),
      "model.d_mapping_layers": COUNT,
      "model.num_bf16_res": Int(min=0),
      "model.conv_clamp": Float(min=0),
      "train.num_steps": COUNT,
      "train.batch_size": COUNT,
      "train.g_lr": RATE,
      "train.d_lr": RATE,
      "train.r1_interval": COUNT,
      "train.pl_weight": Float(min=0),
      "train.pl_decay": Float(min=0, max=1),
      "train.pl_batch_shrink": COUNT,
      "train.pl_interval": COUNT,
      "train.ema_rampup": Float(min=0),
  }


def num_ws(resolution: int) -> int:
  """The w's the synthesis reads: two per resolution from 8x8, one at 4x4, one for the last toRGB."""
  return 2 * (resolution.bit_length() - 1) - 2


def check_common(config, num_devices: int, num_processes: int, valid, batches: dict) -> list[str]:
  """Checks v1 and v2 share. ``batches``: {batch size: where it is used}."""
  errors = []
  m, s = config.get("model"), config.get("sample")
  for batch, where in batches.items():
    for count, what in ((num_devices, "devices"), (num_processes, "processes")):
      if batch % count:
        errors.append(f"the batch {batch} ({where}) is not divisible by the {count} {what}; "
                      f"use a multiple of {count}.")
    if valid("model.mbstd_group_size"):
      group = min(m.mbstd_group_size, batch)
      if group > 1 and batch % group:
        errors.append(f"the batch {batch} ({where}) is not divisible by the minibatch-stddev "
                      f"group size {group}; change config.model.mbstd_group_size or the batch.")
  if valid("model.resolution", "sample.mixing_resolution"):
    if s.mixing_resolution >= m.resolution:
      errors.append(f"config.sample.mixing_resolution={s.mixing_resolution} must be below "
                    f"model.resolution={m.resolution}: styles up to it come from the rows, the "
                    "rest from the columns.")
  if valid("model.resolution", "sample.truncation_cutoff"):
    if s.truncation_cutoff > num_ws(m.resolution):
      errors.append(f"config.sample.truncation_cutoff={s.truncation_cutoff} exceeds the "
                    f"{num_ws(m.resolution)} w's at {m.resolution}x{m.resolution}; use at most "
                    f"{num_ws(m.resolution)} (0: all).")
  return errors


def check(config, num_devices: int, num_processes: int, valid) -> list[str]:
  """Problems in combinations of StyleGAN2's fields; ``valid(*paths)``: they passed their rules."""
  errors = []
  t = config.get("train")
  if valid("train.batch_size"):
    errors += check_common(config, num_devices, num_processes, valid,
                           {t.batch_size: f"config.train.batch_size={t.batch_size}"})
    if valid("train.pl_batch_shrink", "train.pl_weight") and t.pl_weight > 0:
      pl_batch = t.batch_size // t.pl_batch_shrink
      if pl_batch < 1 or pl_batch % num_devices:
        errors.append(f"the path-length batch batch_size // pl_batch_shrink = {pl_batch} must be "
                      f"a positive multiple of the {num_devices} devices; change "
                      "config.train.pl_batch_shrink or the batch.")
  if valid("model.resolution", "model.channel_base", "model.channel_max"):
    m = config.model
    if min(m.channel_base // m.resolution, m.channel_max) < 1:
      errors.append(f"config.model.channel_base={m.channel_base} leaves no channels at "
                    f"{m.resolution}x{m.resolution}; use at least {m.resolution}.")
  return errors


def largest_step_input(config, valid) -> tuple[int, str] | None:
  """(real examples one step reads, the field that sets it)."""
  if not valid("train.batch_size"):
    return None
  return config.train.batch_size, f"config.train.batch_size={config.train.batch_size}"
