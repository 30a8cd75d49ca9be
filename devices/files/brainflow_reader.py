"""BrainFlow files (``DataFilter.write_file``): tab-separated numbers, one line per sample.

Each line holds one column per row of the board's data array (package number, EXG channels,
..., timestamp, marker). The file does not say which board wrote it, so the board must be
given (``board="CYTON_BOARD"``, CLI ``--board``); its descriptor says which columns are EMG
(else EXG), which one is the package number, the timestamp and the marker.

* **Values** are taken as microvolts (BrainFlow's unit for EXG data); ``units`` overrides.
* **Rate**: the board's default rate; a given ``fs`` replaces it (boards can be set to other
  rates, and the file cannot tell).
* **Gaps**: the package-number row (one byte on most boards, wraps at 256) -- a jump of ``k``
  means ``k - 1`` lost samples, which become NaN rows. A counter past 255 does not wrap.
* **Start time**: the first timestamp (unix seconds) when it looks like one.
* **Markers**: nonzero values of the marker row become ``Annotation(onset, 0, "marker V")``.

Such a file is never detected from its content alone (a header-less grid of numbers is too
ambiguous): ``format="brainflow"`` or a ``board`` selects this reader.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from .common import check_user_units, microvolt_factor, roles_from_labels
from .model import Annotation, FormatError, Recording
from .numeric import parse_block, text_blocks

log = logging.getLogger(__name__)

EPOCH_MIN = 1e8  # a timestamp above this is unix time (after 1973)
MAX_GAP_SECONDS = 600.0  # more lost time than this (or than the data itself) is refused
NEEDS_BOARD = "a BrainFlow file needs its board: set board NAME (e.g. CYTON_BOARD, SYNTHETIC_BOARD)"


def read_brainflow(
    path: str, *, fs: float | None, units: str | None, board: str | int | None = None
) -> Recording:
    """Read a BrainFlow CSV written by ``DataFilter.write_file`` for ``board``."""
    # Imported here: BrainFlow's native library is only loaded when such a file is read.
    from brainflow.board_shim import BoardShim, BrainFlowError

    from devices.files.brainflow_layout import (
        PackageTracker,
        UnknownBoardError,
        board_name,
        exg_rows,
        resolve_board,
    )

    user_units = check_user_units(units)
    if board is None or (isinstance(board, str) and not board.strip()):
        raise FormatError(NEEDS_BOARD)
    try:
        board_id = resolve_board(board)
        name = board_name(board_id)
        n_rows = int(BoardShim.get_num_rows(board_id))
        rows, kind = exg_rows(board_id)
        board_fs = float(BoardShim.get_sampling_rate(board_id))
        pkg_row = _optional_row(BoardShim.get_package_num_channel, board_id)
        time_row = _optional_row(BoardShim.get_timestamp_channel, board_id)
        marker_row = _optional_row(BoardShim.get_marker_channel, board_id)
    except UnknownBoardError as exc:
        raise FormatError(str(exc)) from None
    except BrainFlowError as exc:
        raise FormatError(f"BrainFlow has no descriptor for board {board!r} ({exc})") from None
    if not rows:
        raise FormatError(f"{name} has no EMG or EXG channels")

    table = _read_table(path, n_rows, name)
    n = table.shape[0]
    if fs is not None and abs(fs - board_fs) > 0.01 * board_fs:
        log.info("%s: using the given rate %g Hz instead of the board's %g Hz", name, fs, board_fs)
    rate = float(fs) if fs is not None else board_fs

    times = table[:, time_row] if time_row is not None else None
    lost = np.zeros(n, dtype=np.int64)
    if pkg_row is not None and n > 1:
        lost = PackageTracker(rate).lost(table[:, pkg_row].copy(), times)
    missing = int(lost.sum())
    if missing > max(MAX_GAP_SECONDS * rate, float(n)):
        raise FormatError(
            f"package numbers say {missing} samples were lost ({missing / rate:.0f} s): "
            f"is {name} the right board (set board)?"
        )
    index = np.arange(n, dtype=np.int64) + np.cumsum(lost)
    n_out = int(index[-1]) + 1
    if missing:
        log.info(
            "%s: %d gap(s), %d lost samples filled with NaN",
            path,
            int(np.count_nonzero(lost)),
            missing,
        )

    unit = user_units or "uV"
    factor = microvolt_factor(unit) or 1.0
    data = np.full((n_out, len(rows)), np.nan) if missing else np.empty((n_out, len(rows)))
    data[index] = table[:, rows] * factor
    names = tuple(f"EMG{r}" for r in rows)

    annotations: list[Annotation] = []
    if marker_row is not None:
        marks = table[:, marker_row]
        for i in np.flatnonzero(np.isfinite(marks) & (marks != 0)):
            onset = float(index[i]) / rate
            annotations.append(Annotation(onset, 0.0, f"marker {float(marks[i]):g}"))

    start_time = None
    if times is not None and np.isfinite(times[0]) and times[0] > EPOCH_MIN:
        start_time = datetime.fromtimestamp(float(times[0]), tz=UTC)
    log.debug("%s: %s, %d %s rows, %d samples", path, name, len(rows), kind, n_out)
    return Recording(
        path=path,
        format="brainflow",
        fs=rate,
        channel_names=names,
        data=data,
        units=("uV",) * len(rows),
        annotations=tuple(annotations),
        roles=roles_from_labels(names),
        start_time=start_time,
    )


def _optional_row(getter: Callable[[int], int], board_id: int) -> int | None:
    from brainflow.board_shim import BrainFlowError

    try:
        return int(getter(board_id))
    except BrainFlowError:
        return None


def _read_table(path: str, n_rows: int, board: str) -> NDArray[np.float64]:
    """The whole file as ``(n_samples, n_rows)``; a column count that does not fit is an error."""
    with open(path, "rb") as fb:
        first = fb.readline(1 << 16)
    if b"\x00" in first:
        raise FormatError("binary content (NUL bytes), not a BrainFlow text file")
    line = first.decode("utf-8", errors="replace").strip()
    if not line:
        raise FormatError("the first line is empty: not a BrainFlow file")
    delimiter = "\t" if "\t" in line else ","
    width = len(line.split(delimiter))
    if width != n_rows:
        raise FormatError(
            f"{width} columns per line but {board} has {n_rows} rows: wrong board (set board)?"
        )
    names = tuple(f"row{i}" for i in range(n_rows))
    blocks: list[NDArray[np.float64]] = []
    with open(path, encoding="utf-8", errors="replace", newline=None) as f:
        row = 1
        for text in text_blocks(f):
            block = parse_block(text, row, delimiter, names)
            if block.shape[0]:
                blocks.append(block)
            row += text.count("\n")
    if not blocks:
        raise FormatError("no data lines")
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
