"""Trains the shapes10 classifier whose features give "shapes10 FID".

  python -m gan.evaluation.train_shapes_classifier [--out PATH] [--steps N] [--seed S]

Writes the weights (default: the shipped gan/evaluation/weights/shapes10_classifier.npz)
and a JSON sidecar shapes10_classifier.json next to them (held-out accuracy,
data seeds and ranges, steps, the command, parameter count, sha256 of the .npz).
Deterministic: the same arguments on the same software give the same file.
Takes a few minutes on 2 CPU cores.

Data: shapes10 examples of TRAIN_SEED, each resolution its own index range,
rendered at 16, 32 and 64 px and brought to 32 with ``prepare``, so the net
also classifies ProGAN's 16x16 phase upsampled to 32 and images box-filtered
from 64. The only augmentation is a random horizontal flip (the GAN data
pipeline flips real images too, so flipped shapes are in the distribution).
Held-out data come from another seed (HELDOUT_SEED); none of the seeds is the
default GAN training seed 0. Tests use a third seed.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan.data import shapes
from gan.evaluation import shapes_classifier as sc

TRAIN_SEED = 101
# (resolution, start, stop): disjoint index ranges, starts multiples of 10 (class-balanced).
TRAIN_RANGES = ((32, 0, 12_000), (16, 12_000, 18_000), (64, 18_000, 24_000))
HELDOUT_SEED = 202
HELDOUT_RANGE = (32, 0, 3_000)  # the reported accuracy
HELDOUT_EXTRA = ((16, 3_000, 4_000), (64, 4_000, 5_000))  # reported per resolution
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
WARMUP_STEPS = 100
DEFAULT_STEPS = 1_500


def load_split(seed: int, ranges) -> tuple[np.ndarray, np.ndarray]:
  """shapes10 examples for (resolution, start, stop) ranges -> float32 [N, 32, 32, 3], int32 [N]."""
  images, labels = [], []
  for resolution, start, stop in ranges:
    x, y = shapes.generate_range(start, stop, resolution, seed=seed)
    images.append(np.asarray(sc.prepare(x)))
    labels.append(y)
  return np.concatenate(images), np.concatenate(labels)


def predict(params, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
  """Predicted labels int [N] for float32 [N, 32, 32, 3] images."""
  out = [np.argmax(np.asarray(sc.apply(params, images[i:i + batch_size])["logits"]), -1)
         for i in range(0, len(images), batch_size)]
  return np.concatenate(out)


def accuracies(params, images, labels) -> tuple[float, list[float]]:
  """(overall accuracy, per-class accuracies [10]) of params on a labelled set."""
  correct = predict(params, images) == labels
  per_class = [float(correct[labels == c].mean()) for c in range(shapes.NUM_CLASSES)]
  return float(correct.mean()), per_class


def train(steps: int, seed: int, log_every: int = 250):
  """Adam on softmax cross-entropy, warmup + cosine decay; returns params."""
  images, labels = load_split(TRAIN_SEED, TRAIN_RANGES)
  model = sc.ShapesClassifier()
  params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, sc.INPUT_SIZE, sc.INPUT_SIZE, 3)))
  params = params["params"]
  schedule = optax.warmup_cosine_decay_schedule(0.0, LEARNING_RATE, min(WARMUP_STEPS, steps),
                                                max(steps, 1))
  optimizer = optax.adam(schedule)
  opt_state = optimizer.init(params)

  @jax.jit
  def step_fn(params, opt_state, x, y):
    def loss_fn(p):
      logits = model.apply({"params": p}, x)["logits"]
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  n = len(images)
  per_epoch = n // BATCH_SIZE
  for step in range(steps):
    epoch, offset = divmod(step, per_epoch)
    if offset == 0:  # a fresh permutation and flip coins per epoch, from (seed, epoch) alone
      rng = np.random.default_rng([seed, epoch])
      order, flips = rng.permutation(n), rng.random(n) < 0.5
    idx = order[offset * BATCH_SIZE:(offset + 1) * BATCH_SIZE]
    x = np.where(flips[idx, None, None, None], images[idx, :, ::-1], images[idx])
    params, opt_state, loss = step_fn(params, opt_state, x, labels[idx])
    if (step + 1) % log_every == 0 or step + 1 == steps:
      print(f"step {step + 1}/{steps}  loss {float(loss):.4f}", flush=True)
  return jax.device_get(params)


def main(argv=None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=sc.WEIGHTS_PATH, help="weights .npz to write")
  parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
  parser.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
  args = parser.parse_args(argv)

  start = time.time()
  params = train(args.steps, args.seed)
  train_seconds = time.time() - start

  x, y = load_split(HELDOUT_SEED, (HELDOUT_RANGE,))
  accuracy, per_class = accuracies(params, x, y)
  by_resolution = {HELDOUT_RANGE[0]: accuracy}
  for r in HELDOUT_EXTRA:
    by_resolution[r[0]] = accuracies(params, *load_split(HELDOUT_SEED, (r,)))[0]
  print(f"held-out accuracy (seed {HELDOUT_SEED}, examples {HELDOUT_RANGE[1]}..{HELDOUT_RANGE[2]}"
        f" at {HELDOUT_RANGE[0]}px): {accuracy:.4f}")
  for name, a in zip(shapes.CLASS_NAMES, per_class):
    print(f"  {name:<20s} {a:.4f}")
  print("held-out accuracy by rendered resolution: "
        + ", ".join(f"{r}px {a:.4f}" for r, a in sorted(by_resolution.items())))

  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  sc.save_params(params, args.out)
  with open(args.out, "rb") as f:
    sha256 = hashlib.sha256(f.read()).hexdigest()
  meta = dict(
      heldout_accuracy=accuracy,
      heldout_per_class_accuracy=dict(zip(shapes.CLASS_NAMES, per_class)),
      heldout_accuracy_by_resolution={str(r): a for r, a in sorted(by_resolution.items())},
      train_data=dict(seed=TRAIN_SEED, ranges=[dict(resolution=r, start=a, stop=b)
                                               for r, a, b in TRAIN_RANGES]),
      heldout_data=dict(seed=HELDOUT_SEED, ranges=[dict(resolution=r, start=a, stop=b)
                                                   for r, a, b in (HELDOUT_RANGE,)
                                                   + HELDOUT_EXTRA]),
      steps=args.steps, seed=args.seed, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
      augmentation="random horizontal flip",
      command=" ".join([sc.TRAIN_COMMAND] + argv),
      parameter_count=int(sum(np.size(v) for v in jax.tree.leaves(params))),
      feature_dim=sc.FEATURE_DIM,
      npz_sha256=sha256,
      versions=dict(jax=jax.__version__, numpy=np.__version__, optax=optax.__version__),
  )
  sidecar = os.path.join(os.path.dirname(os.path.abspath(args.out)), "shapes10_classifier.json")
  with open(sidecar, "w") as f:
    json.dump(meta, f, indent=2)
    f.write("\n")
  print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, sha256 {sha256}) and {sidecar}; "
        f"trained in {train_seconds:.0f} s")


if __name__ == "__main__":
  main()
