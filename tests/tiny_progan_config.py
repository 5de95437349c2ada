"""The tests' tiny ProGAN with a long fade, as a config file for python -m gan.main.

4 steps at 4x4, then FADE_STEPS steps fading into 8x8 (the run ends with the
fade), a checkpoint every 4 steps: killed or re-sharded runs stop mid-fade.

Adam's epsilon is 1 (not 1e-8): then an update is a smooth function of the
gradient, so float rounding that differs between device counts stays at
rounding level instead of being amplified by g / sqrt(nu) for tiny gradients
(with 1e-8, the same 28 steps on 1 and on 8 devices differed by up to 15%,
depending on the seed: tests/test_exact_resume.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import BATCH, PHASE_IMAGES, tiny_progan  # noqa: E402

FADE_STEPS = 24
TOTAL_STEPS = PHASE_IMAGES // BATCH + FADE_STEPS


def get_config():
  config = tiny_progan()
  config.schedule.fade_images = FADE_STEPS * BATCH
  config.schedule.total_images = PHASE_IMAGES + FADE_STEPS * BATCH  # ends with the fade
  config.log_every_steps = config.checkpoint_every_steps = 4
  config.train.adam_eps = 1.0
  return config
