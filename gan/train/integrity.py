"""Checksums of every array of a state, computed on the devices where the arrays live.

A checkpoint stores, next to its arrays, a record of each leaf's dtype, shape
and a 64-bit checksum of its bits; a restore recomputes the checksums of what
it read and compares. A flipped bit or byte anywhere in an array's stored data
changes its checksum, so damaged data is refused instead of restored.

The checksum of a leaf is two 32-bit lanes, each

  sum over elements i of  fmix32(word_i + K * flat_index_i + S)   (mod 2**32)

with odd constants K, S per lane, where word_i is element i's bits
(zero-extended to 32 bits; 64-bit dtypes give two words) and fmix32 is
MurmurHash3's finaliser, a bijection on 32-bit words. Why this form:
  * a change of any single word changes exactly one term, and a bijection
    never maps two words to the same term: every single-word corruption is
    detected; independent multi-word damage escapes one lane with chance 2**-32;
  * the index term makes swapped or shifted elements count;
  * one finaliser per word and lane: about 0.9 GiB/s on 2 CPU cores, memory
    bound on accelerators (docs/benchmarks.md);
  * integer addition modulo 2**32 is associative and commutative, so the
    checksum is bitwise the same whatever the sharding, device count or
    reduction order: a state saved on 8 devices verifies on 1, and computing it
    moves no array off its devices (each device sums its shard; one tiny
    all-reduce), at pod scale as on a laptop.
Float leaves are also checked for NaN/Inf: training never lets one reach the
state (gan/train/health.py), so a non-finite value in a checkpoint is damage.
"""

import jax
import jax.numpy as jnp
import numpy as np

VERSION = 1
_LANES = ((0x9E3779B1, 0x85EBCA77), (0xC2B2AE3D, 0x27D4EB2F))  # (K, S) per lane: odd


def _fmix32(h: jax.Array) -> jax.Array:
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def _words(x: jax.Array) -> jax.Array:
  """The bits of ``x`` as uint32, same shape (64-bit dtypes: an extra trailing axis of 2)."""
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32)
  unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[x.dtype.itemsize]
  bits = jax.lax.bitcast_convert_type(x, unsigned)
  return bits.astype(jnp.uint32)


def _flat_index(shape: tuple) -> jax.Array:
  """uint32 row-major index of every element of an array of ``shape`` (wraps past 2**32)."""
  index = jnp.zeros(shape, jnp.uint32)
  for axis, size in enumerate(shape):
    index = index * jnp.uint32(size) + jax.lax.broadcasted_iota(jnp.uint32, shape, axis)
  return index


def _leaf_summary(x: jax.Array) -> jax.Array:
  """uint32 (3,): the two checksum lanes and 1 if every value is finite (0 otherwise)."""
  words = _words(x)
  index = _flat_index(words.shape)
  lanes = [jnp.sum(_fmix32(words + index * jnp.uint32(k) + jnp.uint32(s)), dtype=jnp.uint32)
           for k, s in _LANES]
  finite = jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact) else True
  return jnp.stack(lanes + [jnp.asarray(finite, jnp.uint32)])


@jax.jit
def _summaries(leaves: list) -> jax.Array:
  return jnp.stack([_leaf_summary(x) for x in leaves]) if leaves else jnp.zeros((0, 3),
                                                                              jnp.uint32)


def key_name(key) -> str:
  for attr in ("name", "key", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def leaf_paths(tree) -> list[str]:
  """'g_params/block0/conv1/kernel', ... for every leaf, in flattening order."""
  return ["/".join(key_name(k) for k in path)
          for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def summarize(tree) -> dict[str, dict]:
  """{leaf path: {'dtype', 'shape', 'checksum' (16 hex digits), 'finite'}} of a pytree."""
  leaves = [jnp.asarray(x) for x in jax.tree.leaves(tree)]
  rows = np.asarray(jax.device_get(_summaries(leaves)))
  return {path: {"dtype": str(x.dtype), "shape": list(x.shape),
                 "checksum": f"{int(row[0]):08x}{int(row[1]):08x}", "finite": bool(row[2])}
          for path, x, row in zip(leaf_paths(tree), leaves, rows)}


def record(tree) -> dict:
  """What a checkpoint stores: {'version', 'leaves': {path: {'dtype', 'shape', 'checksum'}}}."""
  return {"version": VERSION, "leaves": {
      path: {k: v for k, v in leaf.items() if k != "finite"}
      for path, leaf in summarize(tree).items()}}


def problems(tree, stored: dict | None) -> list[str]:
  """What is wrong with a restored ``tree``: checksum mismatches against ``stored`` (a
  ``record``; None: not checked) and non-finite values, one line per leaf."""
  found = []
  current = summarize(tree)
  if stored is not None:
    if stored.get("version") != VERSION or not isinstance(stored.get("leaves"), dict):
      return [f"unknown checksum record {str(stored)[:80]!r}"]
    saved = stored["leaves"]
    for path in sorted(saved.keys() - current.keys()):
      found.append(f"{path}: in the checksum record but not restored")
    for path, leaf in current.items():
      want = saved.get(path)
      if want is None:
        found.append(f"{path}: restored but missing from the checksum record")
      elif (want.get("dtype"), want.get("shape")) != (leaf["dtype"], leaf["shape"]):
        found.append(f"{path}: recorded as {want.get('dtype')}{want.get('shape')}, restored as "
                     f"{leaf['dtype']}{leaf['shape']}")
      elif want.get("checksum") != leaf["checksum"]:
        found.append(f"{path}: checksum {leaf['checksum']} of the data read differs from "
                     f"{want.get('checksum')} recorded when it was written")
  found += [f"{path}: holds NaN or Inf" for path, leaf in current.items() if not leaf["finite"]]
  return found


def recorded_shapes(stored: dict | None) -> dict[str, tuple] | None:
  """{path: shape} from a ``record`` (None if there is none or it is unreadable)."""
  try:
    return {path: tuple(leaf["shape"]) for path, leaf in stored["leaves"].items()}
  except (KeyError, TypeError, AttributeError):
    return None
