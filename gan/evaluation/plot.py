"""A small line plot drawn with PIL: the truncation trade-off (BigGAN, figure 2 style).

One curve of (x, y) points, each labelled with its truncation threshold, with
axes, ticks and titles. PIL is already a dependency; a plotting library
would be one more for a single figure.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_SIZE, _MARGIN = (640, 480), (70, 30, 30, 60)  # left, top, right, bottom


def _ticks(lo: float, hi: float, count: int = 5) -> np.ndarray:
  if hi <= lo:
    lo, hi = lo - 0.5, hi + 0.5
  raw = (hi - lo) / count
  step = 10 ** np.floor(np.log10(raw))
  step *= min((m for m in (1, 2, 5, 10) if m * step >= raw), default=10)
  return np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)


def trade_off(points: list[tuple[float, float, str]], x_label: str, y_label: str,
              title: str) -> Image.Image:
  """An RGB image of the curve through ``points`` (x, y, label), in the given order."""
  image = Image.new("RGB", _SIZE, "white")
  draw = ImageDraw.Draw(image)
  font = ImageFont.load_default()
  left, top, right, bottom = _MARGIN
  width, height = _SIZE[0] - left - right, _SIZE[1] - top - bottom
  xs = np.array([p[0] for p in points], float)
  ys = np.array([p[1] for p in points], float)
  pad_x = (xs.max() - xs.min()) * 0.08 or 1.0
  pad_y = (ys.max() - ys.min()) * 0.08 or 1.0
  x0, x1, y0, y1 = xs.min() - pad_x, xs.max() + pad_x, ys.min() - pad_y, ys.max() + pad_y

  def to_pixel(x, y):
    return (left + (x - x0) / (x1 - x0) * width, top + (1 - (y - y0) / (y1 - y0)) * height)

  draw.rectangle([left, top, left + width, top + height], outline="black")
  for tick in _ticks(x0, x1):
    px, _ = to_pixel(tick, y0)
    draw.line([px, top + height, px, top + height + 4], fill="black")
    draw.text((px - 12, top + height + 6), f"{tick:g}", fill="black", font=font)
  for tick in _ticks(y0, y1):
    _, py = to_pixel(x0, tick)
    draw.line([left - 4, py, left, py], fill="black")
    draw.text((4, py - 6), f"{tick:g}", fill="black", font=font)
  pixels = [to_pixel(x, y) for x, y in zip(xs, ys)]
  if len(pixels) > 1:
    draw.line(pixels, fill=(31, 119, 180), width=2)
  for (px, py), (_, _, label) in zip(pixels, points):
    draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=(31, 119, 180))
    draw.text((px + 6, py - 14), label, fill="black", font=font)
  draw.text((left + width / 2 - 4 * len(x_label), _SIZE[1] - 22), x_label, fill="black",
            font=font)
  draw.text((4, 8), y_label, fill="black", font=font)
  draw.text((left + width / 2 - 3 * len(title), 8), title, fill="black", font=font)
  return image
