"""Evaluate a run's checkpoint, or compute a dataset's reference statistics.

  python -m gan.evaluate --workdir DIR [--step N] [--num_samples 50000]
      [--truncation T | --truncation_sweep 0.25,0.5,1,2] [--metrics fid,is]
      [--inception_weights FILE] [--resize_mode legacy|clean]
  python -m gan.evaluate stats --config=configs/biggan128.py [--metrics fid]
      [--config.eval.num_real=50000] [--config.eval.real_flips=true]

The first prints a table and writes it with its protocol as JSON in
DIR/eval/ (next to the checkpoints, never inside them); a sweep also prints
one row per threshold and saves the trade-off plot as a PNG there. Defaults
come from the run's config.eval. The second fills the reference-statistics
cache (config.eval.stats_dir) that every later evaluation of that dataset
reads. See docs/evaluation.md.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
import ml_collections  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from gan import console  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's workdir.")
_STEP = flags.DEFINE_integer("step", None, "The checkpoint to evaluate (default: the latest).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "Generated images (default: the "
                                    "run's config.eval.num_samples).")
_TRUNCATION = flags.DEFINE_float("truncation", None, "Truncation threshold (0: none).")
_SWEEP = flags.DEFINE_string("truncation_sweep", None, "Thresholds to evaluate one after "
                             "another, e.g. '0.25,0.5,1,2' (0: none).")
_METRICS = flags.DEFINE_string("metrics", None, "Comma-separated metrics (default: the run's "
                               "config.eval.metrics); see gan/evaluation/catalog.py.")
_INCEPTION = flags.DEFINE_string("inception_weights", None, "The Inception-v3 file FID, IS, "
                                 "KID and precision/recall need.")
_RESIZE = flags.DEFINE_string("resize_mode", None, "'legacy' (TF1 bilinear) or 'clean' (PIL "
                              "bicubic) resizing to 299.")
_STATS_DIR = flags.DEFINE_string("stats_dir", None, "Reference-statistics cache (default: "
                                 "the run's config.eval.stats_dir).")
_CONFIG = config_flags.DEFINE_config_file("config", None, "stats: the config whose data to "
                                          "describe.", lock_config=False)


def _overrides(config) -> None:
  """The flags given, onto config.eval."""
  e = config.eval
  for flag, field in ((_NUM_SAMPLES, "num_samples"), (_METRICS, "metrics"),
                      (_INCEPTION, "inception_weights"), (_RESIZE, "resize_mode"),
                      (_STATS_DIR, "stats_dir")):
    if flag.value is not None:
      setattr(e, field, flag.value)
  if _TRUNCATION.value is not None:
    e.truncation = float(_TRUNCATION.value)


def _check_eval(config, family) -> None:
  """Raises ConfigError for eval settings that cannot run."""
  import jax
  from gan.config import ConfigError
  from gan.config.evaluation import EVAL_FIELDS, eval_problems
  from gan.config.rules import check_fields
  e = config.eval
  e.at_end = True  # evaluation on, for the checks
  e.best_metric = ""  # ranks checkpoints in training only
  problems = [p for p in check_fields(config, EVAL_FIELDS) if p.startswith("config.eval.")]
  if not problems:
    problems = eval_problems(config, jax.device_count(), family.conditional)
  if len(problems) == 1:
    raise ConfigError(problems[0])
  if problems:
    raise ConfigError("Cannot evaluate:\n  - " + "\n  - ".join(problems))


def _sweep() -> list[float | None]:
  if _SWEEP.value is None:
    return [None]
  try:
    values = [float(t) for t in _SWEEP.value.split(",") if t.strip()]
  except ValueError:
    values = []
  if not values or any(v < 0 for v in values):
    from gan.config import ConfigError
    raise ConfigError(f"--truncation_sweep={_SWEEP.value!r}: expected thresholds >= 0 like "
                      "'0.25,0.5,1,2'.")
  return values


def evaluate_workdir(workdir: str) -> list[dict]:
  """Evaluates a checkpoint of ``workdir``; returns the records written."""
  import jax
  from gan.evaluation import run_files
  from gan.evaluation.protocol import Evaluator, table
  from gan.train.sharding import make_mesh

  from gan.families import registry

  thresholds = _sweep()
  saved = run_files.read_saved_config(workdir)
  family = registry.for_config(ml_collections.ConfigDict(saved))
  config = run_files.merged_config(saved, family.defaults())
  _overrides(config)
  _check_eval(config, family)
  mesh = make_mesh()
  model = family.build(config)
  state, step = run_files.restore(workdir, config, family, model, mesh, _STEP.value)
  images = family.images_shown(config, state)
  evaluator = Evaluator(config, mesh)
  logging.info("Evaluating step %d of %s (%d images shown): %s on %d samples", step, workdir,
               images, config.eval.metrics, evaluator.num_samples)
  records = []
  for threshold in thresholds:
    truncation = config.eval.truncation if threshold is None else threshold
    generator = family.eval_generator(model, config, state, images, truncation or None)
    result = evaluator.evaluate(generator, step=step, images_shown=images)
    record = {**result.record, "truncation": truncation or None,
              "checkpoint": str(run_files.checkpoint_dir(workdir, step))}
    path = run_files.write_record(workdir, record)
    if jax.process_index() == 0:
      print(f"Step {step}, truncation {truncation or 'none'}:\n{table(record)}\n  -> {path}")
    records.append(record)
  if len(thresholds) > 1 and jax.process_index() == 0:
    print(run_files.sweep_summary(records))
    plot = run_files.write_sweep_plot(workdir, step, records)
    if plot:
      print(f"Trade-off plot: {plot}")
  return records


def compute_stats(config) -> None:
  """Fills the reference-statistics cache for ``config``'s data and metrics' networks."""
  import jax
  from gan.config import ConfigError
  from gan.evaluation import catalog, networks, reference
  from gan.families import registry
  from gan.train.sharding import make_mesh

  family = registry.for_config(config)
  _overrides(config)
  _check_eval(config, family)
  metrics = catalog.parse_metrics(config.eval.metrics)
  nets = networks.for_metrics(metrics, config.eval)
  if not nets:
    raise ConfigError(f"--metrics={config.eval.metrics!r} needs no reference statistics (swd "
                      "is computed from images at each evaluation); name fid, kid, pr or "
                      "shapes10_fid.")
  ref = reference.compute(config, nets, 0, make_mesh())
  if jax.process_index() == 0:
    print(f"Reference statistics of {ref.description} for {', '.join(nets)} in "
          f"{reference.cache_dir(config.eval)}")


def main(argv):
  console.quiet_libraries()
  from gan.config import ConfigError
  from gan.train.checkpointing import CheckpointMismatchError, CorruptCheckpointError
  command = argv[1:]
  try:
    if command == ["stats"]:
      if _CONFIG.value is None:
        raise SystemExit("error: stats needs --config=configs/<file>.py (the dataset to "
                         "describe).")
      compute_stats(_CONFIG.value)
    elif not command:
      if not _WORKDIR.value:
        raise SystemExit("error: pass --workdir=DIR (a training run) or the command 'stats'.")
      evaluate_workdir(_WORKDIR.value)
    else:
      raise SystemExit(f"error: unknown command {' '.join(command)!r}; the only command is "
                       "'stats' (without one: evaluate --workdir).")
  except (ConfigError, CheckpointMismatchError, CorruptCheckpointError,
          FileNotFoundError) as error:
    raise SystemExit(f"error: {error}") from None
  except KeyboardInterrupt:
    raise SystemExit("error: interrupted.") from None
  except OSError as error:
    from gan.fileio import describe_os_error
    where = f": {error.filename}" if error.filename else ""
    raise SystemExit(f"error: {describe_os_error(error)}{where}") from None


if __name__ == "__main__":
  app.run(main, flags_parser=console.parse_flags)
