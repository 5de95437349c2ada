"""The feature networks metrics run on, behind one shape: uint8 images -> outputs.

  inception  Inception-v3 of TensorFlow's 2015-12-05 FID graph; pool3 features
             (2048) for FID/KID/precision-recall, the 1008 logits for IS. Its
             weights come from a file the user provides (config.eval.inception_weights).
  shapes10   the small classifier shipped in gan/evaluation/weights/, trained on
             the embedded dataset; features for "shapes10 FID" (NOT comparable to
             an Inception FID) and logits for the class accuracy of samples.

A network's ``apply(params, images)`` takes uint8 [N, H, W, 3] (any H, W: it
resizes to its input size itself, by the named mode) and returns
dict(features=[N, D] float32, logits=[N, C] float32). It is pure and jittable.
"""

import dataclasses
import hashlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from gan.config import ConfigError
from gan.config.evaluation import INCEPTION_FILES
from gan.evaluation import catalog


def params_digest(params) -> str:
  """The first 12 hex digits of a sha256 over every array (names, shapes, bytes)."""
  digest = hashlib.sha256()
  for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(params)[0],
                           key=lambda item: jax.tree_util.keystr(item[0])):
    array = np.ascontiguousarray(np.asarray(leaf, np.float32))
    digest.update(f"{jax.tree_util.keystr(path)}{array.shape}".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
  name: str             # catalog.INCEPTION or catalog.SHAPES10
  description: str      # named with every figure it gives
  apply: Callable[[Any, jax.Array], dict]
  params: Any
  cache_key: str        # what identifies its features in the reference-statistics cache


def inception(weights_path: str, resize_mode: str) -> FeatureNetwork:
  """The FID Inception-v3 from ``weights_path`` (.pb, .pth or converted .npz)."""
  from gan.evaluation import inception as inception_net
  from gan.evaluation import inception_weights, resize

  try:
    params = inception_weights.load(weights_path)
  except FileNotFoundError as error:
    raise ConfigError(f"config.eval.inception_weights={weights_path!r}: no such file "
                      f"({error}). Get {INCEPTION_FILES}.") from None
  except ValueError as error:
    raise ConfigError(f"config.eval.inception_weights={weights_path!r}: {error}") from None
  net = inception_net.InceptionV3()
  size = inception_net.INPUT_SIZE

  def apply(params, images):
    x = resize.resize(images.astype(jnp.float32), size, resize_mode)
    out = net.apply({"params": params}, x)
    # IS takes the softmax of pool3 @ softmax/weights without the bias, as the original
    # Inception Score code (openai/improved-gan) and stylegan2-ada do.
    return {"features": out["pool3"], "logits": out["logits_unbiased"]}

  digest = params_digest(params)
  logging.info("Inception-v3 weights from %s (digest %s), %s resize to %d.", weights_path,
               digest, resize_mode, size)
  return FeatureNetwork(
      catalog.INCEPTION,
      f"Inception-v3 2015-12-05 (TF FID graph) pool3, {resize_mode} resize to {size}",
      apply, params, f"inception-{digest}-{resize_mode}")


def shapes10() -> FeatureNetwork:
  """The shapes10 classifier with its shipped weights."""
  from gan.evaluation import shapes_classifier

  params = shapes_classifier.load_params()
  net = shapes_classifier.ShapesClassifier()

  def apply(params, images):
    return net.apply({"params": params}, shapes_classifier.prepare(images))

  return FeatureNetwork(
      catalog.SHAPES10,
      "shapes10 classifier features (gan/evaluation/weights; not comparable to Inception)",
      apply, params, f"shapes10-{params_digest(params)}")


def for_metrics(metrics, eval_config) -> dict[str, FeatureNetwork]:
  """The networks ``metrics`` need, by name."""
  needed = {catalog.NETWORK_OF[m] for m in metrics} - {None}
  networks = {}
  if catalog.INCEPTION in needed:
    networks[catalog.INCEPTION] = inception(eval_config.inception_weights,
                                            eval_config.resize_mode)
  if catalog.SHAPES10 in needed:
    networks[catalog.SHAPES10] = shapes10()
  return networks
