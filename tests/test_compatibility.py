"""Workdirs written by older versions still resume.

tests/fixtures/pre_restructure/ holds the workdirs (config.json and the last
checkpoint) of the tiny BigGAN (6 steps) and the tiny ProGAN (10 steps, in its
fade to 8x8) as commit c020661 wrote them, before gan/train/trainer.py and
progan_trainer.py became one loop over gan/families/. The same command, with
more steps, resumes each from its checkpoint (whose checksums are verified on
restore).

ProGAN must end equal to an uninterrupted run of the current code: no change since
touched a ProGAN number. Equal up to rounding, not bitwise: the fixture's first 10
steps ran on the CPU that wrote it, and XLA:CPU's code (vector width, fused
multiply-adds) depends on the CPU, so on another machine type the state at step 10
already differs in the last bits (seen: an AMD EPYC against the fixture's machine, at
most 6.3e-7 relative per element and 1.8e-7 relative L2 per group at step 14).
Integer leaves are compared exactly, float groups within
test_exact_resume.GROUP_L2_BOUND (1e-3, the bound for summation order; a changed
formula moves them by far more).

BigGAN's training changed on purpose in
issue 13 (parity with BigGAN-PyTorch: PyTorch-style bias init, the D embedding's
spectral-norm u in class space, F.normalize's eps, the EMA start counted from
update 1), so its old checkpoint restores through the layout upgrade
(gan/families/biggan/upgrades.py), checked here against the formula, and goes on.
"""

import os
import shutil
import subprocess

import jax
import numpy as np
import pytest

import tiny_biggan_config
import tiny_progan_config
from conftest import PYTHON, REPO, subprocess_env, train
from gan.train.checkpointing import Checkpointer
from test_exact_resume import assert_bitwise_equal, assert_equal_up_to_rounding, saved_steps

FIXTURES = os.path.join(REPO, "tests", "fixtures", "pre_restructure")


def _resume(tmp_path, family, config_module, saved_at, overrides):
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
  return workdir, result.stderr


def test_an_old_biggan_checkpoint_converts_its_embedding_u_by_the_formula():
  from gan.families.biggan import upgrades
  from gan.families.biggan.state import build_gan, init_state
  config = tiny_biggan_config.get_config()
  target = init_state(build_gan(config), config.seed)
  upgrade = upgrades.feature_space_embed_u()
  checkpointer = Checkpointer(os.path.join(FIXTURES, "biggan"), 1, read_only=True,
                              upgrades=[upgrade])
  old = checkpointer.restore(6, upgrade.old_target(target))  # as stored, no conversion
  new = checkpointer.restore(6, target)
  table = np.asarray(old.d_params["embed"]["embedding"], np.float64)
  u_old = np.asarray(old.d_vars["spectral"]["embed"]["u"], np.float64)
  assert u_old.shape == (table.shape[1],) and table.shape[0] == config.data.num_classes
  expected = table @ u_old / np.linalg.norm(table @ u_old)
  np.testing.assert_allclose(new.d_vars["spectral"]["embed"]["u"], expected, rtol=1e-5,
                             atol=1e-6)
  # Everything else comes back exactly as stored.
  strip = lambda s: upgrades._with_embed_u(s, np.zeros(()))
  assert_bitwise_equal(strip(new), strip(old))


def test_an_old_biggan_workdir_resumes_through_the_upgrade(tmp_path):
  workdir, stderr = _resume(tmp_path, "biggan", tiny_biggan_config, 6, {"train.num_steps": 8})
  assert "converted on restore" in stderr, stderr[-3000:]
  assert saved_steps(workdir) == [8]
  from gan.families.biggan.state import build_gan, init_state
  config = tiny_biggan_config.get_config()
  target = init_state(build_gan(config), config.seed)
  state = Checkpointer(str(workdir), 1).restore(8, target)  # the new layout, no upgrade
  assert int(state.step) == 8
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state)
             if np.issubdtype(np.asarray(x).dtype, np.floating))


@pytest.mark.parametrize("family, config_module, saved_at, overrides, end", [
    ("progan", tiny_progan_config, 10, {"train.max_steps": 14}, 14),
])
def test_an_old_workdir_resumes_and_matches_a_run_of_the_current_code(
    tmp_path, family, config_module, saved_at, overrides, end):
  workdir, _ = _resume(tmp_path, family, config_module, saved_at, overrides)
  config = config_module.get_config()
  for path, value in overrides.items():
    section, key = path.split(".")
    config[section][key] = value
  expected = train(config, tmp_path / "current")
  assert_equal_up_to_rounding(Checkpointer(str(workdir), 1).restore(end, expected), expected)
