"""A recorded file as a source: replay through the live pipeline at 0.25x-8x or flat out.

The whole file is read once (devices.files); ``read`` hands out the samples that are due by the
replay clock. NaN rows (lost samples in the file) become gaps: a jump in ``Chunk.start``, as a
device would show them, so replay sees exactly what the live session saw.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np

from devices.drivers.base import Device, DeviceError, Replay, register
from dsp.contract import Chunk, StreamInfo

log = logging.getLogger(__name__)

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class FileSource(Device, Replay):
    name = "file"

    def __init__(
        self,
        path: str,
        *,
        channels: Mapping[str, str] | None = None,
        fs: float | None = None,
        units: str | None = None,
        speed: float | None = 1.0,
        board: str | None = None,
        stream: str | None = None,
        chunk_ms: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``channels`` maps roles to channel specs (``A-B`` bipolar allowed); without it the
        file's own roles are used. ``speed=None`` replays as fast as possible. ``board`` (the
        BrainFlow board that wrote a BrainFlow CSV) and ``stream`` (the EMG stream of a
        multi-stream XDF) are read as ``analyze`` reads them."""
        self._board, self._stream = board or None, stream or None
        self.path = path
        self._speed = speed
        self._roles_spec = dict(channels) if channels else None
        self._fs, self._units = fs, units
        self.chunk_ms = chunk_ms
        self._clock = clock
        self._data: np.ndarray | None = None
        self._pos = 0
        self._t0 = 0.0
        self._pos0 = 0
        self._paused = True
        self._lock = threading.Lock()
        self.info: StreamInfo | None = None
        self._finished = False
        self.annotations: list[tuple[float, float, str]] = []

    # -- Device --------------------------------------------------------------------------
    def open(self) -> StreamInfo:
        from devices.files import ReaderError
        from devices.files.mapping import load_mapped

        try:
            mapped = load_mapped(
                self.path,
                self._roles_spec,
                fs=self._fs,
                units=self._units,
                board=self._board,
                stream=self._stream,
                keep_unmapped=True,
            )
        except ReaderError as exc:
            raise DeviceError(str(exc)) from None
        rec, data = mapped.recording, mapped.data
        self._data = np.ascontiguousarray(data, dtype=np.float64)
        self.annotations = [(a.onset_s, a.duration_s, a.text) for a in rec.annotations]
        self.info = dataclasses.replace(mapped.info, source=f"file {self.path}")
        self._pos = 0
        self._finished = False
        return self.info

    def start(self) -> None:
        self.play()

    def stop(self) -> None:
        self.pause()

    def close(self) -> None:
        self._data = None

    @property
    def n_samples(self) -> int:
        return 0 if self._data is None else int(self._data.shape[0])

    @property
    def position(self) -> int:
        return self._pos

    @property
    def finished(self) -> bool:
        return self._finished

    # -- Replay ----------------------------------------------------------------------------
    def replay(self) -> Replay:
        return self

    @property
    def speed(self) -> float | None:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def at_end(self) -> bool:
        return self._data is not None and self._pos >= self.n_samples

    def samples(self) -> np.ndarray:
        if self._data is None:
            raise DeviceError("replay: the file is not open")
        view = self._data.view()
        view.flags.writeable = False
        return view

    # -- transport -------------------------------------------------------------------------
    def play(self) -> None:
        with self._lock:
            self._paused = False
            self._t0, self._pos0 = self._clock(), self._pos

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def set_speed(self, speed: float | None) -> None:
        with self._lock:
            self._speed = speed
            self._t0, self._pos0 = self._clock(), self._pos

    def seek(self, index: int) -> None:
        """Continue from sample ``index`` (the consumer sees a jump; see LiveSession.seek)."""
        with self._lock:
            self._pos = int(np.clip(index, 0, self.n_samples))
            self._t0, self._pos0 = self._clock(), self._pos
            self._finished = self._pos >= self.n_samples

    def read(self) -> Chunk | None:
        if self._data is None or self.info is None:
            return None
        with self._lock:
            if self._paused or self._pos >= self.n_samples:
                self._finished = self._pos >= self.n_samples
                return None
            fs = self.info.fs
            if self._speed is None:
                due = self._pos + max(1, round(fs))  # flat out: one second per read
            else:
                due = self._pos0 + int((self._clock() - self._t0) * self._speed * fs)
                due = min(due, self._pos + round(2 * fs))  # never a huge burst after a stall
            stop = min(due, self.n_samples)
            if stop <= self._pos:
                return None
            start = self._pos
            block = self._data[start:stop]
            self._pos = stop
        # Leading NaN rows are samples the file lost: deliver them as a jump in the index.
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            good = np.flatnonzero(~bad)
            if good.size == 0:
                return None
            first = int(good[0])
            last_bad = np.flatnonzero(bad[first:])
            end = first + int(last_bad[0]) if last_bad.size else block.shape[0]
            with self._lock:
                self._pos = start + end  # the rest comes with the next read
            return Chunk(block[first:end], start + first, self._clock())
        return Chunk(block, start, self._clock())


register("file", FileSource)
