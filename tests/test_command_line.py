"""Hostile flags and workdirs: each ends with one ``error:`` line naming the fix, no traceback."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile

import pytest

from conftest import PYTHON, REPO, subprocess_env, tiny_config, validate
from gan.config import ConfigError
from gan.fileio import atomic_write
from test_main import TINY


def run_main(*args, timeout: int = 300) -> subprocess.CompletedProcess:
  return subprocess.run([PYTHON, "-m", "gan.main", *args], capture_output=True, text=True,
                        env=subprocess_env(1), cwd=REPO, timeout=timeout)


def error_line(result: subprocess.CompletedProcess) -> str:
  """The run's one 'error:' message (to the end of stderr: an invalid config lists each
  problem on a line of its own); fails on a traceback or a second 'error:' line."""
  assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  lines = result.stderr.splitlines()
  starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
  assert len(starts) == 1, result.stderr[-3000:]
  return " ".join(line.strip() for line in lines[starts[0]:])


@pytest.mark.parametrize("override, hints", [
    ("--config.train.learning_rate=1e-4", ["config.train.g_lr", "config.train.d_lr"]),
    ("--config.optim.lr=1", ["config.train.g_lr", "config.train.d_lr"]),
    ("--config.train.batchsize=64", ["config.train.batch_size"]),
])
def test_an_unknown_config_key_says_which_fields_were_meant(tmp_path, override, hints):
  line = error_line(run_main("--config=configs/quickstart.py", f"--workdir={tmp_path}/run",
                             override))
  assert override in line and "did you mean" in line, line
  assert all(hint in line for hint in hints), line
  assert not (tmp_path / "run").exists()


def test_an_unknown_progan_key_suggests_its_learning_rate(tmp_path):
  line = error_line(run_main("--config=configs/progan_quickstart.py", f"--workdir={tmp_path}",
                             "--config.train.learning_rate=1e-3"))
  assert "did you mean config.train.lr?" in line, line


def test_a_missing_config_file_is_named(tmp_path):
  line = error_line(run_main("--config=configs/no_such_config.py", f"--workdir={tmp_path}"))
  assert "--config=configs/no_such_config.py: no such file" in line, line


def test_bad_flag_values_are_one_line(tmp_path):
  line = error_line(run_main("--config=configs/quickstart.py", f"--workdir={tmp_path}",
                             "--config.train.batch_size=abc"))
  assert "--config.train.batch_size=abc" in line, line
  line = error_line(run_main("--config=configs/quickstart.py"))
  assert "--workdir" in line, line


@pytest.mark.parametrize("workdir, expected", [("", "--workdir is empty"),
                                               ("FILE", "is a file, not a directory")])
def test_an_empty_workdir_or_a_file_is_refused(tmp_path, workdir, expected):
  if workdir == "FILE":
    workdir = str(tmp_path / "a_file")
    (tmp_path / "a_file").write_text("not a directory")
  cwd_before = set(os.listdir(REPO))
  line = error_line(run_main("--config=configs/quickstart.py", f"--workdir={workdir}"))
  assert expected in line, line
  assert set(os.listdir(REPO)) == cwd_before  # nothing trained into the current directory


@contextlib.contextmanager
def read_only_mount():
  """A read-only tmpfs (root only); skips the test where mounting is not allowed."""
  directory = tempfile.mkdtemp(prefix="gan-ro-")
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", directory],
                          capture_output=True, text=True, check=False)
  if result.returncode:
    os.rmdir(directory)
    pytest.skip(f"cannot mount a read-only file system here: {result.stderr.strip()}")
  try:
    yield directory
  finally:
    subprocess.run(["umount", directory], check=False)
    os.rmdir(directory)


def test_a_workdir_on_a_read_only_file_system_is_refused_at_start():
  with read_only_mount() as directory:
    line = error_line(run_main(*TINY, f"--workdir={directory}/run"))
  assert f"cannot write to --workdir={directory}/run: Read-only file system" in line, line


def test_a_batch_that_cannot_fit_in_host_memory_is_refused_naming_the_number():
  config = tiny_config(batch_size=2**31)
  with pytest.raises(ConfigError) as error:
    validate(config, num_devices=1, host_memory=24 * 2**30)
  message = str(error.value)
  assert "config.train.batch_size=2147483648" in message and "24.0 GiB" in message, message
  validate(tiny_config(), num_devices=1, host_memory=24 * 2**30)  # the tiny batch fits
  with pytest.raises(ConfigError, match="4.0 MiB of memory available"):
    validate(tiny_config(batch_size=4096), num_devices=1, host_memory=4 * 2**20)


def test_a_huge_batch_stops_before_allocating(tmp_path):
  line = error_line(run_main(*TINY, f"--workdir={tmp_path}",
                             "--config.train.batch_size=2147483648"))
  assert "config.train.batch_size=2147483648: each process would hold about" in line, line


def test_contradictory_data_settings_are_refused():
  unconditional_with_classes = tiny_config()
  unconditional_with_classes.data.label_key = ""
  with pytest.raises(ConfigError, match=r"label_key='' \(unconditional\) needs "
                                        r"config.data.num_classes=1, not 10"):
    validate(unconditional_with_classes, num_devices=1)
  from gan.families.biggan.family import make_pipeline as create_pipeline
  tiny_set = tiny_config(batch_size=8)
  tiny_set.data.num_examples = 3
  validate(tiny_set, num_devices=1)
  with pytest.raises(ConfigError, match=r"batch_size=8 is larger than the dataset \(3 examples"):
    create_pipeline(tiny_set)


def test_an_unknown_tfds_name_names_the_closest_few(tmp_path):
  from gan.data.tfds_source import open_builder
  with pytest.raises(ConfigError) as error:
    open_builder("imagnet2012", str(tmp_path))
  message = str(error.value)
  assert "did you mean imagenet2012," in message, message
  assert len(message) < 600 and message.count("\n") == 0, message


def test_a_damaged_config_json_is_named_with_the_fix(tmp_path):
  workdir = tmp_path / "run"
  run = run_main(*TINY, f"--workdir={workdir}", "--config.train.num_steps=2")
  assert run.returncode == 0, run.stderr[-3000:]
  text = (workdir / "config.json").read_text()
  (workdir / "config.json").write_text(text[: len(text) // 2])  # as a kill mid-write left it
  line = error_line(run_main(*TINY, f"--workdir={workdir}", "--config.train.num_steps=4"))
  assert f"{workdir}/config.json is damaged" in line and "delete it" in line, line
  (workdir / "config.json").unlink()  # the fix the message names: the run resumes
  resumed = run_main(*TINY, f"--workdir={workdir}", "--config.train.num_steps=4")
  assert resumed.returncode == 0 and "Resumed at step 2, " in resumed.stderr
  json.loads((workdir / "config.json").read_text())


_WRITER = """
import sys
from gan.fileio import atomic_write
path, size = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
i = 0
while True:
  atomic_write(path, (b"AB"[i % 2:i % 2 + 1]) * size)
  i += 1
"""


def test_atomic_write_killed_mid_write_leaves_old_or_new_content(tmp_path):
  target = tmp_path / "config.json"
  size = 4 << 20  # 4 MiB per write: a kill lands mid-write most of the time
  atomic_write(target, b"A" * size)
  for delay in (0.05, 0.11, 0.23):
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(size)],
                            stdout=subprocess.PIPE, env=subprocess_env(1), cwd=REPO)
    assert proc.stdout.readline().strip() == b"ready"
    with contextlib.suppress(subprocess.TimeoutExpired):
      proc.wait(timeout=delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    content = target.read_bytes()
    assert content in (b"A" * size, b"B" * size), (len(content), content[:1], content[-1:])
  for leftover in tmp_path.glob(".config.json.tmp-*"):  # a killed writer's temporary file
    leftover.unlink()


def test_an_unknown_family_lists_the_registered_ones(tmp_path):
  line = error_line(run_main("--config=configs/quickstart.py", f"--workdir={tmp_path}/run",
                             "--config.model.name=bigan"))
  assert ("config.model.name='bigan': not a registered family; registered: biggan, progan, "
          "stylegan, stylegan2. Did you mean 'biggan'?") in line, line
