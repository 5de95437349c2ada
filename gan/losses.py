"""GAN losses. Logits are raw discriminator outputs, shape (N,)."""

import jax
import jax.numpy as jnp


def hinge_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Discriminator hinge loss terms: (mean relu(1 - D(x)), mean relu(1 + D(G(z))))."""
  return jnp.mean(jax.nn.relu(1.0 - real_logits)), jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g_loss(fake_logits: jax.Array) -> jax.Array:
  """Generator hinge loss: -mean D(G(z))."""
  return -jnp.mean(fake_logits)


# ProGAN: the loss is a config choice. Scores are raw D outputs for the same
# minibatch of reals and fakes, shape (N,); D terms stay per example so the
# caller can add per-example penalties before averaging.
LOSSES = ("wgan", "nonsaturating", "lsgan", "hinge")


def _check_kind(kind: str) -> None:
  if kind not in LOSSES:
    raise ValueError(f"Unknown loss {kind!r}; choose one of {', '.join(LOSSES)}.")


def d_loss_terms(kind: str, real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
  """Per-example discriminator loss, shape (N,) for (N,) scores; minimise its mean.

  wgan: D(fake) - D(real). nonsaturating (logistic): softplus(D(fake)) +
  softplus(-D(real)). lsgan (least squares, targets 1 / 0): 0.5 (D(real) - 1)^2
  + 0.5 D(fake)^2. hinge: relu(1 - D(real)) + relu(1 + D(fake)).
  """
  _check_kind(kind)
  if real_scores.shape != fake_scores.shape:
    raise ValueError(f"real and fake scores must pair up per example; got shapes "
                     f"{real_scores.shape} and {fake_scores.shape}.")
  if kind == "wgan":
    return fake_scores - real_scores
  if kind == "nonsaturating":
    return jax.nn.softplus(fake_scores) + jax.nn.softplus(-real_scores)
  if kind == "lsgan":
    return 0.5 * jnp.square(real_scores - 1.0) + 0.5 * jnp.square(fake_scores)
  return jax.nn.relu(1.0 - real_scores) + jax.nn.relu(1.0 + fake_scores)


def g_loss(kind: str, fake_scores: jax.Array) -> jax.Array:
  """Generator loss, a scalar mean over (N,) fake scores.

  wgan and hinge: -mean D(fake). nonsaturating: mean softplus(-D(fake)).
  lsgan: 0.5 mean (D(fake) - 1)^2.
  """
  _check_kind(kind)
  if kind == "nonsaturating":
    return jnp.mean(jax.nn.softplus(-fake_scores))
  if kind == "lsgan":
    return 0.5 * jnp.mean(jnp.square(fake_scores - 1.0))
  return -jnp.mean(fake_scores)


def interpolate(reals: jax.Array, fakes: jax.Array, key: jax.Array) -> jax.Array:
  """x_hat = reals + (fakes - reals) * u, u ~ U(0, 1) per example; shape (N, H, W, C)."""
  u = jax.random.uniform(key, (reals.shape[0],) + (1,) * (reals.ndim - 1), reals.dtype)
  return reals + (fakes - reals) * u


def _safe_norm(squared: jax.Array) -> jax.Array:
  # sqrt has an infinite derivative at 0, so a zero gradient (e.g. a saturated
  # D) would make the penalty's own gradient NaN; the double where keeps it finite.
  positive = squared > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def gradient_penalty(d_apply, reals: jax.Array, fakes: jax.Array, key: jax.Array,
                     target: float = 1.0) -> tuple[jax.Array, jax.Array]:
  """WGAN-GP at random interpolates: (penalty (N,), grad_norms (N,)).

  d_apply: images (N, H, W, C) -> scores (N,). penalty_n = (||grad_n|| -
  target)^2 / target^2, as the official ProGAN code (which then scales by
  wgan_lambda; the caller applies lambda). grad_n is the gradient of
  sum(d_apply(x_hat)) w.r.t. x_hat[n], which is example n's own gradient only
  while D treats examples independently; like the official code we keep the
  sum even with minibatch-stddev, whose cross-example terms are small.
  """
  x_hat = interpolate(reals, fakes, key)
  grads = jax.grad(lambda x: jnp.sum(d_apply(x)))(x_hat)
  grad_norms = _safe_norm(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))))
  return jnp.square(grad_norms - target) / target ** 2, grad_norms


def drift_penalty(real_scores: jax.Array) -> jax.Array:
  """ProGAN's drift term D(real)^2, shape (N,); keeps scores near 0 (the caller scales by eps)."""
  return jnp.square(real_scores)


def r1_penalty(d_apply, reals: jax.Array) -> tuple[jax.Array, jax.Array]:
  """R1 (Mescheder et al. 2018): (||grad_x D(x)||^2 per real example (N,), D(reals) (N,)).

  d_apply: images (N, H, W, C) -> scores (N,). The gradient is that of sum(D(reals)),
  as in the official StyleGAN codes (with minibatch stddev an example's gradient
  also carries the small cross-example terms). The caller scales by gamma / 2.
  """
  scores, vjp = jax.vjp(d_apply, reals)
  (grads,) = vjp(jnp.ones_like(scores))
  return jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))), scores
