"""Offline analysis: run the live pipeline chunk by chunk over a whole signal.

Because every stage is causal and chunk-size invariant, this gives exactly the verdicts a live
session or a replay of the same samples gives; big chunks only make it faster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dsp.contract import Chunk, StreamInfo
from dsp.events import GapEvent, RepsRejudged
from dsp.onset import OnsetEvent
from dsp.pipeline import CONTINUE_PRIME_S, Pipeline, continued
from dsp.reps import ORDERS, RepEnded, RepResult
from dsp.settings import DspSettings
from dsp.stats import median

SCHEMA = "fireorder.analysis/1"
Progress = Callable[[float], None]


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


@dataclass
class Analysis:
    info: StreamInfo
    settings: DspSettings
    n_samples: int
    reps: list[RepResult] = field(default_factory=list)
    onsets: dict[int, list[int]] = field(default_factory=dict)  # channel -> onset indices
    gaps: list[GapEvent] = field(default_factory=list)
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)
    # settings changed during the recording: (index, settings) from where each came into use
    changes: tuple[tuple[int, DspSettings], ...] = ()

    def seconds(self, index: int | None) -> float | None:
        return None if index is None else _r(index / self.info.fs)

    def summary(self) -> dict[str, Any]:
        counts = {str(o): sum(r.order == o for r in self.reps) for o in ORDERS}
        lags = [r.lag_ms for r in self.reps if r.lag_ms is not None]
        return {
            "reps": len(self.reps),
            **counts,
            "median_lag_ms": _r(median(lags), 3) if lags else None,
        }

    def rep_dict(self, rep: RepResult) -> dict[str, Any]:
        return {
            "index": rep.index,
            "start_s": self.seconds(rep.start),
            "end_s": self.seconds(rep.end),
            "decided_s": self.seconds(rep.decided_at),
            "onsets": {r.value: self.seconds(i) for r, i in rep.onsets.items()},
            "onset_ci_s": {
                r.value: [self.seconds(a), self.seconds(b)] for r, (a, b) in rep.onset_ci.items()
            },
            "lag_ms": rep.lag_ms,
            "lag_ci_ms": None if rep.lag_ci_ms is None else list(rep.lag_ci_ms),
            "order": rep.order,
            "left": rep.left.to_dict() if rep.left else None,
            "right": rep.right.to_dict() if rep.right else None,
            "reason": rep.reason,
            "rejudged": rep.rejudged,
            "censored": [r.value for r in rep.censored],
            "cued": rep.cued,
        }

    def to_dict(self, source: dict[str, Any]) -> dict[str, Any]:
        roles = self.info.roles
        return {
            "schema": SCHEMA,
            "source": source,
            "roles": {r.value: self.info.channel_names[i] for r, i in roles.items()},
            "exercise": self.settings.exercise,
            "onsets": {
                r.value: [self.seconds(i) for i in self.onsets.get(ch, [])]
                for r, ch in roles.items()
            },
            "reps": [self.rep_dict(r) for r in self.reps],
            "quality": {
                r.value: self.quality.get(self.info.channel_names[i], {}) for r, i in roles.items()
            },
            "gaps": [
                {"start_s": self.seconds(g.start), "samples": g.length}
                for g in sorted(self.gaps, key=lambda g: g.start)
            ],
            "summary": self.summary(),
            "settings": self.settings.to_dict(),
            **(
                {
                    "settings_changes": [
                        {"start_s": self.seconds(i), "settings": st.to_dict()}
                        for i, st in self.changes
                    ]
                }
                if self.changes
                else {}
            ),
        }


def analyze(
    data: NDArray[np.float64],
    info: StreamInfo,
    settings: DspSettings | None = None,
    *,
    chunk_s: float = 2.0,
    progress: Progress | None = None,
    changes: Sequence[tuple[int, DspSettings]] = (),
) -> Analysis:
    """Analyse ``data`` (n, ch) microvolts; NaN rows are gaps. ``changes``: settings that
    came into use during the recording, (index, settings) ascending (its
    :class:`~dsp.settings.SettingsSchedule`): the pipeline goes on with them from there, as
    the live session did."""
    from dsp.quality import QualityMonitor, QualitySettings

    settings = settings or DspSettings()
    info.validate_roles()
    pipe = Pipeline(info, settings, display=False)
    quality = QualityMonitor(info.fs, info.n_channels, QualitySettings(line_freq=settings.notch_hz))
    result = Analysis(info, settings, n_samples=int(data.shape[0]))
    result.changes = tuple((int(i), st) for i, st in changes if 0 < i < data.shape[0])
    step = max(1, round(chunk_s * info.fs))
    final: dict[int, RepResult] = {}
    # each rep with the number of re-judgings told before it: a re-judging replaces the reps
    # told before it (a rep starting just before its ``upto`` but told after it stands)
    rejudged: list[RepsRejudged] = []
    reps: list[tuple[RepResult, int]] = []
    onsets: dict[int, list[tuple[int, int]]] = {}  # channel -> (onset, re-judgings before it)

    def collect(events: list[Any]) -> None:
        for ev in events:
            if isinstance(ev, OnsetEvent):
                if not ev.censored:  # a burst under way when the data began has no onset
                    onsets.setdefault(ev.channel, []).append((ev.index, len(rejudged)))
            elif isinstance(ev, RepResult):
                reps.append((ev, len(rejudged)))
            elif isinstance(ev, RepEnded):
                final[ev.index] = ev.result
            elif isinstance(ev, RepsRejudged):
                rejudged.append(ev)
            elif isinstance(ev, GapEvent):
                last = result.gaps[-1] if result.gaps else None
                if last is not None and last.start + last.length == ev.start:
                    # one run of missing samples reported in parts (held, then a gap)
                    result.gaps[-1] = GapEvent(last.start, last.length + ev.length)
                else:
                    result.gaps.append(ev)

    n = data.shape[0]
    due = list(result.changes)
    prime = round(CONTINUE_PRIME_S * info.fs)
    for i in range(0, n, step):
        block = data[i : i + step]
        at = i
        while due and due[0][0] < i + block.shape[0]:  # a change within this block
            cut, new_settings = due.pop(0)
            if cut > at:
                collect(pipe.process(Chunk(data[at:cut], at)).events)
            begin = max(0, cut - prime)
            pipe = continued(pipe, info, new_settings, begin, data[begin:cut])
            at = cut
        collect(pipe.process(Chunk(data[at : i + step], at)).events)
        quality.process(block)
        if progress is not None:
            progress(min(1.0, (i + step) / n))
    collect(pipe.finish())
    told = [(final.get(r.index, r), k) for r, k in reps]
    for k, ev in enumerate(rejudged):  # the reps before ev.upto, judged again, replace what
        # was said of them (those told after the re-judging are not among them)
        told = [(r, n) for r, n in told if n > k or not ev.since <= r.start < ev.upto]
        told += [(r, k) for r in ev.reps]
        told.sort(key=lambda t: t[0].start)
        for role, ch in info.roles.items():
            kept = [(i, n) for i, n in onsets.get(ch, []) if n > k or not ev.since <= i < ev.upto]
            early = [
                (onset, k)
                for r in ev.reps
                if (onset := r.onsets.get(role)) is not None and role not in r.censored
            ]
            if early or ch in onsets:
                onsets[ch] = early + kept
    result.reps = [r for r, _ in told]
    result.onsets = {ch: [i for i, _ in found] for ch, found in onsets.items()}
    result.quality = {info.channel_names[c]: q.to_dict() for c, q in enumerate(quality.report())}
    for ch in result.onsets:
        result.onsets[ch].sort()
    return result
