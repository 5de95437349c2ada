"""StyleGAN v1 networks against independent numpy computations.

The AdaIN layer path, the fused up/down-scaling convs (vs the reference's TF ops and
vs their unfused equivalents), blur, whole 8x8 G and D forwards, fade-in limits,
parameter counts at 1024 (hand arithmetic from the reference) and num_ws.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.families.stylegan.layers1 import (EqualizedConv2d, blur, const_noise,
                                           conv2d_downscale_fused, upscale_conv2d_fused)
from gan.families.stylegan.networks1 import (DiscriminatorV1, GeneratorV1, SynthesisLayer,
                                             SynthesisNetworkV1, num_ws_for)

# Tiny config: nf(4) = nf(8) = 8, nf(16) = 4; fused resampling from 16 so that the
# grown block of the tests takes the fused path in G and D.
TINY = dict(fmap_base=32, fmap_max=8, fused_scale_from=16)
MAX_RES = 16
Z_DIM = W_DIM = 8
BATCH = 4
RNG = np.random.default_rng(0)


def init_key():
  return jax.random.key(0, impl="rbg")  # compiles faster than threefry on CPU


def normal(*shape) -> np.ndarray:
  return RNG.standard_normal(shape).astype(np.float32)


def count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


# Independent numpy (float64) versions of the reference's TF ops.

def correlate_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """tf.nn.conv2d 'SAME', stride 1, odd kernel: x (N, H, W, I), kernel (k, k, I, O)."""
  k = kernel.shape[0]
  height, width = x.shape[1:3]
  padded = np.pad(x.astype(np.float64), ((0, 0), (k // 2,) * 2, (k // 2,) * 2, (0, 0)))
  out = 0.0
  for a in range(k):
    for b in range(k):
      out = out + padded[:, a:a + height, b:b + width] @ kernel[a, b].astype(np.float64)
  return out


def upsample_nearest(x: np.ndarray) -> np.ndarray:
  return np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)


def avgpool_2x2(x: np.ndarray) -> np.ndarray:
  return (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]) / 4


def spread_kernel(kernel: np.ndarray) -> np.ndarray:
  """The reference's fused 4x4 kernel: every 3x3 tap (i, j) lands on the 2x2 block at (i, j)."""
  out = np.zeros((4, 4) + kernel.shape[2:], np.float64)
  for i in range(3):
    for j in range(3):
      out[i:i + 2, j:j + 2] += kernel[i, j]
  return out


def tf_conv2d_transpose_same_s2(x: np.ndarray, k4: np.ndarray) -> np.ndarray:
  """tf.nn.conv2d_transpose, stride 2, 'SAME', 4x4 kernel: y[2i + a - 1] += x[i] k4[a]."""
  n, height, width, _ = x.shape
  y = np.zeros((n, 2 * height + 2, 2 * width + 2, k4.shape[-1]))  # one extra row/col each side
  for a in range(4):
    for b in range(4):
      y[:, a:a + 2 * height:2, b:b + 2 * width:2] += x.astype(np.float64) @ k4[a, b]
  return y[:, 1:2 * height + 1, 1:2 * width + 1]


def tf_conv2d_same_s2(x: np.ndarray, k4: np.ndarray) -> np.ndarray:
  """tf.nn.conv2d, stride 2, 'SAME', 4x4 kernel, even sizes: padding 1 on each side."""
  height, width = x.shape[1] // 2, x.shape[2] // 2
  padded = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
  out = 0.0
  for a in range(4):
    for b in range(4):
      out = out + padded[:, a:a + 2 * height:2, b:b + 2 * width:2] @ k4[a, b]
  return out


def lrelu(x: np.ndarray) -> np.ndarray:
  return np.where(x >= 0, x, 0.2 * x)


def np_blur(x: np.ndarray) -> np.ndarray:
  """blur2d([1, 2, 1]): depthwise normalised 3x3, zero padding."""
  f = np.outer([1, 2, 1], [1, 2, 1]) / 16
  channels = x.shape[-1]
  return correlate_same(x, f[:, :, None, None] * np.eye(channels)[None, None])


def wscale(kernel: np.ndarray, gain: float = math.sqrt(2)) -> np.ndarray:
  """get_weight's runtime scaling: gain / sqrt(fan_in), fan_in = all but the last axis."""
  return kernel.astype(np.float64) * gain / math.sqrt(np.prod(kernel.shape[:-1]))


def np_epilogue(h, p, w, noise=None):
  """layer_epilogue: noise -> bias -> lrelu -> instance norm -> style_mod (gain-1 dense)."""
  if noise is not None:
    h = h + np.asarray(noise, np.float64) * p["noise_strength"]
  h = lrelu(h + p["bias"])
  h = h - h.mean(axis=(1, 2), keepdims=True)
  h = h / np.sqrt(np.mean(h ** 2, axis=(1, 2), keepdims=True) + 1e-8)
  style = w.astype(np.float64) @ wscale(p["affine"]["weight"], 1.0) + p["affine"]["bias"]
  c = h.shape[-1]
  return h * (style[:, None, None, :c] + 1) + style[:, None, None, c:]


def randomized(tree):
  """Every parameter replaced by N(0, 1) values (so zero inits hide nothing)."""
  return jax.tree.map(lambda leaf: normal(*leaf.shape), tree)


def test_blur_is_the_normalised_121_filter_with_zero_padding():
  x = normal(2, 6, 5, 3)
  taps = np.array([1, 2, 1], np.float64)
  f = np.outer(taps, taps) / 16
  depthwise = f[:, :, None, None] * np.eye(3)[None, None]  # (3, 3, C, C), channel-diagonal
  np.testing.assert_allclose(blur(x, (1, 2, 1)), correlate_same(x, depthwise), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_array_equal(blur(x, None), x)


def test_fused_upscale_conv_is_nearest_upsampling_then_the_flipped_3x3_conv():
  x, kernel = normal(2, 5, 6, 3), normal(3, 3, 3, 4)
  got = np.asarray(upscale_conv2d_fused(jnp.asarray(x), jnp.asarray(kernel)))
  assert got.shape == (2, 10, 12, 4)
  # The reference's op itself: conv2d_transpose with the padded-and-summed kernel.
  np.testing.assert_allclose(got, tf_conv2d_transpose_same_s2(x, spread_kernel(kernel)),
                             rtol=1e-5, atol=1e-5)
  # Equivalence, at every pixel including the border: the transposed conv flips.
  up = upsample_nearest(x)
  np.testing.assert_allclose(got, correlate_same(up, kernel[::-1, ::-1]), rtol=1e-5, atol=1e-5)
  assert not np.allclose(got, correlate_same(up, kernel), atol=1e-2)


def test_fused_downscale_conv_is_the_3x3_conv_then_2x2_average_pooling():
  x, kernel = normal(2, 6, 8, 3), normal(3, 3, 3, 4)
  got = np.asarray(conv2d_downscale_fused(jnp.asarray(x), jnp.asarray(kernel)))
  assert got.shape == (2, 3, 4, 4)
  np.testing.assert_allclose(got, tf_conv2d_same_s2(x, spread_kernel(kernel) * 0.25),
                             rtol=1e-5, atol=1e-5)
  # Same (unflipped) kernel, every output pixel.
  np.testing.assert_allclose(got, avgpool_2x2(correlate_same(x, kernel)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["up", "down"])
def test_fused_and_separate_resampling_layers_agree(mode):
  x = normal(2, 8, 8, 3)
  fused = EqualizedConv2d(4, up=mode == "up", down=mode == "down", fused=True)
  separate = EqualizedConv2d(4, up=mode == "up", down=mode == "down", fused=False)
  variables = fused.init(init_key(), x)
  kernel = variables["params"]["kernel"]
  assert kernel.shape == (3, 3, 3, 4)  # same parameters either way
  bias = normal(4)
  flipped = kernel[::-1, ::-1] if mode == "up" else kernel
  np.testing.assert_allclose(
      fused.apply({"params": {"kernel": kernel, "bias": bias}}, x),
      separate.apply({"params": {"kernel": flipped, "bias": bias}}, x), rtol=1e-5, atol=1e-5)


def test_synthesis_layer_matches_numpy():
  """conv (gain sqrt 2) -> noise -> bias -> lrelu -> instance norm -> x * (s + 1) + b."""
  n, size, cin, cout, layer_index = 2, 8, 3, 4, 3
  x, w = normal(n, size, size, cin), normal(n, W_DIM)
  layer = SynthesisLayer(cout, layer_index)
  tree = layer.init(init_key(), x, w, "none")["params"]
  assert tree["conv"]["kernel"].shape == (3, 3, cin, cout) and "bias" not in tree["conv"]
  np.testing.assert_array_equal(tree["epilogue"]["noise_strength"], 0)
  np.testing.assert_array_equal(tree["epilogue"]["bias"], 0)
  np.testing.assert_array_equal(tree["epilogue"]["affine"]["bias"], 0)
  kernel, strength, bias = normal(3, 3, cin, cout), normal(cout), normal(cout)
  affine_weight, affine_bias = normal(W_DIM, 2 * cout), normal(2 * cout)
  params = {"conv": {"kernel": kernel},
            "epilogue": {"noise_strength": strength, "bias": bias,
                         "affine": {"weight": affine_weight, "bias": affine_bias}}}

  for mode in ("const", "none"):
    h = correlate_same(x, kernel * math.sqrt(2) / math.sqrt(9 * cin))
    if mode == "const":
      noise = np.asarray(const_noise(layer_index, size), np.float64)
      assert noise.shape == (1, size, size, 1)
      h = h + noise * strength
    h = lrelu(h + bias)
    h = h - h.mean(axis=(1, 2), keepdims=True)
    h = h / np.sqrt(np.mean(h ** 2, axis=(1, 2), keepdims=True) + 1e-8)
    style = w.astype(np.float64) @ (affine_weight / math.sqrt(W_DIM)) + affine_bias
    expected = h * (style[:, None, None, :cout] + 1) + style[:, None, None, cout:]
    got = layer.apply({"params": params}, x, w, mode)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)

  # 'random': fresh per-call noise from the 'noise' rng; zero strength removes it.
  apply = lambda p, key: layer.apply({"params": p}, x, w, "random", rngs={"noise": key})
  k0, k1 = jax.random.key(1), jax.random.key(2)
  np.testing.assert_array_equal(apply(params, k0), apply(params, k0))
  assert not np.allclose(apply(params, k0), apply(params, k1))
  silent = {**params, "epilogue": {**params["epilogue"], "noise_strength": np.zeros(cout)}}
  np.testing.assert_allclose(apply(silent, k0), layer.apply({"params": params}, x, w, "none"),
                             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fused", [False, True])
def test_synthesis_network_at_8x8_matches_numpy(fused):
  """Const -> epilogue(w0) -> conv(w1) -> [up conv -> blur](w2) -> conv(w3) -> to_rgb."""
  c = 4
  net = SynthesisNetworkV1(8, w_dim=W_DIM, fmap_base=16, fmap_max=c,
                           fused_scale_from=8 if fused else 128)
  ws = normal(2, net.num_ws, W_DIM)
  params = randomized(net.init(init_key(), ws, method=SynthesisNetworkV1.init_all)["params"])
  b4, b8 = params["block_4"], params["block_8"]

  x = np.broadcast_to(b4["const"].astype(np.float64), (2, 4, 4, c))
  x = np_epilogue(x, b4["layer0"], ws[:, 0], const_noise(0, 4))
  x = correlate_same(x, wscale(b4["layer1"]["conv"]["kernel"]))
  x = np_epilogue(x, b4["layer1"]["epilogue"], ws[:, 1], const_noise(1, 4))
  k = wscale(b8["layer0"]["conv"]["kernel"])
  x = (tf_conv2d_transpose_same_s2(x, spread_kernel(k)) if fused
       else correlate_same(upsample_nearest(x), k))
  x = np_epilogue(np_blur(x), b8["layer0"]["epilogue"], ws[:, 2], const_noise(2, 8))
  x = correlate_same(x, wscale(b8["layer1"]["conv"]["kernel"]))
  x = np_epilogue(x, b8["layer1"]["epilogue"], ws[:, 3], const_noise(3, 8))
  rgb = correlate_same(x, wscale(params["to_rgb_8"]["kernel"], 1.0)) + params["to_rgb_8"]["bias"]
  np.testing.assert_allclose(net.apply({"params": params}, ws, 8, noise_mode="const"), rgb,
                             rtol=1e-4, atol=1e-4)


def np_minibatch_stddev(x: np.ndarray, group: int) -> np.ndarray:
  """minibatch_stddev_layer(x, group, 1): example n is in group n % (N / group)."""
  n = x.shape[0]
  stats = np.zeros(n)
  for m in range(n // group):
    members = x[m::n // group]                       # the examples with n % M == m
    stats[m::n // group] = np.sqrt(members.var(axis=0) + 1e-8).mean()
  return np.concatenate([x, np.broadcast_to(stats[:, None, None, None], x.shape[:3] + (1,))], -1)


@pytest.mark.parametrize("fused", [False, True])
def test_discriminator_at_8x8_matches_numpy(fused):
  """fromRGB -> conv0 -> blur -> down conv -> mbstd -> conv -> dense0 -> dense1."""
  d = DiscriminatorV1(8, fmap_base=16, fmap_max=4, fused_scale_from=8 if fused else 128)
  x = normal(BATCH, 8, 8, 3)
  params = randomized(d.init(init_key(), x, method=DiscriminatorV1.init_all)["params"])
  conv = lambda h, p, gain=math.sqrt(2): correlate_same(h, wscale(p["kernel"], gain)) + p["bias"]

  h = lrelu(conv(x, params["from_rgb_8"]))
  h = np_blur(lrelu(conv(h, params["block_8"]["conv0"])))
  down = params["block_8"]["conv1_down"]
  k = wscale(down["kernel"])
  h = tf_conv2d_same_s2(h, spread_kernel(k) * 0.25) if fused else avgpool_2x2(correlate_same(h, k))
  h = lrelu(h + down["bias"])
  b4 = params["block_4"]
  h = lrelu(conv(np_minibatch_stddev(h, 4), b4["conv"])).reshape(BATCH, -1)
  h = lrelu(h @ wscale(b4["dense0"]["kernel"]) + b4["dense0"]["bias"])
  logits = (h @ wscale(b4["dense1"]["kernel"], 1.0) + b4["dense1"]["bias"])[:, 0]
  np.testing.assert_allclose(d.apply({"params": params}, x, 8), logits, rtol=1e-4, atol=1e-4)


# Fade-in limits on a tiny grown pair.

@pytest.fixture(scope="module")
def generator():
  g = GeneratorV1(MAX_RES, z_dim=Z_DIM, w_dim=W_DIM, mapping_layers=2, **TINY)
  z = normal(BATCH, Z_DIM)
  variables = jax.jit(lambda key: g.init(key, z, method=GeneratorV1.init_all))(init_key())
  apply = jax.jit(lambda v, z, r, a: g.apply(v, z, None, r, a, "const"), static_argnums=2)
  return variables, z, apply


@pytest.fixture(scope="module")
def discriminator():
  d = DiscriminatorV1(MAX_RES, **TINY)
  x = np.zeros((BATCH, MAX_RES, MAX_RES, 3), np.float32)
  variables = jax.jit(lambda key: d.init(key, x, method=DiscriminatorV1.init_all))(init_key())
  return variables, jax.jit(d.apply, static_argnums=2)


def test_generator_fade_limits(generator):
  variables, z, g = generator
  previous = np.asarray(g(variables, z, MAX_RES // 2, None))
  assert previous.shape == (BATCH, MAX_RES // 2, MAX_RES // 2, 3)
  np.testing.assert_array_equal(g(variables, z, MAX_RES, np.float32(0)),
                                upsample_nearest(previous))
  # a + (b - a) * 1 is b only up to rounding.
  np.testing.assert_allclose(g(variables, z, MAX_RES, np.float32(1)),
                             g(variables, z, MAX_RES, None), rtol=1e-5, atol=1e-5)


def test_discriminator_fade_limits(discriminator):
  variables, d = discriminator
  # Multiples of 1/8: 2x2 means are exact in float32, so pooling in numpy matches D's.
  x = np.round(normal(BATCH, MAX_RES, MAX_RES, 3) * 8) / 8
  np.testing.assert_array_equal(d(variables, x, MAX_RES, np.float32(0)),
                                d(variables, avgpool_2x2(x), MAX_RES // 2, None))
  np.testing.assert_allclose(d(variables, x, MAX_RES, np.float32(1)),
                             d(variables, x, MAX_RES, None), rtol=1e-5, atol=1e-5)


def test_parameter_tree_names(generator, discriminator):
  g_params, d_params = generator[0]["params"], discriminator[0]["params"]
  synthesis = g_params["synthesis"]
  assert sorted(synthesis) == ["block_16", "block_4", "block_8", "to_rgb_16", "to_rgb_4",
                               "to_rgb_8"]
  np.testing.assert_array_equal(synthesis["block_4"]["const"], np.ones((4, 4, 8)))
  assert sorted(synthesis["block_8"]) == ["layer0", "layer1"]
  assert sorted(d_params["block_4"]) == ["conv", "dense0", "dense1"]
  assert sorted(d_params["block_16"]) == ["conv0", "conv1_down"]
  assert d_params["block_4"]["dense0"]["kernel"].shape == (4 * 4 * 8, 8)


def test_conditional_discriminator_keeps_the_true_class_score():
  d = DiscriminatorV1(4, num_classes=3, fmap_base=32, fmap_max=8)
  x = normal(BATCH, 4, 4, 3)
  variables = d.init(init_key(), x, method=DiscriminatorV1.init_all)
  per_class = [np.asarray(d.apply(variables, x, 4, labels=np.full(BATCH, c))) for c in range(3)]
  labels = np.array([2, 0, 1, 2])
  np.testing.assert_allclose(d.apply(variables, x, 4, labels=labels),
                             np.stack(per_class, 1)[np.arange(BATCH), labels], rtol=1e-6)


def test_num_ws():
  assert num_ws_for(1024) == 18
  assert GeneratorV1(16).num_ws == 6
  assert num_ws_for(4) == 2


def test_parameter_counts_at_1024():
  """G_style / D_basic at 1024, z = w = 512, 8 mapping layers, fmap_base 8192, fmap_max 512.

  nf(R) = 512 for R <= 32, then 256, 128, 64, 32, 16 at 64 ... 1024.
  Mapping: 8 * (512 * 512 + 512) = 2,101,248.
  A synthesis layer with C outputs has, besides its conv, noise strength C + bias C +
  affine 512 * 2C + 2C = 1028 C.
    4x4: const 16 * 512 + epilogue 1028 * 512 + conv 9 * 512^2 + 1028 * 512 = 3,420,160.
    block R (in, C): 9 * in * C + 9 * C^2 + 2 * 1028 * C:
      8, 16, 32 (512 -> 512): 5,771,264 each; 64: 2,295,808; 128: 705,536; 256: 242,176;
      512: 93,440; 1024: 39,808.
    to_rgb: 3C + 3 -> 4 * 1539 + 771 + 387 + 195 + 99 + 51 = 7,659.
  Synthesis 24,118,379; G 26,219,627 (the paper's 26.2M).
  D: from_rgb 4 * C + ... = 4 * 2048 + 1024 + 512 + 256 + 128 + 64 = 10,176;
    block R (C -> C'): 9 C^2 + C + 9 C C' + C':
      1024: 6,960; 512: 27,744; 256: 110,784; 128: 442,752; 64: 1,770,240;
      32, 16, 8: 4,719,616 each;
    4x4: conv 9 * 513 * 512 + 512 + dense0 16 * 512 * 512 + 512 + dense1 513 = 6,559,745.
  D 23,087,249.
  """
  g = GeneratorV1(1024)
  g_shapes = jax.eval_shape(lambda: g.init(init_key(), jnp.zeros((1, 512)),
                                           method=GeneratorV1.init_all))["params"]
  mapping, synthesis = count(g_shapes["mapping"]), count(g_shapes["synthesis"])
  assert (mapping, synthesis) == (2_101_248, 24_118_379)
  assert mapping + synthesis == 26_219_627
  assert abs(mapping + synthesis - 26.2e6) / 26.2e6 < 0.01

  d = DiscriminatorV1(1024)
  d_shapes = jax.eval_shape(lambda: d.init(init_key(), jnp.zeros((1, 1024, 1024, 3)),
                                           method=DiscriminatorV1.init_all))["params"]
  assert count(d_shapes) == 23_087_249


def test_v1_mapping_puts_the_gain_in_the_weights():
  """G_mapping's layer: lrelu(x @ (W * sqrt(2) * lrmul / sqrt(in)) + b * lrmul), no gain after."""
  from gan.families.stylegan.mapping import MappingNetwork
  net = MappingNetwork(z_dim=6, w_dim=5, num_layers=1, lr_multiplier=0.01, gain_in_weights=True)
  z = np.random.RandomState(0).randn(3, 6).astype(np.float32)
  params = net.init(jax.random.PRNGKey(0), z)["params"]
  params = {"fc0": {"weight": params["fc0"]["weight"], "bias": jnp.full((5,), 3.0)}}
  w, b = np.asarray(params["fc0"]["weight"], np.float64), 3.0
  x = z / np.sqrt(np.mean(z.astype(np.float64) ** 2, axis=1, keepdims=True) + 1e-8)
  a = x @ (w * np.sqrt(2) * 0.01 / np.sqrt(6)) + b * 0.01
  np.testing.assert_allclose(net.apply({"params": params}, z), np.where(a >= 0, a, 0.2 * a),
                             rtol=1e-5, atol=1e-6)
