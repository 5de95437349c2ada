"""Shared test helpers: a tiny BigGAN and a tiny ProGAN config that compile in seconds on a CPU."""

import atexit
import os
import shutil
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One persistent compilation cache for the whole session, shared with every child
# Python (they inherit the environment; set before any test imports jax). Many
# tests compile the same tiny programs; a hit loads the identical executable, so
# results do not change, and compiling stops dominating the suite's time.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache_dir = tempfile.mkdtemp(prefix="gan-tests-jax-cache-")
  atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_dir
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def tiny_config(**train_overrides):
  """32x32 BigGAN with width 8 on shapes10: small enough for CPU tests."""
  from gan.families.biggan.config import biggan_defaults

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


PHASE_IMAGES = 64
BATCH = 16  # 4 steps per phase


def tiny_progan(**train_overrides):
  """ProGAN growing 4x4 -> 8x8 with 16 channels on shapes10: 4 steps per phase."""
  from gan.families.progan.config import progan_defaults

  c = progan_defaults()
  c.model.resolution = 8
  c.model.latent_dim = 16
  c.model.fmap_base = 64
  c.model.fmap_max = 16
  c.data.name, c.data.num_classes, c.data.num_examples = "shapes10", 1, 200  # unconditional
  c.schedule.fade_images = c.schedule.stable_images = PHASE_IMAGES
  c.schedule.total_images = PHASE_IMAGES * 3  # stable 4, fade 8, stable 8
  c.schedule.batch_sizes, c.schedule.learning_rates = "", ""
  c.schedule.default_batch_size = BATCH
  c.sample.rows, c.sample.cols = 2, 2
  # Checkpoints at step 6 (mid-fade) and at the phase ends (4, 8, 12), all kept.
  c.log_every_steps, c.sample_every_steps, c.checkpoint_every_steps = 2, 100, 6
  c.keep_checkpoints = 10
  for key, value in train_overrides.items():
    c.train[key] = value
  return c


@pytest.fixture
def tiny():
  return tiny_config()


def train(config, workdir, history=None):
  """The one training loop, with the family ``config.model.name`` names."""
  from gan.families import registry
  from gan.train import loop
  return loop.train(config, str(workdir), registry.for_config(config), history)


def validate(config, num_devices: int, num_processes: int = 1, host_memory=None) -> None:
  """gan.config.validate against the family of ``config``."""
  from gan.families import registry
  registry.validate(config, num_devices, num_processes, host_memory)


def subprocess_env(num_devices: int = 1) -> dict:
  """Environment for a child Python that sees ``num_devices`` CPU devices."""
  env = dict(os.environ)
  env["JAX_PLATFORMS"] = "cpu"
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  return env


PYTHON = sys.executable


def tiny_stylegan2(**train_overrides):
  """StyleGAN2 at 16x16 (channels 16 and 8), z = w = 16, 2 mapping layers, 10 classes,
  batch 8; lazy path length every 2 steps and R1 every 4, so 4 steps see every variant."""
  from gan.families.stylegan.config2 import stylegan2_defaults

  c = stylegan2_defaults()
  c.model.resolution = 16
  c.model.z_dim = c.model.w_dim = 16
  c.model.mapping_layers = 2
  c.model.channel_base, c.model.channel_max = 128, 16
  c.data.name, c.data.label_key, c.data.num_classes, c.data.num_examples = (
      "shapes10", "label", 10, 200)
  c.train.num_steps, c.train.batch_size = 8, 8
  c.train.pl_interval, c.train.r1_interval = 2, 4
  c.train.ema_kimg, c.train.ema_rampup = 0.1, 0.05
  c.sample.rows, c.sample.cols, c.sample.mixing_resolution = 2, 2, 4
  c.log_every_steps, c.sample_every_steps, c.checkpoint_every_steps = 2, 100, 4
  c.keep_checkpoints = 10
  for key, value in train_overrides.items():
    c.train[key] = value
  return c


def tiny_stylegan(**train_overrides):
  """StyleGAN (v1) growing 4x4 -> 8x8 with 16 channels, z = w = 16, 2 mapping layers,
  10 classes: 4 steps per phase, as tiny_progan."""
  from gan.families.stylegan.config1 import stylegan_defaults

  c = stylegan_defaults()
  c.model.resolution = 8
  c.model.z_dim = c.model.w_dim = 16
  c.model.mapping_layers = 2
  c.model.fmap_base, c.model.fmap_max = 64, 16
  c.data.name, c.data.label_key, c.data.num_classes, c.data.num_examples = (
      "shapes10", "label", 10, 200)
  c.schedule.start_resolution = 4
  c.schedule.fade_images = c.schedule.stable_images = PHASE_IMAGES
  c.schedule.total_images = PHASE_IMAGES * 3  # stable 4, fade 8, stable 8
  c.schedule.batch_sizes, c.schedule.learning_rates = "", ""
  c.schedule.default_batch_size = BATCH
  c.train.ema_kimg = 0.1
  c.sample.rows, c.sample.cols, c.sample.mixing_resolution = 2, 2, 4
  c.sample.truncation_cutoff = 0
  c.log_every_steps, c.sample_every_steps, c.checkpoint_every_steps = 2, 100, 6
  c.keep_checkpoints = 10
  for key, value in train_overrides.items():
    c.train[key] = value
  return c
