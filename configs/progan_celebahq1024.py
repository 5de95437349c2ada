"""ProGAN on CelebA-HQ at 1024x1024 (Karras et al. 2017), the official 8-GPU preset.

Growth 4x4 -> 1024x1024 in 600k-image fade-in and stable phases, 12M images in
all; WGAN-GP (lambda 10, drift 0.001); Adam 1e-3 (0, 0.99), raised to
1.5e-3 .. 3e-3 from 128x128; G EMA 0.999; 512 channels up to 32x32, then
halving to 16 at 1024. Batch per resolution: see gan/families/progan/config.py.
Needs TFDS celeb_a_hq/1024, built from manual downloads (docs/data.md).
"""

from gan.families.progan.config import progan_defaults


def get_config():
  return progan_defaults()
