"""The tests' tiny StyleGAN2 (conftest.tiny_stylegan2) as a config file for python -m gan.main.

Adam's epsilon is 1 (not 1e-8), as in tiny_progan_config: an update is then a smooth
function of the gradient, so rounding that differs between device counts stays at
rounding level instead of being amplified by g / sqrt(nu) for tiny gradients. The
path-length batch is the whole batch of 8 (pl_batch_shrink 1), so that 8 devices divide it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import tiny_stylegan2  # noqa: E402


def get_config():
  config = tiny_stylegan2()
  config.train.adam_eps = 1.0
  config.train.pl_batch_shrink = 1
  return config
