"""The motor-unit pool generator of the accuracy benchmark (bench/mupool.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import signal

from bench import mupool
from bench.metrics import GroundTruth
from dsp.contract import Role, StreamInfo

DURATION = 20.0


def _gen(name: str = "clean", **kw: object) -> mupool.MuRecording:
    return mupool.generate(mupool.preset(name, **kw), DURATION)


@pytest.fixture(scope="module")
def clean() -> mupool.MuRecording:
    return _gen("clean", fs=2000.0, seed=11)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _scored_reps(rec: mupool.MuRecording) -> list[mupool.MuRep]:
    return [r for r in rec.truth.reps if not r.at_start and max(r.onsets.values()) < DURATION]


def test_output_contract(clean: mupool.MuRecording) -> None:
    assert clean.data.dtype == np.float64
    assert clean.data.shape == (round(DURATION * 2000), 4)
    assert isinstance(clean.info, StreamInfo)
    assert clean.info.channel_names == ("glute_l", "glute_r", "lumbar_l", "lumbar_r")
    assert clean.info.roles == {
        Role.GLUTE_L: 0,
        Role.GLUTE_R: 1,
        Role.LUMBAR_L: 2,
        Role.LUMBAR_R: 3,
    }
    assert np.isfinite(clean.data).all()
    gt = clean.truth.to_ground_truth("x")
    assert isinstance(gt, GroundTruth)
    assert gt.fs == 2000.0 and gt.duration_s == pytest.approx(DURATION)
    assert len(gt.reps) >= 5
    assert set(gt.snr_db) == set(Role)
    for rep in gt.reps:
        assert set(rep.onsets) == set(Role) and set(rep.rise_ms) == set(Role)


def test_reproducible_for_a_seed() -> None:
    a = _gen("hard", fs=1000.0, seed=5)
    b = _gen("hard", fs=1000.0, seed=5)
    c = _gen("hard", fs=1000.0, seed=6)
    assert np.array_equal(a.data, b.data)
    assert a.truth.reps == b.truth.reps
    assert not np.array_equal(a.data, c.data)


def test_truth_onset_is_the_first_discharge(clean: mupool.MuRecording) -> None:
    fs = clean.info.fs
    for rep in _scored_reps(clean):
        for role, onset in rep.onsets.items():
            c = clean.info.roles[role]
            times, _ = clean.discharges[c]
            in_burst = times[(times >= onset - 0.3) & (times <= rep.offsets[role])]
            assert in_burst.min() == pytest.approx(onset, abs=1e-12)
            # the excitation started earlier and reached the lowest threshold at the onset
            assert rep.excitation_start[role] < onset
            # noise-free EMG: exactly nothing before the onset, a MUAP within 20 ms after
            a = math.ceil(onset * fs)
            assert not clean.emg[a - round(0.3 * fs) : a, c].any()
            assert np.abs(clean.emg[a : a + round(0.02 * fs), c]).max() > 0


def test_noise_level_before_onset_and_activity_after(clean: mupool.MuRecording) -> None:
    fs = clean.info.fs
    for rep in _scored_reps(clean):
        for role, onset in rep.onsets.items():
            c = clean.info.roles[role]
            noise = clean.truth.channel_params[clean.info.channel_names[c]]["noise_rms_uv"]
            a = round(onset * fs)
            before = _rms(clean.data[a - round(0.25 * fs) : a, c])
            assert before == pytest.approx(noise, rel=0.25)
            start, end = rep.plateau_s[role]
            hold = _rms(clean.data[round(start * fs) : round(end * fs), c])
            assert hold > 3 * noise


def test_rise_is_gradual() -> None:
    rec = _gen("clean", fs=2000.0, seed=3, rise_ms=(350.0, 500.0), snr_db=None)
    fs = rec.info.fs
    ratios = []
    for rep in _scored_reps(rec):
        for role, onset in rep.onsets.items():
            c = rec.info.roles[role]
            a = round(onset * fs)
            start, end = rep.plateau_s[role]
            plateau = _rms(rec.emg[round(start * fs) : round(end * fs), c])
            first = _rms(rec.emg[a : a + round(0.05 * fs), c])
            ratios.append(first / plateau)
            # the first 50 ms hold discharges of a minority of the units the plateau recruits
            times, units = rec.discharges[c]
            early = (times >= onset) & (times < onset + 0.05)
            held = (times >= start) & (times <= end)
            assert np.unique(units[early]).size < 0.5 * np.unique(units[held]).size
    assert np.median(ratios) < 0.15
    assert max(ratios) < 0.4
    # fast ramps reach more of the plateau in the same 50 ms
    fast = _gen("clean", fs=2000.0, seed=3, rise_ms=(100.0, 120.0), snr_db=None)
    fast_ratios = []
    for rep in _scored_reps(fast):
        for role, onset in rep.onsets.items():
            c = fast.info.roles[role]
            a = round(onset * fs)
            start, end = rep.plateau_s[role]
            plateau = _rms(fast.emg[round(start * fs) : round(end * fs), c])
            fast_ratios.append(_rms(fast.emg[a : a + round(0.05 * fs), c]) / plateau)
    assert np.median(fast_ratios) > 2 * np.median(ratios)


def test_recruitment_and_rate_coding(clean: mupool.MuRecording) -> None:
    """Units are recruited in threshold order on the ramp; rates 8-35 Hz; ISI CV ~0.2."""
    rep = _scored_reps(clean)[1]
    role = Role.GLUTE_L
    c = clean.info.roles[role]
    times, units = clean.discharges[c]
    onset = rep.onsets[role]
    start, end = rep.plateau_s[role]
    sel = (times >= onset) & (times <= rep.offsets[role])
    t, u = times[sel], units[sel]
    first_of = {int(k): float(t[u == k].min()) for k in np.unique(u)}
    ramp = sorted((k, v) for k, v in first_of.items() if v < start)
    assert len(ramp) > 20
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(ramp))
    assert ramp[0][0] == 0  # the lowest-threshold unit fires first
    cvs, rates = [], []
    for k in np.unique(u):
        tk = t[(u == k) & (t > start + 0.1) & (t < end)]
        if tk.size >= 8:
            isi = np.diff(tk)
            cvs.append(isi.std() / isi.mean())
            rates.append(1.0 / isi.mean())
    assert 0.12 < float(np.median(cvs)) < 0.26
    assert min(rates) >= 6.5
    assert max(rates) <= 37.0


@pytest.mark.parametrize("snr", [5.0, 12.0, 25.0, 40.0])
def test_snr_as_asked(snr: float) -> None:
    rec = _gen("clean", fs=2000.0, seed=21, snr_db=(snr, snr))
    fs = rec.info.fs
    for role, c in rec.info.roles.items():
        assert rec.truth.channel_params[rec.info.channel_names[c]]["snr_db"] == snr
        hold = np.zeros(len(rec.data), dtype=bool)
        rest = np.ones(len(rec.data), dtype=bool)
        for rep in rec.truth.reps:
            s, e = rep.plateau_s[role]
            hold[max(0, round((s + 0.05) * fs)) : max(0, round(e * fs))] = True
            rest[max(0, round((rep.onsets[role] - 0.05) * fs)) : round(rep.offsets[role] * fs)] = (
                False
            )
        p_hold = np.mean(rec.data[hold, c] ** 2)
        p_rest = np.mean(rec.data[rest, c] ** 2)
        measured = 10 * np.log10((p_hold - p_rest) / p_rest)
        assert measured == pytest.approx(snr, abs=1.5), role


def test_lags_are_lumbar_minus_glute_onsets() -> None:
    lags = []
    for seed in range(4):
        rec = _gen("clean", fs=1000.0, seed=seed)
        for rep in rec.truth.reps:
            g = min(t for r, t in rep.onsets.items() if r.is_glute)
            lu = min(t for r, t in rep.onsets.items() if r.is_lumbar)
            assert rep.lag_ms == pytest.approx((lu - g) * 1000.0, abs=1e-9)
            lags.append(rep.lag_ms)
            # the drawn lag is exact: the truth's lag is in the drawn ranges
            assert abs(rep.lag_ms) <= 150.0 + 1e-6
            # the two sides of a muscle are a little apart, not identical
            assert rep.onsets[Role.GLUTE_L] != rep.onsets[Role.GLUTE_R]
        for t in rec.truth.to_ground_truth().reps:
            assert t.lag_ms == pytest.approx(
                (
                    min(t.onsets[Role.LUMBAR_L], t.onsets[Role.LUMBAR_R])
                    - min(t.onsets[Role.GLUTE_L], t.onsets[Role.GLUTE_R])
                )
                * 1000.0,
                abs=1e-9,
            )
    lags_a = np.asarray(lags)
    assert (lags_a >= 15).any() and (lags_a <= -15).any()
    assert (np.abs(lags_a) <= 10).any()  # some simultaneous reps


def test_mid_burst_starts() -> None:
    active = _gen("clean", fs=2000.0, seed=4, start="active", snr_db=(30.0, 30.0))
    fs = active.info.fs
    first = active.truth.reps[0]
    assert first.at_start and all(t < 0 for t in first.onsets.values())
    for role, c in active.info.roles.items():
        assert active.truth.active_at_start(role)
        noise = active.truth.channel_params[active.info.channel_names[c]]["noise_rms_uv"]
        assert _rms(active.data[: round(0.1 * fs), c]) > 5 * noise
    gt = active.truth.to_ground_truth()
    assert first.index not in [r.index for r in gt.reps]  # not scored
    for role in Role:
        assert any(on < 0 < off for on, off in gt.spans[role])  # but its span is known
    early = _gen("clean", fs=2000.0, seed=4, start="early")
    first = early.truth.reps[0]
    assert not first.at_start
    assert 0.2 <= min(first.onsets.values()) <= 0.6
    assert not any(early.truth.active_at_start(r) for r in Role)
    modes = {_gen("hard", fs=1000.0, seed=s).truth.file_params["start"] for s in range(6)}
    assert modes == {"active", "early"}


@pytest.mark.parametrize("fs", [1000.0, 2000.0, 2048.0])
def test_sampling_rates(fs: float) -> None:
    rec = _gen("clean", fs=fs, seed=8)
    assert rec.data.shape == (round(DURATION * fs), 4)
    assert rec.info.fs == fs
    ref = _gen("clean", fs=2000.0, seed=8)
    # the discharges and the truth are drawn in seconds: the same at every rate
    assert rec.truth.reps == ref.truth.reps
    for c in range(4):
        assert np.array_equal(rec.discharges[c][0], ref.discharges[c][0])
    # and the waveform is the same function sampled at another rate (up to the channel gain,
    # which is set from the plateau RMS measured at each rate): compare at 1 kHz
    if fs == 1000.0:
        sub = ref.emg[::2]
        for c in range(4):
            k = np.dot(rec.emg[:, c], sub[:, c]) / np.dot(sub[:, c], sub[:, c])
            assert np.allclose(rec.emg[:, c], k * sub[:, c], rtol=0, atol=1e-9 * np.abs(sub).max())


@pytest.mark.parametrize("fs", [1000.0, 2000.0, 2048.0])
def test_spectrum_is_semg_like(fs: float) -> None:
    rec = _gen("clean", fs=fs, seed=9, snr_db=None)
    for c in range(4):
        f, p = signal.welch(rec.emg[:, c], fs=fs, nperseg=round(0.5 * fs))
        band = (f >= 20) & (f <= 450)
        assert p[band].sum() / p.sum() > 0.95
        cum = np.cumsum(p) / p.sum()
        median = f[np.searchsorted(cum, 0.5)]
        assert 60.0 <= median <= 150.0, (c, median)


def test_fatigue_drift_compresses_the_spectrum_and_grows_the_amplitude() -> None:
    cfg = mupool.preset("clean", fs=2000.0, seed=2, widening=(0.3, 0.3), amp_growth=(0.5, 0.5))
    rec = mupool.generate(cfg, 40.0)
    fs = rec.info.fs
    reps = [r for r in rec.truth.reps if max(r.onsets.values()) < 40.0]
    c = 0
    role = Role.GLUTE_L

    def hold(rep: mupool.MuRep) -> np.ndarray:
        s, e = rep.plateau_s[role]
        return rec.emg[round(s * fs) : round(e * fs), c]

    def median_freq(x: np.ndarray) -> float:
        f, p = signal.welch(x, fs=fs, nperseg=512)
        return float(f[np.searchsorted(np.cumsum(p) / p.sum(), 0.5)])

    early = np.concatenate([hold(r) for r in reps[:3]])
    late = np.concatenate([hold(r) for r in reps[-3:]])
    assert median_freq(late) < 0.9 * median_freq(early)
    assert _rms(late) > 1.2 * _rms(early)
    assert rec.truth.file_params["widening"] == 0.3


def test_hard_preset_has_hum_and_ecg_on_lumbar_channels() -> None:
    assert all(
        5.0 <= p["snr_db"] <= 20.0
        for p in _gen("hard", fs=1000.0, seed=1).truth.channel_params.values()
    )
    # a quiet noise floor, so that the artefacts are measurable at rest
    rec = _gen("hard", fs=2000.0, seed=1, snr_db=(40.0, 40.0))
    fs = rec.info.fs
    params = rec.truth.channel_params
    for name in ("lumbar_l", "lumbar_r"):
        assert params[name]["ecg_r_uv"] >= params[name]["plateau_rms_uv"]
    assert params["glute_l"]["ecg_r_uv"] == 0.0
    # artefacts are outside the noise floor: at rest a lumbar channel is louder than its noise
    gt = rec.truth.to_ground_truth()
    rep = gt.reps[1]
    c = rec.info.roles[Role.LUMBAR_L]
    on = rep.onsets[Role.LUMBAR_L]
    rest = rec.data[round((on - 0.6) * fs) : round((on - 0.05) * fs), c]
    assert _rms(rest) > 3 * params["lumbar_l"]["noise_rms_uv"]
    # mains hum: the 50 Hz component of a glute channel at rest has the amplitude drawn
    c = rec.info.roles[Role.GLUTE_L]
    on = rep.onsets[Role.GLUTE_L]
    a, b = round((on - 0.55) * fs), round((on - 0.05) * fs)  # 25 whole cycles
    t = np.arange(a, b) / fs
    amp50 = 2 * abs(np.mean(rec.data[a:b, c] * np.exp(-2j * np.pi * 50.0 * t)))
    assert amp50 == pytest.approx(params["glute_l"]["hum_uv"], rel=0.2)
    assert params["glute_l"]["hum_uv"] >= 3.0


def test_bad_config_is_rejected() -> None:
    with pytest.raises(mupool.MuConfigError):
        mupool.preset("nope")
    with pytest.raises(mupool.MuConfigError):
        mupool.preset("clean", start="sometimes")
    with pytest.raises(mupool.MuConfigError):
        mupool.preset("clean", no_such_field=1)
