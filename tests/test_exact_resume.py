"""SIGKILL at an arbitrary moment, restart with the same command: bitwise the same state.

Also: a run continued on another number of devices (8 -> 4 -> 1) re-shards
its state and matches the uninterrupted run up to float summation order.
"""

import contextlib
import os
import re
import signal
import subprocess
import time

import jax
import numpy as np
import pytest

import tiny_biggan_config
import tiny_progan_config
from conftest import PYTHON, REPO, subprocess_env, train
from gan.train.checkpointing import Checkpointer


def leaves_by_name(tree) -> dict:
  return {jax.tree_util.keystr(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def assert_bitwise_equal(got, want) -> None:
  got, want = leaves_by_name(got), leaves_by_name(want)
  assert got.keys() == want.keys()
  for name in want:
    assert got[name].dtype == want[name].dtype, name
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def saved_steps(workdir) -> list[int]:
  directory = workdir / "checkpoints"
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit()) if directory.exists() else []


def kill_after_checkpoint(command: list[str], workdir, step: int) -> None:
  """Starts ``command`` and SIGKILLs it as soon as checkpoint ``step`` is complete."""
  proc = subprocess.Popen(command, env=subprocess_env(1), cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not (workdir / "checkpoints" / str(step)).exists():  # orbax renames when complete
    assert proc.poll() is None and time.time() < deadline, "the run ended before the kill"
    time.sleep(0.01)
  assert proc.poll() is None, "the run ended before the kill"
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()


def main_command(config_file: str, workdir, *overrides) -> list[str]:
  return [PYTHON, "-m", "gan.main", f"--config=tests/{config_file}", f"--workdir={workdir}",
          *overrides]


def run_main(command: list[str], num_devices: int = 1) -> str:
  result = subprocess.run(command, env=subprocess_env(num_devices), cwd=REPO, text=True,
                          capture_output=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stderr


def test_biggan_killed_and_restarted_equals_uninterrupted(tmp_path):
  expected = train(tiny_biggan_config.get_config(), tmp_path / "uninterrupted")
  workdir = tmp_path / "killed"
  command = main_command("tiny_biggan_config.py", workdir)
  kill_after_checkpoint(command, workdir, 2)  # killed while training on after it
  latest = saved_steps(workdir)[-1]
  assert 2 <= latest < 6, saved_steps(workdir)
  stray = workdir / "checkpoints" / "999999"  # a higher-numbered folder holding garbage
  stray.mkdir()
  (stray / "garbage").write_bytes(os.urandom(100))
  log = run_main(command)
  assert re.search(r"Checkpoint step 999999 in .* could not be restored .*; moved it to "
                   r".*/checkpoints/corrupt/999999", log), log[-3000:]
  assert f"Resumed at step {latest}, " in log, log[-3000:]
  # The cadence goes on after the stray folder (every 2 steps), which no longer counts.
  assert saved_steps(workdir) == list(range(2, 7, 2))[-3:], saved_steps(workdir)
  assert os.listdir(workdir / "checkpoints" / "corrupt") == ["999999"]
  assert "step_00000006.png" in os.listdir(workdir / "samples")  # the restart logs and samples on
  assert_bitwise_equal(Checkpointer(str(workdir), 3).restore(6, expected), expected)


@pytest.fixture(scope="module")
def progan_uninterrupted(tmp_path_factory):
  """The long-fade tiny ProGAN trained in one go: its final state."""
  workdir = tmp_path_factory.mktemp("progan") / "uninterrupted"
  return train(tiny_progan_config.get_config(), workdir)


def test_progan_killed_mid_fade_and_restarted_equals_uninterrupted(tmp_path,
                                                                   progan_uninterrupted):
  total = tiny_progan_config.TOTAL_STEPS
  workdir = tmp_path / "killed"
  command = main_command("tiny_progan_config.py", workdir)
  kill_after_checkpoint(command, workdir, 8)  # 4 steps into the fade, alpha 1/6
  latest = saved_steps(workdir)[-1]
  assert 8 <= latest < total, saved_steps(workdir)
  log = run_main(command)
  resumed = re.search(rf"Resumed at step {latest}, (\d+) images shown, from .*: phase 1 "
                      r"\(8x8 fade\), alpha (0\.\d+)", log)
  assert resumed, log[-3000:]
  assert 0 < float(resumed.group(2)) < 1
  assert re.search(r"step \d+/28 .* \| phase 2/2 8x8 fade \d+% ETA ", log), log[-3000:]
  assert_bitwise_equal(Checkpointer(str(workdir), 3).restore(total, progan_uninterrupted),
                       progan_uninterrupted)


# The relative L2 distance of each group of leaves (G, D, EMA, each optimiser
# moment), chain 8 -> 4 -> 1 devices vs 1 device throughout, measured on this
# project's CI machine type over seeds 0-5: at most 1.1e-5 (summation order
# only; with Adam eps 1, see tiny_progan_config). A restart that loses the RNG
# (seed 1 after step 8) gives 0.29. The bound sits ~100x above the first and
# ~300x below the second. Per leaf the spread is no basis: a bias whose norm is
# 4e-7 differs by 1.2e-3 of itself from rounding alone.
GROUP_L2_BOUND = 1e-3


def group_relative_l2(got: dict, want: dict) -> dict[str, float]:
  """{'g_params': relative L2 over all its leaves, 'g_opt_state.mu': ..., ...}."""
  sums = {}
  for name, w in want.items():
    top = name.split("[")[0].lstrip(".")
    group = top + next((m for m in (".mu", ".nu") if m in name), "")
    diff, norm = sums.get(group, (0.0, 0.0))
    sums[group] = (diff + float(np.sum((got[name].astype(np.float64) - w) ** 2)),
                   norm + float(np.sum(w.astype(np.float64) ** 2)))
  return {g: (d / max(n, 1e-30)) ** 0.5 for g, (d, n) in sums.items()}


def test_progan_continues_on_8_then_4_then_1_devices(tmp_path, progan_uninterrupted):
  """Each restart restores a checkpoint written on another device count.

  The restore itself is exact: its checksums (computed on the writing mesh)
  are verified on the reading mesh. Training on goes on with other summation
  orders, so the end state is compared to the 1-device run with a measured bound.
  """
  total = tiny_progan_config.TOTAL_STEPS
  workdir = tmp_path / "resharded"
  for devices, stop in [(8, 8), (4, 16), (1, 0)]:  # max_steps 0: to the end
    log = run_main(main_command("tiny_progan_config.py", workdir,
                                f"--config.train.max_steps={stop}"), devices)
    assert f"{devices} local / {devices} global devices" in log
    assert "no checksum record" not in log and "could not be restored" not in log, log[-3000:]
    if devices != 8:
      assert re.search(rf"Resumed at step {8 if devices == 4 else 16}, ", log), log[-3000:]
  assert saved_steps(workdir)[-1] == total
  assert_equal_up_to_rounding(Checkpointer(str(workdir), 3).restore(total, progan_uninterrupted),
                              progan_uninterrupted)


def assert_equal_up_to_rounding(got_state, want_state) -> None:
  """Integer leaves (step, images shown, phase, counters) exactly, float ones per group
  within GROUP_L2_BOUND: what summation order or another CPU's codegen can change."""
  got, want = leaves_by_name(got_state), leaves_by_name(want_state)
  assert got.keys() == want.keys()
  floats = {}
  for name, w in want.items():
    g = got[name]
    assert g.dtype == w.dtype and g.shape == w.shape, name
    if np.issubdtype(w.dtype, np.floating):
      floats[name] = w
    else:
      np.testing.assert_array_equal(g, w, err_msg=name)
  distances = group_relative_l2(got, floats)
  print("relative L2 per group:", sorted(distances.items(), key=lambda kv: -kv[1]))
  assert max(distances.values()) < GROUP_L2_BOUND, distances


def set_writable(directory, writable: bool) -> None:
  """chattr -i/+i as root (root ignores permission bits), chmod otherwise."""
  if os.geteuid() == 0:
    subprocess.run(["chattr", "-i" if writable else "+i", str(directory)], check=True,
                   capture_output=True)
  else:
    directory.chmod(0o755 if writable else 0o555)


def make_unwritable(directory) -> str | None:
  """Makes ``directory`` refuse new entries; None, or why that is impossible here."""
  try:
    set_writable(directory, False)
    (directory / "probe").touch()
  except PermissionError:
    return None  # refused, as wanted
  except (OSError, subprocess.CalledProcessError) as e:  # e.g. no chattr, or not supported
    why_not = f"chattr/chmod failed: {e}"
  else:
    (directory / "probe").unlink()
    why_not = "chattr/chmod had no effect on this file system"
  with contextlib.suppress(OSError, subprocess.CalledProcessError):
    set_writable(directory, True)
  return why_not


def file_bytes(directory) -> dict:
  return {str(p.relative_to(directory)): p.read_bytes()
          for p in sorted(directory.rglob("*")) if p.is_file()}


def test_unwritable_checkpoint_directory_keeps_the_last_checkpoint_and_stops_cleanly(
    tmp_path, progan_uninterrupted):
  """A real write failure (not a mock): later saves fail, checkpoint 4 stays intact."""
  total = tiny_progan_config.TOTAL_STEPS
  workdir = tmp_path / "run"
  checkpoints = workdir / "checkpoints"
  command = main_command("tiny_progan_config.py", workdir)
  proc = subprocess.Popen(command, env=subprocess_env(1), cwd=REPO, text=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + 300
  while not (checkpoints / "4").exists():  # then compiling the fade's step for seconds
    assert proc.poll() is None and time.time() < deadline, "the run ended too early"
    time.sleep(0.01)
  before = file_bytes(checkpoints / "4")
  why_not = make_unwritable(checkpoints)
  if why_not:
    proc.kill()
    proc.wait()
    pytest.skip(f"cannot make a directory unwritable here: {why_not}")
  try:
    log = proc.communicate(timeout=300)[1]
  finally:
    set_writable(checkpoints, True)
  assert proc.returncode == 1, log[-3000:]  # trained to the end, then said the last save failed
  assert re.search(r"Checkpoint step 8 in .*: checkpoint not written \(.*\); the previous "
                   r"checkpoint 4 is intact; training continues", log), log[-3000:]
  assert (f"error: The checkpoint of step {total} could not be written" in log
          and "the latest on disk is 4" in log), log[-3000:]
  assert saved_steps(workdir) == [4]
  assert file_bytes(checkpoints / "4") == before
  run_main(command)  # writable again: resumes from 4 and finishes as if never disturbed
  assert_bitwise_equal(Checkpointer(str(workdir), 3).restore(total, progan_uninterrupted),
                       progan_uninterrupted)
