"""Ensemble of reps: every rep's envelopes aligned at its first glute onset, averaged per
verdict with a spread band (what EMGworks calls a cyclical analysis).

One rep's trace says little (the lag varies by ±100 ms from rep to rep); the average of the
glute-first reps beside the average of the lumbar-first ones shows how the two patterns
differ. Qt-free: the window's ensemble view and the report draw the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dsp.contract import Chunk, Role, StreamInfo
from dsp.settings import DspSettings

PRE_MS = 300.0
POST_MS = 700.0
SPREAD = (25.0, 75.0)  # percentiles of the band: the middle half of the reps
MIN_REPS = 2  # one rep is its own trace, not an average


@dataclass(frozen=True)
class Curve:
    """Mean envelope of one muscle over the reps of one verdict, with its spread band."""

    verdict: str
    role: Role
    n: int  # reps behind the curve
    mean: NDArray[np.float64]  # µV, one value per point of Ensemble.t_ms
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]


@dataclass(frozen=True)
class Ensemble:
    t_ms: NDArray[np.float64]  # time from the first glute onset of each rep
    curves: list[Curve] = field(default_factory=list)
    reps: dict[str, int] = field(default_factory=dict)  # verdict -> reps aligned
    skipped: int = 0  # reps without a glute onset, or whose window leaves the data

    def of(self, verdict: str) -> list[Curve]:
        return [c for c in self.curves if c.verdict == verdict]


def _first_glute_s(rep: Mapping[str, Any]) -> float | None:
    times = [
        float(v)
        for r, v in (rep.get("onsets") or {}).items()
        if v is not None and r in {x.value for x in Role if x.is_glute}
    ]
    return min(times) if times else None


def ensemble(
    doc: Mapping[str, Any],
    data: NDArray[np.float64],
    info: StreamInfo,
    settings: DspSettings | None = None,
    *,
    pre_ms: float = PRE_MS,
    post_ms: float = POST_MS,
    step_ms: float = 2.0,
    min_reps: int = MIN_REPS,
) -> Ensemble:
    """Envelopes of the roles ``info`` maps, cut from ``pre_ms`` before to ``post_ms`` after
    the first glute onset of every rep of ``doc`` (reviewed or not: a corrected rep is
    aligned at its corrected onset and counted under its corrected verdict), then per verdict
    and muscle the mean and the 25-75 % band (verdicts with fewer than ``min_reps`` reps get
    no curve). The envelope is the display pipeline's (the one the window draws), run over
    the file once in chunks; only the rep windows are kept."""
    from dsp.pipeline import Pipeline

    settings = settings or DspSettings.from_dict(dict(doc.get("settings") or {}))
    fs = info.fs
    roles = [r for r in Role if r in info.roles]
    cols = [info.roles[r] for r in roles]
    stride = max(1, round(step_ms * fs / 1000.0))
    pre, post = round(pre_ms * fs / 1000.0), round(post_ms * fs / 1000.0)
    offsets = np.arange(-pre, post + 1, stride)
    n = int(data.shape[0])
    windows: list[tuple[int, str]] = []  # (alignment sample, verdict)
    skipped = 0
    for rep in doc.get("reps", []):
        t0 = _first_glute_s(rep)
        at = None if t0 is None else round(t0 * fs)
        if at is None or at - pre < 0 or at + post >= n:
            skipped += 1
            continue
        windows.append((at, str(rep.get("order"))))
    cut = np.full((len(windows), len(offsets), len(roles)), np.nan)
    if windows:
        pipe = Pipeline(info, settings, display=True)
        lo_need = min(a for a, _ in windows) - pre
        hi_need = max(a for a, _ in windows) + post + 1
        # the filters settle on 2 s before the first window, as the display does
        start = max(0, lo_need - round(2.0 * fs))
        ats = np.array([a for a, _ in windows])
        idx = ats[:, None] + offsets[None, :]  # (reps, points): the samples each window takes
        first, last = ats - pre, ats + post
        step = max(1, round(2.0 * fs))
        for i in range(start, hi_need, step):
            j = min(hi_need, i + step)
            env = pipe.process(Chunk(data[i:j], i)).envelope
            assert env is not None  # display=True
            for k in np.flatnonzero((first < j) & (last >= i)).tolist():
                p = (idx[k] >= i) & (idx[k] < j)
                cut[k, p, :] = env[idx[k, p] - i][:, cols]
    t_ms = offsets * 1000.0 / fs
    curves: list[Curve] = []
    counts: dict[str, int] = {}
    verdicts = [v for _, v in windows]
    for verdict in dict.fromkeys(verdicts):
        sel = np.array([v == verdict for v in verdicts])
        counts[verdict] = int(sel.sum())
        if sel.sum() < min_reps:
            continue
        block = cut[sel]
        for k, role in enumerate(roles):
            lanes = block[:, :, k]
            with np.errstate(all="ignore"):
                mean = np.nanmean(lanes, axis=0)
                lo, hi = np.nanpercentile(lanes, SPREAD, axis=0)
            curves.append(Curve(verdict, role, int(sel.sum()), mean, lo, hi))
    return Ensemble(t_ms.astype(np.float64), curves, counts, skipped)


def summary_rows(ens: Ensemble) -> list[dict[str, Any]]:
    """Per verdict and muscle: reps, peak of the mean (µV) and when it comes (ms after the
    first glute onset); the table under the report's ensemble plot."""
    rows = []
    for c in ens.curves:
        finite = np.isfinite(c.mean)
        if not finite.any():
            continue
        k = int(np.nanargmax(c.mean))
        rows.append(
            {
                "verdict": c.verdict,
                "role": c.role.value,
                "reps": c.n,
                "peak_uv": float(c.mean[k]),
                "peak_ms": float(ens.t_ms[k]),
            }
        )
    return rows


def verdict_order(verdicts: Sequence[str]) -> list[str]:
    """Verdicts in the order a coach reads them (the goal first)."""
    from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS, UNDETERMINED

    rank: dict[str, float] = {GLUTE_FIRST: 0, SIMULTANEOUS: 1, LUMBAR_FIRST: 2, UNDETERMINED: 3}
    return sorted(verdicts, key=lambda v: rank.get(v, math.inf))
