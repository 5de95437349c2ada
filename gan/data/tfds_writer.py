"""Writes examples as a TFDS dataset in ArrayRecord format (random access).

The result is read with ``tfds.builder_from_directory(out_dir)``, or by
setting ``config.data.name`` to ``out_dir``. Shards are written under
temporary names and renamed once complete; ``dataset_info.json`` is written
last, so a directory that has it holds a complete dataset.
"""

from typing import Iterable, Sequence

from etils import epath

ARRAY_RECORD_OPTIONS = "group_size:1"  # one record per chunk: cheapest random reads


def image_features(image_shape: tuple, encoding_format: str, class_names: Sequence[str] | None):
  """FeaturesDict with 'image' and, for a conditional dataset, 'label'."""
  import tensorflow_datasets as tfds
  features = {"image": tfds.features.Image(shape=image_shape, encoding_format=encoding_format)}
  if class_names is not None:
    features["label"] = tfds.features.ClassLabel(names=list(class_names))
  return tfds.features.FeaturesDict(features)


def write_dataset(out_dir: str, examples: Iterable[dict], *, features, dataset_name: str,
                  split: str = "train", examples_per_shard: int = 1024,
                  description: str = "") -> int:
  """Serialises ``examples`` (dicts matching ``features``) into ``out_dir``.

  Returns the number of examples written. ``out_dir`` must not already hold
  a dataset (``dataset_info.json``).
  """
  import tensorflow_datasets as tfds
  from array_record.python.array_record_module import ArrayRecordWriter

  out = epath.Path(out_dir)
  if (out / "dataset_info.json").exists():
    raise FileExistsError(f"{out} already holds a TFDS dataset; choose an empty directory.")
  for stale in out.glob(".incomplete-*") if out.exists() else ():
    stale.unlink()  # Left by an interrupted earlier attempt.
  shard_lengths, temp_paths, writer = [], [], None
  try:
    for example in examples:
      if writer is None or shard_lengths[-1] == examples_per_shard:
        if writer is not None:
          writer.close()
        out.mkdir(parents=True, exist_ok=True)  # Only once there is something to write.
        temp_paths.append(out / f".incomplete-{dataset_name}-{split}-{len(temp_paths):05d}")
        writer = ArrayRecordWriter(str(temp_paths[-1]), ARRAY_RECORD_OPTIONS)
        shard_lengths.append(0)
      writer.write(features.serialize_example(example))
      shard_lengths[-1] += 1
    if writer is not None:
      writer.close()
  except BaseException:
    if writer is not None:
      writer.close()
    for temp in temp_paths:
      temp.unlink(missing_ok=True)
    raise
  if not shard_lengths:
    raise ValueError(f"no examples to write to {out}.")

  template = tfds.core.ShardedFileTemplate(data_dir=out, dataset_name=dataset_name, split=split,
                                           filetype_suffix="array_record")
  for index, temp in enumerate(temp_paths):
    temp.rename(template.sharded_filepath(shard_index=index, num_shards=len(temp_paths)))
  num_bytes = sum(template.sharded_filepath(shard_index=i, num_shards=len(temp_paths)).stat().length
                  for i in range(len(temp_paths)))
  split_info = tfds.core.SplitInfo(name=split, shard_lengths=shard_lengths, num_bytes=num_bytes,
                                   filename_template=template)
  # check_data=False: the check reads through tf.data, which cannot read ArrayRecord.
  tfds.folder_dataset.write_metadata(data_dir=out, features=features, split_infos=[split_info],
                                     filename_template=template, check_data=False,
                                     description=description)
  return sum(shard_lengths)
