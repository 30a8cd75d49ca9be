from __future__ import annotations

from devices.session.tally import RepTally
from dsp.contract import Role
from dsp.reps import RepResult, SideResult


def rep(i: int, order: str, left: str | None = None) -> RepResult:
    return RepResult(
        i,
        i * 100,
        {Role.GLUTE_L: i * 100},
        30.0,
        order,
        SideResult(30.0, left) if left else None,
        None,
        i * 100 + 10,
    )


def test_counts_percent_and_streak() -> None:
    t = RepTally(window=3)
    for i, o in enumerate(
        [
            "lumbar_first",
            "glute_first",
            "undetermined",
            "glute_first",
            "simultaneous",
            "glute_first",
            "glute_first",
        ]
    ):
        t.add(rep(i, o, left=o if o != "undetermined" else None))
    assert t.session["glute_first"] == 4 and t.session["undetermined"] == 1
    assert t.percent(t.session) == 100 * 4 / 6
    assert t.recent == {"glute_first": 2, "lumbar_first": 0, "simultaneous": 1, "undetermined": 0}
    assert t.streak == 2
    assert t.side_counts("left")["glute_first"] == 4 and t.side_counts("right")["glute_first"] == 0
    assert RepTally().percent(RepTally().session) is None


def test_a_side_pending_at_the_decision_is_not_undetermined() -> None:
    from dataclasses import replace

    t = RepTally()
    decided = RepResult(0, 100, {Role.GLUTE_L: 100, Role.LUMBAR_L: None}, 120.0, "glute_first",
                        SideResult(None, "undetermined"), SideResult(120.0, "glute_first"), 400)
    t.add(decided)
    assert t.side_counts("left")["undetermined"] == 0  # waiting for the left lumbar
    assert t.side_counts("right")["glute_first"] == 1
    t.add(replace(decided, end=900, left=SideResult(90.0, "glute_first")))  # its final record
    assert t.side_counts("left")["glute_first"] == 1
    t.add(replace(decided, start=2000, end=2500))  # ended without a left lumbar onset
    assert t.side_counts("left")["undetermined"] == 1


def _span(start: int, end: int | None, decided: int, order: str = "glute_first") -> RepResult:
    return RepResult(0, start, {Role.GLUTE_L: start}, 30.0, order, None, None, decided, end=end)


def test_the_same_burst_under_another_start_replaces_its_record() -> None:
    """A replay's first record of a rep that another pass re-judged (its start a few ms off)
    replaces that record; the replay's cue of a rep replaces the rep's final record too."""
    t = RepTally()
    t.add(_span(2607, 3695, 2780, "undetermined"))
    t.add(_span(2601, None, 2783, "lumbar_first"))  # the cue, same burst
    assert [(r.start, r.order) for r in t.reps] == [(2601, "lumbar_first")]
    assert t.count == 1
    t.add(_span(2601, 3684, 2783, "undetermined"))  # its final record
    assert [(r.start, r.end) for r in t.reps] == [(2601, 3684)] and t.count == 1


def test_reps_of_a_set_without_rest_stay_apart() -> None:
    """The next rep's start, back-dated, may reach a little into the rep before (which ended
    at the next one's first onset): two reps, not one."""
    t = RepTally()
    t.add(_span(1000, 2000, 1100))
    t.add(_span(1980, None, 2100))  # cue of the next rep
    t.add(_span(1980, 3000, 2100))
    assert [r.start for r in t.reps] == [1000, 1980] and t.count == 2
