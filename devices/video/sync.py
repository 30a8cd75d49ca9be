"""Where a video frame sits on the EMG timeline.

The one model: **video time = EMG time + offset** (seconds; EMG time = seconds from the
recording's first sample, what the review's traces show). The frame shown at EMG time ``t``
is the last frame that starts at or before ``t + offset``.

* A *recorded* video carries EMG time itself: each frame was stamped with the EMG file time
  of its arrival (its pts, and its line of the frame-times file). Its frame times are those
  EMG times and the offset is 0 unless the user moves it (a camera's own delay).
* An *attached* video (a phone clip) has its own clock from its first frame; the user finds
  the offset by scrubbing to a visible event and pressing "Sync here" with the traces at the
  same event (offset = video time - EMG time), or types it.

Live stamping (:func:`stream_index_at`): a camera frame that arrives at host time ``t`` is
given the EMG stream index of the sample taken then: the source's own answer
(``Device.index_at``, an LSL stream) or else the index reached at the last processed chunk
plus the time since then at the stream's rate (a chunk's samples were taken just before it
arrived, so the error is about one chunk, 20 ms, at most).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timeline:
    """Frame times of one video on its own clock, and the offset to the EMG."""

    frame_times: list[float]  # video seconds of each frame (EMG seconds for a recorded one)
    offset_s: float = 0.0

    def video_time(self, emg_s: float) -> float:
        return emg_s + self.offset_s

    def emg_time(self, video_s: float) -> float:
        return video_s - self.offset_s

    def index_at(self, emg_s: float) -> int | None:
        """The frame on screen at EMG time ``emg_s``; None before the first frame or after
        the last one's interval."""
        times = self.frame_times
        if not times:
            return None
        v = self.video_time(emg_s)
        i = bisect.bisect_right(times, v + 1e-6) - 1
        if i < 0:
            return None
        if i == len(times) - 1 and len(times) > 1 and v > 2 * times[-1] - times[-2]:
            return None
        return i


def timeline_for(entry: Any, recording: Any, reader: Any) -> Timeline:
    """The timeline of a recording's video: ``entry`` a ``sidecar.VideoEntry``, ``reader`` its
    open :class:`devices.video.reader.VideoReader`. A recorded video's frames are at the EMG
    times of its frame-times file (or, without it, at its pts: EMG ms too); an attached
    clip's at its own times from its first frame."""
    from devices.video.reader import read_frame_times

    times = list(reader.times)
    if entry.kind == "recorded":
        where = entry.times_file(recording)
        stamped = read_frame_times(where) if where is not None else None
        if stamped is not None and len(stamped) == len(times):
            times = stamped
        else:
            first = reader.pts[0] * reader.time_base
            times = [t + first for t in times]
    return Timeline(times, float(entry.offset_s))


def sync_offset(video_s: float, emg_s: float) -> float:
    """The offset that shows the video at ``video_s`` when the traces are at ``emg_s``."""
    return round(video_s - emg_s, 4)


def stream_index_at(session: Any, t: float) -> float | None:
    """The EMG stream index (fractional) of the sample taken at host time ``t``
    (``time.monotonic``); None before any sample. ``session``: a ``LiveSession``."""
    device = session.device
    exact = device.index_at(t) if device is not None else None
    if exact is not None:
        return float(exact)
    info = session.info
    window = getattr(session.stats, "_rate_window", None)  # (host time, index) per chunk
    if info is None or not window:
        return None
    ready, index = window[-1]
    # never run ahead of the stream by more than a chunk's worth when the source stalls
    return float(index) + max(0.0, min(t - ready, 0.1)) * float(info.fs)
