"""A workdir belongs to one run: other settings are refused unless --config.resume=force."""

import json

import pytest
from etils import epath

from conftest import tiny_config
from gan.config import ConfigError
from gan.train.run_config import claim_workdir


def test_same_run_with_a_longer_schedule_may_resume(tmp_path):
  workdir = epath.Path(tmp_path)
  claim_workdir(workdir, tiny_config(), True)
  longer = tiny_config(num_steps=400)
  longer.checkpoint_every_steps = 7
  claim_workdir(workdir, longer, True)
  assert json.loads((workdir / "config.json").read_text())["train"]["num_steps"] == 400


def test_another_run_is_refused_naming_the_differences(tmp_path):
  workdir = epath.Path(tmp_path)
  claim_workdir(workdir, tiny_config(), True)
  other = tiny_config(g_lr=1e-4)
  other.model.ch = 16
  with pytest.raises(ConfigError) as e:
    claim_workdir(workdir, other, True)
  message = str(e.value)
  assert "model.ch: 8 -> 16" in message and "train.g_lr: 0.0002 -> 0.0001" in message
  assert "--config.resume=force" in message and "new --workdir" in message
  assert json.loads((workdir / "config.json").read_text())["model"]["ch"] == 8  # untouched


def test_force_continues_and_keeps_the_old_config(tmp_path):
  workdir = epath.Path(tmp_path)
  claim_workdir(workdir, tiny_config(), True)
  other = tiny_config(g_lr=1e-4)
  other.resume = "force"
  claim_workdir(workdir, other, True)
  kept = [p.name for p in workdir.glob("config.*.json")]
  assert len(kept) == 1
  assert json.loads((workdir / kept[0]).read_text())["train"]["g_lr"] == 2e-4
  assert json.loads((workdir / "config.json").read_text())["train"]["g_lr"] == 1e-4
