"""Entry point: python -m gan.main --config=configs/quickstart.py --workdir=DIR.

Override any config field with --config.<key>=<value>. For several processes
(hosts), pass --coordinator_address/--num_processes/--process_id, or nothing
on TPU pods and SLURM, where JAX discovers them (see launch/). A mistake in
the flags or config, or a fault of the machine, ends the run with one
``error:`` line that names the fix (gan/console.py, gan/supervise.py).
"""

import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter.

from absl import app, flags, logging  # noqa: E402
import ml_collections  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from gan import console, supervise  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/*.py file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0, for multi-process runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Total number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() with auto-detection "
    "(TPU pods, SLURM) even without --coordinator_address.")
_HEARTBEAT = flags.DEFINE_integer(
    "heartbeat_timeout_seconds", 100, "Multi-process runs: how long jax's coordination "
    "service waits for a silent process before it stops the others.")
flags.mark_flags_as_required(["config", "workdir"])


def _explained_errors() -> tuple:
  """Our own errors, whose messages say what happened and what to do."""
  from gan.config import ConfigError
  from gan.data.tfds_source import DatasetUnavailableError
  from gan.train.checkpointing import (CheckpointMismatchError, CheckpointNotWrittenError,
                                       NoRestorableCheckpointError)
  from gan.train.health import NonFiniteError
  from gan.train.workdir import WorkdirError
  return (ConfigError, DatasetUnavailableError, NonFiniteError, CheckpointMismatchError,
          NoRestorableCheckpointError, CheckpointNotWrittenError, WorkdirError)


def _train(config, workdir: str) -> None:
  import jax  # After flag parsing, so --help stays fast.

  if _COORDINATOR.value or _DISTRIBUTED.value:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value,
                               heartbeat_timeout_seconds=_HEARTBEAT.value)
  logging.info("Process %d/%d, %d local / %d global devices: %s", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)
  from gan.families import registry
  from gan.train import loop
  loop.train(config, workdir, registry.for_config(config))


def _exit_with(message: str) -> None:
  """Ends the run with ``message`` as its one line.

  A process of a multi-process run exits at once: jax's exit handler would wait
  for the other processes at a shutdown barrier, then abort with a fatal log.
  """
  if not supervise.is_child():
    raise SystemExit(message) from None
  sys.stderr.write(message + "\n")
  sys.stderr.flush()
  sys.stdout.flush()
  os._exit(1)


def main(argv):
  del argv
  console.quiet_libraries()
  from gan.fileio import describe_os_error
  from gan.train.workdir import WorkdirError, check_argument
  try:
    check_argument(_WORKDIR.value)
  except WorkdirError as e:
    raise SystemExit(f"error: {e}") from None
  multi_process = bool(_COORDINATOR.value or _DISTRIBUTED.value)
  if multi_process and not supervise.is_child():
    sys.exit(supervise.run(sys.argv, _WORKDIR.value))  # runs this command again as a child
  config = _CONFIG.value
  if not isinstance(config, ml_collections.ConfigDict):  # a placeholder when loading failed
    try:
      config.to_dict()  # raises the loading error
    except Exception as e:  # pylint: disable=broad-except
      raise SystemExit(console.config_file_error(sys.argv, e)) from None
  try:
    _train(config, _WORKDIR.value)
  except _explained_errors() as e:
    _exit_with(f"error: {e}")
  except KeyboardInterrupt:
    _exit_with("error: interrupted; run the same command again to resume from the latest "
               "checkpoint.")
  except OSError as e:  # the machine: a full disk, lost permissions, a missing file
    where = f": {e.filename}" if e.filename else ""
    _exit_with(f"error: {describe_os_error(e)}{where}. Fix the cause, then run the same "
               "command again; the run resumes from its latest checkpoint.")
  except Exception:  # pylint: disable=broad-except
    if not supervise.is_child():
      raise  # a bug: the traceback is what is needed
    # Most likely a collective that failed because a peer died; the parent tells.
    sys.stderr.write(f"{supervise.HELD_BEGIN}\n{traceback.format_exc()}{supervise.HELD_END}\n")
    sys.stderr.flush()
    os._exit(supervise.PEER_FAILURE_EXIT)  # not jax's exit handlers: they wait for the dead


if __name__ == "__main__":
  app.run(main, flags_parser=console.parse_flags)
