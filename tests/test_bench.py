"""gan.bench: timing a chosen subset of a family's step variants, and a clear error for
a variant the config does not have."""

import subprocess

import pytest

import tiny_stylegan2_config
from conftest import PYTHON, REPO, subprocess_env
from gan.bench import benchmark


def test_only_the_chosen_variant_is_timed_and_the_run_mix_is_left_out():
  config = tiny_stylegan2_config.get_config()
  r = benchmark(config, steps=1, warmup=0, only=["plain"])
  assert list(r["variants"]) == [""]
  plain = r["variants"][""]
  assert plain["step_s"] > 0 and plain["flops_per_step"] > 0 and plain["compile_s"] > 0
  # The run's mix takes pl and r1 steps too: without them there is no run average.
  assert r["step_s"] is None and r["images_per_s"] is None
  assert r["examples_per_step"] == config.train.batch_size


def test_an_unknown_variant_names_the_ones_there_are():
  # The tiny config's R1 interval is a multiple of its path-length interval: no 'r1' alone.
  expected = r"no step variant \['r2'\] in this config; it has \['plain', 'pl', 'pl\+r1'\]"
  with pytest.raises(ValueError, match=expected):
    benchmark(tiny_stylegan2_config.get_config(), steps=1, warmup=0, only=["r2"])


def test_the_command_line_says_so_in_one_line():
  result = subprocess.run(
      [PYTHON, "-m", "gan.bench", "--config=tests/tiny_stylegan2_config.py", "--variants=r2"],
      env=subprocess_env(1), cwd=REPO, text=True, capture_output=True, timeout=300)
  assert result.returncode != 0
  assert "Traceback" not in result.stderr, result.stderr[-2000:]
  assert "gan.bench: --variants: no step variant ['r2']" in result.stderr, result.stderr[-2000:]
