"""Running rep statistics for the feedback panels (pure Python, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dsp.reps import GLUTE_FIRST, ORDERS, UNDETERMINED, RepResult, glute_first_pct


@dataclass
class RepTally:
    """Counts over the session and over the last ``window`` reps, plus the glute-first streak.

    Undetermined reps are counted but left out of the percentages: they carry no verdict.
    """

    window: int = 10
    reps: list[RepResult] = field(default_factory=list)

    def add(self, rep: RepResult) -> None:
        """Add a rep; the same rep seen again (replay after a seek) replaces the first."""
        for i, old in enumerate(self.reps):
            if old.start == rep.start:
                self.reps[i] = rep
                return
        self.reps.append(rep)
        if len(self.reps) > 1 and self.reps[-2].start > rep.start:
            self.reps.sort(key=lambda r: r.start)

    def rejudge(self, upto: int, reps: tuple[RepResult, ...]) -> None:
        """The reps before sample ``upto`` were judged again: these replace them."""
        kept = [r for r in self.reps if r.start >= upto]
        self.reps = sorted([*kept, *reps], key=lambda r: r.start)

    def reset(self) -> None:
        self.reps.clear()

    @staticmethod
    def _counts(reps: list[RepResult]) -> dict[str, int]:
        return {o: sum(r.order == o for r in reps) for o in ORDERS}

    @property
    def session(self) -> dict[str, int]:
        return self._counts(self.reps)

    @property
    def recent(self) -> dict[str, int]:
        return self._counts(self.reps[-self.window :])

    @staticmethod
    def percent(counts: dict[str, int]) -> float | None:
        return glute_first_pct(counts)

    @property
    def streak(self) -> int:
        """Consecutive glute-first reps at the end (undetermined reps neither break nor add)."""
        n = 0
        for r in reversed(self.reps):
            if r.order == UNDETERMINED:
                continue
            if r.order != GLUTE_FIRST:
                break
            n += 1
        return n

    def side_counts(self, side: str) -> dict[str, int]:
        """Verdicts of one side. A side still waiting for its onset in a rep decided as a
        whole (the rep has not ended) is not counted yet: it is pending, not undetermined."""
        results = []
        for r in self.reps:
            s = getattr(r, side)
            if s is None:
                continue
            pending = r.end is None and s.lag_ms is None and r.order != UNDETERMINED
            if not pending:
                results.append(s)
        return {o: sum(s.order == o for s in results) for o in ORDERS}
