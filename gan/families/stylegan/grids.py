"""Sample grids of StyleGAN v1 and v2: fixed latents, style mixing, truncation.

All three use G's EMA weights, the tracked average w and the synthesis's fixed
noise, so grids of one run differ only by training.
  samples     rows x cols at fixed z (conditional: one row per class shown), at
              config.sample.truncation_psi
  mixing      the paper's figure: the top row and left column are sources; cell
              (r, c) takes the styles of resolutions up to
              config.sample.mixing_resolution (coarse) from row r's w and the rest
              (fine) from column c's
  truncation  one row per psi of config.sample.truncation_rows, same z per column
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan.data.shapes import CLASS_NAMES
from gan.families import interface
from gan.families.stylegan import styles
from gan.families.stylegan.config2 import num_ws as count_ws
from gan.families.stylegan.config2 import parse_psis
from gan.images import make_grid

MIXING_SOURCES = 5  # rows and columns of sources in the style-mixing grid (at most)


def mix_grid_ws(row_ws: jax.Array, col_ws: jax.Array, crossover: int) -> jax.Array:
  """(R, L, D), (C, L, D) -> (R * C, L, D): row r's w below ``crossover``, column c's from it."""
  rows, cols = row_ws.shape[0], col_ws.shape[0]
  coarse = jnp.repeat(row_ws[:, None], cols, axis=1)
  fine = jnp.repeat(col_ws[None, :], rows, axis=0)
  layer = jnp.arange(row_ws.shape[1])[None, None, :, None]
  return jnp.where(layer < crossover, coarse, fine).reshape(rows * cols, *row_ws.shape[1:])


class StyleSampler(interface.Sampler):
  """Grids from ``map_fn(params, z, labels) -> w (N, w_dim)``,
  ``render(params, ws, phase, images_shown) -> images (N, R, R, 3)`` (jitted by the
  family) and ``label(phase, images_shown)``, what the captions call the generator."""

  def __init__(self, config, z_dim: int, num_ws: int, num_classes: int, map_fn: Callable,
               render: Callable, label: str):
    s = config.sample
    self.config, self.num_ws, self.label = config, num_ws, label
    self.map_fn, self.render = jax.jit(map_fn), render
    key = jax.random.PRNGKey(config.seed + 1)
    self.conditional = num_classes > 0
    if self.conditional:  # one row per class shown, as the BigGAN grids
      self.rows = min(s.rows, num_classes)
      classes = np.linspace(0, num_classes - 1, self.rows).round().astype(np.int32)
      self.labels = jnp.asarray(np.repeat(classes, s.cols))
      names = CLASS_NAMES if config.data.name == "shapes10" else None
      self.row_labels = [names[c] if names else f"class {c}" for c in classes]
    else:
      self.rows, self.labels, self.row_labels = s.rows, None, None
    self.z = jax.random.normal(key, (self.rows * s.cols, z_dim))
    self.psis = parse_psis(s.truncation_rows)
    self.crossover = count_ws(s.mixing_resolution)
    self.sources = min(MIXING_SOURCES, s.rows, s.cols)

  def _ws(self, state, z, labels, psi: float) -> jax.Array:
    ws = styles.broadcast(self.map_fn(state.ema_params, z, labels), self.num_ws)
    cutoff = self.config.sample.truncation_cutoff or None
    return styles.truncate(ws, state.w_avg, psi, cutoff)

  def _labels(self, count: int):
    return None if not self.conditional else self.labels[:count]

  def grid(self, state, phase, step: int, images_shown: int) -> interface.Grid:
    psi = self.config.sample.truncation_psi
    images = self.render(state.ema_params, self._ws(state, self.z, self.labels, psi), phase,
                         images_shown)
    truncation = f", truncation psi {psi:g}" if psi != 1 else ""
    rows = ", one row per class" if self.conditional else ""
    image = make_grid(np.asarray(jax.device_get(images)), rows=self.rows,
                      row_labels=self.row_labels,
                      caption=f"step {step}: {self.label(phase, images_shown)}, EMA generator"
                              f"{rows}{truncation}")
    return interface.Grid(image, f"step_{step:08d}{self._suffix(phase)}.png", "samples_ema")

  def mixing_grid(self, state, phase, step: int, images_shown: int) -> interface.Grid:
    n = self.sources
    row_z, col_z = self.z[:n], self.z[n:2 * n] if len(self.z) >= 2 * n else self.z[-n:]
    labels = self._labels(n)
    row_ws, col_ws = self._ws(state, row_z, labels, 1.0), self._ws(state, col_z, labels, 1.0)
    ws = jnp.concatenate([row_ws[:1], col_ws, jnp.concatenate(
        [jnp.concatenate([row_ws[r:r + 1], mix_grid_ws(row_ws[r:r + 1], col_ws, self.crossover)])
         for r in range(n)])])
    images = np.array(jax.device_get(self.render(state.ema_params, ws, phase, images_shown)))
    images[0] = 0.0  # the top-left corner is empty (mid-grey)
    res = self.config.sample.mixing_resolution
    image = make_grid(images, rows=n + 1, caption=(
        f"step {step}: style mixing; cell (r, c): styles up to {res}x{res} from row r's source "
        "(left), finer ones from column c's source (top)"))
    return interface.Grid(image, f"mixing_{step:08d}{self._suffix(phase)}.png",
                          "style_mixing_ema")

  def truncation_grid(self, state, phase, step: int, images_shown: int) -> interface.Grid:
    cols = self.config.sample.cols
    z, labels = self.z[:cols], self._labels(cols)
    ws = jnp.concatenate([self._ws(state, z, labels, psi) for psi in self.psis])
    images = self.render(state.ema_params, ws, phase, images_shown)
    cutoff = self.config.sample.truncation_cutoff
    layers = f" on the first {cutoff} w's" if cutoff else ""
    image = make_grid(np.asarray(jax.device_get(images)), rows=len(self.psis),
                      row_labels=[f"psi {psi:g}" for psi in self.psis],
                      caption=f"step {step}: truncation toward the average w{layers}")
    return interface.Grid(image, f"truncation_{step:08d}{self._suffix(phase)}.png",
                          "truncation_ema")

  def grids(self, state, phase, step: int, images_shown: int) -> list[interface.Grid]:
    out = [self.grid(state, phase, step, images_shown),
           self.mixing_grid(state, phase, step, images_shown)]
    return out + ([self.truncation_grid(state, phase, step, images_shown)] if self.psis else [])

  def _suffix(self, phase) -> str:
    return "" if phase.detail is None else f"_{phase.label.replace(' ', '_')}"
