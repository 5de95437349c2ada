"""Writing files so that a reader never sees half of one.

``atomic_write`` is for metadata and small outputs (config.json, summaries,
sample grids): a kill or a full disk mid-write leaves the old content or the
new, never a truncated file that a later run or tool chokes on.
"""

import errno
import os

from etils import epath


def _is_local(path: epath.Path) -> bool:
  return "://" not in os.fspath(path)


def atomic_write(path, data: str | bytes) -> None:
  """Replaces ``path`` with ``data``; a reader sees the old content or the new, never part.

  Locally: a temporary file next to it, fsync, rename over it, fsync the
  directory. Object stores (gs://) replace an object atomically by themselves.
  """
  path = epath.Path(path)
  payload = data.encode() if isinstance(data, str) else data
  if not _is_local(path):
    path.write_bytes(payload)
    return
  temp = path.parent / f".{path.name}.tmp-{os.getpid()}"
  try:
    with open(temp, "wb") as f:
      f.write(payload)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temp, path)
  except BaseException:
    temp.unlink(missing_ok=True)
    raise
  directory = os.open(path.parent, os.O_RDONLY)
  try:
    os.fsync(directory)  # the rename itself survives a power cut
  finally:
    os.close(directory)


def describe_os_error(error: OSError) -> str:
  """'No space left on device' and friends, without Python's brackets."""
  name = errno.errorcode.get(error.errno or 0, "")
  reason = error.strerror or str(error)
  return f"{reason} ({name})" if name else reason
