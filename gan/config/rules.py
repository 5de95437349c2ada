"""Typed rules for config fields, and checking a config against them.

A family declares one rule per field of its defaults (gan/families/<name>/config.py),
the run-level fields have theirs (gan/config/run.py); ``check_fields`` reports
unknown, missing and invalid fields, each as ``config.<path>=<value>: ...``.
Checks that combine fields are the family's (``Family.check``).
tests/test_config_fields.py fails for a field without a rule, and tries every
rule's ``invalid_examples()``.
"""

import dataclasses
import difflib
import math
from typing import Any, Callable

def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)  # bool is an int subclass


def _wrong_type(expected: str, value) -> str:
  return f"expected {expected}, got {type(value).__name__}"


def _range(lo, hi, lo_closed=True, hi_closed=True) -> str:
  """' in [0, 1)', ' >= 1', ' < 5' or '' (no bounds)."""
  if lo is not None and hi is not None:
    return f" in {'[' if lo_closed else '('}{lo}, {hi}{']' if hi_closed else ')'}"
  if lo is not None:
    return f" {'>=' if lo_closed else '>'} {lo}"
  return f" {'<=' if hi_closed else '<'} {hi}" if hi is not None else ""


def _outside(value, lo, hi, lo_closed=True, hi_closed=True) -> bool:
  return ((lo is not None and (value < lo or (value == lo and not lo_closed))) or
          (hi is not None and (value > hi or (value == hi and not hi_closed))))


@dataclasses.dataclass(frozen=True)
class Int:
  """An int (never a bool or float) in [min, max]; optionally a multiple or a power of two."""
  min: int | None = None
  max: int | None = None
  multiple_of: int | None = None
  power_of_two: bool = False  # image resolutions, which halve down to 4x4

  def describe(self) -> str:
    kind = "a power of two" if self.power_of_two else "an int"
    multiple = f", a multiple of {self.multiple_of}" if self.multiple_of else ""
    return kind + _range(self.min, self.max) + multiple

  def check(self, value) -> str | None:
    if not _is_int(value):
      return _wrong_type(self.describe(), value)
    if (_outside(value, self.min, self.max) or (self.multiple_of and value % self.multiple_of)
        or (self.power_of_two and (value < 1 or value & (value - 1)))):
      return f"out of range; expected {self.describe()}"
    return None

  def invalid_examples(self) -> list:
    lowest = max(self.min or 1, 1)
    examples = [str(lowest), float(lowest), True]
    examples += [self.min - 1] if self.min is not None else []
    examples += [self.max + 1] if self.max is not None else []
    examples += [lowest * 2 + 1] if self.multiple_of or self.power_of_two else []  # odd, > 1
    return examples


@dataclasses.dataclass(frozen=True)
class Float:
  """A finite real number (an int is fine, a bool is not) between the bounds."""
  min: float | None = None
  max: float | None = None
  min_inclusive: bool = True
  max_inclusive: bool = True

  def describe(self) -> str:
    return "a finite number" + _range(self.min, self.max, self.min_inclusive, self.max_inclusive)

  def check(self, value) -> str | None:
    if not (_is_int(value) or isinstance(value, float)):
      return _wrong_type(self.describe(), value)
    if not math.isfinite(value) or _outside(value, self.min, self.max, self.min_inclusive,
                                            self.max_inclusive):
      return f"out of range; expected {self.describe()}"
    return None

  def invalid_examples(self) -> list:
    examples = ["0.5", True, math.nan, math.inf]
    if self.min is not None:  # the nearest number outside the bound
      examples.append(math.nextafter(self.min, -math.inf) if self.min_inclusive else self.min)
    if self.max is not None:
      examples.append(math.nextafter(self.max, math.inf) if self.max_inclusive else self.max)
    return examples


@dataclasses.dataclass(frozen=True)
class Bool:
  def check(self, value) -> str | None:
    return None if isinstance(value, bool) else _wrong_type("a bool", value)

  def invalid_examples(self) -> list:
    return ["true", 1]


@dataclasses.dataclass(frozen=True)
class Str:
  """A string; ``nonempty`` refuses '', ``optional`` accepts None."""
  nonempty: bool = False
  optional: bool = False

  def check(self, value) -> str | None:
    if not (isinstance(value, str) or (self.optional and value is None)):
      return _wrong_type("None or a string" if self.optional else "a string", value)
    return "expected a non-empty string" if self.nonempty and value == "" else None

  def invalid_examples(self) -> list:
    return [1, False] + ([] if self.optional else [None]) + ([""] if self.nonempty else [])


@dataclasses.dataclass(frozen=True, init=False)
class Choice:
  """One of ``values``, of the same type (so 64.0 or True never pass for 64 or 1)."""
  values: tuple

  def __init__(self, *values):
    object.__setattr__(self, "values", values)

  def check(self, value) -> str | None:
    if any(type(value) is type(v) and value == v for v in self.values):
      return None
    return f"not a valid choice; choose one of {list(self.values)}"

  def invalid_examples(self) -> list:
    first = self.values[0]
    if isinstance(first, str):  # a wrong type, and a near miss (case matters)
      return [1, next(v for v in (first.upper(), first + "_x") if v not in self.values)]
    return [str(first), max(self.values) + 1]


@dataclasses.dataclass(frozen=True)
class Text:
  """A string with a syntax: ``parse`` raises ValueError on a bad one."""
  parse: Callable[[str], Any]
  example: str      # a valid value, shown in the message
  bad_example: str  # a string ``parse`` refuses, for the tests

  def check(self, value) -> str | None:
    expected = f"a string like {self.example!r}"
    if not isinstance(value, str):
      return _wrong_type(expected, value)
    try:
      self.parse(value)
    except ValueError as e:
      return f"expected {expected} ({str(e).rstrip('.')})"
    return None

  def invalid_examples(self) -> list:
    return [1, self.bad_example]


@dataclasses.dataclass(frozen=True, init=False)
class OneOf:
  """Passes if any of ``rules`` does (a field that may be an int or a string)."""
  rules: tuple

  def __init__(self, *rules):
    object.__setattr__(self, "rules", rules)

  def check(self, value) -> str | None:
    problems = [rule.check(value) for rule in self.rules]
    if None in problems:
      return None
    wrong_type = f", got {type(value).__name__}"  # see _wrong_type: say why the others failed
    return "; or ".join([p for p in problems if not p.endswith(wrong_type)] or problems)

  def invalid_examples(self) -> list:
    candidates = [v for rule in self.rules for v in rule.invalid_examples()]
    return [v for v in candidates if self.check(v) is not None]


RATE = Float(min=0, min_inclusive=False)
UNIT = Float(min=0, max=1, max_inclusive=False)  # Adam betas, EMA decays: [0, 1)
COUNT = Int(min=1)
# Adam's settings and an EMA decay, as both families name them.
ADAM_FIELDS = {"train.adam_b1": UNIT, "train.adam_b2": UNIT, "train.adam_eps": RATE,
               "train.ema_decay": UNIT}
RESOLUTION = Int(min=4, power_of_two=True)  # ProGAN: halves down to 4x4


def flatten(tree, prefix: str = "") -> dict[str, Any]:
  """{'train': {'lr': 1e-3}} or its ConfigDict -> {'train.lr': 1e-3}, references resolved."""
  if hasattr(tree, "to_dict"):
    tree = tree.to_dict()
  leaves = {}
  for key, value in tree.items():
    if isinstance(value, dict) or hasattr(value, "to_dict"):
      leaves.update(flatten(value, f"{prefix}{key}."))
    else:
      leaves[f"{prefix}{key}"] = value
  return leaves


_SYNONYMS = {  # what people type -> a word of our field names
    "learning_rate": "lr", "lrate": "lr", "batchsize": "batch_size", "bs": "batch_size",
    "steps": "num_steps", "iterations": "num_steps", "iters": "num_steps", "res": "resolution",
    "image_size": "resolution", "size": "resolution", "dataset": "name", "width": "ch",
    "channels": "ch", "z": "z_dim", "latent": "z_dim", "ema": "ema_decay",
}


def suggest_fields(path: str, known: list[str]) -> list[str]:
  """Up to 3 fields of ``known`` that ``path`` (e.g. 'train.learning_rate') may mean."""
  section, _, leaf = path.rpartition(".")
  word = _SYNONYMS.get(leaf, leaf)
  def leaf_matches(field: str) -> bool:
    name = field.rpartition(".")[2]
    return name == word or name.endswith("_" + word) or name.startswith(word + "_")
  by_leaf = sorted(f for f in known if leaf_matches(f))
  # A match in the section typed (train.batchsize: train.batch_size, not eval.batch_size).
  by_leaf = [f for f in by_leaf if f.rpartition(".")[0] == section] or by_leaf
  # Spelling neighbours: any if no field shares the word, else only very close ones.
  close = difflib.get_close_matches(path, known, n=3, cutoff=0.75 if by_leaf else 0.6)
  return list(dict.fromkeys(by_leaf + close))[:3]


def check_fields(config, rules: dict, start_from: str = "the defaults") -> list[str]:
  """One message per unknown, missing or invalid field of ``config``, sorted by path."""
  values, problems = flatten(config), []
  for path in sorted(set(values) | set(rules)):
    if path not in values:
      problems.append(f"config.{path} is missing; start the config from {start_from}.")
    elif path not in rules:
      close = suggest_fields(path, sorted(rules))
      hint = (f"did you mean {' or '.join('config.' + c for c in close)}?" if close
              else f"remove it (the known fields are those of {start_from})")
      problems.append(f"config.{path}={values[path]!r}: unknown field; {hint}")
    elif (problem := rules[path].check(values[path])) is not None:
      problems.append(f"config.{path}={values[path]!r}: {problem}.")
  return problems


def fields_valid(config, rules: dict, *paths: str) -> bool:
  """Whether every one of ``paths`` is present and passes its rule (for cross-field checks)."""
  values = flatten(config)
  return all(path in values and rules[path].check(values[path]) is None for path in paths)
