"""ProGAN's sliced Wasserstein distance (SWD) on Laplacian-pyramid patches.

Karras et al. 2018, following tkarras/progressive_growing_of_gans
metrics/sliced_wasserstein.py (cited below as "the reference") in every
constant. Per image set: a Laplacian pyramid of each uint8 image, from its
resolution down to 16x16 (the last level is the Gaussian residual); per level
and image, 128 random 7x7 neighbourhoods of all 3 channels. Per level, each
set's descriptors are normalised per channel by that set's mean and std, and
the two sets compared by the sliced Wasserstein distance: 4 repeats of 128
random unit directions, the mean over directions and neighbourhoods of the
|difference| of the sorted projections. Reported x1e3 per level and averaged.

Split in two: ``descriptors`` is pure JAX (jit it, shard it over the batch) and
``swd`` runs on the host on the gathered descriptors of both sets.

Because each set is normalised by its own statistics, a global brightness or
contrast change is (nearly) invisible to SWD, by design of the reference.
"""

import jax
import jax.numpy as jnp
import numpy as np

NHOOD_SIZE = 7          # reference API.__init__: nhood_size = 7
NHOODS_PER_IMAGE = 128  # reference API.__init__: nhoods_per_image = 128
DIR_REPEATS = 4         # reference API.__init__: dir_repeats = 4
DIRS_PER_REPEAT = 128   # reference API.__init__: dirs_per_repeat = 128
MIN_RESOLUTION = 16     # reference API.__init__: levels while res >= 16
SCALE = 1e3             # reference API.end: "multiply by 10^3"

# The reference's 5x5 gaussian_filter is [1, 4, 6, 4, 1]^T [1, 4, 6, 4, 1] / 256 (as
# cv2.pyrDown); applied here as two 1-D passes of [1, 4, 6, 4, 1] / 16.
_TAPS = np.float32([1, 4, 6, 4, 1]) / 16.0
_DIRS_PER_CHUNK = 32    # directions projected at once on the host (memory only)


def resolutions(size: int) -> list[int]:
  """[size, size / 2, ..., 16]: the pyramid levels' resolutions (the reference's list)."""
  if size < MIN_RESOLUTION or size & (size - 1):
    raise ValueError(f"SWD needs square images of a power-of-two resolution >= "
                     f"{MIN_RESOLUTION} (its pyramid goes down to 16x16 and takes 7x7 "
                     f"patches), got {size}x{size}")
  out = []
  while size >= MIN_RESOLUTION:
    out.append(size)
    size //= 2
  return out


def _blur(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Separable 5-tap filter over axes 1, 2 of [N, H, W, C] with 'mirror' borders.

  The reference uses scipy.ndimage.convolve(mode='mirror'): d c b | a b c d | c b a,
  which is numpy's / jnp.pad's 'reflect'.
  """
  for axis in (1, 2):
    pad = [(0, 0)] * 4
    pad[axis] = (2, 2)
    padded = jnp.pad(x, pad, mode="reflect")
    n = x.shape[axis]
    x = sum(float(t) * jax.lax.slice_in_dim(padded, k, k + n, axis=axis)
            for k, t in enumerate(taps))
  return x


def pyr_down(x: jax.Array) -> jax.Array:
  """float [N, H, W, C] -> [N, H / 2, W / 2, C]: blur, keep even pixels (reference pyr_down)."""
  return _blur(x, _TAPS)[:, ::2, ::2]


def pyr_up(x: jax.Array) -> jax.Array:
  """float [N, H, W, C] -> [N, 2H, 2W, C]: zeros between pixels, blur x 4 (reference pyr_up)."""
  n, h, w, c = x.shape
  up = jnp.zeros((n, 2 * h, 2 * w, c), x.dtype).at[:, ::2, ::2].set(x)
  return _blur(up, 2.0 * _TAPS)  # 2 per axis: the reference's gaussian_filter * 4


def laplacian_pyramid(images: jax.Array, num_levels: int) -> list[jax.Array]:
  """float [N, H, W, C] -> num_levels arrays [N, H / 2^i, W / 2^i, C].

  Level i < num_levels - 1 is G_i - pyr_up(G_{i+1}), the last the Gaussian
  G_{num_levels - 1} (reference generate_laplacian_pyramid).
  """
  gaussians = [jnp.asarray(images, jnp.float32)]
  for _ in range(1, num_levels):
    gaussians.append(pyr_down(gaussians[-1]))
  bands = [g - pyr_up(g_next) for g, g_next in zip(gaussians[:-1], gaussians[1:])]
  return bands + [gaussians[-1]]


def reconstruct(pyramid: list[jax.Array]) -> jax.Array:
  """The inverse of laplacian_pyramid (reference reconstruct_laplacian_pyramid)."""
  images = pyramid[-1]
  for level in pyramid[-2::-1]:
    images = pyr_up(images) + level
  return images


def _patches(level: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
  """[H, W, C] level, [P] centres -> [P, C, 7 (x), 7 (y)] neighbourhoods."""
  offsets = jnp.arange(NHOOD_SIZE) - NHOOD_SIZE // 2
  r = rows[:, None, None] + offsets[None, None, :]  # [P, x, y]: y offset on the last axis
  c = cols[:, None, None] + offsets[None, :, None]
  return jnp.moveaxis(level[r, c], -1, 1)


def descriptors(images: jax.Array, rng: jax.Array) -> list[jax.Array]:
  """uint8 [N, H, W, 3] (H = W a power of two >= 16) -> per level [N * 128, 7 * 7 * 3] float32.

  Rows are image-major (image i's 128 neighbourhoods are rows 128 i ... 128 i + 127),
  columns laid out as the reference's (channel, x, y). Centres are uniform in
  [3, size - 4] on both axes, drawn per level, neighbourhood and axis
  (reference get_descriptors_for_minibatch). Pure and jittable; per-image, so
  it partitions along a sharded batch axis.
  """
  n, h, w, c = images.shape
  if h != w or c != 3:
    raise ValueError(f"SWD descriptors need square RGB images [N, H, H, 3], got {images.shape}")
  levels = laplacian_pyramid(images.astype(jnp.float32), len(resolutions(h)))
  half = NHOOD_SIZE // 2
  out = []
  for level, key in zip(levels, jax.random.split(rng, len(levels))):
    size = level.shape[1]
    key_x, key_y = jax.random.split(key)
    # randint's maxval is exclusive, as np.random.randint(H, S - H) in the reference.
    cols = jax.random.randint(key_x, (n, NHOODS_PER_IMAGE), half, size - half)
    rows = jax.random.randint(key_y, (n, NHOODS_PER_IMAGE), half, size - half)
    patches = jax.vmap(_patches)(level, rows, cols)  # [N, 128, C, 7, 7]
    out.append(patches.reshape(n * NHOODS_PER_IMAGE, c * NHOOD_SIZE * NHOOD_SIZE))
  return out


def normalize(desc: np.ndarray, channels: int = 3) -> np.ndarray:
  """[M, C * 49] -> float32, each channel's 49 columns minus their mean over all M rows
  and 49 positions, over their std (ddof 0) (reference finalize_descriptors).

  Statistics accumulated in float64 (the arrays stay float32: ~1M rows at 8192
  images); a constant channel (std 0) is only centred.
  """
  d = np.asarray(desc, np.float32).reshape(desc.shape[0], channels, -1)
  mean = d.mean(axis=(0, 2), keepdims=True, dtype=np.float64)
  d = d - mean.astype(np.float32)
  std = np.sqrt(np.square(d).mean(axis=(0, 2), keepdims=True, dtype=np.float64))
  d /= np.where(std > 0, std, 1.0).astype(np.float32)
  return d.reshape(desc.shape[0], -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng, dir_repeats: int = DIR_REPEATS,
                       dirs_per_repeat: int = DIRS_PER_REPEAT) -> float:
  """Sliced Wasserstein-1 distance of two equal-size descriptor sets a, b [M, D].

  Per repeat: ``dirs_per_repeat`` Gaussian directions normalised to unit
  length (float32, as the reference), the mean over directions and rows of
  |sort(a @ dir) - sort(b @ dir)|; the mean over repeats. ``rng``: a seed or
  np.random.Generator. Not scaled by 1e3 (``swd`` does that).
  """
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  if a.ndim != 2 or a.shape != b.shape:
    raise ValueError(f"sliced_wasserstein needs two equal-size sets [M, D], got {a.shape} and "
                     f"{b.shape} (the reference sorts and pairs their projections)")
  rng = np.random.default_rng(rng)
  results = []
  for _ in range(dir_repeats):
    dirs = rng.standard_normal((a.shape[1], dirs_per_repeat))
    dirs = (dirs / np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))).astype(np.float32)
    total = 0.0
    for i in range(0, dirs_per_repeat, _DIRS_PER_CHUNK):
      chunk = dirs[:, i:i + _DIRS_PER_CHUNK]
      proj_a, proj_b = np.sort(a @ chunk, axis=0), np.sort(b @ chunk, axis=0)
      total += np.abs(proj_a - proj_b).sum(dtype=np.float64)
    results.append(total / (a.shape[0] * dirs_per_repeat))
  return float(np.mean(results))


def swd(real_descriptors: list[np.ndarray], fake_descriptors: list[np.ndarray],
        seed: int = 0) -> dict[str, float]:
  """{'swd_<res>': SWD x 1e3 per level, ..., 'swd': their mean} of two sets' descriptors.

  Both: ``descriptors``' per-level outputs (gathered over batches), the same
  number of rows. Level resolutions follow from the level count (the last is
  16x16). Directions come from np.random.default_rng(seed), level after level.
  """
  if len(real_descriptors) != len(fake_descriptors) or not real_descriptors:
    raise ValueError(f"SWD of {len(real_descriptors)} and {len(fake_descriptors)} pyramid levels")
  levels = len(real_descriptors)
  rng = np.random.default_rng(seed)
  out = {}
  for i, (real, fake) in enumerate(zip(real_descriptors, fake_descriptors)):
    if real.shape != fake.shape:
      raise ValueError(f"SWD needs as many real as generated descriptors per level, got "
                       f"{real.shape} and {fake.shape}: use the same number of images")
    res = MIN_RESOLUTION * 2 ** (levels - 1 - i)
    out[f"swd_{res}"] = SCALE * sliced_wasserstein(normalize(real), normalize(fake), rng)
  out["swd"] = float(np.mean(list(out.values())))
  return out
