"""Step-by-step training parity of our BigGAN with BigGAN-PyTorch.

Both codes start from the same weights (ours, converted), see the same real
batches (our pipeline, flips included), the same z and fake labels (the ones our
step draws), and run the same updates: ``d_steps`` D steps then one G step with
orthogonal regularisation, EMA, BN statistics and spectral-norm vectors. After
every step every tensor is compared: parameters, Adam moments, BN statistics, u
vectors and EMA weights. The reference is also run in float64, which gives the
float32 noise floor: the reference's own float32 run drifts from its float64 run
by exactly the amount float32 rounding can explain.

  pip install torch                      # a CPU build is enough
  git clone https://github.com/ajbrock/BigGAN-PyTorch /tmp/BigGAN-PyTorch
  JAX_PLATFORMS=cpu python benchmarks/biggan_parity.py --reference=/tmp/BigGAN-PyTorch \\
      --config=configs/quickstart.py --steps=100 --json=parity.json

Prints, for steps 1, 10 and 100 (``--report``), the largest relative L2 error
||ours - ref|| / ||ref|| over the tensors of each group, and writes the whole
per-step curve to ``--json``. Not part of the test suite (it needs torch); the
torch-free tests/test_reference_parity.py pins numbers this script recorded.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.parity.names import initial_reference_arrays, our_arrays  # noqa: E402
from benchmarks.parity.ours import Ours, load_config  # noqa: E402
from benchmarks.parity.reference import Reference  # noqa: E402
from gan.families.biggan.architectures import get_architecture  # noqa: E402

GROUPS = {
    "G params": lambda k: k.startswith("G.") and ".opt." not in k and _is_param(k),
    "D params": lambda k: k.startswith("D.") and ".opt." not in k and _is_param(k),
    "G Adam m": lambda k: k.startswith("G.opt.") and k.endswith("exp_avg"),
    "G Adam v": lambda k: k.startswith("G.opt.") and k.endswith("exp_avg_sq"),
    "D Adam m": lambda k: k.startswith("D.opt.") and k.endswith("exp_avg"),
    "D Adam v": lambda k: k.startswith("D.opt.") and k.endswith("exp_avg_sq"),
    "G BN stats": lambda k: k.startswith("G.") and "stored_" in k,
    "G u": lambda k: k.startswith("G.") and k.endswith(".u0"),
    "D u": lambda k: k.startswith("D.") and k.endswith(".u0"),
    "G EMA": lambda k: k.startswith("G_ema."),
}


ZERO_GRADIENT = "noise-dominated"
# Tensors whose exact gradient is (nearly) zero, so that what float32 autodiff
# returns is mostly rounding noise, in both codes alike: biases that feed a batch
# norm (BN removes any per-channel constant, so their gradient is exactly 0), and
# at step 1 the attention projections, whose loss gradient is 0 while gamma = 0 and
# whose orthogonal-regularisation gradient is ~1e-10 for orthogonal weights. Adam
# scales such noise up to steps of size lr. They get their own row, found from the
# reference itself: the tensors whose step-1 gradient (Adam's m, = the gradient as
# beta1 = 0) in the reference's float32 run misses its float64 run by more than
# NOISE_DOMINATED (1%); every other tensor's float32 gradient is within 1e-5.
NOISE_DOMINATED = 1e-2


def noise_dominated_tensors(ref32: dict, ref64: dict) -> set[str]:
  """Parameter names (G.x / D.x) whose float32 step-1 gradient is > 1% rounding noise."""
  out = set()
  for name, exact in ref64.items():
    if name.endswith(".exp_avg"):
      err = np.linalg.norm(ref32[name] - exact) / max(np.linalg.norm(exact), 1e-300)
      if err > NOISE_DOMINATED:
        net, param = name.split(".opt.")
        out.add(f"{net}.{param[:-len('.exp_avg')]}")
  return out


def _is_param(name: str) -> bool:
  return not (name.endswith(".u0") or "stored_" in name)


def _base_param(name: str) -> str:
  """'G.opt.blocks.0.0.conv1.bias.exp_avg' / 'G_ema.x' -> 'G.blocks.0.0.conv1.bias' / 'G.x'."""
  name = name.replace(".opt.", ".").replace("G_ema.", "G.")
  for suffix in (".exp_avg_sq", ".exp_avg"):
    if name.endswith(suffix):
      return name[:-len(suffix)]
  return name


def relative_errors(ours: dict, ref: dict, zero_grad: set[str]) -> dict[str, tuple[float, str]]:
  """Per group: (max over its tensors of ||a - b|| / ||b||, the worst tensor's name).

  Tensors of ``zero_grad`` (and their moments and EMA) go to the ZERO_GRADIENT row only.
  """
  out = {}
  for group, member in {**GROUPS, ZERO_GRADIENT: lambda k: True}.items():
    worst, worst_name = 0.0, ""
    for name in ref:
      excluded = _base_param(name) in zero_grad
      if ".sv" in name or excluded != (group == ZERO_GRADIENT) or not member(name):
        continue
      a, b = ours[name], ref[name]
      err = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
      if err > worst:
        worst, worst_name = err, name
    out[group] = (worst, worst_name)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--reference", required=True, help="a BigGAN-PyTorch checkout")
  parser.add_argument("--config", default="configs/quickstart.py")
  parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                      help="config override, e.g. --set train.batch_size=16 (repeatable)")
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--report", default="1,10,100")
  parser.add_argument("--json", help="write the per-step curve here")
  args = parser.parse_args(argv)

  config = load_config(args.config, args.set)
  ours = Ours(config)
  channels0 = get_architecture(config.model.resolution).g_channels[0] * config.model.ch
  start = initial_reference_arrays(ours.state, channels0)
  refs = {"float32": Reference(args.reference, config, "float32"),
          "float64": Reference(args.reference, config, "float64")}
  for ref in refs.values():
    ref.load(start)
  report = {int(s) for s in args.report.split(",")}
  curve = []
  print(f"{'step':>5} {'group':<11} {'ours vs ref32':>14} {'ours vs ref64':>14} "
        f"{'ref32 vs ref64':>15}  worst tensor (ours vs ref32)")
  for step in range(args.steps):
    batch, images, labels = ours.batch(step)
    t0 = time.perf_counter()
    metrics, latents = ours.step(step, batch)
    t1 = time.perf_counter()
    ref_out = {name: ref.step(images, labels, latents) for name, ref in refs.items()}
    t2 = time.perf_counter()
    mine = our_arrays(ours.state, channels0)
    r32, r64 = refs["float32"].arrays(), refs["float64"].arrays()
    if step == 0:
      zero_grad = noise_dominated_tensors(r32, r64)
      print(f"noise-dominated tensors ({len(zero_grad)}): {' '.join(sorted(zero_grad))}")
    errors = {"ours_vs_ref32": relative_errors(mine, r32, zero_grad),
              "ours_vs_ref64": relative_errors(mine, r64, zero_grad),
              "ref32_vs_ref64": relative_errors(r32, r64, zero_grad)}
    curve.append({"step": step + 1, "seconds_ours": t1 - t0, "seconds_reference": t2 - t1,
                  "losses_ours": {k: float(v) for k, v in metrics.items()},
                  "losses_ref32": ref_out["float32"],
                  **{k: {g: e[0] for g, e in v.items()} for k, v in errors.items()}})
    if step + 1 in report:
      for group in [*GROUPS, ZERO_GRADIENT]:
        a, name = errors["ours_vs_ref32"][group]
        print(f"{step + 1:>5} {group:<11} {a:>14.2e} {errors['ours_vs_ref64'][group][0]:>14.2e} "
              f"{errors['ref32_vs_ref64'][group][0]:>15.2e}  {name}")
      sys.stdout.flush()
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"config": args.config, "overrides": args.set,
                 "noise_dominated_tensors": sorted(zero_grad), "curve": curve}, f, indent=1)


if __name__ == "__main__":
  main()
