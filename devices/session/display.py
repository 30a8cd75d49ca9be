"""Min/max-decimated ring buffers for drawing, filled on the acquisition thread.

The GUI asks for a bin size (about two points per pixel); the worker keeps, per bin of ``k``
samples aligned to absolute indices, the min and max of the filtered and raw signals and the
last envelope value. A frame then copies a few thousand values instead of decimating hundreds
of thousands on the GUI thread.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


class DisplayRing:
    def __init__(self, k: int, n_bins: int, n_channels: int) -> None:
        self.k = max(1, int(k))
        self.n_bins = max(2, int(n_bins))
        self.n_channels = n_channels
        shape = (self.n_bins, n_channels)
        self._fmin = np.full(shape, np.nan)
        self._fmax = np.full(shape, np.nan)
        self._rmin = np.full(shape, np.nan)
        self._rmax = np.full(shape, np.nan)
        self._env = np.full(shape, np.nan)
        self._end_bin = 0  # bins [.., _end_bin) are complete
        self._partial: tuple[int, Array, Array, Array] | None = None  # bin, rows f/r/e
        self._lock = threading.Lock()

    def write(self, start: int, raw: Array, filtered: Array, envelope: Array) -> None:
        """Add consecutive samples from absolute index ``start`` (worker thread)."""
        if raw.shape[0] == 0:
            return
        k = self.k
        if self._partial is not None:
            b, pr, pf, pe = self._partial
            if start == (b * k) + pr.shape[0]:  # continues the open bin
                raw = np.concatenate((pr, raw))
                filtered = np.concatenate((pf, filtered))
                envelope = np.concatenate((pe, envelope))
                start = b * k
            self._partial = None
        head = (-start) % k  # samples before the first bin boundary: a bin we joined late
        if head:
            raw, filtered, envelope = raw[head:], filtered[head:], envelope[head:]
            start += head
        n_full = raw.shape[0] // k
        first_bin = start // k
        if n_full:
            m = n_full * k
            shape = (n_full, k, self.n_channels)
            # fmin/fmax skip NaN (gap rows) without warnings; an all-NaN bin stays NaN.
            fb = filtered[:m].reshape(shape)
            fmin, fmax = np.fmin.reduce(fb, axis=1), np.fmax.reduce(fb, axis=1)
            rr = raw[:m].reshape(shape)
            env = envelope[k - 1 : m : k]
            with self._lock:
                self._put(
                    first_bin,
                    fmin,
                    fmax,
                    np.fmin.reduce(rr, axis=1),
                    np.fmax.reduce(rr, axis=1),
                    env,
                )
        rest = raw.shape[0] - n_full * k
        if rest:
            m = n_full * k
            self._partial = (
                first_bin + n_full,
                raw[m:].copy(),
                filtered[m:].copy(),
                envelope[m:].copy(),
            )

    def _put(
        self, first: int, fmin: Array, fmax: Array, rmin: Array, rmax: Array, env: Array
    ) -> None:
        n = fmin.shape[0]
        if first > self._end_bin:  # a gap: blank the skipped bins
            skipped = min(first - self._end_bin, self.n_bins)
            idx = np.arange(self._end_bin, self._end_bin + skipped) % self.n_bins
            for a in (self._fmin, self._fmax, self._rmin, self._rmax, self._env):
                a[idx] = np.nan
        idx = np.arange(first, first + n) % self.n_bins
        self._fmin[idx], self._fmax[idx] = fmin, fmax
        self._rmin[idx], self._rmax[idx] = rmin, rmax
        self._env[idx] = env
        self._end_bin = max(self._end_bin, first + n)

    def snapshot(self, n_bins: int, raw: bool) -> tuple[int, Array, Array, Array]:
        """(first bin, filtered min/max interleaved, raw min/max or empty, envelope)."""
        n_bins = min(n_bins, self.n_bins)
        filt = np.empty((2 * n_bins, self.n_channels))
        rows = np.empty((2 * n_bins if raw else 0, self.n_channels))
        env = np.empty((n_bins, self.n_channels))
        # The newest n_bins bins are one or two contiguous stretches of the ring: copied as
        # slices (a gather through an index array cost twice as long, every frame).
        with self._lock:
            end = self._end_bin
            first = end - n_bins
            a = first % self.n_bins
            m = min(n_bins, self.n_bins - a)  # bins before the ring wraps
            for lo, hi, src_lo in ((0, m, a), (m, n_bins, 0)):
                if hi <= lo:
                    continue
                src = slice(src_lo, src_lo + hi - lo)
                filt[2 * lo : 2 * hi : 2], filt[2 * lo + 1 : 2 * hi : 2] = (
                    self._fmin[src],
                    self._fmax[src],
                )
                if raw:
                    rows[2 * lo : 2 * hi : 2] = self._rmin[src]
                    rows[2 * lo + 1 : 2 * hi : 2] = self._rmax[src]
                env[lo:hi] = self._env[src]
        if first < 0:  # the session's start: bins before its first sample
            filt[: 2 * -first] = np.nan
            env[:-first] = np.nan
            if raw:
                rows[: 2 * -first] = np.nan
        return first, filt, rows, env
