"""A workdir belongs to one run: refuse to mix runs unless told to.

The chief writes the resolved config to ``<workdir>/config.json``. When a
workdir already has one, ``claim_workdir`` compares the settings that define
the run (model, data, optimisation, schedule, seed) with the new config:

  config.resume = 'auto'   (default) continue only if they match; otherwise
                           stop before anything compiles, listing the
                           differences and the two ways out.
  config.resume = 'force'  continue the run with the new settings; the old
                           config is kept as config.<time>.json.

Settings that only say how long or how observably to run may change freely
(``RESUMABLE_CHANGES``), e.g. a longer ``train.num_steps`` or more frequent
checkpoints. A checkpoint whose parameter shapes do not fit the model is
refused separately (gan/train/checkpointing.py).
"""

import json
import time

import ml_collections
from etils import epath

from gan.config import ConfigError
from gan.fileio import atomic_write

RESUMABLE_CHANGES = (
    "resume", "train.num_steps", "train.max_steps", "train.unroll_loops",
    "train.nonfinite_policy", "train.nonfinite_patience", "train.inject_nonfinite_steps",
    "schedule.total_images", "data.data_dir", "data.num_workers", "log_every_steps",
    "sample_every_steps", "checkpoint_every_steps", "checkpoint_every_secs", "keep_checkpoints",
    "sample", "eval")


def _flatten(tree: dict, prefix: str = "") -> dict:
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(_flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def _resumable(name: str) -> bool:
  return any(name == field or name.startswith(field + ".") for field in RESUMABLE_CHANGES)


def differences(saved: dict, current: dict) -> list[str]:
  """'key: saved -> current' for every run-defining setting that differs."""
  old, new = _flatten(saved), _flatten(current)
  return [f"{name}: {old.get(name, '(absent)')!r} -> {new.get(name, '(absent)')!r}"
          for name in sorted(set(old) | set(new))
          if not _resumable(name) and old.get(name) != new.get(name)]


def _read_saved(path: epath.Path) -> dict:
  """The config a workdir's run was started with; ConfigError naming the fix if damaged."""
  try:
    saved = json.loads(path.read_text())
    if not isinstance(saved, dict):
      raise ValueError(f"expected a JSON object, found {type(saved).__name__}")
    return saved
  except (ValueError, UnicodeDecodeError) as error:
    backups = sorted(p.name for p in path.parent.glob("config.*.json"))
    restore = (f"copy the newest of {', '.join(backups)} over it if that was this run's last "
               "config, or " if backups else "")
    raise ConfigError(
        f"{path} is damaged ({type(error).__name__}: {error}). It records the settings this "
        f"run was started with; {restore}delete it: the same command then records the current "
        "config and resumes from the checkpoints, which are not affected.") from error


def claim_workdir(workdir: epath.Path, config: ml_collections.ConfigDict, is_chief: bool) -> None:
  """Raises ConfigError if ``workdir`` holds another run; then records ``config`` there.

  ``config.resume`` was checked against RESUME_MODES by gan.config.validate.
  """
  path = workdir / "config.json"
  current = json.loads(config.to_json())
  if path.exists():
    changed = differences(_read_saved(path), current)
    if changed and config.resume != "force":
      raise ConfigError(
          f"{workdir} holds a run with other settings ({len(changed)} differ):\n    "
          + "\n    ".join(changed[:20]) + "\n  Use a new --workdir for a new run, or pass "
          "--config.resume=force to continue this run with the new settings.")
    if changed and is_chief:
      path.rename(workdir / f"config.{time.strftime('%Y%m%d-%H%M%S')}.json")
  if is_chief:
    atomic_write(path, config.to_json(indent=2))
