"""The config of a growth schedule: its fields' rules and the checks that combine them.

A growing family's config has ``config.schedule`` (start_resolution, fade_images,
stable_images, total_images, batch_sizes, default_batch_size, learning_rates) and
``config.train.lr``, ``reset_optimizer`` and ``max_steps``; gan/growth/schedule.py
reads them (``Schedule.from_config``).
"""

from gan.config.rules import COUNT, RATE, RESOLUTION, Bool, Int, OneOf, Text
from gan.growth.schedule import Schedule, parse_resolution_map

SCHEDULE_FIELDS = ("model.resolution", "train.lr", "schedule.start_resolution",
                   "schedule.fade_images", "schedule.stable_images", "schedule.total_images",
                   "schedule.batch_sizes", "schedule.default_batch_size",
                   "schedule.learning_rates")


def schedule_rules() -> dict:
  """{path: rule} of the schedule's fields and the train fields it uses."""
  # A phase length in images: an int, or per resolution in a str field.
  length = OneOf(COUNT, Text(lambda t: parse_resolution_map(t, int) if ":" in t else int(t),
                             "8:600000,16:800000", "8=600000"))
  return {
      "schedule.start_resolution": RESOLUTION,
      "schedule.fade_images": length,
      "schedule.stable_images": length,
      "schedule.total_images": COUNT,
      "schedule.batch_sizes": Text(lambda t: parse_resolution_map(t, int), "4:512,8:256", "4=512"),
      "schedule.default_batch_size": COUNT,
      "schedule.learning_rates": Text(lambda t: parse_resolution_map(t, float),
                                      "128:1.5e-3,256:2e-3", "128:fast"),
      "train.lr": RATE,
      "train.reset_optimizer": Bool(),
      "train.max_steps": Int(min=0),
  }


def check_schedule(config, num_devices: int, num_processes: int, valid,
                   mbstd_group_size: int) -> list[str]:
  """The schedule's problems, and batches that devices, processes or minibatch-stddev
  groups (``mbstd_group_size``, 0: none) do not divide."""
  if not valid(*SCHEDULE_FIELDS):
    return []
  try:
    schedule = Schedule.from_config(config)
  except ValueError as e:
    return [f"config.schedule: {e}"]
  errors, resolutions = [], {}  # batch size -> the resolutions that use it
  for phase in schedule.phases:
    resolutions.setdefault(phase.batch_size, {})[phase.resolution] = None
  for batch, where in resolutions.items():
    where = ", ".join(f"{r}x{r}" for r in where)
    for count, what in ((num_devices, "devices"), (num_processes, "processes")):
      if batch % count:
        errors.append(f"batch {batch} (at {where}) is not divisible by the {count} {what}; "
                      f"use a multiple of {count} in config.schedule.batch_sizes or "
                      "default_batch_size.")
    group = min(mbstd_group_size, batch)
    if group > 1 and batch % group:
      errors.append(f"batch {batch} (at {where}) is not divisible by the minibatch-stddev "
                    f"group size {group}; change config.model.mbstd_group_size or the batch.")
  return errors


def largest_batch(config, valid) -> tuple[int, str] | None:
  """(the largest batch of the schedule, where it is used), or None if unknown."""
  if not valid(*SCHEDULE_FIELDS):
    return None
  try:
    schedule = Schedule.from_config(config)
  except ValueError:
    return None  # reported by check_schedule
  largest = max(schedule.phases, key=lambda phase: phase.batch_size)
  where = sorted({p.resolution for p in schedule.phases if p.batch_size == largest.batch_size})
  return largest.batch_size, (f"the batch {largest.batch_size} at "
                              f"{', '.join(f'{r}x{r}' for r in where)}")
