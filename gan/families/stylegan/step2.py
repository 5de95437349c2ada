"""StyleGAN2's state and train step (stylegan2-ada-pytorch's training loop and loss).

One step is one iteration of the reference: G main (non-saturating logistic on
fresh fakes), then, every ``pl_interval`` steps, G's path-length step; D main
(logistic on reals and on fresh fakes of the updated G, scored in separate
passes so minibatch-stddev groups never mix them), then, every ``r1_interval``
steps, D's R1 step on the same reals; then G's EMA. A regulariser with
interval 1 is added to its main loss instead (the reference's "both" phases).
Lazy steps are their own Adam updates on (regulariser x interval), sharing the
main step's Adam state, with lr and betas adjusted (regularizers.lazy_adam).
Whether a step regularises is a compile-time variant (``variant_at``): a run
compiles at most four step functions.

Every G forward in training moves the tracked average w (the mixing latents'
mapping does not), as the reference's mapping network does in training mode.
"""

import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from gan import losses
from gan.families import interface as kit
from gan.families.stylegan import discriminator2, networks2, regularizers, styles

Pytree = Any


@flax.struct.dataclass
class StyleGAN2State:
  """step counts iterations (one G and one D main step each); w_avg is the tracked
  average w (truncation's centre, shared by G and its EMA as the reference copies it);
  pl_mean the running mean path length; health counts skipped non-finite updates."""
  step: jax.Array
  rng: jax.Array
  g_params: Pytree
  d_params: Pytree
  g_opt_state: Pytree
  d_opt_state: Pytree
  ema_params: Pytree
  w_avg: jax.Array
  pl_mean: jax.Array
  health: Pytree


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity (eval caches)
class StyleGAN2:
  """The static half of a run: modules, optimisers and the sizes steps need."""
  generator: networks2.Generator
  discriminator: discriminator2.Discriminator
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  config: ml_collections.ConfigDict
  num_ws: int
  num_classes: int  # 0: unconditional

  @property
  def z_dim(self) -> int:
    return self.generator.z_dim

  def map(self, params, z: jax.Array, labels) -> jax.Array:
    """z (N, z_dim), labels (N,) or None -> w (N, w_dim)."""
    return self.generator.apply({"params": params}, z, labels, method=networks2.Generator.map)

  def synthesize(self, params, ws: jax.Array, noise_key=None) -> jax.Array:
    """ws (N, num_ws, w_dim) -> images (N, R, R, 3); noise_key None: the fixed noise."""
    mode, rngs = ("const", {}) if noise_key is None else ("random", {"noise": noise_key})
    return self.generator.apply({"params": params}, ws, mode, rngs=rngs,
                                method=networks2.Generator.synthesize)

  def discriminate(self, params, images: jax.Array, labels) -> jax.Array:
    return self.discriminator.apply({"params": params}, images, labels)


def build(config: ml_collections.ConfigDict) -> StyleGAN2:
  m, t = config.model, config.train
  num_classes = config.data.num_classes if config.data.num_classes > 1 else 0
  generator = networks2.Generator(
      z_dim=m.z_dim, w_dim=m.w_dim, resolution=m.resolution, num_classes=num_classes,
      mapping_layers=m.mapping_layers, mapping_lr_multiplier=m.mapping_lr_multiplier,
      channel_base=m.channel_base, channel_max=m.channel_max, architecture=m.g_architecture,
      conv_clamp=m.conv_clamp or None, num_bf16_res=m.num_bf16_res)
  discriminator = discriminator2.Discriminator(
      resolution=m.resolution, num_classes=num_classes, channel_base=m.channel_base,
      channel_max=m.channel_max, mbstd_group_size=m.mbstd_group_size,
      mbstd_num_channels=m.mbstd_num_channels, architecture=m.d_architecture,
      mapping_layers=m.d_mapping_layers, mapping_lr_multiplier=m.mapping_lr_multiplier,
      conv_clamp=m.conv_clamp or None, num_bf16_res=m.num_bf16_res)
  g_interval = t.pl_interval if t.pl_weight > 0 else 1
  d_interval = t.r1_interval if t.r1_gamma > 0 else 1
  adam = regularizers.lazy_adam
  return StyleGAN2(
      generator, discriminator,
      g_tx=adam(t.g_lr, t.adam_b1, t.adam_b2, t.adam_eps, g_interval),
      d_tx=adam(t.d_lr, t.adam_b1, t.adam_b2, t.adam_eps, d_interval),
      config=config, num_ws=networks2.SynthesisNetwork.count_ws(m.resolution),
      num_classes=num_classes)


def init_state(gan: StyleGAN2, seed: int) -> StyleGAN2State:
  """Fresh state, deterministic in ``seed``; w_avg starts at zero as in the reference."""
  g_key, d_key, noise_key, run_key = jax.random.split(jax.random.PRNGKey(seed), 4)
  m = gan.config.model
  z = jnp.zeros((2, m.z_dim), jnp.float32)
  labels = jnp.zeros((2,), jnp.int32) if gan.num_classes else None
  images = jnp.zeros((2, m.resolution, m.resolution, 3), jnp.float32)
  g_params = gan.generator.init({"params": g_key, "noise": noise_key}, z, labels)["params"]
  d_params = gan.discriminator.init(d_key, images, labels)["params"]
  return StyleGAN2State(
      step=jnp.zeros((), jnp.int32), rng=run_key, g_params=g_params, d_params=d_params,
      g_opt_state=gan.g_tx.init(g_params), d_opt_state=gan.d_tx.init(d_params),
      ema_params=g_params, w_avg=jnp.zeros((m.w_dim,), jnp.float32),
      pl_mean=jnp.zeros((), jnp.float32), health=kit.init_health())


def variant_at(config, step: int) -> str:
  """Which lazy regularisers step ``step`` runs: '', 'pl', 'r1' or 'pl+r1'."""
  t = config.train
  names = []
  if t.pl_weight > 0 and t.pl_interval > 1 and step % t.pl_interval == 0:
    names.append("pl")
  if t.r1_gamma > 0 and t.r1_interval > 1 and step % t.r1_interval == 0:
    names.append("r1")
  return "+".join(names)


def make_train_step(gan: StyleGAN2, mesh: Mesh, variant: str = ""):
  """(state, {'image': uint8 (B, R, R, 3), 'label': int32 (B,)}, rng) -> (state, metrics)."""
  t, m = gan.config.train, gan.config.model
  batch = t.batch_size
  lazy_pl, lazy_r1 = "pl" in variant.split("+"), "r1" in variant.split("+")
  fused_pl = t.pl_weight > 0 and t.pl_interval == 1
  fused_r1 = t.r1_gamma > 0 and t.r1_interval == 1
  shard = lambda x: jax.lax.with_sharding_constraint(x, kit.batch_sharding(mesh))
  inject_steps = kit.parse_steps(t.inject_nonfinite_steps)

  def latents(g_params, key, count, w_avg):
    """Mapped (and mixed) ws of ``count`` fresh latents, their labels, the moved w_avg."""
    return styles.training_ws(lambda z, labels: gan.map(g_params, z, labels), key, count,
                              m.z_dim, gan.num_classes, gan.num_ws, t.style_mixing_prob, w_avg,
                              m.w_avg_beta, shard)

  def generate(g_params, key, count, w_avg):
    latent_key, noise_key = jax.random.split(key)
    ws, labels, w_avg = latents(g_params, latent_key, count, w_avg)
    return gan.synthesize(g_params, ws, noise_key), labels, w_avg

  def path_length_loss(g_params, key, w_avg, pl_mean, gain):
    latent_key, noise_key, direction_key = jax.random.split(key, 3)
    ws, _, w_avg = latents(g_params, latent_key, batch // t.pl_batch_shrink, w_avg)
    lengths, _ = regularizers.path_lengths(
        lambda w: gan.synthesize(g_params, w, noise_key), ws, direction_key)
    penalty, pl_mean = regularizers.path_length_penalty(lengths, pl_mean, t.pl_decay)
    loss = jnp.mean(penalty) * t.pl_weight * gain
    return loss, ({"pl_penalty": jnp.mean(penalty), "pl_length": jnp.mean(lengths)},
                  w_avg, pl_mean)

  def g_main_loss(g_params, d_params, key, w_avg, pl_mean):
    main_key, pl_key = jax.random.split(key)
    fakes, labels, w_avg = generate(g_params, main_key, batch, w_avg)
    loss = jnp.mean(jax.nn.softplus(-gan.discriminate(d_params, fakes, labels)))
    metrics = {"g_loss": loss}
    if fused_pl:
      pl_loss, (pl_metrics, w_avg, pl_mean) = path_length_loss(g_params, pl_key, w_avg,
                                                               pl_mean, 1.0)
      loss, metrics = loss + pl_loss, {**metrics, **pl_metrics}
    return loss, (metrics, w_avg, pl_mean)

  def r1_loss(d_params, reals, labels, gain):
    penalty, real_scores = losses.r1_penalty(
        lambda x: gan.discriminate(d_params, x, labels), reals)
    return jnp.mean(penalty) * (t.r1_gamma / 2) * gain, (jnp.mean(penalty), real_scores)

  def d_main_loss(d_params, reals, labels, fakes, fake_labels, fault):
    fake_scores = gan.discriminate(d_params, fakes, fake_labels)
    metrics = {}
    if fused_r1:
      r1, (penalty, real_scores) = r1_loss(d_params, reals, labels, 1.0)
      metrics["r1_penalty"] = penalty
    else:
      real_scores = gan.discriminate(d_params, reals, labels)
    loss_fake = jnp.mean(jax.nn.softplus(fake_scores))
    loss_real = jnp.mean(jax.nn.softplus(-real_scores))
    loss = (loss_fake + loss_real) * fault  # fault: NaN at config.train.inject_nonfinite_steps
    metrics.update(d_loss=loss, d_loss_real=loss_real, d_loss_fake=loss_fake,
                   d_real=jnp.mean(real_scores), d_fake=jnp.mean(fake_scores))
    return (loss + r1 if fused_r1 else loss), metrics

  def adam_step(tx, grads, opt_state, params):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  def train_step(state: StyleGAN2State, batch_in: dict, rng: jax.Array):
    g_key, pl_key, d_key = jax.random.split(rng, 3)
    reals = kit.to_float_images(batch_in["image"])
    labels = batch_in["label"] if gan.num_classes else None

    (_, (metrics, w_avg, pl_mean)), g_grads = jax.value_and_grad(g_main_loss, has_aux=True)(
        state.g_params, state.d_params, g_key, state.w_avg, state.pl_mean)
    g_params, g_opt_state = adam_step(gan.g_tx, g_grads, state.g_opt_state, state.g_params)
    metrics["g_grad_norm"] = optax.global_norm(g_grads)
    if lazy_pl:
      (_, (pl_metrics, w_avg, pl_mean)), pl_grads = jax.value_and_grad(
          path_length_loss, has_aux=True)(g_params, pl_key, w_avg, pl_mean,
                                          float(t.pl_interval))
      g_params, g_opt_state = adam_step(gan.g_tx, pl_grads, g_opt_state, g_params)
      metrics.update(pl_metrics, pl_grad_norm=optax.global_norm(pl_grads))

    fake_key, r1_key = jax.random.split(d_key)
    fakes, fake_labels, w_avg = generate(g_params, fake_key, batch, w_avg)
    fakes = jax.lax.stop_gradient(fakes)
    (_, d_metrics), d_grads = jax.value_and_grad(d_main_loss, has_aux=True)(
        state.d_params, reals, labels, fakes, fake_labels,
        kit.injected_factor(state.step, inject_steps))
    d_params, d_opt_state = adam_step(gan.d_tx, d_grads, state.d_opt_state, state.d_params)
    metrics.update(d_metrics, d_grad_norm=optax.global_norm(d_grads))
    if lazy_r1:
      (_, (penalty, _)), r1_grads = jax.value_and_grad(r1_loss, has_aux=True)(
          d_params, reals, labels, float(t.r1_interval))
      d_params, d_opt_state = adam_step(gan.d_tx, r1_grads, d_opt_state, d_params)
      metrics.update(r1_penalty=penalty, r1_grad_norm=optax.global_norm(r1_grads))

    beta = styles.ema_beta(batch, t.ema_kimg, state.step * batch, t.ema_rampup)
    new_state = state.replace(
        step=state.step + 1, g_params=g_params, d_params=d_params, g_opt_state=g_opt_state,
        d_opt_state=d_opt_state, ema_params=kit.ema_update(state.ema_params, g_params, beta),
        w_avg=w_avg, pl_mean=pl_mean)
    metrics.update(ema_beta=beta, w_avg_norm=jnp.linalg.norm(w_avg))
    # A non-finite loss or gradient: keep the old state (the batch is skipped), count it.
    return kit.guard(state, new_state, metrics, state.step), metrics

  return train_step
