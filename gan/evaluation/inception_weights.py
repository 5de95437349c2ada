"""Weights of the 2015-12-05 FID Inception-v3: read, convert, check, save.

Where a user gets them (nothing here downloads; give the path to `load`):

  inception-2015-12-05.tgz (TensorFlow; holds classify_image_graph_def.pb, the
      graph TTUR and openai/improved-gan run): TGZ_URL. `load` takes the .tgz
      itself or the extracted .pb. No published checksum was found for either.
  pt_inception-2015-12-05-6726825d.pth (pytorch-fid's port of that graph):
      PTH_URL, sha256 in KNOWN_SHA256 (as genforce/genforce metrics/inception.py
      pins it; its first 8 hex digits are the ones in the file name: torch hub's
      filename-<sha256>.ext convention, which `load` checks for any such name).
      torch-fidelity's weights-inception-2015-12-05-6726825d.pth has the same
      digest in the projects that pin it, i.e. is the same file.
  *.npz: what `python -m gan.evaluation.inception_weights convert SRC DST.npz`
      writes, one array per graph tensor name; loads fastest.

A .pth is read without torch and without unpickling, by
gan.evaluation.torch_file (whose read_torch_state_dict, InceptionWeightsError
and UnsafePickleError this module re-exports); it reads both torch.save
formats, zip and legacy, the latter being most likely what pytorch-fid's 2019
file is (its size fits that layout). This module maps the names and layouts.
"""

import argparse
import collections.abc
import gzip
import hashlib
import os
import re
import sys
import tarfile
import zipfile
import zlib

import numpy as np
from absl import logging

from gan.evaluation import inception
from gan.evaluation.torch_file import (InceptionWeightsError, UnsafePickleError,
                                       read_torch_state_dict)

__all__ = [  # the three names from torch_file are re-exported
    "GRAPH_MEMBER", "KNOWN_SHA256", "PTH_URL", "TGZ_URL", "InceptionWeightsError",
    "UnsafePickleError", "file_sha256", "flatten", "from_graph_def", "from_pytorch_fid", "load",
    "main", "read_torch_state_dict", "save_npz", "torch_to_graph_names", "unflatten", "validate",
]

TGZ_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
PTH_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
           "pt_inception-2015-12-05-6726825d.pth")
GRAPH_MEMBER = "classify_image_graph_def.pb"
KNOWN_SHA256 = {
    "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2":
        "pytorch-fid pt_inception-2015-12-05-6726825d.pth",
}


# What a truncated or corrupted archive raises while it is read.
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError)


def file_sha256(path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


# ----------------------------------------------------------------------------
# The params tree: nested dicts keyed by graph scope; flat form keyed 'a/b/c'.

def flatten(params) -> dict[str, np.ndarray]:
  flat = {}
  for key, value in params.items():
    if isinstance(value, collections.abc.Mapping):
      flat.update({f"{key}/{k}": v for k, v in flatten(value).items()})
    else:
      flat[key] = value
  return flat


def unflatten(flat: dict[str, np.ndarray]) -> dict:
  tree = {}
  for name, value in flat.items():
    *scopes, leaf = name.split("/")
    node = tree
    for scope in scopes:
      node = node.setdefault(scope, {})
    node[leaf] = value
  return tree


def validate(flat: dict, source: str) -> dict[str, np.ndarray]:
  """Checks every name and shape against the architecture; float32 copies of the arrays."""
  expected = inception.param_shapes()
  missing = [n for n in expected if n not in flat]
  unexpected = sorted(set(flat) - set(expected))
  if missing:
    raise InceptionWeightsError(
        f"{source}: {len(missing)} of the {len(expected)} Inception-v3 tensors are missing, "
        f"e.g. {missing[0]} (shape {expected[missing[0]]}); not a complete 2015-12-05 network.")
  if unexpected:
    raise InceptionWeightsError(
        f"{source}: {len(unexpected)} tensor(s) the 2015-12-05 Inception-v3 does not have, "
        f"e.g. {', '.join(unexpected[:3])}.")
  out = {}
  for name, shape in expected.items():
    array = np.asarray(flat[name])
    if array.shape != shape:
      raise InceptionWeightsError(f"{source}: tensor {name} has shape {array.shape}, "
                                  f"the architecture expects {shape}.")
    if not np.issubdtype(array.dtype, np.floating):
      raise InceptionWeightsError(f"{source}: tensor {name} is {array.dtype}, not floating point.")
    array = np.array(array, np.float32)
    if not np.isfinite(array).all():
      raise InceptionWeightsError(f"{source}: tensor {name} holds NaN or infinite values.")
    if name.endswith("moving_variance") and (array + inception.BN_EPSILON <= 0).any():
      raise InceptionWeightsError(f"{source}: tensor {name} holds variances <= -epsilon.")
    out[name] = array
  return out


# ----------------------------------------------------------------------------
# TensorFlow GraphDef: Const nodes by name; the graph's own attributes checked.

_GRAPH_WEIGHT = re.compile(r".*/conv2d_params|.*/batchnorm/(beta|gamma|moving_mean|moving_variance)"
                           r"|softmax/(weights|biases)")


def _graph_check(ok: bool, source: str, node: str, what: str):
  if not ok:
    raise InceptionWeightsError(f"{source}: graph node {node} {what}; this is not the 2015-12-05 "
                                "Inception-v3 that gan.evaluation.inception implements.")


def from_graph_def(path) -> dict:
  """classify_image_graph_def.pb (or the .tgz holding it) -> params; parses, never runs it."""
  import tensorflow as tf  # only here: slow to import, and .npz/.pth need no TensorFlow

  source = os.fspath(path)
  if source.lower().endswith((".tgz", ".tar.gz")):
    try:  # read from the archive; nothing is extracted to disk
      with tarfile.open(source, "r:*") as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and os.path.basename(m.name) == GRAPH_MEMBER]
        data = tar.extractfile(members[0]).read() if members else None
    except _DAMAGED as error:
      raise InceptionWeightsError(f"{source}: a damaged archive ({error}).") from None
    if data is None:
      raise InceptionWeightsError(f"{source}: no {GRAPH_MEMBER} inside (is it {TGZ_URL}?).")
  else:
    with open(source, "rb") as f:
      data = f.read()
  graph_def = tf.compat.v1.GraphDef()
  try:
    graph_def.ParseFromString(data)
  except Exception as error:  # protobuf's DecodeError
    raise InceptionWeightsError(f"{source}: not a TensorFlow GraphDef ({error}).") from None
  nodes = {node.name: node for node in graph_def.node}
  flat = {name: tf.make_ndarray(node.attr["value"].tensor) for name, node in nodes.items()
          if node.op == "Const" and _GRAPH_WEIGHT.fullmatch(name)}

  # The graph states its own preprocessing and layer settings: where its nodes
  # are present (a stripped graph may hold Consts only), they must be ours.
  for name, value in (("Sub/y", inception.INPUT_SHIFT), ("Mul/y", inception.INPUT_SCALE)):
    if name in nodes:
      got = tf.make_ndarray(nodes[name].attr["value"].tensor)
      _graph_check(np.all(got == np.float32(value)), source, name, f"is {got}, not {value}")
  # Only what changes the result is compared: a 1x1 conv pads nothing either way,
  # and pool_3's window covers its whole 8x8 input whatever its stride.
  for scope, spec in inception.layer_specs().items():
    if isinstance(spec, inception.Conv):
      conv, bn = nodes.get(f"{scope}/Conv2D"), nodes.get(f"{scope}/batchnorm")
      if conv is not None:
        strides, padding = list(conv.attr["strides"].list.i), conv.attr["padding"].s.decode()
        ok_padding = padding == spec.padding or spec.kernel == (1, 1)
        _graph_check(strides == [1, spec.stride, spec.stride, 1] and ok_padding, source,
                     conv.name, f"has strides {strides}, padding {padding}")
      if bn is not None:
        _graph_check(bn.op == "BatchNormWithGlobalNormalization", source, bn.name, f"is {bn.op}")
        eps = bn.attr["variance_epsilon"].f
        _graph_check(np.float32(eps) == np.float32(inception.BN_EPSILON), source, bn.name,
                     f"has variance_epsilon {eps}")
        if (not bn.attr["scale_after_normalization"].b and "scale_after_normalization" in bn.attr
            and f"{bn.name}/gamma" in flat):
          # TF then ignores gamma; the Flax layer always multiplies by it.
          logging.info("%s: %s has scale_after_normalization false: gamma := 1.", source, bn.name)
          flat[f"{bn.name}/gamma"] = np.ones_like(flat[f"{bn.name}/gamma"])
    elif scope in nodes:
      node = nodes[scope]
      want = ("MaxPool" if spec.kind == "max" else "AvgPool", [1, spec.window, spec.window, 1],
              [1, spec.stride, spec.stride, 1], spec.padding)
      got = (node.op, list(node.attr["ksize"].list.i), list(node.attr["strides"].list.i),
             node.attr["padding"].s.decode())
      compared = 2 if spec == inception.POOL3 else 4
      _graph_check(got[:compared] == want[:compared], source, scope,
                   f"is {got[:compared]}, expected {want[:compared]}")
  return unflatten(validate(flat, source))


# ----------------------------------------------------------------------------
# pytorch-fid .pth: a torch.save'd state_dict (read by torch_file), renamed.

# torchvision names (pytorch-fid builds torchvision's Inception3 with FID blocks)
# -> graph scopes; cf. torch-fidelity's util_convert_inception_weights.py.
_TORCH_STEM = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
               "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}


def _seq(branch, tower, n):  # branch_1..n -> tower/conv, tower/conv_1, ...
  return {f"{branch}_{i + 1}": f"{tower}/conv" + (f"_{i}" if i else "") for i in range(n)}


_POOL_CONV = {"branch_pool": "tower_2/conv"}
_TORCH_BRANCHES = {
    "A": {"branch1x1": "conv", **_seq("branch5x5", "tower", 2),
          **_seq("branch3x3dbl", "tower_1", 3), **_POOL_CONV},
    "B": {"branch3x3": "conv", **_seq("branch3x3dbl", "tower", 3)},
    "C": {"branch1x1": "conv", **_seq("branch7x7", "tower", 3),
          **_seq("branch7x7dbl", "tower_1", 5), **_POOL_CONV},
    "D": {**_seq("branch3x3", "tower", 2), **_seq("branch7x7x3", "tower_1", 4)},
    "E": {"branch1x1": "conv", "branch3x3_1": "tower/conv", "branch3x3_2a": "tower/mixed/conv",
          "branch3x3_2b": "tower/mixed/conv_1", **_seq("branch3x3dbl", "tower_1", 2),
          "branch3x3dbl_3a": "tower_1/mixed/conv", "branch3x3dbl_3b": "tower_1/mixed/conv_1",
          **_POOL_CONV},
}
# Mixed_5b..Mixed_7c are mixed..mixed_10, in order; their block kinds:
_TORCH_BLOCKS = dict(zip([f"Mixed_{b}" for b in "5b 5c 5d 6a 6b 6c 6d 6e 7a 7b 7c".split()],
                         zip([name for name, _ in inception.MIXED], "AAABCCCCDEE")))
_TORCH_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
             "running_var": "moving_variance"}


def torch_to_graph_names() -> dict[str, str]:
  """pytorch-fid state_dict key -> graph tensor name (num_batches_tracked has none)."""
  scopes = dict(_TORCH_STEM)
  for block, (mixed, kind) in _TORCH_BLOCKS.items():
    scopes.update({f"{block}.{b}": f"{mixed}/{s}" for b, s in _TORCH_BRANCHES[kind].items()})
  names = {"fc.weight": "softmax/weights", "fc.bias": "softmax/biases"}
  for torch_scope, scope in scopes.items():
    names[f"{torch_scope}.conv.weight"] = f"{scope}/conv2d_params"
    names.update({f"{torch_scope}.bn.{t}": f"{scope}/batchnorm/{g}" for t, g in _TORCH_BN.items()})
  return names


def from_pytorch_fid(path) -> dict:
  """pytorch-fid's pt_inception-2015-12-05-*.pth -> params (OIHW -> HWIO, fc [1008, 2048] -> .T)."""
  source, names, flat = os.fspath(path), torch_to_graph_names(), {}
  for key, array in read_torch_state_dict(source).items():
    if key.endswith(".num_batches_tracked"):  # a BatchNorm2d training counter
      continue
    if key not in names:
      raise InceptionWeightsError(f"{source}: state_dict entry {key} is not in pytorch-fid's FID "
                                  "Inception-v3 (a torchvision checkpoint?).")
    if key.endswith(".conv.weight") and array.ndim == 4:
      array = array.transpose(2, 3, 1, 0)
    elif key == "fc.weight" and array.ndim == 2:  # torch Linear keeps [out, in]
      array = array.T
    flat[names[key]] = array
  return unflatten(validate(flat, source))


# ----------------------------------------------------------------------------
# The converted format and the one entry point.

def save_npz(params, path) -> None:
  """Writes `params` (validated) as one uncompressed array per graph tensor name."""
  flat = validate(flatten(params), "params to save")
  tmp = f"{os.fspath(path)}.tmp"
  with open(tmp, "wb") as f:
    np.savez(f, **flat)
  os.replace(tmp, path)


def _read_npz(source: str) -> dict:
  try:
    with np.load(source, allow_pickle=False) as archive:
      return unflatten(validate({k: archive[k] for k in archive.files}, source))
  except (zipfile.BadZipFile, ValueError, OSError) as error:
    if isinstance(error, InceptionWeightsError):
      raise
    raise InceptionWeightsError(f"{source}: not a readable .npz ({error}).") from None


def load(path) -> dict:
  """Inception-v3 params from .npz / .pb / .tgz / .pth, each tensor checked (InceptionWeightsError).

  A file with a published checksum must match it.
  """
  source = os.fspath(path)
  if not os.path.isfile(source):
    raise FileNotFoundError(f"{source}: no such file")
  digest, base = file_sha256(source), os.path.basename(source)
  hub_prefix = re.search(r"-([0-9a-f]{8,64})\.pth?$", base)
  if digest in KNOWN_SHA256:
    logging.info("%s: sha256 %s, the published %s.", source, digest, KNOWN_SHA256[digest])
  elif hub_prefix and not digest.startswith(hub_prefix.group(1)):
    raise InceptionWeightsError(f"{source}: its sha256 {digest} does not start with the "
                                f"{hub_prefix.group(1)} its name promises: damaged or "
                                f"incomplete; download it again ({PTH_URL}).")
  else:
    logging.info("%s: sha256 %s (no published checksum to compare).", source, digest)
  lower = source.lower()
  if lower.endswith(".npz"):
    return _read_npz(source)
  if lower.endswith((".pb", ".tgz", ".tar.gz")):
    return from_graph_def(source)
  if lower.endswith((".pth", ".pt")):
    return from_pytorch_fid(source)
  raise InceptionWeightsError(f"{source}: unknown kind of weights file; give a .npz (converted), "
                              f"{GRAPH_MEMBER} or the .tgz from {TGZ_URL}, or a pytorch-fid .pth.")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m gan.evaluation.inception_weights",
      description="Convert the FID Inception-v3 weights (.pb, .tgz, .pth) to a checked .npz.")
  commands = parser.add_subparsers(dest="command", required=True)
  convert = commands.add_parser("convert", help="SRC (.pb/.tgz/.pth/.npz) -> DST.npz")
  convert.add_argument("src")
  convert.add_argument("dst")
  args = parser.parse_args(argv)
  if not args.dst.lower().endswith(".npz"):
    parser.error(f"DST must end in .npz, got {args.dst!r}")
  try:
    params = load(args.src)
  except (FileNotFoundError, InceptionWeightsError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  save_npz(params, args.dst)
  flat = flatten(params)
  print(f"wrote {args.dst}: {len(flat)} tensors, {sum(a.size for a in flat.values()):,} "
        f"parameters, sha256 {file_sha256(args.dst)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
