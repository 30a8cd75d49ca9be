"""Envelopes and energy operators as streaming stages (state carried across chunks)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dsp.filters import SosFilter, design_lowpass

Array = NDArray[np.float64]


class Tkeo:
    """Teager-Kaiser energy operator psi[n] = x[n]^2 - x[n-1] x[n+1] (Solnik et al. 2010).

    It needs one future sample, so the stage is delayed by one sample: the output row ``i``
    of a chunk is psi at input index ``i - 1``. The very first output is 0.
    """

    delay_samples = 1

    def __init__(self) -> None:
        self._prev: Array | None = None  # last two input rows

    def reset(self) -> None:
        self._prev = None

    def process(self, x: Array) -> Array:
        n = x.shape[0]
        if n == 0:
            return np.zeros_like(x)
        if self._prev is None:
            self._prev = np.repeat(x[:1], 2, axis=0)
        ext = np.concatenate((self._prev, x), axis=0)
        # ext[k] is input index (start - 2 + k); output for index j-1 uses ext rows j-2..j.
        out = ext[1:-1] ** 2 - ext[:-2] * ext[2:]
        self._prev = ext[-2:].copy()
        return out


class MovingRms:
    """Moving RMS over a causal window of ``window`` samples."""

    def __init__(self, window: int, n_channels: int) -> None:
        self.window = max(1, int(window))
        self.n_channels = n_channels
        self.reset()

    def reset(self) -> None:
        self._tail = np.zeros((self.window - 1, self.n_channels))

    def process(self, x: Array) -> Array:
        if x.shape[0] == 0:
            return np.zeros_like(x)
        sq = np.concatenate((self._tail, x * x), axis=0)
        csum = np.cumsum(sq, axis=0)
        w = self.window
        # Windowed sums from the cumulative sum; first row needs the full prefix.
        sums = csum[w - 1 :].copy()
        sums[1:] -= csum[:-w]
        self._tail = sq[-(w - 1) :] if w > 1 else self._tail
        return np.sqrt(np.maximum(sums / w, 0.0))


class LinearEnvelope:
    """Full-wave rectification followed by a 2nd-order Butterworth low-pass (Winter)."""

    def __init__(self, fs: float, cutoff_hz: float, n_channels: int) -> None:
        self._lp = SosFilter(design_lowpass(fs, cutoff_hz, 2), n_channels, initial="zero")

    def reset(self) -> None:
        self._lp.reset()

    def process(self, x: Array) -> Array:
        return self._lp.process(np.abs(x))
