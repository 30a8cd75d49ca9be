"""Per-channel artefact spans from the raw signal: flat lines (lead-off) and clipping.

Both show as runs of identical consecutive raw values: a flat line for a long time at any
level, clipping as short runs pinned at the channel's extreme. Spans are absolute index
intervals ``[start, stop)`` so a rep can ask whether its search window touched one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


class ArtefactScanner:
    def __init__(self, n_channels: int, flat_len: int, clip_len: int = 3, warmup: int = 0) -> None:
        self.n_channels = n_channels
        self.flat_len = max(2, int(flat_len))
        self.clip_len = max(2, int(clip_len))
        self.warmup = warmup
        self.reset()

    def reset(self) -> None:
        ch = self.n_channels
        self._last = np.full(ch, np.nan)
        self._run_start = np.zeros(ch, dtype=np.int64)
        self._hi = np.full(ch, -np.inf)
        self._lo = np.full(ch, np.inf)
        self._seen = 0

    def restart(self) -> None:
        """After a gap: runs cannot continue across it; extremes are kept."""
        self._last[:] = np.nan

    def scan(self, start: int, x: Array) -> list[tuple[int, int, int, str]]:
        """Return spans ``(channel, start, stop, kind)`` whose run reached its minimum length
        within this block (a run still growing is reported again, longer, later)."""
        n = x.shape[0]
        spans: list[tuple[int, int, int, str]] = []
        if n == 0:
            return spans
        ready = self._seen >= self.warmup
        hi = np.maximum(self._hi, x.max(axis=0))
        lo = np.minimum(self._lo, x.min(axis=0))
        # Fast path: continuous-valued data almost never repeats a value, so only channels
        # with a repeat (or a run carried in from the last block) need the run analysis.
        repeats = (x[1:] == x[:-1]).any(axis=0) | (x[0] == self._last)
        for c in np.flatnonzero(~repeats):
            self._run_start[c] = start + n - 1
        self._last = x[-1].copy()
        for c in np.flatnonzero(repeats):
            col = x[:, c]
            change = np.flatnonzero(col[1:] != col[:-1]) + 1
            starts = np.concatenate(([0], change))
            ends = np.concatenate((change, [n]))
            abs_starts = start + starts
            if col[0] == self._last[c]:
                abs_starts[0] = self._run_start[c]
            lengths = start + ends - abs_starts
            values = col[starts]
            flat = lengths >= self.flat_len
            clip = (lengths >= self.clip_len) & ready & (hi[c] > lo[c])
            clip &= (values >= hi[c]) | (values <= lo[c])
            for k in np.flatnonzero(flat | clip):
                kind = "flat" if flat[k] else "clip"
                spans.append((c, int(abs_starts[k]), int(start + ends[k]), kind))
            self._run_start[c] = abs_starts[-1]
        self._hi, self._lo = hi, lo
        self._seen += n
        return spans


class SpanIndex:
    """Unusable spans per channel, pruned to a horizon, queried by interval overlap."""

    def __init__(self, n_channels: int, horizon: int) -> None:
        self.horizon = horizon
        self._spans: list[list[tuple[int, int, str]]] = [[] for _ in range(n_channels)]

    def add(self, channel: int, start: int, stop: int, kind: str) -> None:
        spans = self._spans[channel]
        if spans and spans[-1][2] == kind and spans[-1][0] <= start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(stop, spans[-1][1]), kind)
        else:
            spans.append((start, stop, kind))

    def add_all(self, start: int, stop: int, kind: str) -> None:
        for c in range(len(self._spans)):
            self.add(c, start, stop, kind)

    def overlaps(self, channel: int, start: int, stop: int) -> bool:
        return self.kind_overlapping(channel, start, stop) is not None

    def kind_overlapping(self, channel: int, start: int, stop: int) -> str | None:
        """Kind of the latest span of ``channel`` overlapping ``[start, stop)``, if any."""
        for a, b, kind in reversed(self._spans[channel]):
            if a < stop and b > start:
                return kind
        return None

    def prune(self, now: int) -> None:
        limit = now - self.horizon
        for c, spans in enumerate(self._spans):
            if spans and spans[0][1] < limit:
                self._spans[c] = [s for s in spans if s[1] >= limit]
