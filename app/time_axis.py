"""The traces' time axis: seconds before now (live) or file time as m:ss.mmm (replay).

The traces are drawn in coordinates relative to their newest sample (so that while live data
scrolls the axis picture never changes and is kept as a pixmap). In replay the axis shows
file time instead: its ticks sit at round file times and read ``1:02.500``; it is redrawn
only when the view's end moves.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PyQt6 import QtGui, sip


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
        # With grid_by_view the plot's contents draw the grid lines (see grid_lines) and the
        # axis none: pyqtgraph's own grid makes the axis's cached picture cover the whole plot,
        # and blending that picture over the traces every frame cost 0.4 ms of GUI time; the
        # lines alone cost about half.
        self.grid_by_view = False
        self.view_grid: int | None = None  # the grid's alpha (0-255), None: no grid
        self.grid_key: tuple[object, ...] | None = None  # what the grid was computed for
        self._grid: list[tuple[QtGui.QPen, list[float]]] = []

    def set_view_grid(self) -> None:
        """From now on the grid (``setGrid``, the plot's ``showGrid``) is drawn by the plot's
        contents from ``grid_lines``; the axis then draws no ticks into the plot."""
        self.grid_by_view = True
        self.setGrid(self.grid)

    def setGrid(self, grid: int | float | bool) -> None:  # noqa: N802 (pyqtgraph's name)
        if not self.grid_by_view:
            super().setGrid(grid)
            return
        if grid is False:
            self.view_grid = None
        else:
            alpha = int(grid * 255) if isinstance(grid, float) else int(grid)
            self.view_grid = min(max(alpha, 0), 255)
        self.grid_key = None
        super().setGrid(False)

    def generateDrawSpecs(self, p: QtGui.QPainter) -> tuple | None:  # noqa: N802
        specs = super().generateDrawSpecs(p)
        if specs is None or not self.grid_by_view or self.view_grid is None:
            return specs
        axis_spec, _, texts = specs
        return axis_spec, [], texts  # no tick marks: the grid lines (the plot's) stand there

    def grid_lines(self) -> list[tuple[QtGui.QPen, list[float]]]:
        """The grid as pyqtgraph's would draw it: per tick level a pen (the axis's tick pen,
        fainter for minor levels and crowded ticks) and the x values (view coordinates)."""
        alpha = self.view_grid
        if alpha is None:
            return []
        width = self.geometry().width()
        key = (self.range[0], self.range[1], width, self.offset, alpha)
        if key == self.grid_key:
            return self._grid
        self.grid_key = key
        lo, hi = sorted(self.range)
        length = width + 2.0  # the axis's span in pixels (its ends overhang 1 px)
        out: list[tuple[QtGui.QPen, list[float]]] = []
        if width > 0 and hi > lo:
            for i, (_, ticks) in enumerate(self.tickValues(lo, hi, length)):
                # (pyqtgraph's AxisItem.generateDrawSpecs: the same alpha per level)
                line_alpha = 255 / (i + 1) * alpha / 255.0
                line_alpha *= min(max(0.05 * length / (len(ticks) + 1), 0.0), 1.0)
                pen = QtGui.QPen(self.tickPen())
                color = QtGui.QColor(pen.color())
                color.setAlpha(int(line_alpha))
                pen.setColor(color)
                out.append((pen, [v for v in ticks if lo <= v <= hi]))
        self._grid = out
        return out

    def set_file_time(self, offset: float | None) -> None:
        if offset == self.offset:
            return
        self.offset = offset
        self.grid_key = None
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
