"""Inception-v3 as TensorFlow's 2015-12-05 FID graph computes it, in Flax.

The graph is classify_image_graph_def.pb inside inception-2015-12-05.tgz, the
network of the original FID (bioinf-jku/TTUR) and Inception Score
(openai/improved-gan) code; pytorch-fid and torch-fidelity re-implement it.
It differs from torchvision's and TF-slim's Inception-v3 in ways that move
FID, and each is reproduced here:

  * input: raw pixels in [0, 255] -> (x - 128) * 0.0078125 (the graph's Sub/y,
    Mul/y constants), no per-channel ImageNet mean/std;
  * every conv has no bias and is followed by BatchNormWithGlobalNormalization
    (inference form, variance_epsilon 0.001, gamma applied) and ReLU;
  * the 3x3 average pools inside the mixed blocks are TF 'SAME' pools, which
    divide by the number of in-image pixels (padding is not counted);
  * the pool of mixed_10's last tower is a 3x3 MAX pool (avg everywhere else);
  * pool_3 is an 8x8 VALID average pool, and softmax/logits has 1008 classes
    (with bias; the original Inception Score code left the bias out, hence
    the 'logits_unbiased' output too).

Parameters are named after the graph's nodes: the tensor the graph calls
'mixed_9/tower/mixed/conv_1/batchnorm/moving_mean' is
params['mixed_9']['tower']['mixed']['conv_1']['batchnorm']['moving_mean'].
Layouts are TF's: NHWC activations, HWIO kernels, [2048, 1008] logits weights.
All of them (batch-norm statistics included) live in the 'params' collection:
the network is frozen, there is no train mode.
"""

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

INPUT_SIZE = 299
POOL3_DIM = 2048
NUM_CLASSES = 1008
BN_EPSILON = 0.001        # the graph's variance_epsilon (0.0010000000475 as float32)
INPUT_SHIFT = 128.0       # Sub/y
INPUT_SCALE = 0.0078125   # Mul/y, = 1/128
_PRECISION = jax.lax.Precision.HIGHEST  # no TF32/bf16 passes: features must not depend on the chip


class Conv(NamedTuple):
  """A conv + batch norm + ReLU layer, the graph's scope `name`."""
  name: str
  features: int
  kernel: tuple[int, int]    # (height, width)
  stride: int = 1
  padding: str = "SAME"


class Pool(NamedTuple):
  """A 3x3 (or 8x8) pool, the graph's node `name`; avg pools never count padding."""
  name: str
  kind: str                  # 'max' or 'avg'
  window: int = 3
  stride: int = 1
  padding: str = "SAME"


class Tower(NamedTuple):
  """Layers in sequence (scope `name`); `split` convs then run side by side in scope 'mixed'."""
  name: str
  layers: tuple
  split: tuple = ()


def _c(name, features, kernel, stride=1, padding="SAME"):
  kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
  return Conv(name, features, kernel, stride, padding)


_AVG = Pool("pool", "avg")
_STRIDE2_MAX = Pool("pool", "max", 3, 2, "VALID")


def _block_a(pool_features):   # 35x35; pytorch-fid FIDInceptionA
  return (_c("conv", 64, 1),
          Tower("tower", (_c("conv", 48, 1), _c("conv_1", 64, 5))),
          Tower("tower_1", (_c("conv", 64, 1), _c("conv_1", 96, 3), _c("conv_2", 96, 3))),
          Tower("tower_2", (_AVG, _c("conv", pool_features, 1))))


_BLOCK_B = (  # 35x35 -> 17x17; torchvision InceptionB
    _c("conv", 384, 3, 2, "VALID"),
    Tower("tower", (_c("conv", 64, 1), _c("conv_1", 96, 3), _c("conv_2", 96, 3, 2, "VALID"))),
    _STRIDE2_MAX)


def _block_c(c7):  # 17x17; pytorch-fid FIDInceptionC
  return (_c("conv", 192, 1),
          Tower("tower", (_c("conv", c7, 1), _c("conv_1", c7, (1, 7)),
                          _c("conv_2", 192, (7, 1)))),
          Tower("tower_1", (_c("conv", c7, 1), _c("conv_1", c7, (7, 1)), _c("conv_2", c7, (1, 7)),
                            _c("conv_3", c7, (7, 1)), _c("conv_4", 192, (1, 7)))),
          Tower("tower_2", (_AVG, _c("conv", 192, 1))))


_BLOCK_D = (  # 17x17 -> 8x8; torchvision InceptionD
    Tower("tower", (_c("conv", 192, 1), _c("conv_1", 320, 3, 2, "VALID"))),
    Tower("tower_1", (_c("conv", 192, 1), _c("conv_1", 192, (1, 7)), _c("conv_2", 192, (7, 1)),
                      _c("conv_3", 192, 3, 2, "VALID"))),
    _STRIDE2_MAX)


def _block_e(pool_kind):  # 8x8; pytorch-fid FIDInceptionE_1 ('avg') and FIDInceptionE_2 ('max')
  split = (_c("conv", 384, (1, 3)), _c("conv_1", 384, (3, 1)))
  return (_c("conv", 320, 1),
          Tower("tower", (_c("conv", 384, 1),), split),
          Tower("tower_1", (_c("conv", 448, 1), _c("conv_1", 384, 3)), split),
          Tower("tower_2", (Pool("pool", pool_kind), _c("conv", 192, 1))))


# The whole network in graph order: (scope, layer or block branches). A block's
# branches are listed in the order its join concatenates them: pytorch-fid's
# and torch-fidelity's order, whose logits match the graph's.
STEM = (_c("conv", 32, 3, 2, "VALID"), _c("conv_1", 32, 3, 1, "VALID"), _c("conv_2", 64, 3),
        Pool("pool", "max", 3, 2, "VALID"), _c("conv_3", 80, 1, 1, "VALID"),
        _c("conv_4", 192, 3, 1, "VALID"), Pool("pool_1", "max", 3, 2, "VALID"))
MIXED = (("mixed", _block_a(32)), ("mixed_1", _block_a(64)), ("mixed_2", _block_a(64)),
         ("mixed_3", _BLOCK_B),
         ("mixed_4", _block_c(128)), ("mixed_5", _block_c(160)), ("mixed_6", _block_c(160)),
         ("mixed_7", _block_c(192)),
         ("mixed_8", _BLOCK_D),
         ("mixed_9", _block_e("avg")), ("mixed_10", _block_e("max")))
POOL3 = Pool("pool_3", "avg", 8, 1, "VALID")


def pool(x: jax.Array, spec: Pool) -> jax.Array:
  """TF's max_pool / avg_pool on NHWC `x`; an avg pool divides by in-image pixels only."""
  window, strides = (1, spec.window, spec.window, 1), (1, spec.stride, spec.stride, 1)
  if spec.kind == "max":
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, spec.padding)
  sums = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, spec.padding)
  # Count the in-image pixels of each window: what TF divides by (padding=SAME
  # windows at the border hold fewer than 9).
  ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
  counts = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, spec.padding)
  return sums / counts


class BatchNorm(nn.Module):
  """BatchNormWithGlobalNormalization at inference: (x - mean) * gamma / sqrt(var + eps) + beta."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    beta = self.param("beta", nn.initializers.zeros, (c,), jnp.float32)
    gamma = self.param("gamma", nn.initializers.ones, (c,), jnp.float32)
    mean = self.param("moving_mean", nn.initializers.zeros, (c,), jnp.float32)
    var = self.param("moving_variance", nn.initializers.ones, (c,), jnp.float32)
    # TF's kernel folds gamma into the inverse std, then shifts: same order here.
    scale = gamma * jax.lax.rsqrt(var + BN_EPSILON)
    return (x - mean.astype(self.dtype)) * scale.astype(self.dtype) + beta.astype(self.dtype)


class ConvBN(nn.Module):
  """Conv (HWIO kernel 'conv2d_params', no bias) -> BatchNorm ('batchnorm') -> ReLU."""
  spec: Conv
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kh, kw = self.spec.kernel
    x = x.astype(self.dtype)
    kernel = self.param("conv2d_params", nn.initializers.lecun_normal(),
                        (kh, kw, x.shape[-1], self.spec.features), jnp.float32)
    x = jax.lax.conv_general_dilated(
        x, kernel.astype(self.dtype), (self.spec.stride,) * 2, self.spec.padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_PRECISION)
    return nn.relu(BatchNorm(self.dtype, name="batchnorm")(x))


def _run(layer, x, dtype):
  """Applies one Conv / Pool / Tower spec in the scope of the module calling it."""
  if isinstance(layer, Conv):
    return ConvBN(layer, dtype, name=layer.name)(x)
  if isinstance(layer, Pool):
    return pool(x, layer)
  return TowerModule(layer.layers, layer.split, dtype, name=layer.name)(x)


class TowerModule(nn.Module):
  """A graph 'tower': layers in sequence, then (mixed_9/10) two convs side by side, concatenated."""
  layers: tuple
  split: tuple = ()
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    for layer in self.layers:
      x = _run(layer, x, self.dtype)
    if self.split:
      x = MixedModule(self.split, self.dtype, name="mixed")(x)
    return x


class MixedModule(nn.Module):
  """A graph 'mixed' block: its branches on the same input, concatenated on channels (join)."""
  branches: tuple
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([_run(b, x, self.dtype) for b in self.branches], axis=-1)


class Logits(nn.Module):
  """softmax/logits: pool3 @ weights [2048, 1008] + biases [1008]."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    w = self.param("weights", nn.initializers.lecun_normal(), (x.shape[-1], NUM_CLASSES),
                   jnp.float32)
    b = self.param("biases", nn.initializers.zeros, (NUM_CLASSES,), jnp.float32)
    unbiased = jnp.dot(x, w.astype(self.dtype), precision=_PRECISION)
    return unbiased, unbiased + b.astype(self.dtype)


class InceptionV3(nn.Module):
  """The 2015-12-05 FID Inception-v3 (module docstring); `dtype` is the computation dtype."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    """images float32 [N, 299, 299, 3], pixel values in [0, 255] -> dict of float32:

      pool3            [N, 2048]  pool_3 features (FID, KID, precision/recall)
      logits           [N, 1008]  softmax/logits, bias included
      logits_unbiased  [N, 1008]  pool3 @ softmax/weights, no bias: what the
                                  original Inception Score code took the softmax of

    Resizing to 299 is the caller's job (gan.evaluation.resize). Intermediate
    outputs (stem layers and mixed blocks) are sown as one dict, keyed by graph
    scope, into variables['intermediates']['outputs'].
    """
    if images.ndim != 4 or images.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise ValueError(f"InceptionV3 takes [N, {INPUT_SIZE}, {INPUT_SIZE}, 3] images in [0, 255], "
                       f"got shape {images.shape}; resize them first.")
    x = (jnp.asarray(images, self.dtype) - INPUT_SHIFT) * INPUT_SCALE
    for layer in STEM:
      x = _run(layer, x, self.dtype)
      self._keep(layer.name, x)
    for name, branches in MIXED:
      x = MixedModule(branches, self.dtype, name=name)(x)
      self._keep(name, x)
    x = pool(x, POOL3)                           # [N, 1, 1, 2048]
    pool3 = x.reshape(x.shape[0], POOL3_DIM)     # pool_3/_reshape
    unbiased, logits = Logits(self.dtype, name="softmax")(pool3)
    return {k: v.astype(jnp.float32) for k, v in
            dict(pool3=pool3, logits=logits, logits_unbiased=unbiased).items()}

  def _keep(self, name, x):
    # One dict rather than a variable per layer: a variable named 'conv' would
    # clash with the submodule 'conv'.
    self.sow("intermediates", "outputs", {name: x}, init_fn=dict,
             reduce_fn=lambda kept, new: {**kept, **new})


def _abstract_init():
  images = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return jax.eval_shape(InceptionV3().init, jax.random.PRNGKey(0), images)


@functools.cache
def _param_shapes() -> tuple:
  flat = jax.tree_util.tree_flatten_with_path(_abstract_init()["params"])[0]
  return tuple(("/".join(k.key for k in path), tuple(leaf.shape)) for path, leaf in flat)


def param_shapes() -> dict[str, tuple[int, ...]]:
  """Every parameter's shape, keyed by its graph node name (jax.eval_shape: no compute)."""
  return dict(_param_shapes())


def num_params() -> int:
  """Scalars in all parameters (batch-norm statistics included)."""
  return sum(int(np.prod(shape)) for shape in param_shapes().values())


def layer_specs() -> dict[str, Conv | Pool]:
  """Every Conv and Pool of the network, keyed by its graph scope/node name ('mixed_3/pool')."""
  specs = {}

  def visit(prefix, layer):
    if isinstance(layer, Tower):
      for sub in layer.layers:
        visit(f"{prefix}{layer.name}/", sub)
      for sub in layer.split:
        visit(f"{prefix}{layer.name}/mixed/", sub)
    else:
      specs[prefix + layer.name] = layer

  for layer in STEM:
    visit("", layer)
  for name, branches in MIXED:
    for branch in branches:
      visit(f"{name}/", branch)
  visit("", POOL3)
  return specs
