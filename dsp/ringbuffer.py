"""A preallocated multi-channel ring buffer with absolute sample indices.

The acquisition thread writes; readers take a copy of the newest samples under a short lock, so
a consumer (the GUI) never holds a view that another thread is writing into.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


class RingBuffer:
    def __init__(self, capacity: int, n_channels: int) -> None:
        self.capacity = max(1, int(capacity))
        self.n_channels = n_channels
        self._buf = np.full((self.capacity, n_channels), np.nan)
        self._end = 0  # absolute index one past the newest sample
        self._lock = threading.Lock()

    @property
    def end(self) -> int:
        return self._end

    def clear(self, end: int = 0) -> None:
        with self._lock:
            self._buf[:] = np.nan
            self._end = end

    def write(self, start: int, data: Array) -> None:
        """Write rows for absolute indices ``start ...``; a jump forward leaves NaN (a gap)."""
        n = data.shape[0]
        if n == 0:
            return
        with self._lock:
            if start > self._end:  # gap: blank what was skipped (at most one lap)
                self._fill(self._end, min(start - self._end, self.capacity), np.nan)
            if n > self.capacity:
                data, start = data[-self.capacity :], start + n - self.capacity
                n = self.capacity
            self._fill(start, n, data)
            self._end = max(self._end, start + n)

    def _fill(self, start: int, n: int, value: Array | float) -> None:
        i = start % self.capacity
        first = min(n, self.capacity - i)
        if isinstance(value, np.ndarray):
            self._buf[i : i + first] = value[:first]
            if first < n:
                self._buf[: n - first] = value[first:]
        else:
            self._buf[i : i + first] = value
            if first < n:
                self._buf[: n - first] = value

    def snapshot(self, n: int) -> tuple[int, Array]:
        """Copy of the newest ``n`` samples (NaN where never written) and the index of the
        first row."""
        n = min(max(0, int(n)), self.capacity)
        with self._lock:
            end = self._end
            start = end - n
            out = np.empty((n, self.n_channels))
            i = start % self.capacity
            first = min(n, self.capacity - i)
            out[:first] = self._buf[i : i + first]
            if first < n:
                out[first:] = self._buf[: n - first]
        if start < 0:
            out[:-start] = np.nan
        return start, out


class SlidingRows:
    """The newest rows of a stream as one contiguous view, without a copy per append.

    A stage that looks back over its last ``keep`` rows plus the block it is processing
    (the onset detector's history) would otherwise concatenate the whole history to every
    block. Rows are appended by slice assignment into a preallocated buffer; when it is full,
    the last ``keep`` rows move to its front (amortised: once per ``spare`` rows).
    """

    def __init__(self, keep: int, n_channels: int, dtype: type = np.float64, spare: int = 8192):
        self.keep = max(0, int(keep))
        self._buf: NDArray[Any] = np.empty((self.keep + max(1, spare), n_channels), dtype=dtype)
        self._end = 0  # buffer row one past the newest
        self._len = 0  # rows held (at most keep once a push is over)

    def __len__(self) -> int:
        return min(self._len, self.keep)

    def clear(self) -> None:
        self._end = self._len = 0

    def push(self, rows: NDArray[Any]) -> NDArray[Any]:
        """Append ``rows``; return the last ``keep`` rows held before them plus ``rows``.

        The view is valid until the next ``push``."""
        held, new = self.reserve(rows.shape[0])
        new[...] = rows
        return held

    def reserve(self, n: int) -> tuple[NDArray[Any], NDArray[Any]]:
        """Append ``n`` rows for the caller to fill in (saves the copy of ``push``): returns
        the view ``push`` returns and the view of the ``n`` new rows (its last rows), valid
        until the next ``push`` or ``reserve``."""
        prev = min(self._len, self.keep)
        if self._end + n > self._buf.shape[0]:
            if prev + n > self._buf.shape[0]:  # a block larger than the spare room: grow
                grown = np.empty((prev + 2 * n, self._buf.shape[1]), dtype=self._buf.dtype)
                grown[:prev] = self._buf[self._end - prev : self._end]
                self._buf = grown
            else:
                self._buf[:prev] = self._buf[self._end - prev : self._end]
            self._end = prev
        self._end += n
        self._len = prev + n
        held = self._buf[self._end - self._len : self._end]
        return held, held[held.shape[0] - n :]

    def tail(self) -> NDArray[Any]:
        """The last ``keep`` rows (fewer at the start)."""
        k = len(self)
        return self._buf[self._end - k : self._end]
