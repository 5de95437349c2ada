"""Records tests/fixtures/reference_parity/: one BigGAN-PyTorch update, for a torch-free test.

A 32x32 BigGAN of width 8 (tests/conftest.py tiny_config) starts from our initialisation (stored in the
fixture), takes one reference iteration (one D step, one G step with orthogonal
regularisation, EMA with decay 0.9) on a fixed shapes10 batch and the z / labels
our step draws from the stored key, in float64 and float32. The fixture keeps
the float64 result (as float32 changes: parameter and EMA deltas, Adam's first
moment, which equals the gradient since beta1 = 0, u vectors, BN statistics) and
the float32 run's error against it per group, the noise yardstick the test's
bounds are made from. tests/test_reference_parity.py replays the step with our code.

  python benchmarks/record_parity_fixture.py --reference=/tmp/BigGAN-PyTorch \\
      --reference_commit=$(git -C /tmp/BigGAN-PyTorch rev-parse HEAD)
"""

import argparse
import datetime
import json
import os
import sys

import jax
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks.biggan_parity import noise_dominated_tensors  # noqa: E402
from benchmarks.parity.names import (initial_reference_arrays, our_flat,  # noqa: E402
                                     reference_as_ours, reference_key)
from benchmarks.parity.ours import Ours  # noqa: E402
from benchmarks.parity.reference import Reference  # noqa: E402
from gan.families.biggan.architectures import get_architecture  # noqa: E402

OUT = os.path.join(REPO, "tests", "fixtures", "reference_parity")
# Applied to tests/conftest.py's tiny_config(); the test reads them from fixture.json.
MODEL = {"ch": 8}
TRAIN = {"ema_start": 1, "ema_decay": 0.9, "adam_eps": 1e-6, "ortho_reg": 1e-4}
INIT_COLLECTIONS = ("params", "batch_stats", "spectral")


def tiny_parity_config():
  sys.path.insert(0, os.path.join(REPO, "tests"))
  from conftest import tiny_config
  config = tiny_config(**TRAIN)
  for key, value in MODEL.items():
    config.model[key] = value
  return config


def recorded(net_collection: str) -> bool:
  """What the fixture keeps of the reference after the step (adam_nu follows from mu)."""
  return net_collection in {"G/params", "D/params", "G/adam_mu", "D/adam_mu", "G/batch_stats",
                            "G/spectral", "D/spectral", "G_ema/params", "G_ema/batch_stats",
                            "G_ema/spectral"}


def group_of(key: str) -> str:
  net, collection = key.split("/")[:2]
  return f"{net}/{collection}"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--reference", required=True)
  parser.add_argument("--reference_commit", required=True)
  args = parser.parse_args(argv)
  import torch

  config = tiny_parity_config()
  ours = Ours(config)
  channels0 = get_architecture(config.model.resolution).g_channels[0] * config.model.ch
  init = our_flat(ours.state)
  refs = {d: Reference(args.reference, config, d) for d in ("float32", "float64")}
  for ref in refs.values():
    ref.load(initial_reference_arrays(ours.state, channels0))
  batch, images, labels = ours.batch(0)
  rng = jax.random.fold_in(ours.state.rng, 0)
  from benchmarks.parity.ours import step_latents
  latents = step_latents(rng, config)
  for ref in refs.values():
    ref.step(images, labels, latents)
  after = {d: reference_as_ours(ref.arrays(), ours.state, channels0) for d, ref in refs.items()}
  zero_grad = noise_dominated_tensors(refs["float32"].arrays(), refs["float64"].arrays())
  ours.step(0, batch)  # our jitted step on the same inputs, for the recorded error of ours
  mine = our_flat(ours.state)

  def change(dtype: str, key: str) -> np.ndarray:
    """Params and EMA as deltas from the start (an lr-sized change would drown in float32)."""
    base = key.replace("G_ema/", "G/")
    if key.split("/")[1] == "params":
      return after[dtype][key] - init[base]
    return after[dtype][key]

  arrays = {f"init/{k}": v.astype(np.float32) for k, v in init.items()
            if k.split("/")[1] in INIT_COLLECTIONS and not k.startswith("G_ema/")}
  arrays["batch/image"], arrays["batch/label"] = batch["image"], batch["label"]
  arrays["rng"] = np.asarray(jax.random.key_data(rng) if jax.dtypes.issubdtype(
      rng.dtype, jax.dtypes.prng_key) else rng)
  zero_keys = sorted(k for k in init if k.split("/")[1] == "params" and k.startswith(("G/", "D/"))
                     and reference_key(k) in zero_grad)
  noise: dict[str, float] = {}
  ours_error: dict[str, float] = {}
  for key in after["float64"]:
    if not recorded(group_of(key)):
      continue
    exact, single = change("float64", key), change("float32", key)
    arrays[f"ref/{key}"] = exact.astype(np.float32)
    net, collection, path = key.split("/", 2)
    owner = f"{'G' if net == 'G_ema' else net}/params/{path}"
    zero = collection in ("params", "adam_mu") and owner in zero_keys
    group = group_of(key) + (" noise-dominated" if zero else "")
    ours_change = mine[key] - init[key.replace("G_ema/", "G/")] if collection == "params" \
        else mine[key]
    scale = max(np.linalg.norm(exact), 1e-30)
    noise[group] = max(noise.get(group, 0.0), float(np.linalg.norm(single - exact) / scale))
    ours_error[group] = max(ours_error.get(group, 0.0),
                            float(np.linalg.norm(ours_change - exact) / scale))
  os.makedirs(OUT, exist_ok=True)
  np.savez_compressed(os.path.join(OUT, "step1.npz"), **arrays)
  meta = {
      "what": "one BigGAN-PyTorch iteration (1 D step, 1 G step, ortho reg, EMA) from our init",
      "reference": "https://github.com/ajbrock/BigGAN-PyTorch", "commit": args.reference_commit,
      "torch": torch.__version__, "jax": jax.__version__,
      "recorded": datetime.date.today().isoformat(),
      "command": "python benchmarks/record_parity_fixture.py --reference=PATH "
                 "--reference_commit=COMMIT",
      "config": {"tiny_config": TRAIN, "model": MODEL},
      "reference_dtype": "float64 (stored as float32 deltas)",
      "noise_dominated_tensors": zero_keys,
      "float32_reference_error": noise,
      "ours_error_at_recording": ours_error,
  }
  with open(os.path.join(OUT, "fixture.json"), "w") as f:
    json.dump(meta, f, indent=1, sort_keys=True)
  print(json.dumps({"reference float32": noise, "ours": ours_error}, indent=1))
  print(f"wrote {OUT}: {os.path.getsize(os.path.join(OUT, 'step1.npz')) / 1e6:.2f} MB")


if __name__ == "__main__":
  main()
