"""A run's observable outputs: logged metrics, TensorBoard events and sample grids.

Metrics always go to the log. The chief process also writes TensorBoard
events (asynchronously) and PNG sample grids into the workdir. Those writes
can fail (full disk, lost permissions, a flaky remote store); a failure is
reported once per kind with one ERROR line and never stops training: losing
a curve or a grid must not cost the run. Writes are retried at every call,
so the outputs resume once the cause is fixed. Checkpoints are not written
here (gan/train/checkpointing.py).
"""

from absl import logging
from clu import metric_writers
from etils import epath

from gan.images import save_png
from gan.fileio import atomic_write


def _reason(error: BaseException) -> str:
  cause = error.__cause__ or error  # clu wraps background failures in AsyncError
  return f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0][:300]}"


class RunOutputs:
  """Metrics, events and grids of one run; see the module docstring."""

  def __init__(self, workdir: epath.Path, is_chief: bool):
    self.workdir, self.is_chief = workdir, is_chief
    self._log = metric_writers.LoggingWriter()
    self._events = None
    self.failures: dict[str, str] = {}  # kind -> first reason
    if is_chief:
      self._guard("TensorBoard events", self._open_events)

  def _open_events(self) -> None:
    self._events = metric_writers.AsyncWriter(metric_writers.SummaryWriter(str(self.workdir)))

  def _guard(self, kind: str, write) -> bool:
    """Runs ``write``; on failure reports the first one of ``kind`` and returns False."""
    try:
      write()
      return True
    except Exception as error:  # pylint: disable=broad-except (any write failure: see above)
      if kind not in self.failures:
        self.failures[kind] = _reason(error)
        logging.error("Could not write %s to %s (%s); training continues, and further "
                      "failures to write %s are not reported.", kind, self.workdir,
                      self.failures[kind], kind)
      return False

  def write_scalars(self, step: int, scalars: dict) -> None:
    self._log.write_scalars(step, scalars)
    if self._events is not None:
      self._guard("TensorBoard events", lambda: self._events.write_scalars(step, scalars))

  def write_images(self, step: int, images: dict) -> None:
    if self._events is not None:
      self._guard("TensorBoard events", lambda: self._events.write_images(step, images))

  def save_grid(self, name: str, grid, tag: str, step: int) -> None:
    """samples/<name> as PNG and the grid as a TensorBoard image (chief only)."""
    if self.is_chief:
      self._guard("sample grids", lambda: save_png(self.workdir / "samples" / name, grid))
      self.write_images(step, {tag: grid[None]})

  def write_text(self, name: str, text: str) -> None:
    """A metadata file in the workdir, written atomically (chief only)."""
    if self.is_chief:
      self._guard(name, lambda: atomic_write(self.workdir / name, text))

  def save_evaluation(self, name: str, text: str) -> None:
    """eval/<name>: one evaluation's figures and protocol as JSON (chief only)."""
    if self.is_chief:
      def write():
        (self.workdir / "eval").mkdir(parents=True, exist_ok=True)
        atomic_write(self.workdir / "eval" / name, text)
      self._guard("evaluation results", write)

  def close(self) -> None:
    if self._events is not None:
      self._guard("TensorBoard events", self._events.close)
      self._events = None
