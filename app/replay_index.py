"""What review needs of the whole file before it has been played: every rep (for ←/→ and the
overview's spans), the gaps and an overview envelope. Built once per opened file on a worker
thread (the GUI thread does no DSP); a result for a file no longer open is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
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
        self,
        source: Replay | None,
        info: StreamInfo | None,
        settings: DspSettings | None,
        changes: Sequence[tuple[int, DspSettings]] = (),
    ) -> None:
        """Index ``source`` (None: forget the previous file) with ``settings`` from its start
        and each of ``changes`` (index, settings) from its index on, as the replay runs."""
        self._generation += 1
        if source is None or info is None:
            return
        args = (source, info, settings, tuple(changes), self._generation)
        threading.Thread(target=self._run, args=args, name="replay-index", daemon=True).start()

    def _run(
        self,
        source: Replay,
        info: StreamInfo,
        settings: DspSettings | None,
        changes: tuple[tuple[int, DspSettings], ...],
        generation: int,
    ) -> None:
        from dsp.analysis import analyze

        try:
            index = ReplayIndex(info.fs)
            n_ch = len(info.channel_names)
            from devices.files.overview import compute_overview

            # streamed from the file where the source can (FileSource: block by block, an hour
            # costs a bounded buffer); any other replay hands over its samples
            reader = getattr(source, "read_range", None)
            if reader is not None and hasattr(source, "overview"):
                ov = source.overview(OVERVIEW_COLUMNS)  # type: ignore[attr-defined]
                data: object = _Blocks(reader, source.n_samples, n_ch)
            else:
                whole = source.samples()[:, :n_ch]
                ov = compute_overview(lambda a, b: whole[a:b], len(whole), info, OVERVIEW_COLUMNS)
                data = whole
            index.overview = OverviewData(
                ov.n_samples / ov.fs,
                0.0,
                (ov.n_samples / max(ov.columns, 1)) / ov.fs,
                np.asarray(ov.rms)[:, :n_ch],
            )
            result = analyze(data, info, settings, changes=changes)  # type: ignore[arg-type]
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
