"""Evaluation inside the training loop: when, what it logs, and how it ranks checkpoints.

Every ``config.eval.every_steps`` steps (and at the end with
``config.eval.at_end``) the family's EMA generator is scored by
gan.evaluation.protocol.Evaluator. The figures go to the log, to TensorBoard
under ``eval/<figure>``, and with their protocol to ``eval/step_<N>.json`` in
the workdir; the checkpoint of that step is ranked by
``config.eval.best_metric`` for keep-best. The time spent is logged and kept
out of the images/s figures. With evaluation off nothing here imports a
network.
"""

import json
import time

import numpy as np
from absl import logging


class RunEvaluation:
  def __init__(self, config, mesh, family, model):
    e = config.eval
    self.config, self.family, self.model = config, family, model
    self.every = e.every_steps
    self.at_end = e.at_end
    self.enabled = bool(self.every or self.at_end)
    self.best_metric = e.best_metric or None
    self.ranks_checkpoints = self.enabled and self.best_metric is not None
    self._figures: dict[int, dict] = {}
    self.evaluator = None
    if self.enabled:
      from gan.evaluation.protocol import Evaluator
      self.evaluator = Evaluator(config, mesh)  # loads the networks: a missing file fails now

  def keep_best(self) -> dict:
    """Checkpointer arguments for keep-best by config.eval.best_metric."""
    if not self.ranks_checkpoints:
      return {}
    from gan.evaluation.catalog import BETTER
    return {"best_metric": self.best_metric, "best_mode": BETTER[self.best_metric]}

  def plan(self, workdir) -> str:
    if not self.enabled:
      return ""
    e = self.config.eval
    when = " and ".join(filter(None, [f"every {self.every} steps" if self.every else "",
                                      "at the end" if self.at_end else ""]))
    best = f"; keeping the best checkpoint by {self.best_metric}" if self.best_metric else ""
    truncation = f", truncation {e.truncation}" if e.truncation else ""
    return (f"Evaluation {when}: {e.metrics} on {self.evaluator.num_samples} samples{truncation}"
            f"{best}; results in {workdir / 'eval'} and TensorBoard (eval/*)")

  def due(self, step: int) -> bool:
    return bool(self.every) and step % self.every == 0 and step not in self._figures

  def due_at_end(self, step: int) -> bool:
    return self.at_end and step not in self._figures

  def figures_at(self, step: int) -> dict | None:
    """The figures of the evaluation at ``step`` (for the checkpoint's metrics), if any."""
    return self._figures.get(step)

  def run(self, state, step: int, images_shown: int, outputs) -> float:
    """Evaluates ``state``; logs, writes and remembers the figures; returns the seconds."""
    e = self.config.eval
    generator = self.family.eval_generator(self.model, self.config, state, images_shown,
                                           e.truncation or None)
    start = time.perf_counter()
    try:
      result = self.evaluator.evaluate(generator, step=step, images_shown=images_shown)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
      # A figure that cannot be computed (say, a singular covariance) costs that figure,
      # never the run: training continues and the next evaluation tries again.
      logging.error("Evaluation at step %d failed (%s: %s); training continues.", step,
                    type(error).__name__, error)
      return time.perf_counter() - start
    self._figures[step] = result.figures
    shown = ", ".join(f"{name} {value:.4g}" for name, value in result.figures.items())
    logging.info("Evaluation at step %d: %s (%d samples, %.1f s, not counted in images/s)",
                 step, shown, self.evaluator.num_samples, result.seconds)
    outputs.write_scalars(step, {**{f"eval/{k}": v for k, v in result.figures.items()},
                                 "eval/seconds": result.seconds})
    outputs.save_evaluation(f"step_{step:08d}.json", json.dumps(result.record, indent=2))
    return result.seconds
