"""Image decoding and preprocessing in numpy/PIL, shared by every data source.

BigGAN preprocessing of one image (``preprocess``):
  decode -> apply the EXIF orientation -> RGB (see ``to_rgb``) -> center crop
  to a square on the long edge -> resize to the training resolution with
  ``RESIZE_FILTER`` -> uint8 (R, R, 3).
Random flips happen in the pipeline, and scaling to [-1, 1] in the train step.

ProGAN's lower resolutions come from ``box_downsample``: means over 2^k x 2^k
blocks of the full-resolution image, computed in float and rounded once,
exactly as repeated 2x2 box filtering in float (the official dataset_tool).
"""

import io
import re

import numpy as np
from PIL import Image, ImageOps

# PIL's bilinear filter widens its support by the scale factor when shrinking,
# i.e. it is antialiased (BigGAN-PyTorch prepares ImageNet with PIL bilinear).
RESIZE_FILTER = "bilinear"
RESIZE_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                  "lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}
# Transparent pixels are composited onto white; their stored colour is often junk.
ALPHA_BACKGROUND = (255, 255, 255)


class UnreadableImageError(ValueError):
  """The bytes are not a complete image PIL can decode (truncated, corrupt, not an image)."""


def decode(data: bytes) -> Image.Image:
  """Encoded bytes -> a fully loaded PIL image; raises UnreadableImageError."""
  try:
    image = Image.open(io.BytesIO(data))
    image.load()  # Decoding happens here: truncated files fail now, not later.
  except Exception as e:  # PIL plugins raise OSError, SyntaxError, EOFError, struct.error...
    message = re.sub(r" ?<_io.BytesIO object at 0x[0-9a-f]+>", "", str(e))
    raise UnreadableImageError(f"{type(e).__name__}: {message}") from e
  return image


def to_rgb(image: Image.Image) -> tuple[np.ndarray, list[str]]:
  """Applies the EXIF orientation and converts any PIL mode to uint8 (H, W, 3).

  Returns the array and notes on what was changed ('exif_rotated', 'from_L',
  'alpha_composited', ...), which ``gan.data.prepare`` counts in its summary.
  """
  notes = []
  try:
    orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation tag
    if orientation not in (0, 1):
      image = ImageOps.exif_transpose(image)
      notes.append("exif_rotated")
  except Exception:  # A corrupt EXIF block: keep the pixels as stored.
    notes.append("exif_unreadable")
  mode = image.mode
  if mode != "RGB":
    notes.append(f"from_{mode}")
  if mode == "P":  # Palette: keep transparency if the palette has any.
    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
  elif mode.startswith("I") or mode == "F":  # 16-bit, 32-bit int or float grayscale
    values = np.asarray(image, np.float64)
    # 16-bit files decode as I;16 (or I from some PNGs); float images in [0, 1] are common.
    if mode.startswith("I;16") or (mode == "I" and values.max() > 255):
      values = values / 257
    elif mode == "F" and values.max() <= 1.0:
      values = values * 255
    image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
  if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
    background = Image.new("RGB", image.size, ALPHA_BACKGROUND)
    background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
    image = background
    notes.append("alpha_composited")
  array = np.asarray(image.convert("RGB"), dtype=np.uint8)  # L, 1, CMYK, YCbCr, ...
  return array, notes


def center_crop_square(image: np.ndarray) -> np.ndarray:
  """(H, W, C) -> (S, S, C) with S = min(H, W), the middle of the long edge."""
  height, width = image.shape[:2]
  side = min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  return image[top:top + side, left:left + side]


def resize_square(image: np.ndarray, resolution: int, resize_filter: str = RESIZE_FILTER
                  ) -> np.ndarray:
  """uint8 (S, S, 3) -> uint8 (resolution, resolution, 3)."""
  if image.shape[0] == resolution and image.shape[1] == resolution:
    return image
  if resize_filter not in RESIZE_FILTERS:
    raise ValueError(f"resize filter {resize_filter!r}; choose one of {sorted(RESIZE_FILTERS)}.")
  resized = Image.fromarray(image).resize((resolution, resolution), RESIZE_FILTERS[resize_filter])
  return np.asarray(resized, dtype=np.uint8)


def preprocess(data: bytes, resolution: int, resize_filter: str = RESIZE_FILTER
               ) -> tuple[np.ndarray, list[str]]:
  """Encoded image bytes -> uint8 (resolution, resolution, 3) and ``to_rgb`` notes."""
  rgb, notes = to_rgb(decode(data))
  return resize_square(center_crop_square(rgb), resolution, resize_filter), notes


def box_downsample(images: np.ndarray, factor: int) -> np.ndarray:
  """uint8 (..., H, W, C) -> uint8 (..., H/factor, W/factor, C): block means, rounded."""
  if factor == 1:
    return images
  *lead, height, width, channels = images.shape
  if height % factor or width % factor:
    raise ValueError(f"{height}x{width} images do not divide into {factor}x{factor} blocks.")
  blocks = images.reshape(*lead, height // factor, factor, width // factor, factor, channels)
  means = blocks.mean(axis=(-4, -2), dtype=np.float64)
  return np.clip(np.rint(means), 0, 255).astype(np.uint8)
