"""The registered GAN families: ``config.model.name`` -> its ``FAMILY``.

Families are imported only when asked for, so reading a config (or --help)
does not import every family's networks. A new family registers its module
here (see docs/architecture.md); ``register`` adds one at run time.
"""

import difflib
import importlib

from gan.config import ConfigError

_MODULES = {  # name -> the module that defines FAMILY
    "biggan": "gan.families.biggan.family",
    "progan": "gan.families.progan.family",
    "stylegan": "gan.families.stylegan.family1",
    "stylegan2": "gan.families.stylegan.family2",
}


def register(name: str, module: str) -> None:
  """Makes ``config.model.name=name`` use ``module``'s ``FAMILY``."""
  _MODULES[name] = module


def names() -> list[str]:
  return sorted(_MODULES)


def get(name):
  """The family called ``name``; ConfigError listing the registered ones if there is none."""
  if name not in _MODULES:
    close = difflib.get_close_matches(str(name), names(), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"config.model.name={name!r}: not a registered family; registered: "
                      f"{', '.join(names())}.{hint}")
  family = importlib.import_module(_MODULES[name]).FAMILY
  assert family.name == name, (family.name, name)
  return family


def for_config(config):
  """The family of ``config`` (by config.model.name)."""
  model = config.get("model") if hasattr(config, "get") else None
  if model is None or not hasattr(model, "get") or "name" not in model:
    starts = ", ".join(get(name).defaults_name for name in names())
    raise ConfigError(f"config.model.name is missing; start the config from one of {starts}.")
  return get(model.name)


def validate(config, num_devices: int, num_processes: int = 1,
             host_memory: int | None = None) -> None:
  """gan.config.validate.validate against the family ``config`` names."""
  from gan.config.validate import validate as validate_against
  validate_against(config, for_config(config), num_devices, num_processes, host_memory)
