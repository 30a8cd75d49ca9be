"""A recording read by sample range: what replay needs without holding the decoded file.

:func:`open_blocks` reads a file's header and channel mapping only; :meth:`BlockFile.read`
then returns any ``[start, stop)`` of samples already mapped to roles, exactly as
:func:`devices.files.mapping.load_mapped` maps the whole file (role channels first, ``A-B``
bipolar derivations, unmapped channels appended, microvolts, NaN for lost samples and for
values beyond ±``MAX_PLAUSIBLE_UV``). Memory is one block, whatever the file's length.

* fireorder's own BDF+ and other EDF/EDF+/BDF/BDF+ files: data records have a fixed size,
  so a range is a few records read with ``os.pread`` and decoded with numpy, with the same
  arithmetic as the whole-file readers (the same values to the bit).
* formats that cannot be read by range (CSV, XDF, OpenSignals, BrainFlow CSV, an EDF whose
  layout pyedflib reports differently): decoded once by the usual reader into a float32
  temporary file, which :meth:`BlockFile.close` deletes; the decoded arrays are freed at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import threading
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from devices.files.model import Annotation, FormatError, ReaderError, Recording
from dsp.contract import MAX_PLAUSIBLE_UV, StreamInfo

log = logging.getLogger(__name__)

Array = NDArray[np.float64]
#: rows decoded per call when a caller asks for a long range (bounds the temporaries)
_MAX_ROWS_PER_PIECE = 1 << 18
#: data records read per pread while scanning a file's annotations at open
_SCAN_RECORDS = 1024


class _Raw:
    """The file's own channels by sample range (float64, the whole-file reader's values)."""

    n_samples: int
    decoded_copy = False  # a decoded temporary copy, not the file itself

    width = 0  # channels

    def read(self, start: int, stop: int) -> Array:
        """Rows ``[start, stop)`` as ``(samples, channels)``."""
        out = np.empty((stop - start, self.width))
        self._fill(start, stop, out.T)
        return out

    def read_channels(self, start: int, stop: int) -> Array:
        """The same as ``(channels, samples)``: what per-channel filtering wants."""
        out = np.empty((self.width, stop - start))
        self._fill(start, stop, out)
        return out

    def _fill(self, start: int, stop: int, out: Array) -> None:  # pragma: no cover - abstract
        """Decode ``[start, stop)`` into ``out`` (channels, samples), a view either way."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _pread_records(fd: int, offset: int, record_bytes: int, r0: int, r1: int) -> NDArray[np.uint8]:
    """Records ``r0 .. r1-1`` as ``(r1 - r0, record_bytes)`` bytes (pread: no shared file
    position, so the replay worker and a seek may read at once)."""
    want = (r1 - r0) * record_bytes
    buf = os.pread(fd, want, offset + r0 * record_bytes)
    if len(buf) < want:
        raise ReaderError("the file shrank while being replayed")
    return np.frombuffer(buf, dtype=np.uint8).reshape(r1 - r0, record_bytes)


def _int24(raw: NDArray[np.uint8]) -> NDArray[np.int32]:
    """Little-endian signed 24-bit integers from ``(..., 3)`` bytes: the values of
    ``bdf_format.decode_24bit``, several times faster (a byte plane at a time, the top one
    through int8 so that the sign extends)."""
    v = raw[..., 0].astype(np.int32)
    v |= raw[..., 1].astype(np.int32) << 8
    v |= raw[..., 2].astype(np.int8).astype(np.int32) << 16
    return v


def _only_timekeeping(block: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Per record (a row of annotation bytes): True when it holds nothing but the record's
    time stamp, ``+<digits>\x14\x14`` then zeros (a TAL parse_tals reads and the reader
    skips), so that only records with events, or damage, are parsed one by one."""
    width = block.shape[1]
    rows = np.arange(block.shape[0])
    sep = block == 0x14
    p = np.argmax(sep, axis=1)  # the time stamp's first \x14
    zero = block == 0
    first_zero = np.where(zero.any(axis=1), np.argmax(zero, axis=1), width)
    number = ((block >= ord("0")) & (block <= ord("9"))) | (block == ord("."))
    digits = np.cumsum(number, axis=1)  # digits[j]: number characters in bytes 0..j
    ok_number = (p >= 2) & (digits[rows, np.maximum(p - 1, 0)] == p - 1)
    return (
        (block[:, 0] == ord("+"))
        & ok_number
        & (sep.sum(axis=1) == 2)
        & sep[rows, np.minimum(p + 1, width - 1)]
        & (first_zero == p + 2)
        & (np.count_nonzero(block, axis=1) == p + 2)
    )


class _FireorderRaw(_Raw):
    """fireorder's BDF+ by range; what :func:`bdf_format.read_fireorder_bdf` reads."""

    def __init__(self, name: str) -> None:
        from devices.files import bdf_format as fmt
        from devices.files.common import microvolt_factor

        layout = fmt.inspect_file(name)
        h = layout.header
        # the checks of bdf_format._read, in its order and words
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
        if h.n_records == fmt.UNKNOWN_RECORDS:
            log.warning(
                "%s: recording was not closed; reading its %d complete data records", name, n_rec
            )
        elif h.n_records > n_rec:
            log.warning("%s: truncated; reading %d of %d data records", name, n_rec, h.n_records)
        # (no check_memory: nothing the size of the file is ever allocated here)
        self._h, self._spr, self._n_rec = h, spr, n_rec
        self._starts = np.cumsum([0] + [3 * s.samples_per_record for s in h.signals]).tolist()
        self._signals = [h.signals[i] for i in data_idx]
        self._data_idx = data_idx
        self._factors = [microvolt_factor(s.dimension) for s in self._signals]
        self.width = len(self._signals)
        self._fd = os.open(name, os.O_RDONLY)
        self._closer = weakref.finalize(self, _close_fd, self._fd)  # closed even if forgotten
        try:
            annotations, end = self._scan_annotations(name, fmt)
        except BaseException:
            self._closer()
            raise
        n = n_rec * spr
        self.n_samples = end if end is not None and 0 <= end < n else n
        labels = [s.label for s in self._signals]
        side = fmt.read_sidecar(name)
        names = labels
        full = fmt.sidecar_part(side, "stream").get("channel_names")
        if isinstance(full, list) and len(full) == len(labels) and len(set(full)) == len(full):
            names = [str(x) for x in full]  # untruncated names
        self.recording = Recording(
            path=name,
            format="bdf+",
            fs=h.fs,
            channel_names=tuple(names),
            data=np.empty((0, len(names))),
            units=tuple(s.dimension for s in self._signals),
            annotations=tuple(annotations),
            roles=fmt._roles(h, data_idx, names),  # the reader's own role rules
            start_time=h.start,
        )

    def _scan_annotations(self, name: str, fmt: Any) -> tuple[list[Annotation], int | None]:
        """The file's annotations (and the end-of-recording mark), read a slab of records at a
        time: the TAL bytes of every record, never the whole file at once."""
        h, starts = self._h, self._starts
        annotations: list[Annotation] = []
        end: int | None = None
        unreadable = 0
        ann = h.annotation_signals
        for r0 in range(0, self._n_rec, _SCAN_RECORDS):
            r1 = min(self._n_rec, r0 + _SCAN_RECORDS)
            raw = _pread_records(self._fd, h.header_bytes, h.record_bytes, r0, r1)
            for i in ann:
                block = raw[:, starts[i] : starts[i + 1]]
                # (an all-zero block holds no TAL: what a sparse, never-written stretch reads)
                skip = _only_timekeeping(block) | ~block.any(axis=1)
                for k in np.flatnonzero(~skip).tolist():
                    try:
                        tals = fmt.parse_tals(block[k].tobytes())
                    except FormatError:
                        unreadable += 1  # a damaged record's events; its samples are good
                        continue
                    for n, (onset, duration, texts) in enumerate(tals):
                        if n == 0 and not any(texts):
                            continue  # the record's time stamp
                        for text in filter(None, texts):
                            if text == fmt.END_TEXT:
                                end = round(onset * h.fs)
                            annotations.append(Annotation(onset, duration, text))
        if unreadable:
            log.warning("%s: annotations of %d data records unreadable; skipped", name, unreadable)
        annotations.sort(key=lambda a: a.onset_s)
        return annotations, end

    def _fill(self, start: int, stop: int, out: Array) -> None:
        spr, h = self._spr, self._h
        r0, r1 = start // spr, -(-stop // spr)
        raw = _pread_records(self._fd, h.header_bytes, h.record_bytes, r0, r1)
        lo, hi = start - r0 * spr, stop - r0 * spr
        for j, i in enumerate(self._data_idx):
            sig = self._signals[j]
            # the signal's bytes in every record, as a view: (records, samples, 3)
            block = raw[:, self._starts[i] : self._starts[i + 1]].reshape(r1 - r0, spr, 3)
            d = _int24(block).reshape(-1)[lo:hi]
            # SignalSpec.to_physical's arithmetic (d * gain + offset, the sentinel NaN),
            # with one temporary instead of three
            values = d * sig.gain
            values += sig.offset
            if d.size and d.min() == sig.dig_min:
                values[d == sig.dig_min] = np.nan
            factor = self._factors[j]
            if factor is not None and factor != 1.0:
                values *= factor
            out[j] = values

    def close(self) -> None:
        self._closer()


@dataclass(frozen=True)
class _EdfColumn:
    at: int  # byte offset of the signal in a data record
    trigger: bool
    bitvalue: float
    offset: float
    factor: float | None


class _EdfRaw(_Raw):
    """EDF/EDF+/BDF/BDF+ (not fireorder's) by range; what :func:`edf_reader.read_edf` reads.

    pyedflib reads the header and annotations at open, as the reader does; channel selection,
    units and scaling follow ``edf_reader._read`` line by line (tests compare the two on the
    shared real recordings). A file whose records do not line up with what pyedflib reports
    raises :class:`_NotByRangeError` and is decoded whole instead."""

    def __init__(self, name: str, user_fs: float | None, user_units: str | None) -> None:
        import pyedflib

        from devices.files import edf_reader as er

        header = er._check_header(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                try:
                    reader = pyedflib.EdfReader(name)
                except Exception as exc:
                    raise FormatError(f"{header.kind} reader: {er._reason(exc, name)}") from None
                try:
                    self._plan(reader, name, header, user_fs, user_units)
                except (FormatError, _NotByRangeError):
                    raise
                except Exception as exc:
                    raise FormatError(f"{header.kind} reader: {er._reason(exc, name)}") from None
                finally:
                    reader.close()
            finally:
                for w in caught:
                    log.info("%s: %s", name, w.message)
        self._fd = os.open(name, os.O_RDONLY)
        self._closer = weakref.finalize(self, _close_fd, self._fd)  # closed even if forgotten

    def _plan(
        self, r: Any, path: str, header: Any, user_fs: float | None, user_units: str | None
    ) -> None:
        from devices.files import edf_reader as er
        from devices.files.common import (
            microvolt_factor,
            parse_roles_line,
            reconcile_fs,
            role_of_label,
            roles_from_labels,
            unique_names,
        )

        n = int(r.signals_in_file)
        if n == 0:
            raise FormatError("no signals (annotations only)")
        headers = [r.getSignalHeader(i) for i in range(n)]
        rates = [float(h["sample_frequency"]) for h in headers]
        labels = [str(h["label"]).strip() for h in headers]
        dims = [str(h["dimension"]).strip() for h in headers]
        trigger = [er._is_trigger(labels[i], str(headers[i]["transducer"])) for i in range(n)]
        voltage = [microvolt_factor(dims[i]) is not None and not trigger[i] for i in range(n)]
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
        layout = er._Samples(r, path, header)._map  # (byte offset, samples per record) or None
        if layout is None:
            raise _NotByRangeError
        columns: list[_EdfColumn] = []
        units: list[str] = []
        for i in keep:
            at, _spr = layout[i]
            if trigger[i]:
                columns.append(_EdfColumn(at, True, 1.0, 0.0, None))
                units.append("")
                continue
            pmax, pmin = float(r.getPhysicalMaximum(i)), float(r.getPhysicalMinimum(i))
            dmax, dmin = int(r.getDigitalMaximum(i)), int(r.getDigitalMinimum(i))
            if dmax == dmin or pmax == pmin:  # edflib's guard
                bitvalue, offset = 1.0, 0.0
            else:
                bitvalue = (pmax - pmin) / float(dmax - dmin)
                offset = pmax / bitvalue - float(dmax)
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
                    "%s: channel %r has unit %r, not a voltage: kept as is",
                    path,
                    labels[i],
                    dims[i],
                )
            columns.append(_EdfColumn(at, False, bitvalue, offset, factor))
            units.append(dims[i])
        self._columns = columns
        self.width = len(columns)
        self._bps = header.bytes_per_sample
        self._bdf = header.kind == "BDF"
        self._spr = layout[keep[0]][1]
        self._record_bytes = sum(header.samples_per_record) * self._bps
        self._header_bytes = header.header_bytes
        self.n_samples = int(r.getNSamples()[keep[0]])

        names = unique_names([labels[i] for i in keep])
        declared: dict[str, str] = {}
        for j, i in enumerate(keep):
            m = er._ROLE_IN_TEXT.search(str(headers[i]["transducer"]))
            role = role_of_label(m.group(1)) if m else None
            if role:
                declared[role] = names[j]
        extra = parse_roles_line(er._safe(r, "getRecordingAdditional")) or {}
        declared = {**extra, **declared}
        onsets, durations, texts = r.readAnnotations()
        kept = []
        for o, d, t in zip(onsets, durations, texts, strict=True):
            onset, length = float(o), float(d)
            if not math.isfinite(onset) or abs(onset) > er.MAX_ANNOTATION_S:
                continue
            kept.append(
                Annotation(onset, length if math.isfinite(length) and length > 0 else 0.0, str(t))
            )
        if len(kept) < len(onsets):
            log.warning(
                "%s: %d annotation(s) with an impossible onset skipped",
                os.path.basename(path),
                len(onsets) - len(kept),
            )
        try:
            start = r.getStartdatetime()
        except Exception:
            start = None
        self.recording = Recording(
            path=path,
            format=er._FILETYPES.get(int(r.filetype), header.kind.lower()),
            fs=fs,
            channel_names=names,
            data=np.empty((0, len(names))),
            units=tuple(units),
            annotations=tuple(kept),
            roles=roles_from_labels(names, declared),
            start_time=start,
        )

    def _fill(self, start: int, stop: int, out: Array) -> None:
        spr, bps = self._spr, self._bps
        r0, r1 = start // spr, -(-stop // spr)
        raw = _pread_records(self._fd, self._header_bytes, self._record_bytes, r0, r1)
        lo, hi = start - r0 * spr, stop - r0 * spr
        for j, c in enumerate(self._columns):
            b = raw[:, c.at : c.at + spr * bps].reshape(-1, bps)[lo:hi]
            if bps == 2:
                v = b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int8).astype(np.int32) << 8)
            else:
                v = (
                    b[:, 0].astype(np.int32)
                    | (b[:, 1].astype(np.int32) << 8)
                    | (b[:, 2].astype(np.int8).astype(np.int32) << 16)
                )
            if c.trigger:
                d = v.astype(np.int64)
                if self._bdf:
                    d &= 0xFFFF  # BioSemi: low 16 bits are the trigger code
                out[j] = d
                continue
            x = v.astype(np.float64)
            x += c.offset
            x *= c.bitvalue
            if c.factor is not None and c.factor != 1.0:
                x *= c.factor
            out[j] = x

    def close(self) -> None:
        self._closer()


class _NotByRangeError(Exception):
    """This file must be decoded whole (its layout is not one records-by-offset can read)."""


@dataclass(frozen=True)
class _Column:
    a: int
    b: int | None  # None: channel ``a`` itself; else ``a`` minus ``b``


class BlockFile:
    """A recording mapped to roles, read by sample range (see the module docstring).

    ``info`` is what :func:`load_mapped` gives (``source`` = the path), ``recording`` the
    file's metadata (``data`` has no rows), ``n_samples`` its length. Thread-safe reads."""

    def __init__(
        self, raw: _Raw, recording: Recording, info: StreamInfo, columns: Sequence[_Column] | None
    ) -> None:
        self._raw = raw
        self.recording = recording
        self.info = info
        self.n_samples = int(raw.n_samples)
        self._columns = None if columns is None else list(columns)
        # the usual case (every file channel, in file order, none derived): no copy per block
        self._identity = self._columns is None or (
            len(self._columns) == len(recording.channel_names)
            and all(c.b is None and c.a == j for j, c in enumerate(self._columns))
        )
        self._lock = threading.Lock()
        self._told_wild = False
        self._closed = False

    @property
    def annotations(self) -> tuple[Annotation, ...]:
        return self.recording.annotations

    @property
    def decoded_copy(self) -> bool:
        """Whether samples come from a decoded temporary copy (formats not read by range)
        rather than from the file itself."""
        return self._raw.decoded_copy

    def read(self, start: int, stop: int) -> Array:
        """Samples ``[start, stop)`` (clipped to the recording), mapped, float64 microvolts,
        as ``(samples, channels)``."""
        return self._read(start, stop, channels_first=False)

    def read_channels(self, start: int, stop: int) -> Array:
        """The same as ``(channels, samples)`` (rows ready for per-channel filtering)."""
        return self._read(start, stop, channels_first=True)

    def _read(self, start: int, stop: int, channels_first: bool) -> Array:
        start = max(0, min(int(start), self.n_samples))
        stop = max(start, min(int(stop), self.n_samples))
        if self._closed:
            raise ReaderError(f"{self.recording.path}: the replay file is closed")
        if stop - start > _MAX_ROWS_PER_PIECE:
            pieces = [
                self._read(a, min(stop, a + _MAX_ROWS_PER_PIECE), channels_first)
                for a in range(start, stop, _MAX_ROWS_PER_PIECE)
            ]
            return np.concatenate(pieces, axis=1 if channels_first else 0)
        try:
            if channels_first:
                raw = self._raw.read_channels(start, stop)
            else:
                raw = self._raw.read(start, stop)
        except OSError as exc:  # the file went away, or was closed by another thread
            reason = "the replay file is closed" if self._closed else (exc.strerror or str(exc))
            raise ReaderError(f"cannot read {self.recording.path!r}: {reason}") from None
        data = raw if self._identity else self._map(raw, channels_first)
        # one pass decides the usual case: the peak is NaN if any sample is, inf if any is
        peak = max(float(data.max()), -float(data.min())) if data.size else 0.0
        wild = None if peak <= MAX_PLAUSIBLE_UV else np.abs(data) > MAX_PLAUSIBLE_UV
        if wild is not None and wild.any():  # (inf too; NaN stays NaN), as load_mapped
            data[wild] = np.nan
            if not self._told_wild:
                self._told_wild = True
                log.warning(
                    "%s: value(s) beyond ±%g µV (not a voltage the skin makes): treated as "
                    "missing samples (gaps)",
                    os.path.basename(self.recording.path) or "the file",
                    MAX_PLAUSIBLE_UV,
                )
        return data

    def _map(self, raw: Array, channels_first: bool) -> Array:
        assert self._columns is not None
        src = raw if channels_first else raw.T  # (channels, samples) either way
        out = np.empty((len(self._columns), src.shape[1]))
        for j, c in enumerate(self._columns):
            if c.b is None:
                out[j] = src[c.a]
            else:
                np.subtract(src[c.a], src[c.b], out=out[j])
        return out if channels_first else np.ascontiguousarray(out.T)

    def close(self) -> None:
        """Release the file (and delete the decoded temporary file, if any). Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._raw.close()

    def __enter__(self) -> BlockFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TempRaw(_Raw):
    """A whole-file decode kept as float32 in an anonymous temporary file: it has no name
    (nothing is left behind, even when the process dies), and its space goes on close."""

    decoded_copy = True

    def __init__(self, data: Array, name: str) -> None:
        # (no context manager: the copy lives as long as the replay; the finalizer closes it)
        tmp = tempfile.TemporaryFile(prefix="fireorder-replay-", suffix=".f32")  # noqa: SIM115
        self._closer = weakref.finalize(self, tmp.close)  # closed even if forgotten
        fd = self._fd = tmp.fileno()
        self.n_samples, self.width = int(data.shape[0]), int(data.shape[1])
        try:
            step = max(1, (8 << 20) // max(1, 4 * self.width))  # 8 MB slabs: bounded copies
            for a in range(0, self.n_samples, step):
                piece = np.ascontiguousarray(data[a : a + step], dtype="<f4").tobytes()
                _write_all(fd, piece, a * 4 * self.width)
        except OSError as exc:
            self.close()
            raise ReaderError(
                f"cannot replay {name!r}: no room for its decoded copy in "
                f"{tempfile.gettempdir()} ({exc.strerror or exc})"
            ) from None
        except BaseException:
            self.close()
            raise

    def _fill(self, start: int, stop: int, out: Array) -> None:
        row = 4 * self.width
        buf = os.pread(self._fd, (stop - start) * row, start * row)
        out[...] = np.frombuffer(buf, dtype="<f4").reshape(-1, self.width).T

    def close(self) -> None:
        self._closer()


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _columns_of(rec: Recording, spec: Mapping[str, str]) -> list[_Column]:
    """Columns :func:`mapping.map_recording` builds (already validated by it): the roles'
    channels or bipolar pairs in the mapping's order, then the channels without a role."""
    from devices.files.derive import parse_spec

    index = rec.channel_names.index
    out = []
    for text in spec.values():
        a, b = parse_spec(rec, text)
        out.append(_Column(index(a), None if b is None else index(b)))
    used = set(spec.values())
    out += [_Column(i, None) for i, n in enumerate(rec.channel_names) if n not in used]
    return out


def open_blocks(
    path: str,
    channels: Mapping[str, str] | None = None,
    *,
    fs: float | None = None,
    units: str | None = None,
    board: str | None = None,
    stream: str | None = None,
) -> BlockFile:
    """Open ``path`` for reading by range, mapped like ``load_mapped(..., keep_unmapped=True)``.

    Reads the header (and annotations) only for EDF/BDF; other formats are decoded once into
    a temporary file. Every failure is a :class:`ReaderError` with one line."""
    from devices.files.mapping import load_mapped, map_recording

    raw = _open_raw(path, fs=fs, units=units, board=board, stream=stream)
    if raw is None:
        mapped = load_mapped(
            path, channels, fs=fs, units=units, board=board, stream=stream, keep_unmapped=True
        )
        rec = mapped.recording
        meta = Recording(
            path=rec.path,
            format=rec.format,
            fs=rec.fs,
            channel_names=mapped.info.channel_names,
            data=np.empty((0, mapped.info.n_channels)),
            units=mapped.info.units,
            annotations=rec.annotations,
            roles=dict(rec.roles),
            start_time=rec.start_time,
        )
        info = mapped.info
        temp = _TempRaw(mapped.data, path)
        del mapped, rec  # the decoded arrays go now: replay reads the temporary file
        return BlockFile(temp, meta, info, None)
    try:
        rec = raw.recording  # type: ignore[attr-defined]
        mapped = map_recording(rec, channels, source=path, keep_unmapped=True)
        spec = dict(channels) if channels else dict(rec.roles)
        return BlockFile(raw, rec, mapped.info, _columns_of(rec, spec))
    except BaseException:
        raw.close()
        raise


def _open_raw(
    path: str, *, fs: float | None, units: str | None, board: str | None, stream: str | None
) -> _Raw | None:
    """The by-range reader of an EDF/BDF file, or None when the file must be decoded whole.
    Errors as :func:`read_recording` words them."""
    from devices.files.bdf_format import is_fireorder_recording
    from devices.files.common import check_user_fs, check_user_units, one_line, reconcile_fs
    from devices.files.detect import detect_format

    if board is not None or stream is not None:
        return None  # the reader says whether these apply (and why not)
    name = os.fspath(path)
    try:
        try:
            if not os.path.isfile(name):
                return None  # missing, a directory, a FIFO: the reader's own one line
            with open(name, "rb") as f:
                head = f.read(256)
        except OSError:
            return None
        if not head or detect_format(name, head) != "edf":
            return None
        user_fs = check_user_fs(fs)
        if is_fireorder_recording(name):
            raw: _Raw = _FireorderRaw(name)
            reconcile_fs(raw.recording.fs, user_fs, "file header")  # type: ignore[attr-defined]
            return raw
        try:
            return _EdfRaw(name, user_fs, check_user_units(units))
        except _NotByRangeError:
            log.info("%s: records not readable by offset; decoding it whole", name)
            return None
    except FormatError as exc:
        raise ReaderError(f"cannot read {name!r}: {one_line(str(exc), 300)}") from None
    except ReaderError:
        raise
    except OSError as exc:
        raise ReaderError(f"cannot read {name!r}: {one_line(exc.strerror or str(exc))}") from None
