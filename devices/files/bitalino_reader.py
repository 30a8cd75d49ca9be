"""BITalino / PLUX text files: OpenSignals and the older "Simple Text Format".

Values are ADC counts. Channels whose sensor is EMG are converted to microvolts with the
BITalino EMG transfer function ``EMG(V) = (ADC / 2**n - 1/2) * VCC / G_EMG``; others stay
in counts. In OpenSignals files the 4-bit ``nSeq`` counter reveals lost samples, which become
NaN rows.
"""

from __future__ import annotations

import ast
import itertools
import json
import logging
import re
import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from .common import clip, reconcile_fs, roles_from_labels, unique_names
from .csv_reader import sniff_text
from .model import FormatError, Recording
from .numeric import parse_block, text_blocks

log = logging.getLogger(__name__)

VCC = 3.3  # V, BITalino supply
G_EMG = 1009.0  # BITalino EMG sensor gain
MAX_HEADER_LINES = 200
MAX_RATE = 1e7  # Hz; above this a header value is garbage
# Non-analog OpenSignals columns: sequence counter and digital in/out.
_NON_ANALOG = {"nseq", "i1", "i2", "o1", "o2", "di", "do"}
# BITalino (r)evolution: A1-A4 are 10-bit, A5-A6 6-bit, when the header does not say.
_BITALINO_BITS = {"A1": 10, "A2": 10, "A3": 10, "A4": 10, "A5": 6, "A6": 6}
MAX_LOST_FRACTION = 0.1  # more non-unit counter steps than this: the counter is not trusted


def emg_adc_to_microvolts(adc: NDArray[np.float64], bits: int) -> NDArray[np.float64]:
    """BITalino EMG transfer function, in microvolts."""
    return (adc / float(2**bits) - 0.5) * VCC / G_EMG * 1e6


def _split_header(f: TextIO) -> tuple[list[str], str]:
    """Read the ``#`` lines at the top; return them and the first data line (consumed)."""
    lines: list[str] = []
    while True:
        line = f.readline()
        if not line.startswith("#"):
            return lines, line
        lines.append(line.rstrip("\n"))
        if len(lines) > MAX_HEADER_LINES:
            raise FormatError(f"more than {MAX_HEADER_LINES} header lines")
        if line.strip().lower() == "# endofheader":
            return lines, ""


def _read_header(path: str, encoding: str) -> list[str]:
    with open(path, encoding=encoding, errors="replace", newline=None) as f:
        return _split_header(f)[0]


def _read_rows(path: str, encoding: str, names: Sequence[str]) -> NDArray[np.float64]:
    """The numeric rows after the header, whitespace-separated (tolerates a trailing tab)."""
    with open(path, encoding=encoding, errors="replace", newline=None) as f:
        header, pending = _split_header(f)
        row = len(header) + 1
        blocks = []
        for text in itertools.chain([pending] if pending else [], text_blocks(f)):
            blocks.append(parse_block(text, row, None, names))
            row += text.count("\n")
    table = np.concatenate(blocks) if blocks else np.empty((0, len(names)))
    if table.shape[0] == 0:
        raise FormatError("no data rows after the header")
    return table


def read_simple_text(path: str, *, fs: float | None, units: str | None) -> Recording:
    """``# Simple Text Format``: ``# key:= value`` lines, then one row of counts per sample."""
    del units  # counts or EMG microvolts: the file decides
    encoding = _encoding(path)
    meta: dict[str, str] = {}
    for line in _read_header(path, encoding)[1:]:
        key, sep, value = line.lstrip("# ").partition(":=")
        if sep:
            meta[key.strip().lower()] = value.strip()
    file_fs = _number(meta, "sampling rate (hz)", float)
    bits = _number(meta, "resolution", int)
    labels = [x for x in re.split(r"[\s,;]+", meta.get("labels", "")) if x]
    if not labels:
        raise FormatError("no '# Labels:=' line")
    names = unique_names(labels)
    if not 1 <= bits <= 24:
        raise FormatError(f"resolution {bits} bits is not plausible")
    if not 0 < file_fs < MAX_RATE:
        raise FormatError(f"sampling rate {file_fs:g} Hz in the header is not plausible")
    table = _read_rows(path, encoding, names)
    data = table.copy()
    units_out: list[str] = []
    for j, label in enumerate(labels):
        if "emg" in label.lower():
            data[:, j] = emg_adc_to_microvolts(table[:, j], bits)
            units_out.append(f"ADC {bits}-bit (EMG)")
        else:
            units_out.append("counts")
    return Recording(
        path=path,
        format="bitalino-simple",
        fs=reconcile_fs(file_fs, fs, "file header"),
        channel_names=names,
        data=data,
        units=tuple(units_out),
        roles=roles_from_labels(names),
    )


def read_opensignals(path: str, *, fs: float | None, units: str | None) -> Recording:
    """OpenSignals text: a JSON header line per file, tab-separated rows of all devices."""
    del units
    encoding = _encoding(path)
    header = _read_header(path, encoding)
    meta = _json_header(header)
    devices = list(meta.items())
    columns: list[str] = []
    channels: list[tuple[int, str, str, int | None]] = []  # (column, name, sensor, bits)
    counters: list[tuple[int, int]] = []  # (column, modulus)
    rates = set()
    for key, dev in devices:
        if not isinstance(dev, dict):
            raise FormatError(f"header entry for device {clip(key)} is not an object")
        cols = [str(c) for c in _list(dev, "column")]
        if not cols:
            raise FormatError(f"header for device {clip(key)} lists no columns")
        rates.add(_rate(dev))
        base = len(columns)
        columns.extend(cols)
        analog = [i for i, c in enumerate(cols) if c.lower() not in _NON_ANALOG]
        sensors = [str(s) for s in _list(dev, "sensor")]
        resolution = _list(dev, "resolution")
        is_bitalino = "bitalino" in str(dev.get("device", "")).lower()
        prefix = f"{dev.get('device name') or key}:" if len(devices) > 1 else ""
        for k, i in enumerate(analog):
            sensor = sensors[k] if k < len(sensors) else ""
            bits = _bits_of(resolution, i, k, len(cols), len(analog))
            if bits is None and is_bitalino:
                bits = _BITALINO_BITS.get(cols[i])
            channels.append((base + i, prefix + cols[i], sensor, bits))
        if "nseq" in [c.lower() for c in cols]:
            i = [c.lower() for c in cols].index("nseq")
            seq_bits = _bits_of(resolution, i, -1, len(cols), len(analog)) or 4
            counters.append((base + i, 2 ** int(seq_bits)))
    if len(rates) != 1:
        raise FormatError(f"devices with different sampling rates: {sorted(rates)}")
    if not channels:
        raise FormatError("no analog channels in the header")
    names_all = unique_names(columns)
    table = _read_rows(path, encoding, names_all)

    index = _sample_index(table, counters)
    data = np.full((int(index[-1]) + 1, len(channels)), np.nan)
    units_out: list[str] = []
    for j, (col, _name, sensor, bits) in enumerate(channels):
        values = table[:, col]
        if "emg" in sensor.lower() and bits:
            values = emg_adc_to_microvolts(values, bits)
            units_out.append(f"ADC {bits}-bit (EMG)")
        else:
            if "emg" in sensor.lower():
                log.warning("%s: EMG channel without a known resolution kept in counts", path)
            units_out.append("counts")
        data[index, j] = values
    names = unique_names([c[1] for c in channels])
    first = devices[0][1]
    return Recording(
        path=path,
        format="opensignals",
        fs=reconcile_fs(rates.pop(), fs, "file header"),
        channel_names=names,
        data=data,
        units=tuple(units_out),
        roles=roles_from_labels(names),
        start_time=_start_time(first),
    )


def _sample_index(table: NDArray[np.float64], counters: list[tuple[int, int]]) -> NDArray[np.intp]:
    """Sample index of each row: nSeq steps > 1 (mod 2**bits) mean lost samples."""
    plain = np.arange(table.shape[0], dtype=np.intp)
    if not counters or table.shape[0] < 2:
        return plain
    patterns = []
    for col, modulus in counters:
        seq = table[:, col]
        if not np.isfinite(seq).all() or (seq < 0).any() or (seq >= modulus).any():
            log.warning("nSeq counter outside 0..%d: gaps not detected", modulus - 1)
            return plain
        steps = np.mod(np.diff(seq.astype(np.int64)), modulus)
        patterns.append(steps)
    steps = patterns[0]
    if any(not np.array_equal(steps, p) for p in patterns[1:]):
        log.warning("devices' nSeq counters disagree: gaps not detected")
        return plain
    if np.count_nonzero(steps != 1) > MAX_LOST_FRACTION * steps.size:
        log.warning("nSeq counter too irregular to trust: gaps not detected")
        return plain
    # A step of 0 is a repeated count (or exactly one full wrap lost): ambiguous, so assume
    # one sample, which keeps the timeline as the file has it.
    steps = np.where(steps == 0, 1, steps)
    lost = int(steps.sum() - steps.size)
    if lost:
        log.info("nSeq: %d lost samples filled with NaN", lost)
    return np.concatenate(([0], np.cumsum(steps))).astype(np.intp)


def _encoding(path: str) -> str:
    with open(path, "rb") as f:
        return sniff_text(f.read(1 << 16))


#: an OpenSignals header describes a few devices in a few kB; a megabyte is no header
MAX_HEADER_CHARS = 1 << 20


def _json_header(header: list[str]) -> dict[str, Any]:
    for line in header[1:]:
        body = line.lstrip("#").strip()
        if not body.startswith("{"):
            continue
        if len(body) > MAX_HEADER_CHARS:
            raise FormatError(
                f"the OpenSignals header line is {len(body)} characters: not a device header"
            )
        try:
            meta = json.loads(body)
        except RecursionError:
            raise FormatError("the OpenSignals header nests too deeply to be a header") from None
        except ValueError:
            try:  # some writers dump a Python dict repr (single quotes)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # SyntaxWarning on odd literals
                    meta = ast.literal_eval(body)
            except RecursionError:
                raise FormatError("the OpenSignals header nests too deeply") from None
            except Exception:  # ValueError, SyntaxError, TypeError ({dict} is a set)...
                raise FormatError("the OpenSignals header line is not valid JSON") from None
        if not isinstance(meta, dict) or not meta:
            raise FormatError("the OpenSignals header holds no device")
        return meta
    raise FormatError("no OpenSignals JSON header line ('# {...}')")


def _list(dev: dict[str, Any], key: str) -> list[Any]:
    value = dev.get(key, [])
    return list(value) if isinstance(value, list) else [value]


def _rate(dev: dict[str, Any]) -> float:
    value = dev.get("sampling rate")
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FormatError(f"sampling rate {clip(value)} in the header is not a number") from None
    if not 0 < rate < MAX_RATE:
        raise FormatError(f"sampling rate {rate:g} Hz in the header is not plausible")
    return rate


def _bits_of(
    resolution: list[Any], col: int, analog_k: int, n_cols: int, n_analog: int
) -> int | None:
    """Resolution of a column: listed per column, or per analog channel only."""
    if len(resolution) == n_cols:
        value = resolution[col]
    elif len(resolution) == n_analog and analog_k >= 0:
        value = resolution[analog_k]
    else:
        return None
    try:
        bits = int(value)
    except (TypeError, ValueError):
        return None
    return bits if 1 <= bits <= 32 else None


def _start_time(dev: dict[str, Any]) -> datetime | None:
    date, time = str(dev.get("date", "")), str(dev.get("time", ""))
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(f"{date} {time}", fmt)
        except ValueError:
            continue
    return None


def _number(meta: dict[str, str], key: str, kind: type) -> Any:
    if key not in meta:
        raise FormatError(f"no '# {key}:=' line in the header")
    try:
        return kind(float(meta[key].replace(",", ".")))
    except (ValueError, OverflowError):
        raise FormatError(f"header {key!r} is {clip(meta[key])}, not a number") from None
