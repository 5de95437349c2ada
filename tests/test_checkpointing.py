"""Checkpointer guarantees: atomicity, save policy, retention, fallback, refusal, resharding, failures."""

import json
import logging
import os
import pickle
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import PYTHON, REPO, subprocess_env
from gan.train import checkpointing
from gan.train.checkpointing import (Checkpointer, CheckpointMismatchError,
                                     NoRestorableCheckpointError)


def small_state(offset: int = 0, w_shape=(2, 3)) -> dict:
  return {"params": {"w": jnp.arange(np.prod(w_shape), dtype=jnp.float32).reshape(w_shape) + offset,
                     "b": jnp.full((3,), offset, jnp.bfloat16)},
          "step": jnp.asarray(offset, jnp.int32)}


def assert_bitwise_equal(got, want) -> None:
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    assert g.dtype == w.dtype
    np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def saved_steps(workdir) -> set[int]:
  return {int(name) for name in os.listdir(workdir / "checkpoints") if name.isdigit()}


def save_steps(workdir, steps, **kwargs) -> None:
  checkpointer = Checkpointer(str(workdir), keep=5, **kwargs)
  for step in steps:
    assert checkpointer.save(step, small_state(step))
  assert checkpointer.close()


def test_async_save_round_trips_with_the_original_api(tmp_path):
  checkpointer = Checkpointer(str(tmp_path), keep=2)
  assert checkpointer.manager._options.enable_async_checkpointing  # pylint: disable=protected-access
  assert checkpointer.latest_step() is None
  assert checkpointer.restore_latest(small_state()) == (None, None)
  assert checkpointer.save(4, small_state(4))
  checkpointer.close()
  reopened = Checkpointer(str(tmp_path), keep=2)
  assert reopened.latest_step() == 4
  assert_bitwise_equal(reopened.restore(4, small_state(0)), small_state(4))


@pytest.mark.parametrize("name", ["7.orbax-checkpoint-tmp", "7.orbax-checkpoint-tmp-1712"])
def test_half_written_checkpoint_is_ignored(tmp_path, name):
  save_steps(tmp_path, [5])
  leftover = tmp_path / "checkpoints" / name / "default"
  leftover.mkdir(parents=True)
  (leftover / "_METADATA").write_text("{truncated")
  checkpointer = Checkpointer(str(tmp_path), keep=2)
  assert checkpointer.latest_step() == 5
  state, step = checkpointer.restore_latest(small_state())
  assert step == 5
  assert_bitwise_equal(state, small_state(5))


def test_should_save_every_steps_or_seconds(tmp_path, monkeypatch):
  now = [1000.0]
  monkeypatch.setattr(checkpointing.time, "monotonic", lambda: now[0])
  by_steps = Checkpointer(str(tmp_path / "a"), keep=1, every_steps=3)
  assert [s for s in range(1, 8) if by_steps.should_save(s)] == [3, 6]
  by_time = Checkpointer(str(tmp_path / "b"), keep=1, every_seconds=60)
  assert not by_time.should_save(1)
  now[0] += 61
  assert by_time.should_save(2)
  assert by_time.save(2, small_state(2))
  assert not by_time.should_save(3)  # The clock restarts at each save,
  now[0] += 61
  assert not by_time.should_save(2)  # and a saved step is never due again.
  assert by_time.should_save(4)
  by_time.close()


@pytest.mark.parametrize("mode, sign", [("min", 1), ("max", -1)])
def test_keeps_last_k_plus_best(tmp_path, mode, sign):
  checkpointer = Checkpointer(str(tmp_path), keep=2, best_metric="fid", best_mode=mode)
  for step, fid in enumerate([5, 1, 4, 3, 2.5, 2], start=1):
    assert checkpointer.save(step, small_state(step), metrics={"fid": sign * fid, "other": 0})
  checkpointer.close()
  assert saved_steps(tmp_path) == {2, 5, 6}
  reopened = Checkpointer(str(tmp_path), keep=2, best_metric="fid", best_mode=mode)
  assert reopened.best_step() == 2  # Metrics are read back from disk.
  assert reopened.save(7, small_state(7), metrics={"fid": sign * 3})
  assert reopened.save(8, small_state(8))  # No metric: kept only as one of the last K.
  reopened.close()
  assert saved_steps(tmp_path) == {2, 7, 8}


def corrupt_by_truncation(step_dir, only_data: bool = False) -> None:
  """Halves every file of the item (only ocdbt's d/ data files if ``only_data``)."""
  for root, _, files in os.walk(step_dir / "default"):
    if only_data and os.path.basename(root) != "d":
      continue
    for name in files:
      path = os.path.join(root, name)
      with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def corrupt_by_truncating_data(step_dir) -> None:
  corrupt_by_truncation(step_dir, only_data=True)


def corrupt_by_deleting_data(step_dir) -> None:
  """Deletes the ocdbt data files (small arrays live inline in the b-tree nodes under d/)."""
  for root, _, files in os.walk(step_dir / "default"):
    if os.path.basename(root) == "d":
      for name in files:
        os.remove(os.path.join(root, name))


# A failed tensorstore read may call back into orbax's already-closed event loop.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "corrupt", [corrupt_by_truncation, corrupt_by_truncating_data, corrupt_by_deleting_data])
def test_corrupt_latest_falls_back_to_previous(tmp_path, caplog, corrupt):
  save_steps(tmp_path, [1, 2, 3])
  step3 = tmp_path / "checkpoints" / "3"
  corrupt(step3)
  checkpointer = Checkpointer(str(tmp_path), keep=5)
  with caplog.at_level(logging.WARNING):
    state, step = checkpointer.restore_latest(small_state())
  assert step == 2
  assert_bitwise_equal(state, small_state(2))
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert any("step 3" in m and str(step3) in m for m in warnings), warnings
  assert checkpointer.save(3, small_state(33))  # Training reaches step 3 again: replaced.
  checkpointer.close()
  state, step = Checkpointer(str(tmp_path), keep=5).restore_latest(small_state())
  assert step == 3
  assert_bitwise_equal(state, small_state(33))


def test_no_restorable_checkpoint_lists_every_step(tmp_path):
  save_steps(tmp_path, [1, 2])
  for step in (1, 2):
    corrupt_by_truncation(tmp_path / "checkpoints" / str(step))
  with pytest.raises(NoRestorableCheckpointError, match=r"(?s)step 2 .*step 1 "):
    Checkpointer(str(tmp_path), keep=5).restore_latest(small_state())


def test_shape_mismatch_is_refused_without_fallback(tmp_path, caplog):
  save_steps(tmp_path, [1, 2])
  checkpointer = Checkpointer(str(tmp_path), keep=5)
  with caplog.at_level(logging.WARNING), pytest.raises(CheckpointMismatchError) as error:
    checkpointer.restore_latest(small_state(w_shape=(3, 3)))
  message = str(error.value)
  assert "step 2" in message
  assert "params/w: checkpoint (2, 3) vs config (3, 3)" in message
  assert "different architecture; use a new --workdir or the matching config" in message
  assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # No fallback tried.
  with pytest.raises(CheckpointMismatchError):
    checkpointer.restore(1, small_state(w_shape=(3, 3)))


def test_missing_and_extra_keys_are_refused(tmp_path):
  save_steps(tmp_path, [1])
  target = small_state()
  del target["params"]["b"]
  target["params"]["extra"] = jnp.zeros(2)
  with pytest.raises(CheckpointMismatchError) as error:
    Checkpointer(str(tmp_path), keep=5).restore_latest(target)
  assert "params/extra: missing from the checkpoint" in str(error.value)
  assert "params/b: in the checkpoint but not in the config" in str(error.value)


def test_restore_reshards_across_device_counts(tmp_path):
  worker = os.path.join(REPO, "tests", "checkpoint_worker.py")
  for mode, devices in [("save", 8), ("reshard", 4), ("check", 1)]:
    result = subprocess.run([PYTHON, worker, mode, str(tmp_path)], env=subprocess_env(devices),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{mode} on {devices} devices: OK" in result.stdout


class _WritesMarker:
  def __init__(self, marker):
    self.marker = str(marker)

  def __reduce__(self):
    return exec, (f"open({self.marker!r}, 'w').write('unpickled')",)


def test_restore_never_unpickles(tmp_path):
  sanity = tmp_path / "sanity"
  pickle.loads(pickle.dumps(_WritesMarker(sanity)))
  assert sanity.exists()  # The payload is live.
  save_steps(tmp_path, [3])
  marker = tmp_path / "marker"
  payload = pickle.dumps(_WritesMarker(marker))
  for path in ["3/evil.pkl", "3/default/evil.pkl", "3/default/_METADATA.pkl", "evil.pkl"]:
    (tmp_path / "checkpoints" / path).write_bytes(payload)
  state, step = Checkpointer(str(tmp_path), keep=5).restore_latest(small_state())
  assert step == 3
  assert_bitwise_equal(state, small_state(3))
  assert not marker.exists()


def test_failed_save_is_logged_and_training_continues(tmp_path, caplog, monkeypatch):
  checkpointer = Checkpointer(str(tmp_path), keep=5)
  assert checkpointer.save(1, small_state(1)) and checkpointer.wait()
  directory = tmp_path / "checkpoints"
  if os.geteuid() != 0:
    os.chmod(directory, 0o500)
  else:  # Root writes through chmod: simulate the full disk instead.
    def disk_full(*args, **kwargs):
      raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpointer.manager, "save", disk_full)
  with caplog.at_level(logging.ERROR):
    assert checkpointer.save(2, small_state(2)) is False
    assert checkpointer.wait()
  os.chmod(directory, 0o700)
  monkeypatch.undo()
  assert checkpointer.failed_saves == 1
  errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
  assert any("step 2" in m and str(directory) in m and "previous checkpoint 1 is intact" in m
             for m in errors), errors
  assert checkpointer.latest_step() == 1
  assert checkpointer.save(3, small_state(3))  # The next save works again.
  assert checkpointer.close()
  reopened = Checkpointer(str(tmp_path), keep=5)
  assert_bitwise_equal(reopened.restore(1, small_state()), small_state(1))
  assert reopened.restore_latest(small_state())[1] == 3


def test_failed_background_write_is_reported_at_the_next_save(tmp_path, caplog, monkeypatch):
  checkpointer = Checkpointer(str(tmp_path), keep=5)
  assert checkpointer.save(1, small_state(1)) and checkpointer.wait()

  def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(os, "rename", disk_full)  # Fails the final tmp -> step rename.
  with caplog.at_level(logging.ERROR):
    assert checkpointer.save(2, small_state(2))  # Started; fails in the background.
    while checkpointer.manager.is_saving_in_progress():  # join() would consume the error.
      time.sleep(0.01)
    monkeypatch.undo()
    assert checkpointer.save(3, small_state(3))
  assert checkpointer.failed_saves == 1
  errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
  assert any("step 2" in m and "previous checkpoint 1 is intact" in m for m in errors), errors
  assert checkpointer.close()
  assert saved_steps(tmp_path) == {1, 3}


# ---- Integrity: checksums, non-finite values, stray folders, set-aside checkpoints ----

def random_state(seed: int) -> dict:
  """A state whose large leaf is random float32: stored raw (incompressible), so a flipped
  bit in its data file decodes to other values instead of failing to decompress."""
  rng = np.random.default_rng(seed)
  return {"params": {"w": jnp.asarray(rng.standard_normal((64, 64)), jnp.float32),
                     "b": jnp.asarray(rng.standard_normal(3), jnp.bfloat16)},
          "step": jnp.asarray(seed, jnp.int32)}


def data_files(step_dir) -> list:
  """The array data files orbax wrote for a step (ocdbt's d/ folders), largest first."""
  files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
  return sorted(files, key=lambda p: -p.stat().st_size)


def flip_bit(path, position: int, bit: int = 4) -> None:
  data = bytearray(path.read_bytes())
  data[position] ^= 1 << bit
  path.write_bytes(bytes(data))


def warnings_of(caplog) -> list[str]:
  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_a_flipped_bit_in_array_data_is_detected_and_set_aside(tmp_path, caplog, fraction):
  checkpointer = Checkpointer(str(tmp_path), keep=5)
  for step in (1, 2):
    assert checkpointer.save(step, random_state(step))
  assert checkpointer.close()
  step2 = tmp_path / "checkpoints" / "2"
  data = data_files(step2)[0]
  flip_bit(data, int(data.stat().st_size * fraction))
  # The fault is real: plain orbax restores other values for w, without a word.
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), random_state(0))
  plain = ocp.CheckpointManager(tmp_path / "checkpoints",
                                item_handlers=ocp.StandardCheckpointHandler())
  silently_wrong = plain.restore(2, args=ocp.args.StandardRestore(abstract))
  plain.close()
  assert not np.array_equal(silently_wrong["params"]["w"], random_state(2)["params"]["w"])
  with caplog.at_level(logging.WARNING):
    state, step = Checkpointer(str(tmp_path), keep=5).restore_latest(random_state(0))
  assert step == 1
  assert_bitwise_equal(state, random_state(1))
  warning = next(m for m in warnings_of(caplog) if "step 2" in m)
  assert str(step2) in warning and "params/w: checksum" in warning, warning
  assert f"moved it to {tmp_path / 'checkpoints' / 'corrupt' / '2'}" in warning, warning
  assert saved_steps(tmp_path) == {1}
  assert (tmp_path / "checkpoints" / "corrupt" / "2" / "default").is_dir()  # kept, not deleted


def test_checksums_do_not_depend_on_sharding_or_device_count():
  from gan.train import integrity
  state = random_state(3)
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
  sharded = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  assert integrity.record(sharded) == integrity.record(jax.device_get(state))
  # Every single-bit change of a leaf changes its checksum (a bijection per term).
  w = np.asarray(state["params"]["w"])
  base = integrity.summarize({"w": w})["w"]["checksum"]
  for index in (0, 1, 4095):
    for bit in (0, 22, 31):
      changed = w.copy().view(np.uint32)
      changed.flat[index] ^= np.uint32(1 << bit)
      assert integrity.summarize({"w": changed.view(np.float32)})["w"]["checksum"] != base
  swapped = w.copy()
  swapped.flat[0], swapped.flat[1] = w.flat[1], w.flat[0]
  assert integrity.summarize({"w": swapped})["w"]["checksum"] != base


def test_a_non_finite_value_in_a_checkpoint_is_refused_like_corruption(tmp_path, caplog):
  checkpointer = Checkpointer(str(tmp_path), keep=5)
  assert checkpointer.save(1, small_state(1))
  poisoned = small_state(2)
  poisoned["params"]["w"] = poisoned["params"]["w"].at[1, 2].set(jnp.nan)
  assert checkpointer.save(2, poisoned)
  assert checkpointer.close()
  with caplog.at_level(logging.WARNING):
    state, step = Checkpointer(str(tmp_path), keep=5).restore_latest(small_state())
  assert step == 1
  assert_bitwise_equal(state, small_state(1))
  assert any("step 2" in m and "params/w: holds NaN or Inf" in m for m in warnings_of(caplog))
  assert (tmp_path / "checkpoints" / "corrupt" / "2").is_dir()


def test_a_stray_folder_is_set_aside_and_saving_continues_from_the_restored_step(
    tmp_path, caplog):
  checkpointer = Checkpointer(str(tmp_path), keep=2, every_steps=10)
  for step in (10, 20, 30):
    assert checkpointer.save(step, small_state(step))
  assert checkpointer.close()
  stray = tmp_path / "checkpoints" / "999999"
  stray.mkdir()
  (stray / "garbage").write_bytes(os.urandom(64))
  resumed = Checkpointer(str(tmp_path), keep=2, every_steps=10)
  with caplog.at_level(logging.WARNING):
    state, step = resumed.restore_latest(small_state())
  assert step == 30
  assert_bitwise_equal(state, small_state(30))
  assert any("step 999999" in m and "corrupt" in m for m in warnings_of(caplog))
  # The cadence goes on from step 30, and the kept checkpoints are real ones.
  assert [s for s in range(31, 61) if resumed.should_save(s)] == [40, 50, 60]
  for step in (40, 50):
    assert resumed.save(step, small_state(step))
  assert resumed.close()
  assert saved_steps(tmp_path) == {40, 50}
  assert sorted(os.listdir(tmp_path / "checkpoints" / "corrupt")) == ["999999"]
  assert (tmp_path / "checkpoints" / "corrupt" / "999999" / "garbage").is_file()


def test_the_same_step_damaged_twice_keeps_both_casualties(tmp_path):
  save_steps(tmp_path, [1, 2])
  for _ in range(2):
    corrupt_by_truncation(tmp_path / "checkpoints" / "2")
    checkpointer = Checkpointer(str(tmp_path), keep=5)
    assert checkpointer.restore_latest(small_state())[1] == 1
    assert checkpointer.save(2, small_state(2))  # training reaches step 2 again
    assert checkpointer.close()
  assert sorted(os.listdir(tmp_path / "checkpoints" / "corrupt")) == ["2", "2.1"]


@pytest.mark.parametrize("damage", ["recorded shape", "recorded checksum", "not json"])
def test_a_damaged_checksum_record_is_corruption_not_a_mismatch(tmp_path, damage):
  save_steps(tmp_path, [1, 2])
  metadata = tmp_path / "checkpoints" / "2" / "_CHECKPOINT_METADATA"
  text = metadata.read_text()
  if damage == "recorded shape":  # as one damaged byte could: [2, 3] -> [2, 7]
    assert text.count("[2, 3]") == 1, text
    text = text.replace("[2, 3]", "[2, 7]")
  elif damage == "recorded checksum":
    checksum = json.loads(text)["custom_metadata"]["gan_integrity"]["leaves"]["params/w"]
    text = text.replace(checksum["checksum"], checksum["checksum"][::-1])
  else:
    text = text[: len(text) // 2]
  metadata.write_text(text)
  state, step = Checkpointer(str(tmp_path), keep=5).restore_latest(small_state())
  assert step == 1
  assert_bitwise_equal(state, small_state(1))
  assert (tmp_path / "checkpoints" / "corrupt" / "2").is_dir()


def test_checkpoints_without_a_checksum_record_still_restore(tmp_path, caplog):
  plain = ocp.CheckpointManager(tmp_path / "checkpoints",
                                item_handlers=ocp.StandardCheckpointHandler())
  plain.save(4, args=ocp.args.StandardSave(small_state(4)))  # as before checksums existed
  plain.wait_until_finished()
  plain.close()
  with caplog.at_level(logging.WARNING):
    state, step = Checkpointer(str(tmp_path), keep=5).restore_latest(small_state())
  assert step == 4
  assert_bitwise_equal(state, small_state(4))
  assert any("no checksum record" in m for m in warnings_of(caplog))

