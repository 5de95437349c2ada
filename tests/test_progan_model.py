"""ProGAN model: fade-in limits, equalized LR, pixel norm, minibatch stddev, counts, gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.families.progan.model import (Discriminator, EqualizedConv, EqualizedDense, Generator,
                               minibatch_stddev, num_channels, pixel_norm)

# Tiny config: nf(4) = nf(8) = 16, nf(16) = 8. Inputs come from numpy and every
# model call is jitted once per (stage, fade) and shared: XLA compiles dominate.
TINY = dict(fmap_base=64, fmap_max=16)
MAX_RES = 16
LATENT = 16
BATCH = 4
RNG = np.random.default_rng(0)


# XLA compiles threefry-based inits slowly on CPU (~10 s for D); 'rbg' keys take ~2 s.
def init_key():
  return jax.random.key(0, impl="rbg")


def normal(*shape) -> np.ndarray:
  return RNG.standard_normal(shape).astype(np.float32)


def count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def upsample_nearest(x: np.ndarray) -> np.ndarray:
  return np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)


def avgpool_2x2(x: np.ndarray) -> np.ndarray:
  return (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) / 4


def dyadic_images(resolution: int) -> np.ndarray:
  """Multiples of 1/8: 2x2 sums and means are exact in float32 in any order."""
  return np.round(normal(BATCH, resolution, resolution, 3) * 8) / 8


def alpha(value):
  return None if value is None else np.float32(value)  # one jit signature for every alpha


@pytest.fixture(scope="module")
def generator():
  """(model, variables, z, jitted apply(variables, z, resolution, alpha))."""
  g = Generator(MAX_RES, latent_dim=LATENT, **TINY)
  z = normal(BATCH, LATENT)
  init = jax.jit(lambda key, z: g.init(key, z, method=Generator.init_all))
  return g, init(init_key(), z), z, jax.jit(g.apply, static_argnums=2)


@pytest.fixture(scope="module")
def discriminator():
  """(model, variables, jitted apply(variables, x, resolution, alpha))."""
  d = Discriminator(MAX_RES, **TINY)
  init = jax.jit(lambda key, x: d.init(key, x, method=Discriminator.init_all))
  variables = init(init_key(), np.zeros((BATCH, MAX_RES, MAX_RES, 3), np.float32))
  return d, variables, jax.jit(d.apply, static_argnums=2)


# 1. Fade-in limits.

@pytest.mark.parametrize("resolution", [8, 16])
def test_generator_fade_at_alpha_zero_is_the_upsampled_previous_stage(generator, resolution):
  _, variables, z, g = generator
  faded = g(variables, z, resolution, alpha(0))
  previous = np.asarray(g(variables, z, resolution // 2, None))
  np.testing.assert_array_equal(faded, upsample_nearest(previous))


@pytest.mark.parametrize("resolution", [8, 16])
def test_discriminator_fade_at_alpha_zero_sees_the_pooled_images(discriminator, resolution):
  _, variables, d = discriminator
  x = dyadic_images(resolution)
  np.testing.assert_array_equal(d(variables, x, resolution, alpha(0)),
                                d(variables, avgpool_2x2(x), resolution // 2, None))
  y = normal(BATCH, resolution // 2, resolution // 2, 3)
  np.testing.assert_array_equal(d(variables, upsample_nearest(y), resolution, alpha(0)),
                                d(variables, y, resolution // 2, None))


@pytest.mark.parametrize("resolution", [8, 16])
def test_fade_at_alpha_one_is_the_stable_stage(generator, discriminator, resolution):
  _, g_vars, z, g = generator
  _, d_vars, d = discriminator
  # a + (b - a) * 1 is b only up to rounding.
  np.testing.assert_allclose(g(g_vars, z, resolution, alpha(1)),
                             g(g_vars, z, resolution, None), rtol=1e-5, atol=1e-5)
  x = normal(BATCH, resolution, resolution, 3)
  np.testing.assert_allclose(d(d_vars, x, resolution, alpha(1)),
                             d(d_vars, x, resolution, None), rtol=1e-5, atol=1e-5)


# 2. Equalized learning rate.

@pytest.mark.parametrize("gain", [math.sqrt(2), 1.0])
def test_equalized_dense_scales_a_unit_normal_kernel(gain):
  layer = EqualizedDense(256, gain=gain)
  variables = jax.jit(layer.init)(init_key(), jnp.zeros((1, 512)))
  kernel = np.asarray(variables["params"]["kernel"], np.float64)
  assert kernel.shape == (512, 256)
  assert abs(kernel.std() - 1) < 0.05
  np.testing.assert_array_equal(variables["params"]["bias"], 0)

  # One-hot inputs read the effective weight row by row.
  effective = np.asarray(layer.apply(variables, jnp.eye(512)), np.float64)
  assert abs(effective.std() / (gain / math.sqrt(512)) - 1) < 0.05

  bias = normal(256)
  variables = {"params": {"kernel": variables["params"]["kernel"], "bias": bias}}
  x = normal(5, 512).astype(np.float64)
  expected = x @ (kernel * gain / math.sqrt(512)) + bias
  np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5, atol=1e-5)


def test_equalized_conv_scales_a_unit_normal_kernel_and_correlates():
  in_channels, out_channels, gain = 64, 32, math.sqrt(2)
  fan_in = 3 * 3 * in_channels
  layer = EqualizedConv(out_channels, kernel_size=3)
  variables = jax.jit(layer.init)(init_key(), jnp.zeros((1, 6, 6, in_channels)))
  kernel = np.asarray(variables["params"]["kernel"], np.float64)
  assert kernel.shape == (3, 3, in_channels, out_channels)
  assert abs(kernel.std() - 1) < 0.05

  # An impulse in channel c at the centre of a 3x3 image returns the flipped taps.
  impulses = np.zeros((in_channels, 3, 3, in_channels), np.float32)
  impulses[np.arange(in_channels), 1, 1, np.arange(in_channels)] = 1
  response = np.asarray(layer.apply(variables, impulses), np.float64)     # (c, i, j, o)
  effective = response[:, ::-1, ::-1, :].transpose(1, 2, 0, 3)            # (dy, dx, c, o)
  assert abs(effective.std() / (gain / math.sqrt(fan_in)) - 1) < 0.05

  bias = normal(out_channels)
  variables = {"params": {"kernel": variables["params"]["kernel"], "bias": bias}}
  x = normal(2, 6, 6, in_channels).astype(np.float64)
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  weight = kernel * gain / math.sqrt(fan_in)
  expected = np.zeros((2, 6, 6, out_channels)) + bias
  for dy in range(3):
    for dx in range(3):
      expected += np.einsum("nhwc,co->nhwo", padded[:, dy:dy + 6, dx:dx + 6], weight[dy, dx])
  np.testing.assert_allclose(layer.apply(variables, x), expected, rtol=1e-5, atol=1e-5)


# 3. Pixel norm.

def test_pixel_norm_gives_unit_rms_and_keeps_direction():
  x = 3 * normal(4, 5, 5, 16) + 1
  y = np.asarray(pixel_norm(x), np.float64)
  np.testing.assert_allclose(np.sqrt(np.mean(y ** 2, axis=-1)), 1, rtol=1e-5)
  ratio = y / np.asarray(x, np.float64)  # one positive factor per pixel
  assert (ratio > 0).all()
  np.testing.assert_allclose(ratio, np.broadcast_to(ratio[..., :1], ratio.shape), rtol=1e-5)


# 4. Minibatch stddev.

def test_minibatch_stddev_groups_every_other_example():
  x = normal(8, 3, 3, 5).astype(np.float64)
  groups = [(0, 2, 4, 6), (1, 3, 5, 7)]  # group of n is n % (8 / 4)
  expected = np.zeros(8)
  for members in groups:
    stddev_sum, num_features = 0.0, 0
    for h in range(3):
      for w in range(3):
        for c in range(5):
          values = [x[n, h, w, c] for n in members]
          mean = sum(values) / 4
          stddev_sum += math.sqrt(sum((v - mean) ** 2 for v in values) / 4 + 1e-8)
          num_features += 1
    for n in members:
      expected[n] = stddev_sum / num_features

  y = np.asarray(minibatch_stddev(jnp.asarray(x, jnp.float32), group_size=4))
  assert y.shape == (8, 3, 3, 6) and y.dtype == np.float32
  np.testing.assert_array_equal(y[..., :5], x.astype(np.float32))
  np.testing.assert_allclose(y[..., 5], np.broadcast_to(expected[:, None, None], (8, 3, 3)),
                             rtol=1e-5)


def test_minibatch_stddev_group_size_limits():
  with pytest.raises(ValueError, match="divisible"):
    minibatch_stddev(jnp.zeros((6, 2, 2, 3)), group_size=4)
  x = normal(2, 2, 2, 3).astype(np.float64)
  expected = np.mean(np.sqrt(np.var(x, axis=0) + 1e-8))  # one group of both examples
  y = np.asarray(minibatch_stddev(jnp.asarray(x, jnp.float32), group_size=4))
  np.testing.assert_allclose(y[..., 3], expected, rtol=1e-5)


# 5. Parameter counts (CelebA-HQ config).

CELEBA_HQ_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32,
                      1024: 16}


def test_num_channels_matches_the_celeba_hq_table():
  assert {r: num_channels(r) for r in CELEBA_HQ_CHANNELS} == CELEBA_HQ_CHANNELS


def spec_counts() -> tuple[int, int]:
  """Weights + biases of every layer listed in the paper's Table 2 (+ every to/from RGB)."""
  nf = CELEBA_HQ_CHANNELS
  layer = lambda fan_in, out: fan_in * out + out
  g = layer(512, 16 * nf[4]) + layer(9 * nf[4], nf[4])
  d = layer(9 * (nf[4] + 1), nf[4]) + layer(16 * nf[4], nf[4]) + layer(nf[4], 1)
  for r in nf:
    g += layer(nf[r], 3)
    d += layer(3, nf[r])
    if r >= 8:
      g += layer(9 * nf[r // 2], nf[r]) + layer(9 * nf[r], nf[r])
      d += layer(9 * nf[r], nf[r]) + layer(9 * nf[r], nf[r // 2])
  return g, d


def test_parameter_counts_match_the_paper():
  g, d = Generator(1024), Discriminator(1024)
  g_vars = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), jnp.zeros((1, 512)),
                                         method=Generator.init_all))
  d_vars = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(0), jnp.zeros((1, 1024, 1024, 3)),
                                         method=Discriminator.init_all))
  g_count, d_count = count(g_vars["params"]), count(d_vars["params"])
  print(f"ProGAN 1024 parameters: G {g_count:,}  D {d_count:,}")
  assert abs(g_count - 23.1e6) < 0.01 * 23.1e6
  assert abs(d_count - 23.1e6) < 0.01 * 23.1e6
  assert (g_count, d_count) == spec_counts()


# 6. A stage trains only its own layers.

def nonzero_layers(grads) -> set[str]:
  return {name for name, tree in grads.items()
          if any(np.any(np.asarray(leaf) != 0) for leaf in jax.tree.leaves(tree))}


def test_gradients_reach_only_the_layers_of_the_stage(generator, discriminator):
  g, g_vars, z, _ = generator
  d, d_vars, _ = discriminator

  def g_grads(resolution, fade_alpha=None):
    loss = lambda p: jnp.sum(g.apply({"params": p}, z, resolution, fade_alpha) ** 2)
    return jax.jit(jax.grad(loss))(g_vars["params"])

  assert nonzero_layers(g_grads(8)) == {"block_4", "block_8", "to_rgb_8"}
  assert nonzero_layers(g_grads(16, alpha(0.5))) == {
      "block_4", "block_8", "block_16", "to_rgb_8", "to_rgb_16"}

  x = normal(BATCH, 8, 8, 3)
  d_loss = lambda p: jnp.sum(d.apply({"params": p}, x, 8) ** 2)
  d_grads = jax.jit(jax.grad(d_loss))(d_vars["params"])
  assert nonzero_layers(d_grads) == {"from_rgb_8", "block_8", "block_4"}
  assert set(d_grads) == set(d_vars["params"])  # the zero ones are still in the shared tree


# 7. Shapes, and one parameter tree for every stage.

def test_shapes_for_every_stage_from_one_tree(generator, discriminator):
  _, g_vars, z, g = generator
  _, d_vars, d = discriminator
  resolutions = (4, 8, 16)
  assert set(g_vars["params"]) == {f"{kind}_{r}" for kind in ("block", "to_rgb")
                                   for r in resolutions}
  assert set(d_vars["params"]) == {f"{kind}_{r}" for kind in ("block", "from_rgb")
                                   for r in resolutions}
  for resolution in resolutions:
    for fade_alpha in ([None] if resolution == 4 else [None, alpha(0.3)]):
      images = g(g_vars, z, resolution, fade_alpha)
      assert images.shape == (BATCH, resolution, resolution, 3) and images.dtype == jnp.float32
      scores = d(d_vars, images, resolution, fade_alpha)
      assert scores.shape == (BATCH,) and scores.dtype == jnp.float32


def test_invalid_stages_are_refused(generator):
  g, g_vars, z, _ = generator
  with pytest.raises(ValueError, match="resolution >= 8"):
    g.apply(g_vars, z, 4, alpha=0.5)
  with pytest.raises(ValueError, match="power of two"):
    g.apply(g_vars, z, 2 * MAX_RES)
