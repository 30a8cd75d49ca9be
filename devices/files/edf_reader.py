"""EDF / EDF+ / BDF / BDF+ through pyedflib.

The fixed-size header is checked here first, so that a truncated or inconsistent file gets a
precise message (pyedflib only says "a read error occurred", and prints to stdout when the
size is wrong). Physical values are converted to microvolts from each signal's dimension. A
BioSemi ``Status`` (trigger) channel is kept unscaled: its low 16 bits are the trigger code.

pyedflib reads the header and the annotations; the samples are decoded here from the data
records with numpy (several times faster than pyedflib's per-sample reads, and the same values:
edflib's ``bitvalue * (offset + digital)``), falling back to pyedflib's ``readSignal`` if the
file's layout does not match what pyedflib reports.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .common import (
    check_memory,
    check_user_units,
    clip,
    microvolt_factor,
    one_line,
    parse_roles_line,
    reconcile_fs,
    role_of_label,
    roles_from_labels,
    unique_names,
)
from .model import Annotation, FormatError, Recording
from .signatures import BDF_MAGIC, EDF_MAGIC

log = logging.getLogger(__name__)

#: an annotation onset further than this from the file's start (a year) is impossible
MAX_ANNOTATION_S = 366 * 86400.0

_FILETYPES = {0: "edf", 1: "edf+", 2: "bdf", 3: "bdf+"}
_TRIGGER_LABELS = {"status", "trigger", "triggers", "trig"}
_ROLE_IN_TEXT = re.compile(r"\brole\s*[=:]\s*([A-Za-z_]+)", re.I)
# Per-signal header field widths, each field stored for all signals in turn: label,
# transducer, dimension, physical min/max, digital min/max, prefilter, samples per record.
_SIGNAL_FIELDS = (16, 80, 8, 8, 8, 8, 8, 80, 8)
MAX_SIGNALS = 4096


@dataclass(frozen=True)
class _Header:
    kind: str  # "EDF" or "BDF"
    n_signals: int
    header_bytes: int = 0
    n_records: int = 0
    samples_per_record: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()  # raw 16-character labels, all signals (annotations too)
    plus: bool = False  # EDF+/BDF+: "EDF Annotations" / "BDF Annotations" signals are not data

    @property
    def bytes_per_sample(self) -> int:
        return 3 if self.kind == "BDF" else 2


def read_edf(path: str, *, fs: float | None, units: str | None) -> Recording:
    # fireorder's own recordings: readable even straight after a kill (record count -1),
    # lost samples back to NaN, roles and events from the file.
    from devices.files.bdf_format import is_fireorder_recording, read_fireorder_bdf

    if is_fireorder_recording(path):
        rec = read_fireorder_bdf(path)
        reconcile_fs(rec.fs, fs, "file header")
        return rec
    user_units = check_user_units(units)
    header = _check_header(path)
    # pyedflib warns (e.g. about undecodable header text); log that instead of letting a
    # warning filter turn it into an exception.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _open_and_read(path, header, fs, user_units)
        finally:
            for w in caught:
                log.info("%s: %s", path, w.message)


def _open_and_read(
    path: str, header: _Header, fs: float | None, user_units: str | None
) -> Recording:
    import pyedflib  # here, not at import: ~15 ms that reading a CSV does not need

    try:
        reader = pyedflib.EdfReader(path)
    except Exception as exc:  # OSError for bad files; anything else is also the file's fault
        raise FormatError(f"{header.kind} reader: {_reason(exc, path)}") from None
    try:
        return _read(reader, path, header, fs, user_units)
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(f"{header.kind} reader: {_reason(exc, path)}") from None
    finally:
        reader.close()


def _reason(exc: BaseException, path: str) -> str:
    text = str(exc) or type(exc).__name__
    if text.startswith(path):
        text = text[len(path) :].lstrip(": ")
    return one_line(text)


def _field_int(raw: bytes, what: str) -> int:
    text = raw.decode("latin-1").strip()
    try:
        return int(text)
    except ValueError:
        raise FormatError(f"bad header: {what} is {clip(text)}, not an integer") from None


def _check_header(path: str) -> _Header:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(256)
        if len(head) < 256:
            raise FormatError(f"truncated: {size} bytes, an EDF/BDF header alone needs 256")
        if head[:8] == BDF_MAGIC:
            kind, bytes_per_sample = "BDF", 3
        elif head[:8] == EDF_MAGIC:
            kind, bytes_per_sample = "EDF", 2
        else:
            raise FormatError("not an EDF or BDF file (unknown version field)")
        header_bytes = _field_int(head[184:192], "header size")
        n_records = _field_int(head[236:244], "number of data records")
        n_signals = _field_int(head[252:256], "number of signals")
        if not 1 <= n_signals <= MAX_SIGNALS:
            raise FormatError(f"bad header: {n_signals} signals")
        if header_bytes != 256 * (n_signals + 1):
            raise FormatError(
                f"bad header: header size {header_bytes} does not fit {n_signals} signals "
                f"(expected {256 * (n_signals + 1)})"
            )
        if size < header_bytes:
            raise FormatError(f"truncated inside the header ({size} of {header_bytes} bytes)")
        signal_header = f.read(header_bytes - 256)
    if head[192:197] in (b"EDF+D", b"BDF+D"):
        raise FormatError(f"discontinuous {head[192:197].decode()} is not supported")
    spr_at = n_signals * sum(_SIGNAL_FIELDS[:8])  # where "samples per record" starts
    samples_per_record = [
        _field_int(signal_header[spr_at + 8 * i : spr_at + 8 * (i + 1)], "samples per record")
        for i in range(n_signals)
    ]
    if min(samples_per_record) < 1:
        raise FormatError("bad header: a signal has no samples per record")
    if n_records == -1:
        raise FormatError("header gives the number of data records as -1 (recording not closed?)")
    if n_records < 1:
        raise FormatError("no data records")
    expected = header_bytes + n_records * sum(samples_per_record) * bytes_per_sample
    if size < expected:
        raise FormatError(
            f"truncated: the header promises {n_records} data records ({expected} bytes) "
            f"but the file has {size} bytes"
        )
    if size > expected:
        raise FormatError(
            f"file size {size} bytes does not match the header ({expected} bytes for "
            f"{n_records} data records)"
        )
    check_memory(n_records * sum(samples_per_record), "the file")
    return _Header(
        kind=kind,
        n_signals=n_signals,
        header_bytes=header_bytes,
        n_records=n_records,
        samples_per_record=tuple(samples_per_record),
        labels=tuple(
            signal_header[16 * i : 16 * (i + 1)].decode("latin-1") for i in range(n_signals)
        ),
        plus=head[192:196] in (b"EDF+", b"BDF+"),
    )


class _Samples:
    """Samples of pyedflib's signal ``i`` decoded from the data records with numpy.

    pyedflib numbers the data signals only (EDF+/BDF+ annotation signals are skipped); the
    records hold every signal in header order, ``samples_per_record`` values each. Decoding
    follows edflib (``edfread_physical_samples``): ``bitvalue * (offset + digital)`` with
    ``bitvalue = (pmax - pmin) / (dmax - dmin)`` and ``offset = pmax / bitvalue - dmax``, from
    the header values as pyedflib parsed them, so the values are the same to the bit. Anything
    that does not line up with what pyedflib reports falls back to ``readSignal``.
    """

    def __init__(self, reader: Any, path: str, header: _Header) -> None:
        self._r = reader
        self._path = path
        self._h = header
        self._records: NDArray[np.uint8] | None = None
        self._map = self._signal_map()

    def _signal_map(self) -> list[tuple[int, int]] | None:
        """(byte offset in a record, samples per record) for each pyedflib signal, or None."""
        h, r = self._h, self._r
        if not h.samples_per_record or len(h.labels) != h.n_signals:
            return None
        annotation = {"EDF Annotations", "BDF Annotations"}
        offsets, at = [], 0
        for k in range(h.n_signals):
            if not (h.plus and h.labels[k].strip() in annotation):
                offsets.append((at, h.samples_per_record[k], k))
            at += h.samples_per_record[k] * h.bytes_per_sample
        try:
            if len(offsets) != int(r.signals_in_file):
                return None
            counts = r.getNSamples()
            for i, (_, spr, k) in enumerate(offsets):
                if int(counts[i]) != spr * h.n_records:
                    return None
                if str(r.getLabel(i)).strip() != h.labels[k].strip():
                    return None
        except Exception:
            return None
        return [(at, spr) for at, spr, _ in offsets]

    def _digital(self, i: int) -> NDArray[np.int32] | None:
        if self._map is None:
            return None
        h = self._h
        bps = h.bytes_per_sample
        if self._records is None:
            record = sum(h.samples_per_record) * bps
            with open(self._path, "rb") as f:
                f.seek(h.header_bytes)
                raw = np.fromfile(f, dtype=np.uint8, count=h.n_records * record)
            if raw.size != h.n_records * record:
                self._map = None
                return None
            self._records = raw.reshape(h.n_records, record)
        at, spr = self._map[i]
        b = self._records[:, at : at + spr * bps].reshape(h.n_records, spr, bps)
        if bps == 2:
            v = b[..., 0].astype(np.int32) | (b[..., 1].astype(np.int8).astype(np.int32) << 8)
        else:
            v = (
                b[..., 0].astype(np.int32)
                | (b[..., 1].astype(np.int32) << 8)
                | (b[..., 2].astype(np.int8).astype(np.int32) << 16)
            )
        return v.reshape(-1)

    def digital(self, i: int) -> NDArray[np.int64]:
        v = self._digital(i)
        if v is None:
            return np.asarray(self._r.readSignal(i, digital=True), dtype=np.int64)
        return v.astype(np.int64)

    def physical(self, i: int) -> NDArray[np.float64]:
        v = self._digital(i)
        if v is None:
            return np.asarray(self._r.readSignal(i), dtype=np.float64)
        r = self._r
        pmax, pmin = float(r.getPhysicalMaximum(i)), float(r.getPhysicalMinimum(i))
        dmax, dmin = int(r.getDigitalMaximum(i)), int(r.getDigitalMinimum(i))
        if dmax == dmin or pmax == pmin:  # edflib's guard
            bitvalue, offset = 1.0, 0.0
        else:
            bitvalue = (pmax - pmin) / float(dmax - dmin)
            offset = pmax / bitvalue - float(dmax)
        out = v.astype(np.float64)
        out += offset
        out *= bitvalue
        return out


def _is_trigger(label: str, transducer: str) -> bool:
    return label.strip().lower() in _TRIGGER_LABELS or transducer.lower().startswith("trigger")


def _read(
    reader: object, path: str, header: _Header, user_fs: float | None, user_units: str | None
) -> Recording:
    r = reader  # pyedflib.EdfReader, untyped
    n = int(r.signals_in_file)  # type: ignore[attr-defined]
    if n == 0:
        raise FormatError("no signals (annotations only)")
    headers = [r.getSignalHeader(i) for i in range(n)]  # type: ignore[attr-defined]
    rates = [float(h["sample_frequency"]) for h in headers]
    labels = [str(h["label"]).strip() for h in headers]
    dims = [str(h["dimension"]).strip() for h in headers]
    trigger = [_is_trigger(labels[i], str(headers[i]["transducer"])) for i in range(n)]
    voltage = [microvolt_factor(dims[i]) is not None and not trigger[i] for i in range(n)]

    # The analysis rate is the EMG (voltage) channels' rate; they must agree. Other channels
    # at another rate (accelerometer, a slow trigger) are dropped rather than resampled.
    pool = [i for i in range(n) if voltage[i]] or [i for i in range(n) if not trigger[i]]
    pool = pool or list(range(n))
    pool_rates = sorted({rates[i] for i in pool})
    if len(pool_rates) > 1 and any(voltage):
        detail = ", ".join(f"{labels[i]} {rates[i]:g} Hz" for i in pool)
        raise FormatError(f"EMG channels have different sampling rates: {detail}")
    fs = max(pool_rates, key=lambda rate: sum(rates[i] == rate for i in pool))
    keep = [i for i in range(n) if rates[i] == fs]
    for i in range(n):
        if rates[i] != fs:
            log.warning(
                "%s: channel %r at %g Hz (not %g Hz) skipped", path, labels[i], rates[i], fs
            )
    fs = reconcile_fs(fs, user_fs, "file header")

    n_samples = int(r.getNSamples()[keep[0]])  # type: ignore[attr-defined]
    data = np.empty((n_samples, len(keep)))
    units: list[str] = []
    samples = _Samples(r, path, header)
    for j, i in enumerate(keep):
        if trigger[i]:
            values = samples.digital(i)
            if header.kind == "BDF":
                values &= 0xFFFF  # BioSemi: low 16 bits are the trigger code, the rest status
            data[:, j] = values
            units.append("")
            continue
        data[:, j] = samples.physical(i)
        factor = microvolt_factor(dims[i])
        if factor is None and not dims[i] and user_units is not None:
            factor = microvolt_factor(user_units)
            log.info(
                "%s: channel %r has no unit; using the units setting, %s",
                path,
                labels[i],
                user_units,
            )
        elif factor is None:
            log.warning(
                "%s: channel %r has unit %r, not a voltage: kept as is", path, labels[i], dims[i]
            )
        if factor is not None and factor != 1.0:
            data[:, j] *= factor
        units.append(dims[i])

    names = unique_names([labels[i] for i in keep])
    declared: dict[str, str] = {}
    for j, i in enumerate(keep):
        m = _ROLE_IN_TEXT.search(str(headers[i]["transducer"]))
        role = role_of_label(m.group(1)) if m else None
        if role:
            declared[role] = names[j]
    extra = parse_roles_line(_safe(r, "getRecordingAdditional")) or {}
    declared = {**extra, **declared}

    onsets, durations, texts = r.readAnnotations()  # type: ignore[attr-defined]
    kept = []
    for o, d, t in zip(onsets, durations, texts, strict=True):
        onset, length = float(o), float(d)
        if not math.isfinite(onset) or abs(onset) > MAX_ANNOTATION_S:
            continue  # a TAL with an onset of inf or 1e300 s marks nothing in this file
        # pyedflib gives -1: no duration
        kept.append(Annotation(onset, length if math.isfinite(length) and length > 0 else 0.0,
                               str(t)))
    if len(kept) < len(onsets):
        log.warning("%s: %d annotation(s) with an impossible onset skipped",
                    os.path.basename(path), len(onsets) - len(kept))
    annotations = tuple(kept)
    start: datetime | None
    try:
        start = r.getStartdatetime()  # type: ignore[attr-defined]
    except Exception:  # an unparseable date is no reason to refuse the signals
        start = None
    return Recording(
        path=path,
        format=_FILETYPES.get(int(r.filetype), header.kind.lower()),  # type: ignore[attr-defined]
        fs=fs,
        channel_names=names,
        data=data,
        units=tuple(units),
        annotations=annotations,
        roles=roles_from_labels(names, declared),
        start_time=start,
    )


def _safe(reader: object, method: str) -> str:
    try:
        return str(getattr(reader, method)())
    except Exception:
        return ""
