"""``config.eval``: evaluation during training (and the defaults of gan.evaluate).

Every ``eval.every_steps`` steps (and at the end with ``eval.at_end``) the
loop draws ``eval.num_samples`` images from the EMA generator, scores them
with ``eval.metrics`` against reference statistics of the training data, logs
and writes the figures, and ranks the checkpoint of that step by
``eval.best_metric`` for keep-best. See docs/evaluation.md.
"""

import os

import ml_collections

from gan.config.rules import COUNT, Bool, Choice, Float, Int, Str, Text
from gan.evaluation import catalog

RESIZE_MODES = ("legacy", "clean")  # gan/evaluation/resize.py

INCEPTION_FILES = (
    "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz (or the "
    "classify_image_graph_def.pb inside it), "
    "pt_inception-2015-12-05-6726825d.pth (pytorch-fid's release: https://github.com/"
    "mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth) "
    "or an .npz written by `python -m gan.evaluation.inception_weights convert`")


def eval_fields() -> ml_collections.ConfigDict:
  e = ml_collections.ConfigDict()
  e.every_steps = 0          # 0: never during training
  e.at_end = False           # also evaluate the final state
  e.metrics = "swd"          # comma-separated, from gan/evaluation/catalog.py
  e.num_samples = 10_000     # generated images per evaluation (papers: 50,000)
  e.num_real = 0             # reference images: 0 = the whole dataset
  e.real_flips = False       # reference statistics also over mirrored images
  e.batch_size = 200         # images per extraction batch, all devices together
  e.truncation = 0.0         # BigGAN truncation threshold; 0 = none
  e.best_metric = ""         # e.g. 'fid': keep the best checkpoint by it ('' = no keep-best)
  e.inception_weights = ""   # the Inception-v3 file FID/IS/KID/PR need; see INCEPTION_FILES
  e.resize_mode = "legacy"   # to Inception's 299x299: 'legacy' (TF1 bilinear) or 'clean' (PIL)
  e.is_splits = 10           # Inception score splits (StudioGAN: 1)
  e.kid_subsets = 100
  e.kid_subset_size = 1_000
  e.pr_k = 3                 # nearest neighbours for precision/recall
  e.stats_dir = ""           # reference-statistics cache; '' = ~/.cache/gan/reference_stats
  e.seed = 0                 # fixes the evaluation's latents, labels and SWD patches
  return e


EVAL_FIELDS = {
    "eval.every_steps": Int(min=0),
    "eval.at_end": Bool(),
    "eval.metrics": Text(catalog.parse_metrics, "swd,shapes10_fid", "swd,fdi"),
    "eval.num_samples": Int(min=2),
    "eval.num_real": Int(min=0),
    "eval.real_flips": Bool(),
    "eval.batch_size": COUNT,
    "eval.truncation": Float(min=0),
    "eval.best_metric": Choice("", *catalog.BETTER),
    "eval.inception_weights": Str(),
    "eval.resize_mode": Choice(*RESIZE_MODES),
    "eval.is_splits": COUNT,
    "eval.kid_subsets": COUNT,
    "eval.kid_subset_size": Int(min=2),
    "eval.pr_k": COUNT,
    "eval.stats_dir": Str(),
    "eval.seed": Int(min=0, max=2**31 - 1),
}


def inception_missing(metrics, path: str) -> str | None:
  """Why ``metrics`` cannot run with ``path`` as the Inception file, or None."""
  needing = [m for m in metrics if catalog.NETWORK_OF[m] == catalog.INCEPTION]
  if not needing:
    return None
  what = f"{'/'.join(needing)} need{'s' if len(needing) == 1 else ''} the Inception-v3 weights"
  if not path:
    return (f"config.eval.metrics asks for {', '.join(needing)}: {what}, which cannot be "
            f"downloaded here. Get {INCEPTION_FILES}, and pass its path with "
            "--config.eval.inception_weights=PATH (gan.evaluate: --inception_weights=PATH); "
            "or evaluate with swd (and shapes10_fid, class_accuracy on shapes10) only.")
  if not path.startswith("gs://") and not os.path.isfile(path):
    return (f"config.eval.inception_weights={path!r}: no such file; {what}: "
            f"{INCEPTION_FILES}.")
  return None


def eval_problems(config, num_devices: int, conditional: bool) -> list[str]:
  """Contradictions between the eval fields and the rest of the config (fields valid)."""
  e, problems = config.eval, []
  if not (e.every_steps or e.at_end):
    return problems
  metrics = catalog.parse_metrics(e.metrics)
  if not metrics:
    problems.append("config.eval.metrics is empty but evaluation is on (eval.every_steps or "
                    "eval.at_end); name at least one, e.g. --config.eval.metrics=swd.")
  if e.batch_size % num_devices:
    problems.append(f"config.eval.batch_size={e.batch_size} must be a multiple of the "
                    f"{num_devices} devices.")
  if e.best_metric and e.best_metric not in catalog.figures(metrics):
    problems.append(f"config.eval.best_metric={e.best_metric!r} is not a figure of "
                    f"config.eval.metrics={e.metrics!r} (those give "
                    f"{', '.join(catalog.figures(metrics)) or 'none'}).")
  shapes_metrics = [m for m in metrics if catalog.NETWORK_OF[m] == catalog.SHAPES10]
  if shapes_metrics and config.data.name != "shapes10":
    problems.append(f"config.eval.metrics: {', '.join(shapes_metrics)} use the shapes10 "
                    f"classifier, which only knows the shapes10 dataset, not "
                    f"{config.data.name!r}; use fid/kid/pr/is (Inception) or swd.")
  if "class_accuracy" in metrics and not (conditional and config.data.label_key):
    problems.append("config.eval.metrics: class_accuracy needs class-conditional samples; "
                    "this run is unconditional. Remove it.")
  if "swd" in metrics and config.model.resolution < 16:
    problems.append(f"config.eval.metrics: swd needs images of at least 16x16, not "
                    f"{config.model.resolution}x{config.model.resolution}.")
  if (missing := inception_missing(metrics, e.inception_weights)) is not None:
    problems.append(missing)
  return problems
