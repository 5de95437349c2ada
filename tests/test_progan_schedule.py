"""ProGAN growth schedule: boundaries, per-resolution settings, a simulated run, errors."""

import math

import ml_collections
import pytest

from gan.growth.schedule import FADE, STABLE, Schedule, parse_resolution_map

BATCH_SIZES = {4: 512, 8: 256, 16: 128, 32: 64}
TOTAL = 12_000_000


def make_schedule(**overrides) -> Schedule:
  """Start 4, final 32, 600k fade / 600k stable, 12M total (the official kimg values)."""
  settings = dict(start_resolution=4, final_resolution=32, fade_images=600_000,
                  stable_images=600_000, total_images=TOTAL, batch_sizes=BATCH_SIZES,
                  default_batch_size=16, default_lr=1e-3)
  return Schedule(**{**settings, **overrides})


def state(schedule, images):
  phase = schedule.phase_at(images)
  return phase.resolution, phase.kind, schedule.alpha(images), phase.batch_size


def test_boundaries_are_exact():
  s = make_schedule()
  assert state(s, 0) == (4, STABLE, 1.0, 512)
  assert state(s, 599_999) == (4, STABLE, 1.0, 512)
  assert state(s, 600_000) == (8, FADE, 0.0, 256)  # the fade already uses the new batch size
  assert state(s, 900_000) == (8, FADE, 0.5, 256)
  assert s.alpha(1_199_999) == pytest.approx(599_999 / 600_000) and s.alpha(1_199_999) < 1
  assert state(s, 1_200_000) == (8, STABLE, 1.0, 256)
  assert state(s, 1_800_000) == (16, FADE, 0.0, 128)
  assert state(s, 2_400_000) == (16, STABLE, 1.0, 128)
  assert state(s, 3_000_000) == (32, FADE, 0.0, 64)
  assert state(s, 3_450_000) == (32, FADE, 0.75, 64)
  assert state(s, 3_600_000) == (32, STABLE, 1.0, 64)
  assert state(s, TOTAL - 1) == (32, STABLE, 1.0, 64)
  assert state(s, TOTAL) == (32, STABLE, 1.0, 64)  # after the last step: still the last phase
  with pytest.raises(ValueError, match="images_shown"):
    s.phase_at(-1)


def test_phase_list():
  phases = make_schedule().phases
  assert len(phases) == 7
  assert [(p.resolution, p.kind) for p in phases] == [
      (4, STABLE), (8, FADE), (8, STABLE), (16, FADE), (16, STABLE), (32, FADE), (32, STABLE)]
  assert [p.start_images for p in phases] == [i * 600_000 for i in range(7)]
  assert [p.end_images for p in phases] == [(i + 1) * 600_000 for i in range(6)] + [None]
  assert [p.index for p in phases] == list(range(7))
  assert [p.fading for p in phases] == [False, True, False, True, False, True, False]


def test_learning_rates_and_defaults():
  s = make_schedule(batch_sizes={4: 512}, g_learning_rates={16: 2e-3, 32: 3e-3},
                    d_learning_rates={32: 4e-3}, default_lr=1e-3)
  by_phase = [(p.resolution, p.batch_size, p.g_lr, p.d_lr) for p in s.phases]
  assert by_phase == [(4, 512, 1e-3, 1e-3), (8, 16, 1e-3, 1e-3), (8, 16, 1e-3, 1e-3),
                      (16, 16, 2e-3, 1e-3), (16, 16, 2e-3, 1e-3),
                      (32, 16, 3e-3, 4e-3), (32, 16, 3e-3, 4e-3)]


def test_per_resolution_lengths():
  s = make_schedule(final_resolution=16, fade_images={8: 100, 16: 200},
                    stable_images={4: 50, 8: 60}, total_images=1_000)
  assert [p.start_images for p in s.phases] == [0, 50, 150, 210, 410]
  assert s.alpha(100) == pytest.approx(0.5) and s.alpha(260) == pytest.approx(0.25)


def simulate(schedule):
  """The training loop: each step uses the phase and alpha at its start images."""
  images, steps = 0, []
  while images < schedule.total_images:
    phase = schedule.phase_at(images)
    steps.append((images, phase, schedule.alpha(images)))
    images += phase.batch_size
  return steps


def expected_steps_per_phase(schedule):
  """Independent arithmetic: a phase's first step starts where the previous one's overshoot ends."""
  counts, start = [], 0
  for p in schedule.phases:
    end = schedule.total_images if p.end_images is None else p.end_images
    counts.append(math.ceil((end - start) / p.batch_size))
    start += counts[-1] * p.batch_size
  return counts


def test_simulated_run():
  s = make_schedule()
  steps = simulate(s)
  indices = [p.index for _, p, _ in steps]
  assert sorted(set(indices)) == list(range(len(s.phases)))  # every phase visited
  for (_, before, alpha_before), (images, after, alpha) in zip(steps, steps[1:]):
    assert after.resolution >= before.resolution
    assert after.index in (before.index, before.index + 1)
    if after.batch_size != before.batch_size:
      assert after.index == before.index + 1  # batch size changes only at phase boundaries
    if after.index == before.index:
      assert after.fading or alpha == 1.0
      if after.fading:
        assert 0.0 < alpha < 1.0 and alpha > alpha_before
    else:
      # The first step of a phase starts within one (previous) batch of its nominal start.
      assert after.start_images <= images < after.start_images + before.batch_size
      assert alpha < before.batch_size / 600_000 if after.fading else alpha == 1.0
  counts = [indices.count(i) for i in range(len(s.phases))]
  assert counts == expected_steps_per_phase(s)
  assert counts[0] == math.ceil(600_000 / 512)


def test_steps_per_phase_when_batch_sizes_divide_lengths():
  s = make_schedule(fade_images=512 * 1200, stable_images=512 * 1200, total_images=512 * 10_000)
  indices = [p.index for _, p, _ in simulate(s)]
  counts = [indices.count(i) for i in range(len(s.phases))]
  lengths = [(p.end_images or s.total_images) - p.start_images for p in s.phases]
  assert counts == [length // p.batch_size for length, p in zip(lengths, s.phases)]


def test_total_images_cuts_the_schedule_short():
  s = make_schedule(total_images=2_000_000)
  assert [(p.resolution, p.kind) for p in s.phases] == [
      (4, STABLE), (8, FADE), (8, STABLE), (16, FADE)]
  assert s.phases[-1].end_images == 2_400_000  # nominal end: alpha keeps its slope
  assert s.alpha(1_950_000) == pytest.approx(0.25)
  assert s.phase_at(5_000_000).index == 3 and s.alpha(5_000_000) == 1.0
  assert not s.reaches_final_resolution and "before 32x32" in s.describe()
  assert len(make_schedule(total_images=600_000).phases) == 1  # ends exactly at a boundary
  assert make_schedule().reaches_final_resolution


def test_describe_lists_every_phase():
  lines = make_schedule().describe().splitlines()
  assert len(lines) == 1 + 7 + 1
  assert lines[2].split() == ["1", "8", "fade", "600.0", "1200.0", "256", "0.001", "0.001"]
  assert lines[7].split()[4] == "12000.0"


def test_from_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict({"resolution": 32})
  c.train = ml_collections.ConfigDict({"lr": 1e-3})
  c.schedule = ml_collections.ConfigDict(dict(
      start_resolution=4, fade_images=600_000, stable_images=600_000, total_images=TOTAL,
      batch_sizes="4:512,8:256,16:128,32:64,64:32,128:16,256:8,512:4,1024:4",
      default_batch_size=16, learning_rates="16:1.5e-3, 32:2e-3, 1024:3e-3"))
  s = Schedule.from_config(c)
  assert s.phases == make_schedule(g_learning_rates={16: 1.5e-3, 32: 2e-3},
                                   d_learning_rates={16: 1.5e-3, 32: 2e-3}).phases
  c.schedule.batch_sizes, c.schedule.learning_rates = "", ""
  assert {(p.batch_size, p.g_lr) for p in Schedule.from_config(c).phases} == {(16, 1e-3)}
  # ConfigDict fields keep their first type, so per-resolution lengths need a str field.
  c.schedule = ml_collections.ConfigDict({**c.schedule.to_dict(), "fade_images": "8:10,16:10,32:10",
                                          "stable_images": "600000"})
  assert Schedule.from_config(c).phases[1].end_images == 600_010


def test_parse_resolution_map():
  assert parse_resolution_map("", int) == {}
  assert parse_resolution_map(" 4:512 , 8:256,", int) == {4: 512, 8: 256}
  assert parse_resolution_map("128:1.5e-3,1024:3e-3", float) == {128: 1.5e-3, 1024: 3e-3}


@pytest.mark.parametrize("text, value_type, message", [
    ("4=512", int, r"Bad entry '4=512' in '4=512': expected comma-separated 'resolution:int' "
                   r"pairs, e\.g\. '4:512"),
    ("4:512,8:abc", int, r"Bad entry '8:abc'.*'resolution:int'"),
    ("4:1.5", int, r"Bad entry '4:1.5'"),
    ("x:1e-3", float, r"Bad entry 'x:1e-3'.*'resolution:float' pairs, e\.g\. '128:1.5e-3"),
    ("12:5", int, r"Bad entry '12:5'.*12 is not a power of two"),
    ("4:1,4:2", int, r"Bad entry '4:2'.*appears twice"),
])
def test_parse_errors_name_the_entry(text, value_type, message):
  with pytest.raises(ValueError, match=message):
    parse_resolution_map(text, value_type)


@pytest.mark.parametrize("overrides, message", [
    (dict(final_resolution=48), "final_resolution = 48 is not a power of two"),
    (dict(start_resolution=64), "start_resolution 64 > final_resolution 32"),
    (dict(fade_images=0), "fade_images for 8x8 is 0; give a positive int"),
    (dict(stable_images={4: 10, 8: 10}), "stable_images for 16x16 is None"),
    (dict(total_images=0), "total_images = 0 must be a positive int"),
    (dict(batch_sizes={8: 0}), "batch size 0 for 8 must be an int >= 1"),
    (dict(default_batch_size=0), "batch size 0 for default"),
    (dict(batch_sizes={12: 4}), r"batch_sizes has resolutions \[12\]"),
    (dict(default_lr=0.0), "learning rate 0.0 for default must be > 0"),
])
def test_invalid_settings_name_the_fix(overrides, message):
  with pytest.raises(ValueError, match=message):
    make_schedule(**overrides)


@pytest.mark.parametrize("overrides", [
    {},  # the official kimg values, batches not dividing the lengths (ceil per phase)
    dict(fade_images=512 * 1200, stable_images=512 * 1200, total_images=512 * 10_000),
    dict(total_images=2_000_000),  # cut short inside a fade
    # A batch so large that its last step jumps over the next phase entirely.
    dict(batch_sizes={4: 1000, 8: 50, 16: 50, 32: 50}, fade_images=40, stable_images=1000,
         total_images=3000),
])
def test_step_spans_match_a_simulated_run(overrides):
  s = make_schedule(**overrides)
  indices = [p.index for _, p, _ in simulate(s)]  # one entry per step, in order
  spans = s.step_spans()
  assert spans[0][1] == 0 and spans[-1][2] == len(indices)
  for (phase, start, end), (_, next_start, _) in zip(spans, spans[1:]):
    assert end == next_start  # contiguous
  assert [i for phase, start, end in spans for i in [phase.index] * (end - start)] == indices
