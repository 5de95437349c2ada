"""StyleGAN (v1) training end to end on the growth schedule: one compiled step per phase,
grids per phase, Adam reset per phase, a non-finite step, resume mid-fade bitwise."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import BATCH, PHASE_IMAGES, tiny_stylegan, train
from gan.families.stylegan import step1
from gan.growth.schedule import Schedule
from gan.train.sharding import make_mesh
from test_exact_resume import assert_bitwise_equal


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("stylegan") / "run"
  history = []
  state = train(tiny_stylegan(), workdir, history)
  return workdir, history, state


def steps_of(history):
  return [h for h in history if "step" in h]


def test_one_compilation_per_phase_and_the_schedule_is_followed(uninterrupted):
  workdir, history, state = uninterrupted
  assert [h["compiled_phase"] for h in history if "compiled_phase" in h] == [0, 1, 2]
  assert int(state.step) == 3 * PHASE_IMAGES // BATCH
  for h in steps_of(history):  # phase p covers [64 p, 64 (p + 1)) images
    p = h["images_shown"] // PHASE_IMAGES
    assert (h["phase"], h["resolution"], h["kind"]) == (p, [4, 8, 8][p],
                                                        ["stable", "fade", "stable"][p])
  samples = set(os.listdir(workdir / "samples"))
  for kind in ("step", "mixing", "truncation"):
    for step, phase in ((4, "4x4_stable"), (8, "8x8_fade"), (12, "8x8_stable")):
      assert f"{kind}_{step:08d}_{phase}.png" in samples, sorted(samples)


def test_adam_is_reset_at_each_phase_and_the_tracked_w_moved(uninterrupted):
  _, _, state = uninterrupted
  counts = [int(x) for x in jax.tree.leaves(state.g_opt_state) if np.ndim(x) == 0]
  assert counts and all(c == PHASE_IMAGES // BATCH for c in counts)
  assert float(jnp.linalg.norm(state.w_avg)) > 0
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.ema_params))


def test_resume_mid_fade_is_bitwise(uninterrupted, tmp_path):
  full_workdir, full_history, full_state = uninterrupted
  workdir = tmp_path / "run"
  shutil.copytree(full_workdir, workdir)
  for checkpoint in (workdir / "checkpoints").iterdir():  # as if killed after step 6
    if checkpoint.name.isdigit() and int(checkpoint.name) > 6:
      shutil.rmtree(checkpoint)
  resumed = []
  state = train(tiny_stylegan(), workdir, resumed)
  assert steps_of(resumed)[0]["kind"] == "fade" and steps_of(resumed)[0]["alpha"] == 0.5
  assert steps_of(resumed) == steps_of(full_history)[6:]
  assert_bitwise_equal(state, full_state)


def test_a_non_finite_update_is_skipped_and_counted():
  config = tiny_stylegan(inject_nonfinite_steps="0")
  phase = Schedule.from_config(config).phases[1]  # the fade into 8x8
  gan = step1.build(config)
  state = step1.init_state(gan, 0, phase)
  batch = {"image": jnp.zeros((BATCH, 8, 8, 3), jnp.uint8),
           "label": jnp.zeros((BATCH,), jnp.int32)}
  new, metrics = jax.jit(step1.make_train_step(gan, phase, make_mesh()))(
      state, batch, jnp.float32(0.5), jax.random.PRNGKey(0))
  assert not np.isfinite(float(metrics["d_loss"]))
  assert int(new.health["skipped"]) == 1 and int(new.images_shown) == BATCH
  for name in ("g_params", "d_params", "ema_params", "w_avg", "d_opt_state"):
    assert_bitwise_equal(getattr(new, name), getattr(state, name))


def test_the_eval_generator_upscales_a_lower_phase(uninterrupted):
  from gan.families import registry
  _, _, state = uninterrupted
  config = tiny_stylegan()
  family = registry.for_config(config)
  gan = family.build(config)
  during_fade = family.eval_generator(gan, config, state, PHASE_IMAGES + PHASE_IMAGES // 2, 0.7)
  assert "8x8 fade" in during_fade.description and "psi 0.7" in during_fade.description
  early = family.eval_generator(gan, config, state, PHASE_IMAGES // 2, None)
  images, labels = jax.jit(early.fn, static_argnums=2)(early.inputs, jax.random.PRNGKey(0), 4)
  assert images.shape == (4, 8, 8, 3) and labels.shape == (4,)
  np.testing.assert_array_equal(images[:, ::2, ::2], images[:, 1::2, 1::2])  # 4x4 upscaled
