"""A real full file system under a running gan.main (a small tmpfs, where mounting is allowed).

What must happen: one clear line per failed checkpoint save, one per kind of
output that could not be written, training to the end, the documented final
error, no temporary folders left, a clean error at start-up while the disk is
still full, and once space is freed the same command resumes and finishes as
if nothing had happened.
"""

import contextlib
import errno
import os
import pathlib
import re
import subprocess
import tempfile
import time

import pytest

import tiny_biggan_config
from conftest import PYTHON, REPO, subprocess_env, train
from gan.train.checkpointing import Checkpointer
from test_command_line import error_line
from test_exact_resume import assert_bitwise_equal, saved_steps

NUM_STEPS = 16


@contextlib.contextmanager
def small_file_system(megabytes: int):
  """A fresh tmpfs of ``megabytes`` (root only); skips the test where mounting is refused."""
  directory = tempfile.mkdtemp(prefix="gan-small-fs-")
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", directory],
                          capture_output=True, text=True, check=False)
  if result.returncode:
    os.rmdir(directory)
    pytest.skip(f"cannot mount a small file system here ({result.stderr.strip()}); the "
                "unwritable-directory test in test_exact_resume.py covers failed writes")
  try:
    yield directory
  finally:
    subprocess.run(["umount", "-l", directory], check=False)
    os.rmdir(directory)


def fill(directory: str) -> str:
  """Writes a file until the file system is full; returns its path."""
  path = os.path.join(directory, "filler")
  with open(path, "wb") as f:
    try:
      while True:
        f.write(b"\0" * (1 << 20))
        f.flush()
    except OSError as e:
      assert e.errno == errno.ENOSPC, e
  return path


def command(workdir) -> list[str]:
  return [PYTHON, "-m", "gan.main", "--config=tests/tiny_biggan_config.py", f"--workdir={workdir}",
          f"--config.train.num_steps={NUM_STEPS}", "--config.sample_every_steps=2"]


def test_a_full_disk_loses_nothing_and_says_so_in_one_line_per_fault(tmp_path):
  config = tiny_biggan_config.get_config()
  config.train.num_steps, config.sample_every_steps = NUM_STEPS, 2
  expected = train(config, tmp_path / "uninterrupted")
  with small_file_system(40) as mount:
    workdir = os.path.join(mount, "run")
    proc = subprocess.Popen(command(workdir), env=subprocess_env(1), cwd=REPO, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not os.path.isdir(os.path.join(workdir, "checkpoints", "2")):
      assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:]
      time.sleep(0.01)
    filler = fill(mount)
    log = proc.communicate(timeout=300)[1]
    assert proc.returncode == 1, log[-3000:]
    for noise in ("Traceback", "Event loop is closed", "Task exception was never retrieved"):
      assert noise not in log, log[-3000:]
    latest = saved_steps(pathlib.Path(workdir))[-1]
    assert 2 <= latest < NUM_STEPS
    for step in range(latest + 2, NUM_STEPS + 1, 2):  # one line per failed save, each once
      lines = re.findall(rf"Checkpoint step {step} in .*: checkpoint not written \(No space "
                         rf"left on device \(ENOSPC\)\); the previous checkpoint {latest} is "
                         r"intact; training continues", log)
      assert len(lines) == 1, (step, log[-3000:])
    kinds = {kind: log.count(f"Could not write {kind} to") for kind in
             ("sample grids", "TensorBoard events", "compiles.json")}
    assert kinds["sample grids"] == 1 and max(kinds.values()) == 1, kinds  # each kind once
    assert log.count("Could not write") == sum(kinds.values()), log[-3000:]
    assert (f"error: The checkpoint of step {NUM_STEPS} could not be written" in log
            and f"the latest on disk is {latest}" in log), log[-3000:]
    assert not [n for n in os.listdir(os.path.join(workdir, "checkpoints")) if "tmp" in n]
    # Restarted on the still-full disk: a clean error before anything compiles.
    still_full = subprocess.run(command(workdir), env=subprocess_env(1), cwd=REPO, text=True,
                                capture_output=True, timeout=300)
    line = error_line(still_full)
    assert f"cannot write to --workdir={workdir}: No space left on device" in line, line
    os.remove(filler)  # space again: the same command resumes and finishes
    resumed = subprocess.run(command(workdir), env=subprocess_env(1), cwd=REPO, text=True,
                             capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resumed at step {latest}, " in resumed.stderr
    assert_bitwise_equal(Checkpointer(workdir, 3).restore(NUM_STEPS, expected), expected)
