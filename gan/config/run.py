"""The config fields every family shares, and the checks of its data settings.

``add_run_fields`` adds the run-level fields (resuming, the non-finite
policy, logging, sample and checkpoint cadence) to a family's defaults;
``RUN_FIELDS`` holds their rules and those of ``config.data``, which the data
layer reads for every family. ``data_problems`` finds contradictions in
``config.data`` and input batches that cannot fit in host memory.
"""

import os

import ml_collections

from gan.config.evaluation import EVAL_FIELDS, eval_fields
from gan.config.rules import COUNT, Bool, Choice, Int, Str, Text
from gan.data.image_ops import RESIZE_FILTERS

RESUME_MODES = ("auto", "force")  # see gan/train/run_config.py
POLICIES = ("skip", "rollback", "stop")  # config.train.nonfinite_policy: gan/train/health.py


def parse_steps(text: str) -> tuple[int, ...]:
  """'100, 101' -> (100, 101); raises ValueError for a non-integer or negative step."""
  steps = tuple(int(s) for s in text.replace(" ", "").split(",") if s)
  if any(step < 0 for step in steps):
    raise ValueError(f"steps must be >= 0, got {text!r}")
  return steps


def add_run_fields(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds the fields every model shares: resuming, non-finite policy, logging, checkpoints, eval."""
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
  c.eval = eval_fields()  # gan/config/evaluation.py
  return c


def data_fields(name: str, label_key: str, num_classes: int) -> ml_collections.ConfigDict:
  """``config.data``: which dataset, and how the data layer reads it (docs/data.md)."""
  d = ml_collections.ConfigDict()
  # A TFDS name, a directory written by `python -m gan.data.prepare`, or
  # "shapes10" (embedded). See gan/data/pipeline.py.
  d.name = name
  d.data_dir = ml_collections.FieldReference(None, field_type=str)  # TFDS data_dir
  d.split = "train"
  d.label_key = label_key       # '' for an unconditional dataset (then num_classes = 1)
  d.num_classes = num_classes
  d.num_examples = 0            # shapes10 only: size of the generated set
  d.random_flip = True
  d.resize_filter = "bilinear"  # after the center crop; see gan/data/image_ops.py
  d.num_workers = 0             # decoding threads per process; 0: one per CPU core
  return d


RUN_FIELDS = {
    "seed": Int(min=0, max=2**32 - 1),  # the usual uint32 seed range
    "resume": Choice(*RESUME_MODES),
    "model.name": Str(nonempty=True),  # a registered family (gan/families/registry.py)
    "data.name": Str(nonempty=True),
    "data.data_dir": Str(optional=True),
    "data.split": Str(nonempty=True),
    "data.label_key": Str(),
    "data.num_classes": COUNT,
    "data.num_examples": Int(min=0),
    "data.random_flip": Bool(),
    "data.resize_filter": Choice(*sorted(RESIZE_FILTERS)),
    "data.num_workers": Int(min=0),
    "train.nonfinite_policy": Choice(*POLICIES),
    "train.nonfinite_patience": COUNT,
    "train.inject_nonfinite_steps": Text(parse_steps, "100,101", "100;101"),
    "log_every_steps": COUNT,
    "sample_every_steps": COUNT,
    "checkpoint_every_steps": COUNT,
    "checkpoint_every_secs": Int(min=0),
    "keep_checkpoints": COUNT,
    **EVAL_FIELDS,
}


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
