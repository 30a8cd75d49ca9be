"""The states of a session, and the kinds of marks on its timeline."""

from __future__ import annotations

from enum import StrEnum


class SessionState(StrEnum):
    """Where a session is in its life. A ``str``, so logs and JSON show the plain value."""

    IDLE = "idle"  # made, device not opened
    CONNECTING = "connecting"
    OPEN = "open"  # device open, stream described, not streaming
    STREAMING = "streaming"
    PAUSED = "paused"  # a replay held by its transport (the session still runs)
    STOPPED = "stopped"  # stopped by the user; start makes a fresh stream
    FINISHED = "finished"  # a finite source delivered everything
    ERROR = "error"  # the device failed; ``error`` says why
    CLOSED = "closed"


class MarkKind(StrEnum):
    """What put a mark on the timeline."""

    MARK = "mark"  # the user pressed M
    NOTE = "note"  # the user typed a note
    DEVICE = "marker"  # a trigger or marker from the device
    TRUTH = "truth"  # the simulator's ground truth
    FILE = "annotation"  # an annotation read from a replayed file
    SETTINGS = "settings"  # new detection settings in use from here
