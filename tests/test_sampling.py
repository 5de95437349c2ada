"""Truncation trick and standing statistics."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gan.families.biggan.normalization import BatchNorm
from gan.families.biggan.sampling import sample_labels, sample_latents, standing_statistics


@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.0])
def test_truncated_normal_bounds_and_variance(threshold):
  z = np.asarray(sample_latents(jax.random.PRNGKey(0), (200_000,), truncation=threshold))
  assert np.abs(z).max() <= threshold
  expected_var = stats.truncnorm(-threshold, threshold).var()
  # Standard error of a variance estimate from 2e5 samples is < 0.5% here.
  np.testing.assert_allclose(z.var(), expected_var, rtol=0.01)
  np.testing.assert_allclose(z.mean(), 0.0, atol=0.01)
  # Distribution, not just moments: Kolmogorov-Smirnov against scipy.
  assert stats.kstest(z[:20_000], stats.truncnorm(-threshold, threshold).cdf).pvalue > 1e-3


def test_no_truncation_is_standard_normal():
  z = np.asarray(sample_latents(jax.random.PRNGKey(1), (100_000,), truncation=None))
  np.testing.assert_allclose(z.var(), 1.0, rtol=0.02)
  assert np.abs(z).max() > 3.0


class ToyGenerator(nn.Module):
  """z (N, D) -> BN(z) as (N, 1, 1, D) images: the standing stats are z's moments."""

  @nn.compact
  def __call__(self, z, labels, train):
    del labels
    return BatchNorm(use_affine=False, name="bn")(z[:, None, None, :], train)


def test_standing_statistics_average_the_batch_moments():
  gen = ToyGenerator()
  z_dim, batch, num_batches = 3, 16, 5
  variables = gen.init(jax.random.PRNGKey(0), jnp.zeros((2, z_dim)), jnp.zeros((2,), jnp.int32),
                       train=False)
  rng = jax.random.PRNGKey(7)
  result = standing_statistics(gen, variables.get("params", {}), {"batch_stats": variables[
      "batch_stats"]}, rng, num_batches, batch, z_dim, num_classes=4)
  # Independent: redraw the same z with the documented key schedule, numpy moments.
  means, variances = [], []
  for key in jax.random.split(rng, num_batches):
    kz, _ = jax.random.split(key)
    z = np.asarray(sample_latents(kz, (batch, z_dim)), np.float64)
    means.append(z.mean(0))
    variances.append(z.var(0))
  np.testing.assert_allclose(np.asarray(result["bn"]["mean"]), np.mean(means, 0), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(np.asarray(result["bn"]["var"]), np.mean(variances, 0), rtol=1e-5)


def test_labels_are_uniform_over_classes():
  labels = np.asarray(sample_labels(jax.random.PRNGKey(0), 50_000, 10))
  counts = np.bincount(labels, minlength=10)
  assert labels.min() == 0 and labels.max() == 9
  assert stats.chisquare(counts).pvalue > 1e-3
