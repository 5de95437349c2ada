"""The FID Inception-v3 in Flax against the same network in TensorFlow ops.

No pretrained weights can be had here: every check runs on random weights, and
the reference is a second, independent transcription of the 2015-12-05 graph
in TF ops (the branch structure of pytorch-fid's FIDInceptionA/C/E and
torchvision's InceptionB/D, with the graph's node names), sharing only the
parameter arrays with gan.evaluation.inception. The weight converters are
tested in test_inception_weights.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf

import inception_fixtures
from gan.evaluation import inception
from gan.evaluation import inception_weights as iw


def assert_close(got, want, tol):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape
  err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30)
  assert err <= tol, f"max relative error {err:.2e} > {tol:.0e}"


@pytest.fixture(scope="module")
def flat():
  return inception_fixtures.random_flat(0)


# --- the reference: TensorFlow ops, the graph's structure written out by hand.

def tf_conv(x, p, scope, kernel, stride=1, padding="SAME"):
  w = p[f"{scope}/conv2d_params"]
  assert w.shape[:2] == kernel, (scope, w.shape)
  y = tf.nn.conv2d(x, w, stride, padding)
  bn = {k: p[f"{scope}/batchnorm/{k}"] for k in ("moving_mean", "moving_variance", "beta", "gamma")}
  y = tf.nn.batch_norm_with_global_normalization(
      y, bn["moving_mean"], bn["moving_variance"], bn["beta"], bn["gamma"],
      variance_epsilon=0.001, scale_after_normalization=True)
  return tf.nn.relu(y)


def tf_chain(x, p, scope, layers):
  for name, kernel, *rest in layers:
    x = tf_conv(x, p, f"{scope}/{name}", kernel, *rest)
  return x


def tf_block_a(x, p, s):
  return tf.concat([
      tf_conv(x, p, f"{s}/conv", (1, 1)),
      tf_chain(x, p, f"{s}/tower", [("conv", (1, 1)), ("conv_1", (5, 5))]),
      tf_chain(x, p, f"{s}/tower_1", [("conv", (1, 1)), ("conv_1", (3, 3)), ("conv_2", (3, 3))]),
      tf_conv(tf.nn.avg_pool2d(x, 3, 1, "SAME"), p, f"{s}/tower_2/conv", (1, 1))], 3)


def tf_block_b(x, p, s):
  return tf.concat([
      tf_conv(x, p, f"{s}/conv", (3, 3), 2, "VALID"),
      tf_chain(x, p, f"{s}/tower", [("conv", (1, 1)), ("conv_1", (3, 3)),
                                     ("conv_2", (3, 3), 2, "VALID")]),
      tf.nn.max_pool2d(x, 3, 2, "VALID")], 3)


def tf_block_c(x, p, s):
  return tf.concat([
      tf_conv(x, p, f"{s}/conv", (1, 1)),
      tf_chain(x, p, f"{s}/tower", [("conv", (1, 1)), ("conv_1", (1, 7)), ("conv_2", (7, 1))]),
      tf_chain(x, p, f"{s}/tower_1", [("conv", (1, 1)), ("conv_1", (7, 1)), ("conv_2", (1, 7)),
                                       ("conv_3", (7, 1)), ("conv_4", (1, 7))]),
      tf_conv(tf.nn.avg_pool2d(x, 3, 1, "SAME"), p, f"{s}/tower_2/conv", (1, 1))], 3)


def tf_block_d(x, p, s):
  return tf.concat([
      tf_chain(x, p, f"{s}/tower", [("conv", (1, 1)), ("conv_1", (3, 3), 2, "VALID")]),
      tf_chain(x, p, f"{s}/tower_1", [("conv", (1, 1)), ("conv_1", (1, 7)), ("conv_2", (7, 1)),
                                       ("conv_3", (3, 3), 2, "VALID")]),
      tf.nn.max_pool2d(x, 3, 2, "VALID")], 3)


def tf_block_e(x, p, s, pool):
  def split(y, scope):
    return tf.concat([tf_conv(y, p, f"{scope}/mixed/conv", (1, 3)),
                      tf_conv(y, p, f"{scope}/mixed/conv_1", (3, 1))], 3)
  pooled = (tf.nn.avg_pool2d if pool == "avg" else tf.nn.max_pool2d)(x, 3, 1, "SAME")
  return tf.concat([
      tf_conv(x, p, f"{s}/conv", (1, 1)),
      split(tf_conv(x, p, f"{s}/tower/conv", (1, 1)), f"{s}/tower"),
      split(tf_chain(x, p, f"{s}/tower_1", [("conv", (1, 1)), ("conv_1", (3, 3))]), f"{s}/tower_1"),
      tf_conv(pooled, p, f"{s}/tower_2/conv", (1, 1))], 3)


def tf_stem(x, p):
  x = tf.multiply(tf.subtract(x, 128.0), 0.0078125)  # the graph's Sub, Mul
  x = tf_conv(x, p, "conv", (3, 3), 2, "VALID")
  x = tf_conv(x, p, "conv_1", (3, 3), 1, "VALID")
  x = tf_conv(x, p, "conv_2", (3, 3))
  x = tf.nn.max_pool2d(x, 3, 2, "VALID")
  x = tf_conv(x, p, "conv_3", (1, 1), 1, "VALID")
  x = tf_conv(x, p, "conv_4", (3, 3), 1, "VALID")
  return tf.nn.max_pool2d(x, 3, 2, "VALID")


def tf_network(images, p):
  """-> pool3, logits, and the outputs of the stem ('pool_1') and of each mixed block."""
  outputs = {"pool_1": tf_stem(images, p)}
  x = outputs["pool_1"]
  blocks = ([(s, tf_block_a) for s in ("mixed", "mixed_1", "mixed_2")] + [("mixed_3", tf_block_b)]
            + [(s, tf_block_c) for s in ("mixed_4", "mixed_5", "mixed_6", "mixed_7")]
            + [("mixed_8", tf_block_d), ("mixed_9", lambda x, p, s: tf_block_e(x, p, s, "avg")),
               ("mixed_10", lambda x, p, s: tf_block_e(x, p, s, "max"))])
  for scope, block in blocks:
    x = outputs[scope] = block(x, p, scope)
  pool3 = tf.reshape(tf.nn.avg_pool2d(x, 8, 1, "VALID"), [-1, 2048])
  return pool3, tf.matmul(pool3, p["softmax/weights"]) + p["softmax/biases"], outputs


# --- layers and blocks, tiny spatial sizes.

def test_conv_bn_relu_uses_tf_epsilon(flat):
  p = dict(flat)
  p["conv_1/batchnorm/moving_variance"] = np.full(32, 1e-4, np.float32)  # eps dominates
  x = np.random.default_rng(1).standard_normal((2, 6, 6, 32)).astype(np.float32)
  spec = inception.layer_specs()["conv_1"]
  sub = iw.unflatten({k: v for k, v in p.items() if k.startswith("conv_1/")})["conv_1"]
  got = inception.ConvBN(spec).apply({"params": sub}, x)
  assert_close(got, tf_conv(x, p, "conv_1", (3, 3), 1, "VALID"), 1e-5)
  wrong_eps = tf.nn.relu(tf.nn.batch_normalization(
      tf.nn.conv2d(x, p["conv_1/conv2d_params"], 1, "VALID"), p["conv_1/batchnorm/moving_mean"],
      p["conv_1/batchnorm/moving_variance"], p["conv_1/batchnorm/beta"],
      p["conv_1/batchnorm/gamma"], 1e-5))
  assert np.max(np.abs(got - wrong_eps)) > 0.1 * np.max(np.abs(got))


def test_avg_pool_does_not_count_padding():
  x = np.random.default_rng(2).standard_normal((2, 5, 6, 3)).astype(np.float32)
  got = inception.pool(jnp.asarray(x), inception.Pool("pool", "avg"))
  assert_close(got, tf.nn.avg_pool2d(x, 3, 1, "SAME"), 1e-6)
  ones = inception.pool(jnp.ones((1, 4, 4, 1)), inception.Pool("pool", "avg"))
  np.testing.assert_allclose(ones, 1.0, rtol=1e-6)  # corners average 4 pixels, not 4/9
  got = inception.pool(jnp.asarray(x), inception.Pool("pool", "max"))
  assert_close(got, tf.nn.max_pool2d(x, 3, 1, "SAME"), 0)


@pytest.mark.parametrize("scope,tf_block,in_shape", [
    ("mixed", tf_block_a, (2, 7, 7, 192)),
    ("mixed_3", tf_block_b, (2, 9, 9, 288)),
    ("mixed_4", tf_block_c, (1, 7, 7, 768)),
    ("mixed_8", tf_block_d, (1, 9, 9, 768)),
    ("mixed_9", lambda x, p, s: tf_block_e(x, p, s, "avg"), (1, 5, 5, 1280)),
    ("mixed_10", lambda x, p, s: tf_block_e(x, p, s, "max"), (1, 5, 5, 2048)),
])
def test_mixed_block_matches_tensorflow(flat, scope, tf_block, in_shape):
  x = np.random.default_rng(3).standard_normal(in_shape).astype(np.float32)
  branches = dict(inception.MIXED)[scope]
  params = {"params": iw.unflatten(flat)[scope]}
  got = jax.jit(inception.MixedModule(branches).apply)(params, x)
  want = tf_block(x, flat, scope)
  assert_close(got, want, 1e-5)
  if scope == "mixed_10":  # convs, BN, both pools also run in bfloat16, ~3 significant digits
    low = jax.jit(inception.MixedModule(branches, jnp.bfloat16).apply)(params, x)
    assert low.dtype == jnp.bfloat16
    assert_close(low, want, 3e-2)


# --- the whole network.

def test_layer_shapes_and_parameter_count():
  images = jax.ShapeDtypeStruct((2, 299, 299, 3), jnp.float32)
  params = jax.eval_shape(inception.InceptionV3().init, jax.random.PRNGKey(0), images)["params"]
  out, state = jax.eval_shape(lambda p, x: inception.InceptionV3().apply(
      {"params": p}, x, mutable=["intermediates"]), params, images)
  shapes = {k: v.shape[1:] for k, v in state["intermediates"]["outputs"].items()}
  assert shapes == {
      "conv": (149, 149, 32), "conv_1": (147, 147, 32), "conv_2": (147, 147, 64),
      "pool": (73, 73, 64), "conv_3": (73, 73, 80), "conv_4": (71, 71, 192),
      "pool_1": (35, 35, 192), "mixed": (35, 35, 256), "mixed_1": (35, 35, 288),
      "mixed_2": (35, 35, 288), "mixed_3": (17, 17, 768), "mixed_4": (17, 17, 768),
      "mixed_5": (17, 17, 768), "mixed_6": (17, 17, 768), "mixed_7": (17, 17, 768),
      "mixed_8": (8, 8, 1280), "mixed_9": (8, 8, 2048), "mixed_10": (8, 8, 2048)}
  assert {k: v.shape for k, v in out.items()} == {
      "pool3": (2, 2048), "logits": (2, 1008), "logits_unbiased": (2, 1008)}
  # torchvision's inception_v3 has 27,161,264 parameters (num_params of
  # Inception_V3_Weights.IMAGENET1K_V1, pytorch.org/vision/stable/models/generated/
  # torchvision.models.inception_v3.html): aux head, 1000 classes, BN gamma and
  # beta only. Without the aux head (conv0 768*128 + 2*128, conv1 5*5*128*768 +
  # 2*768, fc 768*1000 + 1000 = 3,326,696), with 1008 classes (+8*2048 + 8) and
  # with the BN moving mean and variance, parameters here (+2 * 17,216
  # channels): 23,885,392.
  assert inception.num_params() == 27_161_264 - 3_326_696 + 8 * 2049 + 2 * 17_216 == 23_885_392
  assert len(inception.param_shapes()) == 94 * 5 + 2  # 94 conv+BN layers, softmax/logits
  conv_channels = sum(s[0] for n, s in inception.param_shapes().items() if n.endswith("/beta"))
  assert conv_channels == 17_216


def test_network_matches_tensorflow(flat):
  x = np.random.default_rng(5).uniform(0, 255, (1, 299, 299, 3)).astype(np.float32)
  out, state = jax.jit(lambda p, x: inception.InceptionV3().apply(
      {"params": p}, x, mutable=["intermediates"]))(iw.unflatten(flat), x)
  pool3, logits, tf_outputs = tf_network(x, flat)
  outputs = state["intermediates"]["outputs"]
  assert_close(outputs["pool_1"], tf_outputs["pool_1"], 1e-5)  # the stem, input scaling included
  for scope, want in tf_outputs.items():
    assert_close(outputs[scope], want, 2e-5)
  assert_close(out["pool3"], pool3, 2e-5)
  assert_close(out["logits"], logits, 2e-5)
  assert_close(out["logits_unbiased"], logits - flat["softmax/biases"], 2e-5)
  assert all(v.dtype == jnp.float32 for v in out.values())


def test_wrong_input_size_is_refused():
  with pytest.raises(ValueError, match="299"):
    inception.InceptionV3().init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))

