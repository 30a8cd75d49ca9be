"""XDF files (LabRecorder / Lab Streaming Layer), read with ``pyxdf``.

One stream becomes the recording: the one named by ``stream`` if given, else the stream of
type ``EMG``, else of type ``EXG``/``EEG``, else the only regularly sampled numeric stream;
a choice that is still ambiguous is an error that lists the streams.

* **Channels**: labels from ``desc/channels/channel/label`` (else ``ch1..chN``), units from
  ``desc/channels/channel/unit`` (microvolts, millivolts, volts -> µV; none -> ``units`` or
  µV; other units are kept as found).
* **Rate**: the nominal rate (checked against the measured one: a mismatch is logged).
  Nothing is resampled; a time step above 1.5 sample periods is a gap of NaN rows.
* **Markers**: string streams with rate 0 become annotations, relative to the first sample
  of the chosen stream.

Before ``pyxdf`` sees the file, its chunk structure is checked here: a damaged tail (a
recorder that crashed) is cut off with a warning, and sizes that would make ``pyxdf``
allocate absurd amounts of memory are refused.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError, fromstring

import numpy as np
from numpy.typing import NDArray

from dsp.contract import MAX_FS

from .common import (
    check_user_units,
    clean_name,
    clip,
    microvolt_factor,
    reconcile_fs,
    roles_from_labels,
)
from .model import Annotation, FormatError, Recording
from .signatures import XDF_MAGIC

log = logging.getLogger(__name__)

GAP_FACTOR = 1.5  # a time step above 1.5 sample periods is a gap
MAX_GAP_SECONDS = 600.0  # more missing time than this (or than the data itself) is refused
MAX_CHANNELS = 4096
FS_WARN = 0.01  # measured rate this far from the nominal one is logged
# pyxdf's dejittering joins segments split by less than this; keep it short so that
# dropouts show as gaps (at most max(0.1 s, 50 samples)).
BREAK_SECONDS = 0.1
BREAK_SAMPLES = 50
_ITEMSIZE = {"double64": 8, "float32": 4, "int64": 8, "int32": 4, "int16": 2, "int8": 1}
_EMG_TYPES = ("emg",)
_EXG_TYPES = ("exg", "eeg")
_CLOCK_CHUNK = 2 + 4 + 16


def _is_gzip_name(path: str) -> bool:
    name = Path(path).name.lower()
    return name.endswith((".xdfz", ".xdf.gz"))


@dataclass
class _StreamHead:
    nchns: int
    fmt: str


def read_xdf(
    path: str, *, fs: float | None, units: str | None, stream: str | None = None
) -> Recording:
    user_units = check_user_units(units)
    source = _checked_source(path)
    try:
        import pyxdf
    except ImportError:
        raise FormatError("reading XDF needs the pyxdf package (pip install pyxdf)") from None
    try:
        streams, header = pyxdf.load_xdf(
            source,
            jitter_break_threshold_seconds=BREAK_SECONDS,
            jitter_break_threshold_samples=BREAK_SAMPLES,
        )
    except MemoryError:
        raise
    except Exception as exc:  # pyxdf raises anything from KeyError to struct.error
        log.debug("pyxdf failed on %s", path, exc_info=True)
        raise FormatError(f"damaged XDF file ({type(exc).__name__}: {clip(exc, 80)})") from None
    if not streams:
        raise FormatError("the XDF file holds no streams")
    chosen = _choose(streams, stream)
    return _to_recording(path, chosen, streams, header, user_fs=fs, user_units=user_units)


# ------------------------------------------------------------------------ structure check


def _checked_source(path: str) -> str | io.BytesIO:
    """``path`` if the whole file is sound, else an in-memory copy of its sound part."""
    gz = _is_gzip_name(path)
    with gzip.open(path, "rb") if gz else open(path, "rb") as f:
        try:
            end, complete = _scan(f)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:  # a damaged gzip member
            raise FormatError(f"damaged compressed XDF file ({clip(exc, 80)})") from None
        if complete and not gz:
            return path
        f.seek(0)
        return io.BytesIO(f.read(end))


def _scan(f: io.BufferedIOBase) -> tuple[int, bool]:
    """Walk the chunks; return the end of the last sound chunk and whether that is EOF."""
    if f.read(4) != XDF_MAGIC:
        raise FormatError('not an XDF file (no "XDF:" at the start)')
    heads: dict[int, _StreamHead] = {}
    end = 4
    n_chunks = 0
    while True:
        try:
            length = _varlen(f)
        except EOFError:
            return end, True
        except ValueError as exc:
            return _damaged(end, n_chunks, heads, str(exc))
        body = _read_exact(f, length) if length <= (1 << 31) else None
        if body is None or len(body) < 2:
            return _damaged(end, n_chunks, heads, "a chunk is cut short")
        problem = _check_chunk(body, heads)
        if problem:
            return _damaged(end, n_chunks, heads, problem)
        end = f.tell()
        n_chunks += 1


def _damaged(
    end: int, n_chunks: int, heads: Mapping[int, _StreamHead], why: str
) -> tuple[int, bool]:
    if not heads:
        raise FormatError(f"damaged XDF file: {why} after {n_chunks} chunk(s), no stream header")
    log.warning("XDF file damaged at byte %d (%s): reading what comes before", end, why)
    return end, False


def _varlen(f: io.BufferedIOBase) -> int:
    first = f.read(1)
    if not first:
        raise EOFError
    size = first[0]
    if size not in (1, 4, 8):
        raise ValueError(f"bad length field ({size} bytes)")
    raw = f.read(size)
    if len(raw) != size:
        raise ValueError("file ends inside a length field")
    return int.from_bytes(raw, "little")


def _read_exact(f: io.BufferedIOBase, n: int) -> bytes | None:
    parts: list[bytes] = []
    left = n
    while left > 0:
        piece = f.read(min(left, 1 << 24))
        if not piece:
            return None
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def _check_chunk(body: bytes, heads: dict[int, _StreamHead]) -> str | None:
    """A reason why pyxdf must not read this chunk, or None if it is sound."""
    tag = struct.unpack_from("<H", body)[0]
    if tag == 1:
        return None if _xml_ok(body[2:]) else "file header is not XML"
    if tag == 5:
        return None
    if tag not in (2, 3, 4, 6):
        return f"unknown chunk tag {tag}"
    if len(body) < 6:
        return "chunk too short for a stream id"
    sid = struct.unpack_from("<I", body, 2)[0]
    content = body[6:]
    if tag == 2:
        head = _stream_head(content)
        if head is None:
            return "unreadable stream header"
        heads[sid] = head
        return None
    if sid not in heads:
        return f"chunk for undeclared stream {sid}"
    if tag == 4:
        return None if len(body) == _CLOCK_CHUNK else "bad clock offset chunk"
    if tag == 6:
        return None if _xml_ok(content) else "stream footer is not XML"
    return _check_samples(content, heads[sid])


def _xml_ok(raw: bytes) -> bool:
    try:
        fromstring(raw)
    except (ParseError, ValueError):
        return False
    return True


def _stream_head(raw: bytes) -> _StreamHead | None:
    try:
        root = fromstring(raw.decode("utf-8", "replace"))
        nchns = int(root.findtext("channel_count") or "")
        srate = float(root.findtext("nominal_srate") or "")
        fmt = (root.findtext("channel_format") or "").strip()
    except (ParseError, ValueError):
        return None
    if not 0 < nchns <= MAX_CHANNELS or not math.isfinite(srate) or srate < 0:
        return None
    if fmt != "string" and fmt not in _ITEMSIZE:
        return None
    return _StreamHead(nchns, fmt)


def _check_samples(content: bytes, head: _StreamHead) -> str | None:
    """Walk a Samples chunk exactly as pyxdf will, without building arrays."""
    buf = io.BytesIO(content)
    try:
        n = _varlen(buf)
    except (ValueError, EOFError):
        return "bad sample count"
    per_sample = 1 + head.nchns * (_ITEMSIZE.get(head.fmt, 1))
    if n * per_sample > len(content):
        return "sample count larger than the chunk"
    if head.fmt != "string":
        pos = buf.tell()
        for _ in range(n):
            if pos >= len(content):
                return "samples cut short"
            pos += 1 + (8 if content[pos] != 0 else 0) + head.nchns * _ITEMSIZE[head.fmt]
        return None if pos == len(content) else "sample chunk size mismatch"
    for _ in range(n):
        flag = buf.read(1)
        if not flag or (flag != b"\x00" and len(buf.read(8)) != 8):
            return "samples cut short"
        for _ in range(head.nchns):
            try:
                size = _varlen(buf)
            except (ValueError, EOFError):
                return "bad string length"
            if len(buf.read(size)) != size:
                return "string cut short"
    return None if buf.tell() == len(content) else "sample chunk size mismatch"


# ------------------------------------------------------------------------ stream choice


def _info(s: Mapping[str, Any], key: str) -> str:
    value = s.get("info", {}).get(key, [""])
    value = value[0] if isinstance(value, list) and value else value
    return str(value or "").strip()


def _srate(s: Mapping[str, Any]) -> float:
    try:
        return float(_info(s, "nominal_srate"))
    except ValueError:
        return 0.0


def _is_signal(s: Mapping[str, Any]) -> bool:
    return _info(s, "channel_format") != "string" and _srate(s) > 0


def _describe(streams: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(
        f"{_info(s, 'name') or '?'} ({_info(s, 'type') or 'no type'}, "
        f"{_info(s, 'channel_count')} ch, {_srate(s):g} Hz)"
        for s in streams
    )


def _choose(streams: Sequence[Mapping[str, Any]], name: str | None) -> Mapping[str, Any]:
    if name is not None:
        hits = [s for s in streams if _info(s, "name") == name]
        hits = hits or [s for s in streams if _info(s, "name").lower() == name.strip().lower()]
        if not hits:
            raise FormatError(f"no stream named {clip(name)} (streams: {_describe(streams)})")
        if len(hits) > 1:
            raise FormatError(f"{len(hits)} streams are named {clip(name)}")
        if not _is_signal(hits[0]):
            raise FormatError(f"stream {clip(name)} is not a regularly sampled numeric stream")
        return hits[0]
    signals = [s for s in streams if _is_signal(s)]
    if not signals:
        raise FormatError(f"no regularly sampled numeric stream (streams: {_describe(streams)})")
    for types in (_EMG_TYPES, _EXG_TYPES):
        typed = [s for s in signals if _info(s, "type").lower() in types]
        if len(typed) == 1:
            return typed[0]
        if typed:
            raise FormatError(
                f"several streams could be the EMG, set stream NAME: {_describe(typed)}"
            )
    if len(signals) == 1:
        return signals[0]
    raise FormatError(f"several signal streams, set stream NAME: {_describe(signals)}")


# ------------------------------------------------------------------------ conversion


def _channels(s: Mapping[str, Any], n: int) -> tuple[list[str], list[str | None]]:
    """Labels and units from ``desc/channels/channel`` (ch1..chN if they do not fit)."""
    try:
        desc = s["info"]["desc"][0]
        entries = desc["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        entries = None
    if not isinstance(entries, list) or len(entries) != n:
        if entries is not None:
            log.warning("XDF channel descriptions do not match %d channels; ignored", n)
        return [f"ch{i}" for i in range(1, n + 1)], [None] * n

    def field(entry: Any, key: str) -> str:
        if not isinstance(entry, dict):
            return ""
        value = entry.get(key, [""])
        value = value[0] if isinstance(value, list) and value else value
        return value.strip() if isinstance(value, str) else ""

    labels = [clean_name(field(e, "label")) or f"ch{i}" for i, e in enumerate(entries, start=1)]
    units = [field(e, "unit") or None for e in entries]
    return _unique(labels), units


def _unique(labels: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for label in labels:
        name, k = label, 2
        while name in seen:
            name = f"{label}#{k}"
            k += 1
        seen.add(name)
        out.append(name)
    return out


def _time_to_index(t: NDArray[np.float64], fs: float) -> NDArray[np.int64]:
    """Sample index of each time stamp at the nominal rate: steps above 1.5 periods are gaps."""
    if not np.isfinite(t).all():
        raise FormatError("time stamps are not finite")
    if t.size < 2:
        return np.zeros(t.size, dtype=np.int64)
    dt = np.diff(t)
    big = dt > GAP_FACTOR / fs
    steps = np.where(big, np.maximum(np.rint(dt * fs), 2.0), 1.0)
    missing = float(steps.sum()) - steps.size
    if missing > max(MAX_GAP_SECONDS * fs, float(t.size)):
        raise FormatError(f"time stamps jump over {missing / fs:.0f} s: too large a gap to fill")
    if missing:
        log.info(
            "XDF stream: %d gap(s), %d missing samples filled with NaN",
            int(big.sum()),
            int(missing),
        )
    back = int(np.count_nonzero(dt <= 0))
    if back:
        log.warning("XDF stream: time stamps step back or repeat %d time(s)", back)
    return np.concatenate(([0], np.cumsum(steps.astype(np.int64))))


def _start_time(header: Any) -> datetime | None:
    try:
        text = header["info"]["datetime"][0]
        return datetime.fromisoformat(str(text).strip())
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _to_recording(
    path: str,
    s: Mapping[str, Any],
    streams: Sequence[Mapping[str, Any]],
    header: Any,
    *,
    user_fs: float | None,
    user_units: str | None,
) -> Recording:
    name = _info(s, "name") or "?"
    values = np.asarray(s["time_series"], dtype=np.float64)
    stamps = np.asarray(s["time_stamps"], dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise FormatError(f"stream {clip(name)} holds no samples")
    if stamps.shape != (values.shape[0],):
        raise FormatError(f"stream {clip(name)}: one time stamp per sample expected")
    fs = reconcile_fs(_srate(s), user_fs, "stream's nominal rate")
    if not fs <= MAX_FS:  # (1e30 Hz makes the gap arithmetic overflow: check it first)
        raise FormatError(
            f"stream {clip(name)}: nominal_srate {fs:.4g} Hz is not plausible "
            f"(at most {MAX_FS:g} Hz)"
        )
    effective = float(s.get("info", {}).get("effective_srate") or 0.0)
    if effective > 0 and abs(effective - fs) > FS_WARN * fs:
        log.warning(
            "stream %s: measured rate %.6g Hz differs from the nominal %g Hz", name, effective, fs
        )
    index = _time_to_index(stamps, fs)
    n_out = int(index[-1]) + 1
    n_ch = values.shape[1]
    data = np.full((n_out, n_ch), np.nan) if n_out != values.shape[0] else np.empty((n_out, n_ch))
    data[index] = values
    del values

    labels, found_units = _channels(s, n_ch)
    units: list[str] = []
    for j, found in enumerate(found_units):
        if found is not None and microvolt_factor(found) is None:
            log.warning("channel %r has unit %r, not a voltage: kept as is", labels[j], found)
            units.append(found)
            continue
        if (
            found is not None
            and user_units is not None
            and microvolt_factor(found) != microvolt_factor(user_units)
        ):
            raise FormatError(
                f"channel {clip(labels[j])} says {found} but units is set to {user_units}"
            )
        factor = microvolt_factor(found or user_units or "uV") or 1.0
        if factor != 1.0:
            data[:, j] *= factor
        units.append("uV")

    t0 = float(stamps[0])
    annotations: list[Annotation] = []
    markers = [m for m in streams if _info(m, "channel_format") == "string" and _srate(m) == 0]
    for m in markers:
        prefix = f"{_info(m, 'name')}: " if len(markers) > 1 else ""
        dropped = 0
        for t, sample in zip(m.get("time_stamps", []), m.get("time_series", []), strict=False):
            onset = float(t) - t0
            if not math.isfinite(onset) or onset < 0:
                dropped += 1
                continue
            text = "/".join(str(v) for v in sample) if isinstance(sample, list) else str(sample)
            annotations.append(Annotation(onset, 0.0, prefix + text))
        if dropped:
            log.info(
                "marker stream %s: %d marker(s) before the first sample dropped",
                _info(m, "name"),
                dropped,
            )
    annotations.sort(key=lambda a: a.onset_s)
    log.debug("%s: stream %s, %d ch, %d samples", path, name, n_ch, n_out)
    return Recording(
        path=path,
        format="xdf",
        fs=fs,
        channel_names=tuple(labels),
        data=data,
        units=tuple(units),
        annotations=tuple(annotations),
        roles=roles_from_labels(labels),
        start_time=_start_time(header),
    )
