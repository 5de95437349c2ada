"""Runs a few train steps of the tiny config and saves the final state (npz).

Used by tests in a subprocess, so the device count can be set with XLA_FLAGS:
  python tests/step_runner.py OUT.npz NUM_STEPS
"""

import sys

import jax
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from conftest import tiny_config, validate  # noqa: E402
from gan.families.biggan.family import make_pipeline as create_pipeline  # noqa: E402
from gan.families.biggan.step import make_train_step  # noqa: E402
from gan.train.sharding import host_to_global, jit_train_step, make_mesh, replicated  # noqa: E402
from gan.families.biggan.state import build_gan, init_state  # noqa: E402


def run(num_steps: int, config=None, keep_history: bool = False):
  """Returns (final state, per-step metrics[, flattened state after every step])."""
  # Micro-batch 8 so that 8 simulated devices hold one example each; Adam eps 1
  # keeps updates a smooth function of the gradients (see test_train_step.py).
  config = config or tiny_config(d_steps=2, grad_accum_steps=2, batch_size=16, adam_eps=1.0)
  validate(config, jax.device_count())
  mesh = make_mesh()
  gan = build_gan(config)
  state = jax.jit(lambda: init_state(gan, config.seed), out_shardings=replicated(mesh))()
  step = jit_train_step(make_train_step(gan, config, mesh), mesh, example_axis=2)
  pipeline = create_pipeline(config)
  history, states = [], []
  for i in range(num_steps):
    batch = host_to_global(mesh, pipeline.batch(i), example_axis=2)
    state, metrics = step(state, batch, jax.random.fold_in(state.rng, i))
    history.append(jax.device_get(metrics))
    if keep_history:
      states.append(flatten(state))
  return (state, history, states) if keep_history else (state, history)


def flatten(state) -> dict[str, np.ndarray]:
  """TrainState -> {'g_params/block0/conv1/kernel': array, ...} on the host."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(state))
  return {"/".join(_key_name(k) for k in path): np.asarray(v) for path, v in leaves}


def _key_name(key) -> str:
  for attr in ("name", "key", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


if __name__ == "__main__":
  out, steps = sys.argv[1], int(sys.argv[2])
  state, _ = run(steps)
  np.savez(out, num_devices=jax.device_count(), **flatten(state))
