"""SIGKILL at an arbitrary moment, restart with the same command: bitwise the same state."""

import os
import signal
import subprocess
import time

import jax
import numpy as np

import tiny_biggan_config
from conftest import PYTHON, REPO, subprocess_env
from gan.train import trainer
from gan.train.checkpointing import Checkpointer


def test_biggan_killed_and_restarted_equals_uninterrupted(tmp_path):
  expected = trainer.train(tiny_biggan_config.get_config(), str(tmp_path / "uninterrupted"))

  workdir = tmp_path / "killed"
  command = [PYTHON, "-m", "gan.main", "--config=tests/tiny_biggan_config.py",
             f"--workdir={workdir}"]
  proc = subprocess.Popen(command, env=subprocess_env(1), cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not (workdir / "checkpoints" / "2").exists():  # killed while training on after it
    assert proc.poll() is None and time.time() < deadline, "the run ended before the kill"
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert not (workdir / "checkpoints" / "6").exists()

  subprocess.run(command, env=subprocess_env(1), cwd=REPO, check=True, capture_output=True,
                 timeout=300)
  restored = Checkpointer(str(workdir), 3).restore(6, expected)
  names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(expected)[0]]
  for name, a, b in zip(names, jax.tree.leaves(expected), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
