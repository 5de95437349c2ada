"""Config machinery shared by every family: field rules, run-level fields, validation.

gan/config/rules.py: the rule types and ``check_fields``; gan/config/run.py:
the fields every family shares; gan/config/validate.py: ``validate``, which
checks a config against its family. A family's own defaults, rules and
cross-field checks live in its package (gan/families/<name>/config.py).
"""


class ConfigError(ValueError):
  """A config that cannot run; the message names the fix."""
