"""The tests' tiny StyleGAN (v1, conftest.tiny_stylegan) as a config file for python -m gan.main.

Adam's epsilon is 1 (not 1e-8), as in tiny_progan_config: an update is then a smooth
function of the gradient, so rounding that differs between device counts stays at
rounding level instead of being amplified by g / sqrt(nu) for tiny gradients.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import tiny_stylegan  # noqa: E402


def get_config():
  config = tiny_stylegan()
  config.train.adam_eps = 1.0
  return config
