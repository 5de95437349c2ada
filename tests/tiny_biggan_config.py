"""The tests' tiny BigGAN as a config file, for runs of python -m gan.main in a subprocess."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import tiny_config  # noqa: E402


def get_config():
  config = tiny_config(num_steps=6)
  config.log_every_steps = config.sample_every_steps = 100
  config.checkpoint_every_steps = 2
  return config
