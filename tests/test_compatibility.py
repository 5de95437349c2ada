"""Workdirs written before the families/one-loop restructure still resume, exactly.

tests/fixtures/pre_restructure/ holds the workdirs (config.json and the last
checkpoint) of the tiny BigGAN (6 steps) and the tiny ProGAN (10 steps, in its
fade to 8x8) as commit c020661 wrote them, before gan/train/trainer.py and
progan_trainer.py became one loop over gan/families/. The same command, with
more steps, resumes each from its checkpoint (whose checksums are verified on
restore) and must end bitwise equal to an uninterrupted run of the current
code: the restructure changed neither a checkpoint's layout nor a number.
"""

import os
import shutil
import subprocess

import pytest

import tiny_biggan_config
import tiny_progan_config
from conftest import PYTHON, REPO, subprocess_env, train
from gan.train.checkpointing import Checkpointer
from test_exact_resume import assert_bitwise_equal, saved_steps

FIXTURES = os.path.join(REPO, "tests", "fixtures", "pre_restructure")


@pytest.mark.parametrize("family, config_module, saved_at, overrides, end", [
    ("biggan", tiny_biggan_config, 6, {"train.num_steps": 8}, 8),
    ("progan", tiny_progan_config, 10, {"train.max_steps": 14}, 14),
])
def test_an_old_workdir_resumes_and_matches_a_run_of_the_current_code(
    tmp_path, family, config_module, saved_at, overrides, end):
  workdir = tmp_path / "old"
  shutil.copytree(os.path.join(FIXTURES, family), workdir)
  assert saved_steps(workdir) == [saved_at]
  flags = [f"--config.{path}={value}" for path, value in overrides.items()]
  # The fixture was written with keep_checkpoints=1 (a setting that may change freely).
  result = subprocess.run(
      [PYTHON, "-m", "gan.main", f"--config=tests/{config_module.__name__}.py",
       f"--workdir={workdir}", "--config.keep_checkpoints=1", *flags],
      env=subprocess_env(1), cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"Resumed at step {saved_at}, " in result.stderr, result.stderr[-3000:]
  assert "could not be restored" not in result.stderr
  assert "no checksum record" not in result.stderr  # c020661 already wrote checksums

  config = config_module.get_config()
  for path, value in overrides.items():
    section, key = path.split(".")
    config[section][key] = value
  expected = train(config, tmp_path / "current")
  assert_bitwise_equal(Checkpointer(str(workdir), 1).restore(end, expected), expected)
