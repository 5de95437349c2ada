"""gan.data.prepare: a folder of images -> a TFDS dataset read back with TFDS.

Every test writes its own tiny images with PIL; expected pixels and labels
come from how those images were drawn, not from the code under test.
"""

import json
import os
import signal
import subprocess

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from conftest import PYTHON, REPO, subprocess_env
from gan.data import prepare as prep
from gan.data import prepare_out

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def save(image: Image.Image, path, fmt=None, **options):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path, fmt, **options)
  return path


def bands(width, height, colors, vertical=True):
  """Equal bands of ``colors``, left to right (vertical=True) or top to bottom."""
  array = np.zeros((height, width, 3), np.uint8)
  n = len(colors)
  for i, color in enumerate(colors):
    if vertical:
      array[:, i * width // n:(i + 1) * width // n] = color
    else:
      array[i * height // n:(i + 1) * height // n] = color
  return Image.fromarray(array)


def read_back(out):
  builder = tfds.builder_from_directory(str(out))
  source = builder.as_data_source("train")
  return builder, [source[i] for i in range(len(source))]


def run_main(capsys, *argv):
  """-> (exit code, stdout, stderr) of prepare.main."""
  try:
    code = prep.main([str(a) for a in argv])
  except SystemExit as e:
    code = e.code
  out, err = capsys.readouterr()
  return code, out, err


def test_mixed_sizes_become_squares_with_folder_labels(tmp_path):
  src = tmp_path / "src"
  # Classes created out of order; labels follow the sorted names: bird 0, cat 1, dog 2.
  layout = {"dog": (BLUE, [(40, 20), (20, 40)]),
            "bird": (RED, [(17, 33), (8, 8)]),
            "cat": (GREEN, [(100, 60), (12, 50)])}
  for cls, (color, sizes) in layout.items():
    for i, size in enumerate(sizes):
      save(Image.new("RGB", size, color), src / cls / ("sub" if i else "") / f"{i}.png")
  save(Image.new("RGB", (9, 9), RED), src / ".hidden" / "x.png")  # ignored
  (src / "cat" / "notes.txt").write_text("not an image")
  expected = [(RED, 0), (RED, 0), (GREEN, 1), (GREEN, 1), (BLUE, 2), (BLUE, 2)]

  summary = prep.prepare(src, tmp_path / "out", resolution=16, num_workers=1,
                         examples_per_shard=4)
  builder, examples = read_back(tmp_path / "out")
  assert builder.info.features["label"].names == ["bird", "cat", "dog"]
  assert [e["label"] for e in examples] == [label for _, label in expected]
  for example, (color, _) in zip(examples, expected):
    assert example["image"].shape == (16, 16, 3) and example["image"].dtype == np.uint8
    np.testing.assert_allclose(example["image"], np.broadcast_to(color, (16, 16, 3)), atol=1)
  assert summary["counts_per_class"] == {"bird": 2, "cat": 2, "dog": 2}
  assert summary["labels"] == "folders" and summary["num_classes"] == 3
  assert summary["num_written"] == 6 and summary["num_skipped"] == 0
  assert summary["upscaled"] == 2  # 8x8 and 12x50: short side < 16
  assert summary["ignored_non_image_files"] == {"count": 1,
                                                "sample": [os.path.join("cat", "notes.txt")]}
  assert "--config.data.num_classes=3" in summary["read_with"]
  on_disk = json.loads((tmp_path / "out" / prep.SUMMARY_FILE).read_text())
  assert on_disk["counts_per_class"] == summary["counts_per_class"]
  assert on_disk["source"] == str(src) and on_disk["dataset_name"] == "out"

  # A thread pool gives the same examples in the same order.
  prep.prepare(src, tmp_path / "out2", resolution=16, num_workers=2)
  _, parallel = read_back(tmp_path / "out2")
  for a, b in zip(examples, parallel, strict=True):
    assert a["label"] == b["label"] and np.array_equal(a["image"], b["image"])


@pytest.mark.parametrize("vertical", [True, False])
def test_center_crop_keeps_the_middle_of_the_long_edge(tmp_path, vertical):
  # 30x10 (or 10x30) in red | green | blue bands: the center square is the green band.
  size = (30, 10) if vertical else (10, 30)
  save(bands(*size, [RED, GREEN, BLUE], vertical), tmp_path / "src" / "a.png")
  prep.prepare(tmp_path / "src", tmp_path / "out", resolution=10, num_workers=1)
  _, [example] = read_back(tmp_path / "out")
  assert np.array_equal(example["image"], np.broadcast_to(GREEN, (10, 10, 3)))


def test_image_modes_become_rgb(tmp_path):
  src = tmp_path / "src"
  save(Image.new("L", (8, 8), 100), src / "a_gray.png")
  palette = Image.new("P", (8, 8), 1)
  palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
  save(palette, src / "b_palette.png")
  rgba = np.zeros((8, 8, 4), np.uint8)  # left half fully transparent black
  rgba[:, 4:] = (255, 0, 0, 255)  # right half opaque red
  save(Image.fromarray(rgba, "RGBA"), src / "c_rgba.png")
  save(Image.new("CMYK", (8, 8), (0, 128, 255, 0)), src / "d_cmyk.jpg", quality=95)
  save(Image.fromarray(np.full((8, 8), 200 * 257, np.uint16)), src / "e_gray16.png")

  summary = prep.prepare(src, tmp_path / "out", resolution=8, num_workers=1)
  _, [gray, pal, rgba_out, cmyk, gray16] = read_back(tmp_path / "out")
  assert np.array_equal(gray["image"], np.full((8, 8, 3), 100, np.uint8))
  assert np.array_equal(pal["image"], np.broadcast_to((10, 20, 30), (8, 8, 3)))
  assert np.array_equal(rgba_out["image"][:, :4], np.broadcast_to(WHITE, (8, 4, 3)))
  assert np.array_equal(rgba_out["image"][:, 4:], np.broadcast_to(RED, (8, 4, 3)))
  # CMYK (0, 50%, 100%, 0) is orange (255, 127, 0); JPEG is lossy.
  np.testing.assert_allclose(cmyk["image"].astype(int), np.broadcast_to((255, 127, 0), (8, 8, 3)),
                             atol=6)
  assert np.array_equal(gray16["image"], np.full((8, 8, 3), 200, np.uint8))
  assert summary["converted"]["from_L"] == 1 and summary["converted"]["from_P"] == 1
  assert summary["converted"]["from_RGBA"] == 1 and summary["converted"]["alpha_composited"] == 1
  assert summary["converted"]["from_CMYK"] == 1 and summary["converted"]["from_I;16"] == 1
  assert summary["labels"] == "none" and summary["counts_per_class"] == {prep.UNLABELED: 5}


def test_exif_orientation_is_applied(tmp_path):
  # 64x32, red left half, blue right half; shown upright it is 32x64 (after the
  # rotation), and its center square is half red, half blue, top to bottom.
  image = bands(64, 32, [RED, BLUE])
  exif = Image.Exif()
  exif[0x0112] = 6  # rotate 90 degrees clockwise to display: the left edge goes to the top
  save(image, tmp_path / "src" / "a_cw.jpg", exif=exif, quality=95)
  exif[0x0112] = 8  # counter-clockwise: the left edge goes to the bottom
  save(image, tmp_path / "src" / "b_ccw.png", exif=exif)

  summary = prep.prepare(tmp_path / "src", tmp_path / "out", resolution=16, num_workers=1)
  _, [cw, ccw] = read_back(tmp_path / "out")
  for example, (top, bottom) in [(cw, (RED, BLUE)), (ccw, (BLUE, RED))]:
    pixels = example["image"].astype(int)
    np.testing.assert_allclose(pixels[:6], np.broadcast_to(top, (6, 16, 3)), atol=40)
    np.testing.assert_allclose(pixels[10:], np.broadcast_to(bottom, (6, 16, 3)), atol=40)
  assert summary["converted"]["exif_rotated"] == 2


def test_unreadable_files_are_skipped_and_listed(tmp_path, capsys):
  src = tmp_path / "src"
  noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
  save(noise, src / "good.png")
  for name in ("cut.jpg", "cut.png"):
    data = (save(noise, src / name)).read_bytes()
    (src / name).write_bytes(data[:len(data) // 2])
  (src / "empty.png").write_bytes(b"")
  (src / "text.jpg").write_text("just some text\n")
  (src / "readme.txt").write_text("not an image")
  (src / ".DS_Store").write_bytes(b"\0junk")

  code, out, err = run_main(capsys, src, tmp_path / "out", "--resolution", 8,
                            "--num_workers", 2)
  assert code == 0, err
  summary = json.loads((tmp_path / "out" / prep.SUMMARY_FILE).read_text())
  assert summary["num_written"] == 1 and summary["num_skipped"] == 4
  assert [s["path"] for s in summary["skipped"]] == ["cut.jpg", "cut.png", "empty.png",
                                                     "text.jpg"]
  assert all(s["reason"].startswith("unreadable image") for s in summary["skipped"])
  assert summary["ignored_non_image_files"]["count"] == 1
  for name in ("cut.jpg", "cut.png", "empty.png", "text.jpg", prep.SUMMARY_FILE):
    assert name in out
  _, [example] = read_back(tmp_path / "out")
  assert example["image"].shape == (8, 8, 3)


def test_nothing_readable_is_an_error(tmp_path, capsys):
  (tmp_path / "src").mkdir()
  (tmp_path / "src" / "a.png").write_bytes(b"")
  code, _, err = run_main(capsys, tmp_path / "src", tmp_path / "out", "--resolution", 8)
  assert code == 1 and err.startswith("error: ") and "a.png" in err
  assert "Traceback" not in err


def test_single_class_folder_is_refused_unless_unconditional(tmp_path, capsys):
  src = tmp_path / "src"
  for i in range(3):
    save(Image.new("RGB", (8, 8), (10 * i, 0, 0)), src / "faces" / f"{i}.png")
  for labels in ("auto", "folders"):
    code, _, err = run_main(capsys, src, tmp_path / "out", "--resolution", 8,
                            f"--labels={labels}")
    assert code == 1 and "label 0" in err and "--labels=none" in err
    assert "subfolders are the classes" in err
  assert not (tmp_path / "out").exists()

  code, out, err = run_main(capsys, src, tmp_path / "out", "--resolution", 8, "--labels=none",
                            "--encoding", "jpeg")
  assert code == 0, err
  builder, examples = read_back(tmp_path / "out")
  assert "label" not in builder.info.features and len(examples) == 3
  assert builder.info.features["image"].encoding_format == "jpeg"
  np.testing.assert_allclose(examples[2]["image"][..., 0].astype(int), 20, atol=3)
  assert "label_key=''" in out and "num_classes=1" in out


def test_loose_images_next_to_class_folders_are_refused(tmp_path, capsys):
  src = tmp_path / "src"
  for path in ("loose.png", "a/x.png", "b/y.png"):
    save(Image.new("RGB", (8, 8)), src / path)
  code, _, err = run_main(capsys, src, tmp_path / "out", "--resolution", 8)
  assert code == 1 and "loose.png" in err
  assert "--labels=folders" in err and "--labels=none" in err
  code, _, err = run_main(capsys, src, tmp_path / "out", "--resolution", 8, "--labels=folders")
  assert code == 1 and "loose.png" in err and "Move them into a class folder" in err
  # Unconditional takes everything, loose and nested.
  summary = prep.prepare(src, tmp_path / "out", resolution=8, labels="none", num_workers=1)
  assert summary["num_written"] == 3


def test_class_folder_without_images_is_refused(tmp_path):
  src = tmp_path / "src"
  save(Image.new("RGB", (8, 8)), src / "a" / "x.png")
  save(Image.new("RGB", (8, 8)), src / "c" / "y.png")
  (src / "b").mkdir()
  (src / "b" / "notes.txt").write_text("no images here")
  with pytest.raises(prep.PrepareError, match="without images.*: b"):
    prep.prepare(src, tmp_path / "out", resolution=8, num_workers=1)


def test_symlinked_class_folders_are_followed_once(tmp_path):
  src = tmp_path / "src"
  save(Image.new("RGB", (8, 8), RED), tmp_path / "elsewhere" / "x.png")
  save(Image.new("RGB", (8, 8), BLUE), src / "b" / "y.png")
  (src / "a").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
  (src / "b" / "loop").symlink_to(src, target_is_directory=True)  # a cycle
  summary = prep.prepare(src, tmp_path / "out", resolution=8, num_workers=1)
  assert summary["counts_per_class"] == {"a": 1, "b": 1}
  _, [a, b] = read_back(tmp_path / "out")
  assert (a["label"], b["label"]) == (0, 1) and tuple(a["image"][0, 0]) == RED


def test_existing_dataset_is_not_overwritten(tmp_path, capsys):
  save(Image.new("RGB", (8, 8)), tmp_path / "src" / "a.png")
  prep.prepare(tmp_path / "src", tmp_path / "out", resolution=8, num_workers=1)
  info = (tmp_path / "out" / "dataset_info.json").read_text()
  code, _, err = run_main(capsys, tmp_path / "src", tmp_path / "out", "--resolution", 8)
  assert code == 1 and "already holds a dataset" in err
  assert (tmp_path / "out" / "dataset_info.json").read_text() == info


def test_dataset_names_are_snake_case():
  assert prep.dataset_name_for("/data/My Flowers-128/") == "my_flowers_128"
  assert prep.dataset_name_for("128px") == "ds_128px"
  with pytest.raises(prep.PrepareError, match="snake_case"):
    prep.prepare("/nonexistent", "/tmp/x", resolution=8, name="Bad-Name")


def test_class_folders_with_non_utf8_names_get_text_class_names(tmp_path):
  src = os.fsencode(tmp_path / "src")
  # Folder on disk -> (color, images). Sorted folder order: " padded " < "café" (U+00E9) <
  # b"caf\xe9" (not UTF-8) < "two\nlines".
  folders = {b"caf\xe9": (RED, 1), "café".encode(): (GREEN, 2), b"two\nlines": (BLUE, 1),
             b" padded ": (WHITE, 1)}
  for folder, (color, count) in folders.items():
    for i in range(count):
      save(Image.new("RGB", (8, 8), color), os.path.join(src, folder, b"%d.png" % i), "PNG")
  # Valid text, one line each, no space at the ends: TFDS stores names one per line, stripped.
  names = [r"\x20padded\x20", "café", r"caf\xe9", r"two\nlines"]

  summary = prep.prepare(os.fsdecode(src), tmp_path / "out", resolution=8, num_workers=1)
  builder, examples = read_back(tmp_path / "out")
  assert builder.info.features["label"].names == names
  assert [e["label"] for e in examples] == [0, 1, 1, 2, 3]
  assert [tuple(e["image"][0, 0]) for e in examples] == [WHITE, GREEN, GREEN, RED, BLUE]
  on_disk = json.loads((tmp_path / "out" / prep.SUMMARY_FILE).read_text(encoding="utf-8"))
  for record in (summary, on_disk):
    assert record["class_names"] == names
    assert record["counts_per_class"] == dict(zip(names, [1, 2, 1, 1]))
    assert record["class_folders"] == [
        {"folder": folder, "class_name": name, "label": label} for label, (folder, name) in
        enumerate(zip([" padded ", "café", r"caf\xe9", "two\nlines"], names))]

  # A folder literally named caf\xe9 would get the same class name: refused, naming both.
  save(Image.new("RGB", (8, 8)), os.path.join(src, rb"caf\xe9", b"0.png"), "PNG")
  with pytest.raises(prep.PrepareError) as error:
    prep.prepare(os.fsdecode(src), tmp_path / "out2", resolution=8, num_workers=1)
  assert (r"share a class name: b'caf\\xe9' and b'caf\xe9' both become caf\xe9. Rename"
          in str(error.value))
  assert not (tmp_path / "out2").exists()


def test_non_utf8_file_names_are_reported_on_a_strict_utf8_stdout(tmp_path, capsys):
  src = os.fsencode(tmp_path / "src")
  save(Image.new("RGB", (8, 8), RED), os.path.join(src, b"good.png"), "PNG")
  save(Image.new("RGB", (8, 8), RED), os.path.join(src, b"notes\xfe.txt"), "PNG")  # ignored
  open(os.path.join(src, b"bad\xff.png"), "wb").close()  # an empty file: unreadable
  env = dict(subprocess_env(), PYTHONIOENCODING="utf-8:strict")
  run = subprocess.run([PYTHON, "-m", "gan.data.prepare", os.fsdecode(src),
                        str(tmp_path / "out"), "--resolution", "8"],
                       capture_output=True, encoding="utf-8", env=env, cwd=REPO, check=False)
  assert run.returncode == 0, run.stderr
  assert r"  bad\xff.png: unreadable image" in run.stdout
  assert r"Ignored 1 non-image files: notes\xfe.txt" in run.stdout
  summary = json.loads((tmp_path / "out" / prep.SUMMARY_FILE).read_text(encoding="utf-8"))
  assert [s["path"] for s in summary["skipped"]] == [r"bad\xff.png"]
  assert summary["ignored_non_image_files"]["sample"] == [r"notes\xfe.txt"]
  _, [example] = read_back(tmp_path / "out")
  assert tuple(example["image"][0, 0]) == RED
  assert not (tmp_path / "out" / prepare_out.MARKER).exists()

  # Errors show such names the same way.
  save(Image.new("RGB", (8, 8)), os.path.join(src, b"class", b"x.png"), "PNG")
  code, _, err = run_main(capsys, os.fsdecode(src), tmp_path / "out2", "--resolution", 8)
  assert code == 1 and r"good.png" in err and r"bad\xff.png" in err and "\\udc" not in err


FOREIGN_SHARD = "cifar10-train.array_record-00000-of-00001"


@pytest.mark.parametrize("contents, listed", [
    ({FOREIGN_SHARD: b"garbage"}, [FOREIGN_SHARD]),
    # An interrupted prepare's files next to someone else's: nothing is removed either.
    ({prepare_out.MARKER: b"", "out-train.array_record-00000-of-00002": b"half",
      "notes.txt": b"mine"}, ["notes.txt"]),
])
def test_out_dir_holding_other_files_is_refused_unchanged(tmp_path, capsys, monkeypatch,
                                                          contents, listed):
  save(Image.new("RGB", (8, 8)), tmp_path / "src" / "a.png")
  out = tmp_path / "out"
  out.mkdir()
  for name, data in contents.items():
    (out / name).write_bytes(data)
  monkeypatch.setattr(prep, "scan", lambda *args, **kwargs: pytest.fail("scanned SRC_DIR"))
  code, _, err = run_main(capsys, tmp_path / "src", out, "--resolution", 8)
  assert code == 1 and err.startswith("error: ") and "Traceback" not in err
  assert "holds files that are not a dataset being written by gan.data.prepare" in err
  assert f": {', '.join(listed)}. Choose an empty OUT_DIR, or delete those files." in err
  assert {p.name: p.read_bytes() for p in out.iterdir()} == contents


def test_out_dirs_prepare_cannot_write_are_refused(tmp_path, capsys):
  save(Image.new("RGB", (8, 8)), tmp_path / "src" / "a.png")
  (tmp_path / "a_file").write_text("x")
  not_utf8 = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"out\xff"))
  done = tmp_path / "done"  # killed after dataset_info.json, before the summary
  done.mkdir()
  (done / "dataset_info.json").write_text("{}")
  (done / prepare_out.MARKER).write_text("")
  for out, message in [(tmp_path / "a_file", "a_file is a file, not a folder"),
                       (not_utf8, r"out\xff is not valid UTF-8 text"),
                       (done, "interrupted before it wrote prepare_summary.json; choose a new "
                              "OUT_DIR or delete it.")]:
    code, _, err = run_main(capsys, tmp_path / "src", out, "--resolution", 8)
    assert code == 1 and message in err and "Traceback" not in err
  assert not os.path.exists(not_utf8) and len(list(done.iterdir())) == 2


# Runs `python -m gan.data.prepare ARGS` and SIGKILLs it right after its second shard got its
# final name: the moment an interrupted prepare leaves the most behind (final shards, temp
# shards, the marker, no dataset_info.json). Deterministic, unlike a kill timed from outside.
KILLED_AFTER_TWO_RENAMES = """
import os, runpy, signal, sys
from etils import epath
path_type, renamed = type(epath.Path("/")), []
def rename_then_die(self, target, rename=path_type.rename):
  rename(self, target)
  renamed.append(target)
  if len(renamed) == 2:
    os.kill(os.getpid(), signal.SIGKILL)
path_type.rename, sys.argv[0] = rename_then_die, "gan.data.prepare"
runpy.run_module("gan.data.prepare", run_name="__main__")
"""


def test_prepare_killed_mid_write_is_redone_by_the_same_command(tmp_path):
  src, out = tmp_path / "src", tmp_path / "out"
  for i in range(10):
    save(Image.new("RGB", (8, 8), (20 * i, 0, 0)), src / "ab"[i % 2] / f"{i}.png")
  args = [str(src), str(out), "--resolution", "8", "--examples_per_shard", "3"]

  def run(*command):
    return subprocess.run([PYTHON, *command, *args], capture_output=True, text=True,
                          env=subprocess_env(), cwd=REPO, check=False)

  killed = run("-c", KILLED_AFTER_TWO_RENAMES)
  assert killed.returncode == -signal.SIGKILL, killed.stderr
  left = sorted(p.name for p in out.iterdir())
  assert left == [".gan-prepare-incomplete", ".incomplete-out-train-00002",
                  ".incomplete-out-train-00003", "out-train.array_record-00000-of-00004",
                  "out-train.array_record-00001-of-00004"]

  rerun = run("-m", "gan.data.prepare")
  assert rerun.returncode == 0, rerun.stderr
  assert "removing the 5 files of an interrupted gan.data.prepare" in rerun.stderr
  assert "Wrote 10 of 10 images" in rerun.stdout
  assert not [p for p in out.iterdir() if p.name.startswith(".")]
  prep.prepare(src, tmp_path / "clean", resolution=8, examples_per_shard=3, num_workers=1)
  (_, resumed), (_, clean) = read_back(out), read_back(tmp_path / "clean")
  assert len(resumed) == 10
  for a, b in zip(resumed, clean, strict=True):
    assert a["label"] == b["label"] and np.array_equal(a["image"], b["image"])
