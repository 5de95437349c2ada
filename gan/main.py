"""Entry point: python -m gan.main --config=configs/quickstart.py --workdir=DIR.

Override any config field with --config.<key>=<value>. For several processes
(hosts), pass --coordinator_address/--num_processes/--process_id, or nothing
on TPU pods and SLURM, where JAX discovers them (see launch/).
"""

import logging as py_logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter.

from absl import app, flags, logging
from ml_collections import config_flags

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
flags.mark_flags_as_required(["config", "workdir"])


class _LibraryInfoFilter(py_logging.Filter):
  """Drops INFO records from orbax and TFDS (lines per checkpoint / dataset open)."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    return record.levelno >= py_logging.WARNING or not any(
        library in record.pathname for library in ("orbax", "tensorflow_datasets"))


def main(argv):
  del argv
  logging.get_absl_handler().addFilter(_LibraryInfoFilter())
  import jax  # After flag parsing, so --help stays fast.

  if _COORDINATOR.value or _DISTRIBUTED.value:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  logging.info("Process %d/%d, %d local / %d global devices: %s", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)
  from gan.config import ConfigError
  from gan.data.pipeline import DatasetUnavailableError
  from gan.train import progan_trainer, trainer
  from gan.train.checkpointing import (CheckpointMismatchError, CheckpointNotWrittenError,
                                       NoRestorableCheckpointError)
  from gan.train.health import NonFiniteError

  train = progan_trainer.train if _CONFIG.value.model.name == "progan" else trainer.train
  try:
    train(_CONFIG.value, _WORKDIR.value)
  except (ConfigError, DatasetUnavailableError, NonFiniteError, CheckpointMismatchError,
          NoRestorableCheckpointError, CheckpointNotWrittenError) as e:  # Our own, explained errors.
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  app.run(main)
