"""StyleGAN (v1, Karras et al. 2018) generator and discriminator, grown 4x4 -> max_resolution.

Architecture (nf(R) = num_channels(R) as in ProGAN, lrelu slope 0.2, ws from the mapping):
  G  layer(x, w_i) = conv -> + noise (N, H, W, 1) * strength (C,) -> + bias -> lrelu
       -> instance norm (eps 1e-8) -> x * (s + 1) + b with (s, b) = affine(w_i);
     4x4: learned constant (ones) -> epilogue (w_0) -> conv3x3 layer (w_1);
     R >= 8: [upscale conv3x3 -> blur [1, 2, 1]] layer (w_2i) -> conv3x3 layer (w_2i+1);
     to_rgb_R: linear conv1x1 to 3 channels with bias (no tanh).
  D  from_rgb_R: conv1x1 nf(R) -> lrelu;
     R >= 8: conv3x3 nf(R) -> lrelu -> blur [1, 2, 1] -> downscale conv3x3 nf(R/2) -> lrelu;
     4x4: minibatch stddev -> conv3x3 nf(4) -> lrelu -> dense nf(2) -> lrelu -> dense 1.
Growth is ProGAN's (gan/families/progan/model.py): while block R fades in, G outputs
lerp(upsample(to_rgb_{R/2}(h)), to_rgb_R(block_R(h)), alpha) and D feeds
lerp(from_rgb_{R/2}(downscale(x)), block_R(from_rgb_R(x)), alpha) to block R/2. The
reference's tflib.lerp(new, old, lod_in - lod) is the same mix with alpha = 1 - (lod_in - lod).

Checked against NVlabs/stylegan training/networks_stylegan.py:
  * get_weight (use_wscale): N(0, 1) weights times gain / sqrt(fan_in), fan_in = k*k*in,
    lrmul 1 outside the mapping; gain sqrt(2) except torgb and D's Dense1 (1). The gain
    lives in the weights: v1's leaky_relu has no output gain (StyleGAN2's bias_act has).
  * G_synthesis.layer_epilogue: apply_noise -> apply_bias -> act -> instance_norm ->
    style_mod, so the convs have no bias of their own. apply_noise: an (N, 1, H, W)
    N(0, 1) map shared by the channels times a per-channel weight (init 0); with
    randomize_noise=False the fixed noise%d variables (1, 1, R, R) instead, which
    noise_mode 'const' draws from a fixed key. instance_norm: minus the spatial mean,
    times rsqrt(mean(x^2) + 1e-8). style_mod: dense(w, 2C, gain=1) + bias (zeros),
    scale = first C, bias = last C, x * (scale + 1) + bias.
  * G_synthesis 4x4: Const (1, nf(1), 4, 4) of ones, tiled, then layer_epilogue(0);
    Conv: conv3x3 + epilogue(1). block(res): Conv0_up = epilogue(blur(upscale2d_conv2d(x)),
    2 res - 4), the blur AFTER the upscale conv; Conv1 = conv3x3 + epilogue(2 res - 3),
    no blur. num_layers = 2 log2(R) - 2. torgb: conv1x1 gain 1 + bias. The reference's
    nf(res - 1) is our nf(2**res); its nf(0) (D's Dense0) is our nf(2).
  * upscale2d_conv2d, fused_scale='auto' (fused when the OUTPUT is >= 128): the 3x3
    kernel padded to 5x5, its four one-pixel shifts summed to 4x4, conv2d_transpose
    stride 2 'SAME'. That equals nearest upsampling then a 'SAME' correlation with the
    spatially FLIPPED 3x3 kernel, at every pixel including the border (tested): the
    transposed conv is the adjoint of a correlation. Unfused: conv2d(upscale2d(x)).
  * conv2d_downscale2d (fused when the INPUT is >= 128): the same 4x4 sum times 0.25,
    stride-2 'SAME' conv2d (padding 1 each side). That equals conv3x3 'SAME' with the
    same, unflipped kernel then 2x2 average pooling, everywhere (tested). Unfused:
    downscale2d(conv2d(x)).
  * blur2d: normalised outer product of [1, 2, 1], depthwise 'SAME' (zero padding 1);
    _upscale2d nearest; _downscale2d 2x2 mean.
  * D_basic: fromrgb = act(bias(conv1x1)); block(res >= 3): Conv0 conv3x3 nf(res - 1),
    Conv1_down = conv2d_downscale2d(blur(x)) to nf(res - 2), each + bias, lrelu; 4x4:
    minibatch_stddev_layer(4, 1), Conv conv3x3 nf(1), Dense0 nf(0) (512 at the
    defaults), Dense1 max(label_size, 1) gain 1; with labels the LabelSwitch
    sum(scores * onehot) keeps the true class's score. The stddev layer's reshape to
    (G, M, ...) puts example n in group n % M: ops.minibatch_stddev with 1 channel.
  * Counts at 1024 (defaults): G 26,219,627 = mapping 2,101,248 + synthesis 24,118,379;
    D 23,087,249 (arithmetic in tests/test_stylegan1_networks.py).
  * G_mapping: normalize_2nd_moment(z), then dense layers with the sqrt(2) gain and the
    lr multiplier in the weights, bias times the lr multiplier, lrelu with no gain after
    (mapping.MappingNetwork with gain_in_weights). Not v1: with classes, the label
    embedding is StyleGAN2's (embedded, normalised, then concatenated; v1 concatenates
    first), and D's flattening before Dense0 is NHWC (the reference's is NCHW).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.families.stylegan.layers1 import EqualizedConv2d, blur, const_noise
from gan.families.stylegan.mapping import MappingNetwork
from gan.families.stylegan.ops import FullyConnected, adain, instance_norm, minibatch_stddev
from gan.growth.layers import SQRT2, Alpha, EqualizedDense, check_stage, lerp, lrelu, num_channels
from gan.growth.layers import stage_resolutions
from gan.growth.reals import downsample_2x, upsample_2x

NOISE_MODES = ("random", "const", "none")


class LayerEpilogue(nn.Module):
  """x (N, H, W, C), w (N, w_dim) -> (N, H, W, C).

  + noise * strength -> + bias -> lrelu -> instance norm -> x * (s + 1) + b, (s, b) = affine(w).
  Parameters: noise_strength (C,), bias (C,) (zeros), affine (w_dim -> 2C, gain 1, bias 0).
  """
  layer_index: int

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, noise_mode: str = "random") -> jax.Array:
    n, height, width, channels = x.shape
    strength = self.param("noise_strength", nn.initializers.zeros, (channels,), jnp.float32)
    if noise_mode not in NOISE_MODES:
      raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if noise_mode == "random":
      x = x + jax.random.normal(self.make_rng("noise"), (n, height, width, 1)) * strength
    elif noise_mode == "const":
      x = x + const_noise(self.layer_index, height) * strength
    x = x + self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
    x = instance_norm(lrelu(x))
    style = FullyConnected(2 * channels, bias_init=0.0, name="affine")(w.astype(jnp.float32))
    return adain(x, style[:, :channels], style[:, channels:])


class SynthesisLayer(nn.Module):
  """x (N, H, W, in), w (N, w_dim) -> (N, H', W', features): conv3x3 (no bias) -> epilogue.

  ``up``: the conv upscales 2x (fused when ``fused``) and is followed by the blur.
  """
  features: int
  layer_index: int
  up: bool = False
  fused: bool = False
  blur_filter: Sequence[float] | None = (1, 2, 1)

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array, noise_mode: str = "random") -> jax.Array:
    x = EqualizedConv2d(self.features, 3, use_bias=False, up=self.up, fused=self.fused,
                        name="conv")(x)
    if self.up:
      x = blur(x, self.blur_filter)
    return LayerEpilogue(self.layer_index, name="epilogue")(x, w, noise_mode)


class SynthesisFirstBlock(nn.Module):
  """w0, w1 (N, w_dim) -> (N, 4, 4, features): constant -> epilogue -> conv3x3 layer."""
  features: int

  @nn.compact
  def __call__(self, w0: jax.Array, w1: jax.Array, noise_mode: str = "random") -> jax.Array:
    const = self.param("const", nn.initializers.ones, (4, 4, self.features), jnp.float32)
    x = jnp.broadcast_to(const, (w0.shape[0], 4, 4, self.features))
    x = LayerEpilogue(0, name="layer0")(x, w0, noise_mode)
    return SynthesisLayer(self.features, 1, name="layer1")(x, w1, noise_mode)


class SynthesisBlock(nn.Module):
  """x (N, H, W, C), w0, w1 (N, w_dim) -> (N, 2H, 2W, features): up layer -> conv3x3 layer."""
  features: int
  block_index: int  # 1 at 8x8: its layers are 2 * block_index and 2 * block_index + 1
  fused: bool = False
  blur_filter: Sequence[float] | None = (1, 2, 1)

  @nn.compact
  def __call__(self, x: jax.Array, w0: jax.Array, w1: jax.Array,
               noise_mode: str = "random") -> jax.Array:
    i = 2 * self.block_index
    x = SynthesisLayer(self.features, i, up=True, fused=self.fused,
                       blur_filter=self.blur_filter, name="layer0")(x, w0, noise_mode)
    return SynthesisLayer(self.features, i + 1, name="layer1")(x, w1, noise_mode)


def num_ws_for(max_resolution: int) -> int:
  """Style inputs of the synthesis network: two per block, 2 * log2(R) - 2 (18 at 1024)."""
  return 2 * len(stage_resolutions(max_resolution))


class SynthesisNetworkV1(nn.Module):
  """ws (N, num_ws, w_dim) -> images (N, R, R, 3) float32 (linear) at a chosen stage R.

  Parameters: block_4 (const, layer0, layer1), block_8 ... block_{max} (layer0, layer1),
  to_rgb_4 ... to_rgb_{max}. Block i (block_4 is 0) reads ws[:, 2i] and ws[:, 2i + 1].
  Create every layer with ``init(rngs, ws, method=SynthesisNetworkV1.init_all)``.
  """
  max_resolution: int
  w_dim: int = 512
  fmap_base: int = 8192
  fmap_max: int = 512
  fmap_decay: float = 1.0
  blur_filter: Sequence[float] | None = (1, 2, 1)
  fused_scale_from: int = 128  # the reference's fused_scale='auto'

  @property
  def num_ws(self) -> int:
    return num_ws_for(self.max_resolution)

  def nf(self, resolution: int) -> int:
    return num_channels(resolution, self.fmap_base, self.fmap_max, self.fmap_decay)

  def setup(self):
    resolutions = stage_resolutions(self.max_resolution)
    blocks = {4: SynthesisFirstBlock(self.nf(4))}
    for i, r in enumerate(resolutions[1:], start=1):
      blocks[r] = SynthesisBlock(self.nf(r), i, fused=r >= self.fused_scale_from,
                                 blur_filter=self.blur_filter)
    self.block = blocks
    self.to_rgb = {r: EqualizedConv2d(3, kernel_size=1, gain=1.0) for r in resolutions}

  def _check_ws(self, ws: jax.Array) -> None:
    if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
      raise ValueError(f"expected ws (N, {self.num_ws}, {self.w_dim}), got {ws.shape}")

  def _features(self, ws: jax.Array, resolution: int, noise_mode: str) -> jax.Array:
    """ws -> (N, resolution, resolution, nf(resolution)), blocks 4 .. resolution."""
    h = self.block[4](ws[:, 0], ws[:, 1], noise_mode)
    for i, r in enumerate(stage_resolutions(resolution)[1:], start=1):
      h = self.block[r](h, ws[:, 2 * i], ws[:, 2 * i + 1], noise_mode)
    return h

  def __call__(self, ws: jax.Array, resolution: int, alpha: Alpha = None,
               noise_mode: str = "random") -> jax.Array:
    """Stable stage when ``alpha`` is None, else fade-in of block ``resolution`` (>= 8).

    noise_mode 'random' needs the 'noise' rng; 'const' and 'none' need no rng.
    """
    check_stage(resolution, self.max_resolution, alpha)
    self._check_ws(ws)
    ws = ws.astype(jnp.float32)
    if alpha is None:
      return self.to_rgb[resolution](self._features(ws, resolution, noise_mode))
    coarse = self._features(ws, resolution // 2, noise_mode)
    i = len(stage_resolutions(resolution)) - 1
    old_rgb = upsample_2x(self.to_rgb[resolution // 2](coarse))
    new = self.block[resolution](coarse, ws[:, 2 * i], ws[:, 2 * i + 1], noise_mode)
    return lerp(old_rgb, self.to_rgb[resolution](new), alpha)

  def init_all(self, ws: jax.Array, noise_mode: str = "none") -> jax.Array:
    """Touches every block and every to_rgb; returns the max-resolution images."""
    self._check_ws(ws)
    ws = ws.astype(jnp.float32)
    h = self.block[4](ws[:, 0], ws[:, 1], noise_mode)
    images = self.to_rgb[4](h)
    for i, r in enumerate(stage_resolutions(self.max_resolution)[1:], start=1):
      h = self.block[r](h, ws[:, 2 * i], ws[:, 2 * i + 1], noise_mode)
      images = self.to_rgb[r](h)
    return images


class GeneratorV1(nn.Module):
  """z (N, z_dim) [, labels (N,) int] -> images (N, R, R, 3): mapping, then synthesis.

  Parameters: mapping (MappingNetwork) and synthesis (SynthesisNetworkV1). Truncation,
  the w average and style mixing act on ``map``'s ws and belong to the training step.
  """
  max_resolution: int
  z_dim: int = 512
  w_dim: int = 512
  num_classes: int = 0
  mapping_layers: int = 8
  mapping_lr_multiplier: float = 0.01
  fmap_base: int = 8192
  fmap_max: int = 512
  fmap_decay: float = 1.0
  blur_filter: Sequence[float] | None = (1, 2, 1)
  fused_scale_from: int = 128

  @property
  def num_ws(self) -> int:
    return num_ws_for(self.max_resolution)

  def setup(self):
    self.mapping = MappingNetwork(self.z_dim, self.w_dim, num_classes=self.num_classes,
                                  num_layers=self.mapping_layers,
                                  lr_multiplier=self.mapping_lr_multiplier,
                                  gain_in_weights=True)
    self.synthesis = SynthesisNetworkV1(self.max_resolution, self.w_dim, self.fmap_base,
                                        self.fmap_max, self.fmap_decay, self.blur_filter,
                                        self.fused_scale_from)

  def map(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """z (N, z_dim) -> w (N, w_dim); as StyleGAN2's, the caller broadcasts it to num_ws."""
    return self.mapping(z, labels)

  def broadcast(self, w: jax.Array) -> jax.Array:
    """(N, w_dim) -> ws (N, num_ws, w_dim): one w for every layer."""
    return jnp.broadcast_to(w[:, None], (w.shape[0], self.num_ws, w.shape[-1]))

  def synthesize(self, ws: jax.Array, resolution: int, alpha: Alpha = None,
                 noise_mode: str = "random") -> jax.Array:
    return self.synthesis(ws, resolution, alpha, noise_mode)

  def __call__(self, z: jax.Array, labels: jax.Array | None, resolution: int,
               alpha: Alpha = None, noise_mode: str = "random") -> jax.Array:
    return self.synthesize(self.broadcast(self.map(z, labels)), resolution, alpha, noise_mode)

  def init_all(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Touches the mapping and every synthesis layer; returns max-resolution images."""
    return self.synthesis.init_all(self.broadcast(self.map(z, labels)))


class DiscriminatorBlock(nn.Module):
  """(N, H, W, C) -> (N, H/2, W/2, out_features): conv3x3 -> lrelu -> blur -> down conv -> lrelu."""
  features: int
  out_features: int
  fused: bool = False
  blur_filter: Sequence[float] | None = (1, 2, 1)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = lrelu(EqualizedConv2d(self.features, 3, name="conv0")(x))
    h = blur(h, self.blur_filter)
    return lrelu(EqualizedConv2d(self.out_features, 3, down=True, fused=self.fused,
                                 name="conv1_down")(h))


class DiscriminatorFinalBlock(nn.Module):
  """(N, 4, 4, C) -> scores (N, max(num_classes, 1)) float32."""
  features: int
  dense_features: int
  num_outputs: int = 1
  mbstd_group_size: int = 4
  mbstd_num_features: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.astype(jnp.float32)
    if self.mbstd_group_size > 1:
      h = minibatch_stddev(h, self.mbstd_group_size, self.mbstd_num_features)
    h = lrelu(EqualizedConv2d(self.features, 3, name="conv")(h))
    h = h.reshape(h.shape[0], -1)
    # The reference's dense: gain in the weights, then bias, then lrelu (no output gain).
    h = lrelu(EqualizedDense(self.dense_features, gain=SQRT2, name="dense0")(h))
    return EqualizedDense(self.num_outputs, gain=1.0, name="dense1")(h)


class DiscriminatorV1(nn.Module):
  """images (N, R, R, 3) [, labels (N,) int] -> logits (N,) float32 at a chosen stage R.

  Parameters: from_rgb_4 ... from_rgb_{max}, block_8 ... block_{max} (conv0, conv1_down)
  and block_4 (conv, dense0, dense1). Create them all with
  ``init(rng, x, method=DiscriminatorV1.init_all)``.
  """
  max_resolution: int
  num_classes: int = 0
  fmap_base: int = 8192
  fmap_max: int = 512
  fmap_decay: float = 1.0
  mbstd_group_size: int = 4
  mbstd_num_features: int = 1
  blur_filter: Sequence[float] | None = (1, 2, 1)
  fused_scale_from: int = 128

  def nf(self, resolution: int) -> int:
    return num_channels(resolution, self.fmap_base, self.fmap_max, self.fmap_decay)

  def setup(self):
    resolutions = stage_resolutions(self.max_resolution)
    self.from_rgb = {r: EqualizedConv2d(self.nf(r), kernel_size=1) for r in resolutions}
    blocks = {4: DiscriminatorFinalBlock(self.nf(4), self.nf(2), max(self.num_classes, 1),
                                         self.mbstd_group_size, self.mbstd_num_features)}
    for r in resolutions[1:]:
      blocks[r] = DiscriminatorBlock(self.nf(r), self.nf(r // 2),
                                     fused=r >= self.fused_scale_from,
                                     blur_filter=self.blur_filter)
    self.block = blocks

  def _from_rgb(self, x: jax.Array, resolution: int) -> jax.Array:
    return lrelu(self.from_rgb[resolution](x))

  def _scores(self, h: jax.Array, resolution: int, labels: jax.Array | None) -> jax.Array:
    """Features (N, R, R, nf(R)) -> blocks R .. 4 -> logits (N,)."""
    for r in reversed(stage_resolutions(resolution)):
      h = self.block[r](h)
    if self.num_classes == 0:
      return h[:, 0]
    if labels is None:
      raise ValueError(f"a conditional D (num_classes={self.num_classes}) needs labels")
    # The reference's LabelSwitch: one output per class, keep the true class's.
    return jnp.take_along_axis(h, labels.astype(jnp.int32)[:, None], axis=1)[:, 0]

  def __call__(self, x: jax.Array, resolution: int, alpha: Alpha = None,
               labels: jax.Array | None = None) -> jax.Array:
    """Stable stage when ``alpha`` is None, else fade-in of block ``resolution`` (>= 8)."""
    check_stage(resolution, self.max_resolution, alpha)
    if x.shape[1:] != (resolution, resolution, 3):
      raise ValueError(f"expected images (N, {resolution}, {resolution}, 3), got {x.shape}")
    x = x.astype(jnp.float32)
    if alpha is None:
      return self._scores(self._from_rgb(x, resolution), resolution, labels)
    new = self.block[resolution](self._from_rgb(x, resolution))
    old = self._from_rgb(downsample_2x(x), resolution // 2)
    return self._scores(lerp(old, new, alpha), resolution // 2, labels)

  def init_all(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """x (N, max, max, 3): touches every from_rgb and block; returns max-resolution logits."""
    if self.num_classes and labels is None:
      labels = jnp.zeros((x.shape[0],), jnp.int32)
    scores = self(x, self.max_resolution, labels=labels)
    coarse = x.astype(jnp.float32)
    for r in reversed(stage_resolutions(self.max_resolution)[:-1]):
      coarse = downsample_2x(coarse)
      self._from_rgb(coarse, r)
    return scores
