"""Evaluation speed: feature extraction images/s, and the time of a whole evaluation.

  python -m gan.bench_evaluation extract [--batch_size 200] [--images 2000]
  python -m gan.bench_evaluation quickstart [--num_samples 10000] [--workdir DIR]
  python -m gan.bench_evaluation reals [--num_samples 2000]

``extract`` times each network on uint8 32x32 images over every local device
(Inception on random weights of the real shapes, unless --inception_weights is
given: the arithmetic is the same). ``quickstart`` times an evaluation of the
BigGAN quickstart's EMA generator as its config evaluates it at the end (the
checkpoint of DIR, or a fresh state), split into reference statistics and the
samples' evaluation. ``reals`` scores held-out real shapes10 images (another
seed) as if generated: the figures a perfect quickstart generator would reach.
Results: docs/benchmarks.md and docs/evaluation.md.
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_BATCH = flags.DEFINE_integer("batch_size", 200, "Images per batch (all devices).")
_IMAGES = flags.DEFINE_integer("images", 2000, "extract: images timed per network.")
_INCEPTION = flags.DEFINE_string("inception_weights", "", "extract: real weights (optional).")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10_000, "quickstart: samples.")
_WORKDIR = flags.DEFINE_string("workdir", None, "quickstart: a trained quickstart workdir.")


def _random_inception(path: str) -> None:
  from gan.evaluation import inception, inception_weights
  rng = np.random.default_rng(0)
  flat = {}
  for name, shape in inception.param_shapes().items():
    leaf = name.rsplit("/", 1)[-1]
    scale = np.sqrt(2.0 / max(np.prod(shape[:-1]), 1))
    value = (rng.uniform(0.5, 1.5, shape) if leaf in ("gamma", "moving_variance")
             else rng.standard_normal(shape) * scale)
    flat[name] = value.astype(np.float32)
  inception_weights.save_npz(inception_weights.unflatten(flat), path)


def extract() -> None:
  from gan.evaluation import extract as extract_lib, networks
  from gan.train.sharding import host_to_global, make_mesh
  mesh = make_mesh()
  weights = _INCEPTION.value
  if not weights:
    weights = os.path.join(tempfile.mkdtemp(), "random_inception.npz")
    _random_inception(weights)
  nets = {"shapes10": networks.shapes10(), "inception": networks.inception(weights, "legacy")}
  images = np.random.default_rng(0).integers(0, 256, (_BATCH.value, 32, 32, 3), np.uint8)
  batch = host_to_global(mesh, images, example_axis=0)
  rng = jax.random.PRNGKey(0)
  print(f"{jax.device_count()} {jax.devices()[0].platform} device(s) "
        f"({jax.devices()[0].device_kind}), batch {_BATCH.value} of 32x32 uint8")
  cases = [(name, {name: net}, False) for name, net in nets.items()] + [("swd", {}, True)]
  for name, chosen, swd in cases:
    fn = extract_lib.real_fn(chosen, swd, mesh, flip=False)
    params = {n: net.params for n, net in chosen.items()}
    jax.block_until_ready(fn(params, batch, rng))  # compile
    steps = max(1, _IMAGES.value // _BATCH.value)
    start = time.perf_counter()
    for _ in range(steps):
      out = fn(params, batch, rng)
    jax.block_until_ready(out)
    seconds = time.perf_counter() - start
    print(f"  {name:<10} {steps * _BATCH.value / seconds:10.1f} images/s "
          f"({steps * _BATCH.value} images in {seconds:.2f} s)")


def quickstart() -> None:
  import runpy
  from gan.evaluation.protocol import Evaluator, table
  from gan.families import registry
  from gan.train.sharding import make_mesh, replicated
  config = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "configs",
                                       "quickstart.py"))["get_config"]()
  config.eval.num_samples = _NUM_SAMPLES.value
  config.eval.stats_dir = tempfile.mkdtemp()  # time the reference statistics too
  family = registry.get(config.model.name)
  model = family.build(config)
  mesh = make_mesh()
  state = jax.jit(lambda: family.init_state(model, config), out_shardings=replicated(mesh))()
  if _WORKDIR.value:
    from gan.evaluation import run_files
    state, _ = run_files.restore(_WORKDIR.value, config, family, model, mesh, None)
  evaluator = Evaluator(config, mesh)
  start = time.perf_counter()
  evaluator.reference()
  reference_seconds = time.perf_counter() - start
  images = family.images_shown(config, state)
  result = evaluator.evaluate(family.eval_generator(model, config, state, images, None))
  print(f"{jax.device_count()} {jax.devices()[0].platform} device(s): reference statistics "
        f"{reference_seconds:.1f} s, evaluation of {_NUM_SAMPLES.value} samples "
        f"{result.seconds:.1f} s ({config.eval.metrics})\n{table(result.record)}")


def reals() -> None:
  """The quickstart's figures for held-out real images: what a perfect generator scores."""
  import runpy
  import jax.numpy as jnp
  from gan.data import shapes
  from gan.evaluation.protocol import Evaluator, table
  from gan.families.interface import EvalGenerator
  from gan.train.sharding import make_mesh
  config = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "configs",
                                       "quickstart.py"))["get_config"]()
  config.eval.num_samples = _NUM_SAMPLES.value
  pool = 2 * _NUM_SAMPLES.value  # images of another seed than the training set's
  images, labels = shapes.generate(pool, config.model.resolution, seed=config.seed + 12345)

  def draw(inputs, rng, count):
    pool_images, pool_labels = inputs
    index = jax.random.choice(rng, pool, (count,), replace=False)
    return pool_images[index].astype(jnp.float32) / 127.5 - 1.0, pool_labels[index]

  generator = EvalGenerator(draw, (jnp.asarray(images), jnp.asarray(labels, jnp.int32)),
                            "reals", True, f"held-out shapes10 images (seed {config.seed + 12345})")
  result = Evaluator(config, make_mesh()).evaluate(generator)
  print(f"Held-out real images as the generator:\n{table(result.record)}")


def main(argv):
  commands = {"extract": extract, "quickstart": quickstart, "reals": reals}
  if len(argv) != 2 or argv[1] not in commands:
    raise SystemExit(f"usage: python -m gan.bench_evaluation {{{'|'.join(commands)}}} [flags]")
  commands[argv[1]]()


if __name__ == "__main__":
  app.run(main)
