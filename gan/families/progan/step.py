"""ProGAN's state and its train step, built once per (resolution, phase).

One parameter tree holds every resolution's layers for the whole run; a
step at resolution R touches only the layers up to R (and, while fading in,
R/2's toRGB/fromRGB), so the others get zero gradients and stay unchanged.
Each schedule phase gets its own step function: the resolution, whether it
fades, the batch size and the learning rates are compile-time constants,
and alpha is a traced argument, so one compiled step serves a whole fade.

Per step, as in the official code: one D update on reals and fresh fakes
(loss + gp_weight * gradient penalty + drift * D(real)^2), then one G update
on fresh latents, then the EMA of G (decay per step).
"""

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from gan import losses
from gan.families import interface as kit
from gan.families.progan.model import Discriminator, Generator
from gan.growth.reals import blend_fade_in
from gan.growth.schedule import Phase

Pytree = Any


@flax.struct.dataclass
class ProganState:
  """images_shown counts real images shown to D; it alone fixes the phase and alpha.

  opt_phase is the schedule phase the optimiser states belong to (they are
  reset when the phase changes, if config.train.reset_optimizer). health
  counts skipped non-finite updates (gan/train/health.py).
  """
  step: jax.Array
  images_shown: jax.Array
  opt_phase: jax.Array
  rng: jax.Array
  g_params: Pytree
  d_params: Pytree
  g_opt_state: Pytree
  d_opt_state: Pytree
  ema_params: Pytree
  health: Pytree


@dataclasses.dataclass(frozen=True)
class Progan:
  """The static half of a run: the two modules and the optimiser settings."""
  generator: Generator
  discriminator: Discriminator
  config: ml_collections.ConfigDict

  def optimizer(self, learning_rate: float) -> optax.GradientTransformation:
    t = self.config.train
    return optax.adam(learning_rate, b1=t.adam_b1, b2=t.adam_b2, eps=t.adam_eps)

  @property
  def latent_dim(self) -> int:
    return self.generator.latent_dim


def build_progan(config: ml_collections.ConfigDict) -> Progan:
  m = config.model
  common = dict(max_resolution=m.resolution, fmap_base=m.fmap_base, fmap_max=m.fmap_max,
                fmap_decay=m.fmap_decay)
  return Progan(
      Generator(latent_dim=m.latent_dim, normalize_latents=m.normalize_latents, **common),
      Discriminator(mbstd_group_size=m.mbstd_group_size, **common), config)


def init_state(gan: Progan, seed: int, first_phase: Phase) -> ProganState:
  """Every resolution's parameters, and optimiser states for ``first_phase``."""
  g_key, d_key, run_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  resolution = gan.generator.max_resolution
  g_params = gan.generator.init(g_key, jnp.zeros((4, gan.latent_dim)),
                                method=Generator.init_all)["params"]
  d_params = gan.discriminator.init(d_key, jnp.zeros((4, resolution, resolution, 3)),
                                    method=Discriminator.init_all)["params"]
  return ProganState(
      step=jnp.zeros((), jnp.int32), images_shown=jnp.zeros((), jnp.int32),
      opt_phase=jnp.asarray(first_phase.index, jnp.int32), rng=run_key,
      g_params=g_params, d_params=d_params,
      g_opt_state=gan.optimizer(first_phase.g_lr).init(g_params),
      d_opt_state=gan.optimizer(first_phase.d_lr).init(d_params), ema_params=g_params,
      health=kit.init_health())


def reset_optimizers(gan: Progan, state: ProganState, phase: Phase) -> ProganState:
  """Fresh Adam moments and counts for ``phase`` (the official code's default)."""
  return state.replace(g_opt_state=gan.optimizer(phase.g_lr).init(state.g_params),
                       d_opt_state=gan.optimizer(phase.d_lr).init(state.d_params),
                       opt_phase=jnp.asarray(phase.index, jnp.int32))


def make_train_step(gan: Progan, phase: Phase, mesh: Mesh) -> Callable:
  """(state, images uint8 (B, R, R, 3), alpha f32 (), rng) -> (state, metrics)."""
  t = gan.config.train
  resolution, batch = phase.resolution, phase.batch_size
  g_tx, d_tx = gan.optimizer(phase.g_lr), gan.optimizer(phase.d_lr)
  shard = lambda x: jax.lax.with_sharding_constraint(x, kit.batch_sharding(mesh))
  inject_steps = kit.parse_steps(t.inject_nonfinite_steps)

  def generate(g_params, key, alpha):
    z = shard(jax.random.normal(key, (batch, gan.latent_dim), jnp.float32))
    return gan.generator.apply({"params": g_params}, z, resolution, alpha)

  def discriminate(d_params, images, alpha):
    return gan.discriminator.apply({"params": d_params}, images, resolution, alpha)

  def d_loss_fn(d_params, reals, fakes, alpha, gp_key, fault):
    # Reals and fakes go through D separately, so minibatch-stddev groups never mix them.
    real_scores = discriminate(d_params, reals, alpha)
    fake_scores = discriminate(d_params, fakes, alpha)
    # fault: 1, or NaN at config.train.inject_nonfinite_steps.
    loss = jnp.mean(losses.d_loss_terms(t.loss, real_scores, fake_scores)) * fault
    metrics = {"d_loss": loss, "d_real": jnp.mean(real_scores), "d_fake": jnp.mean(fake_scores)}
    if t.gp_weight > 0:
      penalty, norms = losses.gradient_penalty(
          lambda x: discriminate(d_params, x, alpha), reals, fakes, gp_key, t.gp_target)
      loss += t.gp_weight * jnp.mean(penalty)
      metrics.update(gradient_penalty=jnp.mean(penalty), d_grad_norm_at_mix=jnp.mean(norms))
    if t.drift > 0:
      drift = jnp.mean(losses.drift_penalty(real_scores))
      loss += t.drift * drift
      metrics["drift"] = drift
    return loss, metrics

  def g_loss_fn(g_params, d_params, key, alpha):
    fakes = generate(g_params, key, alpha)
    loss = losses.g_loss(t.loss, discriminate(d_params, fakes, alpha))
    return loss, {"g_loss": loss}

  def train_step(state: ProganState, images: jax.Array, alpha: jax.Array, rng: jax.Array):
    fade = alpha if phase.fading else None  # stable phases compile without the old path
    d_key, gp_key, g_key = jax.random.split(rng, 3)
    reals = kit.to_float_images(images)
    if phase.fading:  # The reals fade in exactly like G's output (gan/growth/reals.py).
      reals = blend_fade_in(reals, alpha)
    fakes = jax.lax.stop_gradient(generate(state.g_params, d_key, fade))
    (_, d_metrics), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
        state.d_params, reals, fakes, fade, gp_key,
        kit.injected_factor(state.step, inject_steps))
    d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    (_, g_metrics), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
        state.g_params, d_params, g_key, fade)
    g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    new_state = state.replace(
        step=state.step + 1, images_shown=state.images_shown + batch,
        g_params=g_params, d_params=d_params, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
        ema_params=kit.ema_update(state.ema_params, g_params, t.ema_decay))
    metrics = {**d_metrics, **g_metrics, "alpha": alpha,
               "d_grad_norm": optax.global_norm(d_grads),
               "g_grad_norm": optax.global_norm(g_grads)}
    # A non-finite loss or gradient: keep the old state (the batch is skipped), count it.
    return kit.guard(state, new_state, metrics, state.step), metrics

  return train_step


def sample_fn(gan: Progan) -> Callable:
  """(ema_params, z, resolution, alpha | None) -> images in [-1, 1] (clipped), jitted."""
  def sample(params, z, resolution, alpha):
    return jnp.clip(gan.generator.apply({"params": params}, z, resolution, alpha), -1, 1)
  return jax.jit(sample, static_argnums=(2,))
