"""The whole recording at a glance, above the traces in replay: envelopes at overview
resolution, rep spans coloured by verdict, marks and notes, gaps, where the traces are.

Click to go to a time (it is centred in the traces); drag a range to show exactly that range
in the traces (zoomed, playback paused). What is drawn is computed off the GUI thread (see
``MainWindow``): this widget only keeps items and maps the mouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets, sip

from app.theme import CHANNEL_COLORS, VERDICT_COLOR
from app.time_axis import TimeAxis, give_to_plot

HEIGHT_PX = 40
_MARK_COLOR = "#8e44ad"
_GAP_COLOR = "#555555"


@dataclass
class OverviewData:
    """What the strip shows, in file seconds. ``envelope`` is (columns, channels), each
    column the activity over ``dt`` seconds from ``t0 + i * dt`` (NaN where nothing was)."""

    duration_s: float
    t0: float = 0.0
    dt: float = 1.0
    envelope: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    reps: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, order
    marks: list[tuple[float, str]] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # start, length


class _Spans(pg.GraphicsObject):
    """Full-height coloured spans (x0, x1, colour), painted as plain rectangles."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[float, float, QtGui.QColor]] = []
        self._rect = QtCore.QRectF()

    def set_spans(self, spans: list[tuple[float, float, QtGui.QColor]]) -> None:
        self.prepareGeometryChange()
        self.spans = spans
        if spans:
            x0 = min(a for a, _, _ in spans)
            x1 = max(b for _, b, _ in spans)
            self._rect = QtCore.QRectF(x0, 0.0, max(x1 - x0, 1e-9), 1.0)
        else:
            self._rect = QtCore.QRectF()
        self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 (Qt's name)
        return self._rect

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        for a, b, color in self.spans:
            p.fillRect(QtCore.QRectF(a, 0.0, b - a, 1.0), color)


class _StripBox(pg.ViewBox):
    """Mouse: a click seeks, a drag selects a range to zoom to; no pan or wheel zoom."""

    def __init__(self, strip: OverviewStrip) -> None:
        super().__init__(enableMouse=False, enableMenu=False)
        self.strip = strip
        self._drag_from: float | None = None

    def mouseClickEvent(self, ev: object) -> None:  # noqa: N802 (pyqtgraph's name)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            ev.accept()  # type: ignore[attr-defined]
            x = float(self.mapSceneToView(ev.scenePos()).x())  # type: ignore[attr-defined]
            self.strip.seek_requested.emit(self.strip.clamp(x))

    def mouseDragEvent(self, ev: object, axis: int | None = None) -> None:  # noqa: N802
        if ev.button() != QtCore.Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            ev.ignore()  # type: ignore[attr-defined]
            return
        ev.accept()  # type: ignore[attr-defined]
        x = self.strip.clamp(float(self.mapSceneToView(ev.scenePos()).x()))  # type: ignore[attr-defined]
        if ev.isStart():  # type: ignore[attr-defined]
            start = self.mapSceneToView(ev.buttonDownScenePos()).x()  # type: ignore[attr-defined]
            self._drag_from = self.strip.clamp(float(start))
        if self._drag_from is None:
            return
        a, b = sorted((self._drag_from, x))
        self.strip.selection.setRegion((a, b))
        self.strip.selection.show()
        if ev.isFinish():  # type: ignore[attr-defined]
            self._drag_from = None
            self.strip.selection.hide()
            if b - a > 0:
                self.strip.zoom_requested.emit(a, b)


class OverviewStrip(pg.PlotWidget):
    """``seek_requested(t)``: centre file time ``t`` (s) in the traces. ``zoom_requested(a,
    b)``: show ``a``..``b`` s in the traces."""

    seek_requested = QtCore.pyqtSignal(float)
    zoom_requested = QtCore.pyqtSignal(float, float)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        box = _StripBox(self)
        super().__init__(parent, background="w", viewBox=box)
        sip.transferto(box, self.getPlotItem())  # (owned by its plot, as its axis: TimeAxis)
        self.axis = TimeAxis()
        self.axis.set_file_time(0.0)  # labels are file time (x is file time already)
        give_to_plot(self.getPlotItem(), {"bottom": self.axis})
        self.setObjectName("overview_strip")
        self.setFixedHeight(HEIGHT_PX)
        self.setToolTip("whole recording: click to go there, drag a range to zoom the traces")
        plot = self.getPlotItem()
        plot.hideAxis("left")
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.layout.setContentsMargins(2, 0, 6, 0)
        # No axis row: the window must fit 768 px in height with every dock; the slider's
        # clock and the traces' file-time axis say the times, the strip shows where.
        plot.hideAxis("bottom")
        self.duration = 0.0
        self.data: OverviewData | None = None
        self.reps = _Spans()
        self.reps.setZValue(-5)
        self.gaps = _Spans()
        self.gaps.setZValue(-4)
        self.marks = pg.PlotDataItem(pen=pg.mkPen(_MARK_COLOR, width=2), connect="pairs")
        self.curves: list[pg.PlotDataItem] = []
        self.view = pg.LinearRegionItem(
            movable=False, brush=QtGui.QColor(30, 90, 200, 40), pen=pg.mkPen("#1e5ac8")
        )
        self.selection = pg.LinearRegionItem(movable=False, brush=QtGui.QColor(0, 0, 0, 40))
        self.selection.hide()
        self.head = pg.InfiniteLine(0.0, angle=90, pen=pg.mkPen("#1e5ac8", width=2))
        for item in (self.reps, self.gaps, self.marks, self.view, self.selection, self.head):
            plot.addItem(item)
        plot.setYRange(0.0, 1.0, padding=0.02)

    def clamp(self, t: float) -> float:
        return float(min(max(t, 0.0), self.duration))

    def clear_data(self) -> None:
        """A new recording: nothing of the previous one stays drawn."""
        self.set_data(OverviewData(0.0))

    def set_data(self, data: OverviewData) -> None:
        self.data = data
        self.duration = max(data.duration_s, 0.0)
        plot = self.getPlotItem()
        for curve in self.curves:
            plot.removeItem(curve)
        self.curves = []
        env = data.envelope
        if env.size:
            n_ch = env.shape[1]
            x = data.t0 + data.dt * (np.arange(env.shape[0]) + 0.5)
            # each channel in a band of its own, scaled to its own 99th percentile (so that
            # one artefact does not flatten the rest of the file)
            band = 1.0 / n_ch
            for c in range(n_ch):
                col = env[:, c]
                top = np.nanpercentile(col, 99) if np.isfinite(col).any() else np.nan
                y = np.clip(col / top, 0, 1) if top > 0 else np.zeros_like(col)
                color = QtGui.QColor(CHANNEL_COLORS[c % len(CHANNEL_COLORS)])
                curve = pg.PlotDataItem(
                    x,
                    1.0 - band * (c + 1) + 0.9 * band * y,
                    pen=pg.mkPen(color, width=1),
                    connect="finite",
                )
                curve.setZValue(5)
                plot.addItem(curve)
                self.curves.append(curve)
        self.set_reps(data.reps)
        self.set_marks(data.marks)
        grey = QtGui.QColor(_GAP_COLOR)
        visible = self.duration / 2000  # a gap of a few samples is still seen
        self.gaps.set_spans([(s, s + max(n, visible), grey) for s, n in data.gaps])
        plot.setXRange(0.0, max(self.duration, 1e-3), padding=0.0)

    def set_reps(self, reps: list[tuple[float, float, str]]) -> None:
        """Rep spans coloured by verdict (called again when a correction changes one)."""
        known = {v.value: c for v, c in VERDICT_COLOR.items()}
        colors: dict[str, QtGui.QColor] = {}
        for order in {o for _, _, o in reps}:
            c = QtGui.QColor(known.get(order, "#999999"))
            c.setAlpha(110)
            colors[order] = c
        visible = self.duration / 1500
        self.reps.set_spans([(s, max(e, s + visible), colors[o]) for s, e, o in reps])

    def set_marks(self, marks: list[tuple[float, str]]) -> None:
        if not marks:
            self.marks.setData([], [])
            return
        xs = np.repeat([t for t, _ in marks], 2)
        ys = np.tile([0.0, 1.0], len(marks))
        self.marks.setData(xs, ys)
        self.marks.setZValue(8)

    def set_view(self, t_end: float, window_s: float) -> None:
        """Where the traces are: their window, and the play head at their end."""
        self.view.setRegion((max(0.0, t_end - window_s), t_end))
        self.head.setValue(t_end)
