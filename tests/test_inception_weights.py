"""The FID Inception-v3 weight converters: round trips, safety, error messages.

No pretrained weights can be had here: synthetic files of random weights are
written under the real files' names and in their formats (a GraphDef, a .tgz,
pytorch-fid .pth files in both torch.save formats, written without torch, and
the converted .npz). The network itself is tested in test_inception.py.
"""

import collections
import contextlib
import io
import os
import pickle
import struct
import sys
import tarfile
import types
import zipfile

import numpy as np
import pytest
import tensorflow as tf

import inception_fixtures
from gan.evaluation import inception
from gan.evaluation import inception_weights as iw


@pytest.fixture(scope="module")
def flat():
  return inception_fixtures.random_flat(0)


# --- converters: synthetic files under the real files' names and formats.

def assert_same(params, flat):
  got = iw.flatten(params)
  assert set(got) == set(flat)
  for name, array in flat.items():
    assert got[name].dtype == np.float32 and got[name].shape == array.shape, name
    assert got[name].tobytes() == array.tobytes(), name


@pytest.fixture(scope="module")
def graph_def(flat):
  """A GraphDef of Const nodes named like classify_image_graph_def.pb's (and its Sub/y, Mul/y)."""
  graph = tf.Graph()
  with graph.as_default():
    for name, array in flat.items():
      tf.constant(array, name=name)
    tf.constant(np.float32(128.0), name="Sub/y")
    tf.constant(np.float32(0.0078125), name="Mul/y")
  return graph.as_graph_def()


def write_graph_def(path, graph_def, *extra_nodes):
  """Writes `graph_def` plus nodes filled in by each of `extra_nodes`."""
  if extra_nodes:
    graph_def = type(graph_def).FromString(graph_def.SerializeToString())  # a copy
  for fill in extra_nodes:
    fill(graph_def.node.add())
  with open(path, "wb") as f:
    f.write(graph_def.SerializeToString())


def test_graph_def_round_trip_through_the_tgz(flat, graph_def, tmp_path):
  write_graph_def(tmp_path / "classify_image_graph_def.pb", graph_def)
  with tarfile.open(tmp_path / "inception-2015-12-05.tgz", "w:gz", compresslevel=0) as tar:
    tar.add(tmp_path / "classify_image_graph_def.pb", "classify_image_graph_def.pb")
  assert_same(iw.load(tmp_path / "inception-2015-12-05.tgz"), flat)


def test_graph_def_attributes_are_checked(flat, graph_def, tmp_path):
  def bn_without_scale(node):
    node.name, node.op = "mixed/conv/batchnorm", "BatchNormWithGlobalNormalization"
    node.attr["variance_epsilon"].f = 0.001
    node.attr["scale_after_normalization"].b = False

  def conv_same_padding(node):  # the graph's first conv is VALID
    node.name, node.op = "conv/Conv2D", "Conv2D"
    node.attr["padding"].s = b"SAME"
    node.attr["strides"].list.i.extend([1, 2, 2, 1])

  def conv_1x1_same(node):  # a 1x1 conv pads nothing, SAME or VALID
    node.name, node.op = "conv_3/Conv2D", "Conv2D"
    node.attr["padding"].s = b"SAME"
    node.attr["strides"].list.i.extend([1, 1, 1, 1])

  def avg_pool_3(node):  # pool_3 as the graph has it
    node.name, node.op = "pool_3", "AvgPool"
    node.attr["padding"].s = b"VALID"
    node.attr["ksize"].list.i.extend([1, 8, 8, 1])
    node.attr["strides"].list.i.extend([1, 1, 1, 1])

  path = tmp_path / "classify_image_graph_def.pb"
  write_graph_def(path, graph_def, bn_without_scale, conv_1x1_same, avg_pool_3)
  params = iw.load(path)  # TF ignores gamma when scale_after_normalization is false
  np.testing.assert_array_equal(params["mixed"]["conv"]["batchnorm"]["gamma"], 1.0)
  np.testing.assert_array_equal(params["mixed_1"]["conv"]["batchnorm"]["gamma"],
                                flat["mixed_1/conv/batchnorm/gamma"])
  write_graph_def(path, graph_def, conv_same_padding)
  with pytest.raises(iw.InceptionWeightsError, match="conv/Conv2D has strides"):
    iw.load(path)


def test_torch_names_follow_torch_fidelitys_mapping():
  names = iw.torch_to_graph_names()
  assert sorted(names.values()) == sorted(inception.param_shapes())  # one torch key per tensor
  # A sample of torch-fidelity's util_convert_inception_weights.py table.
  for torch_scope, scope in [
      ("Conv2d_1a_3x3", "conv"), ("Conv2d_4a_3x3", "conv_4"),
      ("Mixed_5b.branch5x5_2", "mixed/tower/conv_1"),
      ("Mixed_5d.branch_pool", "mixed_2/tower_2/conv"),
      ("Mixed_6a.branch3x3", "mixed_3/conv"), ("Mixed_6a.branch3x3dbl_3", "mixed_3/tower/conv_2"),
      ("Mixed_6b.branch7x7_3", "mixed_4/tower/conv_2"),
      ("Mixed_6e.branch7x7dbl_5", "mixed_7/tower_1/conv_4"),
      ("Mixed_7a.branch3x3_2", "mixed_8/tower/conv_1"),
      ("Mixed_7a.branch7x7x3_4", "mixed_8/tower_1/conv_3"),
      ("Mixed_7b.branch3x3_2b", "mixed_9/tower/mixed/conv_1"),
      ("Mixed_7c.branch3x3dbl_3a", "mixed_10/tower_1/mixed/conv")]:
    assert names[f"{torch_scope}.conv.weight"] == f"{scope}/conv2d_params"
    assert names[f"{torch_scope}.bn.running_var"] == f"{scope}/batchnorm/moving_variance"
  assert names["fc.weight"] == "softmax/weights"


# A pytorch-fid .pth written without torch: pickle emits the GLOBALs torch.save
# emits once stand-ins are registered as torch._utils._rebuild_tensor_v2 and
# torch.FloatStorage; storages become persistent ids, as torch's persistent_id
# makes them: ('storage', <storage class>, key, location, numel[, None if legacy]).

@contextlib.contextmanager
def torch_stand_ins():
  torch_module, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

  def _rebuild_tensor_v2(*args):
    raise AssertionError("a stand-in: the reader must never call it")

  _rebuild_tensor_v2.__module__ = "torch._utils"
  _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
  utils._rebuild_tensor_v2, torch_module._utils = _rebuild_tensor_v2, utils
  for kind in ("FloatStorage", "LongStorage"):
    setattr(torch_module, kind, type(kind, (), {"__module__": "torch"}))
  saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
  sys.modules.update({"torch": torch_module, "torch._utils": utils})
  try:
    yield
  finally:
    for name, module in saved.items():
      if module is None:
        sys.modules.pop(name)
      else:
        sys.modules[name] = module


class Storage:
  def __init__(self, key, array):
    self.key, self.array = key, array
    self.kind = "LongStorage" if array.dtype == np.int64 else "FloatStorage"


class Tensor:
  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def __reduce__(self):  # torch.Tensor's, for a plain CPU tensor
    return (sys.modules["torch._utils"]._rebuild_tensor_v2,
            (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
  legacy = False

  def persistent_id(self, obj):
    if not isinstance(obj, Storage):
      return None
    pid = ("storage", getattr(sys.modules["torch"], obj.kind), obj.key, "cpu", obj.array.size)
    return pid + (None,) if self.legacy else pid


def contiguous(storage, shape):
  strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
  return Tensor(storage, 0, tuple(shape), tuple(strides))


def pytorch_fid_state_dict(flat):
  """pytorch-fid's keys and layouts (OIHW, fc [1008, 2048]); some tensors strided or sharing."""
  state, storages, keys = collections.OrderedDict(), [], iter(range(10**6))

  def storage(array):
    storages.append(Storage(str(next(keys)), np.ascontiguousarray(array).reshape(-1)))
    return storages[-1]

  for key, name in iw.torch_to_graph_names().items():
    array = flat[name]
    if key.endswith(".conv.weight"):
      state[key] = contiguous(storage(array.transpose(3, 2, 0, 1)), array.shape[::-1][:2]
                              + array.shape[:2])
    elif key == "fc.weight":  # a transposed view of [2048, 1008] data: stride (1, 1008)
      state[key] = Tensor(storage(array), 0, array.shape[::-1], (1, array.shape[1]))
    elif key.endswith(".bn.bias"):  # weight and bias share one storage, bias at an offset
      gamma = state[key[:-4] + "weight"]
      shared = storage(np.concatenate([gamma.storage.array, array]))
      state[key[:-4] + "weight"] = Tensor(shared, 0, array.shape, (1,))
      state[key] = Tensor(shared, array.size, array.shape, (1,))
      storages.remove(gamma.storage)
    else:
      state[key] = contiguous(storage(array), array.shape)
    if key.endswith(".bn.running_var"):
      state[key[:-len("running_var")] + "num_batches_tracked"] = Tensor(
          storage(np.array([7], np.int64)), 0, (), ())
  state._metadata = collections.OrderedDict([("", {"version": 1})])  # as torch's state_dict()
  return state, storages


def write_pth(path, flat, legacy):
  state, storages = pytorch_fid_state_dict(flat)
  with torch_stand_ins():
    pickled = io.BytesIO()
    pickler = TorchPickler(pickled, protocol=2)  # torch.save's default protocol
    pickler.legacy = legacy
    pickler.dump(state)
  if not legacy:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
      archive.writestr("archive/data.pkl", pickled.getvalue())
      archive.writestr("archive/byteorder", "little")
      for s in storages:
        archive.writestr(f"archive/data/{s.key}", s.array.astype(s.array.dtype.newbyteorder("<"))
                         .tobytes())
      archive.writestr("archive/version", "3\n")
    return
  with open(path, "wb") as f:
    for header in (0x1950A86A20F9469CFC6C, 1001,
                   dict(protocol_version=1001, little_endian=True,
                        type_sizes=dict(short=2, int=4, long=8))):
      pickle.dump(header, f, protocol=2)
    f.write(pickled.getvalue())
    keys = sorted(s.key for s in storages)
    pickle.dump(keys, f, protocol=2)
    by_key = {s.key: s for s in storages}
    for key in keys:
      f.write(struct.pack("<q", by_key[key].array.size) + by_key[key].array.tobytes())


@pytest.fixture(scope="module")
def pth_files(flat, tmp_path_factory):
  folder = tmp_path_factory.mktemp("pth")
  files = {"zip": folder / "pt_inception_zip.pth", "legacy": folder / "pt_inception_legacy.pth"}
  for kind, path in files.items():
    write_pth(path, flat, kind == "legacy")
  return files


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_pytorch_fid_round_trip(flat, pth_files, kind):
  assert_same(iw.load(pth_files[kind]), flat)


def test_npz_round_trip_and_cli(flat, pth_files, tmp_path, capsys):
  dst = tmp_path / "inception.npz"
  assert iw.main(["convert", str(pth_files["zip"]), str(dst)]) == 0
  assert "472 tensors, 23,885,392 parameters" in capsys.readouterr().out
  assert_same(iw.load(dst), flat)
  iw.save_npz(iw.load(dst), tmp_path / "again.npz")
  assert_same(iw.load(tmp_path / "again.npz"), flat)


@pytest.mark.parametrize("legacy", [False, True])
def test_other_globals_are_refused_unexecuted(tmp_path, legacy):
  marker = tmp_path / "executed"

  class Evil:
    def __reduce__(self):
      return (os.system, (f"touch {marker}",))

  payload = pickle.dumps(collections.OrderedDict([("fc.bias", Evil())]), protocol=2)
  path = tmp_path / "evil.pth"
  if legacy:
    with open(path, "wb") as f:
      for header in (0x1950A86A20F9469CFC6C, 1001, dict(little_endian=True)):
        pickle.dump(header, f, protocol=2)
      f.write(payload)
  else:
    with zipfile.ZipFile(path, "w") as archive:
      archive.writestr("archive/data.pkl", payload)
  with pytest.raises(iw.UnsafePickleError, match=r"refers to posix\.system.*nothing in it was"):
    iw.load(path)
  assert not marker.exists()


def test_damaged_files_give_clear_errors(flat, tmp_path):
  bad = dict(flat)
  bad["mixed_4/tower/conv_1/conv2d_params"] = flat["mixed_4/tower/conv_1/conv2d_params"].reshape(
      7, 1, 128, 128)
  np.savez(tmp_path / "bad.npz", **bad)
  with pytest.raises(iw.InceptionWeightsError,
                     match=r"bad\.npz: tensor mixed_4/tower/conv_1/conv2d_params has shape "
                           r"\(7, 1, 128, 128\), the architecture expects \(1, 7, 128, 128\)"):
    iw.load(tmp_path / "bad.npz")
  with pytest.raises(iw.InceptionWeightsError, match=r"src: 1 of the 472 .* softmax/biases"):
    iw.validate({k: v for k, v in flat.items() if k != "softmax/biases"}, "src")
  with pytest.raises(iw.InceptionWeightsError, match="does not have, e.g. mixed_11/conv"):
    iw.validate({**flat, "mixed_11/conv/conv2d_params": flat["conv/conv2d_params"]}, "src")
  with pytest.raises(FileNotFoundError):
    iw.load(tmp_path / "nothing.npz")
  (tmp_path / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"truncated")
  with pytest.raises(iw.InceptionWeightsError, match="does not start with the 6726825d"):
    iw.load(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
  (tmp_path / "junk.pth").write_bytes(b"\x80\x02K\x07.")
  with pytest.raises(iw.InceptionWeightsError, match="not a file torch.save writes"):
    iw.load(tmp_path / "junk.pth")


def test_published_checksum_matches_the_file_name():
  (digest,) = iw.KNOWN_SHA256
  assert len(digest) == 64 and iw.PTH_URL.endswith(f"-{digest[:8]}.pth")
