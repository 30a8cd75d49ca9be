"""Peer onset detectors, run per channel on the same samples as fireorder.

Both peers are *offline and non-causal*: they filter forwards and backwards (``filtfilt``) and
NeuroKit2's default threshold is a statistic of the whole recording. fireorder is causal and
decides within tens of milliseconds; the comparison favours the peers in that respect.

* **NeuroKit2** ``emg_process`` = ``emg_clean`` (4th-order 100 Hz Butterworth high-pass,
  zero-phase) -> ``emg_amplitude`` (TKEO, then a 10-400 Hz band-pass, rectification and an
  8 Hz low-pass, all zero-phase; note ``emg_amplitude`` has no sampling-rate argument and
  designs these filters for 1000 Hz whatever the true rate) -> ``emg_activation``. Onsets =
  ``info["EMG_Onsets"]``. Two activation methods: ``threshold`` (what ``emg_process`` uses by
  default: one tenth of the SD of the whole amplitude signal) and ``mixture`` (a Gaussian
  mixture, probability >= 0.33); both with the default 50 ms minimum duration.
  ``emg_activation`` ends with a per-sample pandas loop that only formats its DataFrame output
  (about 25 us per sample). The accuracy benchmark calls the same NeuroKit2 functions
  ``emg_activation`` calls (``_emg_activation_threshold``/``_mixture`` and
  ``_emg_activation_activations``) to skip that loop, and checks on one channel per run that
  the onsets equal ``emg_process``'s. The speed benchmark times the public ``emg_process``.
* **BioSPPy** ``hodges_bui_onset_detector`` on the signal high-passed the way BioSPPy's own
  ``emg.emg`` does (4th-order 100 Hz Butterworth, zero-phase), window 50 ms, threshold 3
  (Hodges & Bui 1996 compared 20/50/100 ms and 1/2/3 SD). Rest = the rest segment before the
  first true onset (from the truth: 0.1 s to 50 ms before it), passed as ``[start, stop]``
  indices. BioSPPy computes the rest *mean* of the zero-mean raw rest samples (~0) and their SD,
  so the test is "moving average of |x| >= 3 SD of the rest signal". It returns every
  threshold crossing, upward *and* downward; we keep the upward ones as onsets.

BioSPPy 2.2.4 imports ``peakutils`` (in ``biosppy.signals.ecg``) without declaring it; if it
is missing, an empty stand-in module is registered so that ``biosppy.signals.emg`` imports
(the EMG functions never call it).
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Array = NDArray[np.float64]
HB_WINDOW_S = 0.05
HB_THRESHOLD = 3.0
NK_MIN_DURATION_S = 0.05
_STATE = {"peakutils_stub": False}


def biosppy_emg() -> Any:
    """``biosppy.signals.emg`` (with a ``peakutils`` stand-in if that is not installed)."""
    try:
        return importlib.import_module("biosppy.signals.emg")
    except ModuleNotFoundError as exc:
        if exc.name != "peakutils":
            raise
    log.warning("biosppy needs 'peakutils' (undeclared dependency); using an empty stand-in")
    sys.modules["peakutils"] = types.ModuleType("peakutils")
    _STATE["peakutils_stub"] = True
    for name in [m for m in sys.modules if m == "biosppy" or m.startswith("biosppy.")]:
        del sys.modules[name]
    return importlib.import_module("biosppy.signals.emg")


def peakutils_stubbed() -> bool:
    return _STATE["peakutils_stub"]


def available() -> dict[str, str | None]:
    """Which peers import here: name -> None if fine, else the reason."""
    out: dict[str, str | None] = {}
    try:
        importlib.import_module("neurokit2")
        out["neurokit2"] = None
    except Exception as exc:  # any import failure disables the peer, with its reason
        out["neurokit2"] = f"{type(exc).__name__}: {exc}"
    try:
        biosppy_emg()
        out["biosppy"] = None
    except Exception as exc:
        out["biosppy"] = f"{type(exc).__name__}: {exc}"
    return out


# --------------------------------------------------------------------------------------
# NeuroKit2
# --------------------------------------------------------------------------------------


def _nk() -> Any:
    return importlib.import_module("neurokit2")


def nk_amplitude(x: Array, fs: float) -> tuple[Array, Array]:
    nk = _nk()
    cleaned = np.asarray(nk.emg_clean(x, sampling_rate=fs), dtype=float)
    return cleaned, np.asarray(nk.emg_amplitude(cleaned), dtype=float)


def nk_onsets_fast(x: Array, fs: float, method: str = "threshold") -> NDArray[np.int64]:
    """NeuroKit2's ``emg_process`` onsets without its output-formatting loop."""
    act = importlib.import_module("neurokit2.emg.emg_activation")
    _, amplitude = nk_amplitude(x, fs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if method == "threshold":
                activity = act._emg_activation_threshold(amplitude, threshold="default")
            elif method == "mixture":
                activity = act._emg_activation_mixture(amplitude, threshold="default")
            else:
                raise ValueError(f"unknown NeuroKit2 method {method!r}")
        except ValueError as exc:
            if "threshold specified exceeds" in str(exc):
                return np.empty(0, dtype=np.int64)
            raise
        info = act._emg_activation_activations(activity, duration_min=int(NK_MIN_DURATION_S * fs))
    return np.asarray(info["EMG_Onsets"], dtype=np.int64)


def nk_onsets_public(x: Array, fs: float, method: str = "threshold") -> NDArray[np.int64]:
    """``nk.emg_process(x, sampling_rate=fs, method_activation=method)`` onsets (slow)."""
    nk = _nk()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, info = nk.emg_process(x, sampling_rate=fs, method_activation=method)
        except ValueError as exc:
            if "threshold specified exceeds" in str(exc):
                return np.empty(0, dtype=np.int64)
            raise
    return np.asarray(info["EMG_Onsets"], dtype=np.int64)


# --------------------------------------------------------------------------------------
# BioSPPy
# --------------------------------------------------------------------------------------


def biosppy_filter(x: Array, fs: float) -> Array:
    biosppy_emg()
    st = importlib.import_module("biosppy.signals.tools")
    filtered, _, _ = st.filter_signal(
        signal=x, ftype="butter", band="highpass", order=4, frequency=100, sampling_rate=fs
    )
    return np.asarray(filtered, dtype=float)


def biosppy_hb_onsets(
    x: Array,
    fs: float,
    rest: tuple[int, int],
    window_s: float = HB_WINDOW_S,
    threshold: float = HB_THRESHOLD,
) -> NDArray[np.int64]:
    """BioSPPy's Hodges-Bui detector; upward threshold crossings only (see module doc)."""
    emg = biosppy_emg()
    filtered = biosppy_filter(x, fs)
    size = max(1, round(window_s * fs))
    a, b = rest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crossings, tf = emg.hodges_bui_onset_detector(
            signal=filtered, rest=[int(a), int(b)], sampling_rate=fs, size=size, threshold=threshold
        )
    tf = np.asarray(tf, dtype=float)
    up = np.flatnonzero((tf[:-1] < threshold) & (tf[1:] >= threshold)) + size // 2
    up = up[up < len(x)]
    # sanity: the upward crossings are a subset of what BioSPPy returned
    extra = np.setdiff1d(up, np.asarray(crossings, dtype=np.int64))
    if extra.size:
        log.debug("biosppy: %d upward crossings not in its output", extra.size)
    return up.astype(np.int64)


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A per-channel detector: ``detect(x, fs, rest)`` -> onset row indices."""

    name: str
    package: str
    detect: Callable[[Array, float, tuple[int, int]], NDArray[np.int64]]
    description: str


PEERS: tuple[Peer, ...] = (
    Peer(
        "neurokit2 (threshold, default)",
        "neurokit2",
        lambda x, fs, _rest: nk_onsets_fast(x, fs, "threshold"),
        "nk.emg_process defaults: emg_activation method='threshold' (0.1 x SD of amplitude)",
    ),
    Peer(
        "neurokit2 (mixture)",
        "neurokit2",
        lambda x, fs, _rest: nk_onsets_fast(x, fs, "mixture"),
        "nk.emg_process(method_activation='mixture'): Gaussian mixture, p >= 0.33",
    ),
    Peer(
        "biosppy Hodges-Bui",
        "biosppy",
        biosppy_hb_onsets,
        "biosppy hodges_bui_onset_detector, 100 Hz high-pass, 50 ms window, threshold 3, "
        "rest from the truth",
    ),
)


def check_nk_fast_path(x: Array, fs: float) -> dict[str, bool]:
    """Do the fast NeuroKit2 onsets equal ``emg_process``'s on this channel (per method)?"""
    return {
        m: bool(np.array_equal(nk_onsets_fast(x, fs, m), nk_onsets_public(x, fs, m)))
        for m in ("threshold", "mixture")
    }
