"""Rep segmentation and the firing-order verdict.

A rep is one burst of the monitored muscles: it starts at the first onset after all of them were
quiet and ends when all are quiet again. Its verdict is decided as soon as the onsets that
matter are known (so a cue can follow within tens of milliseconds), and stays fixed after that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

import numpy as np

from dsp.contract import Role


class Verdict(StrEnum):
    """A rep's firing order. A ``str``: JSON, CSV and comparisons see the plain value."""

    GLUTE_FIRST = "glute_first"
    LUMBAR_FIRST = "lumbar_first"
    SIMULTANEOUS = "simultaneous"
    UNDETERMINED = "undetermined"


GLUTE_FIRST = Verdict.GLUTE_FIRST
LUMBAR_FIRST = Verdict.LUMBAR_FIRST
SIMULTANEOUS = Verdict.SIMULTANEOUS
UNDETERMINED = Verdict.UNDETERMINED
ORDERS = tuple(Verdict)


def glute_first_pct(counts: Mapping[str, int]) -> float | None:
    """Glute-first share of the reps that got a verdict, in percent (``None`` if none did).

    The one definition used by the window, the CLI, the report and the session browser:
    undetermined reps carry no verdict, so they are left out of the denominator."""
    decided = sum(int(counts.get(o, 0) or 0) for o in (GLUTE_FIRST, SIMULTANEOUS, LUMBAR_FIRST))
    return 100.0 * int(counts.get(GLUTE_FIRST, 0) or 0) / decided if decided else None


# usable(start, stop, role): None when the role's channel had no gap or artefact in the onset
# search window [start - pre, stop]; else the kind of the first one found ("gap", "clip",
# "flat", "spike", ...), which becomes the reason of an undetermined verdict.
Usable = Callable[[int, int, Role], "str | None"]

#: what an artefact kind means to the person reading an undetermined verdict
ARTEFACT_REASONS: dict[str, str] = {
    "gap": "samples lost (gap) near the onsets",
    "clip": "saturation (clipping) near the onsets",
    "flat": "flat line (lead off?) near the onsets",
    "spike": "spike artefact (electrode pop or cable knock) near the onsets",
    "pop": "electrode pop near the onsets",
    "motion": "motion artefact near the onsets",
}
QuietFrom = Callable[[Role, int], "int | None"]


def classify(lag_ms: float | None, tolerance_ms: float) -> Verdict:
    """Verdict for a lag (positive = glute first) with a neutral zone of +-tolerance."""
    if lag_ms is None:
        return UNDETERMINED
    if lag_ms >= tolerance_ms:
        return GLUTE_FIRST
    if lag_ms <= -tolerance_ms:
        return LUMBAR_FIRST
    return SIMULTANEOUS


@dataclass(frozen=True)
class SideResult:
    lag_ms: float | None
    order: str
    lag_ci_ms: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, object]:
        ci = None if self.lag_ci_ms is None else list(self.lag_ci_ms)
        return {"lag_ms": self.lag_ms, "order": self.order, "lag_ci_ms": ci}


#: an onset's approximate 95 % interval, absolute sample indices (lo, hi)
Interval = tuple[int, int]
K = TypeVar("K")  # a role, or a role's name in a saved rep


@dataclass(frozen=True)
class GroupOnset:
    """When a muscle group (both glutes, or both lumbar sides) began, with the half-widths
    of its approximate 95 % interval on each side, in the units of the onsets given."""

    at: float
    below: float  # how much earlier it may have been
    above: float  # how much later


def group_onset(
    onsets: Mapping[K, float],
    spread: Mapping[K, tuple[float, float]],
    roles: Iterable[K],
) -> GroupOnset | None:
    """The group's onset from its sides' onsets and their intervals.

    One side mapped, or the two sides clearly apart (their intervals do not overlap): the
    earlier side's onset and interval, because the group began when its first side did.
    Two sides whose intervals overlap cannot be told apart by the data: each is then a noisy
    measurement of the same start, and their precision-weighted mean (weights 1/SD^2, the SD
    from each interval's width) is a better estimate than the earlier of the two, which is
    biased early and follows the noisier side (at 6-14 dB the later-confirmed side's fit is
    often much the wider). The pooled interval has the pooled half-widths, widened on the
    early side by half the sides' difference: the first side may have led by that much
    (bilateral onsets differ by tens of ms in symmetric lifts, more in one-sided ones, where
    the intervals rarely overlap). A side without an interval (the back-dating estimator, an
    onset placed by hand) counts as exact: a hand-placed onset inside the other side's
    interval is the group's onset.
    """
    rs = [r for r in roles if r in onsets]
    if not rs:
        return None
    first = min(rs, key=lambda r: onsets[r])
    t0 = float(onsets[first])
    lo0, hi0 = spread.get(first, (t0, t0))
    single = GroupOnset(t0, t0 - float(lo0), float(hi0) - t0)
    if len(rs) != 2:
        return single
    a, b = rs
    ta, tb = float(onsets[a]), float(onsets[b])
    lo_a, hi_a = (float(v) for v in spread.get(a, (ta, ta)))
    lo_b, hi_b = (float(v) for v in spread.get(b, (tb, tb)))
    if lo_a > hi_b or lo_b > hi_a:
        return single  # clearly apart: the earlier side began the group
    exact = [t for t, lo, hi in ((ta, lo_a, hi_a), (tb, lo_b, hi_b)) if lo == hi]
    if len(exact) == 2:
        return single  # no estimator intervals: nothing to weigh by
    half = abs(ta - tb) / 2.0
    if exact:  # one side exact and inside the other's interval
        return GroupOnset(exact[0], half, 0.0)
    la, ha, lb, hb = ta - lo_a, hi_a - ta, tb - lo_b, hi_b - tb
    wa = 1.0 / max((la + ha) / 2.0, 1e-9) ** 2
    wb = 1.0 / max((lb + hb) / 2.0, 1e-9) ** 2
    at = (wa * ta + wb * tb) / (wa + wb)

    def pooled(x: float, y: float) -> float:
        # half-widths in quadrature (inverse-variance pooling); a zero side stays zero
        return 0.0 if x <= 0.0 or y <= 0.0 else float((x**-2 + y**-2) ** -0.5)

    return GroupOnset(at, float(np.hypot(pooled(la, lb), half)), pooled(ha, hb))


def crosses_neutral_zone(ci_ms: tuple[float, float] | None, tolerance_ms: float) -> bool:
    """Whether a lag interval reaches from lumbar-first to glute-first: the data cannot say
    which muscle led."""
    return ci_ms is not None and ci_ms[0] <= -tolerance_ms and ci_ms[1] >= tolerance_ms


@dataclass(frozen=True)
class RepResult:
    """One rep's verdict. Indices are absolute sample indices of the stream."""

    index: int
    start: int
    onsets: dict[Role, int | None]
    lag_ms: float | None
    order: str
    left: SideResult | None
    right: SideResult | None
    decided_at: int
    reason: str = ""
    end: int | None = None
    #: approximate 95 % interval of each onset (absolute indices), where the estimator gives
    #: one; and of the lag (ms), from the intervals of the two onsets that define it
    onset_ci: dict[Role, Interval] = field(default_factory=dict)
    lag_ci_ms: tuple[float, float] | None = None
    #: decided again once a sound rest baseline was known (the stream began mid-activity)
    rejudged: bool = False
    #: roles whose burst was already under way when the data began (no onset was seen)
    censored: tuple[Role, ...] = ()
    #: decided lumbar-first before any glute fired: the lag was not known then but below
    #: this bound (−tolerance); the rep's final record (at its end) carries the measured lag
    lag_below_ms: float | None = None
    #: the verdict given live, where the rep's final record differs from it: a rep decided
    #: lumbar-first while the glutes seemed at rest whose glute onset, fitted once the glute
    #: fired, came before the lumbar's or too near it to tell (None: the final record is the
    #: verdict given)
    cued: str | None = None


@dataclass(frozen=True)
class RepEnded:
    """A rep is over. ``result`` is its final record: the verdict as decided, with the end
    index, onsets of roles that came after the decision, and per-side results completed."""

    index: int
    end: int
    result: RepResult


@dataclass
class _Rep:
    index: int
    start: int
    onsets: dict[Role, int] = field(default_factory=dict)
    spread: dict[Role, Interval] = field(default_factory=dict)
    censored: set[Role] = field(default_factory=set)
    beat: set[Role] = field(default_factory=set)  # onsets a heartbeat gate covered
    last_detect: int = 0
    decided: RepResult | None = None


class RepTracker:
    """Turns per-channel onsets/offsets of role channels into reps and verdicts."""

    def __init__(
        self,
        roles: dict[Role, int],
        glutes: Iterable[Role],
        lumbars: Iterable[Role],
        fs: float,
        tolerance_ms: float,
        settle: int,
    ) -> None:
        self.glutes = tuple(glutes)
        self.lumbars = tuple(lumbars)
        self.compared = (*self.glutes, *self.lumbars)
        self.channel_role = {roles[r]: r for r in self.compared}
        self.fs = fs
        self.tolerance_ms = tolerance_ms
        # the neutral zone in whole samples, rounded up: a lag of -tolerance is lumbar-first
        self.tolerance = int(np.ceil(tolerance_ms * fs / 1000.0 - 1e-9))
        self.settle = settle
        self.reset()

    def reset(self) -> None:
        self._active: set[Role] = set()
        self._rep: _Rep | None = None
        self._count = 0

    @property
    def current(self) -> RepResult | None:
        return self._rep.decided if self._rep else None

    def on_onset(
        self,
        channel: int,
        index: int,
        detected_at: int,
        usable: Usable,
        interval: Interval | None = None,
        censored: bool = False,
        beat: bool = False,
    ) -> tuple[RepResult | None, RepEnded | None]:
        """Record an onset. A decided rep whose muscle fires again has ended: in a set
        without rest between reps, the next rep starts with that second onset."""
        role = self.channel_role.get(channel)
        if role is None:
            return None, None
        ended: RepEnded | None = None
        if self._rep is not None and self._rep.decided is not None and role in self._rep.onsets:
            ended = self._end(index)
        if self._rep is None:
            self._rep = _Rep(self._count, index)
            self._count += 1
        rep = self._rep
        self._active.add(role)
        if role in rep.onsets:
            return None, ended
        rep.onsets[role] = index
        rep.spread[role] = interval or (index, index)
        if censored:
            rep.censored.add(role)
        if beat:
            rep.beat.add(role)
        if rep.decided is None:
            rep.start = min(rep.start, index)
            rep.last_detect = detected_at
        return None, ended

    def on_offset(self, channel: int) -> None:
        role = self.channel_role.get(channel)
        if role is not None:
            self._active.discard(role)

    def close_if_quiet(
        self, index: int, usable: Usable
    ) -> tuple[RepResult | None, RepEnded | None]:
        """End the rep when all monitored muscles are quiet; decide it first if needed."""
        if self._rep is None or self._active:
            return None, None
        decided = self._decide(index, usable) if self._rep.decided is None else None
        return decided, self._end(index)

    def _end(self, index: int) -> RepEnded:
        rep = self._rep
        assert rep is not None and rep.decided is not None
        decided = rep.decided
        # Undetermined for bad data: no lags. Undetermined for an uncertain lag: keep them.
        ok = decided.order != UNDETERMINED or decided.lag_ms is not None
        lag, lag_ci = decided.lag_ms, decided.lag_ci_ms
        order, reason, cued = decided.order, decided.reason, None
        if ok and lag is None:  # decided early: the glute onset, if any, came afterwards
            measured = self._lag(self.glutes, self.lumbars, rep)
            lag = None if measured is None else round(measured, 3)
            lag_ci = self._lag_ci(self.glutes, self.lumbars, rep)
            # The glutes' statistic was at its rest level then, but a slowly recruiting
            # glute's first discharges can hide in the noise: the change point fitted once it
            # fired may lie before the lumbar onset. The record says what the data say, and
            # keeps what was cued.
            if lag is not None:
                measured_order = classify(lag, self.tolerance_ms)
                if crosses_neutral_zone(lag_ci, self.tolerance_ms):
                    measured_order = UNDETERMINED
                if measured_order != order:
                    cued, order = order, measured_order
                    said = str(cued).replace("_", " ")
                    if order == UNDETERMINED and lag_ci is not None:
                        reason = (
                            f"revised at the rep's end: with the glute onset found after the "
                            f"cue the lag is {lag:+.0f} ms, its 95 % interval {lag_ci[0]:+.0f} "
                            f"to {lag_ci[1]:+.0f} ms crosses the neutral zone (the cue said "
                            f"{said})"
                        )
                    else:
                        reason = (
                            f"revised at the rep's end: the glute onset found after the cue "
                            f"puts the lag at {lag:+.0f} ms (the cue said {said})"
                        )
        final = replace(
            decided,
            order=order,
            reason=reason,
            cued=cued,
            # the bound described the cue; a revised record has its measured lag instead
            lag_below_ms=None if cued is not None else decided.lag_below_ms,
            lag_ms=lag,
            lag_ci_ms=lag_ci,
            end=index,
            onsets={r: rep.onsets.get(r) for r in self.compared},
            onset_ci={r: rep.spread[r] for r in self.compared if r in rep.spread},
            left=self._side("left", rep, ok),
            right=self._side("right", rep, ok),
        )
        self._rep = None
        return RepEnded(rep.index, index, final)

    def abort(self, index: int, usable: Usable) -> tuple[RepResult | None, RepEnded | None]:
        """The stream broke (gap) or ended: settle the current rep as it stands."""
        self._active.clear()
        return self.close_if_quiet(index, usable)

    @property
    def current_pending(self) -> bool:
        return self._rep is not None and self._rep.decided is None

    def decision_due(self, quiet_from: QuietFrom | None = None) -> int | None:
        """Sample index at which the pending rep is to be decided, if it can be.

        With every compared role's onset known the rep is decided at once. Otherwise it is
        decided as soon as no onset still to come could change its verdict: a muscle at rest
        at sample t can no longer get an onset before t (``quiet_from(role, index)`` gives
        the first sample at or after ``index`` at which it was at rest, if seen yet). So a
        rep is lumbar-first once a lumbar muscle fired while every glute stayed at rest for
        longer than the tolerance (the rep the athlete most needs to hear about), and
        glute-first once the glute led by the tolerance and the lumbar muscle still missing
        was at rest until then. Failing that, with at least one glute and one lumbar onset it
        waits ``settle`` samples after the latest detection for a missing one. Deciding at
        exact indices keeps verdicts independent of chunking.
        """
        rep = self._rep
        if rep is None or rep.decided is not None:
            return None
        g = [rep.onsets[r] for r in self.glutes if r in rep.onsets]
        lu = [rep.onsets[r] for r in self.lumbars if r in rep.onsets]
        if len(g) == len(self.glutes) and len(lu) == len(self.lumbars):
            return rep.last_detect
        if lu and quiet_from is not None:
            due = self._due_when_fixed(rep, min(g) if g else None, min(lu), quiet_from)
            # An interval that crosses the neutral zone would make the verdict undetermined
            # for good: wait for the side still missing, whose onset may narrow it.
            if due is not None and not crosses_neutral_zone(
                self._lag_ci(self.glutes, self.lumbars, rep), self.tolerance_ms
            ):
                return due
        if not g or not lu:
            return None
        return rep.last_detect + self.settle

    def _due_when_fixed(
        self, rep: _Rep, g0: int | None, l0: int, quiet_from: QuietFrom
    ) -> int | None:
        """When the verdict of the onsets known so far can no longer change (None: not yet
        known). The lag is min(lumbar) - min(glute) in samples; a missing glute can only make
        it larger (at most ``l0 - its first rest``), a missing lumbar only smaller."""
        tol = self.tolerance
        lag = None if g0 is None else l0 - g0
        # The verdict's lag range, in samples: [lower, upper) must hold every possible lag.
        if lag is None or lag <= -tol:  # lumbar first (or no glute yet: it can only be)
            lower, upper = None, -tol + 1
        elif lag >= tol:
            lower, upper = tol, None
        else:
            lower, upper = -tol + 1, tol
        waits = [rep.last_detect]
        for r in self.glutes:
            if r in rep.onsets or upper is None:
                continue
            # a glute onset at or after l0 - upper + 1 keeps the lag below ``upper``
            q = quiet_from(r, l0 - upper + 1)
            if q is None:
                return None
            waits.append(q)
        for r in self.lumbars:
            if r in rep.onsets or lower is None:
                continue
            if g0 is None:
                return None
            q = quiet_from(r, g0 + lower)  # a lumbar onset at or after it keeps lag >= lower
            if q is None:
                return None
            waits.append(q)
        return max(waits)

    def decide_now(self, now: int, usable: Usable) -> RepResult | None:
        if not self.current_pending:
            return None
        rep = self._rep
        assert rep is not None
        early = not any(r in rep.onsets for r in self.glutes)
        return self._decide(now, usable, early=early)

    def _lag(
        self, glutes: Iterable[Role], lumbars: Iterable[Role], rep: _Rep
    ) -> float | None:
        """Lumbar group onset minus glute group onset (ms; :func:`group_onset`)."""
        g = group_onset(rep.onsets, rep.spread, glutes)
        lu = group_onset(rep.onsets, rep.spread, lumbars)
        if g is None or lu is None:
            return None
        return (lu.at - g.at) * 1000.0 / self.fs

    def _lag_ci(
        self, glutes: Iterable[Role], lumbars: Iterable[Role], rep: _Rep
    ) -> tuple[float, float] | None:
        """Interval of the lag from those of its two group onsets, their half-widths added
        in quadrature on each side (independent errors)."""
        g = group_onset(rep.onsets, rep.spread, glutes)
        lu = group_onset(rep.onsets, rep.spread, lumbars)
        if g is None or lu is None:
            return None
        if g.below == g.above == lu.below == lu.above == 0.0:
            return None  # the estimator gives no interval (the back-dating ablation)
        lag = lu.at - g.at
        below = float(np.hypot(lu.below, g.above))  # lumbar earlier, glute later
        above = float(np.hypot(lu.above, g.below))
        k = 1000.0 / self.fs
        return round((lag - below) * k, 1), round((lag + above) * k, 1)

    def _side(self, side: str, rep: _Rep, ok: bool) -> SideResult | None:
        g = Role.GLUTE_L if side == "left" else Role.GLUTE_R
        lu = Role.LUMBAR_L if side == "left" else Role.LUMBAR_R
        if g not in self.glutes or lu not in self.lumbars:
            return None
        lag = self._lag((g,), (lu,), rep) if ok else None
        ci = self._lag_ci((g,), (lu,), rep) if ok else None
        order = classify(lag, self.tolerance_ms)
        if crosses_neutral_zone(ci, self.tolerance_ms):
            order = UNDETERMINED
        return SideResult(None if lag is None else round(lag, 3), order, ci)

    def _decide(self, now: int, usable: Usable, early: bool = False) -> RepResult:
        rep = self._rep
        assert rep is not None
        reason = ""
        below: float | None = None
        # Each role's onset must come from clean data: its window runs from before the rep to
        # just after its onset (or to now, for a role still missing). Clipping later in the
        # burst does not matter.
        bad = None
        for r in self.compared:
            stop = min(now, rep.onsets[r] + self.settle) if r in rep.onsets else now
            bad = usable(rep.start, stop, r)
            if bad is not None:
                break
        ok = bad is None
        lag = self._lag(self.glutes, self.lumbars, rep)
        lag_ci = self._lag_ci(self.glutes, self.lumbars, rep)
        order = classify(lag, self.tolerance_ms)
        if bad is not None:
            reason = ARTEFACT_REASONS.get(bad, f"{bad} artefact near the onsets")
            lag, lag_ci, order = None, None, UNDETERMINED
        elif rep.censored:
            names = ", ".join(r.label for r in self.compared if r in rep.censored)
            reason = f"already active when the data began ({names}): its onset was not seen"
            lag, lag_ci, order = None, None, UNDETERMINED
        elif lag is not None and lag_ci is not None and crosses_neutral_zone(
            lag_ci, self.tolerance_ms
        ):
            order = UNDETERMINED
            reason = (
                f"lag {lag:+.0f} ms is uncertain: its 95 % interval {lag_ci[0]:+.0f} to "
                f"{lag_ci[1]:+.0f} ms crosses the neutral zone (±{self.tolerance_ms:g} ms)"
            )
            beats = [r.label for r in self.compared if r in rep.beat]
            if beats:
                reason += f"; a heartbeat over the onset ({', '.join(beats)})"
        elif lag is None and early:
            reason = f"glutes still at rest {self.tolerance_ms:g} ms after the lumbar onset"
            order = LUMBAR_FIRST
            below = -self.tolerance_ms
        elif lag is None:
            missing = "glute" if not any(r in rep.onsets for r in self.glutes) else "lumbar"
            reason = f"no {missing} onset in this rep"
        result = RepResult(
            index=rep.index,
            start=rep.start,
            onsets={r: rep.onsets.get(r) for r in self.compared},
            lag_ms=None if lag is None else round(lag, 3),
            order=order,
            left=self._side("left", rep, ok),
            right=self._side("right", rep, ok),
            decided_at=now,
            reason=reason,
            onset_ci={r: rep.spread[r] for r in self.compared if r in rep.spread},
            lag_ci_ms=lag_ci,
            censored=tuple(r for r in self.compared if r in rep.censored),
            lag_below_ms=below,
        )
        rep.decided = result
        return result
