"""Non-finite losses and gradients: detected inside the step, handled by a policy.

Inside the jitted step, ``guard`` checks the step's losses and gradient
norms (a global norm is non-finite iff some gradient entry is). If any is
NaN or Inf, the step keeps the previous parameters, optimiser states, EMA and
statistics (the batch is skipped; the step counter still advances) and
updates the ``health`` counters in the state:
  skipped      updates skipped so far
  consecutive  skipped in a row, up to now
  first_step   the first step that was skipped (-1: none)
  first_what   index into QUANTITIES of its first non-finite quantity
The host reads the counters only when it logs (it syncs for the metrics
then anyway): no extra host sync per step. At each log step the trainer applies
``config.train.nonfinite_policy`` once ``consecutive`` reaches
``config.train.nonfinite_patience``: 'skip' (keep going, counting), 'rollback'
(restore the last good checkpoint and reseed the noise) or 'stop' (exit with
a report naming the first non-finite quantity).

``config.train.inject_nonfinite_steps`` ("3,4,5") multiplies D's loss by NaN
at those steps: fault injection to rehearse a policy (and for the tests).
"""

import jax
import jax.numpy as jnp
from absl import logging

MAX_ROLLBACKS = 3  # then the 'rollback' policy stops, as 'stop' would
# What guard checks; the last two only in steps that compute them (StyleGAN2's lazy
# regularisation steps), so a non-finite regulariser never reaches the state either.
QUANTITIES = ("d_loss", "d_grad_norm", "g_loss", "g_grad_norm", "pl_grad_norm", "r1_grad_norm")


class NonFiniteError(RuntimeError):
  """Training stopped by the 'stop' policy; the message is the report."""


def init_health() -> dict:
  return {"skipped": jnp.zeros((), jnp.int32), "consecutive": jnp.zeros((), jnp.int32),
          "first_step": jnp.full((), -1, jnp.int32), "first_what": jnp.full((), -1, jnp.int32)}


def injected_factor(step: jax.Array, steps: tuple[int, ...]) -> jax.Array:
  """NaN at the given steps, else 1: multiply a loss by it to inject a fault."""
  if not steps:
    return jnp.float32(1.0)
  return jnp.where(jnp.isin(step, jnp.asarray(steps)), jnp.float32(jnp.nan), jnp.float32(1.0))


def guard(old_state, new_state, metrics: dict, step: jax.Array):
  """Keeps ``old_state``'s contents if a QUANTITY in ``metrics`` is non-finite.

  ``new_state`` must already have its counters advanced (step, images shown);
  those and the health counters are the only fields taken from it when the
  update is skipped.
  """
  finite = jnp.stack([jnp.all(jnp.isfinite(metrics[name])) if name in metrics else True
                      for name in QUANTITIES])
  ok = jnp.all(finite)
  # lax.cond, not a select per leaf: with jnp.where the EMA of G's BN statistics
  # differed from the statistics by 1 ulp before ema_start (XLA fused the two
  # differently); with the cond they stay bitwise equal.
  kept = jax.lax.cond(ok, lambda: new_state, lambda: old_state)
  counters = {name: getattr(new_state, name) for name in ("step", "images_shown")
              if hasattr(new_state, name)}
  health = old_state.health
  first_new = (health["first_step"] < 0) & ~ok
  health = {
      "skipped": health["skipped"] + (~ok).astype(jnp.int32),
      "consecutive": jnp.where(ok, 0, health["consecutive"] + 1),
      "first_step": jnp.where(first_new, step, health["first_step"]),
      "first_what": jnp.where(first_new, jnp.argmin(finite).astype(jnp.int32),
                              health["first_what"]),
  }
  return kept.replace(health=health, **counters)


def describe(health: dict) -> str:
  """Host-side report of (device_get) health counters."""
  if int(health["first_step"]) < 0:
    return "no non-finite values"
  return (f"{QUANTITIES[int(health['first_what'])]} was the first non-finite quantity, at step "
          f"{int(health['first_step'])}; {int(health['skipped'])} updates skipped in all, "
          f"{int(health['consecutive'])} in a row")


def log_fields(health: dict) -> dict[str, int]:
  return {"nonfinite_skipped": int(health["skipped"]),
          "nonfinite_consecutive": int(health["consecutive"])}


def enforce(status: dict, train, checkpointer, state, rollbacks: int, step: int):
  """Applies ``train.nonfinite_policy`` at a log step, given the host's ``status``.

  Returns (None, rollbacks) to go on, or (restored state, rollbacks + 1) after
  a rollback; raises NonFiniteError to stop. A rolled-back run gets fresh
  noise (else it would replay the same failure); the data order is unchanged.
  """
  if train.nonfinite_policy == "skip" or int(status["consecutive"]) < train.nonfinite_patience:
    return None, rollbacks
  report = f"Stopped at step {step}: {describe(status)}."
  if train.nonfinite_policy == "stop" or rollbacks == MAX_ROLLBACKS:
    raise NonFiniteError(f"{report} The latest checkpoint ({checkpointer.latest_step()}) holds "
                         f"finite values: skipped updates never reach the state.")
  restored, restored_step = checkpointer.restore_latest(state)
  if restored is None:
    raise NonFiniteError(f"{report} There is no checkpoint to roll back to yet.")
  rollbacks += 1
  logging.warning("Rolled back to checkpoint %d after %s (rollback %d of at most %d).",
                  restored_step, describe(status), rollbacks, MAX_ROLLBACKS)
  restored = restored.replace(
      rng=jax.random.fold_in(restored.rng, 1_000_003 * rollbacks),
      health={**restored.health, "consecutive": jnp.zeros((), jnp.int32)})
  return restored, rollbacks
