"""The ProGAN training loop: schedule -> per-phase compiled steps -> logs, samples, checkpoints.

Progress is counted in real images shown; ``state.images_shown`` alone fixes
the phase (resolution, fade or stable, batch size, learning rate) and alpha,
so a run resumed from any checkpoint, mid-fade included, continues exactly
where it stopped. Each phase's step is compiled once, when the phase starts,
and its compile time is logged; compiled executables never recompile.
"""

import json
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from gan import config as config_lib
from gan.data import pipeline as data_pipeline
from gan.images import make_grid
from gan.train import health, progan_step
from gan.train.checkpointing import Checkpointer
from gan.train.preemption import PreemptionWatcher
from gan.train.outputs import RunOutputs
from gan.train.run_config import claim_workdir
from gan.train.progan_schedule import Phase, Schedule
from gan.train.sharding import host_to_global, make_mesh, replicated
from gan.train.workdir import open_workdir


def _batches(pipeline: data_pipeline.Pipeline, schedule: Schedule, images_shown: int):
  """Yields (images_shown, phase, this process's uint8 images) from ``images_shown`` on."""
  while True:
    phase = schedule.phase_at(images_shown)
    positions = pipeline.host_positions(images_shown, phase.batch_size)
    yield images_shown, phase, pipeline.examples(positions, resolution=phase.resolution)["image"]
    images_shown += phase.batch_size


def train(config: ml_collections.ConfigDict, workdir: str,
          history: list | None = None) -> progan_step.ProganState:
  """Trains (or resumes) the run in ``workdir``; returns the final state.

  ``history``, if given, receives one dict per step (images_shown, phase,
  resolution, kind, alpha) and one per compilation (compiled_phase, seconds).
  """
  config_lib.validate(config, jax.device_count(), jax.process_count())
  schedule = Schedule.from_config(config)
  source = data_pipeline.create_source(config)  # at the final resolution
  pipeline = data_pipeline.Pipeline(
      source, seed=config.seed, micro_batch=jax.process_count(), random_flip=config.data.random_flip,
      process_index=jax.process_index(), process_count=jax.process_count())
  largest = max(schedule.phases, key=lambda phase: phase.batch_size)
  pipeline.require_examples(largest.batch_size, f"the batch {largest.batch_size} at "
                            f"{largest.resolution}x{largest.resolution}")
  workdir = open_workdir(workdir, jax.process_index())  # local or gs://; refuses a full disk
  is_chief = jax.process_index() == 0
  claim_workdir(workdir, config, is_chief)  # refuses a workdir of another run
  logging.info("ProGAN schedule:\n%s", schedule.describe())

  mesh = make_mesh()
  gan = progan_step.build_progan(config)
  state = jax.jit(lambda: progan_step.init_state(gan, config.seed, schedule.phases[0]),
                  out_shardings=replicated(mesh))()
  checkpointer = Checkpointer(str(workdir), config.keep_checkpoints,
                              every_steps=config.checkpoint_every_steps,
                              every_seconds=config.checkpoint_every_secs or None)
  restored, _ = checkpointer.restore_latest(state)  # skips corrupt checkpoints
  if restored is not None:
    state = restored
  images_shown, step = int(state.images_shown), int(state.step)
  start_step = step
  if step:
    logging.info("Resumed at step %d, %d images shown: %s, alpha %.4f", step, images_shown,
                 schedule.phase_at(images_shown), schedule.alpha(images_shown))

  writer = RunOutputs(workdir, is_chief)  # reports a failed write once, never stops the run
  s = config.sample
  z_fixed = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (s.rows * s.cols, gan.latent_dim))
  sample = progan_step.sample_fn(gan)

  def save_samples(phase: Phase, at_images: int) -> None:
    alpha = jnp.float32(schedule.alpha(at_images)) if phase.fading else None
    grid = make_grid(np.asarray(jax.device_get(
        sample(state.ema_params, z_fixed, phase.resolution, alpha))), rows=s.rows)
    name = f"step_{step:08d}_{phase.resolution}x{phase.resolution}_{phase.kind}.png"
    writer.save_grid(name, grid, f"samples_ema_{phase.resolution}", step)

  saved = {checkpointer.latest_step()}

  def save_checkpoint() -> None:
    # A phase end can coincide with checkpoint_every_steps: save each step once.
    if step not in saved and checkpointer.save(step, state):
      saved.add(step)

  reset = jax.jit(lambda st, index: progan_step.reset_optimizers(gan, st, schedule.phases[index]),
                  static_argnums=1, out_shardings=replicated(mesh), donate_argnums=0)
  compiled, sums, window = {}, None, (time.perf_counter(), 0, 0)
  batches = data_pipeline.prefetch(_batches(pipeline, schedule, images_shown))
  phase = schedule.phase_at(images_shown)
  watcher = PreemptionWatcher(check_every=config.log_every_steps)
  rollbacks, t = 0, config.train
  while images_shown < schedule.total_images and not 0 < config.train.max_steps <= step:
    at, phase, local_images = next(batches)
    assert at == images_shown, (at, images_shown)
    if int(state.opt_phase) != phase.index:  # A phase boundary: close the previous phase.
      previous = schedule.phases[int(state.opt_phase)]
      save_samples(previous, images_shown - 1)
      save_checkpoint()
      if config.train.reset_optimizer:
        state = reset(state, phase.index)
      else:
        state = state.replace(opt_phase=jnp.asarray(phase.index, jnp.int32))
    alpha = jnp.float32(schedule.alpha(images_shown))
    images = host_to_global(mesh, local_images, example_axis=0)
    rng = jax.random.fold_in(state.rng, step)
    if phase.index not in compiled:
      start = time.perf_counter()
      step_fn = progan_step.jit_train_step(progan_step.make_train_step(gan, phase, mesh), mesh)
      compiled[phase.index] = step_fn.lower(state, images, alpha, rng).compile()
      seconds = time.perf_counter() - start
      logging.info("Compiled the step of phase %d (%s) in %.1f s.", phase.index, phase, seconds)
      writer.write_scalars(step, {"compile_seconds": seconds})
      if history is not None:
        history.append({"compiled_phase": phase.index, "seconds": seconds})
      window = (time.perf_counter(), 0, 0)
    if history is not None:
      history.append({"step": step, "images_shown": images_shown, "phase": phase.index,
                      "resolution": phase.resolution, "kind": phase.kind, "alpha": float(alpha)})
    state, metrics = compiled[phase.index](state, images, alpha, rng)
    images_shown += phase.batch_size
    step += 1
    sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
    window = (window[0], window[1] + 1, window[2] + phase.batch_size)
    if step % config.log_every_steps == 0:
      elapsed = time.perf_counter() - window[0]
      means = {k: float(v) / window[1] for k, v in jax.device_get(sums).items()}
      status = jax.device_get(state.health)  # read only here: no extra sync per step
      writer.write_scalars(step, {**means, **health.log_fields(status),
                                  "resolution": phase.resolution,
                                  "batch_size": phase.batch_size, "kimg": images_shown / 1e3,
                                  "images_per_sec": window[2] / elapsed})
      sums, window = None, (time.perf_counter(), 0, 0)
      restored, rollbacks = health.enforce(status, t, checkpointer, state, rollbacks, step)
      if restored is not None:
        state = restored
        images_shown, step = int(state.images_shown), int(state.step)
        batches = data_pipeline.prefetch(_batches(pipeline, schedule, images_shown))
        continue
    if step % config.sample_every_steps == 0:
      save_samples(phase, images_shown - 1)
    if checkpointer.should_save(step):
      save_checkpoint()
    if watcher.should_stop(step):
      save_checkpoint()
      if checkpointer.wait():
        logging.warning("Stopping on signal %s after step %d (%d images shown); checkpoint "
                        "written. Run the same command again to resume.", watcher.received,
                        step, images_shown)
      break

  if step != start_step:  # The final phase's grid, and the final state.
    if step % config.sample_every_steps:
      save_samples(phase, images_shown - 1)
    save_checkpoint()
  writer.write_text("compiles.json", json.dumps(
      {str(k): str(schedule.phases[k]) for k in sorted(compiled)}, indent=2))
  watcher.restore_handlers()
  writer.close()
  checkpointer.finish(step)  # raises if the last state is not on disk
  return state
