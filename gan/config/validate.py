"""Validation of a whole config against its family, before anything compiles.

Every field is checked against its rule (the run-level ones of
gan/config/run.py and the family's own); then the family's checks that
combine fields, each run only where the fields it reads passed their rules;
then the data settings. One ConfigError lists every problem and its fix.
"""

import ml_collections

from gan.config import ConfigError
from gan.config.evaluation import EVAL_FIELDS, eval_problems
from gan.config.rules import check_fields, fields_valid
from gan.config.run import RUN_FIELDS, data_problems

_DATA_FIELDS = ("data.name", "data.label_key", "data.num_classes", "data.num_examples",
                "model.resolution")


def family_rules(family) -> dict:
  """Every field's rule for a config of ``family``: the run-level ones and its own."""
  return {**RUN_FIELDS, **family.field_rules()}


def validate(config: ml_collections.ConfigDict, family, num_devices: int,
             num_processes: int = 1, host_memory: int | None = None) -> None:
  """Raises ConfigError naming every problem with ``config`` (a config of ``family``).

  ``host_memory``: bytes available for input batches (default: measured now).
  """
  rules = family_rules(family)
  errors = check_fields(config, rules, start_from=family.defaults_name)
  def valid(*paths: str) -> bool:
    return fields_valid(config, rules, *paths)

  if valid("model.name") and config.model.name != family.name:
    errors.append(f"config.model.name={config.model.name!r} is not {family.name!r}, the family "
                  "this config is checked against.")
  errors += family.check(config, num_devices, num_processes, valid)
  if valid(*EVAL_FIELDS, "data.name", "data.label_key", "model.resolution"):
    errors += eval_problems(config, num_devices, family.conditional)
  largest = family.largest_step_input(config, valid) if valid(*_DATA_FIELDS) else None
  if largest is not None:
    examples, field = largest
    errors += data_problems(config, conditional=family.conditional, batch_field=field,
                            examples_per_step=examples, num_processes=num_processes,
                            host_memory=host_memory)
  if errors:
    raise ConfigError("Invalid config:\n  - " + "\n  - ".join(errors))
