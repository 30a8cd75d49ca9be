"""Host time <-> stream index for a source that does not stamp its own samples. No Qt.

An external event (an LSL marker, a trigger from another program) carries a host time; the
EMG timeline counts samples. A source that knows its sample times (an LSL stream) answers
:meth:`Device.index_at` itself. For the others (serial boards, BrainFlow, the simulator) the
only clue is when each chunk arrived: ``Chunk.timestamp`` is the host time at which the
chunk's last sample had been received.

Arrival is always late, never early: sample ``i`` is taken at ``t0 + i / fs`` and reaches the
host ``d >= 0`` later (the device's packet time, the USB or radio link, the reader's poll).
So every chunk gives an upper bound of the stream's start, ``arrived - last / fs >= t0``, and
the least-delayed chunks lie on the true line. The map keeps the lowest such offset of each
second of arrivals (the earliest-arrival envelope), and fits a straight line through the last
:data:`WINDOW_S` of those minima: the line's level is the best-case delay (a constant of the
source, usually under a packet), its slope the drift of the device's clock against the host's
(a board whose "1000 Hz" is 998 Hz would otherwise slide 2 ms a second). Seconds whose
minimum sits well above the line (a stall, then a burst of late chunks) are left out of the
fit. A gap keeps the line: lost samples still count in the stream index.
"""

from __future__ import annotations

import collections
import threading

#: seconds of arrivals whose earliest-arrival minima the line is fitted through
WINDOW_S = 20.0
#: arrivals are grouped into blocks of this many seconds (one minimum each)
BLOCK_S = 1.0
#: a block minimum this far (s) above the fitted line is a stall, not the envelope
OUTLIER_S = 0.003
#: below this span (s) of blocks the slope is not trusted: the level alone is used
MIN_SPAN_S = 5.0


class ClockMap:
    """Maps host times to stream indices from ``(arrival time, last index)`` of each chunk.

    :meth:`feed` is called on the acquisition thread, :meth:`index_at` and :meth:`time_of`
    on any other: a lock guards the few numbers they share.
    """

    def __init__(self, fs: float) -> None:
        if not fs > 0:
            raise ValueError("a clock map needs a positive sampling rate")
        self.fs = float(fs)
        self._lock = threading.Lock()
        # (block number, arrival time of its minimum, index of that chunk, its offset)
        self._blocks: collections.deque[tuple[int, float, int, float]] = collections.deque()
        self._fit: tuple[float, float] | None = None  # (level s, slope s per sample), cached

    @property
    def ready(self) -> bool:
        """True once at least one chunk has been seen."""
        with self._lock:
            return bool(self._blocks)

    def feed(self, arrived: float, last_index: int) -> None:
        """A chunk whose last sample (stream index ``last_index``) arrived at ``arrived``."""
        offset = arrived - last_index / self.fs
        block = int(arrived // BLOCK_S)
        with self._lock:
            blocks = self._blocks
            if blocks and blocks[-1][0] == block:
                if offset < blocks[-1][3]:
                    blocks[-1] = (block, arrived, last_index, offset)
                    self._fit = None
                return
            blocks.append((block, arrived, last_index, offset))
            while blocks and blocks[0][1] < arrived - WINDOW_S:
                blocks.popleft()
            self._fit = None

    def _line(self) -> tuple[float, float] | None:
        """(level, slope): the host time of sample ``i`` is ``i / fs + level + slope * i``."""
        with self._lock:
            if self._fit is not None:
                return self._fit
            points = [(float(i), o) for _, _, i, o in self._blocks]
        if not points:
            return None
        fit = _lower_line(points, self.fs)
        with self._lock:
            self._fit = fit
        return fit

    def index_at(self, t: float) -> int | None:
        """The stream index of the sample taken at host time ``t``; None before any chunk."""
        line = self._line()
        if line is None:
            return None
        level, slope = line
        return round((t - level) / (1.0 / self.fs + slope))

    def time_of(self, index: int) -> float | None:
        """The host time at which sample ``index`` was taken; None before any chunk."""
        line = self._line()
        if line is None:
            return None
        level, slope = line
        return index / self.fs + level + slope * index


def _lower_line(points: list[tuple[float, float]], fs: float) -> tuple[float, float]:
    """A line through the (index, offset) block minima, stalls left out (see the module)."""
    lowest = min(o for _, o in points)
    span = (points[-1][0] - points[0][0]) / fs
    if len(points) < 3 or span < MIN_SPAN_S:
        return lowest, 0.0
    level, slope = _least_squares(points)
    kept = [(i, o) for i, o in points if o - (level + slope * i) <= OUTLIER_S]
    if len(kept) >= 3:
        level, slope = _least_squares(kept)
    # the envelope is a lower bound: no kept minimum may lie below the line
    level += min(0.0, *(o - (level + slope * i) for i, o in kept))
    return level, slope


def _least_squares(points: list[tuple[float, float]]) -> tuple[float, float]:
    n = len(points)
    mi = sum(i for i, _ in points) / n
    mo = sum(o for _, o in points) / n
    var = sum((i - mi) ** 2 for i, _ in points)
    if var <= 0:
        return mo, 0.0
    slope = sum((i - mi) * (o - mo) for i, o in points) / var
    return mo - slope * mi, slope


__all__ = ["ClockMap"]
