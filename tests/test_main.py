"""The quickstart main job end to end in a subprocess: samples, checkpoints, TensorBoard scalars."""

import glob
import json
import os
import re
import subprocess

import numpy as np
from PIL import Image

from conftest import PYTHON, REPO, subprocess_env

TINY = ["--config=configs/quickstart.py", "--config.model.ch=8", "--config.model.z_dim=16",
        "--config.model.shared_dim=8", "--config.data.num_examples=200",
        "--config.train.batch_size=8", "--config.log_every_steps=2",
        "--config.sample_every_steps=2", "--config.checkpoint_every_steps=2",
        "--config.sample.per_class=3", "--config.sample.num_classes_shown=4",
        "--config.eval.num_samples=40", "--config.eval.batch_size=8"]


def run_main(workdir, num_steps):
  result = subprocess.run(
      [PYTHON, "-m", "gan.main", f"--workdir={workdir}", *TINY,
       f"--config.train.num_steps={num_steps}"],
      capture_output=True, text=True, env=subprocess_env(1), cwd=REPO, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stderr


def scalar_tags(workdir):
  from tensorboard.backend.event_processing import event_accumulator

  (path,) = glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
  acc = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
  acc.Reload()
  return {tag: [e.step for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


def test_quickstart_runs_end_to_end(tmp_path):
  workdir = tmp_path / "run"
  log = run_main(workdir, 4)
  # The first lines say what will happen; every log step says where the run is.
  assert "Training biggan: BigGAN 32x32, ch 8" in log and "Steps 0 -> 4 on 1 cpu device" in log
  assert re.search(r"Checkpoints every 2 steps .* in .*/checkpoints, keeping 3; sample grids "
                   r"every 2 steps in .*/samples", log), log[-3000:]
  assert re.search(r"step 2/4 \(50\.0%\) \| 16 images \| [\d.]+ img/s \| elapsed \d+s \| ETA ",
                   log), log[-3000:]
  assert re.search(r"step 4/4 \(100(\.0)?%\) \| 32 images .* ETA 0s", log), log[-3000:]

  samples = sorted(os.listdir(workdir / "samples"))
  assert samples == ["step_00000000.png", "step_00000002.png", "step_00000004.png"]
  grid = np.asarray(Image.open(workdir / "samples" / "step_00000004.png"))
  # 4 rows x 3 columns of 32x32 samples upscaled to 64x64 cells with 2-pixel borders, a caption
  # strip on top and the class names in a left margin (layout: tests/test_images.py).
  height, width = 4 * 66 + 2, 3 * 66 + 2
  assert height < grid.shape[0] <= height + 40 and width < grid.shape[1] <= width + 120, grid.shape
  assert grid.std() > 0
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
  tags = scalar_tags(workdir)
  for tag in ("d_loss_real", "d_loss_fake", "g_loss", "d_real", "d_fake", "d_grad_norm",
              "g_grad_norm", "steps_per_sec", "images_per_sec", "samples_ema", "progress",
              "elapsed_seconds", "eta_seconds", "images_shown"):
    assert tag in tags, tag
  assert tags["g_loss"] == [2, 4]
  assert (workdir / "config.json").exists()
  # The quickstart evaluates itself at the end (configs/quickstart.py: eval.at_end).
  assert re.search(r"Evaluation at step 4: swd_32 [\d.]+, swd_16 [\d.]+, swd [\d.]+, "
                   r"shapes10_fid [\d.]+, class_accuracy [\d.]+ \(40 samples", log), log[-3000:]
  record = json.loads((workdir / "eval" / "step_00000004.json").read_text())
  assert record["protocol"]["generated_images"] == 40
  for tag in ("eval/swd", "eval/shapes10_fid", "eval/class_accuracy", "eval/seconds"):
    assert tags[tag] == [4], tag
  # Resuming: tests/test_exact_resume.py (after a SIGKILL, bitwise).
