"""The metrics a run can ask for, the network each needs, and how each ranks.

Plain data, so configs can be checked without importing any network.

  fid            Frechet Inception distance (Heusel et al. 2017)      inception
  is             Inception score (Salimans et al. 2016)               inception
  kid            kernel Inception distance (Binkowski et al. 2018)    inception
  pr             precision and recall (Kynkaanniemi et al. 2019)      inception
  swd            sliced Wasserstein distance on Laplacian-pyramid     none
                 patches (Karras et al. 2018, ProGAN)
  shapes10_fid   FID on the shapes10 classifier's features: only for  shapes10
                 the embedded dataset, NOT comparable to an Inception FID
  class_accuracy fraction of conditional samples the shapes10         shapes10
                 classifier assigns to the class they were drawn for
"""

INCEPTION = "inception"
SHAPES10 = "shapes10"

# metric -> the feature network it needs (None: works on pixels)
NETWORK_OF = {
    "fid": INCEPTION, "is": INCEPTION, "kid": INCEPTION, "pr": INCEPTION,
    "swd": None,
    "shapes10_fid": SHAPES10, "class_accuracy": SHAPES10,
}
METRICS = tuple(NETWORK_OF)

# metric -> the figures it reports (the keys of a result, and what best_metric may name)
FIGURES_OF = {
    "fid": ("fid",), "is": ("is", "is_std"), "kid": ("kid", "kid_std"),
    "pr": ("precision", "recall"), "swd": ("swd",),
    "shapes10_fid": ("shapes10_fid",), "class_accuracy": ("class_accuracy",),
}
# figure -> 'min' if lower is better, 'max' if higher is better (keep-best)
BETTER = {"fid": "min", "is": "max", "kid": "min", "precision": "max", "recall": "max",
          "swd": "min", "shapes10_fid": "min", "class_accuracy": "max"}


def parse_metrics(text: str) -> tuple[str, ...]:
  """'swd, fid' -> ('swd', 'fid'); ValueError naming the known metrics for an unknown one."""
  names = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
  unknown = [m for m in names if m not in NETWORK_OF]
  if unknown:
    raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; known: "
                     f"{', '.join(METRICS)}")
  return names


def figures(metrics: tuple[str, ...]) -> tuple[str, ...]:
  return tuple(f for m in metrics for f in FIGURES_OF[m])
