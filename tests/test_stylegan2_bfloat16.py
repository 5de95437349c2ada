"""StyleGAN2's bfloat16 compute: which blocks run in it, what it changes, and that a step trains.

The bounds below rest on measured figures (same weights, f32 vs the top resolutions in
bf16, const noise, 16 images): at 32x32 with the top 3 in bf16, images differ by a
relative L2 of 0.0074, D logits by 0.0033, D's input gradient by 0.063; at 64x64 with 4,
0.0077 / 0.011 / 0.081. bfloat16 keeps 8 significant bits (unit roundoff 2^-9 = 0.002),
so a few roundings per layer give these; the bounds are 3x the worst.
"""

import jax
import jax.numpy as jnp
import numpy as np

from conftest import tiny_stylegan2
from gan.families.stylegan import discriminator2, networks2, step2
from gan.train.sharding import make_mesh


def test_the_bf16_blocks_follow_the_reference_rule():
  # stylegan2-ada-pytorch: float16 where res >= max(2 ** (log2 R + 1 - num_fp16_res), 8).
  expected = {(1024, 4): [128, 256, 512, 1024], (256, 4): [32, 64, 128, 256],
              (32, 4): [8, 16, 32], (32, 1): [32], (64, 0): []}
  for (resolution, count), blocks in expected.items():
    got = [r for r in networks2.block_resolutions(resolution)
           if networks2.block_dtype(r, resolution, count) == jnp.bfloat16]
    assert got == blocks, (resolution, count)


def _relative(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _conv_dtypes(fn, *args):
  """The dtypes of every convolution's inputs in fn's jaxpr, nested jaxprs included."""
  found = []

  def visit(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == "conv_general_dilated":
        found.append(eqn.invars[0].aval.dtype)
      for param in eqn.params.values():
        if hasattr(param, "jaxpr"):
          visit(param.jaxpr)
  visit(jax.make_jaxpr(fn)(*args).jaxpr)
  return found


def test_bf16_blocks_stay_close_to_float32_and_return_float32():
  # The 32x32 case of the measurement (the 64x64 one takes longer and says the same).
  resolution, channel_base, channel_max, num_bf16_res = 32, 2048, 64, 3
  common = dict(resolution=resolution, num_classes=10, channel_base=channel_base,
                channel_max=channel_max)
  g32 = networks2.Generator(z_dim=64, w_dim=64, mapping_layers=2, **common)
  gbf = networks2.Generator(z_dim=64, w_dim=64, mapping_layers=2, num_bf16_res=num_bf16_res,
                            conv_clamp=256.0, **common)
  z = jax.random.normal(jax.random.key(1), (16, 64))
  labels = jnp.arange(16) % 10
  g_params = g32.init({"params": jax.random.key(0), "noise": jax.random.key(2)}, z,
                      labels)["params"]
  render = lambda g: g.apply({"params": g_params}, z, labels, noise_mode="const")
  images32, images_bf = render(g32), render(gbf)
  assert images_bf.dtype == jnp.float32
  assert _relative(images_bf, images32) < 0.025

  d32 = discriminator2.Discriminator(**common)
  dbf = discriminator2.Discriminator(num_bf16_res=num_bf16_res, conv_clamp=256.0, **common)
  d_params = d32.init(jax.random.key(3), images32, labels)["params"]
  logits = lambda d, x: d.apply({"params": d_params}, x, labels)
  assert logits(dbf, images32).dtype == jnp.float32
  assert _relative(logits(dbf, images32), logits(d32, images32)) < 0.035
  input_grad = lambda d: jax.grad(lambda x: logits(d, x).sum())(images32)
  assert input_grad(dbf).dtype == jnp.float32
  assert _relative(input_grad(dbf), input_grad(d32)) < 0.25

  # The compute really is bfloat16 where the rule says, float32 elsewhere.
  g_dtypes = _conv_dtypes(lambda p: gbf.apply({"params": p}, z, labels, noise_mode="const"),
                          g_params)
  d_dtypes = _conv_dtypes(lambda p: dbf.apply({"params": p}, images32, labels), d_params)
  for dtypes in (g_dtypes, d_dtypes):
    assert jnp.bfloat16 in dtypes and jnp.float32 in dtypes, dtypes
  assert jnp.bfloat16 not in _conv_dtypes(
      lambda p: g32.apply({"params": p}, z, labels, noise_mode="const"), g_params)


def test_a_bf16_train_step_keeps_float32_state_and_moves_it():
  config = tiny_stylegan2()
  config.model.num_bf16_res, config.model.conv_clamp = 2, 256.0
  gan = step2.build(config)
  state = step2.init_state(gan, 0)
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.integers(0, 256, (8, 16, 16, 3)), jnp.uint8),
           "label": jnp.asarray(rng.integers(0, 10, (8,)), jnp.int32)}
  new, metrics = jax.jit(step2.make_train_step(gan, make_mesh(), "pl+r1"))(
      state, batch, jax.random.PRNGKey(0))
  assert int(new.health["skipped"]) == 0
  assert all(np.isfinite(float(v)) for v in metrics.values())
  for name in ("g_params", "d_params", "ema_params", "g_opt_state", "d_opt_state"):
    for before, after in zip(jax.tree.leaves(getattr(state, name)),
                             jax.tree.leaves(getattr(new, name))):
      assert after.dtype == before.dtype
  moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.g_params),
                                                     jax.tree.leaves(new.g_params))]
  assert sum(moved) > len(moved) // 2
