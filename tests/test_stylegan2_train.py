"""StyleGAN2 training end to end: lazy-regularisation variants compiled once each, the
effective lazy R1 update against its formula, grids, non-finite steps, SIGTERM and exact
resume, and 8 devices against 1."""

import os
import re
import signal
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny_stylegan2_config
from conftest import PYTHON, REPO, subprocess_env, tiny_stylegan2, train
from gan.families.stylegan import step2
from gan.train.checkpointing import Checkpointer
from gan.train.sharding import make_mesh
from test_exact_resume import assert_bitwise_equal, group_relative_l2, leaves_by_name, run_main


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  """The subprocess tests' config (Adam eps 1), 8 steps on 1 device, in this process."""
  workdir = tmp_path_factory.mktemp("stylegan2") / "run"
  history = []
  state = train(tiny_stylegan2_config.get_config(), workdir, history)
  return workdir, history, state


def test_each_lazy_regularisation_variant_is_compiled_once(uninterrupted):
  workdir, history, state = uninterrupted
  compiled = [h.get("variant", "") for h in history if "compiled_phase" in h]
  # Path length every 2 steps, R1 every 4: steps 0, 4 both, 2, 6 path length, odd ones none.
  assert sorted(compiled) == ["", "pl", "pl+r1"]
  steps = [h for h in history if "step" in h]
  assert [h.get("variant", "") for h in steps] == ["pl+r1", "", "pl", "", "pl+r1", "", "pl", ""]
  assert int(state.step) == 8
  assert sorted(os.listdir(workdir / "samples")) == [
      f"{kind}_{step:08d}.png" for kind in ("mixing", "step", "truncation") for step in (0, 8)]


def test_the_state_moved_as_training_does(uninterrupted):
  _, _, state = uninterrupted
  assert float(jnp.linalg.norm(state.w_avg)) > 0  # the tracked average left its zero init
  assert float(state.pl_mean) > 0  # path lengths were measured
  for tree in (state.g_params, state.d_params, state.ema_params):
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(tree))


def numpy_adam_continue(param, grad, mu, nu, count, lr, b1, b2, eps):
  """One more Adam step from moments (mu, nu) after ``count`` steps (numpy, float64)."""
  mu = b1 * mu + (1 - b1) * grad
  nu = b2 * nu + (1 - b2) * grad * grad
  t = count + 1
  return param - lr * (mu / (1 - b1 ** t)) / (np.sqrt(nu / (1 - b2 ** t)) + eps)


def test_the_lazy_r1_step_is_an_extra_adam_step_on_interval_times_the_penalty():
  """Variant 'r1' = variant '' then one Adam step (lr c * lr, betas ** c, c = k / (k + 1))
  on the gradient of k * gamma / 2 * mean ||grad_x D(x)||^2, recomputed here."""
  config = tiny_stylegan2(pl_weight=0.0, r1_gamma=5.0)
  gan = step2.build(config)
  state = step2.init_state(gan, 0)
  mesh = make_mesh()
  images = np.random.RandomState(0).randint(0, 256, (8, 16, 16, 3)).astype(np.uint8)
  batch = {"image": jnp.asarray(images), "label": jnp.arange(8, dtype=jnp.int32) % 10}
  rng = jax.random.PRNGKey(7)
  plain, _ = jax.jit(step2.make_train_step(gan, mesh, ""))(state, batch, rng)
  lazy, metrics = jax.jit(step2.make_train_step(gan, mesh, "r1"))(state, batch, rng)
  np.testing.assert_array_equal(leaves_by_name(plain.g_params)["['mapping']['fc0']['weight']"],
                                leaves_by_name(lazy.g_params)["['mapping']['fc0']['weight']"])
  interval, t = config.train.r1_interval, config.train
  reals = images.astype(np.float32) / 127.5 - 1

  def penalty_loss(d_params):
    grads = jax.grad(lambda x: jnp.sum(gan.discriminate(d_params, x, batch["label"])))(reals)
    return interval * t.r1_gamma / 2 * jnp.mean(jnp.sum(grads ** 2, axis=(1, 2, 3)))

  grads = leaves_by_name(jax.grad(penalty_loss)(plain.d_params))
  c = interval / (interval + 1)
  adam = plain.d_opt_state[0]  # optax.adam: (ScaleByAdamState, ...)
  mu, nu, count = leaves_by_name(adam.mu), leaves_by_name(adam.nu), int(adam.count)
  got, start = leaves_by_name(lazy.d_params), leaves_by_name(plain.d_params)
  assert float(metrics["r1_penalty"]) > 0
  for name in start:
    want = numpy_adam_continue(start[name].astype(np.float64), grads[name], mu[name], nu[name],
                               count, t.d_lr * c, t.adam_b1 ** c, t.adam_b2 ** c, t.adam_eps)
    np.testing.assert_allclose(got[name], want, rtol=2e-5, atol=1e-7, err_msg=name)


def test_a_non_finite_update_is_skipped_and_counted():
  config = tiny_stylegan2(inject_nonfinite_steps="0")
  gan = step2.build(config)
  state = step2.init_state(gan, 0)
  batch = {"image": jnp.zeros((8, 16, 16, 3), jnp.uint8), "label": jnp.zeros((8,), jnp.int32)}
  new, metrics = jax.jit(step2.make_train_step(gan, make_mesh(), "pl+r1"))(
      state, batch, jax.random.PRNGKey(0))
  assert not np.isfinite(float(metrics["d_loss"]))
  assert int(new.step) == 1 and int(new.health["skipped"]) == 1
  assert int(new.health["first_what"]) == 0  # d_loss
  for name in ("g_params", "d_params", "ema_params", "w_avg", "pl_mean", "d_opt_state"):
    assert_bitwise_equal(getattr(new, name), getattr(state, name))


def test_sigterm_then_restart_equals_the_uninterrupted_run(tmp_path, uninterrupted):
  _, _, expected = uninterrupted
  workdir = tmp_path / "run"
  command = [PYTHON, "-m", "gan.main", "--config=tests/tiny_stylegan2_config.py",
             f"--workdir={workdir}", "--config.log_every_steps=1"]
  proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=subprocess_env(1), cwd=REPO)
  lines, deadline = [], time.time() + 300
  for line in proc.stdout:  # signal once step 2 has been logged
    lines.append(line)
    if re.search(r"\] \[2\] ", line):
      proc.send_signal(signal.SIGTERM)
      break
    assert time.time() < deadline, "".join(lines[-30:])
  log = "".join(lines) + proc.communicate(timeout=120)[0]
  assert proc.returncode == 0, log[-3000:]
  stopped = int(re.search(r"Stopping on signal 15 after step (\d+);", log).group(1))
  assert 2 <= stopped < 8
  log = run_main(command)
  assert f"Resumed at step {stopped}, " in log, log[-3000:]
  assert_bitwise_equal(Checkpointer(str(workdir), 10).restore(8, expected), expected)


# Relative L2 per group of leaves (G, D, EMA, each Adam moment), 8 devices vs 1 after 8
# steps of tests/tiny_stylegan2_config.py, measured on this machine: see the test's print.
GROUP_L2_BOUND = 1e-3


def test_8_devices_train_as_1_does(tmp_path, uninterrupted):
  _, _, expected = uninterrupted
  workdir = tmp_path / "run8"
  log = run_main([PYTHON, "-m", "gan.main", "--config=tests/tiny_stylegan2_config.py",
                  f"--workdir={workdir}"], num_devices=8)
  assert "8 local / 8 global devices" in log
  got = leaves_by_name(Checkpointer(str(workdir), 10).restore(8, expected))
  want = leaves_by_name(expected)
  floats = {}
  for name, w in want.items():
    if np.issubdtype(w.dtype, np.floating):
      floats[name] = w
    else:
      np.testing.assert_array_equal(got[name], w, err_msg=name)
  distances = group_relative_l2(got, floats)
  print("relative L2 per group:", sorted(distances.items(), key=lambda kv: -kv[1]))
  assert max(distances.values()) < GROUP_L2_BOUND, distances


def test_the_eval_generator_draws_conditional_samples_with_truncation(uninterrupted):
  from gan.families import registry
  _, _, state = uninterrupted
  config = tiny_stylegan2_config.get_config()
  family = registry.for_config(config)
  gan = family.build(config)
  plain = family.eval_generator(gan, config, state, 64, truncation=None)
  assert plain.conditional and "no truncation" in plain.description
  images, labels = jax.jit(plain.fn, static_argnums=2)(plain.inputs, jax.random.PRNGKey(0), 6)
  assert images.shape == (6, 16, 16, 3) and labels.shape == (6,)
  assert float(jnp.max(jnp.abs(images))) <= 1.0
  # config.eval.truncation is psi: a truncated generator is its own compiled variant.
  truncated = family.eval_generator(gan, config, state, 64, truncation=0.7)
  assert truncated.key != plain.key and "truncation psi 0.7" in truncated.description
  images_t, _ = jax.jit(truncated.fn, static_argnums=2)(truncated.inputs, jax.random.PRNGKey(0), 6)
  assert float(jnp.max(jnp.abs(images_t - images))) > 0  # same z and noise, pulled toward w_avg
