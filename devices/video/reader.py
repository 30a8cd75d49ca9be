"""Exact frames of a video file by index or time (PyAV), with a small cache.

Opening demuxes the whole file once (packets only, no decoding: about 10 ms per minute of
30 fps video) to know every frame's pts. A frame is then found by bisection, and decoded by
going on from the last decoded frame when it lies ahead within the keyframe distance, else by
seeking to the keyframe before it and decoding forward. Frame times are seconds from the
first frame (what a player shows as 0:00).

Not thread-safe: one reader per decoding thread.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)


class VideoError(Exception):
    """A video that cannot be opened or decoded (the message says why, in one line)."""


class VideoReader:
    def __init__(self, path: str | Path, max_width: int = 640, cache_frames: int = 48) -> None:
        import av

        self.path = Path(path)
        try:
            self._c: Any = av.open(str(self.path))
            if not self._c.streams.video:
                raise VideoError(f"{self.path.name}: no video stream")
            self._s: Any = self._c.streams.video[0]
            self._s.thread_type = "AUTO"
            pts: list[int] = []
            keys: list[int] = []
            for packet in self._c.demux(self._s):
                if packet.pts is None:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except VideoError:
            raise
        except Exception as exc:  # av.error.* (missing, not a video, damaged)
            # FFmpeg's own words without its errno and the path repeated after them
            why = getattr(exc, "strerror", None) or str(exc)
            raise VideoError(f"{self.path.name}: {why}") from None
        if not pts:
            raise VideoError(f"{self.path.name}: no frames")
        self.pts = sorted(pts)
        self._keys = sorted(keys) or [self.pts[0]]
        tb = self._s.time_base
        self.time_base = float(tb) if tb is not None else 1e-3
        self.times = [(p - self.pts[0]) * self.time_base for p in self.pts]
        w, h = int(self._s.codec_context.width), int(self._s.codec_context.height)
        scale = min(1.0, max_width / w) if w else 1.0
        self.size = (max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2))
        self.cache: OrderedDict[int, NDArray[np.uint8]] = OrderedDict()
        self.cache_frames = cache_frames
        self._frames: Iterator[Any] | None = None
        self._at = -1  # index of the last decoded frame on the current decode run
        self.seeks = 0

    @property
    def n_frames(self) -> int:
        return len(self.pts)

    @property
    def duration_s(self) -> float:
        return self.times[-1] if self.times else 0.0

    def index_at(self, t_s: float) -> int | None:
        """The frame on screen at video time ``t_s`` (the last one starting at or before it);
        None before the first frame or more than one frame interval after the last."""
        i = bisect.bisect_right(self.times, t_s + 1e-6) - 1
        if i < 0:
            return None
        if i == len(self.times) - 1 and len(self.times) > 1:
            step = self.times[-1] - self.times[-2]
            if t_s > self.times[-1] + step:
                return None
        return i

    def frame(self, index: int) -> NDArray[np.uint8]:
        """RGB (H x W x 3) of frame ``index`` (at most ``max_width`` wide)."""
        hit = self.cache.get(index)
        if hit is not None:
            self.cache.move_to_end(index)
            return hit
        target = self.pts[index]
        key = self._keys[max(0, bisect.bisect_right(self._keys, target) - 1)]
        ahead = self._frames is not None and 0 <= self._at < index and self.pts[self._at + 1] >= key
        if not ahead:
            self._seek(key)
        try:
            assert self._frames is not None
            for frame in self._frames:
                if frame.pts is None:
                    continue
                i = bisect.bisect_left(self.pts, frame.pts)
                self._at = i
                if i >= index - 2:  # the frames just before are likely asked next (a step back)
                    self._keep(i, frame)
                if frame.pts >= target:
                    break
        except Exception as exc:
            self._frames = None
            raise VideoError(f"{self.path.name}: cannot decode frame {index}: {exc}") from None
        hit = self.cache.get(index)
        if hit is None:
            self._frames = None
            raise VideoError(f"{self.path.name}: frame {index} not found")
        return hit

    def _seek(self, key_pts: int) -> None:
        self.seeks += 1
        self._c.seek(key_pts, stream=self._s, backward=True, any_frame=False)
        self._frames = self._c.decode(self._s)
        self._at = -1

    def _keep(self, i: int, frame: Any) -> None:
        w, h = self.size
        rgb = frame.to_ndarray(width=w, height=h, format="rgb24")
        self.cache[i] = rgb
        self.cache.move_to_end(i)
        while len(self.cache) > self.cache_frames:
            self.cache.popitem(last=False)

    def close(self) -> None:
        self._frames = None
        with contextlib.suppress(Exception):  # closing a damaged file must not raise
            self._c.close()


def read_frame_times(path: str | Path) -> list[float] | None:
    """EMG seconds per frame from a frame-times file (``frame,pts_ms,emg_s``); None if it is
    missing or unreadable (the video's own pts are used then)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    out: list[float] = []
    for line in lines[1:]:
        parts = line.split(",")
        try:
            out.append(float(parts[2]))
        except (IndexError, ValueError):
            return None
    return out or None
