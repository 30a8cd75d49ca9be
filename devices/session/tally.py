"""Running rep statistics for the feedback panels (pure Python, no Qt)."""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass, field

from dsp.reps import GLUTE_FIRST, ORDERS, UNDETERMINED, RepResult, glute_first_pct

#: a rep's order as one small code (and "no verdict to count" for a side that is absent or
#: still pending)
_CODE: dict[str, int] = {str(o): i for i, o in enumerate(ORDERS)}
_NONE = 255


def _side_code(rep: RepResult, side: str) -> int:
    s = getattr(rep, side)
    if s is None:
        return _NONE
    # A side still waiting for its onset in a rep decided as a whole (the rep has not
    # ended) is not counted yet: it is pending, not undetermined.
    if rep.end is None and s.lag_ms is None and rep.order != UNDETERMINED:
        return _NONE
    return _CODE.get(s.order, _NONE)


def _span_end(rep: RepResult) -> int:
    """Where a rep's span ends: its end, or (not yet ended) where its verdict was decided."""
    return rep.end if rep.end is not None else rep.decided_at


def same_burst(a: RepResult, b: RepResult) -> bool:
    """Two records of one burst: a rep re-judged in one pass and not in another (its onsets
    fitted again, its start a few ms off), or a rep's cue and its final record. Their spans
    overlap and their starts lie closer than half the shorter span. (Reps follow each other,
    and the next one's start, back-dated, may reach a little into the one before: their
    starts lie a whole rep apart.)"""
    a_end, b_end = _span_end(a), _span_end(b)
    if not (a.start < b_end and b.start < a_end):
        return False
    return 2 * abs(a.start - b.start) < min(a_end - a.start, b_end - b.start)


@dataclass
class RepTally:
    """Counts over the session and over the last ``window`` reps, plus the glute-first streak.

    Undetermined reps are counted but left out of the percentages: they carry no verdict.

    Every rep ever added is counted, but only the newest ``keep`` :class:`RepResult` records
    stay in memory (``reps``: what the panels and the rep table show; the recording has the
    rest). Each older rep is three bytes of verdict codes and its start index, so a rep seen
    again (a replay after a seek) still replaces its first record in the counts: a 4-hour
    session (~5000 reps) kept every record forever before (issue 11).
    """

    window: int = 10
    keep: int = 500
    reps: list[RepResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._starts: array[int] = array("q")  # every rep's start, sorted
        self._orders = bytearray()  # its verdict code, same order
        self._left = bytearray()
        self._right = bytearray()
        given, self.reps = list(self.reps), []
        for rep in given:
            self.add(rep)

    # -- changes ---------------------------------------------------------------------------
    def add(self, rep: RepResult) -> None:
        """Add a rep; the same rep seen again (replay after a seek) replaces the first, also
        when its start moved a little (a rep re-judged in one pass and not yet in another:
        their spans overlap, which two reps' spans never do)."""
        codes = (_CODE.get(rep.order, _NONE), _side_code(rep, "left"), _side_code(rep, "right"))
        self._drop_overlapping(rep)
        i = bisect.bisect_left(self._starts, rep.start)
        if i < len(self._starts) and self._starts[i] == rep.start:
            self._orders[i], self._left[i], self._right[i] = codes
        else:
            self._starts.insert(i, rep.start)
            self._orders.insert(i, codes[0])
            self._left.insert(i, codes[1])
            self._right.insert(i, codes[2])
        self._retain(rep)

    def _drop_overlapping(self, rep: RepResult) -> None:
        """Records of the same burst as ``rep`` under another start (:func:`same_burst`)."""
        j = bisect.bisect_left(self.reps, _span_end(rep), key=lambda r: r.start)
        for other in reversed(self.reps[:j]):  # those starting before rep's span ends
            if _span_end(other) <= rep.start:
                break  # (ends follow starts: none earlier overlaps)
            if other.start != rep.start and same_burst(rep, other):
                self.remove(other.start)

    def remove(self, start: int) -> None:
        """Forget the rep that starts at ``start`` (if kept)."""
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start:
            del self._starts[i], self._orders[i], self._left[i], self._right[i]
        self.reps = [r for r in self.reps if r.start != start]

    def _retain(self, rep: RepResult) -> None:
        kept = self.reps
        j = bisect.bisect_left(kept, rep.start, key=lambda r: r.start)
        if j < len(kept) and kept[j].start == rep.start:
            kept[j] = rep
            return
        if len(kept) >= self.keep and j == 0:
            return  # older than every record kept: counted, not kept
        kept.insert(j, rep)
        if len(kept) > self.keep:
            del kept[: len(kept) - self.keep]

    def rejudge(self, upto: int, reps: tuple[RepResult, ...], since: int = 0) -> None:
        """The reps from sample ``since`` to ``upto`` were judged again: these replace them
        (those before ``since`` were judged by an earlier pipeline and stand)."""
        lo = bisect.bisect_left(self._starts, since)
        cut = bisect.bisect_left(self._starts, upto)
        del self._starts[lo:cut], self._orders[lo:cut], self._left[lo:cut], self._right[lo:cut]
        self.reps = [r for r in self.reps if not since <= r.start < upto]
        for rep in reps:
            self.add(rep)

    def reset(self) -> None:
        self.reps.clear()
        del self._starts[:], self._orders[:], self._left[:], self._right[:]

    # -- what the panels read --------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Reps in the session (``reps`` holds only the newest ``keep`` of them)."""
        return len(self._starts)

    @staticmethod
    def _counts(codes: bytes | bytearray) -> dict[str, int]:
        return {o: codes.count(i) for i, o in enumerate(ORDERS)}

    @property
    def session(self) -> dict[str, int]:
        return self._counts(self._orders)

    @property
    def recent(self) -> dict[str, int]:
        return self._counts(self._orders[-self.window :])

    @staticmethod
    def percent(counts: dict[str, int]) -> float | None:
        return glute_first_pct(counts)

    @property
    def streak(self) -> int:
        """Consecutive glute-first reps at the end (undetermined reps neither break nor add)."""
        n = 0
        glute, undetermined = _CODE[GLUTE_FIRST], _CODE[UNDETERMINED]
        for code in reversed(self._orders):
            if code == undetermined:
                continue
            if code != glute:
                break
            n += 1
        return n

    def side_counts(self, side: str) -> dict[str, int]:
        """Verdicts of one side. A side still waiting for its onset in a rep decided as a
        whole (the rep has not ended) is not counted yet: it is pending, not undetermined."""
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', not {side!r}")
        return self._counts(self._left if side == "left" else self._right)
