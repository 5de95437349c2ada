"""Bad configs and missing data fail before compiling, naming the fix."""

import importlib.util
import os
import subprocess

import pytest

from conftest import PYTHON, REPO, subprocess_env, tiny_config, validate
from gan.data.pipeline import check_available


def load_config(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "configs", name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


# Every shipped config (BigGAN and ProGAN) validates on 8 devices: tests/test_config_fields.py.


def test_paper_hyperparameters_in_biggan128():
  c = load_config("biggan128")
  assert (c.model.ch, c.model.z_dim, c.model.shared_dim, c.model.attention) == (96, 120, 128, "64")
  assert (c.train.batch_size, c.train.grad_accum_steps, c.train.d_steps) == (2048, 8, 2)
  assert (c.train.g_lr, c.train.d_lr) == (5e-5, 2e-4)
  assert (c.train.adam_b1, c.train.adam_b2, c.train.adam_eps) == (0.0, 0.999, 1e-6)
  assert (c.train.ortho_reg, c.train.ema_decay, c.train.ema_start) == (1e-4, 0.9999, 20_000)


def _error(config, **kw) -> str:
  with pytest.raises(ValueError) as e:
    validate(config, **kw)
  return str(e.value)


def test_resolution_without_architecture_lists_the_choices():
  c = tiny_config()
  c.model.resolution = 48
  assert "[32, 64, 128, 256, 512]" in _error(c, num_devices=1)


def test_batch_not_divisible_by_devices():
  c = tiny_config(batch_size=12)
  msg = _error(c, num_devices=8)
  assert "12" in msg and "8 devices" in msg and "multiple of 8" in msg


def test_batch_not_divisible_by_accumulation():
  assert "grad_accum_steps=5" in _error(tiny_config(grad_accum_steps=5), num_devices=1)


def test_indivisible_z_and_bad_attention_are_reported_together():
  c = tiny_config()
  c.model.z_dim = 10
  c.model.attention = "24"
  msg = _error(c, num_devices=1)
  assert "z_dim=10" in msg and "multiple of 4" in msg
  assert "attention='24'" in msg and "[8, 16]" in msg


def test_embedded_dataset_needs_its_class_count():
  c = tiny_config()
  c.data.num_classes = 1000
  with pytest.raises(ValueError, match="num_classes=10"):
    check_available(c)


def test_missing_imagenet_names_dataset_dir_and_preparation(tmp_path):
  c = load_config("biggan128")
  c.data.data_dir = str(tmp_path)
  with pytest.raises(FileNotFoundError) as e:
    check_available(c)
  msg = str(e.value)
  for fragment in ("imagenet2012", str(tmp_path), "ILSVRC2012_img_train.tar",
                   "downloads/manual", "python -m gan.data.tfds_prepare imagenet2012", "shapes10"):
    assert fragment in msg, fragment


def test_biggan128_runs_on_the_embedded_dataset_with_the_documented_override():
  c = load_config("biggan128")
  c.data.name, c.data.num_classes, c.data.num_examples = "shapes10", 10, 20_000
  validate(c, num_devices=1)
  check_available(c)


def _main(*args, tmp_path):
  return subprocess.run(
      [PYTHON, "-m", "gan.main", f"--workdir={tmp_path / 'run'}", *args],
      capture_output=True, text=True, env=subprocess_env(1), cwd=REPO, timeout=300)


def test_main_refuses_unknown_config_key(tmp_path):
  result = _main("--config=configs/quickstart.py", "--config.train.batchsize=64",
                 tmp_path=tmp_path)
  assert result.returncode != 0
  assert "batchsize" in result.stderr
  assert not (tmp_path / "run").exists()


def test_main_fails_at_once_without_imagenet(tmp_path):
  result = _main("--config=configs/biggan128.py", f"--config.data.data_dir={tmp_path}",
                 tmp_path=tmp_path)
  assert result.returncode != 0
  assert "imagenet2012" in result.stderr and "ILSVRC2012_img_train.tar" in result.stderr
  assert not (tmp_path / "run" / "checkpoints").exists()
