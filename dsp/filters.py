"""Filter design (pure functions) and a multi-channel causal SOS stage that carries state."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import signal

try:  # scipy's compiled kernel without the per-call validation of the public wrapper:
    # at live chunk sizes (40 samples) that overhead is ~7x the filtering itself.
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - layout of a future scipy
    _sosfilt_kernel = None

Sos = NDArray[np.float64]


def _nyquist_clip(fs: float, freq: float) -> float:
    # Keep a corner safely below Nyquist so that the design stays stable at any fs.
    return min(freq, 0.45 * fs)


def design_bandpass(fs: float, low: float, high: float, order: int = 4) -> Sos:
    """Butterworth band-pass; ``high`` is clipped below Nyquist (e.g. 450 Hz at fs=500)."""
    high = _nyquist_clip(fs, high)
    if not 0 < low < high:
        raise ValueError(f"band-pass {low}-{high} Hz is empty at fs={fs} Hz")
    return np.asarray(signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos"))


def design_highpass(fs: float, cutoff: float, order: int = 4) -> Sos:
    return np.asarray(
        signal.butter(order, _nyquist_clip(fs, cutoff), btype="highpass", fs=fs, output="sos")
    )


def design_lowpass(fs: float, cutoff: float, order: int = 2) -> Sos:
    return np.asarray(
        signal.butter(order, _nyquist_clip(fs, cutoff), btype="lowpass", fs=fs, output="sos")
    )


def design_notch(fs: float, freq: float, harmonics: int = 3, q: float = 30.0) -> Sos:
    """Cascade of IIR notches at ``freq`` and its harmonics below Nyquist (empty if freq=0)."""
    sections = []
    if freq > 0:
        for k in range(1, max(1, harmonics) + 1):
            f = k * freq
            if f >= 0.48 * fs:
                break
            b, a = signal.iirnotch(f, q * k, fs=fs)  # constant bandwidth across harmonics
            sections.append(signal.tf2sos(b, a))
    if not sections:
        return np.zeros((0, 6))
    return np.vstack(sections)


def cascade(*parts: Sos) -> Sos:
    """Chain SOS filters into one array so one ``sosfilt`` call runs them all (fixed cost
    per call dominates at live chunk sizes)."""
    non_empty = [np.atleast_2d(p) for p in parts if np.size(p)]
    return np.vstack(non_empty) if non_empty else np.zeros((0, 6))


class SosFilter:
    """Causal multi-channel filter over axis 0 with state carried across chunks.

    ``initial`` selects how the state starts: ``"step"`` assumes the signal has been constant
    at its first value forever (no start-up transient from a DC offset), ``"zero"`` the usual
    rest state.
    """

    def __init__(self, sos: Sos, n_channels: int, initial: str = "step") -> None:
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.n_channels = n_channels
        self.initial = initial
        self._zi_unit = signal.sosfilt_zi(self.sos) if len(self.sos) else None
        self._zi: NDArray[np.float64] | None = None  # (channels, sections, 2)

    def reset(self) -> None:
        self._zi = None

    def process(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter ``x`` (n, channels); returns a new (n, channels) array."""
        if not len(self.sos) or x.shape[0] == 0:
            return np.array(x, dtype=np.float64, copy=True)
        if self._zi is None:
            unit = self._zi_unit[None, :, :]  # type: ignore[index]
            scale = x[0][:, None, None] if self.initial == "step" else 0.0
            self._zi = np.ascontiguousarray(unit * scale + np.zeros((x.shape[1], 1, 1)))
        if _sosfilt_kernel is not None:
            # The kernel filters rows of a C-contiguous (channels, n) array in place.
            rows = np.array(x.T, dtype=np.float64, order="C")
            _sosfilt_kernel(self.sos, rows, self._zi)
            return rows.T
        zi = np.moveaxis(self._zi, 0, -1)  # public layout: (sections, 2, channels)
        y, zi = signal.sosfilt(self.sos, x, axis=0, zi=zi)
        self._zi = np.ascontiguousarray(np.moveaxis(zi, -1, 0))
        return np.asarray(y)
