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
