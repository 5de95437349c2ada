"""StyleGAN (v1) on FFHQ 1024x1024 with the paper's settings (Karras et al. 2018, NVlabs/stylegan).

Mapping 8 x 512 (lr multiplier 0.01), synthesis from a learned 4x4 constant with AdaIN
and per-pixel noise, progressive growing from 8x8 (600k images fade + 600k stable per
resolution, 8-GPU minibatches, lr 1e-3 to 3e-3, Adam reset per resolution),
non-saturating logistic loss with R1 gamma 10, style mixing 0.9, G EMA half-life 10
kimg, 25,000 kimg. Published: FID 4.40 (50k samples). Figures use psi 0.7 on the first
8 w's (sample.truncation_*).

FFHQ is not in TFDS. Download images1024x1024 (https://github.com/NVlabs/ffhq-dataset),
then write it as a dataset directory:
  python -m gan.data.prepare ~/ffhq/images1024x1024 ~/datasets/ffhq1024 --resolution 1024 \\
      --labels none
and train with --config.data.name=~/datasets/ffhq1024 (the default path here).
The published FID (50k samples) needs the Inception weights, which a run cannot download:
add --config.eval.metrics=fid --config.eval.num_samples=50000 --config.eval.every_steps=N
--config.eval.inception_weights=PATH (docs/evaluation.md says where to get them).
"""

from gan.families.stylegan.config1 import stylegan_defaults


def get_config():
  config = stylegan_defaults()
  config.log_every_steps = 100
  config.sample_every_steps = 5_000
  config.checkpoint_every_steps = 5_000
  return config
