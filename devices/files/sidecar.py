"""The one API for what travels beside a recording: its sidecar, and the review of it.

A fireorder recording ``FILE.bdf`` has a sidecar ``FILE.bdf.json`` (schema
``fireorder.recording/1``, written by the recorder; see docs/recording-format.md). A review
(onset corrections, notes) is kept

* in the recording's own sidecar when it has one that may be changed (a recording the user
  made, in a writable folder), so it travels with the file;
* otherwise in ``<data>/reviews/NAME-HASH.json`` (schema ``fireorder.review/1``): for the
  shipped demo recordings (never changed: they are tracked files), for read-only files, and
  for files of other tools (CSV, EDF, XDF).

The same goes for the video of a recording (``"video"``: see :class:`VideoEntry`): one
recorded beside it, or a clip attached later, with its offset to the EMG.

Every reader here survives a hostile file: wrong types, missing keys and deep nesting are
skipped with one log line, never an exception (one bad sidecar must not stop the app).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.files import locations
from devices.files.bdf_format import (
    SIDECAR_SCHEMA,
    read_sidecar,
    sidecar_part,
    sidecar_path,
    write_json_atomic,
)
from dsp.reps import ORDERS, glute_first_pct
from dsp.settings import DspSettings, SettingsSchedule

log = logging.getLogger(__name__)

REVIEW_SCHEMA = "fireorder.review/1"
_MAX_SIDECAR_BYTES = 16 * 2**20


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _text(value: object, limit: int = 400) -> str:
    return value[:limit] if isinstance(value, str) else ""


@dataclass(frozen=True)
class Correction:
    """One onset moved by hand; the detected value is kept beside it."""

    rep_start_s: float
    role: str
    detected_s: float | None
    corrected_s: float
    lag_ms: float | None
    order: str
    detected_order: str | None = None
    when: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rep_start_s": round(self.rep_start_s, 4),
            "role": self.role,
            "detected_s": None if self.detected_s is None else round(self.detected_s, 4),
            "corrected_s": round(self.corrected_s, 4),
            "lag_ms": self.lag_ms,
            "order": self.order,
            "detected_order": self.detected_order,
            "when": self.when or _now(),
        }

    @classmethod
    def parse(cls, item: object) -> Correction | None:
        if not isinstance(item, Mapping):
            return None
        start, corrected = _number(item.get("rep_start_s")), _number(item.get("corrected_s"))
        role, order = _text(item.get("role")), _text(item.get("order"))
        if start is None or corrected is None or not role or order not in ORDERS:
            return None
        detected_order = _text(item.get("detected_order")) or None
        return cls(
            start,
            role,
            _number(item.get("detected_s")),
            corrected,
            _number(item.get("lag_ms")),
            order,
            detected_order if detected_order in ORDERS else None,
            _text(item.get("when")),
        )


# Annotations fireorder writes for its own events (onsets, reps, verdicts, artefacts...): a
# replay shows its reps from the pipeline and a report from its analysis, so these are not
# marks. Anything else (the user's marks and notes, device markers, another tool's events) is.
MACHINE_TEXT = (
    "onset ",
    "offset ",
    "rep ",
    "artefact ",
    "cue ",
    "truth ",
    "gap",
    "settings",
    "calibration",
    "roles changed",
    "end of recording",
)


def is_user_annotation(text: str) -> bool:
    """Whether a recording's annotation is a person's (or another tool's), not fireorder's."""
    return not text.startswith(MACHINE_TEXT)


@dataclass(frozen=True)
class Note:
    """A reviewer's or operator's note at a time of the recording (s from its start)."""

    t_s: float
    text: str
    when: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": round(self.t_s, 4), "text": self.text, "when": self.when or _now()}

    @classmethod
    def parse(cls, item: object) -> Note | None:
        if not isinstance(item, Mapping):
            return None
        t, text = _number(item.get("t_s")), _text(item.get("text"), 2000)
        return None if t is None or not text else cls(t, text, _text(item.get("when")))


VIDEO_KINDS = ("recorded", "attached")


@dataclass(frozen=True)
class VideoEntry:
    """The video of a recording: ``path`` (relative to the recording's folder when it lies
    there), ``kind`` recorded|attached, ``offset_s`` (video time = EMG time + offset), the
    frame-times file of a recorded video (EMG seconds per frame), and its counts."""

    path: str
    kind: str = "attached"
    offset_s: float = 0.0
    frame_times: str | None = None
    frames: int | None = None
    dropped: int | None = None
    when: str = ""

    def resolve(self, recording: str | os.PathLike[str]) -> Path:
        p = Path(self.path).expanduser()
        return p if p.is_absolute() else Path(recording).resolve().parent / p

    def times_file(self, recording: str | os.PathLike[str]) -> Path | None:
        if not self.frame_times:
            return None
        p = Path(self.frame_times).expanduser()
        return p if p.is_absolute() else Path(recording).resolve().parent / p

    @staticmethod
    def relative(path: str | os.PathLike[str], recording: str | os.PathLike[str]) -> str:
        """``path`` as kept in the entry: relative when beside the recording (it travels)."""
        p, folder = Path(path).resolve(), Path(recording).resolve().parent
        return str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "offset_s": round(self.offset_s, 4),
            "frame_times": self.frame_times,
            "frames": self.frames,
            "dropped": self.dropped,
            "when": self.when or _now(),
        }

    @classmethod
    def parse(cls, item: object) -> VideoEntry | None:
        if not isinstance(item, Mapping):
            return None
        path, kind = _text(item.get("path"), 4096), _text(item.get("kind"))
        offset = _number(item.get("offset_s"))
        if not path or "\x00" in path:
            return None
        frames, dropped = _number(item.get("frames")), _number(item.get("dropped"))
        return cls(
            path,
            kind if kind in VIDEO_KINDS else "attached",
            0.0 if offset is None or abs(offset) > 1e6 else offset,
            _text(item.get("frame_times"), 4096) or None,
            None if frames is None else int(frames),
            None if dropped is None else int(dropped),
            _text(item.get("when")),
        )


def _load_json(path: Path) -> object:
    try:
        if path.stat().st_size > _MAX_SIDECAR_BYTES:
            log.warning("%s: larger than %d MB; ignored", path, _MAX_SIDECAR_BYTES >> 20)
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("%s: unreadable; ignored (%s)", path, exc)
        return None


def recorded_settings(recording: str | os.PathLike[str]) -> SettingsSchedule | None:
    """The settings ``recording`` was judged with live (its sidecar: those at its start and
    each change, at file sample indices), or None when it has no fireorder sidecar or the
    sidecar's settings cannot be read (one log line; the caller's settings apply)."""
    doc = read_sidecar(recording) if Path(recording).suffix.lower() == ".bdf" else None
    if doc is None:
        return None
    # "settings" holds the last in use; "settings_at_start" (since schema 1's 2026-12
    # recorders) the first: a recording without it had no change, or began with "settings"
    # as far as can be known.
    start_raw = doc.get("settings_at_start", doc.get("settings"))
    if not isinstance(start_raw, dict):
        return None
    try:
        start = DspSettings.from_dict(start_raw)
        first = sidecar_part(doc, "stream").get("first_index")  # (changes: stream indices)
        first = int(first) if isinstance(first, int | float) and math.isfinite(first) else 0
        changes: list[tuple[int, DspSettings]] = []
        items = doc.get("settings_changes")
        for item in items if isinstance(items, list) else []:
            at, raw = (
                (item.get("index"), item.get("settings"))
                if isinstance(item, dict)
                else (None, None)
            )
            if (
                not isinstance(at, int | float)
                or not math.isfinite(at)
                or not isinstance(raw, dict)
            ):
                log.warning("%s: a settings change it cannot read; skipped", recording)
                continue
            changes.append((max(0, int(at) - first), DspSettings.from_dict(raw)))
    except (ValueError, TypeError) as exc:
        log.warning(
            "%s: its recorded settings cannot be used (%s); the current ones apply", recording, exc
        )
        return None
    changes.sort(key=lambda c: c[0])
    return SettingsSchedule(start, tuple(changes))


def sidecar_trouble(recording: str | os.PathLike[str]) -> str | None:
    """Why the own sidecar of ``recording`` cannot be trusted, in a few words (None when it
    reads as a ``fireorder.recording/1`` sidecar, or when the file is not a BDF and so has
    no business having one)."""
    side = sidecar_path(recording)
    if not side.exists():
        return "has no sidecar" if Path(recording).suffix.lower() == ".bdf" else None
    try:
        if side.stat().st_size > _MAX_SIDECAR_BYTES:
            return f"has a sidecar larger than {_MAX_SIDECAR_BYTES >> 20} MB"
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return "has an unreadable sidecar (cut short or damaged)"
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema == SIDECAR_SCHEMA:
        return None
    family, _, version = str(schema).rpartition("/")
    if family == SIDECAR_SCHEMA.rpartition("/")[0] and version.isdigit() and int(version) > 1:
        return f"has a sidecar from a newer fireorder (schema {schema})"
    return f"has a sidecar of unknown schema {json.dumps(schema)[:40]}"


class ReviewStore:
    """Corrections and notes of one recording, wherever they are kept (see the module doc).

    A sidecar that cannot be trusted (missing, cut short, a newer or unknown schema) is never
    written: the review goes to the data-folder copy, and :attr:`notice` says so in one line.
    """

    def __init__(self, recording: str | os.PathLike[str]) -> None:
        self.recording = Path(recording)
        self.trouble = sidecar_trouble(self.recording)
        self.path = self._where()

    def _copy_path(self) -> Path:
        resolved = str(self.recording.resolve())
        digest = hashlib.sha1(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        return locations.reviews_dir() / f"{self.recording.name}-{digest}.json"

    def _where(self) -> Path:
        own = sidecar_path(self.recording)
        if (
            not locations.is_example(self.recording)
            and self.trouble is None
            and read_sidecar(self.recording) is not None
            and os.access(own, os.W_OK)
            and os.access(own.parent, os.W_OK)
        ):
            return own
        return self._copy_path()

    @property
    def in_sidecar(self) -> bool:
        """True when the review travels with the recording (its own sidecar)."""
        return self.path == sidecar_path(self.recording)

    @property
    def notice(self) -> str | None:
        """One line for the window when the recording's sidecar cannot be trusted: the file
        opens read-only (samples and BDF+ annotations) and where its review goes instead."""
        if self.trouble is None:
            return None
        return (
            f"{self.recording.name} {self.trouble}: opened read-only from its BDF+ "
            f"annotations; notes and corrections are kept in {self.path}"
        )

    def _doc(self) -> dict[str, Any]:
        doc = _load_json(self.path)
        if isinstance(doc, dict) and doc.get("schema") in (SIDECAR_SCHEMA, REVIEW_SCHEMA):
            return doc
        return {"schema": REVIEW_SCHEMA, "recording": str(self.recording.resolve())}

    def _items(self, key: str) -> list[object]:
        items = self._doc().get(key)
        return list(items) if isinstance(items, list) else []

    def corrections(self) -> list[Correction]:
        found = (Correction.parse(x) for x in self._items("corrections"))
        return [c for c in found if c is not None]

    def notes(self) -> list[Note]:
        found = (Note.parse(x) for x in self._items("notes"))
        return [n for n in found if n is not None]

    def _writable_doc(self) -> dict[str, Any]:
        """The document to add to, read again now; never a fresh one over a file it could
        not read (that would lose what is in it)."""
        doc = _load_json(self.path)
        if isinstance(doc, dict) and doc.get("schema") in (SIDECAR_SCHEMA, REVIEW_SCHEMA):
            return doc
        if self.in_sidecar:
            # the sidecar went bad since it was opened (another program, a cut copy): it is
            # left as it is and the review goes to the data-folder copy
            self.trouble = sidecar_trouble(self.recording) or "has a sidecar that changed"
            log.warning("%s: %s; review kept in the data folder", self.path, self.trouble)
            self.path = self._copy_path()
            return self._writable_doc()
        if self.path.exists():  # a damaged copy of ours: kept aside, not overwritten
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
            os.replace(self.path, aside)
            log.warning("%s: unreadable; kept as %s, a new review is started", self.path, aside)
        return {"schema": REVIEW_SCHEMA, "recording": str(self.recording.resolve())}

    def _append(self, key: str, item: dict[str, Any]) -> Path:
        doc = self._writable_doc()  # may move the review to the data folder: then mkdir
        self.path.parent.mkdir(parents=True, exist_ok=True)
        items = doc.get(key)
        doc[key] = [*(items if isinstance(items, list) else []), item]
        write_json_atomic(self.path, doc)
        return self.path

    def add_correction(self, correction: Correction) -> Path:
        """Keep a correction (OSError if it cannot be written: the caller says so)."""
        return self._append("corrections", correction.to_dict())

    def add_note(self, note: Note) -> Path:
        return self._append("notes", note.to_dict())

    def video(self) -> VideoEntry | None:
        """The recording's video: the review's entry (an attached clip, a moved offset, a
        detach) wins over the one its recorder wrote into its own sidecar."""
        doc = self._doc()
        if "video" in doc:
            return VideoEntry.parse(doc.get("video"))
        if not self.in_sidecar and self.trouble is None:
            own = _load_json(sidecar_path(self.recording))
            if isinstance(own, dict) and own.get("schema") == SIDECAR_SCHEMA and "video" in own:
                return VideoEntry.parse(own.get("video"))
        return self._unlisted_video()

    def _unlisted_video(self) -> VideoEntry | None:
        """A camera recording beside the recording that no sidecar lists: the app stopped
        (a crash, power) before it could list it. ``NAME.mp4`` with its frame-times file
        ``NAME.mp4.times.csv`` is what the live recorder writes; the writer's fragmented MP4
        stays playable up to its last fragment."""
        video = Path(self.recording).with_suffix(".mp4")
        times = video.with_name(video.name + ".times.csv")
        if video.is_file() and times.is_file():
            return VideoEntry(video.name, "recorded", 0.0, frame_times=times.name)
        return None

    def set_video(self, entry: VideoEntry | None) -> Path:
        """Keep (or with None, detach) the recording's video (OSError if it cannot be
        written: the caller says so)."""
        doc = self._writable_doc()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc["video"] = None if entry is None else entry.to_dict()
        write_json_atomic(self.path, doc)
        return self.path


#: a corrected onset this close to the detected one (s) is the detected one: moved back (an
#: undo, or nudged back by hand), it is no correction. Below a 1 ms nudge, above the 0.1 ms
#: the review rounds times to.
SAME_ONSET_S = 0.0004


def standing_corrections(corrections: Iterable[Correction]) -> list[Correction]:
    """The corrections in force: the last one of each rep's role, unless it put the onset
    back where the detector had it (then the role is as detected)."""
    last: dict[tuple[float, str], Correction] = {}
    for c in corrections:
        last[(c.rep_start_s, c.role)] = c
    return [
        c
        for c in last.values()
        if c.detected_s is None or abs(c.corrected_s - c.detected_s) > SAME_ONSET_S
    ]


def corrected_counts(counts: Mapping[str, int], corrections: list[Correction]) -> dict[str, int]:
    """Verdict counts after the corrections (the last one of each rep wins; a rep whose
    onsets are all back where the detector had them counts as detected)."""
    out: dict[str, int] = {o.value: int(counts.get(o, 0)) for o in ORDERS}
    held = {c.rep_start_s for c in standing_corrections(corrections)}
    first: dict[float, Correction] = {}
    last: dict[float, Correction] = {}
    for c in corrections:
        first.setdefault(c.rep_start_s, c)
        last[c.rep_start_s] = c
    for start, c in last.items():
        if start not in held:
            continue
        was = first[start].detected_order
        if was is None or out.get(was, 0) <= 0:
            continue  # an old correction without its detected verdict: counts stay
        out[was] -= 1
        out[c.order] += 1
    return out


@dataclass(frozen=True)
class SessionRow:
    """One recording as the session browser lists it (from its sidecar and review only)."""

    path: Path
    athlete: str
    session: str
    date: str
    exercise: str
    duration_s: float | None
    reps: int | None
    glute_first_pct: float | None
    state: str
    corrected: int = 0


def _row(bdf: Path, doc: Mapping[str, Any]) -> SessionRow:
    meta = doc.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    summary = doc.get("summary")
    summary = summary if isinstance(summary, Mapping) else {}
    raw = summary.get("verdicts")
    raw = raw if isinstance(raw, Mapping) else {}
    counts = {o: int(n) for o, n in raw.items() if o in ORDERS and _number(n) is not None}
    review = ReviewStore(bdf)
    fixes = review.corrections()
    counts = corrected_counts(counts, fixes) if counts else counts
    held = standing_corrections(fixes)
    reps = sum(counts.values()) if counts else None
    return SessionRow(
        bdf,
        _text(meta.get("athlete")),
        _text(meta.get("session")),
        _text(doc.get("created"))[:16].replace("T", " "),
        _text(meta.get("exercise")),
        _number(summary.get("duration_s")),
        reps,
        glute_first_pct(counts) if counts else None,
        _text(doc.get("state")),
        len({c.rep_start_s for c in held}),
    )


def _bare_row(bdf: Path) -> SessionRow:
    """A recording whose sidecar cannot be read: listed by its file, to be opened as a BDF."""
    try:
        when = datetime.datetime.fromtimestamp(bdf.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    except OSError:
        when = ""
    return SessionRow(bdf, "", "", when, "", None, None, None, "sidecar unreadable")


def browse(folder: str | os.PathLike[str]) -> list[SessionRow]:
    """Every fireorder recording in ``folder``, newest first. A sidecar that cannot be read
    or makes no sense is skipped with a log line; it never stops the listing."""
    base = Path(folder)
    if not base.is_dir():
        return []
    rows = []
    for side in sorted(base.glob("*.bdf.json")):
        bdf = side.with_name(side.name[: -len(".json")])
        if not bdf.exists():
            continue
        doc = _load_json(side)
        if doc is None:  # unreadable (cut short, deep nesting): the recording stands alone
            rows.append(_bare_row(bdf))
            continue
        if not isinstance(doc, dict) or doc.get("schema") != SIDECAR_SCHEMA:
            log.info("skipping %s: not a %s sidecar", side, SIDECAR_SCHEMA)
            continue
        try:
            rows.append(_row(bdf, doc))
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            log.info("skipping %s: %s", side, exc)
    rows.sort(key=lambda r: r.date, reverse=True)
    return rows
