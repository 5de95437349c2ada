"""Our StyleGAN2 (gan/families/stylegan/networks2.py) against NVlabs/stylegan2-ada-pytorch.

Builds the reference's Generator and Discriminator (its training/networks.py and
torch_utils, on CPU, where its CUDA ops fall back to their reference torch code),
perturbs every parameter so that biases, noise strengths and affine biases are
not at their initial values, copies the weights into our flax params and prints
the max abs difference (and the difference relative to the output's max abs) of:
the mapping output w, synthesis images from distinct per-layer ws (noise 'none'
and 'const', fused and non-fused modulation), D logits, d logits / d images and
d images / d ws. 'const' noise compares like with like by writing our fixed
noise maps into the reference's noise_const buffers.

  /work/parity-venv/bin/python benchmarks/parity/stylegan2_reference.py \
      --reference /work/ref/stylegan2-ada-pytorch

Not in the test suite: it needs torch and the reference checkout.
"""

import argparse
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from gan.families.stylegan import discriminator2, networks2  # noqa: E402

BATCH = 4
CONFIGS = [  # name, resolution, classes, G architecture, D architecture, conv_clamp, mbstd (G, F)
    ("32 skip/resnet 10 classes", 32, 10, "skip", "resnet", None, (4, 1)),
    ("64 skip/resnet 10 classes", 64, 10, "skip", "resnet", None, (4, 1)),
    ("32 resnet/skip clamp 0.5", 32, 0, "resnet", "skip", 0.5, (2, 2)),
    ("32 orig/orig 5 classes", 32, 5, "orig", "orig", None, (4, 1)),
]
SMALL = dict(z_dim=32, w_dim=32, channel_base=1024, channel_max=64, mapping_layers=2)


def torch_to_flax(state: dict, fc_nchw: tuple[str, ...] = ()) -> dict:
  """Reference parameter names / layouts -> our nested params.

  a.b.weight (O, I, kh, kw) -> HWIO; (out, in) -> (in, out); const (C, R, R) -> (R, R, C).
  Names in ``fc_nchw`` flatten an NCHW 4x4 map: their rows are permuted to NHWC order.
  """
  params = {}
  for name, value in state.items():
    value = value.detach().cpu().numpy()
    *path, leaf = name.split(".")
    if leaf == "weight" and value.ndim == 4:
      value = value.transpose(2, 3, 1, 0)
    elif leaf == "weight" and value.ndim == 2 and name in fc_nchw:
      out, flat = value.shape
      c = flat // 16
      value = value.reshape(out, c, 4, 4).transpose(2, 3, 1, 0).reshape(flat, out)
    elif leaf == "weight" and value.ndim == 2:
      value = value.T
    elif leaf == "const":
      value = value.transpose(1, 2, 0)
    node = params
    for key in path:
      node = node.setdefault(key, {})
    node[leaf] = jnp.asarray(np.array(value, np.float32))
  return params


def check_same_tree(ours: dict, converted: dict) -> None:
  a = jax.tree_util.tree_flatten_with_path(jax.tree.map(lambda x: str(x.shape), ours))[0]
  b = jax.tree_util.tree_flatten_with_path(jax.tree.map(lambda x: str(x.shape), converted))[0]
  a = {jax.tree_util.keystr(k): v for k, v in a}
  b = {jax.tree_util.keystr(k): v for k, v in b}
  if a != b:
    diff = sorted(set(a.items()) ^ set(b.items()))
    raise SystemExit(f"parameter trees differ: {diff[:10]}")


def report(label: str, ours, ref) -> float:
  ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
  assert ours.shape == ref.shape, (label, ours.shape, ref.shape)
  diff = np.abs(ours - ref).max()
  rel = diff / max(np.abs(ref).max(), 1e-30)
  print(f"  {label:42s} max|diff| {diff:.3e}   relative {rel:.3e}   "
        f"(max|ref| {np.abs(ref).max():.3g})")
  return rel


def perturb(module, torch, gen) -> None:
  """Random, non-initial values for every parameter (weights keep their N(0, 1) scale)."""
  with torch.no_grad():
    for name, p in module.named_parameters():
      if name.endswith("weight") or name.endswith("const"):
        continue
      p.add_(0.3 * torch.randn(p.shape, generator=gen))


def nhwc(t):
  return t.detach().numpy().transpose(0, 2, 3, 1)


def run_config(cfg, torch, ref_networks) -> list[float]:
  name, res, classes, g_arch, d_arch, clamp, (group, mbstd_ch) = cfg
  print(f"config {name}: resolution {res}, channel_base {SMALL['channel_base']}, channel_max "
        f"{SMALL['channel_max']}, z/w {SMALL['z_dim']}, mapping {SMALL['mapping_layers']}")
  gen = torch.Generator().manual_seed(res + classes)
  torch.manual_seed(res + classes)
  G = ref_networks.Generator(
      z_dim=SMALL["z_dim"], c_dim=classes, w_dim=SMALL["w_dim"], img_resolution=res,
      img_channels=3, mapping_kwargs=dict(num_layers=SMALL["mapping_layers"]),
      synthesis_kwargs=dict(channel_base=SMALL["channel_base"], channel_max=SMALL["channel_max"],
                            architecture=g_arch, conv_clamp=clamp)).eval()
  D = ref_networks.Discriminator(
      c_dim=classes, img_resolution=res, img_channels=3, architecture=d_arch,
      channel_base=SMALL["channel_base"], channel_max=SMALL["channel_max"], conv_clamp=clamp,
      epilogue_kwargs=dict(mbstd_group_size=group, mbstd_num_channels=mbstd_ch)).eval()
  perturb(G, torch, gen)
  perturb(D, torch, gen)

  ours_g = networks2.Generator(
      SMALL["z_dim"], SMALL["w_dim"], res, num_classes=classes,
      mapping_layers=SMALL["mapping_layers"], channel_base=SMALL["channel_base"],
      channel_max=SMALL["channel_max"], conv_clamp=clamp, architecture=g_arch)
  ours_d = discriminator2.Discriminator(
      res, num_classes=classes, architecture=d_arch, channel_base=SMALL["channel_base"],
      channel_max=SMALL["channel_max"], mbstd_group_size=group, mbstd_num_channels=mbstd_ch,
      conv_clamp=clamp)
  rng = np.random.default_rng(res)
  z = rng.standard_normal((BATCH, SMALL["z_dim"])).astype(np.float32)
  labels = rng.integers(0, max(classes, 1), BATCH).astype(np.int32) if classes else None
  onehot = np.eye(max(classes, 1), dtype=np.float32)[labels] if classes else None
  key = jax.random.key(0)
  g_init = jax.eval_shape(lambda: ours_g.init({"params": key, "noise": key}, z, labels))["params"]
  d_init = jax.eval_shape(
      lambda: ours_d.init(key, jnp.zeros((BATCH, res, res, 3)), labels))["params"]

  g_state = {k: v for k, v in G.named_parameters()}
  d_state = {k: v for k, v in D.named_parameters()}
  g_params = torch_to_flax(g_state)
  d_params = torch_to_flax(d_state, fc_nchw=("b4.fc.weight",))
  check_same_tree(g_init, g_params)
  check_same_tree(d_init, d_params)
  n_ref = sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())
  n_ours = tuple(sum(x.size for x in jax.tree.leaves(p)) for p in (g_params, d_params))
  print(f"  parameters G {n_ours[0]} (reference {n_ref[0]}), D {n_ours[1]} (reference {n_ref[1]})")

  # Our const noise into the reference's noise_const buffers (same per-layer seeds as ours).
  with torch.no_grad():
    for bname, buf in G.named_buffers():
      if bname.endswith("noise_const"):
        res_b, conv = int(bname.split(".")[1][1:]), bname.split(".")[2]
        seed = 2 * int(np.log2(res_b)) + (1 if conv == "conv1" else 0)
        buf.copy_(torch.from_numpy(np.asarray(networks2.const_noise(res_b, seed))[..., 0]))

  rels = []
  tz = torch.from_numpy(z)
  tc = torch.from_numpy(onehot) if classes else None
  with torch.no_grad():
    w_ref = G.mapping(tz, tc)[:, 0]
  w_ours = ours_g.apply({"params": g_params}, z, labels, method=networks2.Generator.map)
  rels.append(report("mapping w", w_ours, w_ref.numpy()))

  num_ws = ours_g.num_ws
  assert num_ws == G.num_ws
  ws = rng.standard_normal((BATCH, num_ws, SMALL["w_dim"])).astype(np.float32)
  for noise_mode in ("none", "const"):
    for fused in (True, False):
      with torch.no_grad():
        img_ref = G.synthesis(torch.from_numpy(ws), noise_mode=noise_mode, fused_modconv=fused)
      img = ours_g.apply({"params": g_params}, ws, noise_mode, fused,
                         method=networks2.Generator.synthesize)
      rels.append(report(f"images noise {noise_mode} fused {fused}", img, nhwc(img_ref)))

  # d sum(images * probe) / d ws, through the non-fused path used in training.
  probe = rng.standard_normal((BATCH, res, res, 3)).astype(np.float32)
  tws = torch.from_numpy(ws).requires_grad_(True)
  (G.synthesis(tws, noise_mode="const", fused_modconv=False)
   * torch.from_numpy(probe.transpose(0, 3, 1, 2))).sum().backward()
  grad_ws = jax.grad(lambda ws: jnp.sum(ours_g.apply(
      {"params": g_params}, ws, "const", False, method=networks2.Generator.synthesize) * probe))(ws)
  rels.append(report("d images / d ws", grad_ws, tws.grad.numpy()))

  images = rng.standard_normal((BATCH, res, res, 3)).astype(np.float32)
  timg = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
  logits_ref = D(timg, tc)
  logits_ref.sum().backward()
  logits = ours_d.apply({"params": d_params}, images, labels)
  grad = jax.grad(lambda x: jnp.sum(ours_d.apply({"params": d_params}, x, labels)))(images)
  rels.append(report("D logits", logits, logits_ref.detach().numpy()[:, 0]))
  rels.append(report("d D logits / d images", grad, nhwc(timg.grad)))
  return rels


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reference", default="/work/ref/stylegan2-ada-pytorch",
                      help="checkout of NVlabs/stylegan2-ada-pytorch")
  args = parser.parse_args()
  sys.path.insert(0, os.path.abspath(args.reference))
  import warnings

  import torch
  warnings.filterwarnings("ignore")
  torch.set_num_threads(2)
  from training import networks as ref_networks

  worst = 0.0
  for cfg in CONFIGS:
    worst = max(worst, max(run_config(cfg, torch, ref_networks)))
  print(f"worst relative difference {worst:.3e} ({'OK' if worst < 1e-4 else 'ABOVE'} 1e-4)")


if __name__ == "__main__":
  main()
