"""Delimited text (CSV/TSV): a header row of channel names, then one row per sample.

An optional time column (``time``, ``t``, ``timestamp``; seconds, or ms if the header says
``time [ms]``) gives the rate and reveals gaps, which become NaN rows. Without one, the caller
must give ``fs``. Header names may carry a unit (``EMG1 [mV]``, ``EMG1 (uV)``). Leading ``#``
lines are comments; ``# roles: glute_l=EMG1, lumbar_l=EMG3`` declares roles.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from dsp.stats import median

from .common import (
    check_user_units,
    clip,
    microvolt_factor,
    parse_roles_line,
    reconcile_fs,
    roles_from_labels,
    unique_names,
)
from .model import FormatError, Recording
from .numeric import parse_block, text_blocks

log = logging.getLogger(__name__)

SNIFF_BYTES = 1 << 16
_TIME_NAMES = {"time", "t", "timestamp", "time_s", "times"}
_TIME_MS_NAMES = {"time_ms", "timestamp_ms", "t_ms"}
_UNIT_SUFFIX = re.compile(
    r"^(?P<name>.*?)\s*(?:\[(?P<square>[^\[\]]*)\]|\((?P<round>[^()]*)\))\s*$"
)
_DELIMITERS = ("\t", ";", ",")
_TIME_UNITS = {"s", "sec", "seconds", "ms", "msec"}
GAP_FACTOR = 1.5  # a time step above 1.5 sample periods is a gap
MAX_GAP_SECONDS = 600.0  # more missing time than this (or than the data itself) is refused
EPOCH_MIN = 1e8  # a "timestamp" column above this is unix time (after 1973)


@dataclass(frozen=True)
class _Layout:
    encoding: str
    header_row: int  # 1-based line number of the header
    delimiter: str | None
    decimal_comma: bool
    names: tuple[str, ...]
    header_units: tuple[str | None, ...]
    unnamed: tuple[bool, ...]
    declared_roles: dict[str, str]


def sniff_text(raw: bytes) -> str:
    """Encoding of a text file from its first bytes; binary content is a FormatError."""
    if b"\x00" in raw:
        raise FormatError("binary content (NUL bytes), not a text file")
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        # A multi-byte character may be cut at the end of the sample: ignore a short tail.
        raw.decode("utf-8") if len(raw) < SNIFF_BYTES else raw[:-4].decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"  # never fails; non-numbers are then reported cell by cell
    return "utf-8"


def read_csv(path: str, *, fs: float | None, units: str | None) -> Recording:
    user_units = check_user_units(units)
    with open(path, "rb") as fb:
        raw = fb.read(SNIFF_BYTES)
    if not raw.strip():
        raise FormatError("the file is empty")
    layout = _layout(raw, sniff_text(raw))
    time_col = _time_column(layout)
    if time_col is None and fs is None:
        raise FormatError("no time column: set fs")  # before reading a big file

    blocks: list[NDArray[np.float64]] = []
    with open(path, encoding=layout.encoding, errors="replace", newline=None) as f:
        for _ in range(layout.header_row):
            f.readline()
        row = layout.header_row + 1
        for text in text_blocks(f):
            block = parse_block(
                text, row, layout.delimiter, layout.names, decimal_comma=layout.decimal_comma
            )
            if block.shape[0]:
                blocks.append(block)
            row += text.count("\n")
    if not blocks:
        raise FormatError("no data rows after the header")
    return _to_recording(path, blocks, layout, time_col, user_fs=fs, user_units=user_units)


def _layout(raw: bytes, encoding: str) -> _Layout:
    text = raw.decode(encoding, errors="replace")
    # Split like a text-mode file does (\n, \r\n, \r) so that line numbers agree later.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(raw) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut short
    declared: dict[str, str] = {}
    header_idx = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            roles = parse_roles_line(stripped)
            if roles:
                declared.update(roles)
            continue
        header_idx = i
        break
    if header_idx is None:
        raise FormatError("no header row (only comments or blank lines)")
    header = lines[header_idx]
    sample = [ln for ln in lines[header_idx + 1 : header_idx + 50] if ln.strip()]
    sample = [ln for ln in sample if not ln.lstrip().startswith("#")]
    delimiter = _sniff_delimiter(header, sample)
    names_raw = _split_header(header, delimiter)
    if _looks_numeric(names_raw):
        raise FormatError(
            "the first row holds numbers: a header row with channel names is required"
        )
    decimal_comma = delimiter != "," and any("," in ln for ln in sample)
    names: list[str] = []
    header_units: list[str | None] = []
    for raw_name in names_raw:
        m = _UNIT_SUFFIX.match(raw_name)
        square = m is not None and m.group("square") is not None
        unit = (m.group("square") if square else m.group("round")).strip() if m else ""
        # "[x]" is always a unit; "(x)" only a known one, so "EMG1 (left glute)" stays a name.
        known = microvolt_factor(unit) is not None or unit in _TIME_UNITS
        if m and m.group("name") and unit and (square or known):
            names.append(m.group("name"))
            header_units.append(unit)
        else:
            names.append(raw_name)
            header_units.append(None)
    return _Layout(
        encoding=encoding,
        header_row=header_idx + 1,
        delimiter=delimiter,
        decimal_comma=decimal_comma,
        names=unique_names(names, fallback="col"),
        unnamed=tuple(not n for n in names),
        header_units=tuple(header_units),
        declared_roles=declared,
    )


def _sniff_delimiter(header: str, sample: list[str]) -> str | None:
    """The delimiter that splits the header and the sampled rows into the same width."""
    for d in _DELIMITERS:
        width = header.count(d) + 1
        if width > 1 and all(ln.count(d) + 1 == width for ln in sample):
            return d
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    if counts[best]:
        return best  # ragged rows: the row reader will say which row is wrong
    return None  # a single column


def _split_header(header: str, delimiter: str | None) -> list[str]:
    cells = [header] if delimiter is None else header.split(delimiter)
    return [c.strip().strip('"').strip() for c in cells]


def _looks_numeric(cells: list[str]) -> bool:
    def is_number(c: str) -> bool:
        try:
            float(c.replace(",", "."))
        except ValueError:
            return False
        return True

    return all(c and is_number(c) for c in cells)


def _time_column(layout: _Layout) -> tuple[int, float] | None:
    """Index of the time column and the factor to seconds, if there is one."""
    for i, name in enumerate(layout.names):
        key = name.strip().lower()
        unit = (layout.header_units[i] or "").strip().lower()
        if key in _TIME_MS_NAMES:
            return i, 1e-3
        if key in _TIME_NAMES:
            if unit in ("", "s", "sec", "seconds"):
                return i, 1.0
            if unit in ("ms", "msec"):
                return i, 1e-3
            raise FormatError(f"time column {clip(name)} has unit {clip(unit)}: use s or ms")
    return None


def _to_recording(
    path: str,
    blocks: list[NDArray[np.float64]],
    layout: _Layout,
    time_col: tuple[int, float] | None,
    *,
    user_fs: float | None,
    user_units: str | None,
) -> Recording:
    """Assemble the parsed blocks into the output array, freeing each block once copied."""
    keep = [i for i in range(len(layout.names)) if time_col is None or i != time_col[0]]
    # A trailing delimiter makes an unnamed, all-empty last column: drop it quietly.
    keep = [
        i for i in keep if not (layout.unnamed[i] and all(np.isnan(b[:, i]).all() for b in blocks))
    ]
    if not keep:
        raise FormatError("no channel columns besides the time column")
    names = tuple(layout.names[i] for i in keep)
    n_rows = sum(b.shape[0] for b in blocks)
    start_time = None
    index: NDArray[np.intp] | None = None
    if time_col is None:
        assert user_fs is not None  # checked before reading
        fs = user_fs
        n_out = n_rows
    else:
        t = np.concatenate([b[:, time_col[0]] for b in blocks]) * time_col[1]
        fs, index = _time_to_index(t, layout.header_row + 1)
        fs = reconcile_fs(fs, user_fs, "time column")
        n_out = int(index[-1]) + 1
        if layout.names[time_col[0]].lower().startswith("timestamp") and t[0] > EPOCH_MIN:
            start_time = datetime.fromtimestamp(float(t[0]), tz=UTC)
        del t
    gaps = index is not None and n_out != n_rows
    data = np.full((n_out, len(keep)), np.nan) if gaps else np.empty((n_out, len(keep)))
    pos = 0
    missing_cells = missing_rows = 0
    blocks.reverse()
    while blocks:
        block = blocks.pop()
        rows = block.shape[0]
        target = index[pos : pos + rows] if gaps else slice(pos, pos + rows)  # type: ignore[index]
        data[target] = block[:, keep]
        nan = np.isnan(data[target])
        if nan.any():
            missing_cells += int(np.count_nonzero(nan))
            missing_rows += int(np.count_nonzero(nan.any(axis=1)))
        pos += rows
        del block
    if missing_cells:
        # Empty or NaN cells are samples the file does not have: the pipeline holds a few
        # ms over and treats longer runs as gaps; reps whose onsets they touch are
        # undetermined. One line, so the user knows why.
        log.warning(
            "%s: %d empty or NaN cell(s) in %d row(s): treated as missing samples (gaps)",
            os.path.basename(path),
            missing_cells,
            missing_rows,
        )

    units: list[str] = []
    for j, i in enumerate(keep):
        found = layout.header_units[i]
        if found is not None and microvolt_factor(found) is not None:
            if user_units is not None and microvolt_factor(user_units) != microvolt_factor(found):
                raise FormatError(
                    f"column {clip(layout.names[i])} says {found} but units is set to {user_units}"
                )
            unit = found
        elif found is not None:
            log.warning("column %r has unit %r, not a voltage: kept as is", names[j], found)
            units.append(found)
            continue
        else:
            unit = user_units or "uV"
        factor = microvolt_factor(unit)
        if factor is not None and factor != 1.0:
            data[:, j] *= factor
        units.append(unit)
    return Recording(
        path=path,
        format="csv",
        fs=fs,
        channel_names=names,
        data=data,
        units=tuple(units),
        annotations=(),
        roles=roles_from_labels(names, layout.declared_roles),
        start_time=start_time,
    )


def _time_to_index(t: NDArray[np.float64], first_row: int) -> tuple[float, NDArray[np.intp]]:
    """Sampling rate from a time column, and the sample index of each row (gaps skipped)."""
    if not np.isfinite(t).all():
        bad = int(np.flatnonzero(~np.isfinite(t))[0])
        raise FormatError(f"row {first_row + bad}: time is empty or not finite")
    if t.size < 2:
        raise FormatError("one sample only: the time column cannot give the sampling rate")
    dt = np.diff(t)
    if (dt <= 0).any():
        bad = int(np.flatnonzero(dt <= 0)[0]) + 1
        hint = " (time too coarse? drop the time column and set fs)" if dt[bad - 1] == 0 else ""
        raise FormatError(
            f"row {first_row + bad}: time does not increase "
            f"({t[bad - 1]:.9g} s then {t[bad]:.9g} s){hint}"
        )
    period = median(dt)
    steps = np.rint(dt / period)
    if (dt < 0.5 * period).any():
        bad = int(np.flatnonzero(dt < 0.5 * period)[0]) + 1
        raise FormatError(
            f"row {first_row + bad}: irregular time step {dt[bad - 1]:.6g} s "
            f"(median {period:.6g} s)"
        )
    steps[dt <= GAP_FACTOR * period] = 1
    missing = float(steps.sum() - steps.size)
    if missing > max(MAX_GAP_SECONDS / period, float(t.size)):
        raise FormatError(
            f"time jumps over {missing * period:.0f} s in total: too large a gap to fill"
        )
    index = np.concatenate(([0], np.cumsum(steps))).astype(np.intp)
    if missing:
        gaps = int(np.count_nonzero(steps > 1))
        log.info("time column: %d gap(s), %d missing samples filled with NaN", gaps, missing)
    # Total span over total samples: far more precise than the median step alone.
    fs = float(index[-1]) / float(t[-1] - t[0])
    return fs, index
