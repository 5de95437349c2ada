"""The OUT_DIR of ``gan.data.prepare``: which folders it writes into, and resuming.

A prepare writes ``MARKER`` into OUT_DIR before its first shard and removes it
once ``dataset_info.json`` and the summary are written. So an OUT_DIR is:
  missing or empty                    -> written
  dataset_info.json                   -> refused (it holds a dataset)
  MARKER, only files a prepare writes -> an interrupted prepare: those files are
                                         removed, then written from scratch
  anything else                       -> refused, changing nothing
Also here, for both modules: ``PrepareError``, and ``shown`` / ``sample``, how
names are displayed.
"""

import logging
import os
import re

from etils import epath

MARKER = ".gan-prepare-incomplete"
INFO_FILE = "dataset_info.json"
SUMMARY_FILE = "prepare_summary.json"
# What a prepare writes before dataset_info.json (tfds_writer, TFDS metadata, prepare): its
# shards for any dataset name (an interrupted run may have had another --name), the shards
# being written, and these files.
OWN_SHARD = re.compile(r"[a-z][a-z0-9_]*-train\.array_record-\d{5,}-of-\d{5,}|\.incomplete-.+")
OWN_FILES = frozenset(["features.json", "label.labels.txt", SUMMARY_FILE, MARKER])
SAMPLE_SIZE = 20  # names listed per category in the summary and the errors

log = logging.getLogger(__name__)


class PrepareError(Exception):
  """Bad input or output folder; ``main`` prints it as 'error: ...' and exits 1."""


def shown(path: str) -> str:
  """``path`` as printable text: bytes that are not UTF-8 become \\xNN.

  os.listdir gives such names as lone surrogates, which a strict stdout, JSON
  readers and TFDS cannot encode. Every path that is shown or stored goes
  through here.
  """
  return os.fsencode(path).decode("utf-8", "backslashreplace")


def sample(paths) -> str:
  """Up to SAMPLE_SIZE of ``paths``, shown, comma-separated, with how many more."""
  paths = [shown(p) for p in paths]
  more = f" and {len(paths) - SAMPLE_SIZE} more" if len(paths) > SAMPLE_SIZE else ""
  return ", ".join(paths[:SAMPLE_SIZE]) + more


def check(out_dir: str) -> None:
  """Refuses an OUT_DIR that prepare must not write into; clears an interrupted prepare's."""
  if shown(out_dir) != out_dir:  # ArrayRecord and TFDS take paths as UTF-8 text only
    raise PrepareError(f"OUT_DIR {shown(out_dir)} is not valid UTF-8 text, which TFDS cannot "
                       "write to; choose an OUT_DIR whose name is.")
  out = epath.Path(out_dir)
  if not out.exists():
    return
  if not out.is_dir():
    raise PrepareError(f"OUT_DIR {out_dir} is a file, not a folder; choose another OUT_DIR.")
  names = sorted(p.name for p in out.iterdir())
  interrupted = MARKER in names
  if INFO_FILE in names:
    cause = (" written by a gan.data.prepare that was interrupted before it wrote "
             f"{SUMMARY_FILE}") if interrupted else ""
    raise PrepareError(f"{out_dir} already holds a dataset ({INFO_FILE}){cause}; choose a new "
                       "OUT_DIR or delete it.")
  own = [name for name in names if interrupted and (out / name).is_file()
         and (name in OWN_FILES or OWN_SHARD.fullmatch(name))]
  foreign = [name for name in names if name not in own]
  if foreign:
    raise PrepareError(
        f"{out_dir} holds files that are not a dataset being written by gan.data.prepare: "
        f"{sample(foreign)}. Choose an empty OUT_DIR, or delete those files.")
  if interrupted:
    log.info("%s: removing the %d files of an interrupted gan.data.prepare, then writing "
             "from scratch", out_dir, len(own))
    for name in sorted(own, key=lambda n: n == MARKER):  # the marker last: a rerun still knows
      (out / name).unlink()


def marked(out_dir: str, examples):
  """Yields ``examples``, writing MARKER before the first reaches the writer.

  Not earlier: a prepare that stops on a layout error or unreadable images
  leaves no OUT_DIR behind.
  """
  for index, example in enumerate(examples):
    if index == 0:
      epath.Path(out_dir).mkdir(parents=True, exist_ok=True)
      (epath.Path(out_dir) / MARKER).write_text("gan.data.prepare is writing this dataset\n")
    yield example


def unmark(out_dir: str) -> None:
  (epath.Path(out_dir) / MARKER).unlink()
