"""One training iteration equals BigGAN-PyTorch's, without torch.

tests/fixtures/reference_parity/ was recorded by benchmarks/record_parity_fixture.py
(provenance in its fixture.json: reference commit, torch version, date): starting
from the weights stored there, BigGAN-PyTorch (ajbrock/BigGAN-PyTorch's own
BigGAN.py, layers.py, utils.ema / utils.ortho and train_fns.GAN_training_function)
ran one D step and one G step in float64 on the stored batch, with the z and fake
labels our step draws from the stored key. Here our jitted train step replays it
and every group of tensors must match: parameter changes, gradients (Adam's first
moment, since beta1 = 0), spectral-norm u, BN running statistics and the EMA.

Bounds, per group (fixture.json): the larger of 10x the error of the
reference's own float32 run against its float64 run (float32_reference_error)
and 3x our error when the fixture was recorded (ours_error_at_recording), with a
floor of 1e-5. Ours exceeds the reference's float32 error only in G's
gradients (~5e-4 against ~5e-7): D's input gradient is piecewise constant (ReLU
kinks), and XLA's fused, jitted G forward differs from an eager one by 6e-7,
which moves D's input gradient by 1.7e-3 (docs/parity.md). A wrong formula
(EMA start, BN variance, Adam, spectral norm) gives errors of 1e-2 and more.
Tensors whose step-1 gradient is mostly rounding noise (biases feeding a batch
norm, attention projections while gamma = 0) are compared by that: Adam moves
them by at most lr.
"""

import json
import os

import jax
import numpy as np
import pytest
from flax import traverse_util

from conftest import tiny_config
from gan.families.biggan.state import build_gan, init_state
from gan.families.biggan.step import make_train_step
from gan.train.sharding import host_to_global, jit_train_step, make_mesh, replicated

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "reference_parity")


@pytest.fixture(scope="module")
def replay():
  meta = json.load(open(os.path.join(FIXTURE, "fixture.json")))
  data = dict(np.load(os.path.join(FIXTURE, "step1.npz")))
  config = tiny_config(**meta["config"]["tiny_config"])
  for key, value in meta["config"]["model"].items():
    config.model[key] = value
  mesh = make_mesh()
  gan = build_gan(config)
  state = init_state(gan, config.seed)
  state = _load_init(state, data)
  state = jax.device_put(state, replicated(mesh))
  step = jit_train_step(make_train_step(gan, config, mesh), mesh, example_axis=2)
  batch = {"image": data["batch/image"], "label": data["batch/label"]}
  before = _flat(state)  # the step donates its input state
  new_state, _ = step(state, host_to_global(mesh, batch, example_axis=2), data["rng"])
  return meta, data, config, before, _flat(new_state)


def _load_init(state, data):
  """Our state with every params / batch_stats / spectral leaf replaced by the fixture's
  (the EMA starts equal to G, as init_state makes it)."""
  def fill(net, tree_by_collection):
    out = {}
    for collection, tree in tree_by_collection.items():
      flat = traverse_util.flatten_dict(jax.device_get(tree), sep="/")
      keys = {path: f"init/{net}/{collection}/{path}" for path in flat}
      missing = [k for k in keys.values() if k not in data]
      assert not missing, f"the fixture lacks {missing[:3]}: re-record it"
      out[collection] = traverse_util.unflatten_dict(
          {tuple(path.split("/")): data[key] for path, key in keys.items()})
    return out
  g = fill("G", {"params": state.g_params, **state.g_vars})
  d = fill("D", {"params": state.d_params, **state.d_vars})
  g_params, d_params = g.pop("params"), d.pop("params")
  return state.replace(g_params=g_params, g_vars=g, d_params=d_params, d_vars=d,
                       ema_params=g_params, ema_vars=g)


def _flat(state) -> dict[str, np.ndarray]:
  state = jax.device_get(state)
  trees = {"G": {"params": state.g_params, **state.g_vars},
           "D": {"params": state.d_params, **state.d_vars},
           "G_ema": {"params": state.ema_params, **state.ema_vars}}
  for net, opt in (("G", state.g_opt_state), ("D", state.d_opt_state)):
    trees[net]["adam_mu"] = opt[0].mu
  return {f"{net}/{c}/{p}": np.asarray(v, np.float64) for net, tree in trees.items()
          for c, sub in tree.items()
          for p, v in traverse_util.flatten_dict(sub, sep="/").items()}


def param_key(key: str) -> str:
  """'G_ema/params/x' / 'G/adam_mu/x' -> 'G/params/x': the parameter a tensor belongs to."""
  net, collection, path = key.split("/", 2)
  return f"{'G' if net == 'G_ema' else net}/params/{path}"


def group_of(key: str, zero_grad: set[str]) -> str:
  net, collection = key.split("/")[:2]
  zero = collection in ("params", "adam_mu") and param_key(key) in zero_grad
  return f"{net}/{collection}" + (" noise-dominated" if zero else "")


def ours_as_recorded(key: str, before: dict, after: dict) -> np.ndarray:
  """What the fixture stores for ``key``: params and EMA as changes from the start."""
  if key.split("/")[1] == "params":
    return after[key] - before[param_key(key)]
  return after[key]


def errors_by_group(meta, data, before, after) -> dict[str, float]:
  zero_grad = set(meta["noise_dominated_tensors"])
  errors: dict[str, float] = {}
  for name in data:
    if not name.startswith("ref/"):
      continue
    key = name[len("ref/"):]
    ours, ref = ours_as_recorded(key, before, after), data[name].astype(np.float64)
    err = float(np.linalg.norm(ours - ref) / max(np.linalg.norm(ref), 1e-30))
    group = group_of(key, zero_grad)
    errors[group] = max(errors.get(group, 0.0), err)
  return errors


GROUPS = ["G/params", "D/params", "G/adam_mu", "D/adam_mu", "G/spectral", "D/spectral",
          "G/batch_stats", "G_ema/params", "G_ema/batch_stats", "G_ema/spectral"]


@pytest.mark.parametrize("group", GROUPS)
def test_one_iteration_matches_reference(replay, group):
  meta, data, _, before, after = replay
  errors = errors_by_group(meta, data, before, after)
  assert group in errors, f"the fixture has no {group} tensors"
  bound = max(10 * meta["float32_reference_error"][group],
              3 * meta["ours_error_at_recording"][group], 1e-5)
  assert errors[group] <= bound, (
      f"{group}: relative L2 error {errors[group]:.3g} against BigGAN-PyTorch (float64); "
      f"bound {bound:.3g} (fixture.json)")


def test_noise_dominated_tensors_move_at_most_lr(replay):
  """Their gradient is mostly rounding noise; Adam's first step is |g| / (|g| + eps) * lr."""
  meta, _, config, before, after = replay
  zero_grad = meta["noise_dominated_tensors"]
  assert zero_grad, "the fixture lists no noise-dominated tensors"
  for key in zero_grad:
    assert key in before, key
    lr = config.train.g_lr if key.startswith("G/") else config.train.d_lr
    assert np.max(np.abs(after[key] - before[key])) <= lr, key


def test_fixture_provenance():
  meta = json.load(open(os.path.join(FIXTURE, "fixture.json")))
  assert meta["reference"] == "https://github.com/ajbrock/BigGAN-PyTorch"
  assert len(meta["commit"]) == 40 and meta["torch"] and meta["recorded"]
  assert set(GROUPS) <= set(meta["float32_reference_error"])
