"""BigGAN channel layouts per resolution (Brock et al. 2018, appendix B).

Channel counts are multipliers of the base width ``ch``. G maps z to a 4x4 map
with ``g_channels[0]`` channels and block i maps ``g_channels[i]`` to
``g_channels[i + 1]`` while doubling the resolution. D block i maps
``d_channels[i - 1]`` (RGB for i = 0) to ``d_channels[i]`` and halves the
resolution where ``d_down[i]``. These tables reproduce the reference code's
parameter counts exactly (tests/test_biggan_model.py).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Architecture:
  g_channels: tuple[int, ...]
  d_channels: tuple[int, ...]
  d_down: tuple[bool, ...]

  @property
  def num_g_blocks(self) -> int:
    return len(self.g_channels) - 1

  def g_resolutions(self) -> tuple[int, ...]:
    """Output resolution of each G block (the first block reads 4x4)."""
    return tuple(4 * 2 ** (i + 1) for i in range(self.num_g_blocks))

  def d_resolutions(self, resolution: int) -> tuple[int, ...]:
    """Output resolution of each D block for an input of ``resolution``."""
    out, r = [], resolution
    for down in self.d_down:
      r = r // 2 if down else r
      out.append(r)
    return tuple(out)


def _downs(n_down: int) -> tuple[bool, ...]:
  return (True,) * n_down + (False,)


ARCHITECTURES: dict[int, Architecture] = {
    32: Architecture(g_channels=(4, 4, 4, 4), d_channels=(4, 4, 4, 4),
                     d_down=(True, True, False, False)),
    64: Architecture(g_channels=(16, 16, 8, 4, 2), d_channels=(1, 2, 4, 8, 16),
                     d_down=_downs(4)),
    128: Architecture(g_channels=(16, 16, 8, 4, 2, 1), d_channels=(1, 2, 4, 8, 16, 16),
                      d_down=_downs(5)),
    256: Architecture(g_channels=(16, 16, 8, 8, 4, 2, 1), d_channels=(1, 2, 4, 8, 8, 16, 16),
                      d_down=_downs(6)),
    512: Architecture(g_channels=(16, 16, 8, 8, 4, 2, 1, 1),
                      d_channels=(1, 1, 2, 4, 8, 8, 16, 16), d_down=_downs(7)),
}


def get_architecture(resolution: int) -> Architecture:
  if resolution not in ARCHITECTURES:
    raise ValueError(
        f"BigGAN has no architecture for resolution {resolution}; "
        f"choose one of {sorted(ARCHITECTURES)} (config.model.resolution).")
  return ARCHITECTURES[resolution]


def parse_attention(spec) -> tuple[int, ...]:
  """'64' -> (64,); '32_64' -> (32, 64); '' or '0' -> ()."""
  return tuple(int(r) for r in str(spec).split("_") if r and int(r) > 0)
