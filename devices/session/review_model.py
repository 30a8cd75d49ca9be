"""A recording's reps as reviewed: the analysis with the reviewer's corrections and notes.

The report (``fireorder report``, the window's Ctrl+E) and the progress view read reps from
here, so a rep corrected in review reads the same everywhere: its corrected onsets, lag and
verdict, with the detected ones kept beside them. Works on the ``fireorder.analysis/1``
document (:meth:`dsp.analysis.Analysis.to_dict`); no Qt.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from devices.files.sidecar import (
    Correction,
    Note,
    ReviewStore,
    is_user_annotation,
    standing_corrections,
)
from dsp.contract import Role
from dsp.reps import ORDERS, classify, group_onset

log = logging.getLogger(__name__)

#: a correction belongs to the rep whose start is this close (s): both are the same sample
#: index over fs, rounded to 0.1 ms in the two documents
MATCH_S = 0.002

@dataclass(frozen=True)
class TimelineNote:
    """A note in file time (s), with the rep (1-based) it falls in, if any."""

    t_s: float
    text: str
    rep: int | None
    source: str  # "review" (made in review) or "recording" (a BDF+ annotation of the file)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t_s": round(self.t_s, 4),
            "text": self.text,
            "rep": self.rep,
            "source": self.source,
        }


def _lag_ms(
    onsets: Mapping[str, float | None],
    glutes: Iterable[str],
    lumbars: Iterable[str],
    spread: Mapping[str, tuple[float, float]] | None = None,
) -> float | None:
    """Lumbar group onset minus glute group onset (ms), grouped as the detector groups them
    (:func:`dsp.reps.group_onset`; ``spread``: the onsets' intervals, s)."""
    known = {r: float(v) for r, v in onsets.items() if v is not None}
    g = group_onset(known, spread or {}, glutes)
    lu = group_onset(known, spread or {}, lumbars)
    if g is None or lu is None:
        return None
    return round((lu.at - g.at) * 1000.0, 3)


def _roles(kind: str) -> set[str]:
    return {r.value for r in Role if (r.is_glute if kind == "glute" else r.is_lumbar)}


def _side_roles(side: str) -> tuple[str, str]:
    suffix = "_l" if side == "left" else "_r"
    return "glute" + suffix, "lumbar" + suffix


def _rep_at(reps: Sequence[Mapping[str, Any]], t_s: float, slack_s: float = 0.0) -> int | None:
    """Position in ``reps`` of the rep whose span holds ``t_s``."""
    for k, rep in enumerate(reps):
        start, end = rep.get("start_s"), rep.get("end_s")
        if start is None:
            continue
        end = float(end) if end is not None else float(start) + 0.5
        if float(start) - slack_s <= t_s <= end + slack_s:
            return k
    return None


def _apply(rep: dict[str, Any], fixes: Sequence[Correction], tolerance_ms: float) -> None:
    """Corrections of one rep, in the order they were made (the last one of a role wins)."""
    detected = {
        "onsets": dict(rep.get("onsets") or {}),
        "lag_ms": rep.get("lag_ms"),
        "order": rep.get("order"),
        "left": copy.deepcopy(rep.get("left")),
        "right": copy.deepcopy(rep.get("right")),
    }
    onsets = dict(rep.get("onsets") or {})
    for c in fixes:
        onsets[c.role] = round(c.corrected_s, 4)
    moved = {c.role for c in fixes}
    # A group with an onset placed by hand began when its first side did (no pooling with
    # intervals: see devices.session.controller.corrected); a group left as detected keeps
    # its onsets' intervals and is pooled as the detector pools it.
    touched = {kind for kind in ("glute", "lumbar") if moved & _roles(kind)}
    spread = {
        r: (float(ci[0]), float(ci[1]))
        for r, ci in (rep.get("onset_ci_s") or {}).items()
        if not any(r in _roles(kind) for kind in touched) and ci is not None and None not in ci
    }
    lag = _lag_ms(onsets, _roles("glute"), _roles("lumbar"), spread)
    roles = sorted({c.role for c in fixes})
    rep.update(
        onsets=onsets,
        lag_ms=lag,
        lag_ci_ms=None,  # a hand-placed onset has no estimator interval
        order=str(classify(lag, tolerance_ms)),
        corrected=True,
        corrected_roles=roles,
        detected=detected,
        reason=", ".join(roles) + " onset corrected by hand",
    )
    for side in ("left", "right"):
        g, lu = _side_roles(side)
        if rep.get(side) is None or not {g, lu} & set(roles):
            continue
        side_lag = _lag_ms(onsets, [g], [lu])
        rep[side] = {
            "lag_ms": side_lag,
            "order": str(classify(side_lag, tolerance_ms)),
            "lag_ci_ms": None,
        }


def _summary(reps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts = {str(o): sum(r.get("order") == o for r in reps) for o in ORDERS}
    lags = [float(r["lag_ms"]) for r in reps if r.get("lag_ms") is not None]
    return {
        "reps": len(reps),
        **counts,
        "median_lag_ms": round(float(median(lags)), 3) if lags else None,
    }


def user_annotations(annotations: Iterable[Any]) -> list[tuple[float, str]]:
    """The file's own marks and notes (``onset_s``, ``text``), not fireorder's machine events."""
    out = []
    for a in annotations:
        text = str(getattr(a, "text", "")).strip()
        if text and is_user_annotation(text):
            out.append((float(a.onset_s), text))
    return out


def reviewed(
    doc: Mapping[str, Any],
    corrections: Sequence[Correction] = (),
    notes: Sequence[Note] = (),
    *,
    annotations: Iterable[Any] = (),
) -> dict[str, Any]:
    """``doc`` with the review applied (a new document; ``doc`` is not changed).

    Every rep gets ``corrected`` (bool); a corrected one has its corrected ``onsets``,
    ``lag_ms``, ``order`` (and the sides it touches), ``corrected_roles`` and ``detected``
    (the onsets, lag, verdict and sides the analysis found). ``summary`` counts the reviewed
    reps; ``detected_summary`` is the analysis's. ``notes`` are the review's notes and the
    file's user annotations in file time, each with the rep (1-based) it falls in.
    ``review`` counts what was applied, and the corrections that matched no rep (made with
    other settings, where the analysis found other reps).
    """
    out = copy.deepcopy(dict(doc))
    reps: list[dict[str, Any]] = [dict(r) for r in out.get("reps", [])]
    tolerance_ms = float((out.get("settings") or {}).get("tolerance_ms", 20.0))
    by_rep: dict[int, list[Correction]] = {}
    unmatched = 0
    corrections = standing_corrections(corrections)  # (an onset put back is no correction)
    for c in corrections:
        k = next(
            (
                i
                for i, r in enumerate(reps)
                if r.get("start_s") is not None
                and abs(float(r["start_s"]) - c.rep_start_s) <= MATCH_S
            ),
            None,
        )
        if k is None:
            unmatched += 1
            continue
        by_rep.setdefault(k, []).append(c)
    for k, rep in enumerate(reps):
        rep["corrected"] = False
        if k in by_rep:
            _apply(rep, by_rep[k], tolerance_ms)
    timeline = [(n.t_s, n.text, "review") for n in notes]
    timeline += [(t, text, "recording") for t, text in user_annotations(annotations)]
    placed = []
    for t, text, source in sorted(timeline, key=lambda x: x[0]):
        k = _rep_at(reps, t)
        rep_no = None if k is None else int(reps[k]["index"]) + 1
        placed.append(TimelineNote(t, text, rep_no, source).to_dict())
    out["reps"] = reps
    out["detected_summary"] = out.get("summary")
    out["summary"] = _summary(reps)
    out["notes"] = placed
    out["review"] = {
        "corrected_reps": len(by_rep),
        "corrections": len(corrections) - unmatched,
        "unmatched_corrections": unmatched,
        "notes": len(placed),
    }
    if unmatched:
        log.info("%d correction(s) match no rep of this analysis", unmatched)
    return out


def reviewed_document(
    doc: Mapping[str, Any], recording: str, annotations: Iterable[Any] = ()
) -> dict[str, Any]:
    """:func:`reviewed` with the review stored for ``recording`` (see ReviewStore)."""
    store = ReviewStore(recording)
    out = reviewed(doc, store.corrections(), store.notes(), annotations=annotations)
    out["review"]["kept_in"] = str(store.path)
    if store.notice:
        out["review"]["notice"] = store.notice
    return out
