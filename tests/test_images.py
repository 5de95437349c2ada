"""Sample grids: nearest upscaling, layout, row labels and caption, to_uint8."""

import numpy as np
import pytest

from gan.images import make_grid, to_uint8, upscale_factor


def uint8_images(n, h, w, seed=0):
  """uint8 (n, h, w, 3) random images and their float [-1, 1] form that to_uint8 maps back exactly."""
  u = np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
  return u, u.astype(np.float32) / np.float32(127.5) - 1


def cell_origin(r, c, cell_h, cell_w, padding, margin_w=0, caption_h=0):
  """The documented top-left corner of cell (r, c)."""
  return caption_h + padding + r * (cell_h + padding), margin_w + padding + c * (cell_w + padding)


def check_cells(grid, u, rows, f, padding, margin_w=0, caption_h=0):
  """Every cell is u[i] repeated f times along each axis at its documented place; returns the mask of
  cell pixels in the grid."""
  cols, (h, w) = len(u) // rows, u.shape[1:3]
  mask = np.zeros(grid.shape[:2], bool)
  for i in range(len(u)):
    top, left = cell_origin(*divmod(i, cols), h * f, w * f, padding, margin_w, caption_h)
    np.testing.assert_array_equal(grid[top:top + h * f, left:left + w * f],
                                  np.repeat(np.repeat(u[i], f, 0), f, 1))
    mask[top:top + h * f, left:left + w * f] = True
  return mask


@pytest.mark.parametrize("h, w, f", [(4, 4, 16), (8, 8, 8), (32, 32, 2), (128, 128, 1), (4, 8, 8)])
@pytest.mark.parametrize("padding", [2, 0, 3])
def test_cells_are_nearest_upscaled_at_documented_places(h, w, f, padding):
  rows, cols = 2, 3
  u, x = uint8_images(rows * cols, h, w)
  grid = make_grid(x, rows, padding)  # default min_cell=64
  assert grid.dtype == np.uint8
  assert grid.shape == (rows * (h * f + padding) + padding, cols * (w * f + padding) + padding, 3)
  mask = check_cells(grid, u, rows, f, padding)
  assert (grid[~mask] == 128).all()  # padding


def test_upscale_factor():
  cases = {(4, 64): 16, (8, 64): 8, (32, 64): 2, (48, 64): 2, (63, 64): 2, (64, 64): 1,
           (128, 64): 1, (3, 64): 22, (4, 0): 1, (4, 1): 1, (4, 5): 2}
  assert {k: upscale_factor(*k) for k in cases} == cases


def test_min_cell_one_is_the_old_unscaled_layout():
  # 2 x 2 grey images with values 10 * (i + 1) + a pixel index 0..3.
  u = np.stack([np.arange(4).reshape(2, 2) + 10 * (i + 1) for i in range(4)]).astype(np.uint8)
  u = np.repeat(u[..., None], 3, axis=-1)
  x = u.astype(np.float32) / np.float32(127.5) - 1
  g = 128
  expected_2x2_pad1 = np.array([
      [g, g, g, g, g, g, g],
      [g, 10, 11, g, 20, 21, g],
      [g, 12, 13, g, 22, 23, g],
      [g, g, g, g, g, g, g],
      [g, 30, 31, g, 40, 41, g],
      [g, 32, 33, g, 42, 43, g],
      [g, g, g, g, g, g, g]], np.uint8)
  expected_1x2_pad2 = np.array([
      [g, g, g, g, g, g, g, g, g, g],
      [g, g, g, g, g, g, g, g, g, g],
      [g, g, 10, 11, g, g, 20, 21, g, g],
      [g, g, 12, 13, g, g, 22, 23, g, g],
      [g, g, g, g, g, g, g, g, g, g],
      [g, g, g, g, g, g, g, g, g, g]], np.uint8)
  for min_cell in (1, 0):
    np.testing.assert_array_equal(make_grid(x, 2, 1, min_cell=min_cell),
                                  np.repeat(expected_2x2_pad1[..., None], 3, -1))
    np.testing.assert_array_equal(make_grid(x[:2], rows=1, min_cell=min_cell),
                                  np.repeat(expected_1x2_pad2[..., None], 3, -1))


@pytest.mark.parametrize("h, f", [(4, 16), (32, 2)])
def test_row_labels_add_a_margin_with_each_label_centred_on_its_row(h, f):
  rows, cols, padding = 3, 2, 2
  u, x = uint8_images(rows * cols, h, h, seed=1)
  plain = make_grid(x, rows)
  labels = ["class 0", "class 17", "Ag"]
  grid = make_grid(x, rows, row_labels=labels)
  margin_w = grid.shape[1] - plain.shape[1]
  assert margin_w > 0 and grid.shape[0] == plain.shape[0]
  np.testing.assert_array_equal(grid[:, margin_w:], plain)
  check_cells(grid, u, rows, f, padding, margin_w=margin_w)

  margin = grid[:, :margin_w]
  ink = (margin != 128).any(-1)  # (H', margin_w)
  band = np.zeros(len(margin), bool)
  cell = h * f
  for r in range(rows):
    top, _ = cell_origin(r, 0, cell, cell, padding)
    band[top:top + cell] = True
    ink_rows = np.flatnonzero(ink[top:top + cell].any(1))
    assert ink_rows.size, f"no text drawn for row {r}"
    assert abs((ink_rows[0] + ink_rows[-1]) / 2 - (cell - 1) / 2) <= 1.5  # vertically centred
    assert margin[top:top + cell].max() >= 200  # light text on grey
  assert not ink[~band].any()  # nothing in the padding between the rows' bands
  assert not ink[:, -2:].any()  # a few pixels of room right of the widest label

  wider = make_grid(x, rows, row_labels=["class 0", "a much longer label", "Ag"])
  assert wider.shape[1] > grid.shape[1]


def test_caption_adds_a_strip_on_top():
  rows, padding, f = 2, 2, 8
  u, x = uint8_images(4, 8, 8, seed=2)
  plain = make_grid(x, rows)
  grid = make_grid(x, rows, caption="16x16 fade alpha=0.50")
  caption_h = grid.shape[0] - plain.shape[0]
  assert caption_h > 0 and grid.shape[1] == plain.shape[1]
  np.testing.assert_array_equal(grid[caption_h:], plain)
  check_cells(grid, u, rows, f, padding, caption_h=caption_h)
  strip = grid[:caption_h]
  assert (strip != 128).any() and strip.max() >= 200
  assert (strip[0] == 128).all() and (strip[-1] == 128).all()  # text does not touch the grid


def test_caption_wider_than_the_grid_widens_the_image():
  u, x = uint8_images(2, 2, 2, seed=3)
  plain = make_grid(x, 1, min_cell=1)  # 6 x 10
  grid = make_grid(x, 1, min_cell=1, caption="a caption far wider than ten pixels")
  caption_h = grid.shape[0] - plain.shape[0]
  assert caption_h > 0 and grid.shape[1] > plain.shape[1]
  np.testing.assert_array_equal(grid[caption_h:, :plain.shape[1]], plain)
  assert (grid[caption_h:, plain.shape[1]:] == 128).all()
  assert (grid[:caption_h, plain.shape[1]:] != 128).any()  # the caption is not clipped


def test_labels_and_caption_together_follow_the_layout_formula():
  rows, padding, f = 2, 3, 16
  u, x = uint8_images(6, 4, 4, seed=4)
  plain = make_grid(x, rows, padding)
  labels = ["7", "42"]
  margin_w = make_grid(x, rows, padding, row_labels=labels).shape[1] - plain.shape[1]
  caption_h = make_grid(x, rows, padding, caption="8x8").shape[0] - plain.shape[0]
  grid = make_grid(x, rows, padding, row_labels=labels, caption="8x8")
  assert grid.shape == (plain.shape[0] + caption_h, plain.shape[1] + margin_w, 3)
  check_cells(grid, u, rows, f, padding, margin_w=margin_w, caption_h=caption_h)
  np.testing.assert_array_equal(grid, make_grid(x, rows, padding, row_labels=labels,
                                                caption="8x8"))  # deterministic


def test_to_uint8_rounds_and_clips():
  x = np.array([-1, 1, 0, -0.5, 0.5, -3, 7, -1.001, 1.001, 1 / 127.5 - 1], np.float32)
  # (x + 1) * 127.5 = 0, 255, 127.5, 63.75, 191.25, clipped, clipped, clipped, clipped, 1
  expected = np.array([0, 255, 128, 64, 191, 0, 255, 0, 255, 1], np.uint8)
  out = to_uint8(x)
  assert out.dtype == np.uint8
  np.testing.assert_array_equal(out, expected)
  assert to_uint8(np.zeros((2, 3, 4, 3))).shape == (2, 3, 4, 3)


def test_errors():
  _, x = uint8_images(5, 4, 4)
  for n, rows in [(5, 2), (1, 2), (4, 0)]:
    with pytest.raises(ValueError, match="do not fill"):
      make_grid(x[:n], rows)
  with pytest.raises(ValueError, match="row labels"):
    make_grid(x[:4], 2, row_labels=["a"])
  with pytest.raises(ValueError, match="row labels"):
    make_grid(x[:4], 2, row_labels=["a", "b", "c"])
