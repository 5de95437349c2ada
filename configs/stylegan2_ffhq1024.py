"""StyleGAN2 config F on FFHQ 1024x1024 (Karras et al. 2020; stylegan2-ada-pytorch --cfg=stylegan2).

Skip generator, resnet discriminator, 8 mapping layers (lr multiplier 0.01),
channel_base 32768 (512 channels up to 64x64, then 256, 128, 64, 32), batch 32
(4 per GPU on 8), Adam(0, 0.99, 1e-8) at 0.002, R1 gamma 10 every 16 D steps,
path length 2 every 4 G steps, style mixing 0.9, EMA half-life 10 kimg, 25,000
kimg in all. Published: FID 2.84 (50k samples against the 70k images).

FFHQ is not in TFDS. Download images1024x1024 (https://github.com/NVlabs/ffhq-dataset),
then write it as a dataset directory:
  python -m gan.data.prepare ~/ffhq/images1024x1024 ~/datasets/ffhq1024 --resolution 1024 \\
      --labels none
and train with --config.data.name=~/datasets/ffhq1024 (the default path here).
The published FID (50k samples) needs the Inception weights, which a run cannot download:
add --config.eval.metrics=fid --config.eval.num_samples=50000 --config.eval.every_steps=N
--config.eval.inception_weights=PATH (docs/evaluation.md says where to get them).
"""

from gan.families.stylegan.config2 import stylegan2_defaults


def get_config():
  config = stylegan2_defaults()
  config.sample.truncation_cutoff = 0
  # The reference's mixed precision (its top 4 resolutions in float16, conv outputs clamped
  # to +-256), in bfloat16 here; params and optimiser state stay float32. On a CPU
  # bfloat16 is slower (emulated): --config.model.num_bf16_res=0 there.
  config.model.num_bf16_res = 4
  config.model.conv_clamp = 256.0
  config.log_every_steps = 100
  config.sample_every_steps = 5_000
  config.checkpoint_every_steps = 5_000
  return config
