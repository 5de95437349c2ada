"""The workdir of a run: checked before training starts.

Everything a run writes lives under ``--workdir`` (local or gs://). Before
anything compiles, ``open_workdir`` refuses an empty name or a path that is a
file, creates the directory and writes (then removes) a probe file, so that a
full or read-only file system stops the run at once with one line that says
so. Metadata files in it are written with ``gan.fileio.atomic_write``.
"""

from etils import epath

from gan.fileio import atomic_write, describe_os_error


class WorkdirError(RuntimeError):
  """The workdir cannot be used; the message names the fix."""


def check_argument(workdir: str | None) -> None:
  """Raises WorkdirError for an empty ``--workdir`` or one that names a file."""
  if workdir is None or not workdir.strip():
    raise WorkdirError("--workdir is empty; pass the directory for this run's checkpoints, "
                       "logs and samples, e.g. --workdir=workdirs/run1.")
  path = epath.Path(workdir)
  if path.exists() and not path.is_dir():
    raise WorkdirError(f"--workdir={workdir} is a file, not a directory; choose another "
                       "--workdir.")


def open_workdir(workdir: str, process_index: int = 0) -> epath.Path:
  """Checks ``workdir``, creates it and proves it writable; returns it as a path."""
  check_argument(workdir)
  path = epath.Path(workdir)
  probe = path / f".write-probe-{process_index}"
  try:
    path.mkdir(parents=True, exist_ok=True)
    atomic_write(probe, b"gan can write here\n")
    probe.unlink()
    if process_index == 0:  # files of a killed atomic_write (not others' probes, in flight)
      for leftover in path.glob(".*.tmp-*"):
        if not leftover.name.startswith(".write-probe-"):
          leftover.unlink(missing_ok=True)
  except OSError as error:
    raise WorkdirError(f"cannot write to --workdir={workdir}: {describe_os_error(error)}. "
                       "Free space, fix the permissions, or choose another --workdir; "
                       "checkpoints already there are kept.") from error
  return path
