"""A progress bar with ETA for long evaluation work, quiet when not wanted.

On a terminal it redraws one line on stderr; otherwise (a log file, a test)
it writes a plain line at every 10% so a log shows how far the work got.
Only process 0 draws it.
"""

import sys
import time

import jax

from gan.train.progress import format_duration


class ProgressBar:
  def __init__(self, what: str, total: int, unit: str = "images", enabled: bool = True,
               stream=None):
    self.what, self.total, self.unit = what, max(int(total), 1), unit
    self.stream = stream or sys.stderr
    self.enabled = enabled and jax.process_index() == 0
    self.tty = self.enabled and getattr(self.stream, "isatty", lambda: False)()
    self.start = time.monotonic()
    self.done, self._last_decile = 0, -1

  def update(self, count: int) -> None:
    self.done = min(self.done + int(count), self.total)
    if not self.enabled:
      return
    fraction = self.done / self.total
    elapsed = time.monotonic() - self.start
    eta = elapsed / fraction * (1 - fraction) if fraction > 0 else None
    rate = self.done / elapsed if elapsed > 0 else 0.0
    text = (f"{self.what}: {self.done}/{self.total} {self.unit} ({fraction:.0%}), "
            f"{rate:.0f} {self.unit}/s, elapsed {format_duration(elapsed)}, "
            f"ETA {format_duration(eta)}")
    if self.tty:
      bar = "#" * int(fraction * 20)
      self.stream.write(f"\r[{bar:<20}] {text}")
      if self.done == self.total:
        self.stream.write("\n")
    elif int(fraction * 10) > self._last_decile:
      self._last_decile = int(fraction * 10)
      self.stream.write(text + "\n")
    self.stream.flush()
