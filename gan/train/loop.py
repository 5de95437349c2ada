"""The one training loop. It knows no GAN family: it is given one (gan/families/).

  validate -> open the data -> claim the workdir -> mesh -> init or restore
  -> per step: the phase at the current counters (a new phase: grid and
     checkpoint of the one that ended, then the family's enter_phase) ->
     compile the phase's step once (ahead of time, logged) -> run it ->
     at log steps: metrics, progress and ETA, the non-finite policy ->
     evaluation (config.eval), sample grids, checkpoints, signals
  -> at the end: the final grid, evaluation and checkpoint, and wait until it is on disk.

The data order is a pure function of (seed, position), each step's noise is
``fold_in(state.rng, step)``, and the state alone fixes the phase, so a run
resumed from any checkpoint continues exactly where it stopped.
"""

import json
import time

import jax
import ml_collections
from absl import logging

from gan.config.validate import validate
from gan.data import pipeline as data_pipeline
from gan.train import health
from gan.train.checkpointing import Checkpointer
from gan.train.evaluation import RunEvaluation
from gan.train.outputs import RunOutputs
from gan.train.preemption import PreemptionWatcher
from gan.train.progress import PhaseSpan, Progress
from gan.train.run_config import claim_workdir
from gan.train.sharding import host_to_global, jit_train_step, make_mesh, replicated
from gan.train.workdir import open_workdir


def _batches(family, config, pipeline, step: int, images: int):
  """Yields (step, images shown, phase, this process's batch) from these counters on."""
  while True:
    phase = family.phase_at(config, step, images)
    yield step, images, phase, family.host_batch(config, pipeline, phase, step, images)
    step, images = step + 1, images + phase.examples_per_step


def _plan(family, config, workdir, step: int, images: int, total_steps: int) -> str:
  """What the run will do, for its first lines."""
  first = family.phase_at(config, step, images)
  devices = jax.device_count()
  every_secs = (f" and every {config.checkpoint_every_secs} s" if config.checkpoint_every_secs
                else "")
  return "\n".join(filter(None, [
      f"Training {family.name}: {family.describe(config)}",
      f"Steps {step} -> {total_steps} on {devices} {jax.devices()[0].platform} device(s) in "
      f"{jax.process_count()} process(es); {first.label}: {first.examples_per_step} images per "
      f"step, {first.examples_per_step / devices:g} per device",
      f"Checkpoints every {config.checkpoint_every_steps} steps{every_secs} (and at phase ends) "
      f"in {workdir / 'checkpoints'}, keeping {config.keep_checkpoints}; sample grids every "
      f"{config.sample_every_steps} steps in {workdir / 'samples'}; TensorBoard: {workdir}"]))


def train(config: ml_collections.ConfigDict, workdir: str, family, history: list | None = None):
  """Trains (or resumes) the run of ``family`` in ``workdir``; returns the final state.

  ``history``, if given, receives one dict per step (step, images_shown, phase
  and the family's step_record) and one per compilation (compiled_phase, seconds).
  """
  # Everything that can be wrong with the config or data fails here, before compiling.
  validate(config, family, jax.device_count(), jax.process_count())
  source = data_pipeline.create_source(config)
  pipeline = family.make_pipeline(source, config, jax.process_index(), jax.process_count())
  workdir = open_workdir(workdir, jax.process_index())  # local or gs://; refuses a full disk
  is_chief = jax.process_index() == 0
  claim_workdir(workdir, config, is_chief)  # refuses a workdir of another run

  mesh = make_mesh()
  model = family.build(config)
  state = jax.jit(lambda: family.init_state(model, config), out_shardings=replicated(mesh))()
  evaluation = RunEvaluation(config, mesh, family, model)  # off unless config.eval asks
  checkpointer = Checkpointer(str(workdir), config.keep_checkpoints,
                              every_steps=config.checkpoint_every_steps,
                              every_seconds=config.checkpoint_every_secs or None,
                              upgrades=family.checkpoint_upgrades(model),
                              **evaluation.keep_best())
  restored, _ = checkpointer.restore_latest(state)  # sets aside damaged checkpoints
  if restored is not None:
    state = restored
  step, images = int(state.step), family.images_shown(config, state)
  start_step, total_steps = step, family.total_steps(config)
  phase = family.phase_at(config, step, images)
  if restored is not None:
    record = family.step_record(phase, images)
    alpha = f", alpha {record['alpha']:.4f}" if "alpha" in record else ""
    logging.info("Resumed at step %d, %d images shown, from %s: phase %d (%s)%s", step, images,
                 checkpointer.step_directory(step), phase.index, phase.label, alpha)
  logging.info("%s", "\n".join(filter(None, [
      _plan(family, config, workdir, step, images, total_steps), evaluation.plan(workdir)])))

  outputs = RunOutputs(workdir, is_chief)  # reports a failed write once, never stops the run
  sampler = family.sampler(model, config)
  phases = family.phases(config)
  progress = Progress(total_steps, [PhaseSpan(*span) for span in family.phase_spans(config)],
                      step, images, time.monotonic())
  last_grid = None

  def write_grid(grid_phase) -> None:
    nonlocal last_grid
    for grid in sampler.grids(state, grid_phase, step, images):  # every process: a collective
      outputs.save_grid(grid.file_name, grid.image, grid.tag, step)
    last_grid = step

  attempted = {checkpointer.latest_step()}

  def save_checkpoint() -> None:
    # A phase end can coincide with checkpoint_every_steps, or with the end: each step is
    # saved once (a failed save is reported once; the end of the run says it again).
    if step not in attempted:
      attempted.add(step)
      checkpointer.save(step, state, metrics=evaluation.figures_at(step))

  def evaluate() -> float:
    """Evaluates the state at this step; the seconds it took (kept out of images/s)."""
    seconds = evaluation.run(state, step, images, outputs)
    progress.restart_window(time.monotonic(), step, images)
    if evaluation.ranks_checkpoints:
      save_checkpoint()  # keep-best can only keep a checkpoint of an evaluated step
    return seconds

  if step == 0:
    write_grid(phase)
  state_phase = family.state_phase(state)
  specs, compiled = {}, {}
  batches = data_pipeline.prefetch(_batches(family, config, pipeline, step, images))
  sums = {}  # metric -> (sum, steps) since the last log line
  window = (time.perf_counter(), 0, 0)  # start, steps, images
  watcher = PreemptionWatcher(check_every=config.log_every_steps)
  rollbacks = 0
  while not family.finished(config, step, images):
    at, at_images, phase, local_batch = next(batches)
    assert (at, at_images) == (step, images), (at, at_images, step, images)
    if state_phase is not None and state_phase != phase.index:  # a phase ended
      write_grid(phases[state_phase])
      save_checkpoint()
      state, state_phase = family.enter_phase(model, state, phase), phase.index
    if phase.index not in specs:
      specs[phase.index] = family.train_step(model, config, phase, mesh)
    spec = specs[phase.index]
    batch = host_to_global(mesh, local_batch, example_axis=spec.example_axis)
    extras = spec.extras(images)
    rng = jax.random.fold_in(state.rng, step)
    variant = spec.variant(step)
    key = (phase.index, variant)
    if key not in compiled:
      start = time.perf_counter()
      compiled[key] = jit_train_step(spec.fn_of(variant), mesh, spec.example_axis,
                                     len(extras)).lower(state, batch, *extras, rng).compile()
      seconds = time.perf_counter() - start
      logging.info("Compiled the step of phase %d (%s%s) in %.1f s.", phase.index, phase.label,
                   f", {variant}" if variant else "", seconds)
      outputs.write_scalars(step, {"compile_seconds": seconds})
      if history is not None:
        history.append({"compiled_phase": phase.index, "seconds": seconds,
                        **({"variant": variant} if variant else {})})
      window = (time.perf_counter(), 0, 0)
      progress.restart_window(time.monotonic(), step, images)
    if history is not None:
      history.append({"step": step, "images_shown": images, "phase": phase.index,
                      **({"variant": variant} if variant else {}),
                      **family.step_record(phase, images)})
    state, metrics = compiled[key](state, batch, *extras, rng)
    step, images = step + 1, images + phase.examples_per_step
    # Per key: a metric that only some variants compute is the mean over the steps that did.
    for name, value in metrics.items():
      total, count = sums.get(name, (0, 0))
      sums[name] = (value + total, count + 1)
    window = (window[0], window[1] + 1, window[2] + phase.examples_per_step)
    if step % config.log_every_steps == 0 or family.finished(config, step, images):
      elapsed = time.perf_counter() - window[0]
      means = {k: float(total) / count for k, (total, count) in jax.device_get(sums).items()}
      status = jax.device_get(state.health)  # read only here: no extra sync per step
      line, progress_scalars = progress.update(step, images, time.monotonic())
      logging.info("%s", line)
      outputs.write_scalars(step, {
          **means, **health.log_fields(status), **phase.log_fields, **progress_scalars,
          "kimg": images / 1e3, "steps_per_sec": window[1] / elapsed,
          "images_per_sec": window[2] / elapsed})
      sums, window = {}, (time.perf_counter(), 0, 0)
      restored, rollbacks = health.enforce(status, config.train, checkpointer, state, rollbacks,
                                           step)
      if restored is not None:
        state = restored
        step, images = int(state.step), family.images_shown(config, state)
        state_phase = family.state_phase(state)
        batches = data_pipeline.prefetch(_batches(family, config, pipeline, step, images))
        progress.restart_window(time.monotonic(), step, images)
        continue
    if step % config.sample_every_steps == 0:
      write_grid(phase)
    if evaluation.due(step):
      seconds = evaluate()
      window = (window[0] + seconds, window[1], window[2])
    if checkpointer.should_save(step):
      save_checkpoint()
    if watcher.should_stop(step):
      save_checkpoint()
      if checkpointer.wait():
        logging.warning("Stopping on signal %s after step %d; checkpoint %d written (%d images "
                        "shown). Run the same command again to resume.", watcher.received, step,
                        step, images)
      break

  if step != start_step:  # the final grid, evaluation and state
    if last_grid != step:
      write_grid(phase)
    if family.finished(config, step, images) and evaluation.due_at_end(step):
      evaluate()
    save_checkpoint()
  outputs.write_text("compiles.json", json.dumps(
      {f"{index} {variant}".strip(): f"{phases[index].label} {variant}".strip()
       for index, variant in sorted(compiled)}, indent=2))
  watcher.restore_handlers()
  outputs.close()
  checkpointer.finish(step)  # raises if the last state is not on disk
  return state
