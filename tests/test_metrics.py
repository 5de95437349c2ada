"""gan/evaluation/metrics.py against closed forms and independent numpy/scipy code."""

import logging

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.special

from gan.evaluation import metrics


def _stats(features):
  s = metrics.FeatureStats()
  s.add(features)
  return s


def _fid_by_eigh(mu1, s1, mu2, s2):
  """Tr sqrt(s1 s2) = sum sqrt(eig(sqrt(s1) s2 sqrt(s1))), a symmetric PSD matrix."""
  w, v = np.linalg.eigh(s1)
  root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  inner = np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(inner).sum())


def test_feature_stats_streaming_equals_numpy_in_float64():
  rng = np.random.default_rng(0)
  # A large common offset: a naive sum-of-squares accumulation loses digits here.
  x = rng.standard_normal((1003, 48)) * rng.uniform(0.1, 3, 48) + 1e4
  stats = metrics.FeatureStats()
  for lo, hi in [(0, 1), (1, 8), (8, 8), (8, 509), (509, 1003)]:
    stats.add(x[lo:hi].astype(np.float64))
  assert stats.count == 1003
  np.testing.assert_allclose(stats.mean(), np.mean(x, axis=0), rtol=1e-13)
  np.testing.assert_allclose(stats.cov(), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-10)


def test_feature_stats_merge_and_round_trip(tmp_path):
  rng = np.random.default_rng(1)
  x = rng.standard_normal((300, 16)) + 5
  a, b = _stats(x[:120]), _stats(x[120:])
  a.merge(b)
  one = _stats(x)
  assert a.count == one.count == 300
  np.testing.assert_allclose(a.mean(), one.mean(), rtol=1e-13)
  np.testing.assert_allclose(a.cov(), one.cov(), rtol=1e-11, atol=1e-13)
  again = metrics.FeatureStats.from_dict(a.to_dict())
  np.testing.assert_array_equal(again.cov(), a.cov())
  a.save(tmp_path / "stats.npz")
  loaded = metrics.FeatureStats.load(tmp_path / "stats.npz")
  assert loaded.count == 300
  np.testing.assert_array_equal(loaded.mean(), a.mean())
  np.testing.assert_array_equal(loaded.cov(), a.cov())
  with pytest.raises(ValueError, match="dim"):
    a.add(np.zeros((2, 3)))


def test_fid_of_a_set_with_itself_is_zero():
  x = np.random.default_rng(2).standard_normal((400, 32))
  s = _stats(x)
  assert abs(metrics.fid_from_stats(s, s)) < 1e-8


def test_fid_equals_closed_form_of_commuting_gaussians():
  rng = np.random.default_rng(3)
  d = 20
  mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
  v1, v2 = rng.uniform(0.1, 4, d), rng.uniform(0.1, 4, d)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
  assert metrics.fid(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)
  q, _ = np.linalg.qr(rng.standard_normal((d, d)))  # same eigenvectors: commuting
  got = metrics.fid(mu1, q @ np.diag(v1) @ q.T, mu2, q @ np.diag(v2) @ q.T)
  assert got == pytest.approx(expected, rel=1e-9)


def test_fid_equals_independent_computation():
  rng = np.random.default_rng(4)
  x = rng.standard_normal((500, 24)) @ rng.standard_normal((24, 24))
  y = rng.standard_normal((400, 24)) @ rng.standard_normal((24, 24)) + 0.3
  mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
  assert metrics.fid(mu1, s1, mu2, s2) == pytest.approx(_fid_by_eigh(mu1, s1, mu2, s2), rel=1e-9)


def test_fid_accepts_tiny_imaginary_parts_of_rank_deficient_covariances():
  rng = np.random.default_rng(0)
  x, y = rng.standard_normal((10, 64)), rng.standard_normal((10, 64))
  mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
  root = scipy.linalg.sqrtm(s1 @ s2)
  assert np.iscomplexobj(root), "precondition: this case should give a complex sqrtm"
  assert 0 < np.abs(np.diagonal(root).imag).max() < 1e-3
  assert metrics.fid(mu1, s1, mu2, s2) == pytest.approx(_fid_by_eigh(mu1, s1, mu2, s2),
                                                        rel=1e-6)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_fid_singular_product_goes_through_the_eps_path(caplog, monkeypatch):
  # Two samples of integer features: rank-1 covariances, an exactly singular product.
  # scipy before 1.17 returns a non-finite sqrtm for it, 1.17 a finite one; whichever
  # this scipy does, FID must equal the independent value, and the eps path (taken
  # when sqrtm is not finite) is forced by a sqrtm that fails on the product as older
  # releases did.
  x = np.array([[0., -1, 0, 0], [-1, -1, 1, 1]])
  y = np.array([[0., 1, 0, 1], [-1, 0, -1, 0]])
  mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
  with np.errstate(all="ignore"):
    assert metrics.fid(mu1, s1, mu2, s2) == pytest.approx(_fid_by_eigh(mu1, s1, mu2, s2),
                                                          abs=1e-2)
  real_sqrtm, singular = scipy.linalg.sqrtm, s1 @ s2
  monkeypatch.setattr(scipy.linalg, "sqrtm", lambda a, *args, **kwargs: (
      np.full_like(a, np.nan) if np.array_equal(a, singular) else real_sqrtm(a, *args, **kwargs)))
  with caplog.at_level(logging.WARNING):
    got = metrics.fid(mu1, s1, mu2, s2)
  assert any("adding" in r.getMessage() and "diagonal" in r.getMessage() for r in caplog.records)
  # Rank 1: s1 s2 = u (u.v) v^T, so Tr sqrt(s1 s2) = |u.v|; eps adds O(sqrt(eps)) per dim.
  assert got == pytest.approx(_fid_by_eigh(mu1, s1, mu2, s2), abs=1e-2)


def test_fid_rejects_a_large_imaginary_component():
  with pytest.raises(ValueError, match="imaginary"):
    metrics.fid(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))


def _is_reference(probs, splits):
  n = probs.shape[0]
  scores = []
  for i in range(splits):
    part = probs[i * n // splits:(i + 1) * n // splits]
    kl = scipy.special.rel_entr(part, part.mean(axis=0, keepdims=True)).sum(axis=1).mean()
    scores.append(np.exp(kl))
  return np.mean(scores), np.std(scores)


def test_inception_score_equals_scipy():
  logits = np.random.default_rng(5).standard_normal((1003, 50)) * 3
  got = metrics.inception_score(logits, splits=10)
  expected = _is_reference(scipy.special.softmax(logits, axis=1), 10)
  np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_inception_score_of_uniform_and_one_hot_predictions():
  mean, std = metrics.inception_score(np.zeros((100, 7)), splits=10)
  assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
  classes, splits = 8, 5
  one_hot = np.eye(classes)[np.arange(classes * 3 * splits) % classes]  # every split even
  mean, std = metrics.inception_score(one_hot, splits=splits, from_logits=False)
  assert mean == pytest.approx(classes, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def _kid_reference(real, fake, num_subsets, subset_size, seed):
  d = real.shape[1]
  k = lambda a, b: (np.dot(a, b) / d + 1.0) ** 3
  values = []
  for fi, ri in metrics.kid_subset_indices(len(real), len(fake), num_subsets, subset_size, seed):
    x, y = fake[fi], real[ri]
    m = len(x)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    values.append((kxx + kyy) / (m * (m - 1)) - 2 * kxy / m ** 2)
  return np.mean(values), np.std(values)


def test_kid_equals_brute_force_kernel_sums():
  rng = np.random.default_rng(6)
  real, fake = rng.standard_normal((60, 8)), rng.standard_normal((45, 8)) * 1.3 + 0.2
  got = metrics.kernel_inception_distance(real, fake, num_subsets=4, subset_size=20, seed=3)
  np.testing.assert_allclose(got, _kid_reference(real, fake, 4, 20, 3), rtol=1e-10)
  # subset_size above both set sizes: min(N, M) rows, every fake row once per subset.
  got = metrics.kernel_inception_distance(real, fake, num_subsets=2, subset_size=1000, seed=0)
  np.testing.assert_allclose(got, _kid_reference(real, fake, 2, 1000, 0), rtol=1e-10)
  fi, ri = next(metrics.kid_subset_indices(60, 45, 1, 1000, 0))
  assert len(fi) == len(ri) == 45 and len(set(fi)) == 45 and len(set(ri)) == 45


def _pr_reference(real, fake, k):
  def coverage(manifold, probes):
    radii = np.sort(scipy.spatial.distance.cdist(manifold, manifold), axis=1)[:, k]
    return np.mean((scipy.spatial.distance.cdist(probes, manifold) <= radii[None]).any(axis=1))
  return coverage(real, fake), coverage(fake, real)


def test_precision_recall_equals_cdist():
  rng = np.random.default_rng(7)
  real = rng.standard_normal((230, 6))
  fake = rng.standard_normal((170, 6)) * 0.6 + 0.8  # partly inside, partly outside
  got = metrics.precision_recall(real, fake, k=3, batch_size=37)
  expected = _pr_reference(real, fake, 3)
  assert got == pytest.approx(expected, abs=1e-12)
  assert 0.05 < got[0] < 0.95 and 0.05 < got[1] < 0.95  # the test discriminates
  assert metrics.precision_recall(real, real.copy(), k=3) == (1.0, 1.0)
