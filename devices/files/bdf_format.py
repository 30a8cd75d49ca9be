"""The fireorder recording format: BDF+ (24-bit) with EDF+ annotations, plus a JSON sidecar.

See ``docs/recording-format.md``. This module holds the primitives (header, data records, TAL
annotations, channel profiles), the sidecar, and the reader for fireorder's own files:

* :func:`read_fireorder_bdf` reads a recording into a :class:`devices.files.Recording` —
  also one whose writer was killed (header count ``-1``, partial last record): the complete
  records are counted from the file size. Lost samples (the digital minimum) become NaN.
* :func:`is_fireorder_recording` tells fireorder's files from other BDF files.
* :func:`inspect_file` describes a file's layout for repair.

No Qt, no writer state here (that is :mod:`devices.files.recorder`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from devices.files.common import (
    check_memory,
    clean_name,
    microvolt_factor,
    parse_roles_line,
    role_of_label,
    unique_names,
)
from devices.files.model import Annotation, FormatError, ReaderError, Recording
from devices.files.signatures import BDF_MAGIC

log = logging.getLogger(__name__)

RESERVED = "BDF+C"  # continuous: lost samples are written as the sentinel, never skipped
ANNOTATION_LABEL = "BDF Annotations"
EQUIPMENT = "fireorder"  # EDF+ "equipment" subfield: marks a file written by fireorder
SIDECAR_SCHEMA = "fireorder.recording/1"
SIDECAR_SUFFIX = ".json"
END_TEXT = "end of recording"  # annotation at the true end when the last record is padded
UNKNOWN_RECORDS = -1  # header record count while recording (EDF+ spec, section 2.1.3)

DIG_MIN, DIG_MAX = -(2**23), 2**23 - 1
#: EMG channels use a symmetric digital range of round numbers so that the physical limits
#: fit the 8-character header fields exactly (0.01 uV/bit -> +-83886 uV). The digital
#: minimum is the sentinel for a lost sample; real data are clipped to one above it.
EMG_DIGITAL = 8_388_600
#: Counter channels store integers 0..COUNT_MODULUS-1 exactly (physical = digital + 8388607);
#: larger values wrap, the sentinel reads as -1.
COUNT_MODULUS = 2**24 - 1
COUNT_UNITS = frozenset({"count", "counts", "cnt", "index", "sample", "samples"})

HEADER_FIELDS = (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)  # per-signal fields, in header order
MAX_SIGNALS = 4096
MAX_SAMPLES_PER_RECORD = 10_000_000
MAX_RECORD_BYTES = 64 * 2**20
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_RECORD_CANDIDATES = (0.25, 0.2, 0.1, 0.5, 0.125, 0.05, 1.0, 0.04, 0.02, 0.01)
_ROLE_IN_TEXT = re.compile(r"\brole\s*[=:]\s*([A-Za-z_]+)", re.I)
_TAL = re.compile(rb"^([+-]\d+(?:\.\d*)?)(?:\x15(\d+(?:\.\d*)?))?\x14(.*)\x14$", re.S)

IntArray = NDArray[np.int32]
FloatArray = NDArray[np.float64]


# ------------------------------------------------------------------------------- text


def ascii_text(text: object) -> str:
    """Printable US-ASCII (what EDF header fields allow): accents dropped, the rest '_'."""
    norm = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return "".join(c if 32 <= ord(c) < 127 else "_" for c in norm)


def header_word(text: object, limit: int = 80, empty: str = "X") -> str:
    """One EDF+ subfield: ASCII without spaces (EDF+ replaces them by '_'), or ``X``."""
    word = re.sub(r"\s+", "_", ascii_text(text).strip())[:limit]
    return word or empty


def format_seconds(value: float) -> str:
    """Seconds as EDF+ writes them: plain decimal, no exponent, no trailing zeros."""
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def annotation_text(text: object) -> str:
    """Control characters (the TAL separators among them) become spaces."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in str(text)).strip()


def tal(onset_s: float, text: str, duration_s: float = 0.0) -> bytes:
    """One time-stamped annotation list: ``+onset[\\x15duration]\\x14text\\x14\\x00``."""
    head = ("+" if onset_s >= 0 else "") + format_seconds(onset_s)
    if duration_s > 0:
        head += "\x15" + format_seconds(duration_s)
    return (head + "\x14").encode() + annotation_text(text).encode("utf-8") + b"\x14\x00"


def timekeeping_tal(record_start_s: float) -> bytes:
    """The first TAL of every data record: the record's start time, no text."""
    return ("+" + format_seconds(record_start_s) + "\x14\x14\x00").encode()


def fit_tal(onset_s: float, text: str, duration_s: float, room: int) -> bytes | None:
    """The TAL, its text shortened (on a UTF-8 boundary, with '...') to fit ``room`` bytes;
    None if not even the time stamp fits."""
    full = tal(onset_s, text, duration_s)
    if len(full) <= room:
        return full
    bare = tal(onset_s, "", duration_s)
    budget = room - len(bare) - 3
    if budget < 1:
        return None
    body = annotation_text(text).encode("utf-8")[:budget].decode("utf-8", "ignore")
    return tal(onset_s, body + "...", duration_s)


def parse_tals(block: bytes) -> list[tuple[float, float, list[str]]]:
    """TALs of one record's annotation bytes: ``(onset, duration, texts)`` each."""
    out: list[tuple[float, float, list[str]]] = []
    for part in block.split(b"\x00"):
        if not part:
            continue
        m = _TAL.match(part)
        if m is None:
            raise FormatError(f"unreadable annotation {part[:40]!r}")
        texts = [t.decode("utf-8", "replace") for t in m.group(3).split(b"\x14")]
        out.append((float(m.group(1)), float(m.group(2) or 0.0), texts))
    return out


# ---------------------------------------------------------------------- channel profiles


@dataclass(frozen=True)
class SignalSpec:
    """One signal of the header. Physical limits are kept as written (exact decimals)."""

    label: str
    transducer: str
    dimension: str
    phys_min: str
    phys_max: str
    dig_min: int
    dig_max: int
    prefilter: str
    samples_per_record: int

    @property
    def gain(self) -> float:
        return (float(self.phys_max) - float(self.phys_min)) / (self.dig_max - self.dig_min)

    @property
    def offset(self) -> float:
        return float(self.phys_min) - self.gain * self.dig_min

    @property
    def is_annotation(self) -> bool:
        return self.label.strip() in (ANNOTATION_LABEL, "EDF Annotations")

    @property
    def kind(self) -> str:
        """``count`` for a counter channel, ``value`` for anything else."""
        return "count" if self.dimension.strip().lower() in COUNT_UNITS else "value"

    def to_digital(self, x: FloatArray) -> tuple[IntArray, int]:
        """Digital values of physical ``x``; NaN -> the sentinel. Returns the clip count."""
        lost = ~np.isfinite(x)
        if self.kind == "count":
            x = np.mod(np.where(lost, 0.0, np.rint(x)), COUNT_MODULUS)
        with np.errstate(invalid="ignore"):
            d = np.rint((np.where(lost, 0.0, x) - self.offset) / self.gain)
        clipped = int(np.count_nonzero((d < self.dig_min + 1) | (d > self.dig_max)))
        out = np.clip(d, self.dig_min + 1, self.dig_max).astype(np.int32)
        out[lost] = self.dig_min
        return out, clipped

    def to_physical(self, d: IntArray) -> FloatArray:
        x = d.astype(np.float64) * self.gain + self.offset
        x[d == self.dig_min] = np.nan
        return x


def _limit_text(value: float) -> str:
    text = format_seconds(value)
    if len(text) > 8 or not math.isclose(float(text), value, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"physical limit {value!r} does not fit an 8-character header field")
    return text


def emg_spec(
    label: str, transducer: str, resolution_uv: float, spr: int, unit: str = "uV"
) -> SignalSpec:
    """A signal in microvolts (or another unit) at ``resolution_uv`` per digit."""
    top = _limit_text(EMG_DIGITAL * resolution_uv)
    return SignalSpec(label, transducer, unit, "-" + top, top, -EMG_DIGITAL, EMG_DIGITAL, "", spr)


def count_spec(label: str, transducer: str, spr: int) -> SignalSpec:
    """An integer counter: 0 .. 16777214 exact, the sentinel reads -1."""
    return SignalSpec(
        label, transducer, "count", "-1", str(COUNT_MODULUS - 1), DIG_MIN, DIG_MAX, "", spr
    )


def annotation_spec(n_bytes: int) -> SignalSpec:
    return SignalSpec(ANNOTATION_LABEL, "", "", "-1", "1", DIG_MIN, DIG_MAX, "", n_bytes // 3)


def unique_labels(names: Sequence[str]) -> list[str]:
    """16-character ASCII labels, kept unique after truncation."""
    out: list[str] = []
    for i, name in enumerate(names):
        label = ascii_text(name).strip()[:16] or f"ch{i + 1}"
        k = 2
        while label in out or label == ANNOTATION_LABEL:
            suffix = f"~{k}"
            label = ascii_text(name).strip()[: 16 - len(suffix)] + suffix
            k += 1
        out.append(label)
    return out


def record_duration(fs: float, wanted: float) -> tuple[float, str, int]:
    """A data-record duration near ``wanted`` that holds a whole number of samples and is an
    exact decimal: ``(seconds, header text, samples per record)``."""
    for d in (wanted, *_RECORD_CANDIDATES):
        if not 0 < d <= 1.0:
            continue
        n = fs * d
        text = format_seconds(d)
        if len(text) <= 8 and float(text) == d and abs(n - round(n)) < 1e-6 and round(n) >= 1:
            return d, text, round(n)
    raise ValueError(
        f"sampling rate {fs:g} Hz cannot be stored exactly in BDF data records of at most 1 s"
    )


# ------------------------------------------------------------------------------- header


@dataclass(frozen=True)
class BdfHeader:
    patient: str
    recording: str
    start: datetime
    reserved: str
    n_records: int
    record_s_text: str
    signals: tuple[SignalSpec, ...]

    @property
    def header_bytes(self) -> int:
        return 256 * (len(self.signals) + 1)

    @property
    def record_bytes(self) -> int:
        return 3 * sum(s.samples_per_record for s in self.signals)

    @property
    def record_s(self) -> float:
        return float(self.record_s_text)

    @property
    def data_signals(self) -> list[int]:
        return [i for i, s in enumerate(self.signals) if not s.is_annotation]

    @property
    def annotation_signals(self) -> list[int]:
        return [i for i, s in enumerate(self.signals) if s.is_annotation]

    @property
    def fs(self) -> float:
        return self.signals[self.data_signals[0]].samples_per_record / self.record_s

    def encode(self) -> bytes:
        t = self.start
        main = (
            BDF_MAGIC.decode("latin-1")  # 0xFF is outside ASCII: not through _field
            + _field(self.patient, 80)
            + _field(self.recording, 80)
            + _field(f"{t.day:02d}.{t.month:02d}.{t.year % 100:02d}", 8)
            + _field(f"{t.hour:02d}.{t.minute:02d}.{t.second:02d}", 8)
            + _field(str(self.header_bytes), 8)
            + _field(self.reserved, 44)
            + _field(str(self.n_records), 8)
            + _field(self.record_s_text, 8)
            + _field(str(len(self.signals)), 4)
        )
        parts = [main]
        getters = (
            lambda s: s.label,
            lambda s: s.transducer,
            lambda s: s.dimension,
            lambda s: s.phys_min,
            lambda s: s.phys_max,
            lambda s: str(s.dig_min),
            lambda s: str(s.dig_max),
            lambda s: s.prefilter,
            lambda s: str(s.samples_per_record),
            lambda s: "",
        )
        for width, get in zip(HEADER_FIELDS, getters, strict=True):
            parts.extend(_field(get(s), width) for s in self.signals)
        raw = "".join(parts).encode("latin-1")
        assert len(raw) == self.header_bytes
        return raw

    @classmethod
    def parse(cls, raw: bytes) -> BdfHeader:
        """Parse and check a BDF header (``raw`` holds at least the whole header)."""
        if len(raw) < 256:
            raise FormatError(f"truncated: {len(raw)} bytes, a BDF header alone needs 256")
        if raw[:8] != BDF_MAGIC:
            raise FormatError("not a BDF file (unknown version field)")
        text = raw.decode("latin-1")
        n_signals = _int(text[252:256], "number of signals")
        if not 1 <= n_signals <= MAX_SIGNALS:
            raise FormatError(f"bad header: {n_signals} signals")
        header_bytes = _int(text[184:192], "header size")
        if header_bytes != 256 * (n_signals + 1):
            raise FormatError(f"bad header: header size {header_bytes} for {n_signals} signals")
        if len(raw) < header_bytes:
            raise FormatError(f"truncated inside the header ({len(raw)} of {header_bytes} bytes)")
        n_records = _int(text[236:244], "number of data records")
        if n_records < UNKNOWN_RECORDS:
            raise FormatError(f"bad header: {n_records} data records")
        record_s_text = text[244:252].strip()
        try:
            record_s = float(record_s_text)
        except ValueError:
            raise FormatError(f"bad header: record duration {record_s_text!r}") from None
        if not 0 < record_s < 1e6:
            raise FormatError(f"bad header: record duration {record_s_text!r}")
        fields: list[list[str]] = []
        pos = 256
        for width in HEADER_FIELDS:
            fields.append([text[pos + i * width : pos + (i + 1) * width] for i in range(n_signals)])
            pos += width * n_signals
        signals = []
        for i in range(n_signals):
            spr = _int(fields[8][i], "samples per record")
            if not 1 <= spr <= MAX_SAMPLES_PER_RECORD:
                raise FormatError(f"bad header: {spr} samples per record")
            dmin, dmax = _int(fields[5][i], "digital minimum"), _int(fields[6][i], "digital max")
            if not DIG_MIN <= dmin < dmax <= DIG_MAX:
                raise FormatError(f"bad header: digital range {dmin}..{dmax}")
            pmin, pmax = fields[3][i].strip(), fields[4][i].strip()
            for value in (pmin, pmax):
                try:
                    ok = math.isfinite(float(value))
                except ValueError:
                    ok = False
                if not ok:
                    raise FormatError(f"bad header: physical limit {value!r}")
            if float(pmin) == float(pmax):
                raise FormatError("bad header: equal physical minimum and maximum")
            signals.append(
                SignalSpec(
                    fields[0][i].strip(),
                    fields[1][i].strip(),
                    fields[2][i].strip(),
                    pmin,
                    pmax,
                    dmin,
                    dmax,
                    fields[7][i].strip(),
                    spr,
                )
            )
        header = cls(
            patient=text[8:88].strip(),
            recording=text[88:168].strip(),
            start=_parse_start(text[168:176], text[176:184]),
            reserved=text[192:236].strip(),
            n_records=n_records,
            record_s_text=record_s_text,
            signals=tuple(signals),
        )
        if header.record_bytes > MAX_RECORD_BYTES:
            raise FormatError(f"bad header: {header.record_bytes} bytes per data record")
        if not header.data_signals:
            raise FormatError("no signals (annotations only)")
        return header

    def with_records(self, n: int) -> BdfHeader:
        return BdfHeader(
            self.patient,
            self.recording,
            self.start,
            self.reserved,
            n,
            self.record_s_text,
            self.signals,
        )


def _field(text: str, width: int) -> str:
    return ascii_text(text)[:width].ljust(width)


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise FormatError(f"bad header: {what} is {text.strip()[:20]!r}, not an integer") from None


def _parse_start(date: str, time: str) -> datetime:
    try:
        d, m, y = (int(x) for x in date.strip().split("."))
        hh, mm, ss = (int(x) for x in time.strip().split("."))
        return datetime(2000 + y if y < 85 else 1900 + y, m, d, hh, mm, ss)
    except ValueError:
        return datetime(1985, 1, 1)  # EDF+'s "unknown" date: no reason to refuse the data


def edf_date(t: datetime) -> str:
    return f"{t.day:02d}-{_MONTHS[t.month - 1]}-{t.year:04d}"


def records_count_field(n: int) -> bytes:
    """The 8 bytes at offset 236 for ``n`` data records."""
    return f"{n:<8d}".encode()


RECORD_COUNT_OFFSET = 236


# --------------------------------------------------------------------------- data records


def encode_records(digital: IntArray, annotations: Sequence[bytes], ann_bytes: int) -> bytes:
    """Data records from ``digital`` ``(n_records, spr, n_signals)`` and one annotation block
    per record (zero-padded to ``ann_bytes``). Values are 24-bit little endian, signal-major
    inside a record, the annotation signal last."""
    n_rec, spr, n_sig = digital.shape
    le = np.ascontiguousarray(digital.transpose(0, 2, 1), dtype="<i4")
    samples = le.view(np.uint8).reshape(n_rec, n_sig * spr, 4)[:, :, :3].reshape(n_rec, -1)
    ann = np.zeros((n_rec, ann_bytes), dtype=np.uint8)
    for k, block in enumerate(annotations):
        if len(block) > ann_bytes:
            raise ValueError("annotation block larger than the annotation signal")
        ann[k, : len(block)] = np.frombuffer(block, dtype=np.uint8)
    return np.hstack([samples, ann]).tobytes()


def decode_24bit(raw: NDArray[np.uint8]) -> IntArray:
    """Little-endian signed 24-bit integers from ``(..., 3)`` bytes."""
    b = raw.astype(np.int32)
    v = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
    return (v ^ 0x800000) - 0x800000


# ------------------------------------------------------------------------------- sidecar


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """``FILE.bdf`` -> ``FILE.bdf.json``."""
    p = Path(path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def write_json_atomic(path: Path, doc: Mapping[str, Any]) -> None:
    """Write temp + fsync + rename, so a reader sees the old or the new file, never half."""
    data = json.dumps(doc, indent=1, sort_keys=False, default=_json_default).encode()
    import tempfile  # here: it imports random, which reading a file does not need

    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with contextlib.suppress(OSError, AttributeError):
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes it private; a sidecar is not
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _current_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; restored at once (import time)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk; directories cannot be opened on Windows.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _json_default(value: object) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime | Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The sidecar of recording ``path`` (None if absent or unreadable: the BDF stands alone)."""
    side = sidecar_path(path)
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("%s: unreadable sidecar ignored (%s)", side, exc)
        return None
    if not isinstance(doc, dict) or doc.get("schema") != SIDECAR_SCHEMA:
        log.warning("%s: not a %s sidecar; ignored", side, SIDECAR_SCHEMA)
        return None
    return doc


def sidecar_part(doc: Mapping[str, Any] | None, key: str) -> dict[str, Any]:
    """``doc[key]`` when it is an object, else empty: a hand-edited or foreign sidecar whose
    ``stream`` is a string or whose ``summary`` is a list is ignored part by part."""
    value = doc.get(key) if isinstance(doc, Mapping) else None
    return value if isinstance(value, dict) else {}


# ------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class FileLayout:
    """What is on disk: the header, how many records are complete, what trails them."""

    header: BdfHeader
    size: int
    complete_records: int
    trailing_bytes: int  # bytes after the last complete record (a record cut by a kill)

    @property
    def finalised(self) -> bool:
        return self.header.n_records == self.complete_records and self.trailing_bytes == 0


def inspect_file(path: str | os.PathLike[str]) -> FileLayout:
    """Header and record count of a BDF file (FormatError if it is not a readable BDF)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(256)
        if len(head) >= 256 and head[:8] == BDF_MAGIC:
            try:
                n_sig = int(head[252:256].decode("latin-1").strip())
            except ValueError:
                n_sig = 0
            if 1 <= n_sig <= MAX_SIGNALS:
                head += f.read(256 * n_sig)
    header = BdfHeader.parse(head)
    data = max(0, size - header.header_bytes)
    complete = data // header.record_bytes
    if header.n_records >= 0 and header.n_records < complete:
        # A finalised header wins over extra bytes (which the writer never leaves).
        complete = header.n_records
    return FileLayout(header, size, complete, data - complete * header.record_bytes)


def is_fireorder_recording(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a BDF+ written by fireorder (header equipment field or sidecar)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    if len(head) < 256 or head[:8] != BDF_MAGIC:
        return False
    if not head[192:236].decode("latin-1").strip().startswith("BDF+"):
        return False
    words = head[88:168].decode("latin-1").split()
    if len(words) >= 5 and words[0] == "Startdate" and words[4].startswith(EQUIPMENT):
        return True
    return sidecar_path(path).exists() and read_sidecar(path) is not None


def read_fireorder_bdf(path: str | os.PathLike[str]) -> Recording:
    """Read a fireorder recording, finalised or not (see the module docstring).

    Every failure is a :class:`~devices.files.ReaderError` with one line.
    """
    name = os.fspath(path)
    try:
        return _read(name)
    except FormatError as exc:
        raise ReaderError(f"cannot read {name!r}: {exc}") from None
    except ReaderError:
        raise
    except FileNotFoundError:
        raise ReaderError(f"no such file: {name}") from None
    except OSError as exc:
        raise ReaderError(f"cannot read {name!r}: {exc.strerror or exc}") from None
    except MemoryError:
        raise ReaderError(f"cannot read {name!r}: not enough memory") from None


def _read(name: str) -> Recording:
    layout = inspect_file(name)
    h = layout.header
    if not h.reserved.startswith("BDF+"):
        raise FormatError("not a BDF+ file")
    if h.reserved.startswith("BDF+D"):
        raise FormatError("discontinuous BDF+D is not supported")
    data_idx = h.data_signals
    spr = h.signals[data_idx[0]].samples_per_record
    if any(h.signals[i].samples_per_record != spr for i in data_idx):
        raise FormatError("signals with different sampling rates (not a fireorder recording)")
    n_rec = layout.complete_records
    if n_rec < 1:
        raise FormatError("no complete data records")
    if h.n_records == UNKNOWN_RECORDS:
        log.warning(
            "%s: recording was not closed; reading its %d complete data records", name, n_rec
        )
    elif h.n_records > n_rec:
        log.warning("%s: truncated; reading %d of %d data records", name, n_rec, h.n_records)
    # (a sparse file of zeros is "complete" records all the way: check before reading them)
    check_memory(n_rec * spr * len(data_idx), "the file")
    with open(name, "rb") as f:
        raw = np.fromfile(f, dtype=np.uint8, count=n_rec * h.record_bytes, offset=h.header_bytes)
    if raw.size < n_rec * h.record_bytes:
        raise FormatError("file shrank while being read")
    raw = raw.reshape(n_rec, h.record_bytes)

    starts = np.cumsum([0] + [3 * s.samples_per_record for s in h.signals])
    data = np.empty((n_rec * spr, len(data_idx)))
    units: list[str] = []
    for j, i in enumerate(data_idx):
        sig = h.signals[i]
        block = raw[:, starts[i] : starts[i + 1]].reshape(n_rec * spr, 3)
        values = sig.to_physical(decode_24bit(block))
        factor = microvolt_factor(sig.dimension)
        if factor is not None and factor != 1.0:
            values *= factor
        data[:, j] = values
        units.append(sig.dimension)

    annotations: list[Annotation] = []
    end: int | None = None
    unreadable = 0
    for i in h.annotation_signals:
        block = raw[:, starts[i] : starts[i + 1]]
        for k in range(n_rec):
            try:
                tals = parse_tals(block[k].tobytes())
            except FormatError:
                unreadable += 1  # a damaged record's events; its samples are still good
                continue
            for n, (onset, duration, texts) in enumerate(tals):
                if n == 0 and not any(texts):
                    continue  # the record's time stamp
                for text in filter(None, texts):
                    if text == END_TEXT:
                        end = round(onset * h.fs)
                    annotations.append(Annotation(onset, duration, text))
    if unreadable:
        log.warning("%s: annotations of %d data records unreadable; skipped", name, unreadable)
    if end is not None and 0 <= end < data.shape[0]:
        data = data[:end]  # the last record was padded to full length
    annotations.sort(key=lambda a: a.onset_s)

    labels = list(unique_names(h.signals[i].label for i in data_idx))
    side = read_sidecar(name)
    names = labels
    full = sidecar_part(side, "stream").get("channel_names")
    # untruncated names, if the sidecar holds usable ones (a hand edit may hold anything)
    if isinstance(full, list) and len(full) == len(labels) and all(map(_is_str, full)):
        untruncated = [clean_name(x) for x in full]
        if all(untruncated) and len(set(untruncated)) == len(untruncated):
            names = untruncated
    roles = _roles(h, data_idx, names)
    return Recording(
        path=name,
        format="bdf+",
        fs=h.fs,
        channel_names=tuple(names),
        data=data,
        units=tuple(units),
        annotations=tuple(annotations),
        roles=roles,
        start_time=h.start,
    )


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _roles(h: BdfHeader, data_idx: Sequence[int], names: Sequence[str]) -> dict[str, str]:
    """Roles from transducer fields (``role=glute_l``), the recording-additional ``roles:``
    text, or channels named after a role -- the conventions of devices.files."""
    roles: dict[str, str] = {}
    for j, i in enumerate(data_idx):
        m = _ROLE_IN_TEXT.search(h.signals[i].transducer)
        role = role_of_label(m.group(1)) if m else None
        if role and role not in roles:
            roles[role] = names[j]
    words = h.recording.split(" ", 5)
    if len(words) == 6:
        by_label = {h.signals[i].label: names[j] for j, i in enumerate(data_idx)}
        for role, label in (parse_roles_line(words[5]) or {}).items():
            if role not in roles and label in by_label:
                roles[role] = by_label[label]
    for name in names:
        role = role_of_label(name)
        if role and role not in roles and name not in roles.values():
            roles[role] = name
    return roles
