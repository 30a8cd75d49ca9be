"""One athlete's progress across sessions: is the athlete learning to lead with the glutes?

Over every fireorder recording of the athlete in a folder (the session browser's rows), per
session date and exercise: the reps, the glute-first share and the median lag, from the
reviewed reps (corrections applied, :mod:`devices.session.review_model`). Recordings of one
day and exercise are pooled into one point: the coach thinks in sessions, not in files.

Each recording is analysed with the settings it was recorded with (its sidecar), so a point
reads as the session's own feedback did. Analyses are cached in ``<data>/cache/analysis``
(keyed by the file's size, time and the settings), so the progress view opens fast the
second time; the review is applied fresh on every call (a correction made a minute ago
counts). No Qt.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from devices.files import locations
from devices.files.bdf_format import write_json_atomic
from devices.files.model import Annotation
from devices.files.sidecar import SessionRow, browse, recorded_settings
from devices.session.review_model import reviewed_document, user_annotations
from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS, UNDETERMINED, glute_first_pct
from dsp.settings import DspSettings, SettingsSchedule

log = logging.getLogger(__name__)

MIN_TREND_SESSIONS = 3  # a line through two points always "goes" somewhere: no trend from 2
_CACHE_VERSION = 1


@dataclass(frozen=True)
class SessionPoint:
    """One session day of one exercise (the recordings of that day pooled)."""

    day: datetime.date
    exercise: str
    reps: int
    decided: int  # reps with a verdict (the denominator of the glute-first share)
    glute_first: int
    glute_first_pct: float | None
    median_lag_ms: float | None
    corrected: int  # reps corrected in review
    files: tuple[Path, ...]
    sessions: tuple[str, ...] = ()  # the session names the recordings were given


@dataclass(frozen=True)
class Progress:
    athlete: str
    folder: Path
    tolerance_ms: float  # the neutral band of the lag plot (± ms)
    sessions: list[SessionPoint] = field(default_factory=list)  # oldest first
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why) not counted

    @property
    def exercises(self) -> list[str]:
        return sorted({s.exercise for s in self.sessions})

    def series(self, exercise: str) -> list[SessionPoint]:
        return [s for s in self.sessions if s.exercise == exercise]

    def trend(self, exercise: str) -> tuple[float, float] | None:
        """Least-squares line of the glute-first % over days (slope %/week, intercept at the
        first day), or None with fewer than :data:`MIN_TREND_SESSIONS` sessions."""
        pts = [
            (s.day, s.glute_first_pct)
            for s in self.series(exercise)
            if s.glute_first_pct is not None
        ]
        if len(pts) < MIN_TREND_SESSIONS:
            return None
        d0 = pts[0][0]
        xs = [(d - d0).days / 7.0 for d, _ in pts]
        ys = [p for _, p in pts]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx == 0:
            return None  # every session on one day: no time axis to speak of
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        return slope, my - slope * mx

    def trend_segment(
        self, exercise: str
    ) -> tuple[tuple[datetime.datetime, float], tuple[datetime.datetime, float]] | None:
        """The trend line from the first to the last session, cut where it would leave
        0..100 % (a share cannot): its two ends as (moment, %), or None with no trend."""
        line = self.trend(exercise)
        days = [s.day for s in self.series(exercise) if s.glute_first_pct is not None]
        if line is None or not days:
            return None
        slope, at0 = line
        lo, hi = 0.0, (days[-1] - days[0]).days / 7.0  # weeks from the first session
        if slope:
            a, b = sorted(((0.0 - at0) / slope, (100.0 - at0) / slope))
            lo, hi = max(lo, a), min(hi, b)
        if hi < lo:
            return None
        start = datetime.datetime.combine(days[0], datetime.time(12), tzinfo=datetime.UTC)

        def end(w: float) -> tuple[datetime.datetime, float]:
            return start + datetime.timedelta(weeks=w), at0 + slope * w

        return end(lo), end(hi)


def _same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


Folders = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _folders(folders: Folders) -> list[Path]:
    if isinstance(folders, str | os.PathLike):
        return [Path(folders)]
    out: list[Path] = []
    for f in folders:
        if Path(f).resolve() not in [x.resolve() for x in out]:
            out.append(Path(f))
    return out


def _rows(folders: Folders) -> list[SessionRow]:
    return [row for f in _folders(folders) for row in browse(f)]


def athletes(folders: Folders) -> list[str]:
    """The athletes named in the recordings of ``folders`` (as first spelled), sorted."""
    seen: dict[str, str] = {}
    for row in _rows(folders):
        if row.athlete.strip():
            seen.setdefault(row.athlete.strip().casefold(), row.athlete.strip())
    return sorted(seen.values(), key=str.casefold)


def _day(row: SessionRow) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(row.date[:10])
    except ValueError:
        return None


def _cache_path(bdf: Path, settings: dict[str, Any]) -> Path:
    st = bdf.stat()
    key = json.dumps(
        [_CACHE_VERSION, str(bdf.resolve()), st.st_size, st.st_mtime_ns, settings],
        sort_keys=True,
    )
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return locations.data_dir() / "cache" / "analysis" / f"{bdf.name}-{digest}.json"


def analysis_of(bdf: Path) -> tuple[dict[str, Any], list[Annotation]]:
    """The analysis document of recording ``bdf`` (with the settings it was recorded with)
    and its annotations; cached. Raises ReaderError/ValueError/OSError for a bad file."""
    from devices.files.mapping import load_mapped
    from dsp.analysis import analyze

    schedule = recorded_settings(bdf) or SettingsSchedule(DspSettings())
    cache = _cache_path(bdf, schedule.to_dict())
    try:
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if isinstance(kept, dict) and isinstance(kept.get("doc"), dict):
            notes = [Annotation(float(t), 0.0, str(x)) for t, x in kept.get("annotations", [])]
            return kept["doc"], notes
    except (OSError, ValueError, TypeError):
        pass  # no cache yet, or a damaged one: analyse again
    mapped = load_mapped(str(bdf))
    result = analyze(mapped.data, mapped.info, schedule.start, changes=schedule.changes)
    doc = result.to_dict(mapped.source(str(bdf)))
    notes_kept = user_annotations(mapped.recording.annotations)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache, {"doc": doc, "annotations": notes_kept})
    except OSError as exc:  # a cache is a convenience: the numbers stand without it
        log.info("analysis of %s not cached: %s", bdf, exc)
    return doc, [Annotation(t, 0.0, x) for t, x in notes_kept]


@dataclass(frozen=True)
class ReviewCounts:
    """One recording's reps as its review counts them (the file analysed with the settings
    it was recorded with, corrections applied): what the opened recording and the progress
    view show. The sidecar's counts are the live feedback's, which can differ at the ends:
    a rep already under way when the recording began is undetermined on review (its onsets
    are not in the file), and a rep at either end can be counted by one and not the other."""

    reps: int
    counts: dict[str, int]  # per verdict, undetermined included
    corrected: int
    why_undetermined: tuple[str, ...] = ()  # the reasons the undetermined reps give

    @property
    def decided(self) -> int:
        return sum(self.counts.get(str(o), 0) for o in (GLUTE_FIRST, SIMULTANEOUS, LUMBAR_FIRST))

    @property
    def glute_first_pct(self) -> float | None:
        return glute_first_pct(
            {str(o): self.counts.get(str(o), 0) for o in (GLUTE_FIRST, SIMULTANEOUS, LUMBAR_FIRST)}
        )


def review_counts(bdf: Path) -> ReviewCounts:
    """The reviewed counts of recording ``bdf`` (analysis cached; the review read fresh, so a
    correction saved a moment ago counts). Raises like :func:`analysis_of`."""
    doc, annotations = analysis_of(bdf)
    reps = reviewed_document(doc, str(bdf), annotations).get("reps", [])
    counts = {
        str(o): sum(r.get("order") == o for r in reps)
        for o in (GLUTE_FIRST, SIMULTANEOUS, LUMBAR_FIRST, UNDETERMINED)
    }
    why = tuple(
        f"rep {int(r.get('index', k)) + 1} {r.get('reason')}"
        for k, r in enumerate(reps)
        if r.get("order") == UNDETERMINED and r.get("reason")
    )
    return ReviewCounts(len(reps), counts, sum(bool(r.get("corrected")) for r in reps), why)


def progress(
    folder: Folders,
    athlete: str,
    *,
    tolerance_ms: float | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> Progress:
    """The progress of ``athlete`` (case-insensitive) over the recordings in ``folder`` (one
    folder or several: the recordings folder and the shipped examples).

    ``tolerance_ms`` is the neutral band drawn around a lag of 0 (default: the recordings'
    own, their median); ``on_file(done, total)`` reports while files are analysed."""
    base = _folders(folder)[0] if _folders(folder) else Path(".")
    rows = sorted((r for r in _rows(folder) if _same(r.athlete, athlete)), key=lambda r: r.date)
    skipped: list[tuple[Path, str]] = []
    pooled: dict[tuple[datetime.date, str], list[tuple[SessionRow, dict[str, Any]]]] = {}
    tolerances: list[float] = []
    for k, row in enumerate(rows):
        if on_file is not None:
            on_file(k, len(rows))
        day = _day(row)
        if day is None:
            skipped.append((row.path, "no date in its sidecar"))
            continue
        try:
            doc, annotations = analysis_of(row.path)
        except (OSError, ValueError) as exc:  # ReaderError is a ValueError
            skipped.append((row.path, str(exc).splitlines()[0] if str(exc) else "unreadable"))
            continue
        doc = reviewed_document(doc, str(row.path), annotations)
        tolerances.append(float((doc.get("settings") or {}).get("tolerance_ms", 20.0)))
        exercise = row.exercise or str(doc.get("exercise") or "?")
        pooled.setdefault((day, exercise), []).append((row, doc))
    if on_file is not None:
        on_file(len(rows), len(rows))
    points = []
    for (day, exercise), docs in sorted(pooled.items()):
        reps = [r for _, d in docs for r in d.get("reps", [])]
        counts: dict[str, int] = {
            str(o): sum(r.get("order") == o for r in reps)
            for o in (GLUTE_FIRST, SIMULTANEOUS, LUMBAR_FIRST)
        }
        lags = [float(r["lag_ms"]) for r in reps if r.get("lag_ms") is not None]
        points.append(
            SessionPoint(
                day,
                exercise,
                len(reps),
                sum(counts.values()),
                counts[GLUTE_FIRST],
                glute_first_pct(counts),
                float(median(lags)) if lags else None,
                sum(bool(r.get("corrected")) for r in reps),
                tuple(row.path for row, _ in docs),
                tuple(dict.fromkeys(row.session for row, _ in docs if row.session)),
            )
        )
    tol = tolerance_ms if tolerance_ms is not None else (median(tolerances) if tolerances else 20.0)
    # the athlete as the recordings spell them (the newest spelling), not as typed
    named = rows[-1].athlete.strip() if rows else athlete
    return Progress(named, base, float(tol), points, skipped)
