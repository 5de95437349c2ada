"""A finished or live run's files, for standalone evaluation (gan/evaluate.py).

Reads the run's config (config.json, filled up with the family's current
defaults, e.g. config.eval for runs older than it), restores a checkpoint
read-only (a run still training in the same workdir is not disturbed), and
writes evaluation records and truncation-sweep plots to ``<workdir>/eval/``.
"""

import io
import json

import jax
import ml_collections
from etils import epath

from gan.config import ConfigError
from gan.evaluation import catalog
from gan.fileio import atomic_write


def merged_config(saved: dict, defaults: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``defaults`` overwritten by every field of ``saved`` (a run's config.json)."""
  merged = defaults.to_dict()

  def update(target: dict, source: dict) -> None:
    for key, value in source.items():
      if isinstance(value, dict) and isinstance(target.get(key), dict):
        update(target[key], value)
      else:
        target[key] = value

  update(merged, saved)
  return ml_collections.ConfigDict(merged)


def read_saved_config(workdir: str) -> dict:
  path = epath.Path(workdir) / "config.json"
  if not path.exists():
    raise ConfigError(f"{workdir} has no config.json: it is not the workdir of a training run "
                      "(python -m gan.main writes one when it starts).")
  try:
    return json.loads(path.read_text())
  except ValueError as error:
    raise ConfigError(f"{path} is damaged ({error}).") from None


def checkpoint_dir(workdir: str, step: int) -> epath.Path:
  return epath.Path(workdir).resolve() / "checkpoints" / str(step)


def restore(workdir: str, config, family, model, mesh, step: int | None):
  """(state, step) of checkpoint ``step`` (default the latest), verified, read-only."""
  from gan.train.checkpointing import Checkpointer
  from gan.train.sharding import replicated
  checkpointer = Checkpointer(workdir, keep=1, read_only=True,
                              upgrades=family.checkpoint_upgrades(model))
  steps = sorted(checkpointer.manager.all_steps())
  if not steps:
    raise ConfigError(f"{workdir} has no checkpoint yet; evaluate once training has written one "
                      f"(every config.checkpoint_every_steps={config.checkpoint_every_steps}).")
  if step is None:
    step = steps[-1]
  elif step not in steps:
    raise ConfigError(f"--step={step}: no checkpoint of that step in {workdir}/checkpoints; "
                      f"there are {', '.join(map(str, steps))}.")
  target = jax.jit(lambda: family.init_state(model, config), out_shardings=replicated(mesh))()
  return checkpointer.restore(step, target), step


def record_name(record: dict) -> str:
  """eval/step_<N>_n<samples>[_trunc<T>].json: standalone records never overwrite training's."""
  t = record.get("truncation")
  truncation = f"_trunc{t:g}" if t else ""
  return f"step_{record['step']:08d}_n{record['protocol']['generated_images']}{truncation}.json"


def write_record(workdir: str, record: dict) -> epath.Path:
  path = epath.Path(workdir) / "eval" / record_name(record)
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(record, indent=2))
  return path


def sweep_summary(records: list[dict]) -> str:
  names = list(records[0]["figures"])
  lines = ["truncation  " + "  ".join(f"{n:>14}" for n in names)]
  for r in records:
    t = r.get("truncation")
    lines.append(f"{(f'{t:g}' if t else 'none'):>10}  "
                 + "  ".join(f"{r['figures'][n]:>14.5g}" for n in names))
  return "\n".join(lines)


def _axes(figures: dict) -> tuple[str, str] | None:
  """(x, y) figures of the trade-off: IS against FID, else the first two that exist."""
  for x, y in (("fid", "is"), ("shapes10_fid", "class_accuracy"), ("fid", "precision"),
               ("swd", "class_accuracy")):
    if x in figures and y in figures:
      return x, y
  names = [n for n in figures if n in catalog.BETTER]
  return (names[0], names[1]) if len(names) >= 2 else None


def write_sweep_plot(workdir: str, step: int, records: list[dict]) -> epath.Path | None:
  """eval/step_<N>_truncation_sweep.png: y against x per threshold (BigGAN figure 2 style)."""
  from gan.evaluation.plot import trade_off
  axes = _axes(records[0]["figures"])
  if axes is None or jax.process_index() != 0:
    return None
  x, y = axes
  points = [(r["figures"][x], r["figures"][y], f"{r['truncation']:g}" if r["truncation"]
             else "none") for r in records]
  image = trade_off(points, x, y, f"step {step}: {y} against {x} by truncation")
  path = epath.Path(workdir) / "eval" / f"step_{step:08d}_truncation_sweep.png"
  buffer = io.BytesIO()
  image.save(buffer, format="PNG")
  atomic_write(path, buffer.getvalue())
  return path
