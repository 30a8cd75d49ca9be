"""Live traces: one lane per channel in a single plot, drawn by two fixed items per frame.

Each lane shows the filtered (or raw) EMG scaled to the lane, its RMS envelope on top, the
onset threshold, onset markers and shaded rep spans. Snapshots arrive min/max-decimated to
about two points per pixel (peaks survive); the curves are painted as one column of pixels per
horizontal pixel, from the lowest to the highest value the line passes through there.

Painting cost, measured under Xvfb by bench/gui.py (8 channels at 2 kHz, 60 fps): a stroked
line through thousands of points per lane lights each pixel of the dense EMG separately, and
pyqtgraph's per-item bookkeeping (bounds, pixel vectors, one item per curve and per span)
costs as much again in Python. Here the whole view is two items whose bounds never change
while streaming (no bounds to recompute, nothing re-created) and each lane is one
``drawRects`` call of 1-pixel-wide columns, which the raster engine fills a row span at a time.
"""

from __future__ import annotations

import collections

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets, sip
from pyqtgraph.graphicsItems.ScatterPlotItem import renderSymbol

from app.theme import CHANNEL_COLORS, VERDICT_COLOR
from devices.session.live import Snapshot
from dsp.contract import StreamInfo

LANE = 2.0  # lane height in plot units; a lane's signal spans about +-1

_NO_AA = QtGui.QPainter.RenderHint.Antialiasing
_EDGE = QtGui.QColor(200, 200, 100)  # rep span edges (pyqtgraph's region line colour)
_MARKER = "t1"  # onset marker: a triangle pointing up, 11 px, black, no outline


def _rect_array(n: int) -> tuple[sip.array, np.ndarray]:
    """A QRect array for ``drawRects`` and an int32 (n, 4) view of it (x1, y1, x2, y2)."""
    # (PyQt6.sip's stubs declare neither array(type, n) nor voidptr's buffer protocol)
    arr = sip.array(QtCore.QRect, n)  # type: ignore[call-arg,var-annotated]
    buf = sip.voidptr(arr, 16 * n)
    view = np.frombuffer(buf, dtype=np.int32, count=4 * n)  # type: ignore[call-overload]
    return arr, view.reshape(n, 4)


def _line_array(n: int) -> tuple[sip.array, np.ndarray]:
    """A QLineF array for ``drawLines`` and a float64 (n, 4) view of it."""
    arr = sip.array(QtCore.QLineF, n)  # type: ignore[call-arg,var-annotated]
    buf = sip.voidptr(arr, 32 * n)
    view = np.frombuffer(buf, dtype=np.float64, count=4 * n)  # type: ignore[call-overload]
    return arr, view.reshape(n, 4)


def _columns(px: np.ndarray, py: np.ndarray) -> np.ndarray | None:
    """The pixels 1-pixel lines through (px, py[:, lane]) (device coordinates, x increasing,
    the same finite rows in every lane) light, as one column per pixel of x: an int32 array
    (lanes, columns, 4) of inclusive rectangles x1, y1, x2, y2 for ``drawRects``.

    Each segment between two finite points goes to the column it starts in, spanning the
    values it passes through; a column reaches to the next one used, so the trace stays
    connected. None when there are fewer points than pixels (lines are then cheaper)."""
    n_lanes = py.shape[1]
    ok = np.isfinite(py[:, 0])
    seg = ok[:-1] & ok[1:]
    if not seg.any():
        return np.empty((n_lanes, 0, 4), dtype=np.int32)
    col = np.floor(px[:-1][seg]).astype(np.int64)
    if seg.sum() < col[-1] - col[0] + 1:
        return None
    a, b = py[:-1][seg], py[1:][seg]
    first = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    x1 = col[first]
    # a column reaches the next used column (not across a gap: there it ends where it ends)
    nxt = np.r_[x1[1:], x1[-1] + 1]
    end_px = np.floor(px[1:][seg][np.r_[first[1:] - 1, len(col) - 1]]).astype(np.int64)
    x2 = np.maximum(x1, np.minimum(nxt, end_px + 1) - 1)
    out = np.empty((n_lanes, len(first), 4), dtype=np.int32)
    out[:, :, 0], out[:, :, 2] = x1, x2
    out[:, :, 1] = np.floor(np.minimum.reduceat(np.minimum(a, b), first, axis=0)).T
    out[:, :, 3] = np.floor(np.maximum.reduceat(np.maximum(a, b), first, axis=0)).T
    return out


class _Curve:
    """One lane's trace as last drawn, in plot units (what ``getData`` of a curve gives)."""

    __slots__ = ("x", "y")

    def __init__(self) -> None:
        self.x = np.empty(0)
        self.y = np.empty(0)

    def getData(self) -> tuple[np.ndarray, np.ndarray]:  # noqa: N802 (pyqtgraph's name)
        return self.x, self.y


class _Layer(pg.GraphicsObject):
    """A fixed-bounds item painted in device pixels from the arrays the view hands it."""

    def __init__(self) -> None:
        super().__init__()
        self._rect = QtCore.QRectF()

    def set_rect(self, rect: QtCore.QRectF) -> None:
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802
        return self._rect

    def dataBounds(self, axis: int, frac: float = 1.0, orthoRange: object = None) -> None:  # noqa: N802
        return None  # no auto-range from these items: the view's ranges are fixed


class _SignalLayer(_Layer):
    """Rep spans (shaded, behind) and the EMG curves of every lane."""

    def __init__(self) -> None:
        super().__init__()
        self.colors: list[QtGui.QColor] = []
        self.pens: list[QtGui.QPen] = []
        self.x = np.empty(0)  # plot units, shared by the lanes
        self.ys: list[np.ndarray] = []
        self.spans: list[tuple[float, float, QtGui.QColor]] = []  # x0, x1 (plot units)
        self.edge_pen = pg.mkPen(_EDGE, width=1)

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        tr = p.transform()
        sx, sy, dx, dy = tr.m11(), tr.m22(), tr.dx(), tr.dy()
        if tr.m12() or tr.m21():
            return  # (never rotated)
        p.save()
        p.resetTransform()
        p.setRenderHint(_NO_AA, False)
        top = self._rect.top() * sy + dy
        bottom = self._rect.bottom() * sy + dy
        y0, y1 = min(top, bottom), max(top, bottom)
        if self.spans:
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            edges = []
            for a, b, color in self.spans:
                xa, xb = a * sx + dx, b * sx + dx
                p.setBrush(color)
                p.drawRect(QtCore.QRectF(xa, y0, xb - xa, y1 - y0))
                edges += [QtCore.QLineF(xa, y0, xa, y1), QtCore.QLineF(xb, y0, xb, y1)]
            if edges:
                p.setPen(self.edge_pen)
                p.drawLines(*edges)
        px = self.x * sx + dx
        if len(self.ys) and len(px) > 1:
            py = np.column_stack(self.ys) * sy + dy
            ok = np.isfinite(py)
            seg = ok[:-1] & ok[1:]
            common = bool((seg == seg[:, :1]).all())  # gaps (NaN rows) are usually in all lanes
            lanes = _columns(px, py) if common else None
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            if lanes is not None:
                n_lanes, n_cols = lanes.shape[:2]
                arr, view = _rect_array(n_lanes * n_cols)
                view[:] = lanes.reshape(-1, 4)
                for c, color in enumerate(self.colors[:n_lanes]):
                    if n_cols:
                        p.setBrush(color)
                        p.drawRects(arr[c * n_cols : (c + 1) * n_cols])
            else:
                for c, (pen, color) in enumerate(zip(self.pens, self.colors, strict=False)):
                    cols = _columns(px, py[:, c : c + 1])
                    if cols is None:  # sparse: fewer points than pixels
                        self._polyline(p, px, py[:, c], pen)
                    elif cols.shape[1]:
                        arr, view = _rect_array(cols.shape[1])
                        view[:] = cols[0]
                        p.setPen(QtCore.Qt.PenStyle.NoPen)
                        p.setBrush(color)
                        p.drawRects(arr)
        p.restore()

    @staticmethod
    def _polyline(p: QtGui.QPainter, px: np.ndarray, py: np.ndarray, pen: QtGui.QPen) -> None:
        ok = np.isfinite(py)
        seg = ok[:-1] & ok[1:]
        arr, view = _line_array(int(seg.sum()))
        view[:, 0], view[:, 1] = px[:-1][seg], py[:-1][seg]
        view[:, 2], view[:, 3] = px[1:][seg], py[1:][seg]
        p.setPen(pen)
        p.drawLines(arr)


class _OverlayLayer(_Layer):
    """Envelopes, thresholds and onset markers, above the curves and lane labels."""

    def __init__(self) -> None:
        super().__init__()
        self.env_pen = pg.mkPen("#111111", width=1)
        self.thr_pen = pg.mkPen("#555555", width=1, style=QtCore.Qt.PenStyle.DashLine)
        self.env_x = np.empty(0)
        self.env = np.empty((0, 0))  # (points, lanes), plot units
        self.thr = np.empty((0, 3))  # rows x0, x1, y
        self.markers = np.empty((0, 2))  # rows x, y
        self.symbol = renderSymbol(_MARKER, 11, pg.mkPen(None), pg.mkBrush("#000000"))

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        tr = p.transform()
        sx, sy, dx, dy = tr.m11(), tr.m22(), tr.dx(), tr.dy()
        if tr.m12() or tr.m21():
            return
        p.save()
        p.resetTransform()
        p.setRenderHint(_NO_AA, False)
        env = self.env
        if env.shape[0] > 1:
            px = self.env_x * sx + dx
            py = env * sy + dy
            ok = np.isfinite(py)
            seg = ok[:-1] & ok[1:]  # (segments, lanes): no line across a gap or between lanes
            n = int(seg.sum())
            if n:
                arr, view = _line_array(n)
                segT = seg.T
                view[:, 0] = np.broadcast_to(px[:-1], segT.shape)[segT]
                view[:, 2] = np.broadcast_to(px[1:], segT.shape)[segT]
                view[:, 1] = py[:-1].T[segT]
                view[:, 3] = py[1:].T[segT]
                p.setPen(self.env_pen)
                p.drawLines(arr)
        if len(self.thr):
            p.setPen(self.thr_pen)
            p.drawLines(
                *[
                    QtCore.QLineF(a * sx + dx, y * sy + dy, b * sx + dx, y * sy + dy)
                    for a, b, y in self.thr
                ]
            )
        if len(self.markers):
            sym = self.symbol
            w, h = sym.width() / 2, sym.height() / 2
            for x, y in self.markers:
                p.drawImage(QtCore.QPointF(x * sx + dx - w, y * sy + dy - h), sym)
        p.restore()


class TracesView(pg.PlotWidget):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent=parent, background="w")
        self.window_s = 10.0
        self.show_raw = False
        self.paused = False
        self.info: StreamInfo | None = None
        self._curves: list[_Curve] = []
        self._signal = _SignalLayer()
        self._overlay = _OverlayLayer()
        self._onsets: collections.deque[tuple[float, int]] = collections.deque(maxlen=400)
        self._spans: collections.deque[tuple[float, float | None, str]] = collections.deque(
            maxlen=60
        )
        self._labels: list[pg.TextItem] = []
        self.marks: list[tuple[float, pg.InfiniteLine]] = []
        # The x axis is time relative to now, so its labels never change while the traces
        # scroll: pyqtgraph then keeps the axis picture instead of re-rendering its text.
        self.t_end = 0.0
        self._x_window = 0.0
        self._clock = pg.TextItem("", color="#444444", anchor=(1, 0))
        self._clock.textItem.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._clock_shown = -1
        self.reference: np.ndarray | None = None  # per channel reference RMS (calibration)
        self._label_texts: list[str] = []
        self._label_shown: list[str] = []
        self._span_colors: dict[str, QtGui.QColor] = {}
        plot = self.getPlotItem()
        plot.disableAutoRange()
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setLabel("bottom", "time before now", units="s")
        # The axis never changes while scrolling: let Qt keep it as a pixmap instead of
        # re-rendering its text every frame.
        cache = QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
        plot.getAxis("bottom").setCacheMode(cache)
        plot.hideAxis("left")  # lanes are labelled in the plot; an empty axis still costs a repaint
        plot.showGrid(x=True, y=False, alpha=0.2)

    def configure(self, info: StreamInfo) -> None:
        plot = self.getPlotItem()
        for item in [*self._labels, self._signal, self._overlay, self._clock]:
            plot.removeItem(item)
        self.info = info
        n = info.n_channels
        self._curves, self._labels, self._label_texts = [], [], []
        cache = QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
        self._signal = _SignalLayer()
        self._overlay = _OverlayLayer()
        plot.addItem(self._signal)
        for c in range(n):
            color = QtGui.QColor(CHANNEL_COLORS[c % len(CHANNEL_COLORS)])
            self._signal.colors.append(color)
            self._signal.pens.append(pg.mkPen(color, width=1))
            role = info.role_of(c)
            text = info.channel_names[c] + (f"  ({role.label})" if role else "")
            self._label_texts.append(text)
            label = pg.TextItem(text, color=color, anchor=(0, 1))
            label.setFont(QtGui.QFont("Sans", 9, QtGui.QFont.Weight.Bold))
            # (the text is drawn by the label's child item: cache that one, or every frame
            # lays out and renders the text again)
            label.textItem.setCacheMode(cache)
            plot.addItem(label)
            self._curves.append(_Curve())
            self._labels.append(label)
        self._label_shown = list(self._label_texts)
        plot.addItem(self._overlay)
        plot.addItem(self._clock)
        self._x_window = 0.0
        self._onsets.clear()
        self._spans.clear()
        plot.setYRange(-LANE * (n - 0.5), LANE * 0.5, padding=0.02)

    def lane_offset(self, channel: int) -> float:
        return -LANE * channel

    def add_onset(self, t: float, channel: int) -> None:
        self._onsets.append((t, channel))

    def add_mark(self, t: float, label: str) -> None:
        line = pg.InfiniteLine(
            t - self.t_end,
            angle=90,
            pen=pg.mkPen("#8e44ad", width=2),
            label=label,
            labelOpts={"position": 0.97, "color": "#8e44ad"},
        )
        self.getPlotItem().addItem(line)
        self.marks.append((t, line))
        if len(self.marks) > 50:
            self.getPlotItem().removeItem(self.marks.pop(0)[1])

    def add_rep(
        self, start: float, end: float | None, order: str, index: int | None = None
    ) -> None:
        """Shade a rep span (``end`` None while it lasts); a repeated start updates it."""
        for i, (s, _, _) in enumerate(self._spans):
            if s == start:
                self._spans[i] = (start, end, order)
                return
        self._spans.append((start, end, order))

    def rejudge(
        self,
        upto: float,
        spans: list[tuple[float, float | None, str]],
        onsets: list[tuple[float, int]],
    ) -> None:
        """The reps before ``upto`` (s) were judged again: their spans and onsets replace
        what was drawn for that stretch."""
        kept_spans = [sp for sp in self._spans if sp[0] >= upto]
        kept_onsets = [o for o in self._onsets if o[0] >= upto]
        self._spans.clear()
        self._spans.extend(sorted([*spans, *kept_spans], key=lambda sp: sp[0]))
        self._onsets.clear()
        self._onsets.extend(sorted([*onsets, *kept_onsets]))

    @property
    def max_points(self) -> int:
        """Points per curve worth drawing: two (a min/max pair) per pixel of width."""
        return max(200, 2 * self.getPlotItem().getViewBox().width().__int__())

    def draw(self, snap: Snapshot) -> None:
        """Update every curve from a snapshot (called from the GUI timer)."""
        if self.info is None or self.paused or snap.filtered.shape[0] == 0:
            return
        t = snap.t
        # Raw keeps its offset: centre each lane on its newest sample, scale as filtered.
        sig = snap.raw - snap.raw[-1] if self.show_raw else snap.filtered
        scale = snap.scale
        t_end = float(t[-1])
        self.t_end = t_end
        x = t - t_end
        n_ch = self.info.n_channels
        offsets = -LANE * np.arange(n_ch)
        if self._x_window != self.window_s:
            self._x_window = self.window_s
            self.getPlotItem().setXRange(-self.window_s, 0, padding=0)
            for c, label in enumerate(self._labels):
                label.setPos(-self.window_s, offsets[c] + LANE * 0.48)
            self._clock.setPos(0, LANE * 0.5)
            # Spans shade the whole height; the view clips what lies outside its range.
            rect = QtCore.QRectF(
                -self.window_s, -LANE * (n_ch + 1), self.window_s, LANE * (n_ch + 2)
            )
            self._signal.set_rect(rect)
            self._overlay.set_rect(rect)
        ys = sig / scale + offsets
        sl = self._signal
        sl.x = x
        sl.ys = [ys[:, c] for c in range(n_ch)]
        for c, curve in enumerate(self._curves):
            curve.x, curve.y = x, sl.ys[c]
        ov = self._overlay
        # One point per pixel is plenty for the smooth envelope.
        ov.env_x = x[::2]
        ov.env = snap.envelope[::2] / scale + offsets
        thr = snap.thresholds / scale
        ok = np.isfinite(thr) & (not self.show_raw)
        ov.thr = np.column_stack([np.full(ok.sum(), x[0]), np.zeros(ok.sum()), (offsets + thr)[ok]])
        tenth = int(t_end * 10)
        if tenth != self._clock_shown:
            self._clock_shown = tenth
            self._clock.setText(f"t = {t_end:.1f} s")
            self._show_reference_percent(snap.envelope)
        self._draw_events(t_end)
        sl.update()
        ov.update()

    def _show_reference_percent(self, envelope: np.ndarray) -> None:
        """With a reference contraction calibrated, each lane says its level in % of it."""
        ref = self.reference
        if ref is None or envelope.shape[0] == 0:
            return
        now = envelope[-1]
        for c, label in enumerate(self._labels):
            if c < len(ref) and np.isfinite(ref[c]) and ref[c] > 0 and np.isfinite(now[c]):
                text = f"{self._label_texts[c]}   {100 * now[c] / ref[c]:.0f}% ref"
                if text != self._label_shown[c]:  # (a text relayout only when it changes)
                    self._label_shown[c] = text
                    label.setText(text)

    def _span_color(self, order: str) -> QtGui.QColor:
        color = self._span_colors.get(order)
        if color is None:
            # The verdict colour at alpha 40 over the white background, made opaque: the
            # same pixels, filled without blending.
            known = {v.value: c for v, c in VERDICT_COLOR.items()}
            c = QtGui.QColor(known.get(order, "#999999"))
            a = 40 / 255
            color = QtGui.QColor(
                *(round(v * a + 255 * (1 - a)) for v in (c.red(), c.green(), c.blue()))
            )
            self._span_colors[order] = color
        return color

    def _draw_events(self, t_end: float) -> None:
        t0 = t_end - self.window_s
        pts = [(t - t_end, self.lane_offset(c) + 0.9) for t, c in self._onsets if t >= t0]
        self._overlay.markers = np.array(pts) if pts else np.empty((0, 2))
        self._signal.spans = [
            (s - t_end, 0.0 if e is None else e - t_end, self._span_color(o))
            for s, e, o in self._spans
            if e is None or e >= t0
        ]
        for t, line in self.marks:
            line.setPos(t - t_end)
