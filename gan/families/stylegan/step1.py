"""StyleGAN (v1)'s state and its train step, built once per (resolution, phase).

As NVlabs/stylegan's training loop: per step one D update on reals and fresh fakes
(non-saturating logistic, D_logistic_simplegp: + gamma / 2 * R1 on the reals, every
step), then one G update on fresh latents (G_logistic_nonsaturating), then G's EMA
with a half-life of ema_kimg thousand images (its decay depends on the phase's
batch size, so it is a constant of the phase's step). Style mixing crosses over
within the layers the current resolution uses (the reference's cur_layers); every
G forward in training moves the tracked average w. One parameter tree holds every
resolution's layers; alpha is traced, so one compiled step serves a whole fade.
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
from gan.families.stylegan import networks1, styles
from gan.families.stylegan.config2 import num_ws as count_ws
from gan.growth.reals import blend_fade_in
from gan.growth.schedule import Phase

Pytree = Any


@flax.struct.dataclass
class StyleGANState:
  """images_shown alone fixes the phase and alpha; opt_phase is the schedule phase the
  Adam states belong to; w_avg the tracked average w; health the skipped updates."""
  step: jax.Array
  images_shown: jax.Array
  opt_phase: jax.Array
  rng: jax.Array
  g_params: Pytree
  d_params: Pytree
  g_opt_state: Pytree
  d_opt_state: Pytree
  ema_params: Pytree
  w_avg: jax.Array
  health: Pytree


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity (eval caches)
class StyleGAN:
  """The static half of a run: the two modules and the optimiser settings."""
  generator: networks1.GeneratorV1
  discriminator: networks1.DiscriminatorV1
  config: ml_collections.ConfigDict
  num_classes: int  # 0: unconditional

  def optimizer(self, learning_rate: float) -> optax.GradientTransformation:
    t = self.config.train
    return optax.adam(learning_rate, b1=t.adam_b1, b2=t.adam_b2, eps=t.adam_eps)

  @property
  def z_dim(self) -> int:
    return self.generator.z_dim

  @property
  def num_ws(self) -> int:
    return self.generator.num_ws

  def map(self, params, z: jax.Array, labels) -> jax.Array:
    """z (N, z_dim), labels (N,) or None -> w (N, w_dim)."""
    return self.generator.apply({"params": params}, z, labels,
                                method=networks1.GeneratorV1.map)

  def synthesize(self, params, ws, resolution: int, alpha, noise_key=None) -> jax.Array:
    """ws (N, num_ws, w_dim) -> images (N, r, r, 3) at stage ``resolution``; noise_key
    None: the fixed noise."""
    mode, rngs = ("const", {}) if noise_key is None else ("random", {"noise": noise_key})
    return self.generator.apply({"params": params}, ws, resolution, alpha, mode, rngs=rngs,
                                method=networks1.GeneratorV1.synthesize)

  def discriminate(self, params, images, resolution: int, alpha, labels) -> jax.Array:
    return self.discriminator.apply({"params": params}, images, resolution, alpha, labels)


def build(config: ml_collections.ConfigDict) -> StyleGAN:
  m = config.model
  num_classes = config.data.num_classes if config.data.num_classes > 1 else 0
  common = dict(max_resolution=m.resolution, fmap_base=m.fmap_base, fmap_max=m.fmap_max,
                fmap_decay=m.fmap_decay)
  generator = networks1.GeneratorV1(
      z_dim=m.z_dim, w_dim=m.w_dim, num_classes=num_classes, mapping_layers=m.mapping_layers,
      mapping_lr_multiplier=m.mapping_lr_multiplier, **common)
  discriminator = networks1.DiscriminatorV1(num_classes=num_classes,
                                            mbstd_group_size=m.mbstd_group_size, **common)
  return StyleGAN(generator, discriminator, config, num_classes)


def init_state(gan: StyleGAN, seed: int, first_phase: Phase) -> StyleGANState:
  """Every resolution's parameters, and Adam states for ``first_phase``."""
  g_key, d_key, run_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  m = gan.config.model
  labels = jnp.zeros((4,), jnp.int32) if gan.num_classes else None
  g_params = gan.generator.init(g_key, jnp.zeros((4, m.z_dim)), labels,
                                method=networks1.GeneratorV1.init_all)["params"]
  d_params = gan.discriminator.init(d_key, jnp.zeros((4, m.resolution, m.resolution, 3)),
                                    labels, method=networks1.DiscriminatorV1.init_all)["params"]
  return StyleGANState(
      step=jnp.zeros((), jnp.int32), images_shown=jnp.zeros((), jnp.int32),
      opt_phase=jnp.asarray(first_phase.index, jnp.int32), rng=run_key,
      g_params=g_params, d_params=d_params,
      g_opt_state=gan.optimizer(first_phase.g_lr).init(g_params),
      d_opt_state=gan.optimizer(first_phase.d_lr).init(d_params), ema_params=g_params,
      w_avg=jnp.zeros((m.w_dim,), jnp.float32), health=kit.init_health())


def reset_optimizers(gan: StyleGAN, state: StyleGANState, phase: Phase) -> StyleGANState:
  """Fresh Adam moments and counts for ``phase`` (reset_opt_for_new_lod, the default)."""
  return state.replace(g_opt_state=gan.optimizer(phase.g_lr).init(state.g_params),
                       d_opt_state=gan.optimizer(phase.d_lr).init(state.d_params),
                       opt_phase=jnp.asarray(phase.index, jnp.int32))


def make_train_step(gan: StyleGAN, phase: Phase, mesh: Mesh) -> Callable:
  """(state, {'image': uint8 (B, r, r, 3), 'label': (B,)}, alpha f32 (), rng) -> (state, metrics)."""
  t, m = gan.config.train, gan.config.model
  resolution, batch = phase.resolution, phase.batch_size
  g_tx, d_tx = gan.optimizer(phase.g_lr), gan.optimizer(phase.d_lr)
  shard = lambda x: jax.lax.with_sharding_constraint(x, kit.batch_sharding(mesh))
  inject_steps = kit.parse_steps(t.inject_nonfinite_steps)
  active_layers = count_ws(resolution)  # the w's stage ``resolution`` reads
  ema_beta = styles.ema_beta(batch, t.ema_kimg, 0)

  def generate(g_params, key, alpha, w_avg):
    latent_key, noise_key = jax.random.split(key)
    ws, labels, w_avg = styles.training_ws(
        lambda z, labels: gan.map(g_params, z, labels), latent_key, batch, m.z_dim,
        gan.num_classes, gan.num_ws, t.style_mixing_prob, w_avg, m.w_avg_beta, shard,
        active_layers)
    return gan.synthesize(g_params, ws, resolution, alpha, noise_key), labels, w_avg

  def d_loss_fn(d_params, reals, labels, fakes, fake_labels, alpha, fault):
    # Reals and fakes go through D separately, so minibatch-stddev groups never mix them.
    fake_scores = gan.discriminate(d_params, fakes, resolution, alpha, fake_labels)
    if t.r1_gamma > 0:
      penalty, real_scores = losses.r1_penalty(
          lambda x: gan.discriminate(d_params, x, resolution, alpha, labels), reals)
    else:
      real_scores = gan.discriminate(d_params, reals, resolution, alpha, labels)
    loss_fake = jnp.mean(jax.nn.softplus(fake_scores))
    loss_real = jnp.mean(jax.nn.softplus(-real_scores))
    loss = (loss_fake + loss_real) * fault  # fault: NaN at config.train.inject_nonfinite_steps
    metrics = {"d_loss": loss, "d_loss_real": loss_real, "d_loss_fake": loss_fake,
               "d_real": jnp.mean(real_scores), "d_fake": jnp.mean(fake_scores)}
    if t.r1_gamma > 0:
      metrics["r1_penalty"] = jnp.mean(penalty)
      loss = loss + jnp.mean(penalty) * (t.r1_gamma / 2)
    return loss, metrics

  def g_loss_fn(g_params, d_params, key, alpha, w_avg):
    fakes, labels, w_avg = generate(g_params, key, alpha, w_avg)
    loss = jnp.mean(jax.nn.softplus(-gan.discriminate(d_params, fakes, resolution, alpha,
                                                      labels)))
    return loss, ({"g_loss": loss}, w_avg)

  def train_step(state: StyleGANState, batch_in: dict, alpha: jax.Array, rng: jax.Array):
    fade = alpha if phase.fading else None  # stable phases compile without the old path
    d_key, g_key = jax.random.split(rng)
    reals = kit.to_float_images(batch_in["image"])
    if phase.fading:  # the reals fade in exactly like G's output (gan/growth/reals.py)
      reals = blend_fade_in(reals, alpha)
    labels = batch_in["label"] if gan.num_classes else None
    fakes, fake_labels, w_avg = generate(state.g_params, d_key, fade, state.w_avg)
    (_, d_metrics), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
        state.d_params, reals, labels, jax.lax.stop_gradient(fakes), fake_labels, fade,
        kit.injected_factor(state.step, inject_steps))
    d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    (_, (g_metrics, w_avg)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
        state.g_params, d_params, g_key, fade, w_avg)
    g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    new_state = state.replace(
        step=state.step + 1, images_shown=state.images_shown + batch,
        g_params=g_params, d_params=d_params, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
        ema_params=kit.ema_update(state.ema_params, g_params, ema_beta), w_avg=w_avg)
    metrics = {**d_metrics, **g_metrics, "alpha": alpha,
               "d_grad_norm": optax.global_norm(d_grads),
               "g_grad_norm": optax.global_norm(g_grads)}
    # A non-finite loss or gradient: keep the old state (the batch is skipped), count it.
    return kit.guard(state, new_state, metrics, state.step), metrics

  return train_step
