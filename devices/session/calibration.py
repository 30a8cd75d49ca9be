"""Calibration of a session: checking what was recorded, what a stored calibration holds,
when it may be reused, and taking it off again.

The wizard that records one is the window's (app/calibration.py); it only shows what is
decided here. A calibration sets the onset detector's baseline, so a bad one (a "rest" with
bursts in it, a moving athlete, clipped channels) silently ruins every verdict after it: the
checks below reject such a recording with its reason, before anything is stored.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from devices.session.live import LiveSession
from dsp.baseline import BaselineEstimate
from dsp.contract import StreamInfo
from dsp.filters import design_bandpass, sosfilt, sosfilt_zi
from dsp.settings import STATISTIC_FIELDS, DspSettings

Array = NDArray[np.float64]

CALIBRATION_VERSION = 1
#: DSP settings the stored baseline depends on: reuse it only if these are unchanged.
BASELINE_KEYS = STATISTIC_FIELDS

# -- rest checks ---------------------------------------------------------------------------
#: Rest level (filtered signal, uV RMS) above which the window is refused. A relaxed muscle
#: under well-prepared skin gives a few uV RMS (Konrad, "The ABC of EMG", 2005: baseline
#: noise should stay below 3-5 uV); the signal check warns at 10 uV (low-level glute onsets
#: drown) and calls 50 uV as large as a light contraction. 25 uV, between the two, is a muscle
#: that is not relaxed or an electrode with poor contact: an onset baseline from it hides
#: every onset weaker than a real rep.
HIGH_REST_NOISE_UV = 25.0
#: Activity: the RMS of a 250 ms window (the shortest voluntary burst worth a rep) more than
#: this many times the window's quiet level (its 10th percentile of 250 ms RMS values). For
#: noise at rest the 250 ms RMS varies by about 1/sqrt(B T) ~ 10 % (B = 430 Hz band), so
#: mean + 3 SD (the Hodges & Bui 1996 onset rule) is 1.3x; ECG residue on lumbar channels
#: raises a window that holds a QRS complex to about 1.5x (simulated strong ECG: see the
#: tests). Twice the quiet level (+6 dB) is a contraction -- any burst strong enough for the
#: detector to call an onset against this baseline.
ACTIVITY_WINDOW_S = 0.25
ACTIVITY_RATIO = 2.0
QUIET_PERCENTILE = 10.0
#: Movement: the 1-10 Hz band of the raw signal, where movement and cable sway sit and EMG
#: does not (De Luca et al. 2010, J Biomech 43:1573: motion artefact energy is mostly below
#: 10-20 Hz), peaking above 100 uV -- the same floor as the live artefact scanner (smaller
#: deflections leak too little above 20 Hz to matter) -- and above 5x the EMG amplitude.
MOTION_BAND_HZ = (1.0, 10.0)
MOTION_MIN_UV = 100.0
MOTION_K_EMG = 5.0
#: Clipping: the very same extreme value hit this often (a clean signal reaches each new
#: extreme once; a clipping front end sits on its rail), on a channel spanning at least
#: 100 uV (a constant channel is flat, not clipped) -- as the signal check judges it.
CLIP_HITS = 3
CLIP_MIN_RANGE_UV = 100.0
#: Below this SD (uV) nothing is connected: no amplifier is that quiet.
FLAT_SD_UV = 0.1

# -- reference contraction -----------------------------------------------------------------
#: The reference contraction must clear the rest level by 20 dB (x10 in amplitude) for an
#: MVC. An MVC of a superficial muscle gives hundreds of uV to mV RMS over a rest floor of a
#: few uV: 30-50 dB. Below 20 dB the "100 %" of the traces sits within a few noise SDs of
#: rest: no contraction, a loose electrode or the wrong muscle. A sub-maximal reference (a
#: fixed test position, 25-50 % MVC) is 6-12 dB below the MVC (surface EMG amplitude grows
#: about linearly with force in this range: Lawrence & De Luca 1983), so it must clear 12 dB
#: (x4): still far above the onset threshold, which sits a few rest SDs over the mean.
MIN_REFERENCE_SNR_DB = 20.0
MIN_SUBMAX_SNR_DB = 12.0


def min_reference_snr_db(kind: str) -> float:
    """The margin a reference of ``kind`` ("mvc" | "submax") must clear over rest, dB."""
    return MIN_REFERENCE_SNR_DB if kind == "mvc" else MIN_SUBMAX_SNR_DB


# -- reuse -----------------------------------------------------------------------------------
#: A stored calibration older than this is offered, not applied: surface electrodes are not
#: worn overnight, so after a day they have been re-applied -- another placement, skin
#: preparation and impedance, which change rest noise and amplitudes by tens of percent.
MAX_AGE = datetime.timedelta(hours=24)


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class RestCheck:
    """What the rest window of one channel showed, and why it is refused (if it is)."""

    channel: int
    rms_uv: float  # filtered signal, whole window
    quiet_uv: float  # 10th percentile of its 250 ms RMS values
    peak_ratio: float  # loudest 250 ms RMS over the quiet level
    motion_uv: float  # peak of the 1-10 Hz band of the raw signal
    clipped_fraction: float
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> Verdict:
        return Verdict.FAIL if self.reasons else Verdict.PASS


@dataclass(frozen=True)
class ReferenceCheck:
    channel: int
    peak_uv: float
    rest_uv: float
    snr_db: float
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> Verdict:
        return Verdict.FAIL if self.reasons else Verdict.PASS


def _window_rms(x: Array, w: int) -> Array:
    """RMS of consecutive windows of ``w`` samples, hopped by ``w // 5`` (rows = windows)."""
    n = x.shape[0]
    if n < w:
        return np.sqrt(np.nanmean(x**2, axis=0, keepdims=True))
    c = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), np.nan_to_num(x) ** 2]), axis=0)
    starts = np.arange(0, n - w + 1, max(1, w // 5))
    return np.sqrt(np.maximum((c[starts + w] - c[starts]) / w, 0.0))


def _zero_phase(sos: Array, x: Array) -> Array:
    """Forward-backward filtering of a finished window (columns), edges started settled."""
    zi = sosfilt_zi(sos)
    rows = np.ascontiguousarray(x.T)
    fwd = np.empty_like(rows)
    for i, r in enumerate(rows):
        fwd[i], _ = sosfilt(sos, r, zi=zi * r[0])
        back, _ = sosfilt(sos, fwd[i][::-1], zi=zi * fwd[i][-1])
        fwd[i] = back[::-1]
    return fwd.T


def check_rest(raw: Array, filtered: Array, fs: float, channels: list[int]) -> list[RestCheck]:
    """Judge a rest window: raw and pipeline-filtered samples (rows = samples, uV) of the
    same stretch. One :class:`RestCheck` per channel in ``channels``."""
    raw = np.asarray(raw, dtype=np.float64)
    filtered = np.asarray(filtered, dtype=np.float64)
    w = max(1, round(ACTIVITY_WINDOW_S * fs))
    with np.errstate(all="ignore"):
        rms = np.sqrt(np.nanmean(filtered**2, axis=0))
        win = _window_rms(filtered, w)
        quiet = np.percentile(win, QUIET_PERCENTILE, axis=0)
        loud = win.max(axis=0)
    clean = np.where(np.isfinite(raw), raw, np.nanmedian(raw, axis=0))
    clean = np.nan_to_num(clean - np.median(clean, axis=0))
    low = min(MOTION_BAND_HZ[1], 0.45 * fs)
    motion = np.abs(_zero_phase(design_bandpass(fs, MOTION_BAND_HZ[0], low, 2), clean))
    out = []
    for ch in channels:
        reasons: list[str] = []
        col = raw[:, ch]
        finite = col[np.isfinite(col)]
        clipped = 0.0
        if finite.size == 0 or not math.isfinite(float(rms[ch])):
            reasons.append("no data")
        elif float(np.std(finite)) < FLAT_SD_UV:
            reasons.append("flat signal: electrode or cable not connected")
        else:
            hi, lo = float(finite.max()), float(finite.min())
            if hi - lo >= CLIP_MIN_RANGE_UV:
                hits = [int(np.count_nonzero(finite == v)) for v in (hi, lo)]
                pinned = sum(h for h in hits if h >= CLIP_HITS)
                clipped = pinned / finite.size
                if pinned:
                    reasons.append(
                        f"clipping: {100 * clipped:.1f} % of samples at the amplifier's limit"
                    )
        q, r = float(quiet[ch]), float(rms[ch])
        ratio = float(loud[ch]) / q if q > 0 else math.inf
        m = float(motion[:, ch].max()) if motion.shape[0] else 0.0
        if not reasons or reasons[0].startswith("clipping"):
            if q > 0 and ratio > ACTIVITY_RATIO:
                reasons.append(
                    f"muscle activity: bursts reach {ratio:.1f}x the quiet level"
                    f" ({float(loud[ch]):.0f} vs {q:.1f} µV)"
                )
            if r > HIGH_REST_NOISE_UV:
                reasons.append(
                    f"rest level {r:.1f} µV is high (over {HIGH_REST_NOISE_UV:g} µV):"
                    " not relaxed, or poor electrode contact"
                )
            emg_amp = math.sqrt(2.0) * r  # amplitude of the EMG-band signal at this RMS
            if m > MOTION_MIN_UV and m > MOTION_K_EMG * emg_amp:
                reasons.append(f"movement: a {m:.0f} µV low-frequency deflection")
        out.append(RestCheck(ch, r, q, ratio, m, clipped, tuple(reasons)))
    return out


def snr_db(peak_uv: float, rest_uv: float) -> float:
    if not (peak_uv > 0 and rest_uv > 0):
        return math.nan
    return 20.0 * math.log10(peak_uv / rest_uv)


def check_reference(
    peaks: dict[int, float], rest_uv: dict[int, float], kind: str = "mvc"
) -> list[ReferenceCheck]:
    """Judge a reference contraction: its peak 250 ms RMS per channel against the channel's
    rest RMS (both uV). It must clear rest by :func:`min_reference_snr_db` of ``kind``."""
    need = min_reference_snr_db(kind)
    out = []
    for ch, peak in peaks.items():
        rest = rest_uv.get(ch, math.nan)
        snr = snr_db(peak, rest)
        reasons: tuple[str, ...] = ()
        if not math.isfinite(snr):
            reasons = ("no rest level to compare with: record the rest first",)
        elif snr < need:
            reasons = (
                f"SNR {snr:.0f} dB is below {need:g} dB: barely above rest"
                " -- contract harder, or check the electrode",
            )
        out.append(ReferenceCheck(ch, peak, rest, snr, reasons))
    return out


# -- reuse -----------------------------------------------------------------------------------
def setup_of(info: StreamInfo) -> dict[str, Any]:
    """The channel setup a calibration belongs to: the source and which channel is which
    muscle. Stored with it, compared when it is reused."""
    names = info.channel_names
    return {
        "source": info.source,
        "channel_names": list(names),
        "roles": {role.value: names[ch] for role, ch in sorted(info.roles.items())},
    }


def created_at(cal: dict[str, Any]) -> datetime.datetime | None:
    try:
        when = datetime.datetime.fromisoformat(str(cal.get("created")))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)


def reuse_concerns(
    cal: dict[str, Any],
    info: StreamInfo,
    now: datetime.datetime | None = None,
    *,
    recorded: tuple[str, datetime.datetime | None] | None = None,
) -> list[str]:
    """Why a stored calibration should be offered rather than applied: it was made on another
    source or channel-to-muscle mapping, or more than :data:`MAX_AGE` ago. Empty: apply it.
    ``recorded``: a replayed recording's own source and start (its sidecar), which the
    calibration is compared with instead of the file source; one made after the recording
    began is no calibration the recording's session had."""
    concerns = []
    here = setup_of(info)
    source = here["source"] if recorded is None or not recorded[0] else recorded[0]
    if cal.get("source") != source:
        concerns.append(f"it was made on another source ({cal.get('source') or 'unknown'})")
    made = created_at(cal)
    began = None if recorded is None else recorded[1]
    if made is not None and began is not None and made > began:
        local = began.astimezone()
        concerns.append(f"it was made after this recording began ({local:%d %b %H:%M})")
    if dict(cal.get("roles") or {}) != here["roles"]:
        concerns.append("the channel-to-muscle mapping differs")
    when = created_at(cal)
    now = now or datetime.datetime.now(datetime.UTC)
    if when is None:
        concerns.append("its date is unknown")
    elif now - when > MAX_AGE:
        hours = (now - when).total_seconds() / 3600
        age = f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:.0f} h"
        concerns.append(f"it is {age} old: the electrodes have been re-applied since")
    return concerns


def clear_calibration(session: LiveSession) -> None:
    """Take a calibration off ``session``: the detector goes back to its adaptive baseline,
    the traces to scaling by the recent signal."""
    session.set_baseline(None)

    def clear_reference(s: LiveSession) -> None:
        s.reference = None

    session.post(clear_reference)


def _stored_baseline(cal: dict[str, Any], n_channels: int) -> BaselineEstimate | None:
    """The rest baseline ``cal`` holds for ``n_channels`` channels, or None if unreadable."""
    rest = cal.get("rest")
    base = rest.get("baseline") if isinstance(rest, dict) else None
    if not isinstance(base, dict):
        return None
    try:
        mean = np.array([np.nan if v is None else float(v) for v in base["mean"]])
        sd = np.array([np.nan if v is None else float(v) for v in base["sd"]])
    except (KeyError, TypeError, ValueError):
        return None
    if mean.shape != (n_channels,) or sd.shape != (n_channels,):
        return None
    return BaselineEstimate(mean, sd)


def misfit(cal: dict[str, Any], info: StreamInfo, settings: DspSettings) -> tuple[str, str] | None:
    """Why ``cal`` cannot be put on a session of ``info`` under ``settings``, as (a few words
    for a status line, the whole reason); None when it can. One set of tests for the window,
    which asks before it offers a calibration (a newcomer answered Use and got "not used" in a
    clipped line), and for :func:`apply_calibration`, which asks before it changes anything.

    The rest baseline is in units of the detection statistic, so it is reused only when the
    channels, sampling rate and the DSP settings it depends on are unchanged."""
    if list(cal.get("channel_names") or []) != list(info.channel_names):
        return "other channels", "the channels differ from the calibrated ones"
    if cal.get("fs") != info.fs:
        return "other sampling rate", f"the sampling rate differs ({cal.get('fs')} Hz then)"
    dsp = cal.get("dsp") or {}
    changed = [k for k in BASELINE_KEYS if dsp.get(k) != getattr(settings, k)]
    if changed:
        return "settings changed since", (
            f"filter/detector settings changed since it was made ({', '.join(changed)}); "
            "calibrate again (Ctrl+K)"
        )
    rest = cal.get("rest")
    if not isinstance(rest, dict) or not isinstance(rest.get("baseline"), dict):
        return "no rest baseline", "the calibration has no rest baseline"
    if _stored_baseline(cal, info.n_channels) is None:
        return "unreadable", "the stored rest baseline is unreadable or has other channels"
    return None


def apply_calibration(session: LiveSession, cal: dict[str, Any]) -> str | None:
    """Put a stored calibration on ``session``; the reason if it does not fit (see
    :func:`misfit`), else None."""
    info = session.info
    if info is None:
        return "the session is not open"
    wrong = misfit(cal, info, session.settings)
    baseline = _stored_baseline(cal, info.n_channels)
    if wrong is not None or baseline is None:
        return wrong[1] if wrong is not None else "the stored rest baseline is unreadable"
    session.set_baseline(baseline)
    ref = cal.get("reference")
    if isinstance(ref, dict) and isinstance(ref.get("peak_rms_uv"), dict):
        reference = np.full(info.n_channels, np.nan)
        for name, uv in ref["peak_rms_uv"].items():
            if name in info.channel_names and isinstance(uv, int | float):
                reference[info.channel_names.index(name)] = float(uv)

        def set_reference(s: LiveSession) -> None:
            s.reference = reference

        session.post(set_reference)
    return None
