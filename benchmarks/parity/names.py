"""Our BigGAN state <-> BigGAN-PyTorch's tensor names and layouts.

Layouts: Flax conv kernels are HWIO, PyTorch's OIHW; Flax dense kernels are
(in, out), PyTorch's (out, in); spectral-norm vectors u are (out,) here and
(1, out) there. G's first linear layer reshapes to (4, 4, C) here (NHWC) and to
(C, 4, 4) there (NCHW), so its output axis is permuted.
"""

import re

import jax
import numpy as np
from flax import traverse_util

_LEAVES = {"kernel": "weight", "embedding": "weight", "scale": "gain", "u": "u0",
           "mean": "stored_mean", "var": "stored_var"}
_MODULES = {"out_bn": "output_layer.0", "out_conv": "output_layer.2", "out": "o"}


def reference_name(path: str) -> str:
  """'block0/bn1/gain/kernel' -> 'blocks.0.0.bn1.gain.weight' (G or D, no prefix)."""
  *modules, leaf = path.split("/")
  if leaf in ("mean", "var") and modules[-1] == "bn":
    modules = modules[:-1]  # the conditional BN's inner batch norm: no module there
  head = re.fullmatch(r"(block|attention)(\d+)", modules[0])
  if head:
    modules[0] = f"blocks.{head.group(2)}.{0 if head.group(1) == 'block' else 1}"
  modules = [_MODULES.get(m, m) for m in modules]
  return ".".join(modules + [_LEAVES.get(leaf, leaf)])


def _flat(tree) -> dict[str, np.ndarray]:
  return {"/".join(k): np.asarray(v, np.float64)
          for k, v in traverse_util.flatten_dict(jax.device_get(tree)).items()}


def _first_linear_perm(out: int, channels: int) -> np.ndarray:
  """Index map: reference output o_t = c*16 + h*4 + w  <-  ours o_f = (h*4 + w)*C + c."""
  return np.arange(out).reshape(4, 4, channels).transpose(2, 0, 1).reshape(-1)


def to_reference_layout(net: str, path: str, value: np.ndarray, g_channels0: int) -> np.ndarray:
  """One of our arrays -> the reference's layout of the same tensor."""
  leaf = path.rsplit("/", 1)[-1]
  if net == "G" and path.startswith("linear/"):
    perm = _first_linear_perm(value.shape[-1], g_channels0)
    value = value[..., perm]
  if leaf == "kernel" and value.ndim == 4:
    return value.transpose(3, 2, 0, 1)
  if leaf == "kernel" and value.ndim == 2:
    return value.T
  if leaf == "u":
    return value.reshape(1, -1)
  return value


def from_reference_layout(net: str, path: str, value: np.ndarray, g_channels0: int) -> np.ndarray:
  """Inverse of ``to_reference_layout``."""
  leaf = path.rsplit("/", 1)[-1]
  if leaf == "kernel" and value.ndim == 4:
    value = value.transpose(2, 3, 1, 0)
  elif leaf == "kernel" and value.ndim == 2:
    value = value.T
  elif leaf == "u":
    value = value.reshape(-1)
  if net == "G" and path.startswith("linear/"):
    inverse = np.argsort(_first_linear_perm(value.shape[-1], g_channels0))
    value = value[..., inverse]
  return value


def our_flat(state) -> dict[str, np.ndarray]:
  """Our TrainState -> {'G/params/block0/conv1/kernel': array, ...} in our layout.

  Nets G, D, G_ema; collections params, batch_stats, spectral, and adam_mu / adam_nu
  (Adam's first and second moments) for G and D.
  """
  state = jax.device_get(state)
  trees = {"G": {"params": state.g_params, **state.g_vars},
           "D": {"params": state.d_params, **state.d_vars},
           "G_ema": {"params": state.ema_params, **state.ema_vars}}
  for net, opt_state in (("G", state.g_opt_state), ("D", state.d_opt_state)):
    trees[net].update(adam_mu=opt_state[0].mu, adam_nu=opt_state[0].nu)
  return {f"{net}/{collection}/{path}": value
          for net, tree in trees.items() for collection, sub in tree.items()
          if collection in ("params", "batch_stats", "spectral", "adam_mu", "adam_nu")
          for path, value in _flat(sub).items()}


def split_key(key: str) -> tuple[str, str, str]:
  """'G/adam_mu/block0/conv1/kernel' -> ('G', 'adam_mu', 'block0/conv1/kernel')."""
  net, collection, path = key.split("/", 2)
  return net, collection, path


def reference_key(key: str) -> str:
  """Our flat key -> the reference's name (as ``Reference.arrays()`` names it)."""
  net, collection, path = split_key(key)
  moment = {"adam_mu": "exp_avg", "adam_nu": "exp_avg_sq"}.get(collection)
  if moment:
    return f"{net}.opt.{reference_name(path)}.{moment}"
  return f"{net}.{reference_name(path)}"


def our_arrays(state, g_channels0: int) -> dict[str, np.ndarray]:
  """Our TrainState -> {reference name: array in the reference's layout}."""
  out = {}
  for key, value in our_flat(state).items():
    net, _, path = split_key(key)
    out[reference_key(key)] = to_reference_layout("D" if net == "D" else "G", path, value,
                                                  g_channels0)
  return out


def reference_as_ours(ref_arrays: dict, state, g_channels0: int) -> dict[str, np.ndarray]:
  """The reference's tensors under our flat keys and in our layout (keys of ``our_flat``)."""
  out = {}
  for key in our_flat(state):
    net, _, path = split_key(key)
    name = reference_key(key)
    if name in ref_arrays:
      out[key] = from_reference_layout("D" if net == "D" else "G", path, ref_arrays[name],
                                       g_channels0)
  return out


def initial_reference_arrays(state, g_channels0: int) -> dict[str, np.ndarray]:
  """Our freshly initialised state as reference tensors (models only, no optimiser)."""
  return {k: v for k, v in our_arrays(state, g_channels0).items() if ".opt." not in k}
