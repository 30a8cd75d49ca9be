"""Calibration of a session: what a stored calibration holds and when it may be reused.

The wizard that records one is the window's (app/calibration.py); applying one, checking that
it fits the stream and the settings, is the session's business and lives here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devices.session.live import LiveSession
from dsp.baseline import BaselineEstimate
from dsp.settings import STATISTIC_FIELDS

CALIBRATION_VERSION = 1
#: DSP settings the stored baseline depends on: reuse it only if these are unchanged.
BASELINE_KEYS = STATISTIC_FIELDS
#: rest noise above this (uV RMS, filtered) is unusual for a relaxed muscle with good contact
HIGH_REST_NOISE_UV = 25.0
#: a reference peak below this multiple of the rest noise is hardly a contraction
WEAK_REFERENCE_RATIO = 3.0


def apply_calibration(session: LiveSession, cal: dict[str, Any]) -> str | None:
    """Put a stored calibration on ``session``; the reason if it does not fit, else None.

    The rest baseline is in units of the detection statistic, so it is reused only when the
    channels, sampling rate and the DSP settings it depends on are unchanged.
    """
    info = session.info
    if info is None:
        return "the session is not open"
    if list(cal.get("channel_names", [])) != list(info.channel_names):
        return "the channels differ from the calibrated ones"
    if cal.get("fs") != info.fs:
        return "the sampling rate differs"
    dsp = cal.get("dsp") or {}
    changed = [k for k in BASELINE_KEYS if dsp.get(k) != getattr(session.settings, k)]
    if changed:
        return f"filter/detector settings changed since ({', '.join(changed)})"
    rest = cal.get("rest")
    if not isinstance(rest, dict) or not isinstance(rest.get("baseline"), dict):
        return "the calibration has no rest baseline"
    try:
        base = rest["baseline"]
        mean = np.array([np.nan if v is None else float(v) for v in base["mean"]])
        sd = np.array([np.nan if v is None else float(v) for v in base["sd"]])
    except (KeyError, TypeError, ValueError):
        return "the stored rest baseline is unreadable"
    if mean.shape != (info.n_channels,) or sd.shape != (info.n_channels,):
        return "the stored rest baseline has the wrong number of channels"
    session.set_baseline(BaselineEstimate(mean, sd))
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
