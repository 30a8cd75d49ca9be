"""What review needs of the whole file before it has been played: every rep (for ←/→ and the
overview's spans), the gaps and an overview envelope. Built once per opened file on a worker
thread (the GUI thread does no DSP); a result for a file no longer open is dropped.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np
from PyQt6 import QtCore

from app.overview import OverviewData
from devices.drivers.base import Replay
from dsp.contract import StreamInfo
from dsp.reps import RepResult
from dsp.settings import DspSettings

log = logging.getLogger(__name__)

OVERVIEW_COLUMNS = 3000  # about two per pixel of a wide screen


@dataclass
class ReplayIndex:
    fs: float
    reps: list[RepResult] = field(default_factory=list)
    overview: OverviewData | None = None


def overview_of(data: np.ndarray, fs: float, columns: int = OVERVIEW_COLUMNS) -> OverviewData:
    """Per channel the standard deviation of each column of samples (the activity there;
    the deviation ignores a channel's DC offset), NaN where a column holds no sample."""
    n, n_ch = data.shape
    duration = n / fs
    if n == 0:
        return OverviewData(0.0)
    cols = max(1, min(columns, n))
    per = n // cols
    used = per * cols
    env = np.full((cols, n_ch), np.nan)
    with np.errstate(all="ignore"):
        blocks = data[:used].reshape(cols, per, n_ch)
        finite = np.isfinite(blocks)
        count = finite.sum(axis=1)
        filled = np.where(finite, blocks, 0.0)
        mean = filled.sum(axis=1) / np.maximum(count, 1)
        var = (np.where(finite, blocks - mean[:, None, :], 0.0) ** 2).sum(axis=1)
        env = np.where(count > 1, np.sqrt(var / np.maximum(count - 1, 1)), np.nan)
    return OverviewData(duration, 0.0, per / fs, env)


class _Blocks:
    """What ``analyze`` reads of its data (its length and consecutive row slices), read
    from the file as it asks: the whole recording is never in memory."""

    def __init__(self, read: object, n: int, n_ch: int) -> None:
        self._read, self._n, self._n_ch = read, n, n_ch
        self.shape = (n, n_ch)

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self._n)
        return np.asarray(self._read(start, stop))[:, : self._n_ch]  # type: ignore[operator]


class ReplayIndexer(QtCore.QObject):
    """``ready(ReplayIndex)`` once the file's index is built (on the GUI thread)."""

    ready = QtCore.pyqtSignal(object)
    _done = QtCore.pyqtSignal(int, object)

    def __init__(self) -> None:
        super().__init__()
        self._generation = 0
        self._done.connect(self._finished)

    def build(
        self, source: Replay | None, info: StreamInfo | None, settings: DspSettings | None
    ) -> None:
        """Index ``source`` (None: forget the previous file)."""
        self._generation += 1
        if source is None or info is None:
            return
        args = (source, info, settings, self._generation)
        threading.Thread(target=self._run, args=args, name="replay-index", daemon=True).start()

    def _run(
        self, source: Replay, info: StreamInfo, settings: DspSettings | None, generation: int
    ) -> None:
        from dsp.analysis import analyze

        try:
            index = ReplayIndex(info.fs)
            n_ch = len(info.channel_names)
            reader = getattr(source, "read_range", None)
            if reader is not None and hasattr(source, "overview"):
                # streamed from the file, block by block: an hour costs a bounded buffer
                ov = source.overview()  # type: ignore[attr-defined]
                index.overview = OverviewData(
                    ov.n_samples / ov.fs,
                    0.0,
                    (ov.n_samples / max(ov.columns, 1)) / ov.fs,
                    np.asarray(ov.rms)[:, :n_ch],
                )
                data: object = _Blocks(reader, source.n_samples, n_ch)
            else:
                whole = source.samples()[:, :n_ch]
                index.overview = overview_of(whole, info.fs)
                data = whole
            result = analyze(data, info, settings)  # type: ignore[arg-type]
            index.reps = list(result.reps)
            index.overview.gaps = [(g.start / info.fs, g.length / info.fs) for g in result.gaps]
            index.overview.reps = [
                (r.start / info.fs, (r.end if r.end is not None else r.start) / info.fs, r.order)
                for r in result.reps
            ]
            self._done.emit(generation, index)
        except Exception as exc:  # navigation is a convenience: never break replay
            log.warning("rep index for replay not built: %s", exc)

    def _finished(self, generation: int, index: ReplayIndex) -> None:
        if generation == self._generation:
            self.ready.emit(index)
