"""ProGAN training end to end: per-phase compilation, samples, optimiser resets, resume mid-fade."""

import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import BATCH, PHASE_IMAGES, tiny_progan, train
from gan.growth.schedule import Schedule


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("progan") / "run"
  history = []
  state = train(tiny_progan(), workdir, history)
  return workdir, history, state


def steps_of(history):
  return [h for h in history if "step" in h]


def test_one_compilation_per_phase_and_the_schedule_is_followed(uninterrupted):
  workdir, history, state = uninterrupted
  schedule = Schedule.from_config(tiny_progan())
  compiled = [h["compiled_phase"] for h in history if "compiled_phase" in h]
  assert compiled == list(range(len(schedule.phases))) == [0, 1, 2]
  steps = steps_of(history)
  assert len(steps) == int(state.step) == 3 * PHASE_IMAGES // BATCH
  assert int(state.images_shown) == 3 * PHASE_IMAGES
  for h in steps:  # independent arithmetic: phase p covers [64 p, 64 (p + 1))
    p = h["images_shown"] // PHASE_IMAGES
    assert h["phase"] == p
    assert h["resolution"] == [4, 8, 8][p]
    assert h["kind"] == ["stable", "fade", "stable"][p]
    expected_alpha = (h["images_shown"] - PHASE_IMAGES) / PHASE_IMAGES if p == 1 else 1
    assert h["alpha"] == pytest.approx(expected_alpha)
  samples = sorted(os.listdir(workdir / "samples"))
  for resolution, kind in [(4, "stable"), (8, "fade"), (8, "stable")]:
    assert any(name.endswith(f"_{resolution}x{resolution}_{kind}.png") for name in samples), samples
  # A 2x2 grid of 4x4 samples is readable: cells upscaled to 64x64, plus a caption strip.
  grid = np.asarray(Image.open(workdir / "samples" / "step_00000004_4x4_stable.png"))
  assert 2 * 66 + 2 < grid.shape[0] <= 2 * 66 + 2 + 40 and grid.shape[1] >= 2 * 66 + 2, grid.shape


def test_optimizer_state_is_reset_at_each_phase(uninterrupted):
  _, _, state = uninterrupted
  # Adam's step count: 4 steps since the last reset, not 12.
  counts = [int(x) for x in jax.tree.leaves(state.g_opt_state) if np.ndim(x) == 0]
  assert counts and all(c == PHASE_IMAGES // BATCH for c in counts)


def test_optimizer_state_carries_over_when_reset_is_off(tmp_path):
  state = train(tiny_progan(reset_optimizer=False, max_steps=6), tmp_path)
  counts = [int(x) for x in jax.tree.leaves(state.g_opt_state) if np.ndim(x) == 0]
  assert counts and all(c == 6 for c in counts)  # 4 steps at 4x4 + 2 into the fade
  assert int(state.opt_phase) == 1


def test_every_resolution_trained_and_the_shared_tree_is_whole(uninterrupted):
  _, _, state = uninterrupted
  names = {"/".join(str(getattr(k, "key", k)) for k in path)
           for path, _ in jax.tree_util.tree_flatten_with_path(state.g_params)[0]}
  assert any("to_rgb_8" in n for n in names) and any("to_rgb_4" in n for n in names)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.ema_params))


def test_resume_mid_fade_restores_phase_alpha_and_images_shown(uninterrupted, tmp_path):
  full_workdir, full_history, full_state = uninterrupted
  stop = 6  # 6 steps = 96 images: half-way through the fade to 8x8
  workdir = tmp_path / "run"
  shutil.copytree(full_workdir, workdir)
  for checkpoint in (workdir / "checkpoints").iterdir():  # as if killed after step 6
    if checkpoint.name.isdigit() and int(checkpoint.name) > stop:
      shutil.rmtree(checkpoint)
  resumed = []
  state = train(tiny_progan(), workdir, resumed)
  expected = steps_of(full_history)[stop]
  assert expected["kind"] == "fade" and expected["alpha"] == 0.5
  assert steps_of(resumed)[0] == expected  # step, images shown, phase, resolution, kind, alpha
  assert steps_of(resumed) == steps_of(full_history)[stop:]
  # Only the phases it ran were compiled after the restart.
  assert [h["compiled_phase"] for h in resumed if "compiled_phase" in h] == [1, 2]
  for a, b in zip(jax.tree.leaves(full_state), jax.tree.leaves(state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # bitwise on CPU


@pytest.mark.parametrize("loss", ["nonsaturating", "lsgan", "hinge"])
def test_other_losses_train_through_the_same_step(loss):
  from gan.families.progan import step as progan_step
  from gan.train.sharding import make_mesh
  config = tiny_progan(loss=loss, gp_weight=0.0, drift=0.0)
  phase = Schedule.from_config(config).phases[0]  # 4x4: the 8x8 layers sit unused
  gan = progan_step.build_progan(config)
  state = progan_step.init_state(gan, 0, phase)
  step = jax.jit(progan_step.make_train_step(gan, phase, make_mesh()))
  images = np.random.default_rng(0).integers(0, 256, (BATCH, 4, 4, 3), dtype=np.uint8)
  new_state, metrics = step(state, images, np.float32(1.0), jax.random.PRNGKey(1))
  assert set(metrics) >= {"d_loss", "g_loss", "d_real", "d_fake"}
  assert "gradient_penalty" not in metrics and "drift" not in metrics
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert int(new_state.images_shown) == BATCH
  moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.d_params),
                                                    jax.tree.leaves(new_state.d_params))]
  assert any(moved) and not all(moved)  # the 4x4 path trained; the 8x8 layers did not move
