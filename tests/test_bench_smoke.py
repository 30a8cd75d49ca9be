"""Smoke tests of the benchmark's scoring and runner on a tiny set (no wall-clock asserts)."""

from __future__ import annotations

import importlib.util
import math

import pytest

from bench import accuracy
from bench.metrics import (
    GLUTE_FIRST,
    LUMBAR_FIRST,
    UNDETERMINED,
    Detection,
    GroundTruth,
    Verdict,
    aggregate,
    match_onsets,
    score_recording,
)
from dsp.contract import Role

TINY = accuracy.Config(recordings=2, duration_s=12.0, peers=False, ablation=False, real=False)


@pytest.fixture(scope="module")
def tiny_recordings() -> list[tuple[accuracy.Spec, accuracy.Recording, GroundTruth]]:
    out: list[tuple[accuracy.Spec, accuracy.Recording, GroundTruth]] = []
    for spec in accuracy.specs("clean", 2, 12.0):
        rec = accuracy.make_recording(spec)
        out.append((spec, rec, accuracy.truth_of(rec, spec.label)))
    return out


def _in_unit(value: float | None) -> bool:
    return value is not None and 0.0 <= value <= 1.0


def test_match_is_greedy_nearest_one_to_one_within_window() -> None:
    # 1.00 is nearest to 1.01; 1.05 then takes nothing else in range; 3.0 is out of range
    pairs = match_onsets([1.05, 1.01, 3.0], [1.0, 2.0], window_s=0.15)
    assert pairs == [(1, 0)]
    assert match_onsets([], [1.0]) == []
    assert match_onsets([1.0], []) == []
    # exactly at the window edge still matches
    assert match_onsets([1.15], [1.0], window_s=0.15) == [(0, 0)]


def test_perfect_detector_scores_perfectly(tiny_recordings: list) -> None:
    scores = []
    for _, _, truth in tiny_recordings:
        onsets: dict[Role, list[float]] = {}
        verdicts = []
        for rep in truth.reps:
            for role, t in rep.onsets.items():
                onsets.setdefault(role, []).append(t)
            lag = rep.lag_ms
            order = GLUTE_FIRST if lag is not None and lag > 0 else LUMBAR_FIRST
            verdicts.append(Verdict(dict(rep.onsets), lag, order))
        plain = score_recording(truth, Detection(onsets))
        with_verdicts = score_recording(truth, Detection(onsets, verdicts))
        scores.append((plain, with_verdicts))
    for m in (aggregate(s for s, _ in scores), aggregate(v for _, v in scores)):
        assert m["n_true_onsets"] > 0 and m["n_reps"] >= 6
        assert m["onset_recall"] == 1.0
        assert m["onset_precision"] == 1.0
        assert m["median_abs_err_ms"] == 0.0
        assert m["p95_abs_err_ms"] == 0.0
        assert m["bias_ms"] == 0.0
        assert m["rep_recall"] == 1.0
        assert m["lag_err_ms"] == pytest.approx(0.0, abs=1e-5)  # truth lags are rounded to 1 ns
        assert m["order_accuracy"] == 1.0
        assert m["false_alarms_by_kind"] == {}


def test_late_and_spurious_detections_are_counted(tiny_recordings: list) -> None:
    _, _, truth = tiny_recordings[0]
    onsets: dict[Role, list[float]] = {}
    for rep in truth.reps:
        for role, t in rep.onsets.items():
            onsets.setdefault(role, []).append(t + 0.010)  # 10 ms late everywhere
    onsets[Role.GLUTE_L].append(truth.reps[0].onsets[Role.GLUTE_L] + 0.6)  # inside the burst
    m = aggregate([score_recording(truth, Detection(onsets))])
    assert m["onset_recall"] == 1.0
    assert m["onset_precision"] < 1.0
    assert m["bias_ms"] == pytest.approx(10.0, abs=1e-6)
    assert m["median_abs_err_ms"] == pytest.approx(10.0, abs=1e-6)
    assert sum(m["false_alarms_by_kind"].values()) == 1
    # nothing detected: recall 0, precision undefined, no crash
    empty = aggregate([score_recording(truth, Detection({}))])
    assert empty["onset_recall"] == 0.0 and empty["onset_precision"] is None
    assert empty["rep_recall"] == 0.0 and empty["order_accuracy"] == 0.0


def test_fireorder_metrics_are_sane(tiny_recordings: list) -> None:
    scores = [
        score_recording(truth, accuracy.run_fireorder(accuracy.full_array(rec), rec.info))
        for _, rec, truth in tiny_recordings
    ]
    m = aggregate(scores)
    for key in ("onset_recall", "onset_precision", "rep_recall", "order_accuracy"):
        assert _in_unit(m[key]), (key, m[key])
    assert m["onset_recall"] > 0.5  # it does find the bursts of a clean recording
    assert m["median_abs_err_ms"] is not None and math.isfinite(m["median_abs_err_ms"])
    assert m["median_abs_err_ms"] <= accuracy.WINDOW_S * 1000
    assert m["n_true_onsets"] == sum(len(s.onsets) for s in scores)


def test_tiny_run_renders_markdown() -> None:
    results = accuracy.run(TINY)
    text = accuracy.markdown(results)
    assert accuracy.FIREORDER in text
    assert "decided p50 (ms)" in text
    assert set(accuracy.SETS) >= {"clean", "hard", "slow", "mu-clean", "mu-hard"}
    for set_name in accuracy.SETS:
        assert set_name in results["sets"]
        assert f"### {set_name} " in text
        set_out = results["sets"][set_name]
        assert set_out["generator"]["generator"] in (accuracy.SIMULATOR, accuracy.MUPOOL)
        checks = set_out["targets"]
        assert len(checks) == len(accuracy.TARGETS.get(set_name, ()))
        assert all(isinstance(c["pass"], bool) for c in checks)
        m = set_out["metrics"][accuracy.FIREORDER]
        assert m["n_true_onsets"] > 0
        # decision latency where verdicts were given (a 12 s file at 5-20 dB may give none)
        assert (m["n_decided"] > 0) == (m["decision_p50_ms"] is not None)
        if set_name in ("clean", "slow", "mu-clean"):
            assert m["n_decided"] > 0
        if m["n_decided"]:
            assert m["decision_p95_ms"] >= m["decision_p50_ms"]
    assert results["sets"]["mu-clean"]["generator"]["generator"] == accuracy.MUPOOL
    assert results["sets"]["slow"]["generator"]["overrides"] == {"rise_ms": (80.0, 350.0)}


def test_target_comparisons() -> None:
    assert accuracy.passes(-4.0, "abs<=", 5.0) and not accuracy.passes(-6.0, "abs<=", 5.0)
    assert accuracy.passes(0.99, ">=", 0.98) and not accuracy.passes(None, ">=", 0.0)
    assert accuracy.passes(15.0, "<=", 15.0)
    checks = accuracy.check_targets("mu-clean", {"bias_ms": -7.0, "onset_recall": 1.0})
    by_metric = {c["metric"]: c["pass"] for c in checks}
    assert by_metric["bias_ms"] is False and by_metric["onset_recall"] is True
    assert accuracy.check_targets("slow", {}) == []


def test_decision_latency(tiny_recordings: list) -> None:
    _, _, truth = tiny_recordings[0]
    onsets: dict[Role, list[float]] = {}
    verdicts = []
    for k, rep in enumerate(truth.reps):
        for role, t in rep.onsets.items():
            onsets.setdefault(role, []).append(t)
        lumbar = min(t for r, t in rep.onsets.items() if r.is_lumbar)
        order = UNDETERMINED if k == 0 else GLUTE_FIRST
        verdicts.append(Verdict(dict(rep.onsets), rep.lag_ms, order, decided_s=lumbar + 0.04))
    m = aggregate([score_recording(truth, Detection(onsets, verdicts))])
    n_scored = sum(truth.scored(r) for r in truth.reps)
    assert m["n_decided"] == n_scored - 1  # the undetermined verdict is left out
    assert m["decision_p50_ms"] == pytest.approx(40.0, abs=1e-6)
    assert m["decision_p95_ms"] == pytest.approx(40.0, abs=1e-6)
    # peers give no verdicts: no latency
    assert aggregate([score_recording(truth, Detection(onsets))])["decision_p50_ms"] is None


def test_fireorder_fills_decision_times(tiny_recordings: list) -> None:
    _, rec, _ = tiny_recordings[0]
    det = accuracy.run_fireorder(accuracy.full_array(rec), rec.info)
    assert det.verdicts
    assert all(v.decided_s is not None and 0 <= v.decided_s <= 12.0 for v in det.verdicts)


@pytest.mark.parametrize("set_name", ["mu-hard", "clean"])
def test_rest_window_is_at_rest(set_name: str) -> None:
    for spec in accuracy.specs(set_name, 2, 12.0):
        truth = accuracy.truth_of(accuracy.make_recording(spec), spec.label)
        a, b = accuracy.rest_window(truth)
        lo, hi = a / truth.fs, b / truth.fs
        assert hi - lo >= accuracy.MIN_REST_S - 1e-9
        for spans in truth.spans.values():
            for on, off in spans:
                assert hi <= on or lo >= off, (spec.label, (lo, hi), (on, off))
    if set_name == "clean":  # files that start at rest keep the rule they always had
        first = min(t for rep in truth.reps for t in rep.onsets.values())
        assert (a, b) == (round(0.1 * truth.fs), round((first - 0.05) * truth.fs))


def test_mid_burst_false_alarms_are_classified() -> None:
    spec = accuracy.specs("mu-hard", 2, 12.0)[1]
    rec = accuracy.make_recording(spec)
    truth = accuracy.truth_of(rec, spec.label)
    at_start = [(on, off) for on, off in truth.spans[Role.GLUTE_L] if on < 0]
    if not at_start:
        pytest.skip("this file does not start mid-burst")
    _, off = at_start[0]
    det = Detection({Role.GLUTE_L: [min(0.05, off / 2)]})
    m = aggregate([score_recording(truth, det)])
    assert list(m["false_alarms_by_kind"]) == [
        "inside a burst already active at the start of the file"
    ]


def test_peers_score_in_range(tiny_recordings: list) -> None:
    pytest.importorskip("neurokit2")
    if importlib.util.find_spec("biosppy") is None:
        pytest.skip("biosppy not installed")
    from bench import peers

    _, rec, truth = tiny_recordings[0]
    rest = accuracy.rest_window(truth)
    for peer in peers.PEERS:
        det = accuracy.run_peer(peer.detect, rec, rest)
        m = aggregate([score_recording(truth, det)])
        assert _in_unit(m["onset_recall"]), peer.name
        assert m["onset_precision"] is None or _in_unit(m["onset_precision"]), peer.name
