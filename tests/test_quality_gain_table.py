"""The quality monitor's stored floor gains are what its calibration computes, to the bit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dsp.quality import FLOOR_GAINS, QualityMonitor, QualitySettings


@pytest.mark.parametrize("fs", [1000.0, 2000.0, 2048.0])
@pytest.mark.parametrize("line", [50.0, 60.0, 0.0])
def test_the_usual_cases_are_stored_and_equal_the_calibration(fs: float, line: float) -> None:
    q = QualityMonitor(fs, 2, QualitySettings(line_freq=line))
    key = q._gain_key()
    assert key in FLOOR_GAINS  # a start at these rates skips the calibration
    assert q._noise_gain == FLOOR_GAINS[key] == q._calibrate_floor_gain()


def test_every_stored_gain_equals_the_calibration() -> None:
    for key, gain in FLOOR_GAINS.items():
        fs, _band, _flat, _pct, _window, notches = key
        # the mains frequency the key's notches come from (both: "unknown, check both")
        line = 0.0 if {50.0, 60.0} <= set(notches) else (50.0 if 50.0 in notches else 60.0)
        q = QualityMonitor(fs, 1, QualitySettings(line_freq=line))
        assert q._gain_key() == key
        assert q._calibrate_floor_gain() == gain


def test_a_rate_estimated_from_a_time_column_uses_the_table() -> None:
    """A CSV's time column gives 2000.0000000000002 Hz: the stored gain, not 31 s of noise."""
    exact = QualityMonitor(2000.0, 2, QualitySettings(line_freq=50.0))
    q = QualityMonitor(2000.0000000000002, 2, QualitySettings(line_freq=50.0))
    assert q._gain_key() in FLOOR_GAINS and q._noise_gain == exact._noise_gain
    assert abs(q._calibrate_floor_gain() / q._noise_gain - 1) < 1e-9


def test_another_rate_is_calibrated() -> None:
    q = QualityMonitor(1500.0, 1, QualitySettings())
    assert q._gain_key() not in FLOOR_GAINS
    assert q._noise_gain == q._calibrate_floor_gain()
    assert 1.0 < q._noise_gain < 1.6  # a low percentile of short RMS values understates


def test_a_monitor_at_a_stored_rate_needs_no_random_numbers() -> None:
    """The point of the table: the start of ``fireorder analyze`` imports no numpy.random."""
    code = (
        "import sys; from dsp.quality import QualityMonitor, QualitySettings; "
        "QualityMonitor(2000.0, 4, QualitySettings(line_freq=50.0)); "
        "print('numpy.random' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
