"""Prepares a TFDS dataset in the ArrayRecord format, converting TFRecord in place.

Why ArrayRecord: the training input pipeline reads examples by index (their
order is a pure function of (seed, step), so a resumed run continues exactly,
without replaying), and TFDS gives random access
(``builder.as_data_source``) only for ArrayRecord. ``download_and_prepare``
writes TFRecord by default, and ``tfds convert_format`` needs apache_beam.

  # Not prepared yet: downloads and prepares it directly as ArrayRecord.
  python -m gan.data.tfds_prepare cifar10 [--data_dir=DIR]
  # Manual downloads (imagenet2012, celeb_a_hq): put the files in
  # DIR/downloads/manual (or pass --manual_dir) first.
  python -m gan.data.tfds_prepare imagenet2012 --manual_dir=/data/imagenet_tars
  # Already prepared as TFRecord: the same command adds ArrayRecord shards next
  # to the TFRecord ones (resumable if interrupted).
  python -m gan.data.tfds_prepare imagenet2012 --data_dir=/data/tfds
  # Already has ArrayRecord: says so and does nothing.

NAME may carry a config and version (``lsun/bedroom``, ``celeb_a_hq/1024``),
or be the directory of a dataset (one holding ``dataset_info.json``).

Disk space: the conversion copies the serialized examples unchanged, so it
needs as much free space again as the TFRecord files (about 150 GiB for
imagenet2012). The TFRecord files are kept: ``as_dataset`` still reads them.
"""

import argparse
import os
import sys

from etils import epath

from gan.config import ConfigError
from gan.data.tfds_source import (DatasetUnavailableError, _import_tfds, default_tfds_data_dir,
                                  is_directory_name, open_builder)
from gan.data.tfds_writer import ARRAY_RECORD_OPTIONS

INCOMPLETE_PREFIX = ".incomplete-"


def incomplete_path(path: epath.Path) -> epath.Path:
  """Where a file is written before being renamed to ``path`` once complete."""
  return path.with_name(INCOMPLETE_PREFIX + path.name)


def _format_bytes(num_bytes: int) -> str:
  return f"{num_bytes / 2**30:.2f} GiB" if num_bytes >= 2**30 else f"{num_bytes / 2**20:.1f} MiB"


def _array_record_count(path: epath.Path) -> int:
  from array_record.python.array_record_module import ArrayRecordReader
  reader = ArrayRecordReader(os.fspath(path))
  try:
    return reader.num_records()
  finally:
    reader.close()


def _convert_shard(source: epath.Path, target: epath.Path, expected: int) -> None:
  """Copies one TFRecord shard's serialized records, in order, into an ArrayRecord shard."""
  import tensorflow as tf
  from array_record.python.array_record_module import ArrayRecordWriter
  temp = incomplete_path(target)
  writer = ArrayRecordWriter(os.fspath(temp), ARRAY_RECORD_OPTIONS)
  count = 0
  try:
    records = tf.data.TFRecordDataset(os.fspath(source), buffer_size=16 << 20)
    for record in records.as_numpy_iterator():
      writer.write(record)
      count += 1
  finally:
    writer.close()
  if count != expected:
    temp.unlink()
    raise ValueError(f"{source} holds {count} examples, but dataset_info.json says {expected}.")
  temp.rename(target)


def convert_to_array_record(builder) -> None:
  """Writes an ArrayRecord copy of every TFRecord shard of ``builder`` and registers it.

  Shards already converted are checked and skipped, so an interrupted run resumes.
  """
  tfds = _import_tfds()
  info = builder.info
  if info.file_format != tfds.core.FileFormat.TFRECORD:
    raise ValueError(f"{builder.data_dir} is stored as {info.file_format}; only TFRecord "
                     "can be converted.")
  written_bytes = source_bytes = 0
  for split_name, split_info in info.splits.items():
    source_template = split_info.filename_template
    target_template = source_template.replace(
        filetype_suffix=tfds.core.FileFormat.ARRAY_RECORD.file_suffix)
    num_shards = len(split_info.shard_lengths)
    print_every = max(1, num_shards // 20)
    for index, expected in enumerate(split_info.shard_lengths):
      source = source_template.sharded_filepath(shard_index=index, num_shards=num_shards)
      target = target_template.sharded_filepath(shard_index=index, num_shards=num_shards)
      if not target.exists():
        _convert_shard(source, target, expected)
      elif _array_record_count(target) != expected:
        raise ValueError(f"{target} holds {_array_record_count(target)} examples, but "
                         f"dataset_info.json says {expected}; delete it and run again.")
      written_bytes += target.stat().length
      source_bytes += source.stat().length
      done = index + 1
      if done % print_every == 0 or done == num_shards:
        print(f"{split_name}: {done}/{num_shards} shards, "
              f"{sum(split_info.shard_lengths[:done]):,} examples", flush=True)

  # Register the format the way `tfds convert_format` does in place: edit only
  # dataset_info.json, starting from the file on disk, and replace it atomically.
  data_dir = epath.Path(builder.data_dir)
  proto = tfds.core.dataset_info.read_from_json(data_dir / "dataset_info.json")
  if tfds.core.FileFormat.ARRAY_RECORD.value not in proto.alternative_file_formats:
    proto.alternative_file_formats.append(tfds.core.FileFormat.ARRAY_RECORD.value)
  temp = incomplete_path(data_dir / "dataset_info.json")
  temp.write_text(tfds.core.dataset_info.get_dataset_info_json(proto))
  temp.replace(data_dir / "dataset_info.json")
  print(f"Wrote {_format_bytes(written_bytes)} of ArrayRecord shards in {data_dir}; the "
        f"{_format_bytes(source_bytes)} of TFRecord shards are kept (as_dataset reads them).")


def _manual_files_error(builder, manual_dir: epath.Path,
                        cause: str = "") -> DatasetUnavailableError:
  instructions = "\n".join(line.strip() for line in
                           builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip().splitlines())
  return DatasetUnavailableError(
      f"{builder.name} needs files that you download yourself; put them in {manual_dir} "
      f"(or pass --manual_dir=DIR), then run this again. {cause}\n{instructions}")


def _download_and_prepare(tfds, builder, data_dir: str, manual_dir: str | None) -> None:
  """Prepares ``builder`` as ArrayRecord, failing fast when manual downloads are missing."""
  import tensorflow as tf
  manual = epath.Path(manual_dir or os.path.join(data_dir, "downloads", "manual")).expanduser()
  needs_manual = bool(builder.MANUAL_DOWNLOAD_INSTRUCTIONS)
  # TFDS only checks the manual dir once it is generating; check first, before any download.
  if needs_manual and not (manual.is_dir() and any(manual.iterdir())):
    raise _manual_files_error(builder, manual)
  config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual), try_download_gcs=False)
  try:
    builder.download_and_prepare(file_format="array_record", download_config=config)
  except (AssertionError, FileNotFoundError, tf.errors.NotFoundError) as e:
    if not needs_manual:
      raise
    raise _manual_files_error(builder, manual, f"({type(e).__name__}: {e})") from e


def ensure_array_record(name: str, data_dir: str | None = None,
                        manual_dir: str | None = None) -> str:
  """Makes ``name`` readable as ArrayRecord in ``data_dir``.

  Returns what it did: 'prepared', 'converted' or 'already'.
  """
  tfds = _import_tfds()
  data_dir = os.path.expanduser(data_dir or default_tfds_data_dir())
  builder = open_builder(name, data_dir)
  # A dataset directory exists by definition (open_builder checked dataset_info.json).
  if not is_directory_name(name) and not builder.is_prepared():
    _download_and_prepare(tfds, builder, data_dir, manual_dir)
    return "prepared"
  if tfds.core.FileFormat.ARRAY_RECORD in builder.info.available_file_formats():
    return "already"
  convert_to_array_record(builder)
  return "converted"


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m gan.data.tfds_prepare",
      description="Prepares a TFDS dataset as ArrayRecord (random access), converting "
                  "an existing TFRecord copy in place.")
  parser.add_argument("name", help="TFDS name, e.g. imagenet2012, lsun/bedroom, celeb_a_hq/1024")
  parser.add_argument("--data_dir", default=None,
                      help="TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
  parser.add_argument("--manual_dir", default=None,
                      help="manually downloaded files (default: DATA_DIR/downloads/manual)")
  args = parser.parse_args(argv)
  data_dir = os.path.expanduser(args.data_dir or default_tfds_data_dir())
  try:
    outcome = ensure_array_record(args.name, data_dir, args.manual_dir)
  except (ConfigError, DatasetUnavailableError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except ModuleNotFoundError as e:
    if e.name != "importlib_resources":
      raise
    # tensorflow-datasets 4.9.10 imports it but declares it only for Python < 3.9.
    print("error: TFDS needs the importlib_resources package to prepare datasets: "
          "pip install importlib_resources", file=sys.stderr)
    return 2
  is_directory = (epath.Path(os.path.expanduser(args.name)) / "dataset_info.json").exists()
  where = "" if is_directory else f" in {data_dir}"
  if outcome == "already":
    print(f"{args.name}{where} already has ArrayRecord files: nothing to do.")
  data_dir_flag = "" if is_directory else f" --config.data.data_dir={data_dir}"
  print(f"To train on it: --config.data.name={args.name}{data_dir_flag}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
