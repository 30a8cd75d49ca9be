"""Tests for dsp.quality: each defect is found, clean data passes, streaming is exact."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray
from scipy import signal

from dsp.quality import ISSUE_CODES, ChannelQuality, QualityMonitor, QualitySettings

FS = 2000.0
STATUSES = {"ok", "warn", "bad"}

# --- synthetic signals -----------------------------------------------------------------------


def band_noise(rng: np.random.Generator, n: int, rms: float, fs: float = FS) -> NDArray:
    """Band-limited (20-450 Hz) Gaussian noise: a stand-in for surface EMG."""
    sos = signal.butter(4, [20, min(450, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n + 2000))[2000:]
    return x * (rms / x.std())


def bursty_emg(
    rng: np.random.Generator, seconds: float, fs: float = FS, rest: float = 3.0, burst: float = 60.0
) -> NDArray:
    """Rest noise with a contraction burst every 2.5 s (a set of reps)."""
    n = round(seconds * fs)
    t = np.arange(n) / fs
    env = rest + (burst - rest) * np.clip(np.sin(2 * np.pi * t / 2.5) * 3 - 1.5, 0, 1)
    return band_noise(rng, n, 1.0, fs) * env


def qrs_train(
    n: int, fs: float = FS, rate_hz: float = 1.2, amp: float = 150.0, times: NDArray | None = None
) -> NDArray:
    """QRS-like pulses (Ricker wavelets, ~19 Hz peak) at a steady heart rate."""
    t = np.arange(n) / fs
    beats = np.arange(0.3, n / fs, 1 / rate_hz) if times is None else times
    out = np.zeros(n)
    for tb in beats:
        u = (t - tb) / 0.012
        out += amp * (1 - u**2) * np.exp(-(u**2) / 2)
    return out


def sine(n: int, freq: float, amp: float, fs: float = FS) -> NDArray:
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / fs + 0.3)


def run(x: NDArray, fs: float = FS, **kw: object) -> list[ChannelQuality]:
    x = x[:, None] if x.ndim == 1 else x
    mon = QualityMonitor(fs, x.shape[1], QualitySettings(**kw))  # type: ignore[arg-type]
    mon.process(x)
    return mon.report()


def check_consistent(q: ChannelQuality) -> None:
    assert q.status in STATUSES
    assert set(q.issues) <= set(ISSUE_CODES)
    assert len(q.advice) == len(q.issues)
    assert all(isinstance(a, str) and len(a) > 20 for a in q.advice)
    assert (q.status == "ok") == (not q.issues)
    json.dumps(q.to_dict(), allow_nan=False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


# --- clean data ------------------------------------------------------------------------------


def test_clean_signal_is_ok(rng: np.random.Generator) -> None:
    x = np.column_stack([bursty_emg(rng, 20) for _ in range(4)])
    for q in run(x):
        check_consistent(q)
        assert q.status == "ok", q
        assert q.issues == ()
        assert q.saturation_fraction == 0.0
        assert q.flat_fraction == 0.0
        assert q.hum_db < -20
        assert q.ecg_db < -10
        assert 1.5 < q.noise_rms_uv < 4.0  # rest level is 3 uV RMS
        assert q.missing_fraction == 0.0
        assert q.seconds == pytest.approx(20.0)


def test_nothing_complete_yet_is_no_data() -> None:
    mon = QualityMonitor(FS, 2)
    mon.process(np.zeros((100, 2)))
    for q in (*mon.report(), *mon.recent()):
        assert q.issues == ("no_data",)
        assert q.status == "warn"
        check_consistent(q)


# --- hum ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",  # (fs, line_freq setting, actual hum frequency, hum amplitude uV, expected status)
    [
        (2000.0, 50.0, 50.0, 30.0, "bad"),
        (2000.0, 50.0, 50.0, 7.0, "warn"),
        (1000.0, 60.0, 60.2, 30.0, "bad"),  # slightly off-nominal mains
        (1000.0, 60.0, 60.0, 7.0, "warn"),
        (2000.0, 0.0, 60.0, 30.0, "bad"),  # line frequency unknown: both are checked
        (2000.0, 0.0, 50.0, 30.0, "bad"),
    ],
)
def test_hum_detected(
    rng: np.random.Generator, case: tuple[float, float, float, float, str]
) -> None:
    fs, line_freq, hum_freq, amp, status = case
    n = round(20 * fs)
    rest = band_noise(rng, n, 3.0, fs)  # technician's check: subject at rest, good skin
    x = rest + sine(n, hum_freq, amp, fs) + sine(n, 3 * hum_freq, amp / 4, fs)
    (q,) = run(x, fs, line_freq=line_freq)
    check_consistent(q)
    assert q.status == status
    assert q.issues == ("hum",)  # hum is notched out of the noise floor: not also "noisy"
    assert q.hum_freq == round(hum_freq)
    assert f"{round(hum_freq)} Hz" in q.advice[0]
    # on-nominal hum is notched out of the floor; 0.2 Hz off, a little leaks (-20 dB)
    assert 2.5 < q.noise_rms_uv < 4.5
    assert "µV RMS" in q.advice[0]
    (ref,) = run(rest, fs, line_freq=line_freq)
    assert ref.status == "ok"
    assert q.hum_db > ref.hum_db + 20


def test_hum_grows_with_amplitude(rng: np.random.Generator) -> None:
    n = round(10 * FS)
    rest = band_noise(rng, n, 5.0)
    levels = [run(rest + sine(n, 50.0, a, FS))[0].hum_db for a in (3.0, 10.0, 30.0)]
    assert levels[0] < levels[1] < levels[2]
    assert levels[2] - levels[1] == pytest.approx(20 * math.log10(3), abs=1.0)


# --- saturation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("clip_fraction", "status"), [(0.03, "bad"), (0.003, "warn")])
@pytest.mark.parametrize("rail_known", [False, True])
def test_saturation_detected(
    rng: np.random.Generator, clip_fraction: float, status: str, rail_known: bool
) -> None:
    x = bursty_emg(rng, 20)
    rail = float(np.quantile(np.abs(x), 1 - clip_fraction))
    clipped = np.clip(x, -rail, rail)
    true_fraction = float(np.mean(np.abs(clipped) >= rail))
    (q,) = run(clipped, saturation_rail_uv=rail if rail_known else None)
    check_consistent(q)
    assert q.status == status
    assert q.issues == ("saturation",)
    assert q.saturation_fraction == pytest.approx(true_fraction, rel=0.1)
    assert "clipping" in q.advice[0]


def test_one_sided_clipping_with_offset(rng: np.random.Generator) -> None:
    """An electrode offset pushes the signal against only the top rail."""
    x = bursty_emg(rng, 20) + 500.0
    rail = float(np.quantile(x, 0.98))
    (q,) = run(np.minimum(x, rail))
    assert "saturation" in q.issues
    assert q.saturation_fraction == pytest.approx(0.02, rel=0.1)


# --- flat / lead-off -----------------------------------------------------------------------


@pytest.mark.parametrize(("fraction", "status"), [(0.3, "bad"), (0.1, "warn")])
def test_zeros_are_flat(rng: np.random.Generator, fraction: float, status: str) -> None:
    x = bursty_emg(rng, 20)
    t = np.arange(x.size) / FS
    x[(t % 2.0) < 2.0 * fraction] = 0.0  # the lead comes off periodically
    (q,) = run(x)
    check_consistent(q)
    assert q.status == status
    assert q.issues == ("flat",)
    assert q.flat_fraction == pytest.approx(fraction, abs=0.03)
    assert "electrode" in q.advice[0]


def test_constant_adc_value_is_flat_not_saturated() -> None:
    x = np.full(round(10 * FS), 8388.6)  # lead-off: the ADC sits at one code
    (q,) = run(x)
    check_consistent(q)
    assert q.status == "bad"
    assert q.issues == ("flat",)
    assert q.flat_fraction == 1.0
    assert q.saturation_fraction == 0.0


def test_stuck_code_with_glitches_is_flat(rng: np.random.Generator) -> None:
    """Exact repeats count as flat even when a rare glitch lifts the standard deviation."""
    x = np.full(round(10 * FS), -120.0)
    glitches = rng.choice(x.size, size=x.size // 50, replace=False)
    x[glitches] += rng.normal(0.0, 20.0, glitches.size)
    (q,) = run(x)
    assert "flat" in q.issues
    assert q.flat_fraction > 0.9


# --- ECG -----------------------------------------------------------------------------------


def test_ecg_detected(rng: np.random.Generator) -> None:
    n = round(20 * FS)
    (q,) = run(band_noise(rng, n, 3.0) + qrs_train(n))
    check_consistent(q)
    assert q.status == "warn"  # ECG is filterable physiology: never "bad" on its own
    assert q.issues == ("ecg",)
    assert q.ecg_db > 3.0
    assert q.ecg_periodicity > 0.5
    assert "ECG" in q.advice[0]


def test_irregular_pulses_are_not_ecg(rng: np.random.Generator) -> None:
    """Same low-frequency pulses at random times (movement-like): not heartbeat-periodic."""
    n = round(20 * FS)
    times = np.cumsum(rng.exponential(1 / 1.2, 40))
    (q,) = run(band_noise(rng, n, 3.0) + qrs_train(n, times=times[times < 19.8]))
    assert "ecg" not in q.issues
    assert q.ecg_periodicity < 0.3


def test_ecg_needs_history(rng: np.random.Generator) -> None:
    n = round(2 * FS)
    (q,) = run(band_noise(rng, n, 3.0) + qrs_train(n))
    assert math.isnan(q.ecg_db)
    assert "ecg" not in q.issues


# --- noise floor ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rest", "status"),
    [(3.0, "ok"), (4.5, "ok"), (8.0, "warn"), (12.0, "warn"), (25.0, "bad")],
)
def test_noisy_channel(rng: np.random.Generator, rest: float, status: str) -> None:
    """Konrad's limits: a good preparation stays under 5 µV RMS at rest, above 15 µV is poor."""
    x = bursty_emg(rng, 10, rest=rest, burst=80.0)
    (q,) = run(x)
    check_consistent(q)
    assert q.status == status
    assert q.noise_rms_uv == pytest.approx(rest, rel=0.15)  # the floor is measured, not guessed
    if status != "ok":
        assert q.issues == ("noisy",)
        assert "skin" in q.advice[0]
        assert "µV" in q.advice[0] and "uV" not in q.advice[0]


# --- streaming -----------------------------------------------------------------------------


def mixed_channels(rng: np.random.Generator, seconds: float = 15.0) -> NDArray:
    n = round(seconds * FS)
    clean = bursty_emg(rng, seconds)
    flat = bursty_emg(rng, seconds)
    flat[n // 3 : n // 2] = 0.0
    rail = float(np.quantile(np.abs(clean), 0.98))
    cols = [
        clean,
        bursty_emg(rng, seconds) + sine(n, 50.0, 30.0, FS),
        np.clip(bursty_emg(rng, seconds), -rail, rail),
        flat,
        band_noise(rng, n, 3.0) + qrs_train(n),
        bursty_emg(rng, seconds) + 2000.0,  # DC offset
    ]
    x = np.column_stack(cols)
    x[rng.random(x.shape) < 0.02] = np.nan  # scattered missing samples
    x[5000:5600, 1] = np.nan  # and a gap
    return x


def assert_same_reports(a: list[ChannelQuality], b: list[ChannelQuality]) -> None:
    for qa, qb in zip(a, b, strict=True):
        da, db = qa.to_dict(), qb.to_dict()
        assert da.keys() == db.keys()
        for key, va in da.items():
            vb = db[key]
            if isinstance(va, float) and isinstance(vb, float):
                assert va == pytest.approx(vb, rel=1e-9, abs=1e-9), key
            else:
                assert va == vb, key


def test_chunk_size_invariance(rng: np.random.Generator) -> None:
    x = mixed_channels(rng)
    whole = QualityMonitor(FS, x.shape[1])
    whole.process(x)
    for seed in range(3):
        r = np.random.default_rng(seed)
        chunked = QualityMonitor(FS, x.shape[1])
        pos = 0
        while pos < x.shape[0]:
            step = int(r.integers(0, 700))  # includes empty chunks
            chunked.process(x[pos : pos + step])
            pos += step
        assert_same_reports(whole.report(), chunked.report())
        assert_same_reports(whole.recent(), chunked.recent())
    statuses = [q.status for q in whole.report()]
    issues = [q.issues for q in whole.report()]
    assert statuses[0] == "ok"
    assert "hum" in issues[1]
    assert "saturation" in issues[2]
    assert "flat" in issues[3]
    assert "ecg" in issues[4]
    assert statuses[5] == "ok"


def test_channels_are_independent(rng: np.random.Generator) -> None:
    x = mixed_channels(rng)
    together = run(x)
    for c in (0, 2, 4):
        (alone,) = run(x[:, c])
        assert_same_reports([alone], [together[c]])


def test_recent_follows_live_changes(rng: np.random.Generator) -> None:
    mon = QualityMonitor(FS, 1)
    mon.process(bursty_emg(rng, 20)[:, None])
    assert mon.recent()[0].status == "ok"
    mon.process(np.zeros((round(3 * FS), 1)))  # electrode falls off
    live, overall = mon.recent()[0], mon.report()[0]
    assert live.status == "bad"
    assert live.flat_fraction == 1.0
    assert live.seconds == pytest.approx(3.0)
    assert overall.flat_fraction == pytest.approx(3 / 23, abs=0.01)
    assert overall.status == "warn"


def test_reset(rng: np.random.Generator) -> None:
    mon = QualityMonitor(FS, 1)
    mon.process(np.zeros((round(5 * FS), 1)))
    assert mon.report()[0].status == "bad"
    mon.reset()
    assert mon.report()[0].issues == ("no_data",)
    mon.process(bursty_emg(rng, 10)[:, None])
    assert mon.report()[0].status == "ok"


# --- missing samples -----------------------------------------------------------------------


def test_nan_samples_are_ignored(rng: np.random.Generator) -> None:
    x = np.column_stack([bursty_emg(rng, 20) for _ in range(2)])
    ref = run(x)
    holed = x.copy()
    holed[rng.random(holed.shape) < 0.1] = np.nan
    holed[10000:11000, 1] = np.inf  # non-finite values count as missing too
    for q, r in zip(run(holed), ref, strict=True):
        check_consistent(q)
        assert q.status == "ok", q
        assert q.missing_fraction > 0.09
        assert q.flat_fraction == 0.0
        assert q.saturation_fraction == 0.0
        assert q.noise_rms_uv == pytest.approx(r.noise_rms_uv, rel=0.2)


def test_all_nan_channel_is_no_data(rng: np.random.Generator) -> None:
    x = np.column_stack([bursty_emg(rng, 5), np.full(round(5 * FS), np.nan)])
    good, missing = run(x)
    assert good.status == "ok"
    assert missing.issues == ("no_data",)
    assert missing.missing_fraction == 1.0
    check_consistent(missing)


def test_bad_input_shape() -> None:
    mon = QualityMonitor(FS, 2)
    with pytest.raises(ValueError, match="expected"):
        mon.process(np.zeros((10, 3)))
    single = QualityMonitor(FS, 1)
    single.process(np.zeros(10))  # 1-D is accepted for a single channel


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        QualitySettings(line_freq=-50.0)
    with pytest.raises(ValueError):
        QualitySettings(window_s=0.0)
    with pytest.raises(ValueError):
        QualityMonitor(FS, 0)
    with pytest.raises(ValueError):
        QualityMonitor(100.0, 1, QualitySettings(window_s=0.1))  # 10-sample window


def test_advice_for_every_issue(rng: np.random.Generator) -> None:
    n = round(20 * FS)
    x = bursty_emg(rng, 20, rest=25.0, burst=80.0)
    x = x + sine(n, 50.0, 300.0, FS) + qrs_train(n, amp=2000.0)
    x[: n // 4] = 0.0
    rail = float(np.quantile(np.abs(x), 0.98))
    x = np.clip(x, -rail, rail)
    everything, missing = run(np.column_stack([x, np.full(n, np.nan)]))
    for q in (everything, missing):
        check_consistent(q)
        assert len(set(q.advice)) == len(q.advice)  # one distinct fix per issue
    # Issues come in fixing order (a lead-off first), each with its own advice.
    assert everything.issues == ("flat", "saturation", "hum", "noisy", "ecg")
    assert missing.issues == ("no_data",)


# --- robustness ----------------------------------------------------------------------------


@st.composite
def monitor_inputs(draw: st.DrawFn) -> tuple[float, float, int, list[NDArray]]:
    fs, window_s = draw(
        st.sampled_from([(100.0, 0.2), (250.0, 0.1), (500.0, 1.0), (2000.0, 0.05), (2048.0, 0.25)])
    )
    n_ch = draw(st.integers(1, 3))
    elements = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=64),
        st.sampled_from([0.0, 1e300, -1e300, 1e7, np.nan, np.inf]),
        st.floats(-1000, 1000),
    )
    blocks = draw(
        st.lists(
            hnp.arrays(
                np.float64, st.tuples(st.integers(0, 120), st.just(n_ch)), elements=elements
            ),
            min_size=1,
            max_size=8,
        )
    )
    return fs, window_s, n_ch, blocks


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(monitor_inputs(), st.sampled_from([50.0, 60.0, 0.0]), st.booleans())
def test_random_input_never_raises(
    inputs: tuple[float, float, int, list[NDArray]], line_freq: float, rail: bool
) -> None:
    fs, window_s, n_ch, blocks = inputs
    cfg = QualitySettings(
        line_freq=line_freq, window_s=window_s, saturation_rail_uv=500.0 if rail else None
    )
    mon = QualityMonitor(fs, n_ch, cfg)
    for block in blocks:
        mon.process(block)
        mon.process(np.repeat(block, 3, axis=0))  # make complete windows likely
    for q in (*mon.report(), *mon.recent()):
        check_consistent(q)
        for frac in (q.saturation_fraction, q.flat_fraction, q.missing_fraction):
            assert math.isnan(frac) or 0.0 <= frac <= 1.0
        for value in (q.hum_db, q.ecg_db):
            assert math.isnan(value) or -60.0 <= value <= 60.0
