"""Two processes x two CPU devices, connected with jax.distributed: launch/local.sh end to end.

Runs the real entry point (python -m gan.main) through the launcher, so it
covers jax.distributed initialisation, the 4-device global mesh assembled from
per-process batches, process-0-only samples/events and collective orbax
checkpoints. Takes a minute or two on 2 CPU cores (both processes import
TensorFlow and compile the train step).
"""

import glob
import json
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
EVAL_FLAGS = [  # evaluated at the end, in both processes: extraction is a collective
    "--config.eval.at_end=true",
    "--config.eval.metrics=swd,shapes10_fid,class_accuracy",
    "--config.eval.num_samples=40",
    "--config.eval.batch_size=8",
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
  rc, out = _run_launcher(["2", "configs/quickstart.py", str(workdir), *TINY_FLAGS,
                           *EVAL_FLAGS, f"--config.eval.stats_dir={tmp_path / 'stats2'}"])
  print(f"\nlaunch/local.sh with 2 processes x 2 CPU devices took "
        f"{time.perf_counter() - start:.1f} s")
  assert rc == 0, out

  for i in range(2):
    pattern = rf"^\[p{i}\] .*Process {i}/2, 2 local / 4 global devices: cpu"
    assert re.search(pattern, out, re.MULTILINE), f"no '{pattern}' in:\n{out}"

  assert (workdir / "checkpoints" / "2").is_dir(), sorted(os.listdir(workdir))
  assert (workdir / "samples" / "step_00000002.png").is_file()
  assert glob.glob(str(workdir / "events.out.tfevents.*")), sorted(os.listdir(workdir))

  # The same checkpoint evaluated by one process on one device, its reference statistics
  # computed anew: the same figures as the two processes' evaluation at the end.
  env = _launcher_env()
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
  single = subprocess.run(
      [sys.executable, "-m", "gan.evaluate", f"--workdir={workdir}", "--step=2",
       f"--stats_dir={tmp_path / 'stats1'}"], cwd=REPO, env=env, capture_output=True,
      text=True, timeout=TIMEOUT_S)
  assert single.returncode == 0, single.stderr[-3000:]
  two = json.loads((workdir / "eval" / "step_00000002.json").read_text())["figures"]
  one = json.loads((workdir / "eval" / "step_00000002_n40.json").read_text())["figures"]
  assert set(two) == set(one) == {"swd_32", "swd_16", "swd", "shapes10_fid", "class_accuracy"}
  for name, value in one.items():
    assert abs(two[name] - value) <= 1e-4 * abs(value) + 1e-9, (name, two[name], value)
  assert list((tmp_path / "stats1").glob("*.npz")) and list((tmp_path / "stats2").glob("*.npz"))
