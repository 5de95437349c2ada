"""What a user sees on the console: one line per problem, never a traceback for a
mistake of theirs (a bad flag, a missing file) or a fault of the machine (a full
disk, a dead peer).

* ``parse_flags`` turns absl/ml_collections flag errors into ``error:`` lines:
  an unknown ``--config.*`` key gets "did you mean", a missing ``--config``
  file says so.
* ``quiet_libraries`` keeps the log readable: orbax's and TFDS's INFO lines per
  checkpoint or dataset, and the ERROR records (each with a traceback, several
  per failed save) that orbax's background threads log when a save fails,
  are dropped; the checkpointer reports each failed save in one line of its
  own, gan.train.outputs the first failed TensorBoard write (clu logs every
  one). So are asyncio's "Event loop is closed" and "... exception was never
  retrieved", which tensorstore callbacks raise into orbax's already-closed
  event loops after such a failure. Pass ``-v=1`` to see all of them.
"""

import importlib.util
import logging as py_logging
import os
import sys

from absl import flags, logging

# (path fragment of the logging call site, levels dropped). orbax: an INFO line per
# checkpoint, and an ERROR with traceback per background thread of a failed save;
# TFDS: INFO per dataset opened; clu: an ERROR with traceback per failed async write
# (gan.train.outputs reports the first); asyncio: futures of failed orbax writes.
_DROPPED = (("/orbax/", (py_logging.INFO, py_logging.ERROR, py_logging.CRITICAL)),
            ("/tensorflow_datasets/", (py_logging.INFO,)),
            ("/clu/asynclib.py", (py_logging.ERROR,)),
            ("/asyncio/base_events.py", (py_logging.ERROR,)))
_ASYNCIO_DROPPED = ("Task exception was never retrieved", "Future exception was never retrieved")
# orbax WARNINGs that only restate a read-only restore (gan.evaluate asks for one).
_ORBAX_READ_ONLY = ("CheckpointManagerOptions.read_only=True", "Given directory is read only")


def _verbose() -> bool:
  return logging.get_verbosity() >= 1  # -v=1 (absl), i.e. DEBUG


class _LibraryFilter(py_logging.Filter):
  """Drops the library records listed in _DROPPED (all of them with -v=1)."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    if _verbose():
      return True
    if "/orbax/" in record.pathname and record.getMessage().startswith(_ORBAX_READ_ONLY):
      return False
    for fragment, levels in _DROPPED:
      if fragment in record.pathname and record.levelno in levels:
        # Of asyncio's, only the messages above.
        return "asyncio" in fragment and not record.getMessage().startswith(_ASYNCIO_DROPPED)
    return True


def _ignore_closed_event_loops(unraisable) -> None:
  if (not _verbose() and isinstance(unraisable.exc_value, RuntimeError)
      and str(unraisable.exc_value) == "Event loop is closed"):
    return
  sys.__unraisablehook__(unraisable)


def quiet_libraries() -> None:
  logging.get_absl_handler().addFilter(_LibraryFilter())
  sys.unraisablehook = _ignore_closed_event_loops


# ---- Flags ----

def _argument_value(argv: list[str], name: str) -> str | None:
  """The value of --name=V or --name V in ``argv``."""
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _load_config(spec: str):
  """get_config() of a config file given as 'path[:argument]' (as --config takes it)."""
  path, _, argument = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("gan_user_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(argument) if argument else module.get_config()


def _unknown_override(argv: list[str]) -> str | None:
  """'error: ...' for the first --config.* override that names no field, if any."""
  from gan.config.rules import flatten, suggest_fields  # only on this error path
  spec = _argument_value(argv, "config")
  try:
    known = sorted(flatten(_load_config(spec)))
  except Exception:  # pylint: disable=broad-except (the file itself is reported elsewhere)
    return None
  for arg in argv:
    if arg.startswith("--config.") and "=" in arg:
      path = arg[len("--config."):].split("=", 1)[0]
      if path not in known:
        hints = suggest_fields(path, known)
        hint = (f"did you mean {' or '.join('config.' + h for h in hints)}?" if hints else
                f"the fields are those printed by: python -c \"import runpy; "
                f"print(runpy.run_path('{spec}')['get_config']())\"")
        return f"error: {arg}: {spec.partition(':')[0]} has no field config.{path}; {hint}"
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with every failure turned into one ``error:`` line (exit 1)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    message = str(error)
    if "Traceback" in message:  # the config file's own code raised: where it did helps
      sys.exit(f"error: {message.strip()}")
    sys.exit(f"error: {' '.join(message.split())} (see --helpshort)")
  except (KeyError, AttributeError) as error:  # ml_collections: an unknown --config.* key
    sys.exit(_unknown_override(argv) or f"error: {error}")
  except OSError as error:  # ml_collections: the --config file could not be loaded
    sys.exit(config_file_error(argv, error))


def config_file_error(argv: list[str], error: BaseException) -> str:
  """The 'error:' line for a --config file that could not be loaded."""
  spec = _argument_value(argv, "config") or ""
  path = spec.partition(":")[0]
  if path and not os.path.isfile(path):
    return (f"error: --config={spec}: no such file ({os.path.abspath(path)}); pass a config "
            "file such as configs/quickstart.py, relative to the current directory.")
  return f"error: --config={spec} could not be loaded: {' '.join(str(error).split())}"
