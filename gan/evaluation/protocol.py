"""The evaluation protocol: N samples of a generator scored against a reference set.

  Evaluator(config, mesh) -> .evaluate(generator, step=..., images_shown=...)

The generator is a family's ``EvalGenerator`` (gan/families/interface.py): a
pure function of (inputs, rng, count) that draws images from the EMA weights.
Batch ``b`` of every evaluation uses ``fold_in(PRNGKey(eval.seed), b)``, so two
evaluations of a run differ only by the weights, not by the latents. Every
sample is quantised to uint8 before any network sees it (gan/evaluation/extract.py).
Each figure's record names the networks, resize mode, sample counts, reference
set and protocol constants it was computed with.
"""

import dataclasses
import math
import time

import jax
import numpy as np
from absl import logging

from gan.config import ConfigError
from gan.config.evaluation import inception_missing
from gan.evaluation import catalog, extract, networks as network_lib, reference as reference_lib
from gan.evaluation.collect import Collected, figures as compute_figures
from gan.evaluation.progress_bar import ProgressBar

QUANTISATION = "uint8: x * 127.5 + 128, clipped to [0, 255], truncated"
SWD_PROTOCOL = ("Laplacian pyramid down to 16x16, 128 random 7x7 patches per image and level, "
                "each level's descriptors normalised, 4 x 128 random directions; x 1e3")


@dataclasses.dataclass(frozen=True)
class Result:
  figures: dict          # figure name -> value (catalog.FIGURES_OF)
  record: dict           # everything needed to read the figures (written as JSON)
  seconds: float


class Evaluator:
  """Scores the generators of one run; the reference set is computed once, on first use."""

  def __init__(self, config, mesh, *, metrics: str | None = None,
               num_samples: int | None = None, verbose: bool = True):
    e = config.eval
    self.config, self.mesh, self.verbose = config, mesh, verbose
    self.metrics = catalog.parse_metrics(e.metrics if metrics is None else metrics)
    if not self.metrics:
      raise ConfigError("No metrics to evaluate: name some, e.g. --config.eval.metrics=swd.")
    if (missing := inception_missing(self.metrics, e.inception_weights)) is not None:
      raise ConfigError(missing)
    self.num_samples = int(num_samples or e.num_samples)
    self.batch_size = e.batch_size  # a multiple of the devices: gan.config.evaluation
    self.networks = network_lib.for_metrics(self.metrics, e)
    self.swd = "swd" in self.metrics
    self._reference = None
    self._compiled = {}

  def reference(self) -> reference_lib.Reference:
    if self._reference is None:
      self._reference = reference_lib.compute(
          self.config, self.networks, self.num_samples if self.swd else 0, self.mesh,
          verbose=self.verbose)
    return self._reference

  def _keep(self) -> int:
    """Feature rows kept per sample set: those KID and precision/recall read."""
    return self.num_samples if {"kid", "pr"} & set(self.metrics) else 0

  def evaluate(self, generator, *, step: int | None = None,
               images_shown: int | None = None) -> Result:
    """The figures of ``generator`` (a family's EvalGenerator) and their record."""
    e = self.config.eval
    reference = self.reference()
    start = time.perf_counter()
    if generator.key not in self._compiled:
      self._compiled[generator.key] = extract.generated_fn(
          generator.fn, self.networks, self.swd, self.mesh, self.batch_size)
    fn = self._compiled[generator.key]
    params = {name: net.params for name, net in self.networks.items()}
    # SWD compares equally many patches: as many generated images as reference ones.
    fake = Collected(list(self.networks), self.swd, keep=self._keep(),
                     keep_logits=bool({"is", "class_accuracy"} & set(self.metrics)),
                     keep_swd=reference.swd_images)
    bar = ProgressBar(f"Evaluating {len(self.metrics)} metric(s)", self.num_samples,
                      enabled=self.verbose)
    rng = jax.random.PRNGKey(e.seed)
    for index in range(math.ceil(self.num_samples / self.batch_size)):
      valid = min(self.batch_size, self.num_samples - index * self.batch_size)
      outputs, labels = fn(generator.inputs, params, jax.random.fold_in(rng, index))
      outputs = extract.to_host(outputs, valid)
      labels = None if labels is None else np.asarray(jax.device_get(labels))[:valid]
      fake.add(outputs, valid, labels)
      bar.update(valid)
    if self.verbose:  # SWD's sorting dominates an evaluation's time on a CPU host
      logging.info("Computing %s from the %d samples' features...", ", ".join(self.metrics),
                   self.num_samples)
    values = compute_figures(self.metrics, reference, fake, e, self.num_samples)
    seconds = time.perf_counter() - start
    return Result(values, self.record(values, generator, reference, step, images_shown,
                                      seconds), seconds)

  def record(self, values, generator, reference, step, images_shown, seconds) -> dict:
    e = self.config.eval
    protocol = {
        "metrics": list(self.metrics),
        "networks": {name: net.description for name, net in self.networks.items()},
        "generated_images": self.num_samples,
        "reference": reference.description,
        "reference_images": reference.count,
        "quantisation": QUANTISATION,
        "generator": generator.description,
    }
    if catalog.INCEPTION in self.networks:
      protocol["resize_mode"] = e.resize_mode
    if "is" in self.metrics:
      protocol["is_splits"] = e.is_splits
    if "kid" in self.metrics:
      protocol["kid"] = (f"unbiased MMD^2, cubic polynomial kernel, {e.kid_subsets} subsets of "
                         f"{e.kid_subset_size}")
    if "pr" in self.metrics:
      protocol["precision_recall_k"] = e.pr_k
    if self.swd:
      protocol["swd"] = SWD_PROTOCOL
      protocol["swd_images"] = reference.swd_images  # of each set
    return {"step": step, "images_shown": images_shown, "figures": values,
            "protocol": protocol, "seconds": round(seconds, 3)}


def table(record: dict) -> str:
  """The figures of one record as aligned 'name  value' lines, with what they mean."""
  lines = [f"  {name:<16} {value:.6g}" for name, value in record["figures"].items()]
  p = record["protocol"]
  lines.append(f"  ({p['generated_images']} samples of {p['generator']}; reference "
               f"{p['reference']})")
  return "\n".join(lines)
