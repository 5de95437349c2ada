"""Reference statistics of a dataset: computed once, cached, shared by every evaluation.

The cache key is everything the features depend on: the dataset (name, split,
resolution, crop filter; for shapes10 its seed and size), the network (its
weights' digest and resize mode), how many images and whether mirrored copies
were added. A cache file holds float64 mean and covariance over all those
images and the first ``KEEP_FEATURES`` feature rows (for KID and
precision/recall). SWD's patch descriptors are cheap to recompute and large:
they are kept in memory for the run, never cached.

In a multi-process run every process takes part in extraction (it is a
collective), so the cache is used only when every process can read it.
"""

import hashlib
import io
import json
import os

import jax
import numpy as np
from absl import logging
from etils import epath

from gan.evaluation import extract, metrics as metric_lib
from gan.evaluation.collect import Collected
from gan.evaluation.progress_bar import ProgressBar
from gan.fileio import atomic_write

KEEP_FEATURES = 50_000


def cache_dir(eval_config) -> epath.Path:
  return epath.Path(eval_config.stats_dir or os.path.join(
      os.path.expanduser("~"), ".cache", "gan", "reference_stats"))


def describe_data(config) -> dict:
  """What the reference images depend on."""
  d = config.data
  described = {"dataset": d.name, "split": d.split, "resolution": config.model.resolution}
  if d.name == "shapes10":
    described.update(seed=config.seed, num_examples=d.num_examples)
  else:
    described.update(resize_filter=d.resize_filter)
  return described


def count_of(config, source) -> int:
  """How many reference images: config.eval.num_real, or the whole dataset (0)."""
  n = config.eval.num_real
  return len(source) if n == 0 else min(n, len(source))


class Reference:
  """Statistics of the reference images: ``stats[name]``, ``features(name)``, SWD descriptors."""

  def __init__(self, stats: dict, features: dict, swd_descriptors=None, count: int = 0,
               description: str = "", swd_images: int = 0):
    self.stats, self._features, self._swd = stats, features, swd_descriptors
    self.count, self.description, self.swd_images = count, description, swd_images

  def features(self, name: str) -> np.ndarray:
    return self._features[name]

  def swd_descriptors(self):
    return self._swd


def _key(data: dict, network, count: int, flips: bool) -> tuple[str, dict]:
  described = {**data, "network": network.cache_key, "images": count, "flips": flips}
  digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:10]
  name = (f"{data['dataset']}-{data['split']}-{data['resolution']}px-{network.name}-"
          f"{count}{'-flips' if flips else ''}-{digest}.npz").replace("/", "_")
  return name, described


def _save(path: epath.Path, stats: metric_lib.FeatureStats, features: np.ndarray,
          described: dict) -> None:
  buffer = io.BytesIO()
  np.savez(buffer, count=np.int64(stats.count), mean=stats.mean(), cov=stats.cov(),
           features=features, description=np.array(json.dumps(described, sort_keys=True)),
           **{f"stats_{k}": v for k, v in stats.to_dict().items()})
  path.parent.mkdir(parents=True, exist_ok=True)
  atomic_write(path, buffer.getvalue())


def _load(path: epath.Path):
  with path.open("rb") as f:
    data = np.load(io.BytesIO(f.read()), allow_pickle=False)
    state = {k[len("stats_"):]: data[k] for k in data.files if k.startswith("stats_")}
    return metric_lib.FeatureStats.from_dict(state), data["features"]


def _everyone_has(path: epath.Path) -> bool:
  exists = path.exists()
  if jax.process_count() == 1:
    return exists
  from jax.experimental import multihost_utils
  return bool(np.min(multihost_utils.process_allgather(np.int32(exists))))


def compute(config, networks: dict, swd_images: int, mesh, *, verbose: bool = True,
            use_cache: bool = True) -> Reference:
  """The reference set of ``config.data`` for ``networks`` (+ SWD on ``swd_images``)."""
  from gan.data.pipeline import create_source  # TensorFlow for TFDS sources: only here

  e = config.eval
  source = create_source(config)
  count = count_of(config, source)
  data = describe_data(config)
  stats, features, todo, paths = {}, {}, {}, {}
  for name, net in networks.items():
    file_name, described = _key(data, net, count, e.real_flips)
    path = cache_dir(e) / file_name
    if use_cache and _everyone_has(path):
      stats[name], features[name] = _load(path)
      if verbose:
        logging.info("Reference statistics for %s from the cache: %s", name, path)
    else:
      todo[name], paths[name] = net, (path, described)
  swd_count = min(swd_images, count)
  swd_descriptors = None
  if todo or swd_count:
    passes = [False, True] if e.real_flips else [False]
    images = len(passes) * count if todo else swd_count
    bar = ProgressBar(f"Reference statistics of {data['dataset']}", images, enabled=verbose)
    params = {name: net.params for name, net in todo.items()}
    collected = Collected(list(todo), swd=False, keep=KEEP_FEATURES, keep_logits=False)
    swd_collected = (Collected([], swd=True, keep=swd_count, keep_logits=False)
                     if swd_count else None)
    rng = jax.random.PRNGKey(e.seed + 1)  # SWD patches of the reals: fixed by eval.seed
    for flip in passes:
      with_swd = extract.real_fn(todo, True, mesh, flip) if swd_count and not flip else None
      without_swd = extract.real_fn(todo, False, mesh, flip) if todo else None
      n = count if todo else swd_count
      for index, (batch, valid) in enumerate(extract.real_batches(source, n, e.batch_size,
                                                                   mesh)):
        wants_swd = with_swd is not None and swd_collected.count < swd_count
        fn = with_swd if wants_swd else without_swd
        outputs = extract.to_host(fn(params, batch, jax.random.fold_in(rng, index)), valid)
        if todo:
          collected.add({k: v for k, v in outputs.items() if k in todo}, valid)
        if wants_swd:
          swd_collected.add({extract.SWD_KEY: outputs[extract.SWD_KEY]}, valid)
        bar.update(valid)
    for name in todo:
      stats[name], features[name] = collected.stats[name], collected.features(name)
      path, described = paths[name]
      if use_cache and jax.process_index() == 0:
        try:
          _save(path, stats[name], features[name], described)
          if verbose:
            logging.info("Reference statistics for %s cached in %s", name, path)
        except OSError as error:  # a cache is an optimisation: say so, go on
          logging.warning("Could not cache reference statistics in %s (%s); they will be "
                          "computed again next time.", path, error)
    if swd_collected is not None:
      swd_descriptors = swd_collected.swd_descriptors()
  flips = ", with mirrored copies" if e.real_flips else ""
  description = (f"{data['dataset']} {data['split']} {data['resolution']}x{data['resolution']}, "
                 f"{count} images{flips}")
  return Reference(stats, features, swd_descriptors, count, description, swd_count)
