"""Per-channel signal quality for surface EMG, streaming and causal.

:class:`QualityMonitor` sits in the acquisition thread. ``process`` only copies samples into a
``window_s`` block; all analysis happens once per full block (one FFT, two short IIR filters and
a few vectorised reductions), so the per-chunk cost is a memcpy plus an amortised share of that.
Because every metric is computed on the same fixed blocks, feeding the data in any chunking gives
identical results. ``report`` covers every complete block seen so far (the partial block still
being filled is not included); ``recent`` covers the last seconds (``rest_history_s`` for the
noise floor, recent rest blocks for hum and ECG, ``clip_windows`` / ``recent_windows`` blocks
for clipping / flat line) and holds each issue with hysteresis, so a live traffic light does
not flicker on a steady signal.

Rest referencing: hum and ECG are judged against the *rest* EMG band (what the electrode shows
with the muscle relaxed, where an onset detector sets its threshold), not against whatever the
muscle is doing in that second. A block's ratio would swing by 30-50 dB between a rep and the
pause after it; instead each figure is a ratio of sums over the quietest blocks (lowest
EMG-band power). Live, a block is rest when it is within 6 dB of the quietest block of the last
``rest_history_s``, and rest blocks feed an exponential average (time constant
``rest_tau_blocks`` rest blocks, held while the muscle works); ``report`` takes the quietest
``rest_fraction`` of all blocks.

Metrics per channel and block:

* hum: power in narrow bins around the line frequency and its harmonics inside the EMG band,
  minus the EMG power expected in those bins (estimated from flanking bins), relative to the
  rest EMG-band power outside the hum bins; also as an RMS in uV. Subtracting the local
  baseline matters: EMG itself is densest at 50-150 Hz, so a raw bin-power ratio would
  report hum on a clean channel.
* saturation: samples at the known rail or, rail unknown, samples exactly at the running
  max/min of the channel once that exact value has been hit ``saturation_hits`` times: clipping
  makes flat tops at one value (runs or single samples), a clean signal reaches each new extreme
  once.
* flat: 50 ms sub-windows with near-zero standard deviation or almost only repeated values.
* ECG: power in 5-30 Hz (where the QRS lives) relative to 30-450 Hz, weighted by how periodic
  the 5-30 Hz envelope is at heart-rate lags (0.33-1.25 s). The weighting keeps non-periodic
  low-frequency content (movement artefact) from being called ECG. Needs a few seconds of
  history, so it is undefined (NaN) during the first blocks.
* noise: low percentile of 50 ms RMS values of the 20-450 Hz band with the line harmonics
  notched out, so that "noisy" means broadband noise (skin contact) and hum is reported once;
  scaled by a factor calibrated on white noise through the same filter (a low percentile of
  short-window RMS values reads ~15 % under the true RMS), so the figure is the floor's RMS.
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
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dsp.filters import butter_sos, notch_sos, sosfilt, sosfilt_rows, sosfilt_zi

log = logging.getLogger(__name__)

__all__ = [
    "HUM_FLOOR_DB",
    "ISSUE_CODES",
    "ISSUE_LABELS",
    "ChannelQuality",
    "QualityMonitor",
    "QualitySettings",
    "QualityStatus",
]


class QualityStatus(StrEnum):
    """Traffic light of one channel (a str, so JSON and ``== "ok"`` keep working)."""

    OK = "ok"
    WARN = "warn"
    BAD = "bad"


#: Issue codes in the order a technician should fix them (a lead-off explains everything else).
ISSUE_CODES: tuple[str, ...] = ("no_data", "flat", "saturation", "hum", "noisy", "ecg")
#: What each issue is called on screen and in reports (one table for the window, CLI, report).
ISSUE_LABELS: dict[str, str] = {
    "no_data": "no data",
    "flat": "flat / lead-off",
    "saturation": "clipping",
    "hum": "mains hum",
    "noisy": "noisy (skin contact)",
    "ecg": "heartbeat (ECG)",
}

_DB_LO = -60.0  # dB values are clamped to this range: below/above it nothing changes in practice
_DB_HI = 60.0
HUM_FLOOR_DB = -30.0  # hum figures below this are shown as this (not resolvable, irrelevant)
_TINY_MS = 1e-4  # uV^2: a band with less mean-square than this (0.01 uV RMS) has no content
_ENV_BIN_S = 0.02  # ECG envelope resolution: a QRS (~100 ms) spans ~5 envelope samples
_FLANK_HZ = 8.0  # width of the baseline bins on each side of a hum harmonic
_ECG_RATE_HZ = 200.0  # decimated rate for the ECG envelope path
# Noise-floor notches: -20 dB even 0.2 Hz off nominal (the mains drifts; 30 uV of hum would leak
# 4 uV through 2 Hz notches, a "noisy" verdict on a well prepared skin). They remove ~13 % of a
# white floor's power at 50 Hz; ``_floor_gain`` puts that back, so the floor is not understated.
_NOTCH_BW_HZ = 4.0


@dataclass(frozen=True)
class QualitySettings:
    """Analysis parameters and status thresholds."""

    line_freq: float = 50.0  # 50 or 60 Hz; 0 = unknown: check both and report the worse
    window_s: float = 1.0  # analysis block: 1 Hz FFT resolution, one update per second
    saturation_rail_uv: float | None = None  # known ADC rail (|x|); None = infer from the data

    # --- status thresholds -------------------------------------------------------------------
    # Sources. Konrad 2005 (The ABC of EMG, Noraxon, "signal check"): with a good skin
    # preparation the rest baseline of a modern amplifier is a few uV (1-2 uV the aim, 3-5 uV
    # the most that should be accepted). Hermens et al. 2000 (SENIAM) and Merletti & Cerone 2020
    # (J Electromyogr Kinesiol 54:102440): amplifier noise < 1 uV RMS in 10-500 Hz, the rest is
    # electrode-skin noise, which preparation (shaving, abrasion, alcohol) lowers; power-line
    # interference must be removed at the source (electrode contact, reference, cables), not
    # by notch filters, which also remove EMG; ECG is the main contaminant of trunk muscles.
    #
    # Hum, judged against the rest floor: at 0 dB the mains residue carries as much power as
    # all broadband noise in 20-450 Hz, so it dominates the rest baseline an onset threshold is
    # set from; at +10 dB (3x the floor's amplitude) it swamps low-level activity and a notch
    # no longer cleans it up. Below ``hum_min_uv`` it is never an issue: hum that small keeps
    # the whole baseline within Konrad's acceptable 3-5 uV even over an excellent 1 uV floor.
    hum_warn_db: float = 0.0
    hum_bad_db: float = 10.0
    hum_min_uv: float = 2.0
    # Occasional clipped peaks (0.1 %) only distort amplitudes; at 1 % whole bursts are
    # truncated and the amplitude-based onset/ratio measures become unreliable.
    saturation_warn: float = 0.001
    saturation_bad: float = 0.01
    # Short intermittent drop-outs (5 %) are the first sign of a peeling electrode or a loose
    # snap; above 20 % a large share of reps would be missing this channel.
    flat_warn: float = 0.05
    flat_bad: float = 0.20
    # Beat-periodic 5-30 Hz power at least equal to the rest 30-450 Hz power: QRS residue then
    # survives a 20-30 Hz high-pass (Drake & Callaghan 2006, J Electromyogr Kinesiol 16:175) at
    # the level of the rest floor and can be mistaken for an onset. ECG is physiology and can
    # be filtered, so it only ever warns.
    ecg_warn_db: float = 0.0
    ecg_min_periodicity: float = 0.3  # below this the low-frequency power is not heartbeat-like
    # Rest noise floor (20-450 Hz RMS, hum notched out): above Konrad's ~5 uV the preparation
    # is not good; from 15 uV (the 10-15 uV that practical sEMG guides call a poor baseline)
    # the floor is a fifth of a typical 60-100 uV glute/lumbar plateau RMS and hides the
    # low-level start of a burst, i.e. the onset this app times.
    noise_warn_uv: float = 5.0
    noise_bad_uv: float = 15.0
    # Hysteresis for ``recent``: an active issue clears only once its figure is this far back
    # inside the limit (dB figures: ``release_db``; uV: times ``release_factor``; clipped / flat
    # fractions, which come in bursts (a rep clips, the pause does not): ``release_fraction``).
    release_db: float = 2.0
    release_factor: float = 0.8
    release_fraction: float = 0.5

    # --- detector parameters -----------------------------------------------------------------
    emg_band_hz: tuple[float, float] = (20.0, 450.0)
    ecg_band_hz: tuple[float, float] = (5.0, 30.0)  # QRS energy; upper edge = start of EMG ref
    heart_rate_hz: tuple[float, float] = (0.8, 3.0)  # 48-180 bpm
    ecg_history_s: float = 8.0  # envelope history for the periodicity (>= 3 beat periods)
    hum_halfwidth_hz: float = 2.0  # covers the Hann main lobe at 1 Hz bins plus mains drift
    flat_window_s: float = 0.05
    flat_std_uv: float = 0.1  # far below any amplifier noise floor: nothing is connected
    flat_repeat_fraction: float = 0.9  # a connected electrode never repeats 90 % of samples
    # A clean signal reaches each new extreme once (new maxima are new values); a clipping one
    # lands on the very same extreme value again and again, whether in runs or single samples.
    saturation_hits: int = 3  # exact hits of the running extreme value that make it a rail
    saturation_min_range_uv: float = 100.0  # a constant channel is flat, not clipped
    saturation_rail_margin: float = 0.995  # with a known rail: |x| >= margin * rail is clipped
    noise_percentile: float = 10.0  # low enough to skip bursts and QRS complexes
    recent_windows: int = 3  # blocks behind the live flat-line figure: a lead-off shows at once
    # Clipping comes with bursts (one rep clips, the pause and a weaker rep do not): judged
    # over this many blocks (~7 reps), so a channel that clips now and then stays amber.
    clip_windows: int = 20
    # Live noise/hum/ECG: rest is judged against the quietest block of the last
    # ``rest_history_s`` (with reps every ~3 s, 8 s always holds a pause); rest blocks are
    # averaged with a time constant of ``rest_tau_blocks`` rest blocks (~ +-1 dB on a steady
    # hum); report: the quietest ``rest_fraction`` of all blocks, at least ``_MIN_REST`` blocks.
    rest_history_s: float = 8.0
    rest_tau_blocks: float = 6.0
    rest_fraction: float = 0.25
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
        if self.saturation_hits < 2:
            raise ValueError("saturation_hits must be >= 2")
        if self.recent_windows < 1 or self.clip_windows < 1:
            raise ValueError("recent_windows and clip_windows must be >= 1")
        if not self.rest_history_s >= self.window_s:
            raise ValueError("rest_history_s must hold at least one block")
        if not self.rest_tau_blocks >= 1:
            raise ValueError("rest_tau_blocks must be >= 1")
        if not 0 < self.rest_fraction <= 1:
            raise ValueError("rest_fraction must be in (0, 1]")
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

    hum_db: float  # line hum (fundamental + harmonics) relative to the rest EMG band (20-450 Hz)
    saturation_fraction: float  # fraction of valid samples clipped at the rail
    flat_fraction: float  # fraction of 50 ms sub-windows that are flat / lead-off
    ecg_db: float  # beat-periodic 5-30 Hz power relative to the rest 30-450 Hz power
    noise_rms_uv: float  # rest noise floor (20-450 Hz, hum removed)
    status: QualityStatus
    issues: tuple[str, ...]  # codes from ISSUE_CODES, most fundamental first
    advice: tuple[str, ...]  # one plain-language fix per issue, same order
    hum_freq: float = 0.0  # line frequency the hum figure refers to
    hum_rms_uv: float = math.nan  # RMS of the hum at rest (all harmonics in the EMG band)
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
            elif isinstance(value, StrEnum):
                out[key] = str(value)
            else:
                out[key] = value
        return out


# ------------------------------------------------------------------------------------------
# helpers. Internally everything is channels-first (C, n): numpy reductions, reduceat, FFTs and
# sosfilt along the contiguous last axis are several times faster than along axis 0 of (n, C).


class _Hist:
    """Fixed-bin per-channel histogram, for bounded-memory quantiles of long sessions."""

    def __init__(self, lo: float, hi: float, n_bins: int, n_channels: int) -> None:
        self.lo, self.hi, self.n_bins = lo, hi, n_bins
        self.width = (hi - lo) / n_bins
        self.counts = np.zeros((n_channels, n_bins), dtype=np.int64)
        self._offsets = (np.arange(n_channels) * n_bins)[:, None]

    def add(self, values: NDArray[np.float64]) -> None:
        """Add ``values`` of shape (C,) or (C, k); NaN is ignored, out-of-range is clamped."""
        vals = values.reshape(values.shape[0], -1)
        ok = np.isfinite(vals)
        if not ok.any():
            return
        idx = np.minimum(np.maximum((vals[ok] - self.lo) / self.width, 0), self.n_bins - 1)
        flat = idx.astype(np.int64) + np.broadcast_to(self._offsets, vals.shape)[ok]
        np.add.at(self.counts.reshape(-1), flat, 1)

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


def _row_quantile(a: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """Linear-interpolated quantile of each row ignoring NaN; NaN for empty rows.

    Vectorised (np.nanquantile warns on all-NaN rows, and a per-row loop is slow).
    """
    srt = np.sort(a, axis=1)  # NaN sorts last
    cnt = np.count_nonzero(~np.isnan(a), axis=1)
    pos = q * np.maximum(cnt - 1, 0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(cnt - 1, 0))
    rows = np.arange(a.shape[0])
    out = srt[rows, lo] + (srt[rows, hi] - srt[rows, lo]) * (pos - lo)
    return np.where(cnt > 0, out, np.nan)


def _bandpass(lo: float, hi: float, fs: float) -> NDArray[np.float64] | None:
    hi = min(hi, 0.45 * fs)  # keep the upper edge clear of Nyquist for a stable design
    if hi <= 1.25 * lo:
        return None
    return butter_sos(2, [lo, hi], "bandpass", fs)


def _next_fast_len(target: int) -> int:
    """Smallest 11-smooth length >= ``target`` (what ``scipy.fft.next_fast_len`` returns)."""
    n = max(1, target)
    while True:
        m = n
        for f in (2, 3, 5, 7, 11):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n += 1


def _boundaries(n: int, parts: int) -> NDArray[np.intp]:
    """Start indices of ``parts`` near-equal consecutive segments of ``n`` samples."""
    parts = max(1, min(parts, n))
    return np.linspace(0, n, parts + 1).astype(np.intp)[:-1]


def _db(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(all="ignore"):
        out = 10.0 * np.log10(np.maximum(num, 0.0) / den)
    # clamped to [_DB_LO, _DB_HI], NaN -> _DB_LO (maximum/minimum keep NaN, where() maps it)
    out = np.minimum(np.maximum(out, _DB_LO), _DB_HI)
    return np.where(np.isnan(out), _DB_LO, out)


def _periodicity(env: NDArray[np.float64], lag_lo: int, lag_hi: int) -> NDArray[np.float64]:
    """Heartbeat periodicity score in [0, 1] for each row of an envelope ``(C, L)``.

    The autocorrelation must have a local peak at a heart-rate lag *and* have dipped before it:
    a smooth envelope (a slow contraction) decorrelates monotonically and scores ~0, a pulse
    train scores its peak correlation.
    """
    c, n = env.shape
    e = env - env.mean(axis=1, keepdims=True)
    nfft = _next_fast_len(2 * n)
    spec = np.fft.rfft(e, nfft, axis=1)
    ac = np.fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=1)[:, : lag_hi + 2]
    a0 = ac[:, :1]
    ok = a0[:, 0] > 0
    ac = ac / np.where(a0 > 0, a0, 1.0)
    seg = ac[:, lag_lo - 1 : lag_hi + 2]
    mid = seg[:, 1:-1]  # lags lag_lo .. lag_hi
    is_peak = (mid >= seg[:, :-2]) & (mid > seg[:, 2:])
    cand = np.where(is_peak, mid, -np.inf)
    k = np.argmax(cand, axis=1)
    rows = np.arange(c)
    peak = cand[rows, k]
    trough_run = np.minimum.accumulate(ac[:, 1 : lag_hi + 1], axis=1)  # j: min over lags 1..j+1
    trough = trough_run[rows, lag_lo + k - 2]  # min over lags 1 .. peak lag - 1
    score = np.minimum(peak, peak - trough)
    good = ok & np.isfinite(score)
    return np.where(good, np.minimum(np.maximum(score, 0.0), 1.0), 0.0)  # score is finite if good


@dataclass
class _Window:
    """Per-block results, kept for ``recent``. Arrays are (C,) unless noted."""

    n_valid: NDArray[np.int64]
    n_sat: NDArray[np.int64]
    n_eval: NDArray[np.int64]
    n_flat: NDArray[np.int64]
    spec_ok: NDArray[np.bool_]  # the spectrum of this block is usable
    p_emg: NDArray[np.float64]  # EMG-band mean square without the hum bins (uV^2)
    hum: NDArray[np.float64]  # (families, C) hum power above the local EMG baseline (uV^2)
    ecg_ok: NDArray[np.bool_]  # the ECG figures of this block are usable
    ecg_num: NDArray[np.float64]  # periodicity x 5-30 Hz power (uV^2)
    p_ref: NDArray[np.float64]  # 30-450 Hz power without the hum bins (uV^2)
    ecg_score: NDArray[np.float64]
    noise: NDArray[np.float64]  # (C, sub-windows), NaN where not a usable floor estimate


_LOGP_LO, _LOGP_HI, _LOGP_BINS = -4.0, 8.0, 240  # log10(uV^2) bins of the rest selection
# A rest block is within 6 dB of the quietest block: the rest floor of one electrode varies far
# less than that, while a block with any part of a rep in it has 10-30 dB more power. Without this
# a pause shorter than the history would let a rep's block into the "quietest" few, and its hum
# estimate (hum bins minus flanks, each holding ~1000x the rest power) swamps the real figure.
_REST_SPAN = 4.0
_MIN_REST = 3  # report: at least this many blocks count as rest (a short file without pauses)


class _QuietSums:
    """Per-channel sums of block figures, binned by the block's log EMG-band power.

    The quietest fraction of all blocks is then a prefix of the bins, in bounded memory (a
    session of hours keeps the same few arrays), within one bin (12 %) of the exact selection;
    bins more than ``_REST_SPAN`` above the lowest occupied one are never rest.
    """

    def __init__(self, n_channels: int, n_values: int) -> None:
        self.count = np.zeros((n_channels, _LOGP_BINS))
        self.sums = np.zeros((n_values, n_channels, _LOGP_BINS))

    def add(self, key: NDArray[np.float64], ok: NDArray[np.bool_], values: NDArray[np.float64]):
        """``key`` (C,) EMG-band power, ``ok`` (C,) blocks to count, ``values`` (V, C)."""
        if not ok.any():
            return
        with np.errstate(divide="ignore"):
            logk = np.log10(np.maximum(key, 1e-12))
        scale = _LOGP_BINS / (_LOGP_HI - _LOGP_LO)
        # (np.clip's dispatch costs more than the two ufuncs on a few values)
        idx = np.minimum(
            np.maximum(((logk - _LOGP_LO) * scale).astype(np.int64), 0), _LOGP_BINS - 1
        )
        rows = np.flatnonzero(ok)
        self.count[rows, idx[rows]] += 1
        self.sums[:, rows, idx[rows]] += values[:, rows]

    def quietest(self, fraction: float, at_least: int) -> tuple[NDArray[np.float64], NDArray]:
        """(blocks used (C,), sums (V, C)) over the quietest ``fraction`` of the blocks."""
        total = self.count.sum(axis=1)
        target = np.minimum(np.maximum(fraction * total, at_least), total)
        before = np.cumsum(self.count, axis=1) - self.count
        take = (before < target[:, None]) & (self.count > 0)
        lowest = np.argmax(self.count > 0, axis=1)
        span = round(math.log10(_REST_SPAN) * _LOGP_BINS / (_LOGP_HI - _LOGP_LO))
        take &= np.arange(_LOGP_BINS) <= (lowest + span)[:, None]
        return (self.count * take).sum(axis=1), (self.sums * take).sum(axis=2)


# ------------------------------------------------------------------------------------------


#: ``QualityMonitor._calibrate_floor_gain`` for the usual cases (default settings, 1000 / 2000 /
#: 2048 Hz, 50 / 60 Hz / both), keyed by ``_gain_key``: the calibration filters 31 s of seeded
#: white noise and imports numpy.random, some 30 ms of every start (issue 8); these are its
#: results, to the bit (tests/test_quality_gain_table.py recomputes every one).
FLOOR_GAINS: dict[tuple[Any, ...], float] = {
    (
        1000.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0),
    ): 1.2409749149870384,
    (
        1000.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 420.0),
    ): 1.2242100584351763,
    (
        1000.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (
            50.0,
            60.0,
            100.0,
            120.0,
            150.0,
            180.0,
            200.0,
            240.0,
            250.0,
            300.0,
            350.0,
            360.0,
            400.0,
            420.0,
        ),
    ): 1.2995750810926203,
    (
        2000.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0),
    ): 1.2331580640817466,
    (
        2000.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 420.0),
    ): 1.2117026568024354,
    (
        2000.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (
            50.0,
            60.0,
            100.0,
            120.0,
            150.0,
            180.0,
            200.0,
            240.0,
            250.0,
            300.0,
            350.0,
            360.0,
            400.0,
            420.0,
            450.0,
        ),
    ): 1.284110395006577,
    (
        2048.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0),
    ): 1.2125930882989988,
    (
        2048.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 420.0),
    ): 1.2022957213269136,
    (
        2048.0,
        (20.0, 450.0),
        0.05,
        10.0,
        1.0,
        (
            50.0,
            60.0,
            100.0,
            120.0,
            150.0,
            180.0,
            200.0,
            240.0,
            250.0,
            300.0,
            350.0,
            360.0,
            400.0,
            420.0,
            450.0,
        ),
    ): 1.2669557322767895,
}


class QualityMonitor:
    """Streaming per-channel quality monitor (see module docstring)."""

    def __init__(
        self, fs: float, n_channels: int, settings: QualitySettings = QualitySettings()
    ) -> None:
        if not (math.isfinite(fs) and fs > 0):
            raise ValueError(f"fs must be positive, got {fs}")
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.settings = settings  # frozen, so the shared default instance is safe
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
        log.debug(
            "quality monitor: fs=%g Hz, %d channels, %d-sample blocks, line %s Hz, %d notches",
            self.fs,
            self.n_channels,
            n,
            "/".join(f"{f:g}" for f in self._families),
            len(self._notch_freqs),
        )

    # --- setup ------------------------------------------------------------------------------

    def _setup_subwindows(self) -> None:
        s, n = self.settings, self._n
        sub_len = max(1, round(s.flat_window_s * self.fs))
        self._sub_starts = _boundaries(n, round(n / sub_len))
        self._sub_lens = np.diff(np.append(self._sub_starts, n)).astype(np.float64)
        self._seg_id = np.repeat(np.arange(self._sub_starts.size), self._sub_lens.astype(int))
        # Equal sub-windows allow a reshape instead of reduceat (the common case, 2 kHz / 50 ms).
        self._sub_equal = bool(np.all(self._sub_lens == self._sub_lens[0]))
        # Consecutive-sample pairs are counted within a sub-window only (column i pairs i-1, i).
        self._pair_ok = np.ones(n)
        self._pair_ok[self._sub_starts] = 0.0

    def _setup_spectrum(self) -> None:
        s, n, fs = self.settings, self._n, self.fs
        win = 0.5 + 0.5 * np.cos(np.linspace(-np.pi, np.pi, n + 1)[:-1])  # periodic Hann
        self._win = win
        # Scale so that summing bins gives mean square in uV^2 (one-sided, Hann-corrected).
        pscale = 2.0 / (n * float(np.sum(win**2)))
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
        bandmat = np.vstack(rows)
        self._has_bands = bandmat[:3].sum(axis=1) > 0
        self._has_hum = np.array([bool(hs) for hs in harmonics])
        self._bandmat_t = np.ascontiguousarray(bandmat.T) * pscale  # power (C, f) @ this

    def _setup_filters(self) -> None:
        s, fs, n = self.settings, self.fs, self._n
        self._sos_noise = _bandpass(*s.emg_band_hz, fs)
        if self._sos_noise is not None and self._notch_freqs:
            notches = [notch_sos(f, f / _NOTCH_BW_HZ, fs) for f in self._notch_freqs]
            self._sos_noise = np.vstack([self._sos_noise, *notches])
        self._noise_gain = self._floor_gain() if self._sos_noise is not None else 1.0
        # The ECG path runs on a boxcar-decimated copy (~200 Hz): 5-30 Hz needs no more, it is 10x
        # cheaper, and the boxcar nulls at multiples of the new rate keep aliased EMG far below
        # the QRS (it only feeds the periodicity envelope; the ECG power comes from the FFT).
        dec = max(1, int(fs // _ECG_RATE_HZ))
        self._dec_starts = _boundaries(n, n // dec)
        self._dec_lens = np.diff(np.append(self._dec_starts, n)).astype(np.float64)
        n_dec = self._dec_starts.size
        self._sos_ecg = _bandpass(*s.ecg_band_hz, n_dec / s.window_s)
        self._env_starts = _boundaries(n_dec, round(s.window_s / _ENV_BIN_S))
        self._env_lens = np.diff(np.append(self._env_starts, n_dec)).astype(np.float64)
        n_env = self._env_starts.size
        fe = n_env / s.window_s
        self._lag_lo = max(2, math.ceil(fe / s.heart_rate_hz[1]))
        self._lag_hi = math.floor(fe / s.heart_rate_hz[0])
        self._env_min = 3 * self._lag_hi  # at least three beats at the slowest heart rate
        hist_windows = math.ceil(s.ecg_history_s / s.window_s)
        self._env_len = max(hist_windows * n_env, self._env_min)
        self._ecg_on = self._sos_ecg is not None and self._lag_hi >= self._lag_lo + 2
        # Unit steady-state filter states, scaled by the first sample of each channel.
        self._zi_noise_unit = sosfilt_zi(self._sos_noise) if self._sos_noise is not None else None
        self._zi_ecg_unit = sosfilt_zi(self._sos_ecg) if self._sos_ecg is not None else None

    def _gain_key(self) -> tuple[Any, ...]:
        """What ``_floor_gain`` depends on, besides this module's constants."""
        s = self.settings
        return (
            # A rate estimated from a time column is 2000.0000000000002 as often as 2000: a
            # part-per-trillion change of rate moves the gain by far less than its last bit
            # matters (a floor read to 0.1 µV), so the table answers for both.
            round(self.fs, 6),
            tuple(s.emg_band_hz),
            s.flat_window_s,
            s.noise_percentile,
            s.window_s,
            tuple(self._notch_freqs),
        )

    def _floor_gain(self) -> float:
        """``_calibrate_floor_gain``, from ``FLOOR_GAINS`` where it holds the case."""
        gain = FLOOR_GAINS.get(self._gain_key())
        return self._calibrate_floor_gain() if gain is None else gain

    def _calibrate_floor_gain(self) -> float:
        """Factor from the low percentile of 50 ms RMS values to the floor's RMS in the band.

        A low percentile of short-window RMS values sits below the RMS of the noise it
        measures (10th percentile of 50 ms windows over 20-450 Hz: ~0.85x), and the notches
        remove a little of the floor too. Both are calibrated once on seeded white noise
        through this very filter, so a 3 µV floor reads 3 µV and the 5 / 15 µV limits mean
        what the literature means by them.
        """
        s, fs = self.settings, self.fs
        band = _bandpass(*s.emg_band_hz, fs)
        assert band is not None and self._sos_noise is not None
        imp = np.zeros(max(4 * self._n, round(2 * fs)))
        imp[0] = 1.0
        rms_band = math.sqrt(float(np.sum(sosfilt(band, imp) ** 2)))  # unit white noise in
        white = np.random.default_rng(0).standard_normal(round(30 * fs) + round(fs))
        y = sosfilt(self._sos_noise, white)[round(fs) :]  # skip the filter's start-up
        sub = max(1, round(s.flat_window_s * fs))
        k = y.size // sub
        rms = np.sqrt(np.mean(y[: k * sub].reshape(k, sub) ** 2, axis=1))
        return rms_band / float(np.percentile(rms, s.noise_percentile))

    def reset(self) -> None:
        """Forget everything seen so far."""
        c = self.n_channels
        self._buf = np.zeros((c, self._n))
        self._fill = 0
        self._last = np.full(c, np.nan)  # last valid sample, for hold-filling gaps
        # Running extreme per channel, for [max, -min], and how often it has been hit exactly.
        self._ext_val = np.full((2, c), -np.inf)
        self._ext_hits = np.zeros((2, c), dtype=np.int64)
        self._filt_init = np.zeros(c, dtype=bool)
        # Filter states (C, sections, 2), the layout the SOS kernel works on.
        self._zi_noise = (
            np.zeros((c, self._sos_noise.shape[0], 2)) if self._sos_noise is not None else None
        )
        self._zi_ecg = (
            np.zeros((c, self._sos_ecg.shape[0], 2)) if self._sos_ecg is not None else None
        )
        self._env = np.zeros((c, self._env_len))
        self._env_count = 0
        n_fam = len(self._families)
        self._tot_samples = 0
        self._tot_valid = np.zeros(c, dtype=np.int64)
        self._tot_sat = np.zeros(c, dtype=np.int64)
        self._tot_eval = np.zeros(c, dtype=np.int64)
        self._tot_flat = np.zeros(c, dtype=np.int64)
        # values: EMG-band power, hum power per family
        self._q_hum = _QuietSums(c, 1 + n_fam)
        # values: periodicity x QRS power, reference power, periodicity
        self._q_ecg = _QuietSums(c, 3)
        s = self.settings
        n_hist = max(s.recent_windows, s.clip_windows, round(s.rest_history_s / s.window_s))
        self._recent: deque[_Window] = deque(maxlen=n_hist)
        # the rest test's keys of the windows in _recent (inf: none yet), one row each in turn:
        # stacking them from the windows every second cost more than the test itself
        self._keys = np.full((n_hist, c), np.inf)
        self._key_at = 0
        self._live: list[dict[str, str]] = [{} for _ in range(c)]  # active issues, for hysteresis
        # live rest averages: decayed sums of [EMG power, hum per family] and of
        # [periodicity x QRS power, reference power, periodicity], with their decayed counts
        self._ema_hum = np.zeros((1 + n_fam, c))
        self._ema_nh = np.zeros(c)
        self._ema_ecg = np.zeros((3, c))
        self._ema_ne = np.zeros(c)
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
            self._buf[:, self._fill : self._fill + take] = arr[pos : pos + take].T
            self._fill += take
            pos += take
            if self._fill == self._n:
                self._fill = 0
                with np.errstate(all="ignore"):
                    self._analyse(self._buf)

    # --- per-block analysis (x is (C, n)) -----------------------------------------------------

    def _hold_fill(self, xr: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Replace invalid samples by the last valid one (causal, no steps for the filters)."""
        c, n = xr.shape
        idx = np.where(valid, np.arange(n), -1)
        np.maximum.accumulate(idx, axis=1, out=idx)
        xf = np.take_along_axis(np.where(valid, xr, 0.0), np.maximum(idx, 0), axis=1)
        lead = idx < 0
        if lead.any():
            fill = self._last.copy()
            unseen = ~np.isfinite(fill)
            if unseen.any():  # nothing valid before this block: back-fill with its first value
                first = np.argmax(valid, axis=1)
                firstval = np.where(valid.any(axis=1), xr[np.arange(c), first], 0.0)
                fill = np.where(unseen, firstval, fill)
            xf = np.where(lead, fill[:, None], xf)
        seen = valid.any(axis=1) | np.isfinite(self._last)
        self._last = np.where(seen, xf[:, -1], np.nan)
        return xf

    def _saturation(self, xr: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Number of clipped samples in this block (NaN in ``xr`` = invalid)."""
        s = self.settings
        if s.saturation_rail_uv is not None:
            rail = s.saturation_rail_margin * s.saturation_rail_uv
            return np.count_nonzero(valid & (np.abs(xr) >= rail), axis=1)
        # Rail unknown: count samples exactly at the largest/smallest value seen so far, once
        # that value has been hit ``saturation_hits`` times (then counting its earlier hits too).
        peaks = np.vstack([np.fmax.reduce(xr, axis=1), np.fmax.reduce(-xr, axis=1)])
        need = (peaks >= self._ext_val).any(axis=0)
        total = np.zeros(xr.shape[0], dtype=np.int64)
        if not need.any():  # usual case: no sample reaches an extreme
            return total
        rows = np.flatnonzero(need)  # only the channels that touch their extremes
        sub = xr[rows]
        signed = (sub, -sub)
        k = s.saturation_hits
        runs = [
            np.fmax(np.fmax.accumulate(v, axis=1), self._ext_val[side, rows][:, None])
            for side, v in enumerate(signed)
        ]
        # A constant channel is at both extremes all the time: that is "flat", not clipping.
        wide = runs[0] + runs[1] >= s.saturation_min_range_uv  # running max - running min
        for side, (v, rm) in enumerate(zip(signed, runs, strict=True)):
            hit = v == rm
            prev_rm = np.hstack([self._ext_val[side, rows][:, None], rm[:, :-1]])
            change = rm != prev_rm  # a new extreme starts a new hit count
            csum = np.cumsum(hit, axis=1)
            base = np.maximum.accumulate(np.where(change, csum - hit, 0), axis=1)
            carried = np.where(
                np.logical_or.accumulate(change, axis=1), 0, self._ext_hits[side, rows][:, None]
            )
            hits = csum - base + carried  # hits of the current extreme value, this one included
            counted = hit & wide & (hits >= k)
            reached = counted & (hits == k)
            total[rows] += np.count_nonzero(counted, axis=1)
            total[rows] += (k - 1) * np.count_nonzero(reached, axis=1)
            self._ext_val[side, rows] = rm[:, -1]
            self._ext_hits[side, rows] = hits[:, -1]
        return total

    def _flat(
        self,
        xf: NDArray[np.float64],
        same_blk: NDArray[np.float64] | None,
        valid: NDArray[np.bool_] | None,
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
        """Flat / lead-off test on short sub-windows, valid samples only.

        Returns (valid samples per sub-window, evaluated, flat), each (C, sub-windows).
        """
        s, starts = self.settings, self._sub_starts
        c = xf.shape[0]
        k = starts.size
        if valid is None and self._sub_equal:
            cnt = np.broadcast_to(self._sub_lens, (c, k))
            var = xf.reshape(c, k, -1).var(axis=2)  # two-pass: no cancellation with DC offset
        else:
            v = np.ones_like(xf) if valid is None else valid.astype(np.float64)
            cnt = np.add.reduceat(v, starts, axis=1)
            xc = xf - xf[:, starts][:, self._seg_id]  # centred per sub-window: no cancellation
            xc *= v
            mean = np.add.reduceat(xc, starts, axis=1) / cnt
            var = np.add.reduceat(xc * xc, starts, axis=1) / cnt - mean * mean
        if valid is None:
            n_pairs = np.broadcast_to(self._sub_lens - 1.0, (c, k))
        else:
            pairs = np.zeros(xf.shape)
            pairs[:, 1:] = valid[:, 1:] & valid[:, :-1]
            pairs *= self._pair_ok
            n_pairs = np.add.reduceat(pairs, starts, axis=1)
        evaluated = cnt >= s.min_valid_fraction * self._sub_lens
        flat = evaluated & (var < s.flat_std_uv**2)
        if same_blk is not None:  # exact repeats (a stuck ADC code with the odd glitch)
            rep = np.add.reduceat(same_blk, starts, axis=1) / n_pairs
            flat |= evaluated & (n_pairs >= 2) & (rep >= s.flat_repeat_fraction)
        return cnt, evaluated, flat

    def _analyse(self, x: NDArray[np.float64]) -> None:
        s, n = self.settings, self._n
        # Two reductions decide the common all-valid case (NaN propagates through max/min).
        all_valid = bool(np.max(x) <= s.max_abs_uv and np.min(x) >= -s.max_abs_uv)
        if all_valid:  # fast path: nothing to mask or fill
            valid = np.ones(x.shape, dtype=bool)
            n_valid = np.full(self.n_channels, n, dtype=np.int64)
            xr = xf = x
            self._last = x[:, -1].copy()
        else:
            valid = np.abs(x) <= s.max_abs_uv  # False for NaN and inf too
            n_valid = np.count_nonzero(valid, axis=1)
            xr = np.where(valid, x, np.nan)
            xf = self._hold_fill(xr, valid)
        mask = None if all_valid else valid

        n_sat = self._saturation(xr, valid)
        same = xr[:, 1:] == xr[:, :-1]  # NaN never equals anything
        same_blk = None
        if same.any():
            same_blk = np.zeros(x.shape)
            same_blk[:, 1:] = same  # column i: sample i equals sample i-1
            same_blk *= self._pair_ok
        cnt, evaluated, flat = self._flat(xf, same_blk, mask)

        # Filters start in steady state at the first value: no start-up transient from a DC offset.
        new = ~self._filt_init & (n_valid > 0)
        if new.any():
            x0 = xf[new, 0][:, None, None]
            if self._zi_noise is not None and self._zi_noise_unit is not None:
                self._zi_noise[new] = self._zi_noise_unit * x0
            if self._zi_ecg is not None and self._zi_ecg_unit is not None:
                self._zi_ecg[new] = self._zi_ecg_unit * x0
            self._filt_init |= new

        # Spectrum of the whole block.
        spec = np.fft.rfft((xf - xf.mean(axis=1, keepdims=True)) * self._win, axis=1)
        power = spec.real**2
        power += spec.imag**2
        bands = (power @ self._bandmat_t).T  # rows: emg, qrs, ecg-ref, hum per family
        p_emg, p_qrs, p_ref, hum = bands[0], bands[1], bands[2], bands[3:]
        spec_ok = (n_valid >= s.min_valid_fraction * n) & (
            p_emg + np.maximum(hum, 0.0).sum(axis=0) > _TINY_MS
        )
        spec_ok = spec_ok & self._has_bands[0]

        # Rest noise floor: 50 ms RMS of the EMG band with the line harmonics notched out.
        if self._sos_noise is not None:
            assert self._zi_noise is not None  # made with the filter
            y = np.array(xf, dtype=np.float64, order="C")  # filtered in place; xf may be the buffer
            sosfilt_rows(self._sos_noise, y, self._zi_noise)
            y *= y
            if mask is not None:
                y *= mask
            noise = np.sqrt(np.add.reduceat(y, self._sub_starts, axis=1) / cnt) * self._noise_gain
            noise = np.where(evaluated & ~flat, noise, np.nan)
        else:
            noise = np.full(cnt.shape, np.nan)

        # ECG: QRS-band envelope history -> heart-rate periodicity.
        score = np.full(self.n_channels, np.nan)
        if self._ecg_on:
            assert self._sos_ecg is not None and self._zi_ecg is not None  # (ECG on: made)
            xd = np.add.reduceat(xf, self._dec_starts, axis=1) / self._dec_lens
            z = np.ascontiguousarray(xd)  # a new array: filtered in place
            sosfilt_rows(self._sos_ecg, z, self._zi_ecg)
            z *= z
            env = np.sqrt(np.add.reduceat(z, self._env_starts, axis=1) / self._env_lens)
            k = env.shape[1]
            self._env[:, :-k] = self._env[:, k:].copy()
            self._env[:, -k:] = env
            self._env_count = min(self._env_count + k, self._env_len)
            if self._env_count >= self._env_min:
                score = _periodicity(self._env[:, -self._env_count :], self._lag_lo, self._lag_hi)
        ecg_ok = spec_ok & self._has_bands[1] & self._has_bands[2] & (p_ref > _TINY_MS)
        ecg_ok &= np.isfinite(score)
        score = np.where(ecg_ok, score, np.nan)
        ecg_num = np.where(ecg_ok, score * p_qrs, 0.0)

        w = _Window(
            n_valid=n_valid,
            n_sat=np.asarray(n_sat, dtype=np.int64),
            n_eval=np.count_nonzero(evaluated, axis=1),
            n_flat=np.count_nonzero(flat, axis=1),
            spec_ok=spec_ok,
            p_emg=p_emg,
            hum=hum,
            ecg_ok=ecg_ok,
            ecg_num=ecg_num,
            p_ref=p_ref,
            ecg_score=score,
            noise=noise,
        )
        self._recent.append(w)
        np.copyto(self._keys[self._key_at], np.where(w.spec_ok, w.p_emg, np.inf))
        self._key_at = (self._key_at + 1) % self._keys.shape[0]
        self._tot_samples += n
        self._tot_valid += w.n_valid
        self._tot_sat += w.n_sat
        self._tot_eval += w.n_eval
        self._tot_flat += w.n_flat
        self._rest_update(w)
        self._q_hum.add(p_emg, spec_ok, np.vstack([p_emg[None], hum]))
        self._q_ecg.add(p_emg, ecg_ok, np.vstack([ecg_num, p_ref, np.nan_to_num(score)]))
        self._h_noise.add(np.log10(np.maximum(noise, 1e-3)))  # 0 would be lost as -inf

    def _rest_update(self, w: _Window) -> None:
        """Feed this block into the live rest averages if it is rest (see module docstring)."""
        rest = w.spec_ok & (w.p_emg <= _REST_SPAN * self._keys.min(axis=0))
        if not rest.any():
            return
        a = math.exp(-1.0 / self.settings.rest_tau_blocks)
        with np.errstate(all="ignore"):
            mean_p = self._ema_hum[0] / self._ema_nh
        # Much quieter than the average so far: what was averaged was not rest (the monitor
        # started mid-rep, or the skin was just re-prepared). Start again from this block.
        fresh = rest & (self._ema_nh > 0) & (w.p_emg * _REST_SPAN < mean_p)
        for sums, counts in ((self._ema_hum, self._ema_nh), (self._ema_ecg, self._ema_ne)):
            sums[:, fresh] = 0.0
            counts[fresh] = 0.0
        vals = np.vstack([w.p_emg[None], w.hum])
        self._ema_hum[:, rest] = a * self._ema_hum[:, rest] + vals[:, rest]
        self._ema_nh[rest] = a * self._ema_nh[rest] + 1.0
        ecg = rest & w.ecg_ok
        vals = np.vstack([w.ecg_num, w.p_ref, np.nan_to_num(w.ecg_score)])
        self._ema_ecg[:, ecg] = a * self._ema_ecg[:, ecg] + vals[:, ecg]
        self._ema_ne[ecg] = a * self._ema_ne[ecg] + 1.0

    # --- summaries ----------------------------------------------------------------------------

    def report(self) -> list[ChannelQuality]:
        """Quality over every complete block seen since construction/reset.

        Hum and ECG over the quietest ``rest_fraction`` of the blocks, the noise floor as a low
        percentile of all 50 ms RMS values, clipping and flat line over everything.
        """
        s = self.settings
        q = s.noise_percentile / 100.0
        n_hum, hum_sums = self._q_hum.quietest(s.rest_fraction, _MIN_REST)
        n_ecg, ecg_sums = self._q_ecg.quietest(s.rest_fraction, _MIN_REST)
        return self._summarise(
            n_samples=self._tot_samples,
            n_valid=self._tot_valid,
            n_sat=self._tot_sat,
            n_eval=self._tot_eval,
            n_flat=self._tot_flat,
            n_hum=n_hum,
            hum_sums=hum_sums,
            n_ecg=n_ecg,
            ecg_sums=ecg_sums,
            noise=10.0 ** self._h_noise.quantile(q),
        )

    def recent(self) -> list[ChannelQuality]:
        """Quality of the last seconds, for a live traffic light (issues held with hysteresis).

        Noise over the last ``rest_history_s``, hum and ECG averaged over the recent rest blocks,
        clipping over the last ``clip_windows`` blocks, flat line over the last
        ``recent_windows``. Noise and hum use the last ``rest_history_s`` seconds.
        """
        s = self.settings
        ws = list(self._recent)
        c = self.n_channels
        n_fam = len(self._families)
        if not ws:
            z = np.zeros(c, dtype=np.int64)
            return self._summarise(
                n_samples=0,
                n_valid=z,
                n_sat=z,
                n_eval=z,
                n_flat=z,
                n_hum=np.zeros(c),
                hum_sums=np.zeros((1 + n_fam, c)),
                n_ecg=np.zeros(c),
                ecg_sums=np.zeros((3, c)),
                noise=np.full(c, np.nan),
                live=self._live,
            )
        q = s.noise_percentile / 100.0
        counts = ws[-s.recent_windows :]
        clips = ws[-s.clip_windows :]
        return self._summarise(
            n_samples=self._n * len(counts),
            n_valid=np.sum([w.n_valid for w in counts], axis=0),
            n_valid_sat=np.sum([w.n_valid for w in clips], axis=0),
            n_sat=np.sum([w.n_sat for w in clips], axis=0),
            n_eval=np.sum([w.n_eval for w in counts], axis=0),
            n_flat=np.sum([w.n_flat for w in counts], axis=0),
            n_hum=self._ema_nh,
            hum_sums=self._ema_hum,
            n_ecg=self._ema_ne,
            ecg_sums=self._ema_ecg,
            noise=_row_quantile(np.hstack([w.noise for w in ws]), q),
            live=self._live,
        )

    def _summarise(
        self,
        *,
        n_samples: int,
        n_valid: NDArray[np.int64],
        n_sat: NDArray[np.int64],
        n_eval: NDArray[np.int64],
        n_flat: NDArray[np.int64],
        n_hum: NDArray[np.float64],
        hum_sums: NDArray[np.float64],
        n_ecg: NDArray[np.float64],
        ecg_sums: NDArray[np.float64],
        noise: NDArray[np.float64],
        live: list[dict[str, str]] | None = None,
        n_valid_sat: NDArray[np.int64] | None = None,
    ) -> list[ChannelQuality]:
        if n_valid_sat is None:
            n_valid_sat = n_valid
        p_rest = hum_sums[0]
        with np.errstate(all="ignore"):
            # hum far below the rest floor cannot be resolved from a few seconds and does not
            # matter: clamp it, so that estimation noise around "none" is not a -60..-20 dB jitter
            hum_db = np.maximum(_db(hum_sums[1:], p_rest), HUM_FLOOR_DB)
            hum_db = np.where((n_hum > 0) & self._has_hum[:, None], hum_db, np.nan)
            hum_rms = np.sqrt(np.maximum(hum_sums[1:], 0.0) / np.maximum(n_hum, 1))
            ecg_db = np.where(n_ecg > 0, _db(ecg_sums[0], ecg_sums[1]), np.nan)
            score = np.where(n_ecg > 0, ecg_sums[2] / np.maximum(n_ecg, 1), np.nan)
        out = []
        for c in range(self.n_channels):
            hums = hum_db[:, c]
            if np.isfinite(hums).any():
                f = int(np.nanargmax(hums))
                hum_c, hum_f, hum_u = float(hums[f]), self._families[f], float(hum_rms[f, c])
            else:
                hum_c, hum_f, hum_u = math.nan, self._families[0], math.nan
            nv = int(n_valid[c])
            metrics = {
                "hum_db": hum_c,
                "saturation_fraction": (
                    min(1.0, n_sat[c] / n_valid_sat[c]) if n_valid_sat[c] else math.nan
                ),
                "flat_fraction": n_flat[c] / n_eval[c] if n_eval[c] else math.nan,
                "ecg_db": float(ecg_db[c]),
                "noise_rms_uv": float(noise[c]),
            }
            prev = live[c] if live is not None else None
            issues = _issues(self.settings, nv, metrics, float(score[c]), hum_u, prev)
            if live is not None:
                live[c] = dict(issues)
            status = QualityStatus.OK
            if issues:
                bad = any(sev == "bad" for _, sev in issues)
                status = QualityStatus.BAD if bad else QualityStatus.WARN
            out.append(
                ChannelQuality(
                    **{k: float(v) for k, v in metrics.items()},
                    status=status,
                    issues=tuple(code for code, _ in issues),
                    advice=tuple(_advice(code, sev, metrics, hum_f, hum_u) for code, sev in issues),
                    hum_freq=float(hum_f),
                    hum_rms_uv=hum_u,
                    ecg_periodicity=float(score[c]),
                    missing_fraction=1.0 - nv / n_samples if n_samples else 0.0,
                    seconds=n_samples / self.fs,
                )
            )
        return out


def _issues(
    s: QualitySettings,
    n_valid: int,
    m: dict[str, float],
    periodicity: float,
    hum_uv: float,
    prev: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """(code, severity) pairs in ISSUE_CODES order. NaN metrics never raise an issue.

    ``prev`` (code -> severity active until now) adds hysteresis: an active level is kept
    until the figure is back inside its limit by the release margin.
    """
    if n_valid == 0:
        return [("no_data", "warn")]
    prev = prev or {}
    found: dict[str, str] = {}

    def lowered(code: str, level: str, limit: float, kind: str) -> float:
        held = prev.get(code) == level or (level == "warn" and prev.get(code) == "bad")
        if not held:
            return limit
        if kind == "db":
            return limit - s.release_db
        return limit * (s.release_fraction if kind == "fraction" else s.release_factor)

    def check(code: str, value: float, warn: float, bad: float | None, kind: str) -> None:
        if bad is not None and value > lowered(code, "bad", bad, kind):
            found[code] = "bad"
        elif value > lowered(code, "warn", warn, kind):
            found[code] = "warn"

    check("flat", m["flat_fraction"], s.flat_warn, s.flat_bad, "fraction")
    check("saturation", m["saturation_fraction"], s.saturation_warn, s.saturation_bad, "fraction")
    hum_floor = s.hum_min_uv * (s.release_factor if "hum" in prev else 1.0)
    if hum_uv >= hum_floor:
        check("hum", m["hum_db"], s.hum_warn_db, s.hum_bad_db, "db")
    check("noisy", m["noise_rms_uv"], s.noise_warn_uv, s.noise_bad_uv, "uv")
    if periodicity >= s.ecg_min_periodicity * (s.release_factor if "ecg" in prev else 1.0):
        check("ecg", m["ecg_db"], s.ecg_warn_db, None, "db")
    return [(code, found[code]) for code in ISSUE_CODES if code in found]


def _advice(code: str, severity: str, m: dict[str, float], hum_freq: float, hum_uv: float) -> str:
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
            f"{level} {hum_freq:g} Hz hum ({hum_uv:.1f} µV RMS, {m['hum_db']:+.0f} dB over "
            "the rest noise floor): check the reference/ground "
            "electrode contact and route cables away from mains leads and power supplies"
        )
    if code == "noisy":
        return (
            f"high rest noise floor ({m['noise_rms_uv']:.1f} µV RMS, good skin preparation gives "
            "under 5 µV): re-prepare the skin "
            "(shave, abrade, clean with alcohol), replace dried electrodes, keep the cable "
            "still and the subject relaxed during the check"
        )
    if code == "ecg":
        return (
            f"heartbeat (ECG) stands out of the rest signal ({m['ecg_db']:+.0f} dB): place the "
            "electrode pair along the muscle fibres and further from the heart, or enable "
            "ECG removal / a 30 Hz high-pass"
        )
    return code
