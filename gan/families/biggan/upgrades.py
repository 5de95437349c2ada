"""Older BigGAN checkpoint layouts that still restore (gan.train.checkpointing.Upgrade).

Before issue 13 the projection embedding's spectral-norm vector u lived in
feature space (features,); it now lives in class space (num_classes,), as in
BigGAN-PyTorch's SNEmbedding. The old u converts to the class-space vector the
old code's next power-iteration step would have computed, v = W u / ||W u||
(W the (num_classes, features) table), so the iteration continues where it was.
"""

import jax
import jax.numpy as jnp

from gan.families.interface import Upgrade


def _embed_u(d_vars):
  spectral = d_vars.get("spectral", {})
  return spectral.get("embed", {}).get("u")


def _with_embed_u(state, u):
  d_vars = dict(state.d_vars)
  spectral = dict(d_vars["spectral"])
  spectral["embed"] = {**spectral["embed"], "u": u}
  d_vars["spectral"] = spectral
  return state.replace(d_vars=d_vars)


def feature_space_embed_u() -> Upgrade:
  def old_target(target):
    u = _embed_u(target.d_vars)
    if u is None:
      return None
    features = target.d_params["embed"]["embedding"].shape[1]
    old = jax.ShapeDtypeStruct((features,), u.dtype, sharding=u.sharding)
    return _with_embed_u(target, old)

  def convert(state):
    table = state.d_params["embed"]["embedding"]
    v = table @ _embed_u(state.d_vars)
    return _with_embed_u(state, v / jnp.linalg.norm(v))

  return Upgrade(
      change="the D embedding's spectral-norm vector moved to class space (issue 13)",
      conversion="u := W u / ||W u||, the old iteration's class-space vector",
      old_target=old_target, convert=convert)
