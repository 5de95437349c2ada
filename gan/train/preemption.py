"""Preemption: on SIGTERM, checkpoint at the next step boundary and exit cleanly.

Preemptible VMs, SLURM (`scancel`, time limits with --signal) and Kubernetes
send SIGTERM some seconds before killing a job. The handler only sets a flag;
the training loop checks it between steps, writes a checkpoint of the last
completed step, waits for it to be on disk and returns. Rerunning the same
command resumes from it.

With several processes the decision must be the same on every process (they
run collectives together): ``should_stop`` combines the local flags with one
tiny all-gather, only when there is more than one process and only every
``check_every`` steps, so that no step pays a host sync for it.
"""

import signal

import jax
import numpy as np
from absl import logging


class PreemptionWatcher:
  """Records SIGTERM (and any extra ``signals``) until the loop asks."""

  def __init__(self, signals=(signal.SIGTERM,), check_every: int = 1):
    self.received: int | None = None
    self.check_every = check_every
    self._previous = {}
    for sig in signals:
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # Not the main thread (e.g. a test runner's worker): no handler.
        logging.warning("Cannot install a %s handler outside the main thread.", sig.name)

  def _handle(self, signum, frame):
    del frame
    if self.received is None:
      logging.warning("Received %s: will checkpoint and stop at the next step boundary.",
                      signal.Signals(signum).name)
    self.received = signum

  def should_stop(self, step: int) -> bool:
    """True on every process, at the same ``step``, once any process was signalled.

    With several processes, a process that was not signalled itself takes the
    signal number from the ones that were (``received``) and logs which.
    """
    if jax.process_count() == 1:
      return self.received is not None
    if step % self.check_every:
      return False
    from jax.experimental import multihost_utils
    signals = np.asarray(multihost_utils.process_allgather(np.int32(self.received or 0)))
    signalled = [int(i) for i in np.flatnonzero(signals)]
    if signalled and self.received is None:
      self.received = int(signals[signalled[0]])
      logging.warning("Process(es) %s received %s: stopping at step %d on every process.",
                      signalled, signal.Signals(self.received).name, step)
    return bool(signalled)

  def restore_handlers(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
