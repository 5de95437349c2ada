"""Random 2015-12-05 Inception-v3 weights, shared by test_inception and test_inception_weights.

No pretrained weights can be had here: every check runs on random weights of
the right names and shapes.
"""

import numpy as np

from gan.evaluation import inception


def random_flat(seed):
  """Random weights of the right shapes: He-scaled kernels, positive variances."""
  rng = np.random.default_rng(seed)
  flat = {}
  for name, shape in inception.param_shapes().items():
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "conv2d_params":
      a = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:3]))
    elif leaf == "weights":
      a = rng.standard_normal(shape) / np.sqrt(shape[0])
    elif leaf in ("gamma", "moving_variance"):
      a = rng.uniform(0.5, 1.5, shape)
    else:  # beta, moving_mean, biases
      a = rng.uniform(-0.2, 0.2, shape)
    flat[name] = a.astype(np.float32)
  return flat
