"""What BrainFlow says about a board's data layout: names and ids, EMG rows, the package
counter. Shared by the BrainFlow driver and the reader of BrainFlow CSV files (a file written
by a board has that board's layout); only BrainFlow's description functions are used here,
no board is opened.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from brainflow.board_shim import BoardIds, BoardShim, BrainFlowError
from numpy.typing import NDArray

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: the package-number counter of most boards is one byte
PACKAGE_MODULUS = 256


class UnknownBoardError(ValueError):
    """A board name or id BrainFlow does not know (the message suggests close names)."""


def board_name(board_id: int) -> str:
    try:
        return BoardIds(board_id).name
    except ValueError:
        return str(board_id)


def resolve_board(board: str | int) -> int:
    """A BrainFlow board id from a name (``"CYTON_BOARD"``, ``"cyton"``) or id (``0``)."""
    if isinstance(board, int | np.integer):
        try:
            return BoardIds(int(board)).value
        except ValueError:
            raise UnknownBoardError(f"unknown BrainFlow board id {board}") from None
    text = str(board).strip()
    try:
        return resolve_board(int(text))
    except ValueError:
        pass
    key = text.upper().replace("-", "_").replace(" ", "_")
    names = [b.name for b in BoardIds if b is not BoardIds.NO_BOARD]
    for candidate in (key, f"{key}_BOARD"):
        if candidate in names:
            return BoardIds[candidate].value
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "e.g. SYNTHETIC_BOARD, CYTON_BOARD"
    raise UnknownBoardError(f"unknown BrainFlow board {text!r} ({hint}; list_boards() shows all)")


def descriptor(board_id: int) -> dict[str, Any]:
    descr = BoardShim.get_board_descr(board_id)
    return dict(descr) if isinstance(descr, Mapping) else {}


def exg_rows(board_id: int) -> tuple[list[int], str]:
    """The rows carrying EMG (else EXG) signals, and which kind they are."""
    for kind, getter in (("emg", BoardShim.get_emg_channels), ("exg", BoardShim.get_exg_channels)):
        try:
            rows = [int(r) for r in getter(board_id)]
        except BrainFlowError:
            continue
        if rows:
            return rows, kind
    return [], ""


class PackageTracker:
    """Lost samples before each sample, from the package-number row.

    The counter normally steps by 1 per sample (Cyton, synthetic board) and wraps at 256; a
    Cyton+Daisy steps by 2 (one package per board). The step is learnt from the first samples.
    A counter that goes past 255 (e.g. ANT Neuro's sample counter) is taken as non-wrapping.
    A jump whose timestamps say it spans more than one wrap gets the missing wraps added,
    but only where a wrap lasts at least ``min_wrap_s`` (host-stamped times jitter).
    """

    def __init__(self, fs: float, modulus: int | None = PACKAGE_MODULUS, min_wrap_s: float = 0.5):
        self.fs = fs
        self.modulus = modulus
        self.min_wrap_s = min_wrap_s
        self.step: int | None = None
        self._seen: list[int] = []  # package steps seen while the step is being learnt
        self.prev: float | None = None
        self.prev_time: float | None = None
        self._usable = True

    def reset(self) -> None:
        """The next sample continues the stream whatever its number (new session, loop)."""
        self.prev = None
        self.prev_time = None

    def lost(self, pkg: FloatArray, times: FloatArray | None = None) -> NDArray[np.int64]:
        n = len(pkg)
        zeros = np.zeros(n, dtype=np.int64)
        if not n or not self._usable:
            return zeros
        if not np.isfinite(pkg).all() or (np.abs(pkg - np.round(pkg)) > 1e-6).any():
            self._usable = False
            log.warning("package numbers are not integers; gap detection is off")
            return zeros
        if self.modulus is not None and pkg.max() >= self.modulus:
            log.info("package numbers exceed %d: the counter does not wrap", self.modulus - 1)
            self.modulus = None
        prev = self.prev
        fresh = prev is None
        vals = pkg if prev is None else np.concatenate((np.array([prev]), pkg))
        d = np.diff(vals).astype(np.int64)
        if self.modulus is not None:
            d %= self.modulus
        if self.step is None:
            self._seen.extend(d[d > 0].tolist())
            if len(self._seen) < 8:  # too few to tell (polls may bring 2-3 samples)
                self._remember(pkg, times)
                return zeros
            steps, counts = np.unique(self._seen, return_counts=True)
            best = int(steps[np.argmax(counts)])
            self.step = best if best in (1, 2) else 1
            log.debug("package number step: %d", self.step)
        step = self.step
        gaps = np.where(d > step, d // step - 1, 0)  # 0 (repeat) and negatives: no loss
        if self.modulus is not None and times is not None and gaps.size:
            gaps = self._add_wraps(gaps, d, pkg, times, fresh)
        out = zeros
        if fresh:
            out[1:] = gaps
        else:
            out[:] = gaps
        self._remember(pkg, times)
        return out

    def _add_wraps(
        self,
        gaps: NDArray[np.int64],
        d: NDArray[np.int64],
        pkg: FloatArray,
        times: FloatArray,
        fresh: bool,
    ) -> NDArray[np.int64]:
        assert self.modulus is not None and self.step is not None
        period = self.modulus // self.step  # samples per wrap
        if period / self.fs < self.min_wrap_s:
            return gaps
        t = times if fresh else np.concatenate(([self.prev_time or np.nan], times))
        dt = np.diff(t)
        est = dt * self.fs - 1.0
        extra = np.where(
            np.isfinite(est) & (est - gaps >= period),
            np.round((est - gaps) / period).astype(np.int64),
            0,
        )
        return gaps + extra * period

    def _remember(self, pkg: FloatArray, times: FloatArray | None) -> None:
        self.prev = float(pkg[-1])
        self.prev_time = float(times[-1]) if times is not None and len(times) else None


# --------------------------------------------------------------------------------------
# Device
# --------------------------------------------------------------------------------------
