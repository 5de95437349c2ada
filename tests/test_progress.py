"""gan/train/progress.py with a fake clock; expected numbers are computed by hand."""

import math

import pytest

from gan.train.progress import PhaseSpan, Progress, format_duration

BATCH = 16  # images per step in the single-phase runs


def single(total=600, start_step=0, start_images=0, now=100.0):
  return Progress(total, [PhaseSpan("train", 0, total)], start_step, start_images, now)


def test_single_phase_at_two_steps_per_second():
  # Construction at t=100; 2 steps/s, 16 images/step = 32 img/s throughout.
  p = single()
  line, s = p.update(100, 1600, now=150.0)
  assert line == "step 100/600 (16.7%) | 1,600 images | 32.0 img/s | elapsed 50s | ETA 4m10s"
  assert s == {"progress": 100 / 600, "elapsed_seconds": 50.0, "images_shown": 1600.0,
               "eta_seconds": 250.0, "steps_per_sec": 2.0, "images_per_sec": 32.0}

  line, s = p.update(400, 6400, now=300.0)  # window 100 -> 400 steps over 150 s
  assert line == "step 400/600 (66.7%) | 6,400 images | 32.0 img/s | elapsed 3m20s | ETA 1m40s"
  assert s["progress"] == pytest.approx(2 / 3)
  assert s["elapsed_seconds"] == 200.0
  assert s["eta_seconds"] == pytest.approx(100.0)
  assert s["steps_per_sec"] == pytest.approx(2.0)
  assert s["images_per_sec"] == pytest.approx(32.0)

  line, s = p.update(600, 9600, now=400.0)
  assert line == "step 600/600 (100.0%) | 9,600 images | 32.0 img/s | elapsed 5m00s | ETA 0s"
  assert s["progress"] == 1.0 and s["eta_seconds"] == 0.0
  assert "phase" not in line and "phase_progress" not in s
  assert all(type(v) is float for v in s.values())


def test_eta_uses_ema_of_window_rates():
  p = single(now=0.0)
  p.update(100, 1600, now=50.0)  # 2 steps/s: sets the EMA to 2
  _, s = p.update(200, 3200, now=100.0)  # 2 steps/s: EMA stays 2
  assert s["eta_seconds"] == pytest.approx(400 / 2)
  line, s = p.update(300, 4800, now=200.0)  # slow window (checkpoint): 1 step/s
  # EMA = 0.3 * 1 + 0.7 * 2 = 1.7; the window rate itself is reported raw.
  assert p.smoothed_steps_per_sec == pytest.approx(1.7)
  assert s["steps_per_sec"] == pytest.approx(1.0)
  assert s["images_per_sec"] == pytest.approx(16.0)
  assert s["eta_seconds"] == pytest.approx(300 / 1.7)  # 176.47 s, not 300 s at the raw rate
  assert line.endswith("| 16.0 img/s | elapsed 3m20s | ETA 2m57s")
  _, s = p.update(400, 6400, now=250.0)  # back to 2 steps/s: 0.3 * 2 + 0.7 * 1.7 = 1.79
  assert p.smoothed_steps_per_sec == pytest.approx(1.79)
  assert s["eta_seconds"] == pytest.approx(200 / 1.79)


def test_resumed_run_counts_from_its_own_start():
  # Resumed at step 300 (4,800 images) at t=1000; steps 300..400 take 50 s.
  p = single(start_step=300, start_images=4800, now=1000.0)
  line, s = p.update(400, 6400, now=1050.0)
  assert line == "step 400/600 (66.7%) | 6,400 images | 32.0 img/s | elapsed 50s | ETA 1m40s"
  assert s["elapsed_seconds"] == 50.0
  assert s["steps_per_sec"] == pytest.approx(2.0)  # 100 steps in 50 s, not 400
  assert s["images_per_sec"] == pytest.approx(32.0)  # 1,600 images in 50 s, not 6,400
  assert s["eta_seconds"] == pytest.approx(100.0)  # 200 remaining steps
  assert s["progress"] == pytest.approx(400 / 600)


# ProGAN-like: 7 phases of unequal length, 1,000 steps.
BOUNDS = [0, 50, 150, 250, 400, 550, 750, 1000]
NAMES = ["4x4 stable", "8x8 fade", "8x8 stable", "16x16 fade", "16x16 stable", "32x32 fade",
         "32x32 stable"]
PHASES = [PhaseSpan(n, a, b) for n, a, b in zip(NAMES, BOUNDS, BOUNDS[1:])]


@pytest.mark.parametrize(
    "step, index, name, fraction, phase_eta, text",
    [
        (49, 1, "4x4 stable", 49 / 50, 0.5, "phase 1/7 4x4 stable 98% ETA 1s"),
        (50, 2, "8x8 fade", 0.0, 50.0, "phase 2/7 8x8 fade 0% ETA 50s"),
        (325, 4, "16x16 fade", 0.5, 37.5, "phase 4/7 16x16 fade 50% ETA 38s"),
        (399, 4, "16x16 fade", 149 / 150, 0.5, "phase 4/7 16x16 fade 99% ETA 1s"),
        (400, 5, "16x16 stable", 0.0, 75.0, "phase 5/7 16x16 stable 0% ETA 1m15s"),
        (410, 5, "16x16 stable", 10 / 150, 70.0, "phase 5/7 16x16 stable 7% ETA 1m10s"),
        (750, 7, "32x32 stable", 0.0, 125.0, "phase 7/7 32x32 stable 0% ETA 2m05s"),
        (1000, 7, "32x32 stable", 1.0, 0.0, "phase 7/7 32x32 stable 100% ETA 0s"),
    ])
def test_multi_phase(step, index, name, fraction, phase_eta, text):
  # 2 steps/s, 8 images/step from t=7: one window from step 0 to `step`.
  p = Progress(1000, PHASES, 0, 0, now=7.0)
  line, s = p.update(step, 8 * step, now=7.0 + step / 2)
  assert s["eta_seconds"] == pytest.approx((1000 - step) / 2)
  assert p.phase_at(step) == (index - 1, PHASES[index - 1])
  assert p.phase_at(step)[1].name == name
  assert line.endswith(" | " + text)
  assert line.count("|") == 5
  assert s["phase_progress"] == pytest.approx(fraction)
  assert s["phase_eta_seconds"] == pytest.approx(phase_eta)
  assert s["progress"] == pytest.approx(step / 1000)


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.9, "0s"), (45, "45s"), (59.99, "59s"), (60, "1m00s"), (362, "6m02s"),
    (3599, "59m59s"), (3600, "1h00m"), (7500, "2h05m"), (7559, "2h05m"), (86399, "23h59m"),
    (86400, "1d00h"), (3 * 86400 + 4 * 3600 + 59 * 60, "3d04h"), (40 * 86400, "40d00h"),
    (-5, "0s"), (None, "?"), (math.inf, "?"), (math.nan, "?"),
])
def test_format_duration(seconds, text):
  assert format_duration(seconds) == text


def test_eta_unknown_until_a_window_is_measured():
  p = Progress(1000, PHASES, 0, 0, now=10.0)
  line, s = p.update(0, 0, now=10.0)  # zero-length window: nothing measured
  assert line == ("step 0/1000 (0.0%) | 0 images | ? img/s | elapsed 0s | ETA ? | "
                  "phase 1/7 4x4 stable 0% ETA ?")
  assert s == {"progress": 0.0, "elapsed_seconds": 0.0, "images_shown": 0.0,
               "phase_progress": 0.0}
  # The empty window stayed open: the next update measures from t=10.
  line, s = p.update(10, 80, now=15.0)
  assert s["steps_per_sec"] == pytest.approx(2.0)
  assert s["eta_seconds"] == pytest.approx(990 / 2)
  assert s["phase_eta_seconds"] == pytest.approx(40 / 2)
  assert "ETA ?" not in line


def test_eta_zero_at_the_end_even_without_a_rate():
  p = single(start_step=600, start_images=9600, now=5.0)
  line, s = p.update(600, 9600, now=5.0)
  assert line == "step 600/600 (100.0%) | 9,600 images | ? img/s | elapsed 0s | ETA 0s"
  assert s["eta_seconds"] == 0.0 and "steps_per_sec" not in s


def test_restart_window_leaves_pauses_out_of_the_rate():
  p = single(now=0.0)
  # The first step compiles for 60 s; the loop restarts the window after it.
  p.restart_window(60.0, step=1, images_shown=16)
  _, s = p.update(101, 1616, now=110.0)
  assert s["steps_per_sec"] == pytest.approx(2.0)
  assert s["elapsed_seconds"] == 110.0  # the compilation still counts as elapsed
  # A 100 s pause after an update (e.g. evaluation), then 2 steps/s again.
  p.restart_window(210.0)
  _, s = p.update(201, 3216, now=260.0)
  assert s["steps_per_sec"] == pytest.approx(2.0)
  assert p.smoothed_steps_per_sec == pytest.approx(2.0)
  assert s["elapsed_seconds"] == 260.0


def test_counters_going_backwards_measure_nothing():
  p = single(now=0.0)
  p.update(200, 3200, now=100.0)  # 2 steps/s
  _, s = p.update(150, 2400, now=120.0)  # rolled back without restart_window
  assert s["steps_per_sec"] == pytest.approx(2.0)  # last measured window, not negative
  assert p.smoothed_steps_per_sec == pytest.approx(2.0)
  _, s = p.update(250, 4000, now=170.0)  # measured from (150, t=120)
  assert s["steps_per_sec"] == pytest.approx(2.0)
  assert s["images_per_sec"] == pytest.approx(32.0)


def test_percent_never_rounds_up_to_100_before_the_end():
  p = single(total=6000, now=0.0)
  line, s = p.update(5999, 5999 * 16, now=2999.5)
  assert line.startswith("step 5999/6000 (99.9%) | 95,984 images")
  assert s["eta_seconds"] == pytest.approx(0.5)
  assert line.endswith("ETA 1s")  # rounded up: '0s' only at the end


def test_phases_may_start_before_start_step_but_not_after():
  phases = [PhaseSpan("8x8 stable", 100, 300), PhaseSpan("16x16 fade", 300, 600)]
  p = Progress(600, phases, 150, 2400, now=0.0)
  line, _ = p.update(250, 4000, now=50.0)
  assert line.endswith(" | phase 1/2 8x8 stable 75% ETA 25s")
  with pytest.raises(ValueError, match="starts at step 100, after start_step 50"):
    Progress(600, phases, 50, 800, now=0.0)


@pytest.mark.parametrize("total, phases, start_step, match", [
    (600, [], 0, "phases is empty"),
    (600, [PhaseSpan("a", 0, 200), PhaseSpan("b", 250, 600)], 0, r"not contiguous \(gap\)"),
    (600, [PhaseSpan("a", 0, 300), PhaseSpan("b", 250, 600)], 0, r"not contiguous \(overlap\)"),
    (600, [PhaseSpan("a", 0, 300), PhaseSpan("b", 300, 500)], 0, "ends at step 500.*total_steps is 600"),
    (600, [PhaseSpan("a", 0, 700)], 0, "ends at step 700"),
    (600, [("a", 0, 600)], 0, "not a PhaseSpan"),
    (0, [PhaseSpan("a", 0, 1)], 0, "total_steps must be >= 1"),
    (600, [PhaseSpan("a", 0, 600)], 601, "start_step must be in"),
    (600, [PhaseSpan("a", 0, 600)], -1, "start_step must be in"),
    (600.0, [PhaseSpan("a", 0, 600)], 0, "total_steps must be an int"),
])
def test_bad_arguments_raise(total, phases, start_step, match):
  with pytest.raises(ValueError, match=match):
    Progress(total, phases, start_step, 0, now=0.0)


def test_bad_phase_span_raises():
  with pytest.raises(ValueError, match="need 0 <= start_step < end_step"):
    PhaseSpan("a", 100, 100)
  with pytest.raises(ValueError, match="need 0 <= start_step < end_step"):
    PhaseSpan("a", -1, 100)
  with pytest.raises(ValueError, match="non-empty string"):
    PhaseSpan("", 0, 100)
  with pytest.raises(ValueError, match="must be an int"):
    PhaseSpan("a", 0, 100.0)
  with pytest.raises(ValueError, match="start_images must be >= 0"):
    Progress(600, [PhaseSpan("a", 0, 600)], 0, -16, now=0.0)
