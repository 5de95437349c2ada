"""A small CNN trained on shapes10: the feature network of "shapes10 FID".

Why it exists: no pretrained Inception network can be downloaded here, yet a
GAN trained on shapes10 needs a sample-quality metric and, when conditional, a
check that each sample shows the class it was asked for. This classifier is
trained on shapes10 alone (python -m gan.evaluation.train_shapes_classifier)
and ships with the package (WEIGHTS_PATH, ~0.5 MB). Its penultimate features
give a Frechet distance that is called "shapes10 FID" everywhere: it is NOT
comparable with Inception FIDs, or with a shapes10 FID from other weights.
Its logits give the class accuracy of conditional samples.

The network has no batch norm or dropout, so inference has no state and no
train/eval switch; it runs in float32 at HIGHEST matmul/conv precision so that
features do not depend on an accelerator's default reduced precision.

Inputs are RGB pixel values in [0, 255], float32 [N, 32, 32, 3], real and
generated images alike quantised to uint8 first. ``prepare`` brings other
resolutions to 32x32.
"""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

INPUT_SIZE = 32
NUM_CLASSES = 10
FEATURE_DIM = 128
CONV_CHANNELS = (32, 32, 64, 128)  # the first at 32x32, then each halves the resolution
# Leaky, not plain, ReLU: with ReLU about a fifth of the feature units never fire
# (zero variance), leaving the features' covariance singular for a Frechet distance.
LEAKY_SLOPE = 0.2
WEIGHTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights",
                            "shapes10_classifier.npz")
TRAIN_COMMAND = "python -m gan.evaluation.train_shapes_classifier"

_PRECISION = jax.lax.Precision.HIGHEST


class ShapesClassifier(nn.Module):
  """3x3 convs (stride 1, 2, 2, 2) + leaky ReLU, global average pool, dense features, 10-way dense.

  The receptive field of the last conv (31 px) spans the image, so the pooled
  features see whole shapes (stripes vs checkerboard, ring vs circle).
  """

  @nn.compact
  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    """images float32 [N, 32, 32, 3] in [0, 255] -> dict(features [N, FEATURE_DIM], logits [N, 10]).

    ``features`` are the (leaky ReLU) outputs of the penultimate, dense layer.
    """
    if images.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
      raise ValueError(f"ShapesClassifier takes [N, {INPUT_SIZE}, {INPUT_SIZE}, 3] images, got "
                       f"{images.shape}; resize them with shapes_classifier.prepare first.")
    x = jnp.asarray(images, jnp.float32) / 127.5 - 1.0
    for i, channels in enumerate(CONV_CHANNELS):
      x = nn.Conv(channels, (3, 3), strides=1 if i == 0 else 2, padding="SAME",
                  dtype=jnp.float32, param_dtype=jnp.float32, precision=_PRECISION,
                  name=f"conv{i}")(x)
      x = nn.leaky_relu(x, LEAKY_SLOPE)
    x = jnp.mean(x, axis=(1, 2))  # global average pool: [N, CONV_CHANNELS[-1]]
    features = nn.leaky_relu(nn.Dense(FEATURE_DIM, dtype=jnp.float32, param_dtype=jnp.float32,
                                precision=_PRECISION, name="features")(x), LEAKY_SLOPE)
    logits = nn.Dense(NUM_CLASSES, dtype=jnp.float32, param_dtype=jnp.float32,
                      precision=_PRECISION, name="logits")(features)
    return dict(features=features, logits=logits)


@jax.jit
def apply(params, images: jax.Array) -> dict[str, jax.Array]:
  """Jitted ShapesClassifier().apply: float32 [N, 32, 32, 3] in [0, 255] -> features, logits."""
  return ShapesClassifier().apply({"params": params}, images)


def param_shapes() -> dict[str, tuple[int, ...]]:
  """The module's parameter shapes, keyed "layer/kernel" (no computation: eval_shape)."""
  shapes = jax.eval_shape(
      ShapesClassifier().init, jax.random.PRNGKey(0),
      jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))["params"]
  return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes, sep="/").items()}


class WeightsError(ValueError):
  """A weights file that does not fit ShapesClassifier."""


def _retrain_hint(path: str) -> str:
  return (f"Retrain and rewrite it with: {TRAIN_COMMAND}"
          + ("" if os.path.abspath(path) == WEIGHTS_PATH else f" --out {path}"))


def load_params(path: str = WEIGHTS_PATH) -> dict:
  """Reads and validates an .npz written by ``save_params``; returns nested params (np float32).

  Raises WeightsError (naming the file and the training command) if a tensor is
  missing, unexpected, or of the wrong shape or dtype, and FileNotFoundError if
  there is no file.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"No shapes10 classifier weights at {path}. {_retrain_hint(path)}")
  try:
    with np.load(path, allow_pickle=False) as npz:
      flat = {key: npz[key] for key in npz.files}
  except (OSError, ValueError) as e:  # not a zip, truncated, or object arrays
    raise WeightsError(f"{path} is not a readable shapes10 classifier .npz ({e}). "
                       f"{_retrain_hint(path)}") from e
  wanted = param_shapes()
  problems = [f"missing {k}" for k in sorted(wanted.keys() - flat.keys())]
  problems += [f"unexpected {k}" for k in sorted(flat.keys() - wanted.keys())]
  problems += [f"{k}: file {flat[k].shape} {flat[k].dtype}, module {wanted[k]} float32"
               for k in sorted(wanted.keys() & flat.keys())
               if flat[k].shape != wanted[k] or flat[k].dtype != np.float32]
  if problems:
    raise WeightsError(f"{path} does not match ShapesClassifier: {'; '.join(problems)}. "
                       f"The weights are stale or damaged. {_retrain_hint(path)}")
  return traverse_util.unflatten_dict(flat, sep="/")


def save_params(params, path: str) -> None:
  """Writes params as an uncompressed .npz, byte-identical for identical params.

  np.savez stamps each member with the current time; fixed timestamps make the
  file's sha256 (recorded next to it) a function of the weights alone.
  """
  import io
  import zipfile

  from gan.fileio import atomic_write

  flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
    for key in sorted(flat):
      info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
      with archive.open(info, "w") as f:
        np.lib.format.write_array(f, np.asarray(flat[key], np.float32), allow_pickle=False)
  atomic_write(path, buffer.getvalue())


def prepare(images) -> jax.Array:
  """uint8 or float [N, H, W, 3] in [0, 255] -> float32 [N, 32, 32, 3] in [0, 255].

  jnp throughout, so it also runs on traced images inside jit. 32x32 passes
  through unchanged. When H and W are integer multiples of 32, the result is
  the mean of each block (area averaging): the filter that made the training
  data's 64px images 32px and gan.data's box_downsample, so no resampling error
  is added. Otherwise (upsampling, e.g. ProGAN's 16x16 phase, or a non-integer
  factor) bilinear interpolation with antialiasing, which is smooth when
  upsampling and low-passes before decimating when downscaling. Values are not
  rounded.
  """
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"prepare takes RGB images [N, H, W, 3], got shape {images.shape}")
  n, height, width, _ = images.shape
  images = jnp.asarray(images, jnp.float32)
  if (height, width) == (INPUT_SIZE, INPUT_SIZE):
    return images
  if height % INPUT_SIZE == 0 and width % INPUT_SIZE == 0:
    fh, fw = height // INPUT_SIZE, width // INPUT_SIZE
    return images.reshape(n, INPUT_SIZE, fh, INPUT_SIZE, fw, 3).mean(axis=(2, 4))
  return jax.image.resize(images, (n, INPUT_SIZE, INPUT_SIZE, 3), method="bilinear",
                          antialias=True)
