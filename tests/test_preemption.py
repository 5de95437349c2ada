"""SIGTERM during training: checkpoint at the next step boundary, clean exit, resumable."""

import os
import re
import signal
import socket
import subprocess
import time

import tiny_progan_config
from conftest import BATCH, PYTHON, REPO, subprocess_env
from gan.families.progan import step as progan_step
from gan.train.checkpointing import Checkpointer
from gan.growth.schedule import Schedule
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


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_sigterm_to_one_of_two_processes_stops_both_at_the_same_step(tmp_path):
  """Only process 1 is signalled; both stop after the same step, checkpoint it and exit 0."""
  workdir, port = tmp_path / "run", free_port()
  # Checks every log step (2): the stop step is even. 1000 steps unless stopped.
  command = [PYTHON, "-m", "gan.main", "--config=tests/tiny_progan_config.py",
             f"--workdir={workdir}", f"--coordinator_address=127.0.0.1:{port}",
             "--num_processes=2", "--config.log_every_steps=2",
             f"--config.schedule.total_images={1000 * BATCH}",
             "--config.checkpoint_every_steps=1000", "--config.sample_every_steps=1000"]
  procs = [subprocess.Popen(command + [f"--process_id={i}"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=subprocess_env(1),
                            cwd=REPO) for i in range(2)]
  lines = []
  deadline = time.time() + 300
  for line in procs[0].stdout:  # Once process 0 has logged step 6 (at 8x8), signal process 1.
    lines.append(line)
    if re.search(r"\] \[6\] .*d_loss=", line):
      procs[1].send_signal(signal.SIGTERM)
      break
    assert time.time() < deadline and procs[1].poll() is None, "".join(lines[-30:])
  logs = ["".join(lines) + procs[0].communicate(timeout=120)[0], procs[1].communicate(timeout=120)[0]]
  for i, (proc, log) in enumerate(zip(procs, logs)):
    assert proc.returncode == 0, f"process {i}:\n{log[-3000:]}"
  stops = [re.search(r"Stopping on signal 15 after step (\d+);", log) for log in logs]
  assert all(stops), logs[0][-3000:] + logs[1][-3000:]
  stopped = int(stops[0].group(1))
  assert stopped == int(stops[1].group(1)) and stopped % 2 == 0 and 6 <= stopped < 1000
  assert "Process(es) [1] received SIGTERM" in logs[0]
  # The collective checkpoint of that step is complete: restore it in this process.
  config = tiny_progan_config.get_config()
  schedule = Schedule.from_config(config)
  gan = progan_step.build_progan(config)
  target = progan_step.init_state(gan, config.seed, schedule.phases[0])
  restored, step = Checkpointer(str(workdir), 3).restore_latest(target)
  assert step == stopped and int(restored.step) == stopped
  assert int(restored.images_shown) == stopped * BATCH
