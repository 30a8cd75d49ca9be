"""Smoke tests of the benchmark's scoring and runner on a tiny set (no wall-clock asserts)."""

from __future__ import annotations

import importlib.util
import math

import pytest

from bench import accuracy
from bench.metrics import (
    GLUTE_FIRST,
    LUMBAR_FIRST,
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
def tiny_recordings() -> list[tuple[accuracy.Spec, object, GroundTruth]]:
    out = []
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
    for set_name in accuracy.SETS:
        assert set_name in results["sets"]
        checks = results["sets"][set_name]["targets"]
        assert checks and all(isinstance(c["pass"], bool) for c in checks)


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
