"""The traces' time axis: seconds before now (live) or file time as m:ss.mmm (replay).

The traces are drawn in coordinates relative to their newest sample (so that while live data
scrolls the axis picture never changes and is kept as a pixmap). In replay the axis shows
file time instead: its ticks sit at round file times and read ``1:02.500``; it is redrawn
only when the view's end moves.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PyQt6 import sip


def give_to_plot(plot: pg.PlotItem, axes: dict[str, pg.AxisItem]) -> None:
    """Put ``axes`` on ``plot``, owned by it: pyqtgraph adds an axis of ours to the plot's
    layout but leaves it owned by its Python wrapper, so the wrapper's lifetime (not the
    plot's) would decide when the axis is deleted."""
    plot.setAxisItems(axes)
    for axis in axes.values():
        sip.transferto(axis, plot)


def clock_text(t_s: float, *, millis: bool = True) -> str:
    """``m:ss.mmm`` (``h:mm:ss.mmm`` from an hour) of a time in seconds; ``-`` before 0."""
    if not math.isfinite(t_s):
        return "–"
    sign = "-" if t_s < 0 else ""
    t = abs(t_s)
    ms = round(t * 1000)
    if not millis:
        ms = int(t) * 1000
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    frac = f".{ms:03d}" if millis else ""
    return f"{sign}{h}:{m:02d}:{s:02d}{frac}" if h else f"{sign}{m}:{s:02d}{frac}"


class TimeAxis(pg.AxisItem):
    """Bottom axis of the traces. ``offset`` (s) is the file time of x = 0 in file-time mode;
    ``None`` is live mode (labels are x itself: seconds before now)."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.offset: float | None = None

    def set_file_time(self, offset: float | None) -> None:
        if offset == self.offset:
            return
        self.offset = offset
        self.picture = None  # pyqtgraph's cached drawing of ticks and labels
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802
        off = self.offset
        if off is None:
            return super().tickValues(minVal, maxVal, size)
        # ticks at round file times: ask for them in file time, then shift back
        levels = super().tickValues(minVal + off, maxVal + off, size)
        return [(spacing, [v - off for v in values]) for spacing, values in levels]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        off = self.offset
        if off is None:
            return super().tickStrings(values, scale, spacing)
        millis = spacing < 1.0
        # (nothing before the file's start: no "-0:06" under an empty stretch)
        return [clock_text(v + off, millis=millis) if v + off >= 0 else "" for v in values]
