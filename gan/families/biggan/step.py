"""The BigGAN train step: ``(state, batch, rng) -> (state, metrics)``, one jit.

One call performs ``d_steps`` discriminator updates followed by one generator
update, each accumulating gradients over ``grad_accum_steps`` micro-batches
(``lax.scan``, so compile time does not grow with either; see ``loop``). Real and fake
images go through D as one concatenated batch. Every training forward pass
updates BN running statistics and spectral-norm vectors, as in the reference.

Batch layout (global):
  images uint8 (d_steps, grad_accum_steps, micro_batch, R, R, 3)
  labels int32 (d_steps, grad_accum_steps, micro_batch)
sharded over the mesh's data axis along micro_batch (the loop jits the step
with those shardings: gan/train/loop.py).
"""

from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from gan import losses
from gan.families import interface as kit
from gan.families.biggan.regularizers import orthogonal_regularization
from gan.families.biggan.sampling import sample_labels, sample_latents
from gan.families.biggan.state import GAN, TrainState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
TrainStep = Callable[[TrainState, Batch, jax.Array], tuple[TrainState, Metrics]]


def loop(body, carry, xs, unroll: bool):
  """``lax.scan(body, carry, xs)``, or the same loop unrolled in Python.

  XLA:CPU (jax 0.10) lowers convolutions inside while-loop bodies to a generic
  kernel instead of XNNPACK: the quickstart step took 38 s with lax.scan and
  1.0 s unrolled on 2 cores. On GPU/TPU a scan keeps compile time flat in
  d_steps x grad_accum_steps, so unrolling is only the CPU default.
  """
  if not unroll:
    return jax.lax.scan(body, carry, xs)
  ys = []
  for i in range(len(jax.tree.leaves(xs)[0])):
    carry, y = body(carry, jax.tree.map(lambda x: x[i], xs))
    ys.append(y)
  return carry, (None if ys[0] is None else jax.tree.map(lambda *y: jnp.stack(y), *ys))


def should_unroll(setting: str) -> bool:
  """config.train.unroll_loops: 'auto' (unroll on CPU only), 'true' or 'false'."""
  if setting == "auto":
    return jax.default_backend() == "cpu"
  return {"true": True, "false": False}[setting]


def _mean_tree(tree, n: int):
  return jax.tree.map(lambda x: x / n, tree)


def make_train_step(gan: GAN, config: ml_collections.ConfigDict, mesh: Mesh) -> TrainStep:
  """Builds the pure train step (not yet jitted; see ``jit_train_step``)."""
  t = config.train
  accum, micro = t.grad_accum_steps, t.batch_size // t.grad_accum_steps
  unroll = should_unroll(t.unroll_loops)
  inject_steps = kit.parse_steps(t.inject_nonfinite_steps)
  shard_examples = lambda x: jax.lax.with_sharding_constraint(x, kit.batch_sharding(mesh))

  def generate(g_params, g_vars, key):
    """Fake images and labels for one micro-batch, sharded like the reals."""
    kz, ky = jax.random.split(key)
    z = shard_examples(sample_latents(kz, (micro, gan.z_dim)))
    labels = shard_examples(sample_labels(ky, micro, gan.num_classes))
    fake, g_vars = gan.generator.apply({"params": g_params, **g_vars}, z, labels, train=True,
                                       mutable=["batch_stats", "spectral"])
    return fake, labels, g_vars

  def discriminate(d_params, d_vars, images, labels):
    logits, d_vars = gan.discriminator.apply({"params": d_params, **d_vars}, images, labels,
                                             train=True, mutable=["spectral"])
    return logits, d_vars

  def d_loss_fn(d_params, d_vars, real, real_labels, fake, fake_labels, fault):
    images = jnp.concatenate([real, fake], axis=0)
    labels = jnp.concatenate([real_labels, fake_labels], axis=0)
    logits, d_vars = discriminate(d_params, d_vars, images, labels)
    real_logits, fake_logits = jnp.split(logits, 2)
    loss_real, loss_fake = losses.hinge_d_loss(real_logits, fake_logits)
    loss_real = loss_real * fault  # 1, or NaN at config.train.inject_nonfinite_steps
    metrics = {"d_loss_real": loss_real, "d_loss_fake": loss_fake,
               "d_real": jnp.mean(real_logits), "d_fake": jnp.mean(fake_logits)}
    return loss_real + loss_fake, (d_vars, metrics)

  def g_loss_fn(g_params, g_vars, d_params, d_vars, key):
    fake, labels, g_vars = generate(g_params, g_vars, key)
    logits, d_vars = discriminate(d_params, d_vars, fake, labels)
    loss = losses.hinge_g_loss(logits)
    return loss, (g_vars, d_vars, {"g_loss": loss})

  def d_update(carry, inputs):
    """One D optimiser step over ``accum`` micro-batches of reals."""
    state = carry
    images, labels, key = inputs
    fault = kit.injected_factor(state.step, inject_steps)

    def micro_step(micro_carry, micro_inputs):
      grads_sum, metric_sum, g_vars, d_vars = micro_carry
      real, real_labels, micro_key = micro_inputs
      fake, fake_labels, g_vars = generate(state.g_params, g_vars, micro_key)
      (_, (d_vars, metrics)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
          state.d_params, d_vars, kit.to_float_images(real), real_labels,
          jax.lax.stop_gradient(fake), fake_labels, fault)
      grads_sum = jax.tree.map(jnp.add, grads_sum, grads)
      metric_sum = jax.tree.map(jnp.add, metric_sum, metrics)
      return (grads_sum, metric_sum, g_vars, d_vars), None

    zero_grads = jax.tree.map(jnp.zeros_like, state.d_params)
    zero_metrics = {k: jnp.zeros((), jnp.float32)
                    for k in ("d_loss_real", "d_loss_fake", "d_real", "d_fake")}
    keys = jax.random.split(key, accum)
    (grads, metrics, g_vars, d_vars), _ = loop(
        micro_step, (zero_grads, zero_metrics, state.g_vars, state.d_vars), (images, labels, keys),
        unroll)
    grads, metrics = _mean_tree(grads, accum), _mean_tree(metrics, accum)
    updates, d_opt_state = gan.d_tx.update(grads, state.d_opt_state, state.d_params)
    metrics["d_grad_norm"] = optax.global_norm(grads)
    state = state.replace(d_params=optax.apply_updates(state.d_params, updates),
                          d_opt_state=d_opt_state, g_vars=g_vars, d_vars=d_vars)
    return state, metrics

  def g_update(state: TrainState, key: jax.Array) -> tuple[TrainState, Metrics]:
    def micro_step(micro_carry, micro_key):
      grads_sum, loss_sum, g_vars, d_vars = micro_carry
      (loss, (g_vars, d_vars, _)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
          state.g_params, g_vars, state.d_params, d_vars, micro_key)
      return (jax.tree.map(jnp.add, grads_sum, grads), loss_sum + loss, g_vars, d_vars), None

    zero_grads = jax.tree.map(jnp.zeros_like, state.g_params)
    (grads, loss, g_vars, d_vars), _ = loop(
        micro_step, (zero_grads, jnp.zeros((), jnp.float32), state.g_vars, state.d_vars),
        jax.random.split(key, accum), unroll)
    grads = _mean_tree(grads, accum)
    # The regulariser does not depend on the batch: add it once per update.
    ortho, ortho_grads = jax.value_and_grad(orthogonal_regularization)(state.g_params, t.ortho_reg)
    grads = jax.tree.map(jnp.add, grads, ortho_grads)
    updates, g_opt_state = gan.g_tx.update(grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)
    state = state.replace(g_params=g_params, g_opt_state=g_opt_state, g_vars=g_vars,
                          d_vars=d_vars)
    return state, {"g_loss": loss / accum, "g_grad_norm": optax.global_norm(grads),
                   "ortho_reg": ortho}

  def train_step(state: TrainState, batch: Batch, rng: jax.Array):
    old_state = state
    d_key, g_key = jax.random.split(rng)
    d_keys = jax.random.split(d_key, t.d_steps)
    state, d_metrics = loop(d_update, state, (batch["image"], batch["label"], d_keys), unroll)
    state, g_metrics = g_update(state, g_key)
    # Update number state.step + 1 (1-based, the reference's itr): before ema_start
    # the EMA tracks the live weights exactly (decay 0); from it on, it decays.
    decay = jnp.where(state.step + 1 >= t.ema_start, t.ema_decay, 0.0)
    state = state.replace(
        step=state.step + 1,
        ema_params=kit.ema_update(state.ema_params, state.g_params, decay),
        ema_vars=kit.ema_update(state.ema_vars, state.g_vars, decay))
    # A non-finite loss or gradient anywhere: keep the old state, count it.
    state = kit.guard(old_state, state, {
        "d_loss": d_metrics["d_loss_real"] + d_metrics["d_loss_fake"],
        "d_grad_norm": d_metrics["d_grad_norm"], "g_loss": g_metrics["g_loss"],
        "g_grad_norm": g_metrics["g_grad_norm"]}, old_state.step)
    metrics = {**jax.tree.map(jnp.mean, d_metrics), **g_metrics}
    return state, metrics

  return train_step
