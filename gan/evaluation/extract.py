"""Batched feature extraction, sharded over every device of every process.

One jitted function per image source computes, for a global batch of images
split along its example axis over the mesh's ``data`` axis, every output the
chosen metrics need: each network's features and logits, and SWD's patch
descriptors. The outputs are replicated, so every process holds the whole
batch's outputs and accumulates the same statistics: the figures do not depend
on how many devices or processes computed them.

Generated images go through ``quantize`` first, exactly as real images were
stored: x * 127.5 + 128, clipped to [0, 255], truncated to uint8.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gan.train.sharding import batch_sharding, host_to_global, replicated

SWD_KEY = "swd"


def quantize(images: jax.Array) -> jax.Array:
  """float [-1, 1] -> uint8, as the protocol of the reference metric code does it."""
  return jnp.clip(images * 127.5 + 128.0, 0.0, 255.0).astype(jnp.uint8)


def outputs_of(networks: dict, swd: bool, images: jax.Array, net_params: dict,
               swd_rng: jax.Array | None) -> dict:
  """{network name: {features, logits}, 'swd': [per-level descriptors]} of uint8 images."""
  outputs = {name: net.apply(net_params[name], images) for name, net in networks.items()}
  if swd:
    from gan.evaluation import swd as swd_lib
    n = images.shape[0]  # per image, so pad rows can be dropped: [N, patches, 7 * 7 * 3]
    outputs[SWD_KEY] = [d.reshape(n, -1, d.shape[-1])
                        for d in swd_lib.descriptors(images, swd_rng)]
  return outputs


def _check_batch(batch_size: int, mesh: Mesh) -> None:
  if batch_size % mesh.size:
    raise ValueError(f"an evaluation batch of {batch_size} does not split over {mesh.size} "
                     "devices; use a multiple (config.eval.batch_size).")


def real_fn(networks: dict, swd: bool, mesh: Mesh, flip: bool) -> Callable:
  """jit of (net_params, images uint8 (B, H, W, 3) global, swd_rng) -> replicated outputs.

  ``flip``: the outputs of the mirrored images instead.
  """
  def fn(net_params, images, swd_rng):
    if flip:
      images = images[:, :, ::-1]
    return outputs_of(networks, swd, images, net_params, swd_rng)

  everywhere = replicated(mesh)
  return jax.jit(fn, in_shardings=(everywhere, batch_sharding(mesh), everywhere),
                 out_shardings=everywhere)


def generated_fn(generate: Callable, networks: dict, swd: bool, mesh: Mesh,
                 batch_size: int) -> Callable:
  """jit of (inputs, net_params, rng) -> (replicated outputs, labels or None).

  ``generate(inputs, rng, batch_size)`` -> (images float [-1, 1], labels or
  None) is a family's pure sampler; its images are laid out over the devices
  before they are quantised and fed to the networks.
  """
  _check_batch(batch_size, mesh)
  shard = batch_sharding(mesh)

  def fn(inputs, net_params, rng):
    sample_rng, swd_rng = jax.random.split(rng)
    images, labels = generate(inputs, sample_rng, batch_size)
    images = jax.lax.with_sharding_constraint(quantize(images), shard)
    return outputs_of(networks, swd, images, net_params, swd_rng), labels

  return jax.jit(fn, out_shardings=replicated(mesh))


def local_slice(indices: np.ndarray) -> np.ndarray:
  """This process's share of a global batch of dataset indices (contiguous blocks)."""
  per_process = len(indices) // jax.process_count()
  start = jax.process_index() * per_process
  return indices[start:start + per_process]


def real_batches(source, count: int, batch_size: int, mesh: Mesh):
  """Yields (global uint8 batch, number of real rows) over the first ``count`` examples.

  The last batch is padded by repeating its last index; callers drop the pad
  rows (the outputs are in example order).
  """
  _check_batch(batch_size, mesh)
  if batch_size % jax.process_count():
    raise ValueError(f"an evaluation batch of {batch_size} does not split over "
                     f"{jax.process_count()} processes.")
  for start in range(0, count, batch_size):
    valid = min(batch_size, count - start)
    indices = np.minimum(np.arange(start, start + batch_size), count - 1)
    images, _ = source.read(local_slice(indices))
    yield host_to_global(mesh, np.asarray(images, np.uint8), example_axis=0), valid


def to_host(outputs, valid: int):
  """Device outputs -> numpy, the first ``valid`` rows of every leaf (SWD: per image)."""
  host = jax.device_get(outputs)
  return jax.tree.map(lambda x: np.asarray(x)[:valid] if np.ndim(x) else x, host)
