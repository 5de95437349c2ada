"""SIGTERM during training: checkpoint at the next step boundary, clean exit, resumable."""

import os
import re
import signal
import subprocess
import time

from conftest import PYTHON, REPO, subprocess_env
from test_main import TINY


def test_sigterm_checkpoints_at_the_next_step_and_exits_cleanly(tmp_path):
  workdir = tmp_path / "run"
  # checkpoint_every_steps=1000: any checkpoint present was written because of the signal.
  args = [PYTHON, "-m", "gan.main", f"--workdir={workdir}", *TINY,
          "--config.train.num_steps=1000", "--config.log_every_steps=1",
          "--config.checkpoint_every_steps=1000", "--config.sample_every_steps=1000"]
  proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=subprocess_env(1), cwd=REPO)
  lines = []
  deadline = time.time() + 300
  for line in proc.stdout:  # Wait until two steps have completed, then signal.
    lines.append(line)
    if re.search(r"\] \[2\] d_fake=", line):
      proc.send_signal(signal.SIGTERM)
      break
    assert time.time() < deadline, "".join(lines[-30:])
  out, _ = proc.communicate(timeout=120)
  log = "".join(lines) + out
  assert proc.returncode == 0, log[-3000:]
  match = re.search(r"Stopping on signal 15 after step (\d+); checkpoint \1 written", log)
  assert match, log[-3000:]
  stopped = int(match.group(1))
  assert 2 <= stopped < 1000
  assert sorted(os.listdir(workdir / "checkpoints")) == [str(stopped)]
