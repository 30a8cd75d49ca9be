"""A recorded file as a source: replay through the live pipeline at 0.1x-8x or flat out.

The file is read by range (:mod:`devices.files.blocks`): ``open`` reads the header and the
channel mapping only, and ``read`` hands out the samples that are due by the replay clock from
a buffer of a few seconds, refilled from the file as the replay moves on, so a long file costs
that buffer, not its decoded size. NaN rows (lost samples in the file) become gaps: a jump in
``Chunk.start``, as a device would show them, so replay sees exactly what the live session saw.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from devices.drivers.base import Device, DeviceError, Replay, register
from dsp.contract import Chunk, StreamInfo

if TYPE_CHECKING:
    from devices.files.blocks import BlockFile
    from devices.files.overview import Overview

log = logging.getLogger(__name__)

#: replay speeds offered as presets (the window's menu); any speed in the range is accepted
SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MIN_SPEED, MAX_SPEED = 0.1, 8.0
#: seconds of samples the replay holds: more than the largest read (2 s after a stall)
BUFFER_S = 4.0


def check_speed(speed: float | None) -> float | None:
    """``speed`` as a float in [MIN_SPEED, MAX_SPEED], or None (as fast as possible);
    anything else is a ValueError that names the range."""
    if speed is None:
        return None
    try:
        value = float(speed)
    except (TypeError, ValueError):
        value = math.nan
    if not MIN_SPEED <= value <= MAX_SPEED:  # (false for NaN)
        raise ValueError(
            f"replay speed must be between {MIN_SPEED:g}x and {MAX_SPEED:g}x "
            f"(or none: as fast as possible), not {speed!r}"
        )
    return value


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
        file's own roles are used. ``speed`` is any factor in [0.1, 8] (``None`` replays as
        fast as possible). ``board`` (the BrainFlow board that wrote a BrainFlow CSV) and
        ``stream`` (the EMG stream of a multi-stream XDF) are read as ``analyze`` reads them.
        ``chunk_ms``: a paced replay delivers whole packets of this length, as a device does."""
        if not (isinstance(chunk_ms, (int, float)) and math.isfinite(chunk_ms) and chunk_ms > 0):
            raise ValueError(f"replay chunk length must be a positive number of ms: {chunk_ms!r}")
        self._board, self._stream = board or None, stream or None
        self.path = path
        self._speed = check_speed(speed)
        self._roles_spec = dict(channels) if channels else None
        self._fs, self._units = fs, units
        self.chunk_ms = chunk_ms
        self._clock = clock
        self._file: BlockFile | None = None
        self._n = 0
        # the buffer: samples [_buf_start, _buf_start + len(_buf)) of the mapped recording
        self._buf = np.empty((0, 0))
        self._buf_start = 0
        self._buf_rows = 0
        self._packet = 1
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
        from devices.files.blocks import open_blocks

        self.close()
        try:
            blocks = open_blocks(
                self.path,
                self._roles_spec,
                fs=self._fs,
                units=self._units,
                board=self._board,
                stream=self._stream,
            )
        except ReaderError as exc:
            raise DeviceError(str(exc)) from None
        self._file = blocks
        self._n = blocks.n_samples
        self.annotations = [(a.onset_s, a.duration_s, a.text) for a in blocks.annotations]
        self.info = dataclasses.replace(blocks.info, source=f"file {self.path}")
        self._buf_rows = max(1, round(BUFFER_S * self.info.fs))
        self._packet = max(1, round(self.chunk_ms / 1000 * self.info.fs))
        self._buf = np.empty((0, self.info.n_channels))
        self._buf_start = 0
        self._pos = 0
        self._finished = False
        return self.info

    def start(self) -> None:
        self.play()

    def stop(self) -> None:
        self.pause()

    def close(self) -> None:
        """Release the file (a decoded temporary copy is deleted)."""
        blocks, self._file = self._file, None
        if blocks is not None:
            blocks.close()
        self._buf = np.empty((0, self._buf.shape[1] if self._buf.ndim == 2 else 0))

    @property
    def n_samples(self) -> int:
        return self._n if self._file is not None else 0

    @property
    def position(self) -> int:
        return self._pos

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def buffer_rows(self) -> int:
        """Samples the replay holds at most (a few seconds, whatever the file's length)."""
        return self._buf_rows

    @property
    def decoded_copy(self) -> bool:
        """Whether the replay reads a decoded temporary copy (a format not read by range:
        CSV, XDF, ...) rather than the file itself."""
        return self._file is not None and self._file.decoded_copy

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
        return self._file is not None and self._pos >= self.n_samples

    def samples(self) -> np.ndarray:
        """The whole recording, decoded now (its full size in memory: for offline use; the
        replay itself never holds it)."""
        return self.read_range(0, self.n_samples)

    def read_range(self, start: int, stop: int, channels_first: bool = False) -> np.ndarray:
        """Samples ``[start, stop)`` as the stream's channels (NaN rows: lost samples),
        straight from the file, ``(samples, channels)`` (``channels_first``: transposed);
        does not move the replay. Read-only."""
        blocks = self._file
        if blocks is None:
            raise DeviceError("replay: the file is not open")
        data = blocks.read_channels(start, stop) if channels_first else blocks.read(start, stop)
        data.flags.writeable = False
        return data

    def overview(self, columns: int = 3000) -> Overview:
        """The whole recording per channel at ``columns`` columns (band-passed RMS per column,
        gap spans), read block by block from the file: for the window's overview strip (run
        it off the GUI thread: about 0.1-0.3 s for an hour)."""
        from devices.files.overview import compute_overview

        if self.info is None or self._file is None:
            raise DeviceError("replay: the file is not open")
        blocks = self._file
        return compute_overview(
            blocks.read_channels,  # a new array each read: filtered in place
            self.n_samples,
            self.info,
            columns,
            channels_first=True,
            fresh=True,
        )

    # -- transport -------------------------------------------------------------------------
    def play(self) -> None:
        with self._lock:
            self._paused = False
            self._t0, self._pos0 = self._clock(), self._pos

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def set_speed(self, speed: float | None) -> None:
        """Any speed in [0.1, 8] (None: as fast as possible); ValueError otherwise."""
        value = check_speed(speed)
        with self._lock:
            self._speed = value
            self._t0, self._pos0 = self._clock(), self._pos

    def seek(self, index: int) -> None:
        """Continue from sample ``index`` (the consumer sees a jump; see LiveSession.seek)."""
        with self._lock:
            self._pos = int(np.clip(index, 0, self.n_samples))
            self._t0, self._pos0 = self._clock(), self._pos
            self._finished = self._pos >= self.n_samples

    def _rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` from the buffer, refilled from the file when they are not
        all in it (``stop - start`` never exceeds the buffer)."""
        blocks = self._file
        assert blocks is not None
        b0 = self._buf_start
        if not (b0 <= start and stop <= b0 + self._buf.shape[0]):
            self._buf = blocks.read(start, start + self._buf_rows)
            self._buf_start = b0 = start
        return self._buf[start - b0 : stop - b0]

    def read(self) -> Chunk | None:
        if self._file is None or self.info is None:
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
                if due < self.n_samples:  # (the file's last samples come as they are)
                    # Whole packets, as a device delivers them, not the sample or two due at
                    # each of the worker's polls: a pipeline call costs about the same for 1
                    # sample as for 40, and a stream that began mid-burst keeps its first
                    # chunks to judge them again once rest is seen -- in single samples that
                    # re-judge took 2.2 s at 0:08 of a motor-unit file, the replay frozen.
                    due = self._pos + (due - self._pos) // self._packet * self._packet
            stop = min(due, self.n_samples, self._pos + self._buf_rows)
            if stop <= self._pos:
                return None
            start = self._pos
            block = self._rows(start, stop)
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
