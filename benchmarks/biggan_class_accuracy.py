"""Class conditioning, ours against BigGAN-PyTorch, over several seeds.

Each codebase trains the model of --config (default configs/quickstart.py: 32x32,
ch 16, z 64, shared 32, attention 16, batch 32, 1 D step, Adam(0, 0.999, 1e-6) at
8e-4, EMA 0.99 from update 200) on shapes10 for the same number of G updates, with its
own initialisation and random numbers; both read the same real batches (our
pipeline with the run's seed, flips on). The shipped shapes10 classifier
(gan/evaluation/weights, 100% held-out accuracy) then labels conditional samples
of the EMA generator, and class accuracy is the fraction it labels with the
class they were conditioned on (chance: 10%).

  ours:       python -m gan.main --config=configs/quickstart.py --config.seed=S ...
              (the real command; its own evaluation every eval.every_steps is read
              back from <workdir>/eval/), EMA generator in eval mode.
  reference:  BigGAN-PyTorch's G, D, G_D, EMA and GAN_training_function driven
              here, as its train.py drives them; samples from G_ema both as its
              sample sheets make them (G_eval_mode off: BN uses batch statistics)
              and in eval mode (stored statistics).

  JAX_PLATFORMS=cpu python benchmarks/biggan_class_accuracy.py \\
      --reference=/tmp/BigGAN-PyTorch --seeds=0,1,2 --json=class_accuracy.json

``--codebase=ours`` needs no torch. At the quickstart's 1000 steps on 2 CPU cores a seed
takes about 17 min (ours) and 10 min (reference). The two codebases can run as two
processes side by side, each with --json, and ``--summarize a.json b.json`` prints the
table of both.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks.parity.ours import load_config  # noqa: E402


def classify(images: np.ndarray) -> np.ndarray:
  """float [-1, 1] (N, 32, 32, 3) -> predicted shapes10 class (N,), as the evaluator does it."""
  import jax.numpy as jnp

  from gan.evaluation import shapes_classifier
  from gan.evaluation.extract import quantize
  params = shapes_classifier.load_params()
  out = []
  for i in range(0, len(images), 500):
    uint8 = quantize(jnp.asarray(images[i:i + 500]))
    logits = shapes_classifier.apply(params, shapes_classifier.prepare(uint8))["logits"]
    out.append(np.asarray(jnp.argmax(logits, -1)))
  return np.concatenate(out)


def run_ours(config_path: str, overrides: list[str], seed: int, steps: int,
             workdir: str) -> dict:
  """Trains with gan.main; {step: class accuracy} from the run's own evaluations."""
  cmd = [sys.executable, "-m", "gan.main", f"--config={config_path}", f"--workdir={workdir}",
         *[f"--config.{item}" for item in overrides],
         f"--config.seed={seed}", f"--config.train.num_steps={steps}"]
  start = time.perf_counter()
  subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
  seconds = time.perf_counter() - start
  records = [json.load(open(p)) for p in sorted(glob.glob(f"{workdir}/eval/step_*.json"))]
  return {"seconds": seconds,
          "class_accuracy": {r["step"]: r["figures"]["class_accuracy"] for r in records}}


def run_reference(reference: str, config, seed: int, steps: int, num_samples: int,
                  eval_steps: list[int], stock_d32: bool) -> dict:
  """Trains BigGAN-PyTorch on our batches with its own init and RNG; evaluates G_ema."""
  import torch

  from benchmarks.parity.ours import float_batch
  from benchmarks.parity.reference import Reference
  from gan.families.biggan.family import make_pipeline
  torch.manual_seed(seed)
  ref = Reference(reference, config, "float32", stock_d32=stock_d32)
  n_classes = config.data.num_classes
  # Free-running z / y draws, as utils.prepare_z_y's Distribution.sample_ makes them.
  ref.z_.sample_ = lambda: ref.z_.normal_(0, 1)
  ref.y_.sample_ = lambda: ref.y_.random_(0, n_classes)
  pipeline = make_pipeline(config)
  out, start = {}, time.perf_counter()
  for step in range(steps):
    _, images, labels = float_batch(pipeline, step)
    x = torch.tensor(images.transpose(0, 3, 1, 2))
    ref.state_dict["itr"] += 1
    ref.train_fn(x, torch.tensor(labels, dtype=torch.int64))
    if step + 1 in eval_steps:
      out[step + 1] = sample_accuracy(ref, seed, num_samples, n_classes)
      print(f"reference seed {seed} step {step + 1}: {out[step + 1]}", flush=True)
  return {"seconds": time.perf_counter() - start, "class_accuracy": out}


def sample_accuracy(ref, seed: int, num_samples: int, n_classes: int) -> dict:
  """Class accuracy of G_ema's samples, BN in train mode (the reference's default) and eval mode."""
  import torch
  result = {}
  gen = torch.Generator().manual_seed(10_000 + seed)
  z = torch.randn(num_samples, ref.cfg["dim_z"], generator=gen)
  y = torch.randint(0, n_classes, (num_samples,), generator=gen)
  state = {k: v.clone() for k, v in ref.G_ema.state_dict().items()}
  for mode in ("train_mode", "eval_mode"):
    ref.G_ema.train(mode == "train_mode")
    images = []
    with torch.no_grad():
      for i in range(0, num_samples, 50):  # the reference's sample batches (G_batch_size)
        images.append(ref.G_ema(z[i:i + 50], ref.G_ema.shared(y[i:i + 50])).numpy())
    ref.G_ema.load_state_dict(state)  # train-mode sampling moved the stored BN statistics
    images = np.concatenate(images).transpose(0, 2, 3, 1)
    result[mode] = float(np.mean(classify(images) == y.numpy()))
  ref.G_ema.train()
  return result


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--codebase", choices=["ours", "reference", "both"], default="both")
  parser.add_argument("--reference",
                      help="a BigGAN-PyTorch checkout (for --codebase=reference/both)")
  parser.add_argument("--config", default="configs/quickstart.py")
  parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                      help="a config override for both codebases, e.g. train.g_lr=2e-4")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--steps", type=int, help="G updates (default: the config's num_steps)")
  parser.add_argument("--eval_steps",
                      help="comma-separated (default: every eval.every_steps up to --steps)")
  parser.add_argument("--num_samples", type=int, default=2000)
  parser.add_argument("--stock_d32", action="store_true",
                      help="keep the reference's D_arch[32] (attention after every D block)")
  parser.add_argument("--workdir", help="where our runs go (default: a temporary folder)")
  parser.add_argument("--json", help="write the results here")
  parser.add_argument("--summarize", nargs="+", metavar="JSON",
                      help="only print the table of earlier --json files (e.g. one per codebase)")
  args = parser.parse_args(argv)
  if args.summarize:
    return summarize_files(args.summarize)
  seeds = [int(s) for s in args.seeds.split(",")]
  config = load_config(os.path.join(REPO, args.config), args.set)
  args.steps = args.steps or config.train.num_steps
  eval_steps = ([int(s) for s in args.eval_steps.split(",")] if args.eval_steps else
                list(range(config.eval.every_steps, args.steps + 1, config.eval.every_steps)))
  results = {"ours": {}, "reference": {}}
  root = args.workdir or tempfile.mkdtemp(prefix="class-accuracy-")
  for seed in seeds:
    if args.codebase in ("ours", "both"):
      results["ours"][seed] = r = run_ours(args.config, args.set, seed, args.steps,
                                           f"{root}/ours_seed{seed}")
      print(f"ours seed {seed}: {r}", flush=True)
    if args.codebase in ("reference", "both"):
      config.seed = seed
      results["reference"][seed] = r = run_reference(
          args.reference, config, seed, args.steps, args.num_samples, eval_steps, args.stock_d32)
      print(f"reference seed {seed}: {r}", flush=True)
  summarize(results, eval_steps)
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"args": vars(args), "results": results}, f, indent=1)


def summarize_files(paths: list[str]) -> None:
  """The table of several --json files together (their runs merged per codebase)."""
  results, eval_steps = {"ours": {}, "reference": {}}, set()
  for path in paths:
    data = json.load(open(path))
    for codebase, runs in data["results"].items():
      for seed, run in runs.items():
        # json turned the step keys into strings
        run["class_accuracy"] = {int(k): v for k, v in run["class_accuracy"].items()}
        results[codebase][seed] = run
        eval_steps |= set(run["class_accuracy"])
  summarize(results, sorted(eval_steps))


def summarize(results: dict, eval_steps: list[int]) -> None:
  rows = [("ours (eval mode)", results["ours"], None),
          ("reference, train-mode BN", results["reference"], "train_mode"),
          ("reference, eval mode", results["reference"], "eval_mode")]
  print(f"{'class accuracy':<26}" + "".join(f"{'step ' + str(s):>22}" for s in eval_steps))
  for name, runs, mode in rows:
    if not runs:
      continue
    cells = []
    for s in eval_steps:
      values = [r["class_accuracy"][s] if mode is None else r["class_accuracy"][s][mode]
                for r in runs.values() if s in r["class_accuracy"]]
      cells.append(f"{np.mean(values):.3f} +- {np.std(values):.3f} (n={len(values)})"
                   if values else "-")
    print(f"{name:<26}" + "".join(f"{c:>22}" for c in cells))
  last = eval_steps[-1]
  for name, runs, mode in rows:
    values = {seed: r["class_accuracy"][last] for seed, r in runs.items()
              if last in r["class_accuracy"]}
    per_seed = [f"seed {seed} {v if mode is None else v[mode]:.3f}" for seed, v in values.items()]
    if per_seed:
      print(f"{name} at step {last}: " + ", ".join(per_seed))


if __name__ == "__main__":
  main()
