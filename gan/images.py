"""Sample grids as PNG files."""

import io

import numpy as np
from etils import epath
from PIL import Image

from gan.fileio import atomic_write


def to_uint8(images: np.ndarray) -> np.ndarray:
  """float [-1, 1] (..., H, W, 3) -> uint8 [0, 255]."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, rows: int, padding: int = 2) -> np.ndarray:
  """images float [-1, 1] (rows * cols, H, W, 3) -> uint8 grid image, row-major.

  Rows are separated by ``padding`` pixels of mid-grey.
  """
  n, h, w, c = images.shape
  if n % rows:
    raise ValueError(f"{n} images do not fill {rows} rows")
  cols = n // rows
  grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), 128,
                 np.uint8)
  for i, image in enumerate(to_uint8(images)):
    r, col = divmod(i, cols)
    top, left = padding + r * (h + padding), padding + col * (w + padding)
    grid[top:top + h, left:left + w] = image
  return grid


def save_png(path: str | epath.Path, image: np.ndarray) -> None:
  """Writes uint8 (H, W, 3) as PNG to a local or remote (gs://) path, never half-written."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  atomic_write(path, buffer.getvalue())  # a resumed run may redraw the grid of a step
