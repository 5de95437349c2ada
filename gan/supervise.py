"""Multi-process runs under a small parent that reports a dead peer in one line.

When one process of a ``jax.distributed`` run dies, the others fail in a
collective (a Gloo or NCCL error in Python), or jax's C++ coordination client
aborts them (at once if the coordinator died, else after the heartbeat
timeout), printing a fatal-log line and a thread dump. None of that says
which process died or what to do. So ``gan.main`` runs a multi-process job
as a child of a thin parent (this module; it never imports jax):

* the child's output is passed through line by line, except the output of a
  failure (a collective error the child reports between ``HELD_BEGIN`` and
  ``HELD_END``, or a crash of jax's coordination client) which is held back;
* while its child runs, the parent touches ``<workdir>/.alive/process_<i>``
  every ``BEAT_SECONDS``;
* when the child fails that way or is killed by a signal, the parent looks for
  peers whose file stopped changing for ``STALE_SECONDS`` and prints one line:
  the process that died, the last checkpoint on disk and the command to
  resume. If no peer died, the held output is shown after all: it was a bug
  or a fault of this process, not of a peer.
* SIGTERM and SIGINT are forwarded to the child (preemption still checkpoints);
  the child is killed if the parent dies (Linux's PR_SET_PDEATHSIG).
"""

import ctypes
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

from etils import epath

CHILD_ENV = "GAN_SUPERVISED_CHILD"
PEER_FAILURE_EXIT = 75  # the child: "a collective failed", the parent tells why
HELD_BEGIN, HELD_END = "<<gan: failure details>>", "<<gan: end of failure details>>"
BEAT_SECONDS = 0.5
STALE_SECONDS = 5.0
_PROCESS_LINE = re.compile(r"\] Process (\d+)/(\d+), ")
# The first line of a crash of jax's coordination client (its fatal log, or what
# precedes it), or of Python's fatal-signal dump.
_CRASH = re.compile(r"coordination_service|Terminating process because the JAX distributed|"
                    r"^Fatal Python error|^\*\*\* Check failure stack trace|^F\d{4} ")


def is_child() -> bool:
  return os.environ.get(CHILD_ENV) == "1"


def _kill_child_with_parent() -> None:
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):  # not Linux: the child may outlive a killed parent
    pass


def latest_checkpoint(workdir: epath.Path) -> int | None:
  """The newest complete checkpoint's step in ``workdir`` (orbax's naming), by listing."""
  try:
    steps = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
  except OSError:
    return None
  return max(steps, default=None)


class _Output:
  """Forwards the child's lines, holding back those of a failure until it is judged."""

  def __init__(self):
    self.held: list[tuple[object, bytes]] = []
    self.holding = False
    self.process: tuple[int, int] | None = None  # (index, count), from the child's log
    self.explained = False  # the child printed an error: line of its own
    self._lock = threading.Lock()

  def forward(self, pipe, out) -> None:
    for line in iter(pipe.readline, b""):
      text = line.decode("utf-8", "replace")
      with self._lock:
        if self.process is None and (match := _PROCESS_LINE.search(text)):
          self.process = int(match.group(1)), int(match.group(2))
        if text.startswith("error: "):
          self.explained = True
        if HELD_BEGIN in text or _CRASH.search(text):
          self.holding = True
        if self.holding:
          if HELD_BEGIN not in text and HELD_END not in text:
            self.held.append((out, line))
          continue
      out.write(line)
      out.flush()

  def release(self) -> None:
    """Shows the held lines after all (the failure was not a peer's)."""
    with self._lock:
      for out, line in self.held:
        out.write(line)
        out.flush()
      self.held, self.holding = [], False


def _beat(path: epath.Path, stop: threading.Event) -> None:
  count = 0
  while not stop.wait(BEAT_SECONDS if count else 0):
    count += 1
    try:
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text(f"{count}\n")
    except OSError:  # a full or unreachable disk: peers will think us dead, at worst
      pass


def _beats(directory: epath.Path, count: int) -> dict[int, str | None]:
  def read(i):
    try:
      return (directory / f"process_{i}").read_text()
    except OSError:
      return None
  return {i: read(i) for i in range(count)}


def dead_peers(directory: epath.Path, me: int, count: int) -> list[int]:
  """Processes other than ``me`` whose heartbeat file did not change for STALE_SECONDS."""
  before = _beats(directory, count)
  time.sleep(STALE_SECONDS)
  after = _beats(directory, count)
  return [i for i in range(count) if i != me and (after[i] is None or after[i] == before[i])]


def _resume_hint(workdir: epath.Path, count: int, argv: list[str]) -> str:
  latest = latest_checkpoint(workdir)
  where = (f"the last checkpoint is step {latest} in {workdir / 'checkpoints'}" if latest
           is not None else f"there is no checkpoint in {workdir / 'checkpoints'} yet")
  command = shlex.join(["python", "-m", "gan.main", *argv[1:]])
  return (f"{where}. To resume, start all {count} processes again with their commands; this "
          f"one's was: {command}")


def run(argv: list[str], workdir: str) -> int:
  """Runs ``python -m gan.main argv[1:]`` as a supervised child; returns the exit code."""
  workdir = epath.Path(workdir)
  child = subprocess.Popen([sys.executable, "-m", "gan.main", *argv[1:]],
                           env={**os.environ, CHILD_ENV: "1", "PYTHONUNBUFFERED": "1"},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           preexec_fn=_kill_child_with_parent)
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda signum, frame: child.send_signal(signum))
  output = _Output()
  streams = ((child.stdout, sys.stdout.buffer), (child.stderr, sys.stderr.buffer))
  readers = [threading.Thread(target=output.forward, args=stream, daemon=True)
             for stream in streams]
  for reader in readers:
    reader.start()
  stop, beater = threading.Event(), None
  while child.poll() is None:
    if beater is None and output.process is not None:
      path = workdir / ".alive" / f"process_{output.process[0]}"
      beater = threading.Thread(target=_beat, args=(path, stop), daemon=True)
      beater.start()
    time.sleep(0.1)
  stop.set()  # this process no longer takes part: peers may see it stop
  for reader in readers:
    reader.join()
  code = child.returncode
  if (code == 0 or (code > 0 and code != PEER_FAILURE_EXIT) or output.process is None
      or output.explained):  # the child said what went wrong itself
    output.release()
    return code if code >= 0 else 1
  me, count = output.process
  dead = dead_peers(workdir / ".alive", me, count)
  if dead:
    who = " and ".join(f"process {i}" + (" (the coordinator)" if i == 0 else "") for i in dead)
    sys.stderr.write(f"error: {who} of {count} stopped (killed, crashed or preempted: see its "
                     f"log), so process {me} stopped too; "
                     f"{_resume_hint(workdir, count, argv)}\n")
    return 1
  output.release()
  if code < 0:
    name = signal.Signals(-code).name
    why = " (often the out-of-memory killer)" if name == "SIGKILL" else ""
    sys.stderr.write(f"error: process {me} of {count} was killed by {name}{why}; "
                     f"{_resume_hint(workdir, count, argv)}\n")
  return 1
