"""Scoring detected onsets and rep verdicts against ground truth (pure numpy, no peers).

Onsets are matched per channel, greedily by nearest distance within ``window_s`` (+-150 ms),
one to one. A true rep is *found* when at least one glute and one lumbar onset of the
detector were matched to that rep's true onsets. The lag of a rep is the earliest lumbar onset
minus the earliest glute onset (ms; positive = glute first), the same definition the
simulator's truth and fireorder's verdicts use.

Decision latency (fireorder only): for each true rep that got a verdict other than
``undetermined``, the time the verdict was decided minus the rep's true earliest lumbar onset
(ms; the verdict can only be decided once the lumbar muscle has fired, so this is how long
after the lumbar onset the user is told the order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp.contract import Role

WINDOW_S = 0.150
#: order accuracy is scored on reps whose true |lag| is at least this
ORDER_MIN_LAG_MS = 40.0
GLUTE_FIRST = "glute_first"
LUMBAR_FIRST = "lumbar_first"
UNDETERMINED = "undetermined"

# Categories of false-positive onsets (for the diagnosis).
FP_TRANSIENT = "near a motion transient"
FP_IN_BURST = "inside a true burst whose onset was found (re-trigger)"
FP_LATE = "inside a true burst whose onset was missed (> 150 ms late)"
FP_AFTER_BURST = "within 0.5 s after a burst (decay)"
FP_REST_LUMBAR = "at rest, lumbar (ECG/noise)"
FP_REST_GLUTE = "at rest, glute (noise)"
FP_AT_START = "inside a burst already active at the start of the file"


@dataclass(frozen=True)
class TrueRep:
    index: int
    onsets: dict[Role, float]  # seconds
    lag_ms: float | None
    rise_ms: dict[Role, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GroundTruth:
    """What a recording really contains. Onsets later than ``score_until_s`` are not scored
    (neither as hits nor as false alarms): a burst starting at the very end cannot be seen."""

    fs: float
    duration_s: float
    reps: tuple[TrueRep, ...]
    score_until_s: float
    #: true active intervals (onset, offset) per role, for classifying false alarms
    spans: dict[Role, list[tuple[float, float]]] = field(default_factory=dict)
    #: times (s) of motion transients per role
    transients: dict[Role, list[float]] = field(default_factory=dict)
    snr_db: dict[Role, float] = field(default_factory=dict)
    label: str = ""

    def scored(self, rep: TrueRep) -> bool:
        return all(t <= self.score_until_s for t in rep.onsets.values())


@dataclass(frozen=True)
class Verdict:
    """A detector's own rep verdict (fireorder): onsets in seconds, lag, order label, and when
    the verdict was decided (seconds, stream time)."""

    onsets: dict[Role, float | None]
    lag_ms: float | None
    order: str
    decided_s: float | None = None
    #: the verdict's approximate 95 % interval of the lag (ms), where the detector gives one
    lag_ci_ms: tuple[float, float] | None = None


@dataclass
class Detection:
    onsets: dict[Role, list[float]]  # seconds, per role
    verdicts: list[Verdict] | None = None
    error: str | None = None  # the detector failed on this recording (it then found nothing)


@dataclass(frozen=True)
class OnsetRecord:
    role: Role
    true_s: float
    det_s: float | None
    rep: int
    snr_db: float | None
    rise_ms: float | None

    @property
    def err_ms(self) -> float | None:
        return None if self.det_s is None else (self.det_s - self.true_s) * 1000.0


@dataclass(frozen=True)
class FalseAlarm:
    role: Role
    det_s: float
    category: str


@dataclass(frozen=True)
class RepOutcome:
    index: int
    true_lag_ms: float | None
    found: bool
    onset_lag_ms: float | None  # from the matched onsets
    verdict_lag_ms: float | None  # from the detector's verdict (fireorder)
    verdict_order: str | None
    has_verdicts: bool
    #: verdict decided - true earliest lumbar onset (ms), if the verdict is not undetermined
    decision_latency_ms: float | None = None
    verdict_lag_ci_ms: tuple[float, float] | None = None

    @property
    def lag_ms(self) -> float | None:
        """The lag the detector reports: its verdict's if it gives verdicts, else onset-based."""
        return self.verdict_lag_ms if self.has_verdicts else self.onset_lag_ms

    @property
    def order_correct(self) -> bool:
        true = self.true_lag_ms
        if true is None:
            return False
        if self.has_verdicts:
            want = GLUTE_FIRST if true > 0 else LUMBAR_FIRST
            return self.verdict_order == want
        lag = self.onset_lag_ms
        return lag is not None and lag != 0 and (lag > 0) == (true > 0)


@dataclass
class RecordingScore:
    label: str
    fs: float
    onsets: list[OnsetRecord]
    false_alarms: list[FalseAlarm]
    n_detected: int  # scored detections (matched to a scored onset, or false alarms)
    reps: list[RepOutcome]
    spurious_verdicts: int = 0
    error: str | None = None


def match_onsets(
    detected: Sequence[float], true: Sequence[float], window_s: float = WINDOW_S
) -> list[tuple[int, int]]:
    """Greedy nearest one-to-one matching: ``(detected position, true position)`` pairs."""
    det = np.asarray(detected, dtype=float)
    tru = np.asarray(true, dtype=float)
    if det.size == 0 or tru.size == 0:
        return []
    dist = np.abs(det[:, None] - tru[None, :])
    cand = np.argwhere(dist <= window_s + 1e-12)
    if cand.size == 0:
        return []
    order = np.lexsort((cand[:, 1], cand[:, 0], dist[cand[:, 0], cand[:, 1]]))
    used_d: set[int] = set()
    used_t: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for i, j in cand[order].tolist():
        if i in used_d or j in used_t:
            continue
        used_d.add(i)
        used_t.add(j)
        pairs.append((i, j))
    return sorted(pairs, key=lambda p: p[1])


def _key(t: float) -> int:
    return round(t * 1e6)


def _classify_false_alarm(truth: GroundTruth, role: Role, t: float, found: set[float]) -> str:
    """Why a detection matched nothing; ``found`` holds the role's true onsets that were hit."""
    for tt in truth.transients.get(role, []):
        if tt - 0.05 <= t <= tt + 0.5:
            return FP_TRANSIENT
    for on, off in truth.spans.get(role, []):
        if on < t <= off:
            if on < 0:
                return FP_AT_START
            return FP_IN_BURST if on in found else FP_LATE
        if off < t <= off + 0.5:
            return FP_AFTER_BURST
    return FP_REST_LUMBAR if role.is_lumbar else FP_REST_GLUTE


def score_recording(
    truth: GroundTruth, det: Detection, window_s: float = WINDOW_S
) -> RecordingScore:
    """Match one detector's output on one recording against its truth."""
    until = truth.score_until_s
    records: list[OnsetRecord] = []
    false_alarms: list[FalseAlarm] = []
    n_detected = 0
    matched: dict[tuple[Role, int], int] = {}  # (role, detection time key) -> true rep index
    rep_det: dict[int, dict[Role, float]] = {}  # true rep index -> role -> matched detection
    roles = sorted(
        {r for rep in truth.reps for r in rep.onsets} | set(det.onsets), key=lambda r: r.value
    )
    for role in roles:
        true_list = [(rep, rep.onsets[role]) for rep in truth.reps if role in rep.onsets]
        detected = sorted(det.onsets.get(role, []))
        pairs = match_onsets(detected, [t for _, t in true_list], window_s)
        det_of_true = {j: i for i, j in pairs}
        matched_det = {i for i, _ in pairs}
        for j, (rep, t) in enumerate(true_list):
            hit_s = detected[det_of_true[j]] if j in det_of_true else None
            if hit_s is not None:
                matched[(role, _key(hit_s))] = rep.index
                rep_det.setdefault(rep.index, {})[role] = hit_s
            if not truth.scored(rep):
                continue
            if hit_s is not None:
                n_detected += 1
            records.append(
                OnsetRecord(
                    role, t, hit_s, rep.index, truth.snr_db.get(role), rep.rise_ms.get(role)
                )
            )
        hit = {t for j, (_, t) in enumerate(true_list) if j in det_of_true}
        for i, d in enumerate(detected):
            if i not in matched_det and d <= until:
                n_detected += 1
                kind = _classify_false_alarm(truth, role, d, hit)
                false_alarms.append(FalseAlarm(role, d, kind))

    # fireorder's verdicts: attach each to the true rep most of its onsets were matched to
    verdict_of: dict[int, Verdict] = {}
    spurious = 0
    if det.verdicts is not None:
        for verdict in det.verdicts:
            votes: dict[int, int] = {}
            for role, vt in verdict.onsets.items():
                if vt is not None and (role, _key(vt)) in matched:
                    idx = matched[(role, _key(vt))]
                    votes[idx] = votes.get(idx, 0) + 1
            if not votes:
                starts = [t for t in verdict.onsets.values() if t is not None]
                if starts and min(starts) <= until:
                    spurious += 1
                continue
            best = max(votes.items(), key=lambda kv: (kv[1], -kv[0]))[0]
            verdict_of.setdefault(best, verdict)  # the first verdict shown for that rep counts

    reps: list[RepOutcome] = []
    for rep in truth.reps:
        if not truth.scored(rep):
            continue
        got = rep_det.get(rep.index, {})
        g = [t for r, t in got.items() if r.is_glute]
        lu = [t for r, t in got.items() if r.is_lumbar]
        found = bool(g and lu)
        onset_lag = (min(lu) - min(g)) * 1000.0 if found else None
        v = verdict_of.get(rep.index)
        latency = None
        true_lumbar = [t for r, t in rep.onsets.items() if r.is_lumbar]
        if v is not None and v.decided_s is not None and v.order != UNDETERMINED and true_lumbar:
            latency = (v.decided_s - min(true_lumbar)) * 1000.0
        reps.append(
            RepOutcome(
                index=rep.index,
                true_lag_ms=rep.lag_ms,
                found=found,
                onset_lag_ms=onset_lag,
                verdict_lag_ms=v.lag_ms if v else None,
                verdict_order=v.order if v else None,
                has_verdicts=det.verdicts is not None,
                decision_latency_ms=latency,
                verdict_lag_ci_ms=v.lag_ci_ms if v else None,
            )
        )
    return RecordingScore(
        label=truth.label,
        fs=truth.fs,
        onsets=records,
        false_alarms=false_alarms,
        n_detected=n_detected,
        reps=reps,
        spurious_verdicts=spurious,
        error=det.error,
    )


# --------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


OnsetFilter = Callable[[OnsetRecord], bool]


def aggregate(
    scores: Iterable[RecordingScore],
    role_filter: Callable[[Role], bool] | None = None,
) -> dict[str, Any]:
    """Pool recordings into one metrics record (``role_filter`` restricts onset metrics)."""
    scores = list(scores)
    keep = role_filter or (lambda _r: True)
    recs = [o for s in scores for o in s.onsets if keep(o.role)]
    fas = [f for s in scores for f in s.false_alarms if keep(f.role)]
    hits = [o for o in recs if o.det_s is not None]
    errs = [o.err_ms for o in hits if o.err_ms is not None]
    abs_errs = [abs(e) for e in errs]
    n_det = len(hits) + len(fas)
    reps = [r for s in scores for r in s.reps]
    found = [r for r in reps if r.found]
    lag_diffs = [
        r.lag_ms - r.true_lag_ms for r in reps if r.lag_ms is not None and r.true_lag_ms is not None
    ]
    lag_errs = [abs(d) for d in lag_diffs]
    ordered = [
        r for r in reps if r.true_lag_ms is not None and abs(r.true_lag_ms) >= ORDER_MIN_LAG_MS
    ]
    fa_cats: dict[str, int] = {}
    for f in fas:
        fa_cats[f.category] = fa_cats.get(f.category, 0) + 1
    out: dict[str, Any] = {
        "recordings": len(scores),
        "failed_recordings": sum(s.error is not None for s in scores),
        "n_true_onsets": len(recs),
        "n_detected": n_det,
        "n_matched": len(hits),
        "onset_recall": _ratio(len(hits), len(recs)),
        "onset_precision": _ratio(len(hits), n_det),
        "median_abs_err_ms": _median(abs_errs),
        "p95_abs_err_ms": _pct(abs_errs, 95),
        "bias_ms": _median(errs),
        "false_alarms_by_kind": dict(sorted(fa_cats.items(), key=lambda kv: -kv[1])),
        "n_reps": len(reps),
        "rep_recall": _ratio(len(found), len(reps)),
        "n_lag": len(lag_errs),
        "lag_err_ms": _median(lag_errs),
        "lag_err_p95_ms": _pct(lag_errs, 95),
        "lag_bias_ms": _median(lag_diffs),
        "n_order": len(ordered),
        "order_accuracy": _ratio(sum(r.order_correct for r in ordered), len(ordered)),
        "n_decided": 0,
        "decision_p50_ms": None,
        "decision_p95_ms": None,
    }
    if reps and reps[0].has_verdicts:
        verdict_counts: dict[str, int] = {}
        for r in ordered:
            key = r.verdict_order or "no verdict"
            verdict_counts[key] = verdict_counts.get(key, 0) + 1
        out["spurious_verdicts"] = sum(s.spurious_verdicts for s in scores)
        out["verdicts_on_ordered_reps"] = verdict_counts
        onset_lag_errs = [
            abs(r.onset_lag_ms - r.true_lag_ms)
            for r in reps
            if r.onset_lag_ms is not None and r.true_lag_ms is not None
        ]
        out["onset_lag_err_ms"] = _median(onset_lag_errs)
        latencies = [r.decision_latency_ms for r in reps if r.decision_latency_ms is not None]
        out["n_decided"] = len(latencies)
        out["decision_p50_ms"] = _pct(latencies, 50)
        out["decision_p95_ms"] = _pct(latencies, 95)
        # Honest uncertainty: how often the lag interval holds the true lag, how often the
        # verdict is "undetermined" on a rep whose order is clear, and how often a verdict
        # that was given is right.
        with_ci = [
            (r.verdict_lag_ci_ms, r.true_lag_ms)
            for r in reps
            if r.verdict_lag_ci_ms is not None and r.true_lag_ms is not None
        ]
        out["lag_ci_coverage"] = _ratio(
            sum(lo <= true <= hi for (lo, hi), true in with_ci), len(with_ci)
        )
        undetermined = [r for r in ordered if r.verdict_order == UNDETERMINED]
        given = [r for r in ordered if r.verdict_order not in (None, UNDETERMINED)]
        out["undetermined_rate"] = _ratio(len(undetermined), len(ordered))
        out["given_order_accuracy"] = _ratio(sum(r.order_correct for r in given), len(given))
    return out


def onset_breakdown(
    scores: Sequence[RecordingScore], key: Callable[[OnsetRecord], Any]
) -> dict[str, dict[str, Any]]:
    """Recall, median |error| and bias of the true onsets grouped by ``key``."""
    groups: dict[Any, list[OnsetRecord]] = {}
    for s in scores:
        for o in s.onsets:
            groups.setdefault(key(o), []).append(o)
    out: dict[str, dict[str, Any]] = {}
    for k in sorted(groups, key=str):
        recs = groups[k]
        errs = [o.err_ms for o in recs if o.err_ms is not None]
        out[str(k)] = {
            "n_true": len(recs),
            "recall": _ratio(len(errs), len(recs)),
            "median_abs_err_ms": _median([abs(e) for e in errs]),
            "bias_ms": _median(errs),
        }
    return out
