"""The BigGAN training loop: data -> sharded train step -> logs, samples, checkpoints."""

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from gan import config as config_lib
from gan.data import pipeline as data_pipeline
from gan.images import make_grid
from gan.sampling import make_sample_fn, sample_latents, standing_statistics
from gan.train.biggan_step import jit_train_step, make_train_step
from gan.train import health
from gan.train.checkpointing import Checkpointer
from gan.train.preemption import PreemptionWatcher
from gan.train.outputs import RunOutputs
from gan.train.run_config import claim_workdir
from gan.train.sharding import host_to_global, make_mesh, replicated
from gan.train.state import GAN, TrainState, build_gan, init_state
from gan.train.workdir import open_workdir


class Sampler:
  """EMA-generator sample grids at fixed z and classes (one row per class)."""

  def __init__(self, gan: GAN, config: ml_collections.ConfigDict):
    s = config.sample
    self.gan, self.config, self.rows = gan, config, s.num_classes_shown
    classes = np.linspace(0, gan.num_classes - 1, s.num_classes_shown).round().astype(np.int32)
    self.labels = jnp.asarray(np.repeat(classes, s.per_class))
    key = jax.random.PRNGKey(config.seed + 1)
    self.z = sample_latents(key, (len(self.labels), gan.z_dim), s.truncation or None)
    self.sample_fn = make_sample_fn(gan.generator)

  def grid(self, state: TrainState) -> np.ndarray:
    variables = state.ema_vars
    s = self.config.sample
    if s.standing_stats_batches > 0:
      stats = standing_statistics(
          self.gan.generator, state.ema_params, variables, jax.random.PRNGKey(self.config.seed),
          s.standing_stats_batches, len(self.labels), self.gan.z_dim, self.gan.num_classes,
          s.truncation or None)
      variables = {**variables, "batch_stats": stats}
    images = self.sample_fn(state.ema_params, variables, self.z, self.labels)
    return make_grid(np.asarray(jax.device_get(images)), rows=self.rows)


def train(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains (or resumes) the run in ``workdir``; returns the final state."""
  # Everything that can be wrong with the config or data fails here, before compiling.
  config_lib.validate(config, jax.device_count(), jax.process_count())
  pipeline = data_pipeline.create_pipeline(config, jax.process_index(), jax.process_count())
  workdir = open_workdir(workdir, jax.process_index())  # local or gs://; refuses a full disk
  is_chief = jax.process_index() == 0
  claim_workdir(workdir, config, is_chief)  # refuses a workdir of another run

  mesh = make_mesh()
  gan = build_gan(config)
  t = config.train
  state = jax.jit(lambda: init_state(gan, config.seed), out_shardings=replicated(mesh))()
  checkpointer = Checkpointer(str(workdir), config.keep_checkpoints,
                              every_steps=config.checkpoint_every_steps,
                              every_seconds=config.checkpoint_every_secs or None)
  restored, start_step = checkpointer.restore_latest(state)  # skips corrupt checkpoints
  if restored is None:
    start_step = 0
  else:
    state = restored
    logging.info("Resumed from checkpoint at step %d in %s", start_step, checkpointer.directory)

  batches = data_pipeline.prefetch(pipeline.iterate(start_step))
  writer = RunOutputs(workdir, is_chief)  # reports a failed write once, never stops the run
  sampler = Sampler(gan, config)
  train_step = jit_train_step(make_train_step(gan, config, mesh), mesh)
  images_per_step = t.d_steps * t.batch_size

  def save_samples(step: int) -> None:
    writer.save_grid(f"step_{step:08d}.png", sampler.grid(state), "samples_ema", step)

  if start_step == 0:
    save_samples(0)
  compiled = None
  metric_sums, window_start, window_steps = None, time.perf_counter(), 0
  watcher = PreemptionWatcher(check_every=config.log_every_steps)
  rollbacks, step = 0, start_step
  while step < t.num_steps:
    batch = host_to_global(mesh, next(batches), example_axis=2)
    rng = jax.random.fold_in(state.rng, step)
    if compiled is None:
      t0 = time.perf_counter()
      compiled = train_step.lower(state, batch, rng).compile()
      logging.info("Compiled the train step in %.1f s.", time.perf_counter() - t0)
      writer.write_scalars(step, {"compile_seconds": time.perf_counter() - t0})
      window_start = time.perf_counter()
    state, metrics = compiled(state, batch, rng)
    metric_sums = metrics if metric_sums is None else jax.tree.map(jnp.add, metric_sums, metrics)
    window_steps += 1
    done = step + 1
    if done % config.log_every_steps == 0 or done == t.num_steps:
      means = {k: float(v) / window_steps for k, v in jax.device_get(metric_sums).items()}
      elapsed = time.perf_counter() - window_start
      means["steps_per_sec"] = window_steps / elapsed
      means["images_per_sec"] = window_steps * images_per_step / elapsed
      status = jax.device_get(state.health)  # read only here: no extra sync per step
      writer.write_scalars(done, {**means, **health.log_fields(status)})
      metric_sums, window_start, window_steps = None, time.perf_counter(), 0
      restored, rollbacks = health.enforce(status, t, checkpointer, state, rollbacks, done)
      if restored is not None:
        state, step = restored, int(restored.step)
        batches = data_pipeline.prefetch(pipeline.iterate(step))
        continue
    if done % config.sample_every_steps == 0 or done == t.num_steps:
      save_samples(done)
    if checkpointer.should_save(done) or done == t.num_steps:
      checkpointer.save(done, state)
    step = done
    if watcher.should_stop(done):
      if checkpointer.latest_step() != done:
        checkpointer.save(done, state)
      if checkpointer.wait():
        logging.warning("Stopping on signal %s after step %d; checkpoint %d written. Run the "
                        "same command again to resume.", watcher.received, done, done)
      break
  watcher.restore_handlers()
  writer.close()
  checkpointer.finish(step)  # raises if the last state is not on disk
  return state
