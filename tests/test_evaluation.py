"""Evaluation as a run uses it: sharded extraction, the reference cache, the loop, the CLI.

The metrics themselves are checked against independent computations in
test_metrics.py, test_swd.py, test_resize.py, test_inception.py and
test_shapes_classifier.py; here: that the protocol around them is right.
"""

import json
import os
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from conftest import PYTHON, REPO, subprocess_env, tiny_config, train, validate

from gan.config import ConfigError

EVAL_SAMPLES = 32


# --- sharding --------------------------------------------------------------------------------

def test_sharded_evaluation_on_8_devices_equals_unsharded(tmp_path):
  out = tmp_path / "figures.npz"
  subprocess.run([PYTHON, os.path.join(REPO, "tests", "eval_worker.py"), str(out),
                  str(tmp_path / "stats")], env=subprocess_env(8), check=True, timeout=600,
                 stdout=subprocess.DEVNULL)
  got = np.load(out)
  assert int(got["device_count"]) == 8
  one, eight = json.loads(str(got["1_figures"])), json.loads(str(got["8_figures"]))
  assert set(one) == {"swd_32", "swd_16", "swd", "shapes10_fid", "class_accuracy"}
  assert one["class_accuracy"] == eight["class_accuracy"]  # the same 40 predictions
  for name in one:
    np.testing.assert_allclose(eight[name], one[name], rtol=1e-4, err_msg=name)
  assert int(got["1_count"]) == int(got["8_count"]) == 56  # the pad rows were dropped
  # Features are float32 and XLA may pick other kernels for 2 images per device than for 16
  # on one: measured differences 1e-5 in covariances of scale 3e2 (4e-8 of the scale).
  scale = np.abs(got["1_cov"]).max()
  np.testing.assert_allclose(got["8_mean"], got["1_mean"], rtol=1e-5, atol=1e-6 * scale)
  np.testing.assert_allclose(got["8_cov"], got["1_cov"], rtol=1e-5, atol=1e-6 * scale)
  np.testing.assert_allclose(got["8_swd_real"], got["1_swd_real"], rtol=1e-5, atol=1e-5)


# --- the protocol's pieces -------------------------------------------------------------------

def test_quantize_matches_the_reference_formula():
  from gan.evaluation.extract import quantize
  x = np.linspace(-1.2, 1.2, 10_001, dtype=np.float32)
  expected = np.clip(x * 127.5 + 128, 0, 255).astype(np.uint8)
  np.testing.assert_array_equal(np.asarray(quantize(x)), expected)
  assert expected[0] == 0 and expected[-1] == 255


def test_reference_statistics_are_cached_by_what_they_depend_on(tmp_path, monkeypatch):
  from gan.data.pipeline import create_source
  from gan.evaluation import extract, networks, reference
  from gan.train.sharding import make_mesh

  config = tiny_config()
  config.data.num_examples = 48
  config.eval.batch_size = 16
  config.eval.stats_dir = str(tmp_path)
  nets = {"shapes10": networks.shapes10()}
  first = reference.compute(config, nets, 0, make_mesh(), verbose=False)
  assert first.count == 48 and first.stats["shapes10"].count == 48
  assert len(list(tmp_path.glob("shapes10-train-32px-shapes10-48-*.npz"))) == 1

  def no_extraction(*args, **kwargs):
    raise AssertionError("the cached statistics were computed again")

  with monkeypatch.context() as patch:
    patch.setattr(extract, "real_fn", no_extraction)
    again = reference.compute(config, nets, 0, make_mesh(), verbose=False)
  np.testing.assert_array_equal(again.stats["shapes10"].cov(), first.stats["shapes10"].cov())
  np.testing.assert_array_equal(again.features("shapes10"), first.features("shapes10"))

  config.eval.real_flips = True  # another key: computed, over twice the images
  flipped = reference.compute(config, nets, 0, make_mesh(), verbose=False)
  assert flipped.stats["shapes10"].count == 96
  assert len(list(tmp_path.glob("*.npz"))) == 2
  # The mean over originals and mirrors is the average of the two means.
  images, _ = create_source(config).read(np.arange(48))
  mirrored = nets["shapes10"].apply(nets["shapes10"].params, images[:, :, ::-1])["features"]
  expected = (first.stats["shapes10"].mean() + np.asarray(mirrored, np.float64).mean(0)) / 2
  np.testing.assert_allclose(flipped.stats["shapes10"].mean(), expected, rtol=1e-5, atol=1e-6)


def test_config_problems_name_the_fix():
  config = tiny_config()
  config.eval.at_end = True
  config.eval.metrics = "fid,swd"
  with pytest.raises(ConfigError) as error:
    validate(config, num_devices=1)
  message = str(error.value)
  assert "classify_image_graph_def.pb" in message and "pt_inception-2015-12-05" in message
  assert "--config.eval.inception_weights=PATH" in message
  config.eval.metrics, config.eval.best_metric = "swd", "fid"
  with pytest.raises(ConfigError, match="best_metric='fid' is not a figure of"):
    validate(config, num_devices=1)
  config.eval.best_metric, config.eval.batch_size = "swd", 20
  with pytest.raises(ConfigError, match="batch_size=20 must be a multiple of the 8 devices"):
    validate(config, num_devices=8)
  config.eval.batch_size, config.eval.metrics = 16, "swd,fdi"
  with pytest.raises(ConfigError, match="unknown metric.*'fdi'"):
    validate(config, num_devices=1)
  config.eval.metrics = "class_accuracy"
  config.data.label_key, config.data.num_classes = "", 1
  with pytest.raises(ConfigError, match="class_accuracy needs class-conditional samples"):
    validate(config, num_devices=1)


# --- in training, and standalone -------------------------------------------------------------

class FakeClock:
  """time.perf_counter / time.monotonic for the loop: 10 ms a call, plus what we add."""

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    self.now += 0.01
    return self.now


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory):
  """A tiny BigGAN evaluated at steps 2 and 4; each evaluation 'takes' 1000 s of the clock."""
  from gan.train import evaluation, loop, outputs

  workdir = tmp_path_factory.mktemp("evaluated") / "run"
  config = tiny_config()
  config.eval.every_steps, config.eval.at_end = 2, True
  config.eval.metrics = "swd,shapes10_fid,class_accuracy"
  config.eval.num_samples, config.eval.batch_size = EVAL_SAMPLES, 16
  config.eval.best_metric = "shapes10_fid"
  config.eval.stats_dir = str(tmp_path_factory.mktemp("stats"))
  config.keep_checkpoints = 1  # the latest, and the best by shapes10_fid
  clock, scalars = FakeClock(), []
  real_run, real_write = evaluation.RunEvaluation.run, outputs.RunOutputs.write_scalars

  def slow_run(self, *args):
    real_run(self, *args)
    clock.now += 1000.0
    return 1000.0

  def record(self, step, values):
    scalars.append((step, dict(values)))
    real_write(self, step, values)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(loop, "time", types.SimpleNamespace(perf_counter=clock, monotonic=clock))
    patch.setattr(evaluation.RunEvaluation, "run", slow_run)
    patch.setattr(outputs.RunOutputs, "write_scalars", record)
    train(config, workdir)
  return workdir, config, scalars


def test_training_evaluates_on_schedule_and_keeps_the_best(evaluated_run):
  workdir, config, scalars = evaluated_run
  records = {step: json.loads((workdir / "eval" / f"step_{step:08d}.json").read_text())
             for step in (2, 4)}
  for step, record in records.items():
    assert record["step"] == step and record["images_shown"] == 8 * step
    assert set(record["figures"]) == {"swd_32", "swd_16", "swd", "shapes10_fid",
                                      "class_accuracy"}
    p = record["protocol"]
    assert p["generated_images"] == EVAL_SAMPLES and p["reference_images"] == 200
    assert "not comparable to Inception" in p["networks"]["shapes10"]
    assert p["quantisation"].startswith("uint8")
  logged = {step: s for step, s in scalars if "eval/shapes10_fid" in s}
  assert sorted(logged) == [2, 4]
  for step in (2, 4):
    assert logged[step]["eval/shapes10_fid"] == records[step]["figures"]["shapes10_fid"]
  best = min((2, 4), key=lambda s: records[s]["figures"]["shapes10_fid"])
  kept = {int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()}
  assert kept == {4, best}


def test_evaluation_time_is_not_in_images_per_second(evaluated_run):
  _, _, scalars = evaluated_run
  rates = [s["images_per_sec"] for _, s in scalars if "images_per_sec" in s]
  assert rates
  # 16 images per log window; had 1000 s of evaluation counted, a rate would be < 0.02/s.
  assert min(rates) > 1.0, rates


def test_standalone_evaluation_reproduces_training_and_sweeps(evaluated_run):
  workdir, config, _ = evaluated_run
  env = subprocess_env(1)
  result = subprocess.run(
      [PYTHON, "-m", "gan.evaluate", f"--workdir={workdir}", "--step=4",
       f"--num_samples={EVAL_SAMPLES}", "--truncation_sweep=0,0.5"], cwd=REPO, env=env,
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "truncation" in result.stdout and "shapes10_fid" in result.stdout
  plain = json.loads((workdir / "eval" / f"step_00000004_n{EVAL_SAMPLES}.json").read_text())
  truncated = json.loads(
      (workdir / "eval" / f"step_00000004_n{EVAL_SAMPLES}_trunc0.5.json").read_text())
  trained = json.loads((workdir / "eval" / "step_00000004.json").read_text())
  for name, value in trained["figures"].items():  # same seed, same protocol: same figures
    np.testing.assert_allclose(plain["figures"][name], value, rtol=1e-6, err_msg=name)
  assert truncated["truncation"] == 0.5 and "truncation 0.5" in truncated["protocol"]["generator"]
  from PIL import Image
  with Image.open(workdir / "eval" / "step_00000004_truncation_sweep.png") as plot:
    assert plot.size == (640, 480)
    assert len(set(plot.convert("RGB").getdata())) > 2  # axes, curve, labels

  missing = subprocess.run(
      [PYTHON, "-m", "gan.evaluate", f"--workdir={workdir}", "--metrics=fid"], cwd=REPO,
      env=env, capture_output=True, text=True, timeout=600)
  assert missing.returncode != 0 and "Traceback" not in missing.stderr
  lines = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
  assert len(lines) == 1 and "--inception_weights=PATH" in lines[0], missing.stderr[-2000:]


def test_fid_is_kid_and_pr_run_through_inception_end_to_end(tmp_path):
  """Random Inception weights from a converted file; every Inception figure comes out finite."""
  from inception_fixtures import random_flat
  from gan.evaluation import inception_weights
  from gan.evaluation.protocol import Evaluator
  from gan.families import registry
  from gan.train.sharding import make_mesh, replicated

  weights = tmp_path / "inception.npz"
  inception_weights.save_npz(inception_weights.unflatten(random_flat(0)), weights)
  config = tiny_config()
  config.data.num_examples = 12
  config.eval.metrics = "fid,is,kid,pr"
  config.eval.inception_weights = str(weights)
  config.eval.num_samples, config.eval.batch_size = 8, 4
  config.eval.kid_subset_size, config.eval.is_splits = 4, 2
  config.eval.stats_dir = str(tmp_path / "stats")
  family = registry.get("biggan")
  model = family.build(config)
  mesh = make_mesh()
  state = jax.jit(lambda: family.init_state(model, config), out_shardings=replicated(mesh))()
  evaluator = Evaluator(config, mesh, verbose=False)
  result = evaluator.evaluate(family.eval_generator(model, config, state, 0, None))
  assert set(result.figures) == {"fid", "is", "is_std", "kid", "kid_std", "precision", "recall"}
  assert all(np.isfinite(v) for v in result.figures.values()), result.figures
  assert result.figures["fid"] > 0 and result.figures["is"] >= 1.0
  assert 0 <= result.figures["precision"] <= 1 and 0 <= result.figures["recall"] <= 1
  p = result.record["protocol"]
  assert p["resize_mode"] == "legacy" and p["is_splits"] == 2
  assert "Inception-v3 2015-12-05" in p["networks"]["inception"]
  assert evaluator.reference().features("inception").shape == (12, 2048)


def test_progan_samples_each_phase_at_the_final_resolution():
  """Lower phases are upscaled (nearest) to the run's resolution; a fade blends at its alpha."""
  from conftest import BATCH, PHASE_IMAGES, tiny_progan
  from gan.families import registry

  config = tiny_progan()  # stable 4x4, fade 8x8, stable 8x8
  family = registry.get("progan")
  model = family.build(config)
  state = jax.jit(lambda: family.init_state(model, config))()
  rng = jax.random.PRNGKey(0)
  low = family.eval_generator(model, config, state, BATCH, None)
  images, labels = jax.jit(low.fn, static_argnums=2)(low.inputs, rng, 4)
  assert labels is None and not low.conditional and images.shape == (4, 8, 8, 3)
  assert "4x4 stable" in low.description and "upscaled (nearest) to 8x8" in low.description
  images = np.asarray(images)
  np.testing.assert_array_equal(images, images[:, ::2, ::2].repeat(2, 1).repeat(2, 2))

  mid_fade = PHASE_IMAGES + PHASE_IMAGES // 2 + 1  # the last image shown: half-way in
  fade = family.eval_generator(model, config, state, mid_fade, None)
  assert "8x8 fade, alpha 0.500" in fade.description and "upscaled" not in fade.description
  assert float(fade.inputs[1]) == 0.5
  final = family.eval_generator(model, config, state, 3 * PHASE_IMAGES, None)
  assert "8x8 stable" in final.description and final.key != fade.key != low.key


def test_stats_command_fills_the_cache(tmp_path):
  result = subprocess.run(
      [PYTHON, "-m", "gan.evaluate", "stats", "--config=configs/quickstart.py",
       "--config.data.num_examples=48", "--config.eval.batch_size=16",
       "--metrics=shapes10_fid", f"--stats_dir={tmp_path}"], cwd=REPO, env=subprocess_env(1),
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"Reference statistics of shapes10 train 32x32, 48 images for shapes10 in {tmp_path}" \
      in result.stdout, result.stdout
  (cached,) = tmp_path.glob("shapes10-train-32px-shapes10-48-*.npz")
  with np.load(cached, allow_pickle=False) as data:
    assert int(data["count"]) == 48 and data["cov"].shape == (128, 128)
    assert json.loads(str(data["description"]))["num_examples"] == 48


def test_a_failed_evaluation_costs_its_figures_not_the_run(monkeypatch, caplog):
  from gan.evaluation.protocol import Evaluator
  from gan.train.evaluation import RunEvaluation
  from gan.train.sharding import make_mesh

  config = tiny_config()
  config.eval.every_steps, config.eval.metrics = 2, "swd"

  class Family:
    def eval_generator(self, *args):
      return None

  def singular(self, generator, **kwargs):
    raise ValueError("FID: sqrtm of the covariance product is not finite")

  monkeypatch.setattr(Evaluator, "evaluate", singular)
  evaluation = RunEvaluation(config, make_mesh(), Family(), model=None)
  with caplog.at_level("ERROR"):
    seconds = evaluation.run(state=None, step=2, images_shown=16, outputs=None)
  assert seconds >= 0 and evaluation.figures_at(2) is None
  assert "Evaluation at step 2 failed (ValueError: FID: sqrtm" in caplog.text
  assert "training continues" in caplog.text


def test_progress_bar_writes_a_line_per_tenth_with_an_eta(monkeypatch):
  import io

  from gan.evaluation import progress_bar

  clock = iter(range(0, 1000, 10))  # start at 0 s, then 10 s per update
  monkeypatch.setattr(progress_bar, "time",
                      types.SimpleNamespace(monotonic=lambda: float(next(clock))))
  stream = io.StringIO()  # not a terminal: plain lines
  bar = progress_bar.ProgressBar("Evaluating", 200, stream=stream)
  for _ in range(20):
    bar.update(10)
  lines = stream.getvalue().splitlines()
  assert len(lines) == 11  # 5% (the first update), then 10%, 20%, ..., 100%
  assert lines[0] == "Evaluating: 10/200 images (5%), 1 images/s, elapsed 10s, ETA 3m10s"
  assert lines[-1] == "Evaluating: 200/200 images (100%), 1 images/s, elapsed 3m20s, ETA 0s"
