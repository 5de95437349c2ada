"""Turns a folder of images into a TFDS dataset (ArrayRecord) to train on.

  python -m gan.data.prepare ~/pictures/flowers ~/datasets/flowers128 --resolution 128

Every image goes through ``image_ops.preprocess`` (decode, EXIF orientation,
any mode -> RGB with alpha composited on white, center square crop on the long
edge, resize), is stored as PNG (lossless, default) or JPEG with
``tfds_writer.write_dataset``, and is read back with
``tfds.builder_from_directory(OUT_DIR)``. OUT_DIR/prepare_summary.json records
the counts, the skipped files with reasons, the conversions and the training
flags.

Layout (--labels):
  folders  each immediate subfolder of SRC_DIR is a class (sorted names, label =
           index); images anywhere beneath it belong to it. Images directly in
           SRC_DIR, class folders without images and a single class (every label
           would be 0) are errors.
  none     unconditional: every image beneath SRC_DIR, no label feature.
  auto     (default) folders if only subfolders hold images, none if only SRC_DIR
           itself does; images in both places are an error.
Image extensions (any case): .jpg .jpeg .png .bmp .gif .webp .tif .tiff .ppm .pgm.
Hidden files and folders are ignored; other files are counted, not errors.
Unreadable images are skipped and listed, and the exit code is still 0.
Names that are not UTF-8 are shown and stored with \\xNN for their bytes.
OUT_DIR must be new or empty; one left by an interrupted prepare is cleared
and written again (``prepare_out``).
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import functools
import io
import json
import logging
import os
import re
import shlex
import sys

from etils import epath
from PIL import Image

from gan.data import image_ops, prepare_out, tfds_writer
from gan.fileio import atomic_write
from gan.data.prepare_out import SAMPLE_SIZE, SUMMARY_FILE, PrepareError, sample, shown

IMAGE_EXTENSIONS = frozenset(
    [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"])
LABEL_MODES = ("auto", "folders", "none")
ENCODINGS = {"png": "PNG", "jpeg": "JPEG"}  # --encoding -> PIL format
CROP = "center square on the long edge"
UNLABELED = "(unlabeled)"
PENDING_PER_WORKER = 8  # files in flight per worker: bounds memory, keeps workers busy

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Stats:
  counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  converted: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  skipped: list = dataclasses.field(default_factory=list)
  upscaled: int = 0


def dataset_name_for(out_dir: str) -> str:
  """OUT_DIR's basename as a TFDS name: [a-z0-9_], starting with a letter."""
  base = os.path.basename(os.path.normpath(out_dir)).lower()
  name = re.sub(r"[^a-z0-9]+", "_", base).strip("_")
  return name if re.match(r"[a-z]", name) else f"ds_{name}".rstrip("_")


def class_name(folder: str) -> str:
  """A class folder's name as TFDS can store it: text on one line, no space at either end.

  TFDS writes the names one per line (label.labels.txt) and strips each line
  when reading, so other names would come back split, merged or shifted.
  """
  text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                 for c in shown(folder))
  return re.sub(r"^ +| +$", lambda spaces: r"\x20" * len(spaces.group()), text)


def scan(src_dir: str, skip_dir: str | None = None):
  """(images, other files, immediate subfolders) of src_dir, sorted, relative to it.

  Hidden entries are ignored, and so is ``skip_dir`` (OUT_DIR inside SRC_DIR).
  Symlinked folders are followed, each real folder once (no cycles).
  """
  images, others, subdirs = [], [], []
  seen = {skip_dir, os.path.realpath(src_dir)}
  for dirpath, dirnames, filenames in os.walk(src_dir, followlinks=True):
    kept = []
    for name in sorted(dirnames):
      real = os.path.realpath(os.path.join(dirpath, name))
      if not name.startswith(".") and real not in seen:
        seen.add(real)
        kept.append(name)
    dirnames[:] = kept
    rel_dir = os.path.relpath(dirpath, src_dir)
    if rel_dir == ".":
      subdirs, rel_dir = sorted(dirnames), ""
    for name in filenames:
      if not name.startswith("."):
        is_image = os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        (images if is_image else others).append(os.path.join(rel_dir, name))
  by_parts = lambda path: path.split(os.sep)  # noqa: E731 (folder contents stay together)
  return sorted(images, key=by_parts), sorted(others, key=by_parts), subdirs


def resolve_layout(labels: str, src_dir: str, images: list, subdirs: list):
  """-> ('folders' | 'none', class names or None, [(relative path, label or None)]).

  Label i is the i-th of the sorted ``subdirs``; its class name is ``class_name`` of it.
  """
  src_dir = shown(src_dir)  # only shown in errors from here on
  if not images:
    raise PrepareError(f"no image files ({' '.join(sorted(IMAGE_EXTENSIONS))}) "
                       f"found in {src_dir}.")
  loose = [p for p in images if os.sep not in p]
  nested = [p for p in images if os.sep in p]
  if labels == "auto":
    if loose and nested:
      raise PrepareError(
          f"{src_dir} holds images directly ({sample(loose)}) and in subfolders "
          f"({sample(sorted({p.split(os.sep)[0] for p in nested}))}). Either move the loose "
          "images into class folders (--labels=folders: one class per subfolder), or pass "
          "--labels=none to use every image, unlabeled.")
    labels = "folders" if nested else "none"
  if labels == "none":
    return "none", None, [(path, None) for path in images]
  if not nested:
    raise PrepareError(f"--labels=folders: {src_dir} has no subfolders with images (each "
                       "subfolder is a class); use --labels=none for an unconditional dataset.")
  if loose:
    raise PrepareError(f"{len(loose)} images lie directly in {src_dir} next to the class "
                       f"folders: {sample(loose)}. Move them into a class folder, or pass "
                       "--labels=none for an unconditional dataset.")
  counts = collections.Counter(p.split(os.sep)[0] for p in nested)
  empty = [d for d in subdirs if not counts[d]]
  if empty:
    raise PrepareError(f"class folders without images in {src_dir}: {sample(empty)}. Each "
                       "subfolder is a class and takes a label index; add images or remove "
                       "them.")
  if len(subdirs) == 1:
    raise PrepareError(
        f"{src_dir} has a single class folder ('{shown(subdirs[0])}'): every image would get "
        "label 0, so a class-conditional model learns nothing from labels. Pass --labels=none "
        "for an unconditional dataset, or point SRC_DIR at the folder whose subfolders are the "
        "classes.")
  names = [class_name(d) for d in subdirs]
  # As bytes: shown, a folder named caf\xe9 and one whose name is not UTF-8 look the same.
  same = [" and ".join(repr(os.fsencode(d)) for d, n in zip(subdirs, names) if n == name)
          + f" both become {name}" for name, count in collections.Counter(names).items()
          if count > 1]
  if same:
    raise PrepareError(f"class folders in {src_dir} would share a class name: "
                       f"{'; '.join(same)}. Rename one folder of each.")
  label_of = {name: index for index, name in enumerate(subdirs)}
  return "folders", names, [(p, label_of[p.split(os.sep)[0]]) for p in nested]


def process_file(path: str, *, resolution: int, resize_filter: str, encoding: str,
                 jpeg_quality: int) -> dict:
  """One file -> {'encoded', 'notes', 'upscaled'}, or {'error': reason}; never raises."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    return {"error": f"cannot read: {e.strerror or e}"}
  try:
    image, notes = image_ops.preprocess(data, resolution, resize_filter)
    short_side = min(Image.open(io.BytesIO(data)).size)  # header only: already decoded once
    buffer = io.BytesIO()
    options = {"quality": jpeg_quality} if encoding == "jpeg" else {}
    Image.fromarray(image).save(buffer, ENCODINGS[encoding], **options)
  except image_ops.UnreadableImageError as e:
    return {"error": f"unreadable image: {e}"}
  except Exception as e:  # pylint: disable=broad-except (odd files must not stop a run)
    return {"error": f"cannot convert: {type(e).__name__}: {e}"}
  return {"encoded": buffer.getvalue(), "notes": notes, "upscaled": short_side < resolution}


def _ordered_map(executor, fn, items, max_pending: int):
  """executor.map in input order with at most max_pending tasks in flight.

  Executor.map submits every task at once, so finished results would pile up
  in memory whenever writing is slower than decoding.
  """
  pending = collections.deque()
  for item in items:
    if len(pending) == max_pending:
      yield pending.popleft().result()
    pending.append(executor.submit(fn, item))
  while pending:
    yield pending.popleft().result()


def _examples(src_dir, entries, class_names, stats: Stats, num_workers: int, **process_args):
  """Streams TFDS examples in the order of ``entries``, recording into ``stats``."""
  work = functools.partial(process_file, **process_args)
  paths = (os.path.join(src_dir, path) for path, _ in entries)
  # Threads, not processes: PIL releases the GIL while decoding, resizing and
  # encoding. On 2 cores, 1024x768 JPEG -> 128 PNG: threads 2.1x serial, a warm
  # process pool 1.6x (at 500x375 the pool led, 1.7x vs 1.3x, but it pickles
  # every file, starts slowly, and must not fork a process that imported TF).
  with concurrent.futures.ThreadPoolExecutor(num_workers) as executor:
    results = _ordered_map(executor, work, paths, num_workers * PENDING_PER_WORKER)
    for index, ((path, label), result) in enumerate(zip(entries, results)):
      if index and index % 1000 == 0:
        log.info("processed %d of %d images", index, len(entries))
      if "error" in result:
        stats.skipped.append({"path": shown(path), "reason": result["error"]})
        continue
      stats.converted.update(result["notes"])
      stats.upscaled += result["upscaled"]
      stats.counts[UNLABELED if label is None else class_names[label]] += 1
      yield {"image": result["encoded"]} if label is None else {
          "image": result["encoded"], "label": label}


def prepare(src_dir: str, out_dir: str, *, resolution: int, labels: str = "auto",
            resize_filter: str = image_ops.RESIZE_FILTER, encoding: str = "png",
            jpeg_quality: int = 95, examples_per_shard: int = 1024,
            num_workers: int | None = None, name: str | None = None) -> dict:
  """Writes the dataset and OUT_DIR/prepare_summary.json; returns the summary.

  Raises PrepareError for bad arguments, layout errors, no readable image, or
  an OUT_DIR that is not new, empty or left by an interrupted prepare.
  """
  filters = sorted(image_ops.RESIZE_FILTERS)
  checks = [(resolution >= 1, f"--resolution={resolution} must be >= 1"),
            (labels in LABEL_MODES, f"--labels={labels!r}: choose one of {LABEL_MODES}"),
            (resize_filter in filters, f"--resize_filter={resize_filter!r}: choose from {filters}"),
            (encoding in ENCODINGS, f"--encoding={encoding!r}: choose one of {sorted(ENCODINGS)}"),
            (1 <= jpeg_quality <= 100, f"--jpeg_quality={jpeg_quality} must be in [1, 100]"),
            (examples_per_shard >= 1, f"--examples_per_shard={examples_per_shard} must be >= 1")]
  for ok, message in checks:
    if not ok:
      raise PrepareError(message + ".")
  src_dir, out_dir = os.path.abspath(src_dir), os.fspath(out_dir)
  out_dir = out_dir if "://" in out_dir else os.path.abspath(out_dir)
  name = name or dataset_name_for(out_dir)
  if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
    raise PrepareError(f"--name={name!r}: TFDS names are snake_case ([a-z0-9_]) and start "
                       "with a letter.")
  if not os.path.isdir(src_dir):
    raise PrepareError(f"SRC_DIR {shown(src_dir)} is not a directory.")
  prepare_out.check(out_dir)

  images, others, subdirs = scan(src_dir, skip_dir=os.path.realpath(out_dir))
  labels, class_names, entries = resolve_layout(labels, src_dir, images, subdirs)
  source = shown(src_dir)
  log.info("%s: %d images, labels=%s", source, len(entries), labels)
  features = tfds_writer.image_features((resolution, resolution, 3), encoding, class_names)
  stats = Stats()
  num_workers = max(1, num_workers or os.cpu_count() or 1)
  examples = _examples(src_dir, entries, class_names, stats, num_workers,
                       resolution=resolution, resize_filter=resize_filter, encoding=encoding,
                       jpeg_quality=jpeg_quality)
  try:
    num_written = tfds_writer.write_dataset(
        out_dir, prepare_out.marked(out_dir, examples), features=features, dataset_name=name,
        examples_per_shard=examples_per_shard,
        description=f"{source} prepared by gan.data.prepare: {CROP}, {resize_filter} resize "
                    f"to {resolution}x{resolution}, {encoding}.")
  except FileExistsError as e:  # a dataset appeared since prepare_out.check
    raise PrepareError(str(e)) from e
  except ValueError as e:
    if sum(stats.counts.values()):
      raise
    reasons = sample(f"{s['path']} ({s['reason']})" for s in stats.skipped)
    raise PrepareError(f"none of the {len(entries)} images in {source} could be read: "
                       f"{reasons}") from e

  if class_names is None:
    read_with = "--config.data.label_key='' --config.data.num_classes=1"
  else:
    read_with = f"--config.data.num_classes={len(class_names)}"
  summary = {
      "source": source, "dataset_name": name, "resolution": resolution,
      "resize_filter": resize_filter, "crop": CROP, "encoding": encoding, "labels": labels,
      "num_classes": 1 if class_names is None else len(class_names),
      "class_names": class_names,
      "class_folders": None if class_names is None else [  # folder on disk -> name and label
          {"folder": shown(d), "class_name": n, "label": i}
          for i, (d, n) in enumerate(zip(subdirs, class_names))],
      "counts_per_class": ({UNLABELED: num_written} if class_names is None
                           else {c: stats.counts[c] for c in class_names}),
      "num_images_found": len(entries), "num_written": num_written,
      "num_skipped": len(stats.skipped), "skipped": stats.skipped,
      "converted": dict(sorted(stats.converted.items())), "upscaled": stats.upscaled,
      "ignored_non_image_files": {"count": len(others),
                                  "sample": [shown(p) for p in others[:SAMPLE_SIZE]]},
      "read_with": f"--config.data.name={shlex.quote(out_dir)} {read_with} "
                   f"--config.model.resolution={resolution}",
  }
  atomic_write(epath.Path(out_dir) / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
  prepare_out.unmark(out_dir)
  return summary


def report(summary: dict, out_dir: str) -> str:
  """A few human-readable lines about a ``prepare`` summary."""
  r = summary["resolution"]
  lines = [f"Wrote {summary['num_written']} of {summary['num_images_found']} images "
           f"({r}x{r}, {summary['encoding']}) as dataset {summary['dataset_name']!r}."]
  if summary["class_names"] is None:
    lines.append("Unconditional (no labels).")
  else:
    lines.append(f"{summary['num_classes']} classes: " + ", ".join(
        f"{c} {n}" for c, n in summary["counts_per_class"].items()))
    empty = [c for c, n in summary["counts_per_class"].items() if not n]
    if empty:
      lines.append(f"warning: no readable images in classes {sample(empty)}.")
  if summary["skipped"]:
    lines.append(f"Skipped {summary['num_skipped']} unreadable file(s):")
    lines += [f"  {s['path']}: {s['reason']}" for s in summary["skipped"][:SAMPLE_SIZE]]
    if summary["num_skipped"] > SAMPLE_SIZE:
      lines.append(f"  ... and {summary['num_skipped'] - SAMPLE_SIZE} more (see the summary)")
  if summary["converted"]:
    lines.append("Converted: " + ", ".join(f"{k} {v}" for k, v in summary["converted"].items()))
  if summary["upscaled"]:
    lines.append(f"Upscaled (short side < {r}): {summary['upscaled']}")
  ignored = summary["ignored_non_image_files"]
  if ignored["count"]:
    lines.append(f"Ignored {ignored['count']} non-image files: {sample(ignored['sample'])}")
  lines.append(f"Summary: {os.path.join(out_dir, SUMMARY_FILE)}")
  lines.append(f"Train with: {summary['read_with']}")
  return "\n".join(lines)


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m gan.data.prepare",
                                   description=__doc__.split("\n")[0])
  parser.add_argument("src_dir", metavar="SRC_DIR", help="folder of images")
  parser.add_argument("out_dir", metavar="OUT_DIR", help="new dataset folder")
  parser.add_argument("--resolution", type=int, required=True, help="output side in pixels")
  parser.add_argument("--labels", choices=LABEL_MODES, default="auto")
  parser.add_argument("--resize_filter", choices=sorted(image_ops.RESIZE_FILTERS),
                      default=image_ops.RESIZE_FILTER)
  parser.add_argument("--encoding", choices=sorted(ENCODINGS), default="png")
  parser.add_argument("--jpeg_quality", type=int, default=95)
  parser.add_argument("--examples_per_shard", type=int, default=1024)
  parser.add_argument("--num_workers", type=int, default=os.cpu_count())
  parser.add_argument("--name", default=None, help="dataset name (default: from OUT_DIR)")
  return parser.parse_args(argv)


def main(argv) -> int:
  args = parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  try:
    summary = prepare(args.src_dir, args.out_dir, resolution=args.resolution,
                      labels=args.labels, resize_filter=args.resize_filter,
                      encoding=args.encoding, jpeg_quality=args.jpeg_quality,
                      examples_per_shard=args.examples_per_shard,
                      num_workers=args.num_workers, name=args.name)
  except PrepareError as e:
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(1) from None
  out_dir = args.out_dir if "://" in args.out_dir else os.path.abspath(args.out_dir)
  print(report(summary, shown(out_dir)))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
