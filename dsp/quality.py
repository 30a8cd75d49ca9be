"""Per-channel signal quality for surface EMG, streaming and causal.

:class:`QualityMonitor` sits in the acquisition thread. ``process`` only copies samples into a
``window_s`` block; all analysis happens once per full block (one FFT, two short IIR filters and
a few vectorised reductions), so the per-chunk cost is a memcpy plus an amortised share of that.
Because every metric is computed on the same fixed blocks, feeding the data in any chunking gives
identical results. ``report`` covers every complete block seen so far (the partial block still
being filled is not included); ``recent`` covers the last ``recent_windows`` blocks.

Metrics per channel and block:

* hum: power in narrow bins around the line frequency and its harmonics inside the EMG band,
  minus the EMG power expected in those bins (estimated from flanking bins), relative to the
  EMG-band power outside the hum bins. Subtracting the local baseline matters: EMG itself is
  densest at 50-150 Hz, so a raw bin-power ratio of a clean channel would sit near -9 dB, right
  at the warn threshold.
* saturation: samples at the known rail, or (rail unknown) samples in runs of identical values
  at the running extreme of the channel.
* flat: 50 ms sub-windows with near-zero standard deviation or almost only repeated values.
* ECG: power in 5-30 Hz (where the QRS lives) relative to 30-450 Hz, weighted by how periodic
  the 5-30 Hz envelope is at heart-rate lags (0.33-1.25 s). The weighting keeps non-periodic
  low-frequency content (movement artefact) from being called ECG. Needs a few seconds of
  history, so it is undefined (NaN) during the first blocks.
* noise: low percentile of 50 ms RMS values of the 20-450 Hz band with the line harmonics
  notched out, so that "noisy" means broadband noise (skin contact) and hum is reported once.
  (Subtracting the measured hum power instead does not work: the hum x EMG cross term in a
  50 ms window is larger than a rest floor, and a low percentile picks its negative tail.)

Cumulative summaries are kept in fixed-size histograms so memory does not grow with session
length. Not thread-safe: call all methods from one thread (or lock around them).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft
from scipy import signal

log = logging.getLogger(__name__)

__all__ = ["ISSUE_CODES", "ChannelQuality", "QualityMonitor", "QualitySettings"]

#: Issue codes in the order a technician should fix them (a lead-off explains everything else).
ISSUE_CODES: tuple[str, ...] = ("no_data", "flat", "saturation", "hum", "noisy", "ecg")

_DB_LO = -60.0  # dB values are clamped to this range: below/above it nothing changes in practice
_DB_HI = 60.0
_TINY_MS = 1e-4  # uV^2: a band with less mean-square than this (0.01 uV RMS) has no content
_ENV_BIN_S = 0.02  # ECG envelope resolution: a QRS (~100 ms) spans ~5 envelope samples
_FLANK_HZ = 8.0  # width of the baseline bins on each side of a hum harmonic
_NOTCH_BW_HZ = 2.0  # noise-floor notches: -14 dB even 0.2 Hz off (mains drift), little EMG lost


@dataclass(frozen=True)
class QualitySettings:
    """Analysis parameters and status thresholds."""

    line_freq: float = 50.0  # 50 or 60 Hz; 0 = unknown: check both and report the worse
    window_s: float = 1.0  # analysis block: 1 Hz FFT resolution, one update per second
    saturation_rail_uv: float | None = None  # known ADC rail (|x|); None = infer from the data

    # --- status thresholds -------------------------------------------------------------------
    # Hum at a quarter of the EMG-band power is visible at rest and raises onset thresholds
    # unless it is notched; at 4x the EMG power it dominates and usually means a poor
    # reference/ground contact that a notch filter will not fully clean up.
    hum_warn_db: float = -6.0
    hum_bad_db: float = 6.0
    # Occasional clipped peaks (0.1 %) only distort amplitudes; at 1 % whole bursts are
    # truncated and the amplitude-based onset/ratio measures become unreliable.
    saturation_warn: float = 0.001
    saturation_bad: float = 0.01
    # Short intermittent drop-outs (5 %) are the first sign of a peeling electrode or a loose
    # snap; above 20 % a large share of reps would be missing this channel.
    flat_warn: float = 0.05
    flat_bad: float = 0.20
    # Beat-periodic 5-30 Hz power at least equal to the 30-450 Hz power: QRS residue survives a
    # 20-30 Hz high-pass and can be mistaken for an onset at rest. ECG is physiology and can be
    # filtered, so it only ever warns.
    ecg_warn_db: float = 0.0
    ecg_min_periodicity: float = 0.3  # below this the low-frequency power is not heartbeat-like
    # Good skin preparation gives a rest floor of a few uV RMS; 10 uV hides low-level glute
    # onsets, 50 uV is as large as a light contraction.
    noise_warn_uv: float = 10.0
    noise_bad_uv: float = 50.0

    # --- detector parameters -----------------------------------------------------------------
    emg_band_hz: tuple[float, float] = (20.0, 450.0)
    ecg_band_hz: tuple[float, float] = (5.0, 30.0)  # QRS energy; upper edge = start of EMG ref
    heart_rate_hz: tuple[float, float] = (0.8, 3.0)  # 48-180 bpm
    ecg_history_s: float = 8.0  # envelope history for the periodicity (>= 3 beat periods)
    hum_halfwidth_hz: float = 2.0  # covers the Hann main lobe at 1 Hz bins plus mains drift
    flat_window_s: float = 0.05
    flat_std_uv: float = 0.1  # far below any amplifier noise floor: nothing is connected
    flat_repeat_fraction: float = 0.9  # a connected electrode never repeats 90 % of samples
    saturation_run: int = 3  # identical samples in a row at the extreme = a flat top
    saturation_min_range_uv: float = 100.0  # a constant channel is flat, not clipped
    saturation_rail_margin: float = 0.995  # with a known rail: |x| >= margin * rail is clipped
    noise_percentile: float = 10.0  # low enough to skip bursts and QRS complexes
    recent_windows: int = 3
    min_valid_fraction: float = 0.5  # blocks/sub-windows with fewer valid samples are skipped
    max_abs_uv: float = 1e7  # 10 V: beyond any EMG front end; such samples are glitches

    def __post_init__(self) -> None:
        if not (math.isfinite(self.line_freq) and self.line_freq >= 0):
            raise ValueError(f"line_freq must be >= 0, got {self.line_freq}")
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        rail = self.saturation_rail_uv
        if rail is not None and not (math.isfinite(rail) and rail > 0):
            raise ValueError(f"saturation_rail_uv must be > 0, got {rail}")
        if self.saturation_run < 2:
            raise ValueError("saturation_run must be >= 2")
        if self.recent_windows < 1:
            raise ValueError("recent_windows must be >= 1")
        if not 0 < self.noise_percentile < 100:
            raise ValueError("noise_percentile must be in (0, 100)")
        if not 0 < self.flat_window_s <= self.window_s:
            raise ValueError("flat_window_s must be in (0, window_s]")
        for name in ("emg_band_hz", "ecg_band_hz", "heart_rate_hz"):
            lo, hi = getattr(self, name)
            if not 0 < lo < hi:
                raise ValueError(f"{name} must be (low, high) with 0 < low < high")

    @property
    def line_freqs(self) -> tuple[float, ...]:
        return (self.line_freq,) if self.line_freq > 0 else (50.0, 60.0)


@dataclass(frozen=True)
class ChannelQuality:
    """Quality of one channel over some span of data. NaN = could not be measured."""

    hum_db: float  # line hum (fundamental + harmonics) relative to the rest of the EMG band
    saturation_fraction: float  # fraction of valid samples clipped at the rail
    flat_fraction: float  # fraction of 50 ms sub-windows that are flat / lead-off
    ecg_db: float  # beat-periodic 5-30 Hz power relative to 30-450 Hz power
    noise_rms_uv: float  # rest noise floor (20-450 Hz, hum removed)
    status: str  # "ok" | "warn" | "bad"
    issues: tuple[str, ...]  # codes from ISSUE_CODES, most fundamental first
    advice: tuple[str, ...]  # one plain-language fix per issue, same order
    hum_freq: float = 0.0  # line frequency the hum figure refers to
    ecg_periodicity: float = math.nan  # 0..1, how heartbeat-periodic the 5-30 Hz envelope is
    missing_fraction: float = 0.0  # fraction of samples that were NaN/inf/absurd
    seconds: float = 0.0  # duration analysed

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (non-finite numbers become None, tuples become lists)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
            elif isinstance(value, tuple):
                out[key] = list(value)
            else:
                out[key] = value
        return out


# ------------------------------------------------------------------------------------------
# helpers


class _Hist:
    """Fixed-bin per-channel histogram, for bounded-memory quantiles of long sessions."""

    def __init__(self, lo: float, hi: float, n_bins: int, n_channels: int) -> None:
        self.lo, self.hi, self.n_bins = lo, hi, n_bins
        self.width = (hi - lo) / n_bins
        self.counts = np.zeros((n_channels, n_bins), dtype=np.int64)
        self._offsets = np.arange(n_channels) * n_bins

    def add(self, values: NDArray[np.float64]) -> None:
        """Add ``values`` (rows, channels); NaN is ignored, out-of-range values are clamped."""
        vals = np.atleast_2d(values)
        ok = np.isfinite(vals)
        if not ok.any():
            return
        idx = np.clip(((vals - self.lo) / self.width), 0, self.n_bins - 1)
        flat = (np.where(ok, idx, 0).astype(np.int64) + self._offsets)[ok]
        self.counts += np.bincount(flat, minlength=self.counts.size).reshape(self.counts.shape)

    def quantile(self, q: float) -> NDArray[np.float64]:
        total = self.counts.sum(axis=1)
        cum = np.cumsum(self.counts, axis=1)
        target = q * total
        k = np.argmax(cum >= target[:, None], axis=1)
        rows = np.arange(self.counts.shape[0])
        before = np.where(k > 0, cum[rows, np.maximum(k - 1, 0)], 0)
        in_bin = np.maximum(self.counts[rows, k], 1)
        frac = np.clip((target - before) / in_bin, 0.0, 1.0)
        out = self.lo + (k + frac) * self.width
        return np.where(total > 0, out, np.nan)


def _col_quantile(a: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """Quantile of each column ignoring NaN, NaN for empty columns (no all-NaN warnings)."""
    out = np.full(a.shape[1], np.nan)
    for c in range(a.shape[1]):
        col = a[:, c]
        col = col[np.isfinite(col)]
        if col.size:
            out[c] = float(np.quantile(col, q))
    return out


def _bandpass(lo: float, hi: float, fs: float) -> NDArray[np.float64] | None:
    hi = min(hi, 0.45 * fs)  # keep the upper edge clear of Nyquist for a stable design
    if hi <= 1.25 * lo:
        return None
    return np.asarray(signal.butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos"))


def _boundaries(n: int, parts: int) -> NDArray[np.intp]:
    """Start indices of ``parts`` near-equal consecutive segments of ``n`` samples."""
    parts = max(1, min(parts, n))
    return np.linspace(0, n, parts + 1).astype(np.intp)[:-1]


def _db(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(all="ignore"):
        out = 10.0 * np.log10(np.maximum(num, 0.0) / den)
    return np.clip(np.nan_to_num(out, nan=_DB_LO, neginf=_DB_LO, posinf=_DB_HI), _DB_LO, _DB_HI)


def _periodicity(env: NDArray[np.float64], lag_lo: int, lag_hi: int) -> NDArray[np.float64]:
    """Heartbeat periodicity score in [0, 1] for each column of an envelope ``(L, C)``.

    The autocorrelation must have a local peak at a heart-rate lag *and* have dipped before it:
    a smooth envelope (a slow contraction) decorrelates monotonically and scores ~0, a pulse
    train scores its peak correlation.
    """
    n, c = env.shape
    e = env - env.mean(axis=0)
    nfft = sp_fft.next_fast_len(2 * n)
    spec = np.fft.rfft(e, nfft, axis=0)
    ac = np.fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=0)[: lag_hi + 2]
    a0 = ac[0]
    ok = a0 > 0
    ac = ac / np.where(ok, a0, 1.0)
    seg = ac[lag_lo - 1 : lag_hi + 2]
    mid = seg[1:-1]  # lags lag_lo .. lag_hi
    is_peak = (mid >= seg[:-2]) & (mid > seg[2:])
    cand = np.where(is_peak, mid, -np.inf)
    k = np.argmax(cand, axis=0)
    cols = np.arange(c)
    peak = cand[k, cols]
    trough_run = np.minimum.accumulate(ac[1 : lag_hi + 1], axis=0)  # row j = min(lags 1..j+1)
    trough = trough_run[lag_lo + k - 2, cols]  # min over lags 1 .. peak lag - 1
    score = np.minimum(peak, peak - trough)
    good = ok & np.isfinite(score)
    return np.where(good, np.clip(np.nan_to_num(score), 0.0, 1.0), 0.0)


@dataclass
class _Window:
    """Per-block results, kept for ``recent``."""

    n_valid: NDArray[np.int64]
    n_sat: NDArray[np.int64]
    n_eval: NDArray[np.int64]
    n_flat: NDArray[np.int64]
    hum_db: NDArray[np.float64]  # (families, C)
    ecg_db: NDArray[np.float64]
    ecg_score: NDArray[np.float64]
    noise: NDArray[np.float64]  # (sub-windows, C), NaN where not a usable floor estimate


# ------------------------------------------------------------------------------------------


class QualityMonitor:
    """Streaming per-channel quality monitor (see module docstring)."""

    def __init__(
        self, fs: float, n_channels: int, settings: QualitySettings | None = None
    ) -> None:
        if not (math.isfinite(fs) and fs > 0):
            raise ValueError(f"fs must be positive, got {fs}")
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.settings = settings if settings is not None else QualitySettings()
        s = self.settings
        n = round(s.window_s * self.fs)
        if n < 16:
            raise ValueError(f"window_s * fs must give >= 16 samples, got {n}")
        self._n = n
        self._families = s.line_freqs
        self._setup_subwindows()
        self._setup_spectrum()
        self._setup_filters()
        self.reset()

    # --- setup ------------------------------------------------------------------------------

    def _setup_subwindows(self) -> None:
        s, n = self.settings, self._n
        sub_len = max(1, round(s.flat_window_s * self.fs))
        self._sub_starts = _boundaries(n, max(1, round(n / sub_len)))
        self._sub_lens = np.diff(np.append(self._sub_starts, n))
        seg_id = np.repeat(np.arange(self._sub_starts.size), self._sub_lens)
        self._seg_id = seg_id
        # Consecutive-sample pairs are counted within a sub-window only (row i pairs i-1, i).
        pair_ok = np.ones(n, dtype=bool)
        pair_ok[self._sub_starts] = False
        self._pair_ok = pair_ok[:, None]

    def _setup_spectrum(self) -> None:
        s, n, fs = self.settings, self._n, self.fs
        win = signal.get_window("hann", n)
        self._win = win[:, None]
        # Scale so that summing bins gives mean square in uV^2 (one-sided, Hann-corrected).
        self._pscale = 2.0 / (n * float(np.sum(win**2)))
        freqs = np.fft.rfftfreq(n, 1.0 / fs)
        df = fs / n
        lo, hi = s.emg_band_hz[0], min(s.emg_band_hz[1], 0.45 * fs)
        hw = max(s.hum_halfwidth_hz, 2.0 * df)  # at least the Hann main lobe
        flank = max(_FLANK_HZ, 4.0 * df)
        band = (freqs >= lo) & (freqs <= hi)
        harmonics: list[list[float]] = []
        excl = np.zeros(freqs.size, dtype=bool)
        for f0 in self._families:
            hs = [k * f0 for k in range(1, int(hi // f0) + 1) if lo <= k * f0 <= hi]
            harmonics.append(hs)
            for fk in hs:
                excl |= np.abs(freqs - fk) <= hw
        rows = [
            (band & ~excl).astype(float),  # 0: EMG band without hum bins
            ((freqs >= s.ecg_band_hz[0]) & (freqs < s.ecg_band_hz[1])).astype(float),  # 1: QRS
            ((freqs >= s.ecg_band_hz[1]) & (freqs <= hi) & ~excl).astype(float),  # 2: ECG ref
        ]
        for hs in harmonics:
            w = np.zeros(freqs.size)
            for fk in hs:
                dist = np.abs(freqs - fk)
                core = dist <= hw
                side = (dist > hw) & (dist <= hw + flank) & band & ~excl
                w[core] += 1.0
                if side.any():  # subtract the EMG expected under the hum bins
                    w[side] -= core.sum() / side.sum()
            rows.append(w)
        self._notch_freqs = sorted({fk for hs in harmonics for fk in hs if fk < 0.45 * fs})
        self._bandmat = np.vstack(rows)
        self._has_bands = self._bandmat[:3].sum(axis=1) > 0
        self._has_hum = np.array([bool(hs) for hs in harmonics])

    def _setup_filters(self) -> None:
        s, fs = self.settings, self.fs
        self._sos_noise = _bandpass(*s.emg_band_hz, fs)
        if self._sos_noise is not None and self._notch_freqs:
            notches = [
                signal.tf2sos(*signal.iirnotch(f, f / _NOTCH_BW_HZ, fs=fs))
                for f in self._notch_freqs
            ]
            self._sos_noise = np.vstack([self._sos_noise, *notches])
        self._sos_ecg = _bandpass(*s.ecg_band_hz, fs)
        self._env_starts = _boundaries(self._n, max(1, round(s.window_s / _ENV_BIN_S)))
        self._env_lens = np.diff(np.append(self._env_starts, self._n))[:, None]
        n_env = self._env_starts.size
        fe = n_env / s.window_s
        self._lag_lo = max(2, math.ceil(fe / s.heart_rate_hz[1]))
        self._lag_hi = math.floor(fe / s.heart_rate_hz[0])
        self._env_min = 3 * self._lag_hi  # at least three beats at the slowest heart rate
        hist_windows = math.ceil(s.ecg_history_s / s.window_s)
        self._env_len = max(hist_windows * n_env, self._env_min)
        self._ecg_on = self._sos_ecg is not None and self._lag_hi >= self._lag_lo + 2

    def reset(self) -> None:
        """Forget everything seen so far."""
        c = self.n_channels
        self._buf = np.zeros((self._n, c))
        self._fill = 0
        self._last = np.full(c, np.nan)  # last valid sample, for hold-filling gaps
        self._run_max = np.full(c, -np.inf)
        self._run_min = np.full(c, np.inf)
        self._carry = np.full((self.settings.saturation_run - 1, c), np.nan)
        self._carry_run = np.zeros(c, dtype=bool)
        self._filt_init = np.zeros(c, dtype=bool)
        self._zi_noise = (
            np.zeros((self._sos_noise.shape[0], 2, c)) if self._sos_noise is not None else None
        )
        self._zi_ecg = (
            np.zeros((self._sos_ecg.shape[0], 2, c)) if self._sos_ecg is not None else None
        )
        self._env = np.zeros((self._env_len, c))
        self._env_count = 0
        self._recent: deque[_Window] = deque(maxlen=self.settings.recent_windows)
        n_fam = len(self._families)
        self._tot_samples = 0
        self._tot_valid = np.zeros(c, dtype=np.int64)
        self._tot_sat = np.zeros(c, dtype=np.int64)
        self._tot_eval = np.zeros(c, dtype=np.int64)
        self._tot_flat = np.zeros(c, dtype=np.int64)
        db_bins = round((_DB_HI - _DB_LO) * 10)  # 0.1 dB resolution
        self._h_hum = [_Hist(_DB_LO, _DB_HI, db_bins, c) for _ in range(n_fam)]
        self._h_ecg = _Hist(_DB_LO, _DB_HI, db_bins, c)
        self._h_score = _Hist(0.0, 1.0, 200, c)
        self._h_noise = _Hist(-3.0, 6.0, 9 * 40, c)  # log10(uV), 40 bins/decade (~6 %)

    # --- streaming ----------------------------------------------------------------------------

    def process(self, data: NDArray[np.float64]) -> None:
        """Feed a raw ``(n, n_channels)`` block in uV; NaN marks missing samples."""
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim == 1 and self.n_channels == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.n_channels:
            raise ValueError(f"expected (n, {self.n_channels}) samples, got {arr.shape}")
        pos, total = 0, arr.shape[0]
        while pos < total:
            take = min(self._n - self._fill, total - pos)
            self._buf[self._fill : self._fill + take] = arr[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == self._n:
                self._fill = 0
                with np.errstate(all="ignore"):
                    self._analyse(self._buf)

    # --- per-block analysis -------------------------------------------------------------------

    def _hold_fill(self, xr: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Replace invalid samples by the last valid one (causal, no steps for the filters)."""
        n, c = xr.shape
        idx = np.where(valid, np.arange(n)[:, None], -1)
        np.maximum.accumulate(idx, axis=0, out=idx)
        xf = np.take_along_axis(np.where(valid, xr, 0.0), np.maximum(idx, 0), axis=0)
        lead = idx < 0
        if lead.any():
            fill = self._last.copy()
            unseen = ~np.isfinite(fill)
            if unseen.any():  # nothing valid before this block: back-fill with its first value
                first = np.argmax(valid, axis=0)
                firstval = np.where(valid.any(axis=0), xr[first, np.arange(c)], 0.0)
                fill = np.where(unseen, firstval, fill)
            xf = np.where(lead, fill[None, :], xf)
        seen = valid.any(axis=0) | np.isfinite(self._last)
        self._last = np.where(seen, xf[-1], np.nan)
        return xf

    def _saturation(self, xr: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.int64]:
        s = self.settings
        if s.saturation_rail_uv is not None:
            return np.sum(valid & (np.abs(xr) >= s.saturation_rail_margin * s.saturation_rail_uv),
                          axis=0)
        # Rail unknown: clipping makes flat tops at the largest/smallest value ever seen.
        rmax = np.fmax(np.fmax.accumulate(xr, axis=0), self._run_max)
        rmin = np.fmin(np.fmin.accumulate(xr, axis=0), self._run_min)
        self._run_max, self._run_min = rmax[-1], rmin[-1]
        at_ext = ((xr == rmax) | (xr == rmin)) & (rmax - rmin >= s.saturation_min_range_uv)
        r = s.saturation_run
        ext = np.vstack([self._carry, xr])
        same = (ext[1:] == ext[:-1]).astype(np.int64)
        cs = np.vstack([np.zeros((1, xr.shape[1]), dtype=np.int64), np.cumsum(same, axis=0)])
        n = xr.shape[0]
        in_run = ((cs[r - 1 : r - 1 + n] - cs[:n]) == r - 1) & at_ext  # r equal samples end here
        prev = np.vstack([self._carry_run[None, :], in_run[:-1]])
        starts = in_run & ~prev  # a run just reached length r: count its first r-1 samples too
        self._carry = ext[-(r - 1) :].copy()
        self._carry_run = in_run[-1].copy()
        return in_run.sum(axis=0) + (r - 1) * starts.sum(axis=0)

    def _analyse(self, x: NDArray[np.float64]) -> None:
        s, n = self.settings, self._n
        valid = np.isfinite(x) & (np.abs(x) <= s.max_abs_uv)
        xr = np.where(valid, x, np.nan)
        n_valid = valid.sum(axis=0)
        xf = self._hold_fill(xr, valid)
        n_sat = self._saturation(xr, valid)

        # Filters start in steady state at the first value: no start-up transient from a DC offset.
        new = ~self._filt_init & (n_valid > 0)
        if new.any():
            for sos, zi in ((self._sos_noise, self._zi_noise), (self._sos_ecg, self._zi_ecg)):
                if sos is not None and zi is not None:
                    zi[:, :, new] = signal.sosfilt_zi(sos)[:, :, None] * xf[0, new]
            self._filt_init |= new

        # Flat / lead-off on short sub-windows, valid samples only.
        starts = self._sub_starts
        v = valid.astype(np.float64)
        cnt = np.add.reduceat(v, starts, axis=0)
        xc = (xf - xf[starts][self._seg_id]) * v  # centred per sub-window: no cancellation
        with np.errstate(all="ignore"):
            mean = np.add.reduceat(xc, starts, axis=0) / cnt
            var = np.add.reduceat(xc * xc, starts, axis=0) / cnt - mean * mean
            pairs = np.zeros_like(v)
            pairs[1:] = v[1:] * v[:-1]
            pairs *= self._pair_ok
            same = np.zeros_like(v)
            same[1:] = xr[1:] == xr[:-1]
            same *= self._pair_ok
            n_pairs = np.add.reduceat(pairs, starts, axis=0)
            rep = np.add.reduceat(same, starts, axis=0) / n_pairs
        evaluated = cnt >= s.min_valid_fraction * self._sub_lens[:, None]
        flat = evaluated & (
            (np.sqrt(np.maximum(var, 0.0)) < s.flat_std_uv)
            | ((n_pairs >= 2) & (rep >= s.flat_repeat_fraction))
        )

        # Spectrum of the whole block.
        spec = np.fft.rfft((xf - xf.mean(axis=0)) * self._win, axis=0)
        power = (spec.real**2 + spec.imag**2) * self._pscale
        bands = self._bandmat @ power  # rows: emg, qrs, ecg-ref, hum per family
        p_emg, p_qrs, p_ref, hum = bands[0], bands[1], bands[2], bands[3:]
        hum_pos = np.maximum(hum, 0.0)
        spec_ok = (n_valid >= s.min_valid_fraction * n) & (
            p_emg + hum_pos.sum(axis=0) > _TINY_MS
        )
        hum_db = np.where(spec_ok & self._has_bands[0] & self._has_hum[:, None],
                          _db(hum, p_emg), np.nan)

        # Rest noise floor: 50 ms RMS of the EMG band with the line harmonics notched out.
        if self._sos_noise is not None:
            y, self._zi_noise = signal.sosfilt(self._sos_noise, xf, axis=0, zi=self._zi_noise)
            noise = np.sqrt(np.add.reduceat(y * y * v, starts, axis=0) / cnt)
            noise = np.where(evaluated & ~flat, noise, np.nan)
        else:
            noise = np.full(cnt.shape, np.nan)

        # ECG: QRS-band envelope history -> heart-rate periodicity.
        score = np.full(self.n_channels, np.nan)
        if self._ecg_on:
            z, self._zi_ecg = signal.sosfilt(self._sos_ecg, xf, axis=0, zi=self._zi_ecg)
            env = np.sqrt(np.add.reduceat(z * z, self._env_starts, axis=0) / self._env_lens)
            k = env.shape[0]
            self._env = np.roll(self._env, -k, axis=0)
            self._env[-k:] = env
            self._env_count = min(self._env_count + k, self._env_len)
            if self._env_count >= self._env_min:
                score = _periodicity(self._env[-self._env_count :], self._lag_lo, self._lag_hi)
        ecg_ok = spec_ok & self._has_bands[1] & self._has_bands[2] & (p_ref > _TINY_MS)
        ecg_db = np.where(ecg_ok & np.isfinite(score), _db(score * p_qrs, p_ref), np.nan)
        score = np.where(ecg_ok, score, np.nan)

        w = _Window(
            n_valid=n_valid,
            n_sat=np.asarray(n_sat, dtype=np.int64),
            n_eval=evaluated.sum(axis=0),
            n_flat=flat.sum(axis=0),
            hum_db=hum_db,
            ecg_db=ecg_db,
            ecg_score=score,
            noise=noise,
        )
        self._recent.append(w)
        self._tot_samples += n
        self._tot_valid += w.n_valid
        self._tot_sat += w.n_sat
        self._tot_eval += w.n_eval
        self._tot_flat += w.n_flat
        for h, row in zip(self._h_hum, hum_db, strict=True):
            h.add(row)
        self._h_ecg.add(ecg_db)
        self._h_score.add(score)
        self._h_noise.add(np.log10(np.maximum(noise, 1e-3)))  # 0 would be lost as -inf

    # --- summaries ----------------------------------------------------------------------------

    def report(self) -> list[ChannelQuality]:
        """Quality over every complete block seen since construction/reset (robust medians)."""
        q = self.settings.noise_percentile / 100.0
        return self._summarise(
            n_samples=self._tot_samples,
            n_valid=self._tot_valid,
            n_sat=self._tot_sat,
            n_eval=self._tot_eval,
            n_flat=self._tot_flat,
            hum_db=np.vstack([h.quantile(0.5) for h in self._h_hum]),
            ecg_db=self._h_ecg.quantile(0.5),
            score=self._h_score.quantile(0.5),
            noise=10.0 ** self._h_noise.quantile(q),
        )

    def recent(self) -> list[ChannelQuality]:
        """Quality over the last ``recent_windows`` blocks (for a live traffic light)."""
        ws = list(self._recent)
        c = self.n_channels
        if not ws:
            z = np.zeros(c, dtype=np.int64)
            nan = np.full(c, np.nan)
            return self._summarise(0, z, z, z, z, np.full((len(self._families), c), np.nan),
                                   nan, nan, nan)
        q = self.settings.noise_percentile / 100.0
        hum = np.stack([w.hum_db for w in ws])  # (windows, families, C)
        return self._summarise(
            n_samples=self._n * len(ws),
            n_valid=sum(w.n_valid for w in ws),
            n_sat=sum(w.n_sat for w in ws),
            n_eval=sum(w.n_eval for w in ws),
            n_flat=sum(w.n_flat for w in ws),
            hum_db=np.vstack([_col_quantile(hum[:, f], 0.5) for f in range(hum.shape[1])]),
            ecg_db=_col_quantile(np.stack([w.ecg_db for w in ws]), 0.5),
            score=_col_quantile(np.stack([w.ecg_score for w in ws]), 0.5),
            noise=_col_quantile(np.vstack([w.noise for w in ws]), q),
        )

    def _summarise(
        self,
        n_samples: int,
        n_valid: NDArray[np.int64],
        n_sat: NDArray[np.int64],
        n_eval: NDArray[np.int64],
        n_flat: NDArray[np.int64],
        hum_db: NDArray[np.float64],
        ecg_db: NDArray[np.float64],
        score: NDArray[np.float64],
        noise: NDArray[np.float64],
    ) -> list[ChannelQuality]:
        out = []
        for c in range(self.n_channels):
            hums = hum_db[:, c]
            if np.isfinite(hums).any():
                f = int(np.nanargmax(hums))
                hum_c, hum_f = float(hums[f]), self._families[f]
            else:
                hum_c, hum_f = math.nan, self._families[0]
            nv = int(n_valid[c])
            metrics = {
                "hum_db": hum_c,
                "saturation_fraction": min(1.0, n_sat[c] / nv) if nv else math.nan,
                "flat_fraction": n_flat[c] / n_eval[c] if n_eval[c] else math.nan,
                "ecg_db": float(ecg_db[c]),
                "noise_rms_uv": float(noise[c]),
            }
            issues = _issues(self.settings, nv, metrics, float(score[c]))
            status = "ok"
            if issues:
                status = "bad" if any(sev == "bad" for _, sev in issues) else "warn"
            out.append(
                ChannelQuality(
                    **{k: float(v) for k, v in metrics.items()},
                    status=status,
                    issues=tuple(code for code, _ in issues),
                    advice=tuple(_advice(code, sev, metrics, hum_f) for code, sev in issues),
                    hum_freq=float(hum_f),
                    ecg_periodicity=float(score[c]),
                    missing_fraction=1.0 - nv / n_samples if n_samples else 0.0,
                    seconds=n_samples / self.fs,
                )
            )
        return out


def _issues(
    s: QualitySettings, n_valid: int, m: dict[str, float], periodicity: float
) -> list[tuple[str, str]]:
    """(code, severity) pairs in ISSUE_CODES order. NaN metrics never raise an issue."""
    if n_valid == 0:
        return [("no_data", "warn")]
    found: dict[str, str] = {}

    def check(code: str, value: float, warn: float, bad: float | None) -> None:
        if bad is not None and value > bad:
            found[code] = "bad"
        elif value > warn:
            found[code] = "warn"

    check("flat", m["flat_fraction"], s.flat_warn, s.flat_bad)
    check("saturation", m["saturation_fraction"], s.saturation_warn, s.saturation_bad)
    check("hum", m["hum_db"], s.hum_warn_db, s.hum_bad_db)
    check("noisy", m["noise_rms_uv"], s.noise_warn_uv, s.noise_bad_uv)
    if periodicity >= s.ecg_min_periodicity:
        check("ecg", m["ecg_db"], s.ecg_warn_db, None)
    return [(code, found[code]) for code in ISSUE_CODES if code in found]


def _advice(code: str, severity: str, m: dict[str, float], hum_freq: float) -> str:
    strong = severity == "bad"
    if code == "no_data":
        return "no usable samples on this channel: check that it is enabled and streaming"
    if code == "flat":
        return (
            f"channel is flat {m['flat_fraction']:.0%} of the time (lead-off): check that the "
            "electrode is stuck down, the snap lead is clipped on and the cable is plugged in"
        )
    if code == "saturation":
        return (
            f"signal is clipping ({m['saturation_fraction']:.2%} of samples): lower the "
            "amplifier gain if it is adjustable, and check for a loose or dried electrode "
            "causing a large offset"
        )
    if code == "hum":
        level = "strong" if strong else "some"
        return (
            f"{level} {hum_freq:g} Hz hum ({m['hum_db']:+.0f} dB): check the reference/ground "
            "electrode contact and route cables away from mains leads and power supplies"
        )
    if code == "noisy":
        return (
            f"high rest noise floor ({m['noise_rms_uv']:.1f} uV RMS): re-prepare the skin "
            "(shave, abrade, clean with alcohol), replace dried electrodes, keep the cable "
            "still and the subject relaxed during the check"
        )
    if code == "ecg":
        return (
            f"heartbeat (ECG) dominates the signal ({m['ecg_db']:+.0f} dB): place the "
            "electrode pair along the muscle fibres and further from the heart, or enable "
            "ECG removal / a 30 Hz high-pass"
        )
    return code
