"""Sample grids as PNG files."""

import functools
import io
from collections.abc import Sequence

import numpy as np
from etils import epath
from PIL import Image, ImageDraw, ImageFont

from gan.fileio import atomic_write

BACKGROUND = 128  # mid-grey of the padding, the label margin and the caption strip
TEXT_COLOR = (240, 240, 240)
TEXT_PAD = 3  # pixels of background on each side of a label or caption

_font = functools.cache(ImageFont.load_default)  # Pillow's bundled font: no font files needed


def to_uint8(images: np.ndarray) -> np.ndarray:
  """float [-1, 1] (..., H, W, 3) -> uint8 [0, 255]."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def upscale_factor(size: int, min_cell: int) -> int:
  """ceil(min_cell / size), at least 1: the factor that makes a ``size`` cell >= ``min_cell``."""
  return max(1, -(-min_cell // size))


def _text_strip(texts: Sequence[str], centers: Sequence[float], height: int,
                width: int) -> np.ndarray:
  """uint8 (height, width, 3) grey with texts[i] left-aligned, vertically centred on centers[i]."""
  strip = Image.new("RGB", (width, height), (BACKGROUND,) * 3)
  draw = ImageDraw.Draw(strip)
  for text, center in zip(texts, centers):
    _, top, _, bottom = _font().getbbox(text)
    draw.text((TEXT_PAD, round(center - (top + bottom) / 2)), text, fill=TEXT_COLOR, font=_font())
  return np.asarray(strip)


def make_grid(images: np.ndarray, rows: int, padding: int = 2, *, min_cell: int = 64,
              row_labels: Sequence[str] | None = None, caption: str | None = None) -> np.ndarray:
  """images float [-1, 1] (rows * cols, H, W, 3) -> uint8 (H', W', 3) grid image, row-major.

  Each image is upscaled by nearest neighbour by ``f = upscale_factor(max(H, W), min_cell)``
  (``min_cell`` 0 or 1: never) to a cell of ``cell_h, cell_w = H * f, W * f``. Cells are
  separated and surrounded by ``padding`` (unscaled) pixels of mid-grey (128). ``row_labels``
  (one per row) add a left margin ``margin_w`` wide (the widest label plus ``2 * TEXT_PAD``),
  each label vertically centred on its row; ``caption`` adds a strip ``caption_h`` high on top
  (and grey on the right if the caption is wider than the grid). Both are 0 when absent.
  Cell (r, c) starts at::

    top  = caption_h + padding + r * (cell_h + padding)
    left = margin_w  + padding + c * (cell_w + padding)
  """
  n, h, w, c = images.shape
  if rows < 1 or n < rows or n % rows:
    raise ValueError(f"{n} images do not fill {rows} rows")
  if row_labels is not None and len(row_labels) != rows:
    raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
  cols = n // rows
  f = upscale_factor(max(h, w), min_cell)
  h, w = h * f, w * f
  grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), BACKGROUND,
                 np.uint8)
  for i, image in enumerate(to_uint8(images)):
    r, col = divmod(i, cols)
    top, left = padding + r * (h + padding), padding + col * (w + padding)
    grid[top:top + h, left:left + w] = image.repeat(f, axis=0).repeat(f, axis=1)
  if row_labels is not None:
    margin_w = max(_font().getbbox(label)[2] for label in row_labels) + 2 * TEXT_PAD
    centers = [padding + r * (h + padding) + h / 2 for r in range(rows)]
    grid = np.concatenate([_text_strip(row_labels, centers, grid.shape[0], margin_w), grid], 1)
  if caption is not None:
    _, top, right, bottom = _font().getbbox(caption)
    width, caption_h = max(grid.shape[1], right + 2 * TEXT_PAD), bottom - top + 2 * TEXT_PAD
    grid = np.pad(grid, ((0, 0), (0, width - grid.shape[1]), (0, 0)), constant_values=BACKGROUND)
    grid = np.concatenate([_text_strip([caption], [caption_h / 2], caption_h, width), grid], 0)
  return grid


def save_png(path: str | epath.Path, image: np.ndarray) -> None:
  """Writes uint8 (H, W, 3) as PNG to a local or remote (gs://) path, never half-written."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  atomic_write(path, buffer.getvalue())  # a resumed run may redraw the grid of a step
