"""BigGAN-PyTorch (ajbrock/BigGAN-PyTorch) as the parity harness drives it.

Imports the reference's own modules (BigGAN.py, layers.py, utils.py, train_fns.py)
from a checkout the user names, builds G, D, G_D, the EMA copy and the reference's
training function with the settings of one of our configs, and swaps the
reference's random z / y draws for the ones our train step makes, so both codes
see the same numbers. Nothing of the reference is copied into this project.

Needs torch (CPU is enough: ``pip install torch``); torchvision, h5py and tqdm,
which the reference imports only for its data loaders, are stubbed when absent.
"""

import importlib.machinery
import importlib.util
import sys
import types

import numpy as np

# Layouts the reference table has wrong for 32x32: its D_arch[32] lists every D
# block at resolution 16, so D_attn='16' puts attention after all four blocks.
# True resolutions are 16, 8, 8, 8 (the first two blocks downsample).
D32_TRUE_RESOLUTIONS = [16, 8, 8, 8]


class _Stub(types.ModuleType):
  """A module whose every attribute is a do-nothing class (for unused imports)."""

  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    return type(name, (), {"__init__": lambda self, *a, **k: None})


def _stub_missing(names):
  for name in names:
    top = name.split(".")[0]
    if name in sys.modules or (top != "torchvision" and importlib.util.find_spec(top)):
      continue
    module = _Stub(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules[name] = module
    if "." in name:
      parent, child = name.rsplit(".", 1)
      setattr(sys.modules[parent], child, module)


def import_reference(path: str):
  """Returns the reference's (BigGAN, utils, train_fns) modules from checkout ``path``."""
  try:
    import torch  # noqa: F401  (only whether it is installed)
  except ImportError:
    raise SystemExit("error: the parity harness needs torch; install it into this environment "
                     "(pip install torch; a CPU build is enough)")
  if importlib.util.find_spec("torchvision") is None:
    _stub_missing(["torchvision", "torchvision.transforms", "torchvision.datasets",
                   "torchvision.datasets.utils", "torchvision.utils"])
  _stub_missing(["h5py", "tqdm"])
  sys.path.insert(0, path)
  try:
    import BigGAN
    import train_fns
    import utils
  except ImportError as e:
    raise SystemExit(f"error: cannot import BigGAN-PyTorch from {path!r} ({e}); pass "
                     "--reference=PATH of a checkout of https://github.com/ajbrock/BigGAN-PyTorch")
  return BigGAN, utils, train_fns


def reference_config(config, stock_d32: bool = False) -> dict:
  """Our config -> the reference's config dict (the keys its G, D and train fn read)."""
  m, t = config.model, config.train
  accum = t.grad_accum_steps
  attention = "_".join(str(r) for r in str(m.attention).split("_")) or "0"
  return dict(
      resolution=m.resolution, n_classes=config.data.num_classes, G_ch=m.ch, D_ch=m.ch,
      dim_z=m.z_dim, shared_dim=m.shared_dim, hier=True, G_shared=True, G_attn=attention,
      D_attn=attention, SN_eps=m.sn_eps, BN_eps=m.bn_eps, G_init="ortho", D_init="ortho",
      G_lr=t.g_lr, D_lr=t.d_lr, G_B1=t.adam_b1, D_B1=t.adam_b1, G_B2=t.adam_b2, D_B2=t.adam_b2,
      adam_eps=t.adam_eps, num_G_SVs=1, num_D_SVs=1, num_G_SV_itrs=1, num_D_SV_itrs=1,
      batch_size=t.batch_size // accum, num_D_steps=t.d_steps, num_D_accumulations=accum,
      num_G_accumulations=accum, toggle_grads=True, split_D=False, D_ortho=0.0,
      # The reference adds 2 * strength * W(W^T W - diag) to the gradient, the gradient of
      # the paper's penalty at strength / 2; ours is the paper's formula (regularizers.py).
      G_ortho=2.0 * t.ortho_reg, ema=True, ema_decay=t.ema_decay, ema_start=t.ema_start,
      stock_d32=stock_d32)


class Reference:
  """The reference's models, optimisers, EMA and training function for one config."""

  def __init__(self, path: str, config, dtype: str = "float32", stock_d32: bool = False):
    import torch
    self.torch = torch
    BigGAN, utils, train_fns = import_reference(path)
    self.cfg = cfg = reference_config(config, stock_d32)
    if config.model.resolution == 32 and not stock_d32:
      original = BigGAN.D_arch

      def d_arch(*args, **kwargs):
        arch = original(*args, **kwargs)
        arch[32]["resolution"] = list(D32_TRUE_RESOLUTIONS)
        return arch
      BigGAN.D_arch = d_arch
    g_kwargs = {k: cfg[k] for k in ("resolution", "n_classes", "G_ch", "dim_z", "shared_dim",
                                     "hier", "G_shared", "G_attn", "SN_eps", "BN_eps", "G_init",
                                     "G_lr", "G_B1", "G_B2", "adam_eps", "num_G_SVs",
                                     "num_G_SV_itrs")}
    d_kwargs = {k: cfg[k] for k in ("resolution", "n_classes", "D_ch", "D_attn", "SN_eps",
                                     "D_init", "D_lr", "D_B1", "D_B2", "adam_eps", "num_D_SVs",
                                     "num_D_SV_itrs")}
    self.dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    self.G = BigGAN.Generator(**g_kwargs).to(self.dtype)
    self.D = BigGAN.Discriminator(**d_kwargs).to(self.dtype)
    self.G_ema = BigGAN.Generator(**g_kwargs, skip_init=True, no_optim=True).to(self.dtype)
    # The optimisers were built before .to(dtype); rebuild them on the cast parameters.
    for net, lr, b1, b2 in ((self.G, cfg["G_lr"], cfg["G_B1"], cfg["G_B2"]),
                            (self.D, cfg["D_lr"], cfg["D_B1"], cfg["D_B2"])):
      net.optim = torch.optim.Adam(net.parameters(), lr=lr, betas=(b1, b2), weight_decay=0,
                                   eps=cfg["adam_eps"])
    self.GD = BigGAN.G_D(self.G, self.D)
    self.ema = utils.ema(self.G, self.G_ema, cfg["ema_decay"], cfg["ema_start"])
    self.state_dict = {"itr": 0}
    self.z_ = torch.zeros(cfg["batch_size"], cfg["dim_z"], dtype=self.dtype)
    self.y_ = torch.zeros(cfg["batch_size"], dtype=torch.int64)
    self._queue = []
    # The train fn calls z_.sample_() and y_.sample_() once per micro-batch; serve ours.
    self.z_.sample_ = lambda: self.z_.copy_(self._queue[0][0])
    self.y_.sample_ = lambda: self.y_.copy_(self._queue.pop(0)[1])
    self.G.train(), self.D.train(), self.G_ema.train()
    self.train_fn = train_fns.GAN_training_function(
        self.G, self.D, self.GD, self.z_, self.y_, self.ema, self.state_dict, cfg)

  def step(self, images: np.ndarray, labels: np.ndarray, latents) -> dict:
    """One reference iteration. images float [-1, 1] (n, R, R, 3) in D-step order,
    labels (n,), latents [(z, y)] per micro-batch in the order the train fn draws them."""
    torch = self.torch
    self._queue = [(torch.tensor(np.asarray(z), dtype=self.dtype),
                    torch.tensor(np.asarray(y), dtype=torch.int64)) for z, y in latents]
    x = torch.as_tensor(np.asarray(images).transpose(0, 3, 1, 2), dtype=self.dtype)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    self.state_dict["itr"] += 1  # as train.py does before calling the train fn
    out = self.train_fn(x, y)
    assert not self._queue, "the reference drew a different number of z batches"
    return out

  def arrays(self) -> dict[str, np.ndarray]:
    """Every tensor of the run in the reference's names, float64 numpy:
    G.*, D.*, G_ema.* (state dicts) and G.opt.<param>.exp_avg / exp_avg_sq, same for D."""
    out = {}
    for prefix, net in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
      for name, value in net.state_dict().items():
        out[f"{prefix}.{name}"] = value.detach().double().numpy()
    for prefix, net in (("G", self.G), ("D", self.D)):
      for name, param in net.named_parameters():
        state = net.optim.state.get(param, {})
        for moment in ("exp_avg", "exp_avg_sq"):
          if moment in state:
            out[f"{prefix}.opt.{name}.{moment}"] = state[moment].detach().double().numpy()
    return out

  def load(self, arrays: dict[str, np.ndarray]) -> None:
    """Sets G, D and G_ema from {'G.name': array, 'D.name': ..., 'G_ema.name': ...}."""
    torch = self.torch
    for prefix, net in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
      state = net.state_dict()
      missing = [k for k in state if f"{prefix}.{k}" not in arrays and not k.startswith("sv")
                 and ".sv" not in k]
      if missing:
        raise KeyError(f"no value for reference {prefix} tensors {missing[:5]}")
      with torch.no_grad():
        for key, tensor in state.items():
          value = arrays.get(f"{prefix}.{key}")
          if value is not None:
            if tuple(value.shape) != tuple(tensor.shape):
              raise ValueError(f"{prefix}.{key}: shape {value.shape} vs {tuple(tensor.shape)}")
            tensor.copy_(torch.as_tensor(value, dtype=tensor.dtype))
