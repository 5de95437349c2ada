"""Every config field has a rule (gan/config/run.py and each family's config), and validate
enforces each one.

Pure Python: nothing here compiles.
"""

import glob
import os

import ml_collections
import pytest

from conftest import REPO, tiny_config, validate
from gan.config import ConfigError
from gan.config.rules import Choice, check_fields, flatten
from gan.config.validate import family_rules
from gan.families import registry
from test_config_and_errors import load_config

CONFIG_NAMES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "configs",
                                                                              "*.py")))


FIELDS = {name: family_rules(registry.get(name)) for name in registry.names()}


def rules_for(config) -> dict:
  return FIELDS[config.model.name]


def with_value(config, path: str, value) -> ml_collections.ConfigDict:
  """``config`` with ``path`` set to ``value``, whatever its type (ConfigDicts refuse type changes)."""
  d = config.to_dict()
  *parents, leaf = path.split(".")
  node = d
  for key in parents:
    node = node[key]
  node[leaf] = value
  return ml_collections.ConfigDict(d)


def without(config, path: str) -> ml_collections.ConfigDict:
  d = config.to_dict()
  *parents, leaf = path.split(".")
  node = d
  for key in parents:
    node = node[key]
  del node[leaf]
  return ml_collections.ConfigDict(d)


def error(config, num_devices: int = 1) -> str:
  with pytest.raises(ConfigError) as e:
    validate(config, num_devices=num_devices)
  return str(e.value)


# --- every field has a rule -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_default_field_has_a_rule_and_every_rule_a_field(name):
  defaults, rules = registry.get(name).defaults, FIELDS[name]
  fields = set(flatten(defaults()))
  assert sorted(fields - set(rules)) == [], "give the new fields a rule (the family's config.py)"
  assert sorted(set(rules) - fields) == [], "rules for fields the defaults do not have"
  assert check_fields(defaults(), rules) == []


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_shipped_config_fields_all_have_rules(name):
  config = load_config(name)
  assert set(flatten(config)) == set(rules_for(config))


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_shipped_configs_are_valid_on_8_devices(name):
  validate(load_config(name), num_devices=8)


def test_shipped_configs_include_both_models():
  assert {load_config(name).model.name for name in CONFIG_NAMES} == set(registry.names())


# --- every rule is enforced (cases generated from the tables) ---------------------------------

def _cases():
  return [pytest.param(model, path, value, id=f"{model}-{path}-{value!r}")
          for model, rules in FIELDS.items() for path, rule in rules.items()
          for value in rule.invalid_examples()]


BASES = {"biggan": tiny_config, "progan": lambda: load_config("progan_quickstart"),
         "stylegan": lambda: load_config("stylegan_quickstart"),
         "stylegan2": lambda: load_config("stylegan2_quickstart")}


def test_the_generated_cases_start_from_valid_configs():
  for base in BASES.values():
    validate(base(), num_devices=1)
  assert BASES.keys() == FIELDS.keys()
  assert len(_cases()) > 3 * sum(len(rules) for rules in FIELDS.values())


@pytest.mark.parametrize("model, path, value", _cases())
def test_invalid_value_is_reported_with_its_path(model, path, value):
  rule = FIELDS[model][path]
  assert rule.check(value) is not None
  msg = error(with_value(BASES[model](), path, value))
  assert f"config.{path}={value!r}: " in msg
  if isinstance(rule, Choice):
    assert str(list(rule.values)) in msg


@pytest.mark.parametrize("model", sorted(FIELDS))
def test_every_missing_field_is_reported(model):
  rules = FIELDS[model]
  defaults = registry.get(model).defaults_name
  for path in rules:
    msg = error(without(BASES[model](), path))
    if path == "model.name":  # which family's defaults, it cannot tell: it lists them
      assert msg.startswith("config.model.name is missing; start the config from one of ")
      assert defaults in msg
      continue
    assert f"config.{path} is missing; start the config from {defaults}." in msg, path


# --- exact messages, written by hand ----------------------------------------------------------

def test_misspelt_field_suggests_the_known_one():
  c = tiny_config()
  c.train.batchsize = 8
  assert error(c) == ("Invalid config:\n  - config.train.batchsize=8: unknown field; "
                      "did you mean config.train.batch_size?")


def test_unknown_field_without_a_near_name():
  c = tiny_config()
  c.colour = "blue"
  assert error(c) == ("Invalid config:\n  - config.colour='blue': unknown field; remove it (the "
                      "known fields are those of gan.families.biggan.config.biggan_defaults())")


def test_bool_is_not_an_int():
  msg = error(with_value(tiny_config(), "train.batch_size", True))
  assert msg == "Invalid config:\n  - config.train.batch_size=True: expected an int >= 1, got bool."


def test_float_batch_size_is_refused_without_a_traceback():
  msg = error(with_value(tiny_config(), "train.batch_size", 8.0))
  assert msg == ("Invalid config:\n  - config.train.batch_size=8.0: expected an int >= 1, "
                 "got float.")


def test_float_resolution_is_not_a_choice():
  msg = error(with_value(tiny_config(), "model.resolution", 32.0))
  assert ("config.model.resolution=32.0: not a valid choice; choose one of "
          "[32, 64, 128, 256, 512].") in msg


def test_resume_mode_is_validated():
  c = tiny_config()
  c.resume = "always"
  assert error(c) == ("Invalid config:\n  - config.resume='always': not a valid choice; "
                      "choose one of ['auto', 'force'].")


def test_several_problems_are_reported_together():
  c = tiny_config(batch_size=12, g_lr=0.0)
  c.model.resolution = 48
  c.data.resize_filter = "nearest"
  c.train.ema_decay = 1.0
  assert error(c, num_devices=8) == "\n  - ".join([
      "Invalid config:",
      "config.data.resize_filter='nearest': not a valid choice; choose one of "
      "['bicubic', 'bilinear', 'box', 'lanczos'].",
      "config.model.resolution=48: not a valid choice; choose one of [32, 64, 128, 256, 512].",
      "config.train.ema_decay=1.0: out of range; expected a finite number in [0, 1).",
      "config.train.g_lr=0.0: out of range; expected a finite number > 0.",
      "the micro-batch batch_size/grad_accum_steps=12 is not divisible by the 8 devices; "
      "use a multiple of 8.",
  ])


def test_cross_field_checks_skip_fields_that_failed_their_rule():
  c = with_value(tiny_config(), "model.z_dim", "16")
  assert error(c) == ("Invalid config:\n  - config.model.z_dim='16': expected an int >= 1, "
                      "got str.")


def test_misspelt_model_name_lists_the_registered_families():
  c = load_config("progan_quickstart")
  c.model.name = "pro_gan"
  assert error(c) == ("config.model.name='pro_gan': not a registered family; registered: "
                      "biggan, progan, stylegan, stylegan2. Did you mean 'progan'?")


def test_progan_batches_and_channels_are_checked_across_fields():
  c = load_config("progan_quickstart")
  c.schedule.batch_sizes = "4:6,8:6"
  c.model.fmap_decay = 20.0
  assert error(c, num_devices=4) == "\n  - ".join([
      "Invalid config:",
      "config.model.fmap_base=512 with fmap_decay=20.0 leaves 0 channels at 32x32; raise "
      "fmap_base or lower fmap_decay.",
      "batch 6 (at 4x4, 8x8) is not divisible by the 4 devices; use a multiple of 4 in "
      "config.schedule.batch_sizes or default_batch_size.",
      "batch 6 (at 4x4, 8x8) is not divisible by the minibatch-stddev group size 4; change "
      "config.model.mbstd_group_size or the batch.",
  ])


def test_progan_schedule_syntax_names_the_entry():
  c = load_config("progan_quickstart")
  c.schedule.batch_sizes = "4:32,12:32"
  assert error(c) == ("Invalid config:\n  - config.schedule.batch_sizes='4:32,12:32': expected a "
                      "string like '4:512,8:256' (Bad entry '12:32' in '4:32,12:32': resolution "
                      "12 is not a power of two (4, 8, 16, ...)).")


def test_negative_fault_injection_step_is_refused():
  c = tiny_config(inject_nonfinite_steps="5,-1")
  assert error(c) == ("Invalid config:\n  - config.train.inject_nonfinite_steps='5,-1': expected "
                      "a string like '100,101' (steps must be >= 0, got '5,-1').")
