"""StyleGAN2 networks: shapes, num_ws, the reference's parameter counts, noise modes, init."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.families.stylegan.discriminator2 import Discriminator
from gan.families.stylegan.networks2 import (Generator, SynthesisNetwork, const_noise,
                                             num_channels, num_ws)

RES, Z, W, BATCH = 16, 8, 8, 4
TINY = dict(channel_base=128, channel_max=16, mapping_layers=2)  # channels 16, 16, 8 at 4, 8, 16
RNG = np.random.default_rng(0)


# XLA compiles threefry-based inits slowly on CPU; 'rbg' keys compile much faster.
def key(seed: int = 0):
  return jax.random.key(seed, impl="rbg")


def count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def normal(*shape) -> np.ndarray:
  return RNG.standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def generator():
  g = Generator(Z, W, RES, num_classes=3, **TINY)
  z, labels = normal(BATCH, Z), np.array([0, 1, 2, 0], np.int32)
  params = jax.jit(lambda k: g.init({"params": k, "noise": k}, z, labels))(key())["params"]
  return g, params, z, labels


def with_noise_strength(params, value):
  """Copy of params with every noise_strength set to ``value``."""
  def set_leaf(path, x):
    is_strength = jax.tree_util.keystr(path).endswith("['noise_strength']")
    return jnp.full_like(x, value) if is_strength else x
  return jax.tree_util.tree_map_with_path(set_leaf, params)


def test_num_ws_and_channels():
  assert num_ws(1024) == 18 and num_ws(256) == 14 and num_ws(4) == 2
  assert SynthesisNetwork.count_ws(1024) == 18 and Generator(512, 512, 256).num_ws == 14
  assert SynthesisNetwork(512, 1024).num_ws == 18
  assert [num_channels(r) for r in (4, 64, 128, 1024)] == [512, 512, 256, 32]


def test_reference_parameter_counts_config_f():
  # Figures from instantiating the reference (NVlabs/stylegan2-ada-pytorch,
  # training/networks.py) in torch: Generator(z_dim=512, c_dim=0, w_dim=512,
  # img_resolution=1024, img_channels=3, mapping num_layers=8, channel_base=32768,
  # channel_max=512) and Discriminator(c_dim=0, img_resolution=1024, img_channels=3,
  # architecture 'resnet', same channels, mbstd group 4 / 1 channel), counting
  # sum(p.numel() for p in module.parameters()): trainable parameters only; the
  # buffers w_avg, noise_const and resample_filter are not counted (and we have none).
  g = Generator(512, 512, 1024)
  d = Discriminator(1024, mbstd_group_size=4, mbstd_num_channels=1)
  key = jax.random.PRNGKey(0)
  g_vars = jax.eval_shape(lambda: g.init({"params": key, "noise": key}, jnp.zeros((2, 512))))
  d_vars = jax.eval_shape(lambda: d.init(key, jnp.zeros((4, 1024, 1024, 3))))
  assert set(g_vars) == {"params"} and set(d_vars) == {"params"}
  assert count(g_vars["params"]) == 30_370_060
  assert count(g_vars["params"]["mapping"]) == 2_101_248
  assert count(d_vars["params"]) == 29_012_513


def test_reference_parameter_counts_class_conditional():
  # Reference Generator(z_dim=32, c_dim=10, w_dim=32, img_resolution=32, mapping
  # num_layers=2, channel_base=1024, channel_max=64) and Discriminator(c_dim=10, same
  # resolution and channels; its label mapping network keeps the default 8 layers),
  # counted as above.
  g = Generator(32, 32, 32, num_classes=10, mapping_layers=2, channel_base=1024, channel_max=64)
  d = Discriminator(32, num_classes=10, channel_base=1024, channel_max=64)
  key, labels = jax.random.PRNGKey(0), jnp.zeros((4,), jnp.int32)
  g_vars = jax.eval_shape(lambda: g.init({"params": key, "noise": key}, jnp.zeros((4, 32)), labels))
  d_vars = jax.eval_shape(lambda: d.init(key, jnp.zeros((4, 32, 32, 3)), labels))
  assert count(g_vars["params"]) == 238_675
  assert count(d_vars["params"]) == 327_072
  assert count(d_vars["params"]["mapping"]) == 33_984


def test_generator_shapes_init_and_noise_modes(generator):
  g, params, z, labels = generator
  synth = params["synthesis"]
  assert set(synth) == {"b4", "b8", "b16"}
  assert synth["b4"]["const"].shape == (4, 4, 16)
  assert 0.5 < float(jnp.std(synth["b4"]["const"])) < 1.5                  # N(0, 1)
  np.testing.assert_array_equal(synth["b8"]["conv0"]["affine"]["bias"], 1.0)
  np.testing.assert_array_equal(synth["b16"]["torgb"]["affine"]["bias"], 1.0)
  assert synth["b8"]["conv0"]["weight"].shape == (3, 3, 16, 16)
  assert synth["b16"]["torgb"]["weight"].shape == (1, 1, 8, 3)
  assert float(synth["b16"]["conv1"]["noise_strength"]) == 0.0

  w = g.apply({"params": params}, z, labels, method=Generator.map)
  assert w.shape == (BATCH, W) and w.dtype == jnp.float32
  ws = jnp.asarray(normal(BATCH, g.num_ws, W))
  render = jax.jit(lambda p, ws, key, mode, fused: g.apply(
      {"params": p}, ws, mode, fused, rngs={"noise": key}, method=Generator.synthesize),
      static_argnums=(3, 4))
  k1, k2 = key(1), key(2)
  none = render(params, ws, k1, "none", False)
  assert none.shape == (BATCH, RES, RES, 3) and none.dtype == jnp.float32
  # Zero noise strength at init: every mode renders the same images.
  np.testing.assert_allclose(render(params, ws, k1, "random", False), none, atol=1e-6)

  noisy = with_noise_strength(params, 0.5)
  const_a = render(noisy, ws, k1, "const", False)
  np.testing.assert_array_equal(const_a, render(noisy, ws, k2, "const", False))  # key unused
  assert float(jnp.abs(const_a - none).max()) > 1e-2
  rand_a, rand_b = render(noisy, ws, k1, "random", False), render(noisy, ws, k2, "random", False)
  np.testing.assert_array_equal(rand_a, render(noisy, ws, k1, "random", False))
  assert float(jnp.abs(rand_a - rand_b).max()) > 1e-2
  np.testing.assert_allclose(render(noisy, ws, k1, "random", True), rand_a, atol=1e-5)
  np.testing.assert_array_equal(const_noise(8, 3), const_noise(8, 3))
  assert const_noise(8, 3).shape == (8, 8, 1)

  # Every one of the num_ws ws reaches the images.
  grad = jax.grad(lambda ws: jnp.sum(g.apply({"params": params}, ws, "none",
                                             method=Generator.synthesize) ** 2))(ws)
  assert bool(jnp.all(jnp.abs(grad).sum(axis=(0, 2)) > 0))
  with pytest.raises(ValueError):
    g.apply({"params": params}, ws[:, 1:], "none", method=Generator.synthesize)


def test_discriminator_shapes_and_conditioning():
  d = Discriminator(RES, num_classes=3, channel_base=128, channel_max=16, mapping_layers=2)
  images = normal(BATCH, RES, RES, 3)
  labels = np.array([0, 1, 2, 0], np.int32)
  params = jax.jit(lambda k: d.init(k, images, labels))(key())["params"]
  assert set(params) == {"b16", "b8", "b4", "mapping"}
  assert set(params["b16"]) == {"fromrgb", "conv0", "conv1", "skip"}
  assert set(params["b8"]) == {"conv0", "conv1", "skip"}
  assert "bias" not in params["b16"]["skip"]
  assert params["b4"]["conv"]["weight"].shape == (3, 3, 17, 16)         # + 1 mbstd channel
  assert params["b4"]["fc"]["weight"].shape == (4 * 4 * 16, 16)
  assert params["b4"]["out"]["weight"].shape == (16, 16)                # cmap_dim = channels(4)
  apply = jax.jit(lambda x, y: d.apply({"params": params}, x, y))
  logits = apply(images, labels)
  assert logits.shape == (BATCH,) and logits.dtype == jnp.float32
  other = apply(images, np.array([1, 2, 0, 1], np.int32))
  assert float(jnp.abs(logits - other).max()) > 0
  with pytest.raises(ValueError):
    d.apply({"params": params}, images[:, :8, :8], labels)


@pytest.mark.parametrize("g_arch,d_arch", [("resnet", "skip"), ("orig", "orig")])
def test_other_architectures_run(g_arch, d_arch):
  g = Generator(Z, W, 8, architecture=g_arch, **TINY)
  d = Discriminator(8, architecture=d_arch, channel_base=128, channel_max=16, mbstd_group_size=2)
  z = normal(2, Z)

  @jax.jit
  def run(k):
    g_params = g.init({"params": k, "noise": k}, z)["params"]
    images = g.apply({"params": g_params}, z, noise_mode="none")
    d_params = d.init(k, images)["params"]
    return g_params, d_params, images, d.apply({"params": d_params}, images)

  g_params, d_params, images, logits = run(key())
  assert images.shape == (2, 8, 8, 3) and logits.shape == (2,)
  assert ("torgb" in g_params["synthesis"]["b4"]) == (g_arch == "skip")
  assert ("skip" in g_params["synthesis"]["b8"]) == (g_arch == "resnet")
  assert ("fromrgb" in d_params["b4"]) == (d_arch == "skip")
  assert "fromrgb" in d_params["b8"]  # the first block reads the image in every architecture
