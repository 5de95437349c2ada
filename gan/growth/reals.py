"""ProGAN's real images during a fade-in, blended exactly like the generator output.

The pipeline delivers reals at the stage resolution R, box-filtered from the
dataset resolution (``Pipeline.examples(positions, resolution=R)``). While a
new R x R block fades in with weight alpha, G outputs
  lerp(upsample(toRGB(block_{R/2})), toRGB(block_R), alpha)
and the reals D sees are blended the same way, inside the train step (alpha
is a traced value):
  lerp(upsample(avgpool_2x2(x)), x, alpha)
so at alpha = 0 they carry exactly the information of the R/2 stage and at
alpha = 1 they are the R x R images. (The official code writes this with the
"lod" fraction, 1 - alpha.)
"""

import jax.numpy as jnp


def downsample_2x(images: jnp.ndarray) -> jnp.ndarray:
  """(..., H, W, C) -> (..., H/2, W/2, C): 2x2 means."""
  *lead, height, width, channels = images.shape
  blocks = images.reshape(*lead, height // 2, 2, width // 2, 2, channels)
  return blocks.mean(axis=(-4, -2))


def upsample_2x(images: jnp.ndarray) -> jnp.ndarray:
  """(..., H, W, C) -> (..., 2H, 2W, C): nearest neighbour."""
  return jnp.repeat(jnp.repeat(images, 2, axis=-3), 2, axis=-2)


def blend_fade_in(images: jnp.ndarray, alpha) -> jnp.ndarray:
  """float (..., R, R, C) reals at the new resolution -> the fade-in mix for ``alpha``."""
  coarse = upsample_2x(downsample_2x(images))
  return coarse + (images - coarse) * jnp.asarray(alpha, images.dtype)
