"""The sharded BigGAN train step: learning, EMA, dtypes, devices, checkpoints."""

import os
import subprocess

import numpy as np
import pytest

from conftest import PYTHON, REPO, subprocess_env, tiny_config
from step_runner import flatten, run


EMA_START = 3


@pytest.fixture(scope="module")
def six_steps():
  """One compiled run of 6 steps (d_lr raised so D moves clearly), every state kept."""
  config = tiny_config(d_lr=1e-3, ema_start=EMA_START, ema_decay=0.9)
  state, history, states = run(6, config, keep_history=True)
  return state, history, states


def test_d_loss_goes_down(six_steps):
  _, history, _ = six_steps
  d_loss = [float(m["d_loss_real"] + m["d_loss_fake"]) for m in history]
  assert all(np.isfinite(d_loss))
  assert d_loss[-1] < d_loss[0], d_loss


def _ema_pairs(flat):
  for key in flat:
    if key.startswith(("ema_params/", "ema_vars/")):
      yield key, key.replace("ema_params/", "g_params/").replace("ema_vars/", "g_vars/")


def test_ema_copies_before_start_then_decays(six_steps):
  _, _, states = six_steps
  pairs = list(_ema_pairs(states[0]))
  assert any(k.startswith("ema_vars/batch_stats") for k, _ in pairs)
  assert any(k.startswith("ema_vars/spectral") for k, _ in pairs)
  # states[i] follows update i + 1 (BigGAN-PyTorch's itr): updates 1 .. EMA_START - 1
  # copy G into the EMA (the reference's `itr < start_itr`), update EMA_START decays.
  for i in range(EMA_START - 1):
    for ema, live in pairs:
      np.testing.assert_array_equal(states[i][ema], states[i][live], err_msg=ema)
  for i in range(EMA_START - 1, 6):  # then ema = 0.9 ema + 0.1 live, checked in numpy
    for ema, live in pairs:
      expected = 0.9 * states[i - 1][ema] + 0.1 * states[i][live]
      np.testing.assert_allclose(states[i][ema], expected, rtol=1e-6, atol=1e-7, err_msg=ema)
    assert not np.array_equal(states[i]["ema_params/out_conv/kernel"],
                              states[i]["g_params/out_conv/kernel"])


def test_bfloat16_compute_keeps_float32_state():
  config = tiny_config()
  config.model.compute_dtype = "bfloat16"
  state, history = run(1, config)
  floats = {k: v for k, v in flatten(state).items() if np.issubdtype(v.dtype, np.floating)}
  assert len(floats) > 100  # params, BN/SN statistics, EMA, Adam moments
  for name, value in floats.items():
    assert value.dtype == np.float32, name
  assert all(np.isfinite(float(v)) for v in history[-1].values())


def test_one_and_eight_devices_give_the_same_state(tmp_path):
  """Same config, seed and data on 1 and on 8 simulated CPU devices.

  BN statistics are reduced over the global batch and z is generated
  identically whatever the sharding, so only float summation order differs.
  The runner uses Adam eps = 1: early Adam steps with b1 = 0 and a tiny eps are
  ~lr * sign(g), so a gradient entry that is ~0 (e.g. a bias right before a BN)
  flips sign on rounding noise and hides the comparison.

  Tolerance, per leaf after 3 steps of 2 D steps x 2 accumulations of 8
  examples, in the L2 norm: |one - eight| <= 5e-3 |one| + 1e-6 sqrt(size).
  Measured: the median leaf differs by ~2e-7 (relative L2). G's gradients are
  ill-conditioned in this tiny net (BN over 8 examples of 8 channels): at
  step 1 they differ by ~1.4e-4 (single entries by ~6e-4 of the leaf's
  largest), and by step 3 Adam's second moment of G's first linear kernel,
  which squares them, by ~1.9e-3. A sharding bug (per-device BN statistics
  over 1 example, repeated z, a wrong data split) gives differences of order 1.
  """
  results = {}
  for devices in (1, 8):
    out = tmp_path / f"state_{devices}.npz"
    subprocess.run([PYTHON, os.path.join(REPO, "tests", "step_runner.py"), str(out), "3"],
                   check=True, env=subprocess_env(devices), cwd=REPO, timeout=600)
    results[devices] = np.load(out)
  one, eight = results[1], results[8]
  assert int(one["num_devices"]) == 1 and int(eight["num_devices"]) == 8
  assert set(one.files) == set(eight.files)
  compared = [n for n in one.files if n != "num_devices"]
  assert len(compared) > 100
  worst = 0.0
  for name in compared:
    a, b = one[name].astype(np.float64), eight[name].astype(np.float64)
    if not np.issubdtype(one[name].dtype, np.floating):  # step, rng, Adam counts
      np.testing.assert_array_equal(a, b, err_msg=name)
      continue
    diff, norm = np.linalg.norm(a - b), np.linalg.norm(a)
    allowed = 5e-3 * norm + 1e-6 * np.sqrt(a.size)
    assert diff <= allowed, (name, diff, norm)
    worst = max(worst, diff / allowed)
  print(f"worst 1- vs 8-device difference: {worst:.2f} of the tolerance")


def test_checkpoint_round_trip_is_bitwise(tmp_path):
  from gan.train.checkpointing import Checkpointer
  from gan.families.biggan.state import build_gan, init_state

  config = tiny_config()
  state, _ = run(1, config)
  checkpointer = Checkpointer(str(tmp_path), keep=2)
  checkpointer.save(2, state)
  checkpointer.close()
  target = init_state(build_gan(config), seed=123)  # different values, same structure
  restored = Checkpointer(str(tmp_path), keep=2)
  assert restored.latest_step() == 2
  got = flatten(restored.restore(2, target))
  want = flatten(state)
  assert set(got) == set(want)
  for name in want:
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert got[name].dtype == want[name].dtype
