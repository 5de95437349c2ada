"""Reads a torch.save'd state_dict of tensors into numpy arrays, safely, without torch.

The file is never unpickled: its pickle is walked opcode by opcode
(pickletools.genops) and only what a state_dict of tensors is made of is
understood; any other global, call or opcode is refused before anything could
run. Both torch.save formats are read: the zip archive (torch >= 1.6:
<name>/data.pkl + <name>/data/<key> storages) and the legacy stream (magic
number, protocol, sys info, pickle, storage keys, raw storages).

Its errors are InceptionWeightsError (defined here so that gan.evaluation.
inception_weights, which re-exports it, can import this module without a
cycle): the state_dicts this reader exists for are the FID Inception-v3's.
"""

import collections
import io
import os
import pickletools
import re
import struct
import zipfile
import zlib

import numpy as np


class InceptionWeightsError(ValueError):
  """A weights file that is not (or not a whole, undamaged) 2015-12-05 Inception-v3."""


# What a truncated or corrupted torch file raises while it is read.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError)

_Global = collections.namedtuple("_Global", "module name")  # a GLOBAL, as names only
_StorageRef = collections.namedtuple("_StorageRef", "key dtype numel")
_TensorRef = collections.namedtuple("_TensorRef", "storage offset size stride")

_STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
                   "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
                   "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}
_CALLABLES = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2")}
_ALLOWED_GLOBALS = _CALLABLES | {("torch", s) for s in _STORAGE_DTYPES}
# The opcodes pickle protocols 2-5 write for a dict of tensors (torch.save uses 2).
_PUSH_ARG = {"BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BININT", "BININT1", "BININT2",
             "LONG1", "BINFLOAT"}
_PUSH_NEW = {"NONE": lambda: None, "NEWTRUE": lambda: True, "NEWFALSE": lambda: False,
             "EMPTY_TUPLE": tuple, "EMPTY_LIST": list, "EMPTY_DICT": dict}
_MAGIC_NUMBER, _PROTOCOL_VERSION = 0x1950A86A20F9469CFC6C, 1001  # torch's legacy format


class UnsafePickleError(InceptionWeightsError):
  """A .pth whose pickle asks for more than a state_dict of tensors; nothing of it was run."""


def _short(value) -> str:
  text = repr(value)
  return text if len(text) <= 120 else text[:120] + "..."


def _walk_pickle(stream, source: str, storages: dict):
  """Interprets one pickle from `stream` as a state_dict would be; storage refs -> `storages`."""
  stack, marks, memo = [], [], {}

  def refuse(what):
    raise UnsafePickleError(f"{source}: its pickle {what}; a pytorch-fid state_dict holds only "
                            "tensors, so the file is refused (nothing in it was executed).")

  def pop_mark():
    start = marks.pop()
    items, stack[start:] = stack[start:], []
    return items

  def persistent_load(pid):  # torch's ('storage', type, key, location, numel[, view])
    if not (type(pid) is tuple and len(pid) in (5, 6) and pid[0] == "storage"
            and isinstance(pid[1], _Global) and pid[1].name in _STORAGE_DTYPES
            and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[4] >= 0):
      refuse(f"has the persistent id {_short(pid)}, not a tensor storage")
    ref = _StorageRef(pid[2], np.dtype(_STORAGE_DTYPES[pid[1].name]), pid[4])
    if storages.setdefault(ref.key, ref) != ref:
      refuse(f"gives storage {ref.key} two different types or sizes")
    return ref

  def call(func, args):  # what REDUCE would call, interpreted instead
    if not isinstance(func, _Global) or (func.module, func.name) not in _CALLABLES:
      refuse(f"calls {_short(func)}")
    if func.name == "OrderedDict":
      if args != ():
        refuse("builds an OrderedDict from arguments")
      return {}
    # (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
    if not (type(args) is tuple and 6 <= len(args) <= 7 and isinstance(args[0], _StorageRef)
            and type(args[2]) is tuple and type(args[3]) is tuple
            and all(type(a) is int for a in (args[1], *args[2], *args[3]))):
      refuse(f"rebuilds a tensor from {_short(args)}")
    return _TensorRef(*args[:4])

  def top(kind):
    if type(stack[-1]) is not kind:
      refuse(f"adds items to a {type(stack[-1]).__name__}")
    return stack[-1]

  try:
    for op, arg, _ in pickletools.genops(stream):
      name = op.name
      if name == "STOP":
        return stack.pop()
      if name in ("PROTO", "FRAME"):
        continue
      if name in ("GLOBAL", "STACK_GLOBAL"):
        module, qualname = arg.split(" ", 1) if arg else (stack.pop(-2), stack.pop())
        if (module, qualname) not in _ALLOWED_GLOBALS:
          refuse(f"refers to {module}.{qualname}")
        stack.append(_Global(module, qualname))
      elif name in _PUSH_ARG:
        stack.append(arg)
      elif name in _PUSH_NEW:
        stack.append(_PUSH_NEW[name]())
      elif name == "MARK":
        marks.append(len(stack))
      elif name in ("BINPUT", "LONG_BINPUT", "MEMOIZE"):
        memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
      elif name in ("BINGET", "LONG_BINGET"):
        stack.append(memo[arg])
      elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        n = int(name[-1])
        stack[-n:] = [tuple(stack[-n:])]
      elif name == "TUPLE":
        stack.append(tuple(pop_mark()))
      elif name in ("APPEND", "APPENDS"):
        items = pop_mark() if name == "APPENDS" else [stack.pop()]
        top(list).extend(items)
      elif name in ("SETITEM", "SETITEMS"):
        items = pop_mark() if name == "SETITEMS" else [stack.pop(-2), stack.pop()]
        top(dict).update(zip(items[::2], items[1::2]))
      elif name == "BINPERSID":
        stack.append(persistent_load(stack.pop()))
      elif name == "REDUCE":
        args = stack.pop()
        stack.append(call(stack.pop(), args))
      elif name == "BUILD":  # an OrderedDict's attributes: torch's _metadata (versions); unused
        if type(stack.pop()) is not dict or type(stack[-1]) is not dict:
          refuse("sets the state of something other than a dict")
      else:
        refuse(f"uses the {name} opcode")
  except InceptionWeightsError:
    raise
  except Exception as error:  # a malformed stream: truncated, bad memo index, unhashable key
    raise InceptionWeightsError(f"{source}: a damaged pickle ({type(error).__name__}: "
                                f"{_short(error)}).") from None
  refuse("has no STOP")


def _tensor(ref: _TensorRef, storage: np.ndarray, source: str, key: str) -> np.ndarray:
  """The (possibly strided) tensor `ref` views in `storage`, as a contiguous native copy."""
  size, stride, offset = ref.size, ref.stride, ref.offset
  if len(size) != len(stride) or min((offset, *size, *stride)) < 0:
    raise InceptionWeightsError(f"{source}: tensor {key} has size {size}, stride {stride}.")
  native = storage.dtype.newbyteorder("=")
  if 0 in size:
    return np.zeros(size, native)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if last >= storage.size:
    raise InceptionWeightsError(f"{source}: tensor {key} reaches past its storage "
                                f"(element {last} of {storage.size}; truncated file?).")
  view = np.lib.stride_tricks.as_strided(storage[offset:], size,
                                         [s * storage.itemsize for s in stride], writeable=False)
  return view.astype(native)


def _array(data: bytes, ref: _StorageRef, order: str, source: str) -> np.ndarray:
  if len(data) % ref.dtype.itemsize:
    raise InceptionWeightsError(f"{source}: storage {ref.key} is cut short (truncated file?).")
  return np.frombuffer(data, ref.dtype.newbyteorder(order))


def _read_zip(source: str, storages: dict, arrays: dict):
  with zipfile.ZipFile(source) as archive:
    names = archive.namelist()
    pickles = [n for n in names if re.fullmatch(r"[^/]+/data\.pkl", n)]
    if len(pickles) != 1:
      raise InceptionWeightsError(f"{source}: a zip without one <name>/data.pkl: not torch.save's.")
    prefix = pickles[0][:-len("data.pkl")]
    # Files from before torch wrote a byteorder record are little-endian.
    order = archive.read(f"{prefix}byteorder") if f"{prefix}byteorder" in names else b"little"
    if order not in (b"little", b"big"):
      raise InceptionWeightsError(f"{source}: unknown byte order {_short(order)}.")
    obj = _walk_pickle(io.BytesIO(archive.read(pickles[0])), source, storages)
    for key, ref in storages.items():
      if f"{prefix}data/{key}" in names:
        arrays[key] = _array(archive.read(f"{prefix}data/{key}"), ref,
                             "<" if order == b"little" else ">", source)
  return obj


def _read_legacy(source: str, storages: dict, arrays: dict):
  with open(source, "rb") as f:
    try:  # magic number, protocol version, sys info: plain pickles
      header = [_walk_pickle(f, source, {}) for _ in range(3)]
    except InceptionWeightsError:
      header = None
    if not header or header[:2] != [_MAGIC_NUMBER, _PROTOCOL_VERSION]:
      raise InceptionWeightsError(f"{source}: not a file torch.save writes (zip or legacy).")
    obj = _walk_pickle(f, source, storages)
    keys = _walk_pickle(f, source, {})
    for key in keys if type(keys) is list else [keys]:
      ref = storages.get(key) if type(key) is str else None
      if ref is None:
        raise InceptionWeightsError(f"{source}: stored key {_short(key)} belongs to no tensor.")
      # Each storage: its element count (int64) then its bytes, little-endian
      # whichever machine wrote them (torch converts).
      count = struct.unpack("<q", f.read(8).ljust(8, b"\0"))[0]
      arrays[key] = _array(f.read(max(count, 0) * ref.dtype.itemsize), ref, "<", source)
  return obj


def read_torch_state_dict(path) -> dict[str, np.ndarray]:
  """A torch.save'd {name: tensor} dict -> {name: ndarray}, zip or legacy format, no torch."""
  source, storages, arrays = os.fspath(path), {}, {}
  reader = _read_zip if zipfile.is_zipfile(source) else _read_legacy
  try:
    obj = reader(source, storages, arrays)
  except _DAMAGED as error:
    raise InceptionWeightsError(f"{source}: a damaged file ({error}).") from None
  if type(obj) is not dict or not all(type(k) is str for k in obj):
    raise InceptionWeightsError(f"{source}: holds {type(obj).__name__}, not a state_dict.")
  out = {}
  for key, ref in obj.items():
    if not isinstance(ref, _TensorRef):
      raise InceptionWeightsError(f"{source}: state_dict entry {key} is not a tensor.")
    storage = arrays.get(ref.storage.key)
    if storage is None or storage.size != ref.storage.numel:
      raise InceptionWeightsError(
          f"{source}: the storage of {key} holds {'no' if storage is None else storage.size} "
          f"elements, its header says {ref.storage.numel} (truncated file?).")
    out[key] = _tensor(ref, storage, source, key)
  return out
