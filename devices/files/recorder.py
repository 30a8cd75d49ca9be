"""Record a stream to a crash-safe BDF+ file with EDF+ annotations and a JSON sidecar. No Qt.

The acquisition thread only enqueues (:meth:`Recorder.write`, :meth:`Recorder.add_event`);
the recorder's own thread assembles fixed-length data records (0.25 s by default), writes
each one as soon as it is complete and fsyncs at least twice a second. The header says
``-1`` data records until :meth:`Recorder.stop` patches the count, so a killed recording
loses at most the record being filled plus what the OS had not flushed; :func:`repair`
finalises such a file and :func:`find_unfinished` finds them. Lost samples (a jump in
``Chunk.start``) are written as the digital minimum and annotated ``gap N samples``.

A disk or permission error never raises into the caller: the recorder keeps every complete
record already written, finalises the header, sets :attr:`Recorder.error` to one line and
stops writing, while the stream goes on. See ``docs/recording-format.md``.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import queue
import re
import socket
import threading
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from devices.files import bdf_format as fmt
from devices.files.common import microvolt_factor
from dsp.contract import Chunk, StreamInfo
from dsp.settings import DspSettings

try:  # advisory lock: tells a live recording from a killed one (released by the OS on death)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DEFAULT_FOLDER = Path("recordings")
ANNOTATION_BYTES_PER_S = 2400  # ~20 typical events per second before carry-over
_BATCH_ITEMS = 256  # queue items handled between writes
_BATCH_RECORDS = 64  # records kept in memory at most before writing
VERDICTS_KEPT = 1000  # reps whose verdict can still be replaced (see Recorder._older_verdicts)


@dataclass
class SessionMeta:
    """Who and what was recorded; stored in the sidecar (athlete, session and operator also
    in the EDF+ header subfields)."""

    athlete: str = ""
    session: str = ""
    exercise: str = ""
    notes: str = ""
    operator: str = ""
    device: str = ""  # device description, e.g. "simulator (preset clean, seed 3)"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionMeta:
        known = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RecordingSummary:
    path: Path
    sidecar: Path
    state: str
    samples: int  # rows in the file up to the true end (gaps included, padding not)
    duration_s: float
    received: int  # samples delivered to write()
    lost_samples: int
    gaps: int
    duplicates: int
    clipped: int
    annotations: int
    error: str | None = None

    def line(self) -> str:
        text = (
            f"{self.path}: {self.duration_s:.2f} s ({self.samples} samples), "
            f"{self.gaps} gaps ({self.lost_samples} lost), {self.annotations} annotations"
        )
        if self.clipped:
            text += f", {self.clipped} clipped"
        return text + (f"; {self.error}" if self.error else "")


@dataclass(frozen=True)
class RepairReport:
    path: Path
    records: int
    samples: int
    duration_s: float
    truncated_bytes: int
    header_patched: bool
    sidecar_updated: bool

    @property
    def empty(self) -> bool:
        return self.records == 0

    def line(self) -> str:
        if self.empty:
            return f"{self.path}: no complete data record (empty recording)"
        cut = f", {self.truncated_bytes} bytes of a partial record dropped" * bool(
            self.truncated_bytes
        )
        return f"{self.path}: finalised, {self.duration_s:.2f} s ({self.samples} samples){cut}"


class RecordingInUseError(OSError):
    """Another live recorder holds the file."""


# -------------------------------------------------------------------------- file names

# Letters that Unicode does not decompose into an ASCII base letter.
_LATIN = str.maketrans(
    {"Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "ß": "ss", "Œ": "OE", "œ": "oe", "Ł": "L",
     "ł": "l", "Đ": "D", "đ": "d", "Þ": "Th", "þ": "th", "ı": "i"}
)  # fmt: skip


def safe_name(text: object, limit: int = 40) -> str:
    """A file-name part safe on every OS: ASCII letters, digits, ``-``, ``_`` and ``.``
    (no separators, no leading dot). A part, never a whole name: the date prefix of
    :func:`recording_path` also keeps reserved device names like ``CON`` harmless."""
    text = str(text).translate(_LATIN)
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "-", norm).strip("-._")[:limit].strip("-._")


def recording_path(
    folder: str | os.PathLike[str] | None, meta: SessionMeta, when: datetime | None = None
) -> Path:
    """``folder/2026-03-01_140509_athlete_session_exercise.bdf``, unique in ``folder``."""
    when = when or datetime.now()
    parts = [when.strftime("%Y-%m-%d_%H%M%S")]
    parts += [p for p in (safe_name(meta.athlete), safe_name(meta.session)) if p]
    if (ex := safe_name(meta.exercise, 20)) and ex not in parts:
        parts.append(ex)
    base = Path(folder if folder is not None else DEFAULT_FOLDER)
    stem = "_".join(parts)
    path = base / f"{stem}.bdf"
    k = 2
    while path.exists() or fmt.sidecar_path(path).exists():
        path = base / f"{stem}_{k}.bdf"
        k += 1
    return path


# ------------------------------------------------------------------------ event texts


def channel_label(info: StreamInfo, channel: int) -> str:
    role = info.role_of(channel)
    if role is not None:
        return role.value
    return info.channel_names[channel] if 0 <= channel < info.n_channels else f"ch{channel}"


def _lag(lag_ms: float | None) -> str:
    return "lag=n/a" if lag_ms is None else f"lag={lag_ms:+.0f}ms"


def event_annotation(event: object, info: StreamInfo) -> tuple[int, str, float] | None:
    """``(sample index, text, duration s)`` for a pipeline event, None for events the
    recorder writes itself (gaps: it sees them in the chunk indices)."""
    from dsp.events import ArtefactEvent, GapEvent
    from dsp.onset import OffsetEvent, OnsetEvent
    from dsp.reps import RepEnded, RepResult

    fs = info.fs
    if isinstance(event, OnsetEvent):
        return event.index, f"onset {channel_label(info, event.channel)}", 0.0
    if isinstance(event, OffsetEvent):
        return event.index, f"offset {channel_label(info, event.channel)}", 0.0
    if isinstance(event, RepResult):
        text = f"rep {event.index + 1} {event.order} {_lag(event.lag_ms)}"
        return event.start, text + (f" ({event.reason})" if event.reason else ""), 0.0
    if isinstance(event, RepEnded):
        r = event.result
        text = f"rep {event.index + 1} span {r.order} {_lag(r.lag_ms)}"
        if r.cued is not None:  # the verdict given live was revised in the final record
            text += f" (revised; the cue said {r.cued})"
        return r.start, text, max(0, event.end - r.start) / fs
    if isinstance(event, ArtefactEvent):
        text = f"artefact {event.kind} {channel_label(info, event.channel)}"
        return event.start, text, max(0, event.stop - event.start) / fs
    if isinstance(event, GapEvent):
        return None
    return None


# ---------------------------------------------------------------------------- recorder


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            reason = "disk full (no space left on device)"
        elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            reason = f"folder not writable ({exc.strerror})"
        return reason
    return f"{type(exc).__name__}: {exc}"


class Recorder:
    """Writes one recording. Thread-safe producers; one writer thread of its own.

    ``info`` is the stream as delivered (``Chunk`` samples in microvolts, except channels
    whose unit is a count, e.g. the simulator's sample counter). ``record_s`` is the data
    record length (at most 1 s; adjusted to hold a whole number of samples).
    ``resolution_uv`` is the step of the 24-bit EMG channels: 0.01 uV gives +-83886 uV.
    Invalid arguments raise ``ValueError`` here; nothing after construction raises.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: StreamInfo,
        meta: SessionMeta | None = None,
        settings: DspSettings | None = None,
        calibration: dict[str, Any] | None = None,
        record_s: float = 0.25,
        *,
        resolution_uv: float = 0.01,
        sync_s: float = 0.5,
        overwrite: bool = False,
        device_info: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.sidecar = fmt.sidecar_path(self.path)
        self.info = info
        self.meta = meta or SessionMeta(device=info.source)
        self.settings = settings or DspSettings()
        self._start_settings = self.settings  # (``settings`` follows the changes)
        self.calibration = calibration
        self.device_info = dict(device_info or {})
        self._verdicts: dict[int, tuple[int, str]] = {}  # rep index -> (start, order)
        # verdicts of reps older than the newest VERDICTS_KEPT, counted only: a rep is judged
        # again (replaced) only early on or soon after its decision, and hours of reps kept
        # one entry each grew the session without bound (issue 11)
        self._older_verdicts: dict[str, int] = {}
        self.sync_s = sync_s
        self.overwrite = overwrite
        self.record_s, _, self.spr = fmt.record_duration(info.fs, record_s)
        if self.record_s != record_s:
            log.info(
                "data records of %g s (%g s is no whole number of samples)", self.record_s, record_s
            )
        self.ann_bytes = 3 * max(40, int(np.ceil(ANNOTATION_BYTES_PER_S * self.record_s / 3)))
        self.specs = self._signal_specs(resolution_uv)
        self.state = "idle"
        self.error: str | None = None
        self.started_at: datetime | None = None
        # counters: written by the writer thread, read anywhere (ints: atomic enough)
        self.received = 0
        self.lost_samples = 0
        self.gaps = 0
        self.duplicates = 0
        self.clipped = 0
        self.annotations = 0
        self.records_written = 0
        self._rows = 0  # rows assembled (the file's true length once flushed)
        self._last_index = 0
        self._first: int | None = None
        self._next = 0
        self._buf = np.empty((self.spr, info.n_channels))
        self._fill = 0
        self._ready: list[np.ndarray] = []  # complete records waiting to be written
        self._pending: collections.deque[tuple[int, str, float]] = collections.deque()
        self._settings_changes: list[dict[str, Any]] = []
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._header: fmt.BdfHeader | None = None
        self._last_sync = 0.0
        self._dirty = False
        self._clip_warned = False
        self._state_lock = threading.Lock()  # stop() vs the writer's own state changes

    # -- layout --------------------------------------------------------------------------
    def _signal_specs(self, resolution_uv: float) -> list[fmt.SignalSpec]:
        info = self.info
        labels = fmt.unique_labels(info.channel_names)
        specs = []
        for i, label in enumerate(labels):
            unit = info.units[i]
            role = info.role_of(i)
            voltage = microvolt_factor(unit) is not None or not unit.strip()
            tag = f" role={role.value}" if role else ""
            if info.channel_names[i] == "counter" or unit.strip().lower() in fmt.COUNT_UNITS:
                specs.append(fmt.count_spec(label, "sample counter", self.spr))
            elif voltage:  # chunks carry microvolts whatever the device reported
                specs.append(fmt.emg_spec(label, "sEMG" + tag, resolution_uv, self.spr))
            else:  # some other quantity, stored at the same step in its own unit
                dim = fmt.ascii_text(unit)[:8]
                specs.append(fmt.emg_spec(label, tag.strip(), resolution_uv, self.spr, dim))
        return specs

    def _header_for(self, when: datetime, n_records: int) -> fmt.BdfHeader:
        meta = self.meta
        patient = f"{fmt.header_word(meta.athlete, 30)} X X X"
        recording = (
            f"Startdate {fmt.edf_date(when)} {fmt.header_word(meta.session, 20)} "
            f"{fmt.header_word(meta.operator, 20)} {fmt.EQUIPMENT}"
        )
        labels = [s.label for s in self.specs]
        roles = ",".join(f"{r.value}={labels[i]}" for r, i in self.info.roles.items())
        if roles and " " not in roles and len(recording) + len(roles) + 7 <= 80:
            recording += f" roles:{roles}"  # devices.files reads this too
        signals = (*self.specs, fmt.annotation_spec(self.ann_bytes))
        duration = fmt.format_seconds(self.record_s)
        return fmt.BdfHeader(patient, recording, when, fmt.RESERVED, n_records, duration, signals)

    def _sidecar_doc(self, state: str, summary: dict[str, Any] | None = None) -> dict[str, Any]:
        info = self.info
        return {
            "schema": fmt.SIDECAR_SCHEMA,
            "state": state,
            "bdf": self.path.name,
            "created": self.started_at.astimezone().isoformat() if self.started_at else None,
            "writer": {"app": _app_version(), "pid": os.getpid(), "host": socket.gethostname()},
            "stream": {
                "fs": info.fs,
                "channel_names": list(info.channel_names),
                "units": list(info.units),
                "roles": {r.value: info.channel_names[i] for r, i in info.roles.items()},
                "source": info.source,
                "first_index": self._first,
            },
            "format": {
                "record_s": self.record_s,
                "samples_per_record": self.spr,
                "annotation_bytes": self.ann_bytes,
                "lost_sample": "digital minimum of the signal",
                "signals": [
                    {
                        "label": s.label,
                        "unit": s.dimension,
                        "physical": [s.phys_min, s.phys_max],
                        "digital": [s.dig_min, s.dig_max],
                    }
                    for s in self.specs
                ],
            },
            "meta": self.meta.to_dict(),
            "device": {"description": self.meta.device or info.source, **self.device_info},
            "settings": self.settings.to_dict(),
            "settings_at_start": self._start_settings.to_dict(),
            "settings_changes": list(self._settings_changes),
            "calibration": self.calibration,
            "summary": summary,
        }

    # -- producer side (any thread) ------------------------------------------------------
    def start(self) -> bool:
        """Create the file and the sidecar and start the writer. False (and :attr:`error`)
        if the folder is not writable or the file exists."""
        if self.state != "idle":
            log.warning("recorder already started (%s)", self.state)
            return self.state == "recording"
        self.started_at = datetime.now()
        fd = None
        created = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)
            if not self.overwrite:
                flags |= os.O_EXCL
            fd = os.open(self.path, flags, 0o644)
            created = not self.overwrite
            _lock(fd, self.path)
            os.ftruncate(fd, 0)
            self._header = self._header_for(self.started_at, fmt.UNKNOWN_RECORDS)
            try:
                _write_all(fd, self._header.encode())
            except _PartialWriteError as exc:  # a full disk at the very start
                raise exc.error from None
            os.fsync(fd)
            fmt.write_json_atomic(self.sidecar, self._sidecar_doc("recording"))
        except FileExistsError:
            self._fail_start(fd, f"{self.path} already exists")
            return False
        except OSError as exc:
            self._fail_start(fd, f"cannot record to {self.path.parent}: {_one_line(exc)}")
            if created:  # e.g. the disk filled up between the header and the sidecar
                with contextlib.suppress(OSError):
                    self.path.unlink()
            return False
        self._fd = fd
        self._last_sync = time.monotonic()
        self.state = "recording"
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        log.info("recording to %s", self.path)
        return True

    def _fail_start(self, fd: int | None, message: str) -> None:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.error = message
        self.state = "error"
        log.info("recording not started: %s", message)  # the caller tells the user, once

    def write(self, chunk: Chunk) -> None:
        """Queue a raw chunk (never blocks; ignored unless recording)."""
        if self.state == "recording":
            self._last_index = max(self._last_index, chunk.stop)
            self._queue.put(("chunk", chunk))

    def add_event(self, index: int, text: str, duration_s: float = 0.0) -> None:
        """Queue an annotation at stream sample ``index`` (exact onset in the file)."""
        if self.state == "recording":
            self._queue.put(("event", int(index), str(text), float(duration_s)))

    def add_dsp_event(self, event: object) -> None:
        """Annotate a pipeline event (onset, offset, rep verdict, rep span, artefact)."""
        from dsp.events import RepsRejudged
        from dsp.reps import RepEnded, RepResult

        if self.state == "recording":  # verdict counts for the session browser (sidecar)
            if isinstance(event, RepEnded):  # the final record (a cue may have been revised)
                if event.index in self._verdicts:
                    self._verdicts[event.index] = (event.result.start, event.result.order)
            elif isinstance(event, RepResult):
                self._verdicts[event.index] = (event.start, event.order)
                while len(self._verdicts) > VERDICTS_KEPT:
                    _, order = self._verdicts.pop(next(iter(self._verdicts)))
                    self._older_verdicts[order] = self._older_verdicts.get(order, 0) + 1
            elif isinstance(event, RepsRejudged):
                lo, hi = event.since, event.upto  # (the reps before lo stand)
                kept = {i: v for i, v in self._verdicts.items() if not lo <= v[0] < hi}
                self._verdicts = kept | {r.index: (r.start, r.order) for r in event.reps}
        if isinstance(event, RepsRejudged):
            for rep in event.reps:
                text = f"rep {rep.index + 1} re-judged {rep.order} {_lag(rep.lag_ms)}"
                self.add_event(rep.start, text + (f" ({rep.reason})" if rep.reason else ""))
            return
        ann = event_annotation(event, self.info)
        if ann is not None:
            self.add_event(*ann)

    @property
    def verdicts(self) -> dict[str, int]:
        counts = dict(self._older_verdicts)
        for _, order in self._verdicts.values():
            counts[order] = counts.get(order, 0) + 1
        return counts

    def mark(self, text: str, index: int | None = None) -> None:
        """A user marker (``mark: text``) at ``index``, default the newest sample."""
        self.add_event(self._last_index if index is None else index, f"mark: {text}")

    def set_calibration(self, calibration: dict[str, Any] | None) -> None:
        """Store (replace) the calibration in the sidecar."""
        if self.state == "recording":
            self._queue.put(("calibration", calibration))

    def update_settings(self, settings: DspSettings, index: int | None = None) -> None:
        """Record a settings change at ``index`` (default: now) for exact replay."""
        if self.state == "recording":
            at = self._last_index if index is None else int(index)
            self._queue.put(("settings", settings, at))

    @property
    def last_index(self) -> int:
        """Stream index one past the newest sample given to :meth:`write`."""
        return self._last_index

    @property
    def samples_written(self) -> int:
        """Samples on disk in complete data records (gap fill included, padding not)."""
        return min(self.records_written * self.spr, self._rows)

    def stop(self, timeout: float = 30.0) -> RecordingSummary:
        """Write what is queued, pad the last record, finalise the header and the sidecar."""
        thread = self._thread
        if thread is not None:
            with self._state_lock:
                if self.state == "recording":
                    self.state = "stopping"  # producers stop queueing
            self._queue.put(("stop",))
            thread.join(timeout)
            if thread.is_alive():
                log.error("recorder did not finish within %g s", timeout)
            else:
                self._thread = None
        return self.summary()

    def summary(self) -> RecordingSummary:
        rows = self.samples_written
        return RecordingSummary(
            path=self.path,
            sidecar=self.sidecar,
            state=self.state,
            samples=rows,
            duration_s=rows / self.info.fs,
            received=self.received,
            lost_samples=self.lost_samples,
            gaps=self.gaps,
            duplicates=self.duplicates,
            clipped=self.clipped,
            annotations=self.annotations,
            error=self.error,
        )

    # -- writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        try:
            while not stop:
                try:
                    item = self._queue.get(timeout=self.sync_s / 2)
                except queue.Empty:
                    item = None
                handled = 0
                while item is not None:
                    stop |= self._handle(item)
                    handled += 1
                    # Bounded batches: a fast producer must not keep records off the disk.
                    if stop or handled >= _BATCH_ITEMS:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        item = None
                self._flush()
                if self._dirty and time.monotonic() - self._last_sync >= self.sync_s:
                    self._sync()
            self._finalise()
        except OSError as exc:
            self._disk_error(exc)
        except Exception as exc:  # a bug must not take the stream down with it
            log.exception("recorder failed")
            self._disk_error(exc)

    def _handle(self, item: tuple[Any, ...]) -> bool:
        kind = item[0]
        if kind == "chunk":
            self._add_chunk(item[1])
        elif kind == "event":
            self._pending.append((item[1], item[2], item[3]))
        elif kind == "calibration":
            self.calibration = item[1]
            self._write_sidecar("recording")
        elif kind == "settings":
            self.settings = item[1]
            self._settings_changes.append({"index": item[2], "settings": item[1].to_dict()})
            self._pending.append((item[2], "settings changed", 0.0))
            self._write_sidecar("recording")
        elif kind == "stop":
            return True
        return False

    def _add_chunk(self, chunk: Chunk) -> None:
        data = chunk.data
        if data.shape[1] != self.info.n_channels:
            raise ValueError(f"chunk has {data.shape[1]} channels, expected {self.info.n_channels}")
        first_chunk = self._first is None
        if first_chunk:
            self._first = self._next = chunk.start
        if chunk.start > self._next:
            n = chunk.start - self._next
            self._pending.append((self._next, f"gap {n} samples", n / self.info.fs))
            self.gaps += 1
            self.lost_samples += n
            self._append(None, n)
        elif chunk.start < self._next:  # the contract says never; keep the file consistent
            skip = min(self._next - chunk.start, data.shape[0])
            self.duplicates += skip
            log.warning("recorder: %d duplicate samples at %d dropped", skip, chunk.start)
            data = data[skip:]
        self.received += data.shape[0]
        self._append(data, data.shape[0])
        if first_chunk:
            self._write_sidecar("recording")  # now with the stream index of row 0

    def _append(self, data: np.ndarray | None, n: int) -> None:
        """Append ``n`` rows (``None``: lost samples) to the record being filled."""
        pos = 0
        while pos < n:
            take = min(n - pos, self.spr - self._fill)
            rows = slice(self._fill, self._fill + take)
            self._buf[rows] = np.nan if data is None else data[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == self.spr:
                self._ready.append(self._buf.copy())
                self._fill = 0
                if len(self._ready) >= _BATCH_RECORDS:  # a long gap: write as we go
                    self._flush()
        self._next += n
        self._rows += n

    def _annotations_for(self, k: int) -> bytes:
        """Record ``k``'s annotation block: its time stamp, then queued events that fit
        (the rest wait for the next record; their onsets stay exact)."""
        fs = self.info.fs
        first = self._first or 0
        block = bytearray(fmt.timekeeping_tal(k * self.record_s))
        alone = len(block)
        while self._pending:
            index, text, duration = self._pending[0]
            onset = max(0, index - first) / fs  # an event before the first sample: at 0
            room = self.ann_bytes - len(block)
            piece = fmt.tal(onset, text, duration)
            if len(piece) > room:
                if len(block) > alone:
                    break  # carried over to the next record
                # Too long even for an empty record: shortened (or, absurdly long, dropped).
                short = fmt.fit_tal(onset, text, duration, room)
                if short is None:
                    log.warning("annotation %r does not fit a data record; dropped", text)
                    self._pending.popleft()
                    continue
                piece = short
            block += piece
            self._pending.popleft()
            self.annotations += 1
        return bytes(block)

    def _flush(self) -> None:
        """Encode and write the complete records."""
        if not self._ready:
            return
        assert self._fd is not None
        stack = np.stack(self._ready)
        digital = np.empty(stack.shape, dtype=np.int32)
        for j, spec in enumerate(self.specs):
            digital[:, :, j], clipped = spec.to_digital(stack[:, :, j])
            if clipped:
                self.clipped += clipped
                if not self._clip_warned:
                    self._clip_warned = True
                    log.warning(
                        "%s: %s out of range (%s..%s %s): clipped",
                        self.path.name,
                        spec.label,
                        spec.phys_min,
                        spec.phys_max,
                        spec.dimension,
                    )
        first_k = self.records_written
        blocks = [self._annotations_for(first_k + i) for i in range(len(self._ready))]
        payload = fmt.encode_records(digital, blocks, self.ann_bytes)
        rec_bytes = len(payload) // len(self._ready)
        try:
            _write_all(self._fd, payload)
        except _PartialWriteError as exc:
            self.records_written += exc.written // rec_bytes
            raise exc.error from None
        self.records_written += len(self._ready)
        self._ready.clear()
        self._dirty = True

    def _sync(self) -> None:
        assert self._fd is not None
        os.fsync(self._fd)
        self._dirty = False
        self._last_sync = time.monotonic()

    def _finalise(self) -> None:
        if self._fill or self._pending:
            # The last record is padded with lost samples; the annotation marks the true end.
            end = (self._first or 0) + self._rows
            self._pending.append((end, fmt.END_TEXT, 0.0))
            rows = self._rows
            if self._fill:
                self._append(None, self.spr - self._fill)
            self._flush()
            while self._pending:
                self._append(None, self.spr)
                self._flush()
            self._rows = rows
        self._close_file()
        with self._state_lock:
            self.state = "stopped"
        try:
            self._write_sidecar("complete", self._summary_doc())
        except OSError as exc:  # the BDF is complete; repair() updates the sidecar later
            log.warning("%s: sidecar not updated (%s)", self.sidecar, _one_line(exc))
        log.info("recording finished: %s", self.summary().line())

    def _close_file(self) -> None:
        """Cut a partial record, patch the record count, fsync, unlock, close."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        assert self._header is not None
        try:
            end = self._header.header_bytes + self.records_written * self._record_bytes()
            os.ftruncate(fd, end)
            os.lseek(fd, fmt.RECORD_COUNT_OFFSET, os.SEEK_SET)
            _write_all(fd, fmt.records_count_field(self.records_written))
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock

    def _record_bytes(self) -> int:
        return 3 * (self.spr * self.info.n_channels) + self.ann_bytes

    def _disk_error(self, exc: BaseException) -> None:
        """Keep what is on disk, finalise it as far as possible, report one line."""
        kept = self.samples_written / self.info.fs
        with self._state_lock:
            self.error = f"recording stopped: {_one_line(exc)} ({self.path}; {kept:.1f} s saved)"
            self.state = "error"
        log.error("%s", self.error)
        try:
            self._close_file()
        except OSError as close_exc:
            log.warning("%s: header not finalised (%s)", self.path, _one_line(close_exc))
        try:
            self._write_sidecar("stopped_on_error", self._summary_doc())
        except OSError as side_exc:
            log.warning("%s: sidecar not updated (%s)", self.sidecar, _one_line(side_exc))

    def _summary_doc(self) -> dict[str, Any]:
        s = self.summary()
        return {
            "samples": s.samples,
            "duration_s": s.duration_s,
            "records": self.records_written,
            "received": s.received,
            "lost_samples": s.lost_samples,
            "gaps": s.gaps,
            "duplicates": s.duplicates,
            "clipped": s.clipped,
            "annotations": s.annotations,
            "verdicts": dict(self.verdicts),
            "ended": datetime.now().astimezone().isoformat(),
            "error": s.error,
        }

    def _write_sidecar(self, state: str, summary: dict[str, Any] | None = None) -> None:
        fmt.write_json_atomic(self.sidecar, self._sidecar_doc(state, summary))


def _app_version() -> str:
    try:
        from importlib.metadata import version

        return f"fireorder {version('fireorder')}"
    except Exception:  # not installed as a package
        return "fireorder"


class _PartialWriteError(Exception):
    def __init__(self, written: int, error: OSError) -> None:
        super().__init__(str(error))
        self.written = written
        self.error = error


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    done = 0
    while done < len(view):
        try:
            done += os.write(fd, view[done:])
        except OSError as exc:
            raise _PartialWriteError(done, exc) from None


def _lock(fd: int, path: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RecordingInUseError(
            errno.EBUSY, "another recording is writing this file", str(path)
        ) from None
    except OSError as exc:  # file systems without locks: the sidecar's pid is the fallback
        log.debug("no lock on %s: %s", path, exc)


# ------------------------------------------------------------------------- recovery


def _in_use(path: Path) -> bool:
    """Whether a live process is still writing ``path``."""
    if fcntl is not None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            pass
        else:
            return False
        finally:
            os.close(fd)
    writer = fmt.sidecar_part(fmt.read_sidecar(path), "writer")
    if writer.get("host") != socket.gethostname() or not isinstance(writer.get("pid"), int):
        return False
    try:
        os.kill(writer["pid"], 0)
    except OSError:
        return False
    return True


def find_unfinished(folder: str | os.PathLike[str]) -> list[Path]:
    """fireorder recordings in ``folder`` whose writer died (header count -1, a partial
    record, or a sidecar still saying "recording"), skipping files being recorded now."""
    base = Path(folder)
    if not base.is_dir():
        return []
    found = []
    for path in sorted(p for p in base.iterdir() if p.suffix.lower() == ".bdf" and p.is_file()):
        if not fmt.is_fireorder_recording(path):
            continue
        try:
            layout = fmt.inspect_file(path)
        except (OSError, ValueError):
            continue
        side = fmt.read_sidecar(path) or {}
        if (layout.finalised and side.get("state") != "recording") or _in_use(path):
            continue
        found.append(path)
    return found


def repair(path: str | os.PathLike[str]) -> RepairReport:
    """Finalise a recording whose writer was killed: drop a partial last record, write the
    number of complete records into the header, mark the sidecar ``repaired``.

    Raises :class:`RecordingInUseError` if a live recorder holds it, ``ValueError`` (a
    ``ReaderError``) if it is not a readable BDF, ``OSError`` if it cannot be written.
    """
    p = Path(path)
    try:
        layout = fmt.inspect_file(p)
    except fmt.FormatError as exc:
        raise fmt.ReaderError(f"cannot repair {str(p)!r}: {exc}") from None
    h = layout.header
    fd = os.open(p, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        _lock(fd, p)
        complete = max(0, layout.size - h.header_bytes) // h.record_bytes
        end = h.header_bytes + complete * h.record_bytes
        cut = max(0, layout.size - end)
        patched = h.n_records != complete
        if cut:
            os.ftruncate(fd, end)
        if patched:
            os.lseek(fd, fmt.RECORD_COUNT_OFFSET, os.SEEK_SET)
            _write_all(fd, fmt.records_count_field(complete))
        if cut or patched:
            os.fsync(fd)
    except _PartialWriteError as exc:
        raise exc.error from None
    finally:
        os.close(fd)
    spr = h.signals[h.data_signals[0]].samples_per_record
    samples = complete * spr
    if complete:
        with contextlib.suppress(fmt.ReaderError):
            samples = fmt.read_fireorder_bdf(p).n_samples  # honours an end-of-recording mark
    report = RepairReport(p, complete, samples, samples / h.fs, cut, patched, False)
    side = fmt.read_sidecar(p)
    if side is not None:
        if cut or patched or side.get("state") == "recording":
            side["state"] = "repaired"
        summary = fmt.sidecar_part(side, "summary")
        summary.update(
            records=complete,
            samples=samples,
            duration_s=samples / h.fs,
            repaired=datetime.now().astimezone().isoformat(),
            truncated_bytes=cut,
        )
        side["summary"] = summary
        fmt.write_json_atomic(fmt.sidecar_path(p), side)
        report = RepairReport(p, complete, samples, samples / h.fs, cut, patched, True)
    for stale in p.parent.glob(fmt.sidecar_path(p).name + ".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
    log.info("%s", report.line())
    return report


def recover_folder(folder: str | os.PathLike[str]) -> list[RepairReport]:
    """Repair every unfinished recording in ``folder`` (what the app does on start)."""
    reports = []
    for path in find_unfinished(folder):
        try:
            reports.append(repair(path))
        except (OSError, ValueError) as exc:
            log.warning("cannot repair %s: %s", path, exc)
        except Exception as exc:  # one odd file never stops the app or a new recording
            log.warning("cannot repair %s: %s: %s", path, type(exc).__name__, exc)
            log.debug("repair of %s failed", path, exc_info=True)
    return reports
