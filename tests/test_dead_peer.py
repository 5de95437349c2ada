"""One of two jax.distributed processes dies: the survivor says so in one line.

The processes are real ``python -m gan.main`` runs on localhost, each under
gan.supervise's parent. One of them is killed with SIGKILL mid-training (its
parent, as a scheduler or a user would; the training child dies with it). The
survivor must stop within seconds with one ``error:`` line naming the dead
process, the last checkpoint and the command to resume, and nothing else of
the failure: no Gloo traceback, no fatal log, no thread dump. The same
commands then resume the run.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from conftest import BATCH, PYTHON, REPO, subprocess_env
from test_exact_resume import saved_steps
from test_preemption import free_port


def children_of(pid: int) -> list[int]:
  """The child processes of ``pid`` (Linux /proc), waiting up to 10 s for one to show."""
  deadline = time.time() + 10
  while True:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
      try:
        with open(f"/proc/{entry}/stat") as f:
          if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
      except (OSError, IndexError, ValueError):  # a process that just ended
        pass
    if found or time.time() > deadline:
      return found
    time.sleep(0.1)


def start(workdir, port: int, extra=()) -> list[subprocess.Popen]:
  command = [PYTHON, "-m", "gan.main", "--config=tests/tiny_progan_config.py",
             f"--workdir={workdir}", f"--coordinator_address=127.0.0.1:{port}",
             "--num_processes=2", "--config.log_every_steps=2", "--config.checkpoint_every_steps=4",
             f"--config.schedule.total_images={1000 * BATCH}", "--config.sample_every_steps=1000",
             *extra]
  return [subprocess.Popen(command + [f"--process_id={i}"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=subprocess_env(1), cwd=REPO)
          for i in range(2)]


@pytest.mark.parametrize("victim", [1, 0], ids=["process_1_dies", "the_coordinator_dies"])
def test_a_dead_peer_is_named_in_one_line_with_the_way_to_resume(tmp_path, victim):
  workdir = tmp_path / "run"
  procs = start(workdir, free_port())
  survivor = 1 - victim
  lines, deadline = [], time.time() + 300
  for line in procs[survivor].stdout:  # once step 6 is logged and checkpoint 4 is on disk
    lines.append(line)
    if re.search(r"\] \[6\] .*d_loss=", line):
      break
    assert time.time() < deadline and procs[victim].poll() is None, "".join(lines[-30:])
  while not (workdir / "checkpoints" / "4").is_dir():  # the coordinator commits it, async
    assert time.time() < deadline and procs[victim].poll() is None, "".join(lines[-30:])
    time.sleep(0.05)
  training_children = children_of(procs[victim].pid)
  assert training_children, "the victim runs its training in a child process"
  procs[victim].send_signal(signal.SIGKILL)
  killed_at = time.time()
  out = "".join(lines) + procs[survivor].communicate(timeout=120)[0]
  seconds = time.time() - killed_at
  procs[victim].wait()
  assert procs[survivor].returncode == 1, out[-3000:]
  for noise in ("Traceback", "Fatal Python error", "external/gloo", "Check failure",
                "coordination_service", "Terminating process"):
    assert noise not in out, out[-3000:]
  errors = [line for line in out.splitlines() if line.startswith("error:")]
  assert len(errors) == 1, out[-3000:]
  latest = saved_steps(workdir)[-1]
  dead = "process 0 (the coordinator)" if victim == 0 else "process 1"
  assert errors[0].startswith(f"error: {dead} of 2 stopped"), errors[0]
  assert f"the last checkpoint is step {latest} in {workdir / 'checkpoints'}" in errors[0]
  assert errors[0].endswith(f"--process_id={survivor}") and "python -m gan.main" in errors[0]
  print(f"survivor reported in {seconds:.1f} s: {errors[0]}")
  time.sleep(0.5)
  assert not [pid for pid in training_children if os.path.exists(f"/proc/{pid}")], \
      "the killed process's training child outlived it"
  if victim == 0:
    return
  # The commands the message names resume the run from that checkpoint.
  resumed = start(workdir, free_port(), [f"--config.train.max_steps={latest + 2}"])
  logs = [proc.communicate(timeout=300)[0] for proc in resumed]
  for proc, log in zip(resumed, logs):
    assert proc.returncode == 0, log[-3000:]
    assert f"Resumed at step {latest}, " in log, log[-3000:]
