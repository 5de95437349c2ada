"""Shared test helpers: a tiny BigGAN config that compiles in seconds on a CPU."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**train_overrides):
  """32x32 BigGAN with width 8 on shapes10: small enough for CPU tests."""
  from gan.config import biggan_defaults

  c = biggan_defaults()
  c.model.resolution = 32
  c.model.ch = 8
  c.model.z_dim = 16
  c.model.shared_dim = 8
  c.model.attention = "16"
  c.data.name = "shapes10"
  c.data.num_classes = 10
  c.data.num_examples = 200
  c.train.num_steps = 4
  c.train.batch_size = 8
  c.train.grad_accum_steps = 1
  c.train.d_steps = 1
  c.train.g_lr = 2e-4
  c.train.d_lr = 2e-4
  c.train.ema_start = 2
  c.train.ema_decay = 0.9
  c.sample.per_class = 2
  c.sample.num_classes_shown = 2
  c.log_every_steps = 2
  c.sample_every_steps = 2
  c.checkpoint_every_steps = 2
  for key, value in train_overrides.items():
    c.train[key] = value
  return c


@pytest.fixture
def tiny():
  return tiny_config()


def subprocess_env(num_devices: int = 1) -> dict:
  """Environment for a child Python that sees ``num_devices`` CPU devices."""
  env = dict(os.environ)
  env["JAX_PLATFORMS"] = "cpu"
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  return env


PYTHON = sys.executable
