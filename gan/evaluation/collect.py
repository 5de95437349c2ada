"""What an image set gives the metrics, gathered batch by batch on the host, and the figures.

``Collected`` holds, per feature network, float64 running statistics of all
features (FID), the first ``keep`` feature rows (KID, precision/recall) and
the logits (IS, class accuracy); the labels the images were drawn for; and
the first ``keep`` images' SWD descriptors. ``figures`` turns a reference set
and a generated set into the figures of the chosen metrics.
"""

import numpy as np

from gan.evaluation import catalog, metrics as metric_lib
from gan.evaluation.extract import SWD_KEY


class Collected:
  """Host-side outputs of one image set; ``add`` once per batch, in order."""

  def __init__(self, network_names, swd: bool, keep: int, keep_logits: bool = True,
               keep_swd: int | None = None):
    self.keep, self.keep_logits = keep, keep_logits
    self.keep_swd = keep if keep_swd is None else keep_swd
    self.stats = {name: metric_lib.FeatureStats() for name in network_names}
    self._features = {name: [] for name in network_names}
    self._logits = {name: [] for name in network_names}
    self._labels = []
    self._swd = [] if swd else None
    self.count = 0

  def add(self, outputs: dict, count: int, labels: np.ndarray | None = None) -> None:
    """``outputs`` of ``count`` images (extract.to_host), and their labels if drawn for one."""
    room = max(self.keep - self.count, 0)
    for name, stats in self.stats.items():
      features = np.asarray(outputs[name]["features"], np.float64)
      stats.add(features)
      if room:
        self._features[name].append(np.asarray(features[:room], np.float32))
      if self.keep_logits:
        self._logits[name].append(np.asarray(outputs[name]["logits"], np.float32))
    swd_room = max(self.keep_swd - self.count, 0)
    if self._swd is not None and swd_room:
      self._swd.append([np.asarray(level[:swd_room], np.float32) for level in outputs[SWD_KEY]])
    if labels is not None:
      self._labels.append(np.asarray(labels))
    self.count += count

  def features(self, name: str) -> np.ndarray:
    return np.concatenate(self._features[name]) if self._features[name] else np.zeros((0, 0))

  def logits(self, name: str) -> np.ndarray:
    return np.concatenate(self._logits[name])

  def labels(self) -> np.ndarray | None:
    return np.concatenate(self._labels) if self._labels else None

  def swd_descriptors(self) -> list[np.ndarray]:
    """Per pyramid level, [images * patches, 7 * 7 * 3] float32."""
    levels = zip(*self._swd)
    return [np.concatenate(level).reshape(-1, level[0].shape[-1]) for level in levels]


def figures(metrics, real, fake: Collected, e, num_samples: int) -> dict[str, float]:
  """The figures of ``metrics`` for generated ``fake`` against the reference ``real``.

  ``real``: a Collected or a reference set (stats, features, swd_descriptors);
  ``e``: config.eval (IS splits, KID subsets, precision/recall k, seed).
  """
  out = {}
  inception, shapes = catalog.INCEPTION, catalog.SHAPES10
  if "fid" in metrics:
    out["fid"] = metric_lib.fid_from_stats(real.stats[inception], fake.stats[inception])
  if "is" in metrics:
    out["is"], out["is_std"] = metric_lib.inception_score(fake.logits(inception), e.is_splits)
  if "kid" in metrics:
    out["kid"], out["kid_std"] = metric_lib.kernel_inception_distance(
        real.features(inception), fake.features(inception), num_subsets=e.kid_subsets,
        subset_size=e.kid_subset_size, seed=e.seed)
  if "pr" in metrics:
    # As many reference images as samples (stylegan2-ada): the radii depend on the count.
    out["precision"], out["recall"] = metric_lib.precision_recall(
        real.features(inception)[:num_samples], fake.features(inception), k=e.pr_k)
  if "swd" in metrics:
    from gan.evaluation import swd as swd_lib
    out.update(swd_lib.swd(real.swd_descriptors(), fake.swd_descriptors(), seed=e.seed))
  if "shapes10_fid" in metrics:
    out["shapes10_fid"] = metric_lib.fid_from_stats(real.stats[shapes], fake.stats[shapes])
  if "class_accuracy" in metrics:
    predicted = np.argmax(fake.logits(shapes), axis=-1)
    out["class_accuracy"] = float(np.mean(predicted == fake.labels()))
  return {k: float(v) for k, v in out.items()}
