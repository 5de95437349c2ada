"""StyleGAN2 on FFHQ 256x256 with stylegan2-ada-pytorch's --cfg=paper256 settings.

channel_base 16384 (fmaps 0.5: 512 channels up to 32x32, then 256 at 64, 128 at 128,
64 at 256), batch 64 with minibatch-stddev groups of 8, lr 0.0025, R1 gamma 1,
EMA half-life 20 kimg, 8 mapping layers, 25,000 kimg.

Prepare FFHQ as for configs/stylegan2_ffhq1024.py, at --resolution 256:
  python -m gan.data.prepare ~/ffhq/images1024x1024 ~/datasets/ffhq256 --resolution 256 \\
      --labels none
The published FID (50k samples) needs the Inception weights, which a run cannot download:
add --config.eval.metrics=fid --config.eval.num_samples=50000 --config.eval.every_steps=N
--config.eval.inception_weights=PATH (docs/evaluation.md says where to get them).
"""

from gan.families.stylegan.config2 import stylegan2_defaults


def get_config():
  config = stylegan2_defaults()
  config.model.resolution = 256
  config.model.channel_base = 16384
  config.model.mbstd_group_size = 8
  # The reference's mixed precision (its top 4 resolutions in float16, conv outputs clamped
  # to +-256), in bfloat16 here; params and optimiser state stay float32. On a CPU
  # bfloat16 is slower (emulated): --config.model.num_bf16_res=0 there.
  config.model.num_bf16_res = 4
  config.model.conv_clamp = 256.0
  config.data.name = "~/datasets/ffhq256"
  config.train.batch_size = 64
  config.train.num_steps = 390_625   # 25,000 kimg at batch 64
  config.train.g_lr = config.train.d_lr = 0.0025
  config.train.r1_gamma = 1.0
  config.train.ema_kimg = 20.0
  config.log_every_steps = 100
  config.sample_every_steps = 5_000
  config.checkpoint_every_steps = 5_000
  return config
