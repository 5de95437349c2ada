"""shapes10: a procedural, deterministic, class-labelled image dataset.

Why it exists: the project's default dataset must work on a fresh machine with
no download, and be simple enough that a small class-conditional BigGAN learns
it on 2 CPU cores in a few minutes at 32x32. Any resolution >= 16 works (power
of two or not).

Each image is one foreground shape of its class, in a random saturated colour,
on a dark background with a soft vertical gradient. Shape size (40%-80% of the
image width), position (always fully inside the image) and a few per-class
details (small rotation, ring thickness, arm width, ...) are random.
Foreground/background contrast is guaranteed: every background pixel has
Rec.709 luminance <= 0.28 and every foreground colour has luminance >= 0.55
(values in [0, 1]). Edges are anti-aliased by rendering at 4x supersampling
(2x above 64 px) and box-downsampling.

Classes (label: name):
  0 circle, 1 square, 2 triangle, 3 ring, 4 cross, 5 diamond,
  6 horizontal_stripes, 7 vertical_stripes, 8 checkerboard, 9 two_dots.

Determinism: example i of the infinite stream for a given seed depends only on
(seed, i, resolution). Its random parameters come from
np.random.default_rng([seed, i]), so generate(100, r, s)[k] == generate(10, r, s)[k]
for k < 10, and generate_range(a, b, r, s) equals those examples of generate().
Labels are not random: the label of example i is i % NUM_CLASSES, so every
block of 10 consecutive examples holds one of each class.
"""

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle", "ring", "cross", "diamond",
               "horizontal_stripes", "vertical_stripes", "checkerboard", "two_dots")
NUM_CLASSES = len(CLASS_NAMES)

_NUM_UNIFORMS = 11        # uniforms drawn per example (fixed: stream layout)
_MAX_ROTATION = {1: 10.0, 2: 15.0, 4: 10.0}   # degrees, per rotatable class
_BG_MAX_VALUE = 0.28      # background HSV value cap (luminance <= value)
_FG_MIN_LUMA = 0.55       # foreground colours are lifted to at least this
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
_CHUNK_SAMPLES = 1 << 22  # supersampled pixels per rendering chunk (memory)


def _hsv_to_rgb(h, s, v):
    """Vectorised HSV -> RGB; h, s, v: [n] in [0, 1]; returns [n, 3]."""
    k = (np.array([5.0, 3.0, 1.0]) + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _draw_params(start, stop, seed):
    """One row of uniforms per example, from default_rng([seed, i]); [n, K]."""
    return np.stack([np.random.default_rng([seed, i]).random(_NUM_UNIFORMS)
                     for i in range(start, stop)]).reshape(-1, _NUM_UNIFORMS)


def _colours(u, resolution):
    """Foreground RGB [n, 3] and background gradient [n, resolution, 1, 3], floats in [0, 1]."""
    fg = _hsv_to_rgb(u[:, 5], 0.75 + 0.25 * u[:, 6], np.ones(len(u)))
    luma = fg @ _LUMA
    lift = np.maximum(0.0, (_FG_MIN_LUMA - luma) / (1.0 - luma))  # mix toward white
    fg = fg + (1.0 - fg) * lift[:, None]
    hue, sat = u[:, 7], 0.3 + 0.5 * u[:, 8]
    top = _hsv_to_rgb(hue, sat, 0.06 + (_BG_MAX_VALUE - 0.06) * u[:, 9])
    bottom = _hsv_to_rgb((hue + 0.1) % 1.0, sat, 0.06 + (_BG_MAX_VALUE - 0.06) * u[:, 10])
    t = np.linspace(0.0, 1.0, resolution)[None, :, None, None]
    bg = top[:, None, None, :] * (1.0 - t) + bottom[:, None, None, :] * t
    return fg.astype(np.float32), bg.astype(np.float32)


def _shape_mask(label, u, v, extra):
    """Inside test in local shape coordinates (shape spans [-1, 1]^2).

    u, v: broadcastable float arrays [b, R|1, R|1]; extra: [b, 1, 1] class parameter in [0, 1).
    Returns a bool mask [b, R, R].
    """
    au, av = np.abs(u), np.abs(v)
    box = np.maximum(au, av) <= 1.0
    if label == 0:    # circle
        return u * u + v * v <= 1.0
    if label == 1:    # square
        return box
    if label == 2:    # triangle, apex up (image y points down)
        return (v <= 1.0) & (2.0 * au <= v + 1.0)
    if label == 3:    # ring, inner radius 0.45..0.65
        r2 = u * u + v * v
        inner = 0.45 + 0.2 * extra
        return (r2 <= 1.0) & (r2 >= inner * inner)
    if label == 4:    # plus-shaped cross, half arm width 0.25..0.38
        w = 0.25 + 0.13 * extra
        return box & ((au <= w) | (av <= w))
    if label == 5:    # diamond (rhombus), width 65%..100% of height
        return au / (0.65 + 0.35 * extra) + av <= 1.0
    if label in (6, 7):  # 5 bands, 3 of them filled (outer bands filled)
        coord = v if label == 6 else u
        return box & (np.floor((coord + 1.0) * 2.5) % 2 == 0)
    if label == 8:    # 4x4 checkerboard
        return box & ((np.floor((u + 1.0) * 2.0) + np.floor((v + 1.0) * 2.0)) % 2 == 0)
    if label == 9:    # two dots, radius 0.45, centres 0.55 from the middle along a random axis
        phi = np.pi * extra
        du, dv = 0.55 * np.cos(phi), 0.55 * np.sin(phi)
        d1 = (u - du) ** 2 + (v - dv) ** 2
        d2 = (u + du) ** 2 + (v + dv) ** 2
        return np.minimum(d1, d2) <= 0.45 ** 2
    raise ValueError(f"unknown label {label}")


def _col(x):
    """Per-example vector [n] -> float32 [n, 1, 1] for broadcasting over pixels."""
    return np.asarray(x, np.float32)[:, None, None]


def _render_coverage(label, u, resolution):
    """Anti-aliased foreground coverage in [0, 1], [n, resolution, resolution] float32."""
    ss = 4 if resolution <= 64 else 2
    big = resolution * ss
    grid = (np.arange(big, dtype=np.float32) + 0.5) / big * 2.0 - 1.0  # sample centres in [-1, 1]
    # Half-extent of the bounding box (fraction of image half-width), rotation, centre.
    half = 0.4 + 0.4 * u[:, 0]
    theta = np.deg2rad(_MAX_ROTATION.get(label, 0.0) * (2.0 * u[:, 3] - 1.0))
    cos, sin = np.cos(theta), np.sin(theta)
    # A rotated [-scale, scale]^2 square fits the box; two dots lie within radius `scale`.
    scale = half if label == 9 else half / (np.abs(cos) + np.abs(sin))
    dx = grid[None, None, :] - _col((2.0 * u[:, 1] - 1.0) * (1.0 - half))  # [n, 1, R]
    dy = grid[None, :, None] - _col((2.0 * u[:, 2] - 1.0) * (1.0 - half))  # [n, R, 1]
    if label in _MAX_ROTATION:
        lu = (dx * _col(cos) + dy * _col(sin)) / _col(scale)
        lv = (dy * _col(cos) - dx * _col(sin)) / _col(scale)
    else:  # axis-aligned: keep u, v separable so the mask broadcasts cheaply
        lu, lv = dx / _col(scale), dy / _col(scale)
    mask = np.broadcast_to(_shape_mask(label, lu, lv, _col(u[:, 4])), (len(u), big, big))
    blocks = mask.reshape(len(u), resolution, ss, resolution, ss)
    return blocks.sum(axis=(2, 4), dtype=np.float32) / np.float32(ss * ss)


def generate_range(start: int, stop: int, resolution: int, seed: int = 0):
    """Examples start..stop-1 of the deterministic stream for `seed`.

    Returns (images uint8 [stop - start, resolution, resolution, 3],
             labels int32 [stop - start]), with labels[j] = (start + j) % NUM_CLASSES.
    """
    if not 0 <= start <= stop:
        raise ValueError(f"need 0 <= start <= stop, got {start}, {stop}")
    if resolution < 16:
        raise ValueError(f"resolution must be >= 16, got {resolution}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    n = stop - start
    labels = (np.arange(start, stop) % NUM_CLASSES).astype(np.int32)
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    if n == 0:
        return images, labels
    u = _draw_params(start, stop, seed)
    step = max(1, _CHUNK_SAMPLES // (resolution * resolution * 16))  # bounds memory use
    for label in range(NUM_CLASSES):
        class_idx = np.nonzero(labels == label)[0]
        for a in range(0, len(class_idx), step):
            idx = class_idx[a:a + step]
            fg, bg = _colours(u[idx], resolution)
            alpha = _render_coverage(label, u[idx], resolution)[..., None]
            rgb = bg * (1.0 - alpha) + fg[:, None, None, :] * alpha
            images[idx] = np.round(rgb * 255.0).astype(np.uint8)
    return images, labels


def generate(num_examples: int, resolution: int, seed: int = 0):
    """The first num_examples examples of the stream for `seed`.

    Returns (images uint8 [num_examples, resolution, resolution, 3],
             labels int32 [num_examples]); labels[i] = i % NUM_CLASSES.
    """
    return generate_range(0, num_examples, resolution, seed)
