"""An H.264 MP4 written on its own thread, frame by frame, each frame at its session time.

The producer (the window's camera slot, on the GUI thread) calls :meth:`VideoWriter.put` with
an RGB array and the frame's time on the session clock (seconds of the EMG file it goes
with). ``put`` never blocks: a full queue drops the frame and counts it, because a slow disk
or encoder must never stall the EMG feedback. The writer thread encodes, keeps the time as
the frame's pts (milliseconds) and appends ``frame,pts_ms,emg_s`` to the frame-times file
(``NAME.mp4.times.csv``), which keeps the exact times when the MP4's timescale rounds them.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1000)  # pts in ms of the session clock
QUEUE_FRAMES = 30  # about 1 s of camera frames waiting for the encoder; more are dropped


def times_path(video: str | Path) -> Path:
    """The frame-times file of ``video``."""
    p = Path(video)
    return p.with_name(p.name + ".times.csv")


@dataclass
class WriterStats:
    written: int = 0
    dropped: int = 0  # queue full (encoder behind) or a frame out of time order
    error: str | None = None


FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+delay_moov", "flush_packets": "1"}


class VideoWriter:
    """Write frames to ``path`` (H.264 in MP4) with their session times. See the module doc."""

    def __init__(self, path: str | Path, fps_hint: int = 30, max_width: int = 1280) -> None:
        self.path = Path(path)
        self.times_path = times_path(self.path)
        self.fps_hint = int(fps_hint)
        self.max_width = int(max_width)
        self.stats = WriterStats()
        self._queue: queue.Queue[tuple[NDArray[np.uint8], float] | None] = queue.Queue(QUEUE_FRAMES)
        self._thread: threading.Thread | None = None
        self._last_pts = -1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="video-writer", daemon=True)
        self._thread.start()

    def put(self, rgb: NDArray[np.uint8], t_s: float) -> bool:
        """Queue one frame (H x W x 3 uint8) at session time ``t_s``; False if dropped."""
        if self.stats.error is not None or self._thread is None:
            return False
        try:
            self._queue.put_nowait((rgb, float(t_s)))
            return True
        except queue.Full:
            self.stats.dropped += 1
            return False

    def close(self, timeout: float = 30.0) -> WriterStats:
        """Finish the file (frames still queued are written); the counts."""
        if self._thread is not None:
            try:  # (waits only while the writer takes queued frames)
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                log.warning("%s: video writer stuck; file may be cut short", self.path)
            self._thread.join(timeout)
            self._thread = None
        return self.stats

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        import av

        container: Any = None
        stream: Any = None
        times = None
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                rgb, t_s = item
                pts = round(t_s * 1000)
                if pts <= self._last_pts:  # two frames in one ms, or time went back
                    self.stats.dropped += 1
                    continue
                if container is None:
                    h, w = rgb.shape[:2]
                    scale = min(1.0, self.max_width / w)
                    w, h = int(w * scale) // 2 * 2, int(h * scale) // 2 * 2  # yuv420p: even
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    # fragmented MP4 (the index with the first fragment -- delay_moov keeps
                    # the first frame's pts, i.e. its session time --, a fragment per keyframe,
                    # each flushed):
                    # if the app dies mid-recording the file is still playable up to its
                    # last fragment (2 s at most lost), where a plain MP4 whose index is
                    # only written at close would be unreadable as a whole
                    container = av.open(str(self.path), mode="w", options=FRAGMENTED)
                    stream = container.add_stream("libx264", rate=self.fps_hint)
                    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                    # ms in the encoder too: with 1/fps it would round every stamp to a
                    # whole frame of a constant rate the camera never keeps exactly
                    stream.time_base = TIME_BASE
                    stream.codec_context.time_base = TIME_BASE
                    # fast and with keyframes every 2 s: review seeks decode at most 2 s
                    stream.options = {"preset": "veryfast", "g": str(2 * self.fps_hint)}
                    # line-buffered: a crash loses no frame time already written
                    times = self.times_path.open("w", encoding="utf-8", buffering=1)
                    times.write("frame,pts_ms,emg_s\n")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                if (frame.width, frame.height) != (stream.width, stream.height):
                    frame = frame.reformat(stream.width, stream.height)
                frame.pts, frame.time_base = pts, TIME_BASE
                for packet in stream.encode(frame):
                    container.mux(packet)
                assert times is not None
                times.write(f"{self.stats.written},{pts},{t_s:.6f}\n")
                self._last_pts = pts
                self.stats.written += 1
            if stream is not None:
                for packet in stream.encode(None):
                    container.mux(packet)
        except Exception as exc:  # a full disk, a codec refusing the size: video stops, EMG not
            self.stats.error = f"video recording stopped: {exc}"
            log.warning("%s (%s)", self.stats.error, self.path)
            while True:  # let put() and close() go on without blocking
                try:
                    if self._queue.get_nowait() is None:
                        break
                except queue.Empty:
                    break
        finally:
            if times is not None:
                times.close()
            if container is not None:
                try:
                    container.close()
                except Exception as exc:
                    log.warning("%s: not finalised (%s)", self.path, exc)
