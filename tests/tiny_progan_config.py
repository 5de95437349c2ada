"""The tests' tiny ProGAN with a long fade, as a config file for python -m gan.main.

4 steps at 4x4, then FADE_STEPS steps fading into 8x8 (the run ends with the
fade), a checkpoint every 4 steps: killed or re-sharded runs stop mid-fade.
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
  return config
