"""Two processes x two CPU devices, connected with jax.distributed: launch/local.sh end to end.

Runs the real entry point (python -m gan.main) through the launcher, so it
covers jax.distributed initialisation, the 4-device global mesh assembled from
per-process batches, process-0-only samples/events and collective orbax
checkpoints. Takes a minute or two on 2 CPU cores (both processes import
TensorFlow and compile the train step).
"""

import glob
import os
import re
import subprocess
import sys
import time

from conftest import REPO

LAUNCHER = os.path.join(REPO, "launch", "local.sh")
TINY_FLAGS = [
    "--config.train.num_steps=2",
    "--config.model.ch=8",
    "--config.model.z_dim=16",
    "--config.model.shared_dim=8",
    "--config.data.num_examples=200",
    "--config.train.batch_size=8",
    "--config.log_every_steps=1",
    "--config.sample_every_steps=2",
    "--config.checkpoint_every_steps=2",
    "--config.sample.per_class=2",
    "--config.sample.num_classes_shown=2",
]
TIMEOUT_S = 600


def _launcher_env() -> dict:
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)  # local.sh sets the device count from DEVICES_PER_PROCESS.
  env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", DEVICES_PER_PROCESS="2",
             PYTHON=sys.executable,
             PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return env


def _run_launcher(args: list[str]) -> tuple[int, str]:
  proc = subprocess.Popen(["bash", LAUNCHER, *args], cwd=REPO, env=_launcher_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    out, _ = proc.communicate(timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    proc.terminate()  # local.sh's TERM trap stops its processes.
    out, _ = proc.communicate(timeout=30)
    raise AssertionError(f"local.sh did not finish in {TIMEOUT_S} s; output:\n{out}")
  return proc.returncode, out


def test_two_processes_four_devices(tmp_path):
  workdir = tmp_path / "run"
  start = time.perf_counter()
  rc, out = _run_launcher(["2", "configs/quickstart.py", str(workdir), *TINY_FLAGS])
  print(f"\nlaunch/local.sh with 2 processes x 2 CPU devices took "
        f"{time.perf_counter() - start:.1f} s")
  assert rc == 0, out

  for i in range(2):
    pattern = rf"^\[p{i}\] .*Process {i}/2, 2 local / 4 global devices: cpu"
    assert re.search(pattern, out, re.MULTILINE), f"no '{pattern}' in:\n{out}"

  assert (workdir / "checkpoints" / "2").is_dir(), sorted(os.listdir(workdir))
  assert (workdir / "samples" / "step_00000002.png").is_file()
  assert glob.glob(str(workdir / "events.out.tfevents.*")), sorted(os.listdir(workdir))
