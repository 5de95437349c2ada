"""Feature-space metrics on the host, in float64: FID, IS, KID and precision/recall.

Each follows a reference implementation, named where it is defined:

  FID   Heusel et al. 2017; the sqrtm treatment of TTUR / mseitzer/pytorch-fid
        (fid_score.calculate_frechet_distance).
  IS    Salimans et al. 2016; openai/improved-gan inception_score.py and
        stylegan2-ada-pytorch metrics/inception_score.py.
  KID   Binkowski et al. 2018; stylegan2-ada-pytorch
        metrics/kernel_inception_distance.py (same in clean-fid).
  P/R   Kynkaanniemi et al. 2019; stylegan2-ada-pytorch metrics/precision_recall.py.
"""

import numpy as np
import scipy.linalg
from absl import logging
from etils import epath


class FeatureStats:
  """Running count, mean and covariance of feature rows, in float64.

  Each batch is centred on its own mean and merged with Chan et al.'s
  parallel update, so no sum of squares of the raw features (which for
  50k x 2048 Inception features would lose float64 digits to cancellation) is
  ever formed. ``cov`` is unbiased, as ``np.cov(features, rowvar=False)``.
  """

  def __init__(self):
    self.count = 0
    self._mean = None  # [D]
    self._m2 = None    # [D, D]: sum over rows of (x - mean)(x - mean)^T

  @property
  def dim(self) -> int | None:
    return None if self._mean is None else self._mean.shape[0]

  def add(self, features: np.ndarray) -> None:
    """features [B, D] (any float dtype; accumulated in float64)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2:
      raise ValueError(f"features must be [batch, dim], got shape {x.shape}")
    if self.dim is not None and x.shape[1] != self.dim:
      raise ValueError(f"features of dim {x.shape[1]} added to stats of dim {self.dim}")
    if not x.shape[0]:
      return
    mean = x.mean(axis=0)
    centred = x - mean
    self._merge(x.shape[0], mean, centred.T @ centred)

  def merge(self, other: "FeatureStats") -> None:
    """Adds every row ``other`` has seen, as if they had been added here."""
    if other.count:
      if self.dim is not None and other.dim != self.dim:
        raise ValueError(f"stats of dim {other.dim} merged into stats of dim {self.dim}")
      self._merge(other.count, other._mean, other._m2)

  def _merge(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
    if not self.count:
      self.count, self._mean, self._m2 = n_b, mean_b.copy(), m2_b.copy()
      return
    n_a = self.count
    n = n_a + n_b
    delta = mean_b - self._mean
    self._mean = self._mean + delta * (n_b / n)
    self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
    self.count = n

  def mean(self) -> np.ndarray:
    """[D] float64."""
    if not self.count:
      raise ValueError("the mean of no features")
    return self._mean.copy()

  def cov(self) -> np.ndarray:
    """[D, D] float64, unbiased (divides by count - 1)."""
    if self.count < 2:
      raise ValueError(f"a covariance needs at least 2 feature rows, got {self.count}")
    return self._m2 / (self.count - 1)

  def to_dict(self) -> dict[str, np.ndarray]:
    """Plain arrays (np.savez-able with allow_pickle=False): count, mean, m2."""
    if not self.count:
      raise ValueError("no features to save")
    return {"count": np.int64(self.count), "mean": self._mean, "m2": self._m2}

  @classmethod
  def from_dict(cls, state: dict) -> "FeatureStats":
    stats = cls()
    stats.count = int(state["count"])
    stats._mean = np.array(state["mean"], np.float64)
    stats._m2 = np.array(state["m2"], np.float64)
    return stats

  def save(self, path) -> None:
    with epath.Path(path).open("wb") as f:
      np.savez(f, **self.to_dict())

  @classmethod
  def load(cls, path) -> "FeatureStats":
    with epath.Path(path).open("rb") as f:
      with np.load(f, allow_pickle=False) as data:
        return cls.from_dict({k: data[k] for k in data.files})


def _sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> np.ndarray:
  """sqrt(sigma1 @ sigma2), real, with the TTUR / pytorch-fid treatment of failures."""
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
  if not np.isfinite(covmean).all():
    # A singular product (e.g. fewer samples than dimensions); as the references do.
    logging.warning("FID: sqrtm of the covariance product is not finite (singular product); "
                    "adding %g to the diagonal of both covariances.", eps)
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if not np.isfinite(covmean).all():
      raise ValueError(f"FID: sqrtm of the covariance product is not finite even with "
                       f"{eps} added to the diagonals")
  if np.iscomplexobj(covmean):
    # The product of two PSD matrices has real eigenvalues >= 0; rounding can give
    # slightly negative ones and so tiny imaginary parts. Tolerance as pytorch-fid.
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"FID: sqrtm of the covariance product has an imaginary component "
                       f"of up to {np.max(np.abs(covmean.imag)):.3g} on its diagonal: the "
                       "covariances are not positive semi-definite, or badly conditioned.")
    covmean = covmean.real
  return covmean


def fid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
        eps: float = 1e-6) -> float:
  """Frechet distance ||mu1 - mu2||^2 + Tr(s1 + s2 - 2 sqrt(s1 s2)) of two Gaussians.

  mu [D], sigma [D, D]; computed in float64. ``eps`` is added to both
  diagonals (with a logged warning) only if sqrtm of the product is not finite.
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(f"FID of mismatched statistics: means {mu1.shape}, {mu2.shape}; "
                     f"covariances {sigma1.shape}, {sigma2.shape}")
  diff = mu1 - mu2
  covmean = _sqrtm_product(sigma1, sigma2, eps)
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
  return fid(a.mean(), a.cov(), b.mean(), b.cov())


def _log_softmax(logits: np.ndarray) -> np.ndarray:
  shifted = logits - logits.max(axis=1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def inception_score(logits_or_probs: np.ndarray, splits: int = 10, *,
                    from_logits: bool = True) -> tuple[float, float]:
  """(mean, std) over ``splits`` of exp(E_x KL(p(y|x) || p(y))).

  logits_or_probs [N, C]: by default logits, turned into p(y|x) by a float64
  softmax. For the 2015 Inception graph the IS protocol (openai improved-gan,
  stylegan2-ada ``no_output_bias=True``) takes the softmax of pool3 @ W of
  ``softmax/logits/MatMul``, the 1008 logits *without* the output bias (the
  graph's own ``softmax`` node adds it); the caller supplies those logits.
  ``from_logits=False``: rows are probabilities already.

  Split i is rows [i * N // splits, (i + 1) * N // splits) and p(y) is that
  split's mean; std is np.std (ddof 0) of the split scores, as the references.
  """
  x = np.asarray(logits_or_probs, np.float64)
  if x.ndim != 2:
    raise ValueError(f"inception_score takes [N, classes], got shape {x.shape}")
  n = x.shape[0]
  if splits < 1 or n < splits:
    raise ValueError(f"inception_score: {n} samples do not make {splits} splits")
  if from_logits:
    log_p = _log_softmax(x)
    p = np.exp(log_p)
  else:
    p = x
    with np.errstate(divide="ignore"):
      log_p = np.log(p)
  scores = []
  for i in range(splits):
    rows = slice(i * n // splits, (i + 1) * n // splits)
    part, log_part = p[rows], log_p[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
      terms = part * (log_part - np.log(part.mean(axis=0, keepdims=True)))
    # 0 log 0 = 0: where p(y|x) = 0 the term vanishes (and p(y) may be 0 too).
    kl = np.where(part > 0, terms, 0.0).sum(axis=1).mean()
    scores.append(np.exp(kl))
  return float(np.mean(scores)), float(np.std(scores))


def kid_subset_indices(num_real: int, num_fake: int, num_subsets: int, subset_size: int,
                       seed: int):
  """Yields (fake_idx, real_idx) [m] per subset, m = min(num_real, num_fake, subset_size).

  Each subset draws without replacement, fake rows first (as stylegan2-ada),
  from one np.random.default_rng(seed) stream; subsets are independent.
  """
  m = min(num_real, num_fake, subset_size)
  rng = np.random.default_rng(seed)
  for _ in range(num_subsets):
    fake_idx = rng.choice(num_fake, m, replace=False)
    real_idx = rng.choice(num_real, m, replace=False)
    yield fake_idx, real_idx


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """(mean, std) over subsets of the unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3.

  real [N, D], fake [M, D]. Each of ``num_subsets`` subsets takes m rows of
  each set without replacement (``kid_subset_indices``); m = subset_size, or
  min(N, M) if either set is smaller. Per subset (stylegan2-ada, clean-fid):
  (sum_{i!=j} k(x_i, x_j) + k(y_i, y_j)) / (m (m - 1)) - 2 sum_ij k(x_i, y_j) / m^2.
  std is np.std (ddof 0) over subsets.
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"KID of features {real.shape} and {fake.shape}")
  d = real.shape[1]
  if min(real.shape[0], fake.shape[0], subset_size) < 2:
    raise ValueError(f"KID needs at least 2 rows per set, got {real.shape[0]} and {fake.shape[0]}")
  values = []
  for fake_idx, real_idx in kid_subset_indices(real.shape[0], fake.shape[0], num_subsets,
                                               subset_size, seed):
    x, y = fake[fake_idx], real[real_idx]
    m = x.shape[0]
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    within = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
    values.append(within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))
  return float(np.mean(values)), float(np.std(values))


def _squared_distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
  """[A, B] squared Euclidean distances (clipped at 0 against rounding)."""
  d2 = (a * a).sum(axis=1, keepdims=True) + b_sq[None, :] - 2.0 * (a @ b.T)
  return np.maximum(d2, 0.0)


def _coverage(manifold: np.ndarray, probes: np.ndarray, k: int, batch_size: int) -> float:
  """Fraction of probes inside some manifold point's k-NN ball (its radius included)."""
  sq = (manifold * manifold).sum(axis=1)
  # k-th neighbour, the point itself (distance 0) excluded: index k of the sorted row.
  radii2 = np.concatenate([
      np.partition(_squared_distances(manifold[i:i + batch_size], manifold, sq), k, axis=1)[:, k]
      for i in range(0, manifold.shape[0], batch_size)])
  inside = np.concatenate([
      (_squared_distances(probes[i:i + batch_size], manifold, sq) <= radii2[None, :]).any(axis=1)
      for i in range(0, probes.shape[0], batch_size)])
  return float(inside.mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3,
                     batch_size: int = 500) -> tuple[float, float]:
  """(precision, recall) of Kynkaanniemi et al. 2019 on features real [N, D], fake [M, D].

  Each manifold point's radius is the distance to its k-th nearest neighbour
  in its own set, the point itself excluded (the (k+1)-th smallest distance,
  as stylegan2-ada's kthvalue(k + 1)). precision: the fraction of fake rows
  within the radius of some real row; recall: of real rows within some fake
  row's. Distances are float64 and formed ``batch_size`` rows at a time:
  memory ~ batch_size * max(N, M) * 8 bytes (200 MB for 50k rows).
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"precision/recall of features {real.shape} and {fake.shape}")
  if min(real.shape[0], fake.shape[0]) <= k:
    raise ValueError(f"precision/recall with k={k} needs more than {k} rows per set, got "
                     f"{real.shape[0]} and {fake.shape[0]}")
  return _coverage(real, fake, k, batch_size), _coverage(fake, real, k, batch_size)
