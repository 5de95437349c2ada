"""Injected NaNs: skipped inside the step, counted, and handled by the configured policy."""

import jax
import numpy as np
import pytest
from absl import logging

from conftest import BATCH, tiny_config, tiny_progan, train
from gan.families.progan import step as progan_step
from gan.train.health import NonFiniteError
from gan.growth.schedule import Schedule
from gan.train.sharding import make_mesh


def leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_biggan_step_skips_a_non_finite_update_and_counts_it():
  from step_runner import run
  config = tiny_config(inject_nonfinite_steps="1")
  _, history, states = run(3, config, keep_history=True)
  assert np.isnan(history[1]["d_loss_real"]) and np.isfinite(history[2]["d_loss_real"])
  after_0, after_1, after_2 = states
  for name in after_0:  # step 1 was skipped: everything but the counters is unchanged
    if name in ("step",) or name.startswith("health"):
      continue
    np.testing.assert_array_equal(after_1[name], after_0[name], err_msg=name)
  assert not np.array_equal(after_2["g_params/linear/kernel"], after_1["g_params/linear/kernel"])
  assert int(after_1["step"]) == 2  # the batch is consumed; the step counter moves on
  assert [int(after_2[f"health/{k}"]) for k in ("skipped", "consecutive", "first_step",
                                                 "first_what")] == [1, 0, 1, 0]  # d_loss


def test_progan_step_skips_and_names_the_first_non_finite_quantity():
  config = tiny_progan(inject_nonfinite_steps="0")
  phase = Schedule.from_config(config).phases[0]
  gan = progan_step.build_progan(config)
  state = progan_step.init_state(gan, 0, phase)
  before = leaves(state.g_params) + leaves(state.d_params) + leaves(state.ema_params)
  step = jax.jit(progan_step.make_train_step(gan, phase, make_mesh()))
  images = np.random.default_rng(0).integers(0, 256, (BATCH, 4, 4, 3), dtype=np.uint8)
  state, metrics = step(state, images, np.float32(1), jax.random.PRNGKey(0))
  assert np.isnan(float(metrics["d_loss"]))
  after = leaves(state.g_params) + leaves(state.d_params) + leaves(state.ema_params)
  assert all(np.array_equal(a, b) for a, b in zip(before, after))
  assert int(state.step) == 1 and int(state.images_shown) == BATCH
  assert int(state.health["skipped"]) == 1 and int(state.health["first_what"]) == 0
  state, metrics = step(state, images, np.float32(1), jax.random.PRNGKey(1))
  assert np.isfinite(float(metrics["d_loss"])) and int(state.health["consecutive"]) == 0


def one_phase_progan(**train):
  config = tiny_progan(**train)
  config.schedule.total_images = 16 * BATCH  # 16 steps at 4x4
  config.log_every_steps, config.checkpoint_every_steps = 1, 2
  return config


def test_stop_policy_reports_the_first_non_finite_quantity(tmp_path):
  config = one_phase_progan(nonfinite_policy="stop", nonfinite_patience=2,
                            inject_nonfinite_steps="5,6,7")
  with pytest.raises(NonFiniteError) as e:
    train(config, tmp_path)
  message = str(e.value)
  assert "Stopped at step 7" in message
  assert "d_loss was the first non-finite quantity, at step 5" in message
  assert "2 updates skipped in all, 2 in a row" in message


def test_skip_policy_keeps_training_and_counts(tmp_path):
  config = one_phase_progan(inject_nonfinite_steps="5,6,7")
  state = train(config, tmp_path)
  assert int(state.step) == 16 and int(state.health["skipped"]) == 3
  assert all(np.isfinite(x).all() for x in leaves(state.g_params))


def test_rollback_policy_restores_the_last_checkpoint_then_gives_up(tmp_path, caplog):
  # The fault is tied to the step, so every rollback meets it again: after three
  # rollbacks the policy stops, as 'stop' would.
  config = one_phase_progan(nonfinite_policy="rollback", nonfinite_patience=2,
                            inject_nonfinite_steps="8,9,10,11")
  logging.get_absl_handler()  # make absl logs reach caplog
  with caplog.at_level("WARNING"), pytest.raises(NonFiniteError) as e:
    train(config, tmp_path)
  rollbacks = [r.getMessage() for r in caplog.records if "Rolled back" in r.getMessage()]
  assert len(rollbacks) == 3, rollbacks
  assert all("Rolled back to checkpoint 8 " in m for m in rollbacks), rollbacks
  assert "Stopped at step 10" in str(e.value)
