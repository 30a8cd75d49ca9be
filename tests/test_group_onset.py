"""The group onset (both glutes, or both lumbar sides) behind every rep's lag.

The earlier side's onset when the sides are clearly apart; the precision-weighted mean of the
two when their intervals overlap (the data cannot tell them apart); and a verdict whose
interval crosses the neutral zone is not fixed while a side's onset may still narrow it.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.contract import Role
from dsp.reps import UNDETERMINED, RepTracker, group_onset

GL, GR, LL, LR = Role.GLUTE_L, Role.GLUTE_R, Role.LUMBAR_L, Role.LUMBAR_R


def test_one_side_is_the_group() -> None:
    g = group_onset({GL: 100.0}, {GL: (90.0, 104.0)}, (GL, GR))
    assert g is not None and (g.at, g.below, g.above) == (100.0, 10.0, 4.0)
    assert group_onset({LL: 5.0}, {}, (GL, GR)) is None


def test_sides_clearly_apart_give_the_earlier_one() -> None:
    g = group_onset({GL: 100.0, GR: 160.0}, {GL: (95.0, 110.0), GR: (150.0, 170.0)}, (GL, GR))
    assert g is not None and (g.at, g.below, g.above) == (100.0, 5.0, 10.0)


def test_overlapping_sides_are_pooled_towards_the_sharper_one() -> None:
    # left: sharp (+-5); right: wide (-60/+20), 10 later and inside the left's reach
    g = group_onset({LL: 100.0, LR: 110.0}, {LL: (95.0, 105.0), LR: (50.0, 130.0)}, (LL, LR))
    assert g is not None
    assert 100.0 < g.at < 105.0  # much nearer the sharp side than the mean (105)
    assert g.above < 5.0  # narrower than either side's late half-width
    assert g.below >= 5.0  # half the sides' difference: the left may have led by that much
    # the order of the roles does not matter
    h = group_onset({LR: 110.0, LL: 100.0}, {LR: (50.0, 130.0), LL: (95.0, 105.0)}, (LR, LL))
    assert h is not None and h.at == pytest.approx(g.at) and h.below == pytest.approx(g.below)


def test_without_intervals_the_earlier_side_counts() -> None:
    """The back-dating estimator gives no interval: the lag is min - min, as it always was."""
    g = group_onset({GL: 100.0, GR: 104.0}, {GL: (100.0, 100.0), GR: (104.0, 104.0)}, (GL, GR))
    assert g is not None and (g.at, g.below, g.above) == (100.0, 0.0, 0.0)


def test_an_onset_placed_by_hand_inside_the_other_sides_interval_is_the_group_onset() -> None:
    g = group_onset({LL: 120.0, LR: 100.0}, {LR: (80.0, 130.0)}, (LL, LR))
    assert g is not None and g.at == 120.0 and g.above == 0.0 and g.below == 10.0
    # outside it: the earlier side
    g = group_onset({LL: 200.0, LR: 100.0}, {LR: (80.0, 130.0)}, (LL, LR))
    assert g is not None and g.at == 100.0


def test_pooling_beats_the_earlier_side_on_noisy_bilateral_onsets() -> None:
    """Sides that start within 0-20 ms of each other, measured with unequal noise: the pooled
    group onset misses the true first start by less than the earlier estimate does, and its
    interval still holds the true start most of the time."""
    rng = np.random.default_rng(3)
    err_min, err_pool, inside = [], [], []
    for _ in range(2000):
        t_l = 0.0
        t_r = rng.uniform(0.0, 20.0) * rng.choice((-1, 1))
        s_l, s_r = rng.uniform(5.0, 40.0, size=2)
        e_l, e_r = t_l + rng.normal(0, s_l), t_r + rng.normal(0, s_r)
        onsets = {LL: e_l, LR: e_r}
        spread = {
            LL: (e_l - 1.96 * s_l, e_l + 1.96 * s_l),
            LR: (e_r - 1.96 * s_r, e_r + 1.96 * s_r),
        }
        g = group_onset(onsets, spread, (LL, LR))
        assert g is not None
        true = min(t_l, t_r)
        err_min.append(abs(min(e_l, e_r) - true))
        err_pool.append(abs(g.at - true))
        inside.append(g.at - g.below <= true <= g.at + g.above)
    assert np.median(err_pool) < 0.95 * np.median(err_min)
    assert np.mean(inside) > 0.85


def _tracker() -> RepTracker:
    roles = {GL: 0, GR: 1, LL: 2, LR: 3}
    return RepTracker(roles, (GL, GR), (LL, LR), fs=1000.0, tolerance_ms=20.0, settle=30)


def _clean(*_: object) -> None:
    return None


def test_an_uncertain_early_verdict_waits_for_the_missing_side() -> None:
    """Both glutes and one lumbar side known, the other lumbar side at rest: the verdict could
    be fixed now, but its interval crosses the neutral zone. It waits for the missing side,
    whose sharp onset settles it."""
    rt = _tracker()
    rt.on_onset(0, 1000, 1030, _clean, (990, 1010))
    rt.on_onset(1, 1002, 1032, _clean, (992, 1012))
    rt.on_onset(2, 1060, 1100, _clean, (940, 1075))  # wide: from 60 ms before the glutes

    def at_rest(role: Role, index: int) -> int | None:
        return index  # the missing lumbar side was at rest from then on

    ci = rt._lag_ci(rt.glutes, rt.lumbars, rt._rep)  # type: ignore[arg-type]
    assert ci is not None and ci[0] <= -20 <= 20 <= ci[1]
    assert rt.decision_due(at_rest) == 1100 + 30  # not the early decision (1100): it waits
    rt.on_onset(3, 1058, 1105, _clean, (1050, 1064))
    due = rt.decision_due(at_rest)
    assert due == 1105
    result = rt.decide_now(due, _clean)
    assert result is not None and result.order == "glute_first"
    assert result.lag_ci_ms is not None and result.lag_ci_ms[0] > -20


def test_a_certain_early_verdict_is_not_delayed() -> None:
    rt = _tracker()
    rt.on_onset(0, 1000, 1030, _clean, (995, 1005))
    rt.on_onset(1, 1002, 1032, _clean, (997, 1007))
    rt.on_onset(2, 1080, 1110, _clean, (1070, 1090))

    def at_rest(role: Role, index: int) -> int | None:
        return index

    assert rt.decision_due(at_rest) == 1110
    result = rt.decide_now(1110, _clean)
    assert result is not None and result.order == "glute_first" and result.order != UNDETERMINED


def _early_lumbar_first(glute_at: int, glute_ci: tuple[int, int]):  # type: ignore[no-untyped-def]
    """A rep cued lumbar-first while the glutes were at rest; the glutes fire afterwards,
    their change point fitted at ``glute_at``. Returns (the cue, the final record)."""
    rt = _tracker()
    rt.on_onset(2, 1000, 1030, _clean, (995, 1005))
    rt.on_onset(3, 1001, 1031, _clean, (996, 1006))

    def at_rest(role: Role, index: int) -> int | None:
        return index

    due = rt.decision_due(at_rest)
    assert due == 1031
    cue = rt.decide_now(due, _clean)
    assert cue is not None and cue.order == "lumbar_first" and cue.lag_ms is None
    rt.on_onset(0, glute_at, 1200, _clean, glute_ci)
    rt.on_onset(1, glute_at + 1, 1201, _clean, glute_ci)
    for ch in range(4):
        rt.on_offset(ch)
    _, ended = rt.close_if_quiet(1500, _clean)
    assert ended is not None
    return cue, ended.result


def test_an_early_lumbar_first_verdict_is_revised_when_the_glutes_fitted_onset_came_first() -> None:
    cue, final = _early_lumbar_first(940, (930, 950))
    assert final.cued == "lumbar_first"
    assert final.order == "glute_first" and final.lag_ms is not None and final.lag_ms > 20
    assert "revised" in final.reason and "(the cue said lumbar first)" in final.reason
    assert cue.lag_below_ms == -20 and final.lag_below_ms is None  # the cue's bound, not this


def test_an_early_lumbar_first_verdict_the_glutes_bear_out_is_kept() -> None:
    _, final = _early_lumbar_first(1090, (1080, 1100))
    assert final.cued is None and final.order == "lumbar_first" and final.reason == (
        "glutes still at rest 20 ms after the lumbar onset"
    )
    assert final.lag_ms is not None and final.lag_ms < -20


def test_a_revision_too_uncertain_to_say_is_undetermined() -> None:
    _, final = _early_lumbar_first(990, (850, 1040))
    assert final.cued == "lumbar_first" and final.order == UNDETERMINED
    assert "95 % interval" in final.reason and "crosses the neutral zone" in final.reason


def test_the_rep_table_shows_the_cue_beside_a_revised_verdict(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.athlete_view import AthleteView
    from app.review import RepTable
    from devices.session.tally import RepTally

    cue, final = _early_lumbar_first(940, (930, 950))
    table = RepTable()
    qtbot.addWidget(table)
    table.fs = 1000.0
    table.show_rep(final)
    assert table.item(0, 3).text() == "glute first (cue: lumbar first)"
    assert "revised" in table.item(0, RepTable.REASON).text()
    # the athlete saw the cue; the final record says it was revised, and the scores count it
    tally = RepTally()
    view = AthleteView(tally)
    qtbot.addWidget(view)
    tally.add(cue)
    view.show_rep(cue)
    assert view.lag_label.text() == "< -20 ms" and view.session_value.text() == "0%"
    tally.add(final)
    view.show_final(final)
    assert view.lag_label.text() == "revised: glute first"
    assert view.session_value.text() == "100%"
