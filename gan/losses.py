"""GAN losses. Logits are raw discriminator outputs, shape (N,)."""

import jax
import jax.numpy as jnp


def hinge_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Discriminator hinge loss terms: (mean relu(1 - D(x)), mean relu(1 + D(G(z))))."""
  return jnp.mean(jax.nn.relu(1.0 - real_logits)), jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g_loss(fake_logits: jax.Array) -> jax.Array:
  """Generator hinge loss: -mean D(G(z))."""
  return -jnp.mean(fake_logits)
