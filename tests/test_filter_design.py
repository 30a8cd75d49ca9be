"""dsp.filters designs and filters without scipy.signal: the same as scipy.signal's.

Every design the pipeline, the quality monitor and the simulator use is compared with
scipy.signal's own (same sections up to rounding, same frequency response, same filtered
output) over the sampling rates fireorder meets, plus the edge cases of clipping and of empty
bands. The filtering runs scipy's compiled SOS kernel loaded without scipy.signal's package;
it must give what ``scipy.signal.sosfilt`` gives.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import fft as sp_fft
from scipy import signal

from dsp import filters
from dsp.filters import (
    SosFilter,
    butter_sos,
    cascade,
    design_bandpass,
    design_highpass,
    design_lowpass,
    design_notch,
    notch_sos,
    sosfilt,
    sosfilt_zi,
)
from dsp.quality import QualitySettings, _next_fast_len
from dsp.settings import DspSettings

FS = (250.0, 500.0, 1000.0, 1024.0, 2000.0, 2048.0, 4000.0, 10000.0)
S = DspSettings()
Q = QualitySettings()


def clip(fs: float, f: float) -> float:
    return min(f, 0.45 * fs)


def assert_same_sos(ours: np.ndarray, ref: np.ndarray) -> None:
    """Same sections in the same order, to rounding (scale of each section's coefficients)."""
    ref = np.atleast_2d(ref)
    assert ours.shape == ref.shape
    scale = np.maximum(np.abs(ref).max(axis=1, keepdims=True), 1e-300)
    np.testing.assert_array_less(np.abs(ours - ref) / scale, 1e-12)


def response(sos: np.ndarray, fs: float, n: int = 1024) -> np.ndarray:
    """Complex frequency response of a cascade on [0, fs/2) (numpy only)."""
    z = np.exp(-2j * np.pi * np.arange(n) / (2 * n))  # e^{-j w}, w in [0, pi)
    h = np.ones(n, dtype=complex)
    for b0, b1, b2, a0, a1, a2 in sos:
        h *= (b0 + b1 * z + b2 * z * z) / (a0 + a1 * z + a2 * z * z)
    return h


def assert_same_filter(ours: np.ndarray, ref: np.ndarray, fs: float) -> None:
    """Same frequency response and the same output on noise with a DC offset, to 1e-9."""
    h_ours, h_ref = response(ours, fs), response(np.atleast_2d(ref), fs)
    np.testing.assert_allclose(h_ours, h_ref, rtol=1e-9, atol=1e-12)
    x = np.random.default_rng(int(fs)).standard_normal(3000) * 50 + 300
    y_ref = signal.sosfilt(ref, x, zi=signal.sosfilt_zi(ref) * x[0])[0]
    y_ours = sosfilt(ours, x, sosfilt_zi(ours) * x[0])[0]
    np.testing.assert_allclose(y_ours, y_ref, rtol=1e-9, atol=1e-9 * np.abs(y_ref).max())


def pipeline_designs(fs: float) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, ours, scipy's) for each filter the pipeline, quality monitor and simulator use."""
    lo, hi = S.bandpass_low_hz, clip(fs, S.bandpass_high_hz)
    out = [
        (
            "band-pass",
            design_bandpass(fs, S.bandpass_low_hz, S.bandpass_high_hz, S.bandpass_order),
            signal.butter(S.bandpass_order, [lo, hi], "bandpass", fs=fs, output="sos"),
        ),
        (
            "ECG high-pass",
            design_highpass(fs, S.ecg_highpass_hz, S.ecg_highpass_order),
            signal.butter(
                S.ecg_highpass_order, clip(fs, S.ecg_highpass_hz), "highpass", fs=fs, output="sos"
            ),
        ),
    ]
    for name, f in (
        ("detector low-pass", S.detector_lowpass_hz),
        ("offset low-pass", S.offset_lowpass_hz),
        ("envelope low-pass", S.envelope_lowpass_hz),
    ):
        out.append(
            (
                name,
                design_lowpass(fs, f, 2),
                signal.butter(2, clip(fs, f), "lowpass", fs=fs, output="sos"),
            )
        )
    # quality monitor: 2nd-order EMG band; simulator: 2nd-order amplifier band
    q_hi = clip(fs, Q.emg_band_hz[1])
    out.append(
        (
            "quality EMG band",
            butter_sos(2, [Q.emg_band_hz[0], q_hi], "bandpass", fs),
            signal.butter(2, [Q.emg_band_hz[0], q_hi], "bandpass", fs=fs, output="sos"),
        )
    )
    band = [10.0, min(500.0, 0.45 * fs)]
    out.append(
        (
            "simulator noise band",
            butter_sos(2, band, "bandpass", fs),
            signal.butter(2, band, "bandpass", fs=fs, output="sos"),
        )
    )
    for line in (50.0, 60.0):
        ref = [
            signal.tf2sos(*signal.iirnotch(k * line, S.notch_q * k, fs=fs))
            for k in range(1, S.notch_harmonics + 1)
            if k * line < 0.48 * fs
        ]
        out.append(
            (
                f"notch {line:g} Hz",
                design_notch(fs, line, S.notch_harmonics, S.notch_q),
                np.vstack(ref),
            )
        )
        out.append(  # the quality monitor's narrow notches (2 Hz wide)
            (
                f"quality notch {line:g} Hz",
                notch_sos(line, line / 2.0, fs),
                signal.tf2sos(*signal.iirnotch(line, line / 2.0, fs=fs)),
            )
        )
    return out


@pytest.mark.parametrize("fs", FS)
def test_designs_match_scipy(fs: float) -> None:
    for name, ours, ref in pipeline_designs(fs):
        try:
            assert_same_sos(ours, ref)
            assert_same_filter(ours, ref, fs)
        except AssertionError as exc:  # pragma: no cover - message only
            raise AssertionError(f"{name} at fs={fs:g} Hz: {exc}") from None


@pytest.mark.parametrize("fs", FS)
def test_pipeline_cascades_and_zi_match_scipy(fs: float) -> None:
    base = cascade(
        design_bandpass(fs, S.bandpass_low_hz, S.bandpass_high_hz, S.bandpass_order),
        design_notch(fs, S.notch_hz, S.notch_harmonics, S.notch_q),
    )
    ecg = cascade(base, design_highpass(fs, S.ecg_highpass_hz, S.ecg_highpass_order))
    for sos in (base, ecg, design_lowpass(fs, S.detector_lowpass_hz, 2)):
        np.testing.assert_allclose(sosfilt_zi(sos), signal.sosfilt_zi(sos), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fs", FS)
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6, 8])
def test_butterworth_any_order_matches_scipy(fs: float, order: int) -> None:
    cases = [
        ("lowpass", 0.1 * fs),
        ("highpass", 0.02 * fs),
        ("bandpass", [0.01 * fs, 0.3 * fs]),
        ("bandpass", [0.2 * fs, 0.21 * fs]),  # narrow
        ("lowpass", 0.449 * fs),  # near Nyquist
        ("highpass", 0.449 * fs),
        ("bandpass", [1.0, 0.449 * fs]),  # wide, near 0 and Nyquist
    ]
    for btype, f in cases:
        ours = butter_sos(order, f, btype, fs)
        ref = signal.butter(order, f, btype, fs=fs, output="sos")
        assert_same_sos(ours, ref)


def test_near_nyquist_corners_are_clipped_like_before() -> None:
    assert filters._nyquist_clip(500.0, 450.0) == 225.0
    assert filters._nyquist_clip(2000.0, 450.0) == 450.0
    assert filters._nyquist_clip(1000.0, 450.0) == 450.0  # exactly 0.45 fs: unchanged
    for fs in FS:
        ref = signal.butter(4, [20.0, 0.45 * fs], "bandpass", fs=fs, output="sos")
        assert_same_sos(design_bandpass(fs, 20.0, 0.49 * fs), ref)
        assert_same_sos(design_bandpass(fs, 20.0, 10 * fs), ref)
        ref = signal.butter(2, 0.45 * fs, "lowpass", fs=fs, output="sos")
        assert_same_sos(design_lowpass(fs, 0.6 * fs), ref)
        for sos in (design_bandpass(fs, 20.0, 0.5 * fs), design_lowpass(fs, fs)):
            poles = np.concatenate([np.roots(s[3:]) for s in sos])
            assert np.all(np.abs(poles) < 1)  # stable


def test_notch_harmonics_stop_below_nyquist() -> None:
    assert design_notch(250.0, 50.0, 3).shape == (2, 6)  # 150 Hz >= 0.48 * 250: dropped
    assert design_notch(500.0, 60.0, 5).shape == (3, 6)  # 240 Hz >= 240 Hz: dropped
    assert design_notch(2000.0, 0.0).shape == (0, 6)
    assert design_notch(2000.0, 50.0, 0).shape == (1, 6)  # at least the fundamental


@pytest.mark.parametrize(
    ("fs", "low", "high"),
    [(500.0, 300.0, 450.0), (2000.0, 0.0, 450.0), (2000.0, -5.0, 450.0), (1000.0, 450.0, 450.0)],
)
def test_empty_band_is_the_same_value_error(fs: float, low: float, high: float) -> None:
    clipped = min(high, 0.45 * fs)
    with pytest.raises(ValueError) as info:
        design_bandpass(fs, low, high)
    assert str(info.value) == f"band-pass {low}-{clipped} Hz is empty at fs={fs} Hz"


def test_invalid_designs_raise() -> None:
    with pytest.raises(ValueError):
        butter_sos(4, 0.6 * 1000, "lowpass", 1000.0)  # above Nyquist
    with pytest.raises(ValueError):
        butter_sos(4, 0.0, "highpass", 1000.0)
    with pytest.raises(ValueError):
        butter_sos(0, 10.0, "lowpass", 1000.0)
    with pytest.raises(ValueError):
        butter_sos(2, [100.0, 50.0], "bandpass", 1000.0)
    with pytest.raises(ValueError):
        butter_sos(2, 50.0, "bandstop", 1000.0)
    with pytest.raises(ValueError):
        notch_sos(600.0, 30.0, 1000.0)


def test_zpk2sos_and_bilinear_match_scipy() -> None:
    # the simulator's sEMG shaping filter: one zero at DC, three real poles
    for fs in FS:
        for fl, f_high in ((70.0, 120.0), (100.0, 170.0)):
            fh = min(f_high, 0.4 * fs)
            wl = 2 * fs * np.tan(np.pi * fl / fs)
            wh = 2 * fs * np.tan(np.pi * fh / fs)
            args = ([0.0], [-wl, -wh, -wh], wh * wh, fs)
            zo, po, ko = filters.bilinear_zpk(*args)
            zr, pr, kr = signal.bilinear_zpk(*args)
            np.testing.assert_allclose(zo, zr, rtol=1e-14)
            np.testing.assert_allclose(po, pr, rtol=1e-14)
            assert ko == pytest.approx(kr, rel=1e-14)
            assert_same_sos(filters.zpk2sos(zo, po, ko), signal.zpk2sos(zr, pr, kr))
    # random digital systems: real and complex poles and zeros, odd and even counts
    rng = np.random.default_rng(5)
    for _ in range(200):
        n_pc, n_pr = rng.integers(0, 4), rng.integers(0, 4)
        n_zc, n_zr = rng.integers(0, 3), rng.integers(0, 4)
        pc = rng.uniform(0.1, 0.95, n_pc) * np.exp(1j * rng.uniform(0.05, 3.0, n_pc))
        zc = rng.uniform(0.5, 1.5, n_zc) * np.exp(1j * rng.uniform(0.05, 3.0, n_zc))
        p = np.concatenate([pc, pc.conj(), rng.uniform(-0.95, 0.95, n_pr)])
        z = np.concatenate([zc, zc.conj(), rng.uniform(-1.5, 1.5, n_zr)])
        if len(p) == 0 and len(z) == 0:
            continue
        k = float(rng.uniform(0.1, 2.0))
        assert_same_sos(filters.zpk2sos(z, p, k), signal.zpk2sos(z, p, k))


def test_sosfilt_matches_scipy_with_and_without_state() -> None:
    rng = np.random.default_rng(3)
    sos = cascade(design_bandpass(2000.0, 20, 450), design_notch(2000.0, 50.0, 3))
    x1 = rng.standard_normal(5000)
    np.testing.assert_array_equal(sosfilt(sos, x1), signal.sosfilt(sos, x1))
    zi1 = rng.standard_normal((len(sos), 2))
    zi1_before = zi1.copy()
    y, zf = sosfilt(sos, x1, zi1)
    y_ref, zf_ref = signal.sosfilt(sos, x1, zi=zi1)
    np.testing.assert_array_equal(zi1, zi1_before)  # the caller's zi is not changed
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(zf, zf_ref)
    x2 = rng.standard_normal((3, 4000))
    zi2 = rng.standard_normal((len(sos), 3, 2))
    y, zf = sosfilt(sos, x2, zi2)
    y_ref, zf_ref = signal.sosfilt(sos, x2, axis=-1, zi=zi2)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(zf, zf_ref)
    assert zf.shape == zi2.shape


def test_compiled_kernel_is_used() -> None:
    assert filters._sosfilt_kernel is not None  # scipy's _sosfilt extension was found


@pytest.mark.parametrize("use_kernel", [True, False])
def test_sos_filter_chunking_and_step_start(
    monkeypatch: pytest.MonkeyPatch, use_kernel: bool
) -> None:
    if not use_kernel:  # the fallback through scipy.signal.sosfilt gives the same
        monkeypatch.setattr(filters, "_sosfilt_kernel", None)
    rng = np.random.default_rng(11)
    fs = 2000.0
    sos = cascade(
        design_bandpass(fs, 20, 450),
        design_notch(fs, 50.0, 3),
        design_highpass(fs, 30.0, 4),
    )
    x = rng.standard_normal((30_000, 4)) * 40 + np.array([300.0, -2000.0, 0.0, 5e4])
    whole = SosFilter(sos, 4).process(x)
    # one shot equals scipy with the steady state of a step at the first value
    ref = signal.sosfilt(sos, x, axis=0, zi=signal.sosfilt_zi(sos)[:, :, None] * x[0])[0]
    np.testing.assert_allclose(whole, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    # random chunking, including empty and one-sample chunks, equals one shot
    f = SosFilter(sos, 4)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.choice([0, 1, 2, 40, 333, 4000]))
        parts.append(f.process(x[i : i + n]))
        i += n
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-12, atol=1e-12)
    zero = SosFilter(sos, 4, initial="zero").process(x)
    np.testing.assert_allclose(
        zero, signal.sosfilt(sos, x, axis=0), rtol=0, atol=1e-9 * np.abs(ref).max()
    )


def test_empty_cascade_passes_through() -> None:
    x = np.arange(12.0).reshape(6, 2)
    out = SosFilter(cascade(), 2).process(x)
    np.testing.assert_array_equal(out, x)
    assert out is not x


@pytest.mark.parametrize("fs", FS)
def test_quality_monitor_filters_and_window_match_scipy(fs: float) -> None:
    from dsp.quality import _NOTCH_BW_HZ, QualityMonitor

    m = QualityMonitor(fs, 2, QualitySettings(line_freq=50.0))
    hi = clip(fs, Q.emg_band_hz[1])
    ref = [signal.butter(2, [Q.emg_band_hz[0], hi], "bandpass", fs=fs, output="sos")]
    ref += [signal.tf2sos(*signal.iirnotch(f, f / _NOTCH_BW_HZ, fs=fs)) for f in m._notch_freqs]
    assert_same_sos(m._sos_noise, np.vstack(ref))
    np.testing.assert_allclose(
        m._zi_noise_unit, signal.sosfilt_zi(m._sos_noise), rtol=1e-12, atol=1e-12
    )
    fs_dec = m._dec_starts.size / Q.window_s
    ecg_hi = min(Q.ecg_band_hz[1], 0.45 * fs_dec)
    assert_same_sos(
        m._sos_ecg,
        signal.butter(2, [Q.ecg_band_hz[0], ecg_hi], "bandpass", fs=fs_dec, output="sos"),
    )
    np.testing.assert_array_equal(m._win, signal.get_window("hann", m._n))


def test_next_fast_len_matches_scipy() -> None:
    assert all(_next_fast_len(t) == sp_fft.next_fast_len(t) for t in range(1, 3000))
