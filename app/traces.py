"""Live traces: one lane per channel in a single plot, drawn by two fixed items per frame.

Each lane shows the filtered (or raw) EMG scaled to the lane, its RMS envelope on top, the
onset threshold, onset markers and shaded rep spans. The left axis (:class:`LaneAxis`) names
each lane beside it, never over the signal, with a microvolt scale bar that follows the lane's
gain. Snapshots arrive min/max-decimated to
about two points per pixel (peaks survive); the curves are painted as one column of pixels per
horizontal pixel, from the lowest to the highest value the line passes through there.

Painting cost, measured under Xvfb by bench/gui.py (8 channels at 2 kHz, 60 fps): a stroked
line through thousands of points per lane lights each pixel of the dense EMG separately, and
pyqtgraph's per-item bookkeeping (bounds, pixel vectors, one item per curve and per span)
costs as much again in Python. Here the whole view is one item whose bounds never change
while streaming, and each lane is ``drawRects`` of 1-pixel-wide columns. Those columns sit on
a pixel grid fixed to stream time, so a finished column never changes while the traces scroll:
they are kept in an opaque image (with the rep spans and envelopes) and each frame paints only
the newest few columns and copies the rest at the scroll offset (:class:`_TraceCache`; painting
every column every frame took 1.5-3 ms of GUI time per frame, the copy about 0.2 ms).
"""

from __future__ import annotations

import collections
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets, sip
from pyqtgraph.graphicsItems.ScatterPlotItem import renderSymbol

from app.theme import CHANNEL_COLORS, VERDICT_COLOR
from app.time_axis import TimeAxis, give_to_plot
from devices.session.live import Snapshot
from dsp.contract import StreamInfo

LANE = 2.0  # lane height in plot units; a lane's signal spans about +-1

_NO_AA = QtGui.QPainter.RenderHint.Antialiasing
_BACKGROUND = QtGui.QColor("white")  # the view's (TracesView: background="w")
_EDGE = QtGui.QColor(200, 200, 100)  # rep span edges (pyqtgraph's region line colour)
_MARKER = "t1"  # onset marker: a triangle pointing up, 11 px, black, no outline
_MARKER_PX = 11


def scale_bar_uv(scale: float) -> float | None:
    """The scale bar's value for a lane of half-height ``scale`` µV: the largest 1-2-5 step
    not above it, so the bar spans 40-100 % of the half lane and reads as a round number."""
    if not math.isfinite(scale) or scale <= 0:
        return None
    e = math.floor(math.log10(scale))
    m = scale / 10.0**e
    step = 5.0 if m >= 5 else 2.0 if m >= 2 else 1.0
    return step * 10.0**e


def uv_text(value: float) -> str:
    """A scale value as read on a bar: "100 µV", "2 mV", "0.5 µV"."""
    if value >= 1000:
        return f"{value / 1000:g} mV"
    return f"{value:g} µV"


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


_OFF = -1_000_000.0  # a device y no widget shows


def _columns(px: np.ndarray, py: np.ndarray, dense: bool = True) -> np.ndarray | None:
    """The pixels 1-pixel lines through (px, py[:, lane]) (device coordinates, x increasing,
    the same finite rows in every lane) light, as one column per pixel of x: an int32 array
    (lanes, columns, 4) of inclusive rectangles x1, y1, x2, y2 for ``drawRects``.

    Each segment between two finite points goes to the column it starts in, spanning the
    values it passes through; a column reaches to the next one used, so the trace stays
    connected. None when there are fewer points than pixels (lines are then cheaper), unless
    ``dense`` is False (the caller knows they are dense: a stretch with a gap in it)."""
    # (few, plain numpy calls: per frame this runs on a handful of new points, where each
    # call's overhead is the cost; np.r_ alone cost 10 us)
    n_lanes = py.shape[1]
    ok = np.isfinite(py[:, 0])
    seg = ok[:-1] & ok[1:]
    if seg.all():  # no gap: slices, no copies
        p0, p1, a, b = px[:-1], px[1:], py[:-1], py[1:]
    elif not seg.any():
        return np.empty((n_lanes, 0, 4), dtype=np.int32)
    else:
        p0, p1, a, b = px[:-1][seg], px[1:][seg], py[:-1][seg], py[1:][seg]
    col = np.floor(p0).astype(np.int64)
    m = len(col)
    if dense and m < col[-1] - col[0] + 1:
        return None
    change = np.flatnonzero(col[1:] != col[:-1])
    first = np.empty(len(change) + 1, dtype=np.int64)
    first[0] = 0
    first[1:] = change + 1
    x1 = col[first]
    # a column reaches the next used column (not across a gap: there it ends where it ends)
    nxt = np.empty_like(x1)
    nxt[:-1] = x1[1:]
    nxt[-1] = x1[-1] + 1
    last = np.empty_like(first)
    last[:-1] = change
    last[-1] = m - 1
    end_px = np.floor(p1[last]).astype(np.int64)
    x2 = np.maximum(x1, np.minimum(nxt, end_px + 1) - 1)
    out = np.empty((n_lanes, len(first), 4), dtype=np.int32)
    out[:, :, 0] = x1
    out[:, :, 2] = x2
    lo = np.floor(np.minimum.reduceat(np.minimum(a, b), first, axis=0)).T
    hi = np.floor(np.maximum.reduceat(np.maximum(a, b), first, axis=0)).T
    # Only lane 0 says which rows are finite: another lane can be NaN where it is not (a
    # channel without data for a while, the rows a replay's seek has not refilled). Casting
    # NaN to int is undefined (numpy warns each frame); such a lane's column goes far above
    # the widget, where it lights nothing.
    out[:, :, 1] = np.nan_to_num(lo, nan=_OFF, posinf=_OFF, neginf=_OFF)
    out[:, :, 3] = np.nan_to_num(hi, nan=_OFF, posinf=_OFF, neginf=_OFF)
    return out


def keep_label_inside(line: pg.InfiniteLine, x: float) -> None:
    """A mark's label beside its line on the side facing the plot's middle (``x``: where the
    line is, -1 at the left edge, 0 at the right): centred on the line, it was cut in half at
    either edge ("nark 1", "mark: m")."""
    label = getattr(line, "label", None)
    if label is None:
        return
    side = 1.0 if x > -0.5 else 0.0  # (1: the text ends at the line, to its left)
    if label.anchors[0][0] != side:
        label.anchors = [(side, 0.5), (side, 0.5)]  # (either way up: the same side)
        label.updatePosition()


class _Curve:
    """One lane's trace as last drawn, in plot units (what ``getData`` of a curve gives)."""

    __slots__ = ("lane", "layer")

    def __init__(self, layer: _SignalLayer, lane: int) -> None:
        self.layer, self.lane = layer, lane

    def getData(self) -> tuple[np.ndarray, np.ndarray]:  # noqa: N802 (pyqtgraph's name)
        layer = self.layer
        y = layer.y
        return layer.x, (y[:, self.lane] if self.lane < y.shape[1] else np.empty(0))


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


class _TraceCache:
    """The EMG columns and envelopes of every lane, kept in a transparent image between frames.

    Columns sit on a pixel grid fixed to stream time (pixel ``a`` covers times
    ``[a, a + 1) / pixels-per-second``), so a column once complete never changes while the
    traces scroll: each frame paints only the newest few columns into a ring of image columns
    and the frame is the ring composited at the current scroll offset (about 0.3 ms for a
    1200 x 700 view; painting every column again cost 3-4 ms). A change of gain, centring,
    bin size, view geometry or a jump in time repaints the whole image, twice a second at
    most while streaming (the gains update every 0.5 s)."""

    MARGIN = 8  # ring columns beyond the view: the few cleared ahead of the newest never show

    def __init__(self) -> None:
        self.key: tuple[object, ...] | None = None
        self.image: QtGui.QImage | None = None
        self.width = 0
        self.top = 0  # device y of the image's row 0
        self.done_col: int | None = None  # the newest point's column when last painted
        self.done_t = -math.inf
        self.spans: list[tuple[float, float | None, int]] = []  # as painted: start, end, rgb

    def invalidate(self) -> None:
        self.key = None


class _SignalLayer(_Layer):
    """Rep spans (shaded, behind), the EMG curves and the envelopes of every lane."""

    def __init__(self) -> None:
        super().__init__()
        self.colors: list[QtGui.QColor] = []
        self.pens: list[QtGui.QPen] = []
        self.t = np.empty(0)  # the points' stream time (s): the cache's pixel grid
        self.env_t = np.empty(0)  # stream time of the envelope points
        # What y and env are made of. They are computed only when asked for: painting from the
        # cache needs only the newest few rows of them (rows_from), and computing every row
        # of 8 lanes each frame cost about 0.1 ms.
        self._sig = np.empty((0, 0))  # (points, lanes), µV
        self._centre: np.ndarray | float = 0.0  # subtracted from the signal (raw: DC levels)
        self._env_src = np.empty((0, 0))  # envelope (points, lanes), µV
        self._gain = np.empty(0)  # plot units per µV, per lane
        self._offsets = np.empty(0)  # lane centres (plot units)
        self._y: np.ndarray | None = np.empty((0, 0))
        self._env: np.ndarray | None = np.empty((0, 0))
        self.content: tuple[object, ...] = ()  # what the drawn y of old points depends on
        self.spans: list[tuple[float, float, QtGui.QColor]] = []  # x0, x1 (plot units)
        # the same in stream time, an end of None while the rep lasts (for the cache)
        self.spans_t: list[tuple[float, float | None, QtGui.QColor]] = []
        self.edge_pen = pg.mkPen(_EDGE, width=1)
        self.env_pen = pg.mkPen("#111111", width=1)
        self.cache = _TraceCache()
        self.overlay: _OverlayLayer | None = None  # thresholds and markers, painted on top
        self.axis: TimeAxis | None = None  # its grid lines are painted last (over the traces)
        self._grid_key: tuple[object, ...] | None = None
        self._grid: list[tuple[QtGui.QPen, sip.array]] = []  # pen, QLineF array per level
        self.use_cache = True  # (False: every column painted every frame, as before)

    def set_data(
        self,
        t: np.ndarray,
        sig: np.ndarray,
        centre: np.ndarray | float,
        scale: np.ndarray,
        offsets: np.ndarray,
        env_t: np.ndarray,
        env: np.ndarray,
    ) -> None:
        """Points at stream times ``t`` (s): the lanes' signal less ``centre``, over ``scale``
        (µV per half lane), at ``offsets``; the envelope at ``env_t``."""
        self.t, self.env_t = t, env_t
        self._sig, self._centre, self._env_src = sig, centre, env
        self._gain = 1.0 / np.asarray(scale, dtype=float)
        self._offsets = offsets
        self._y = self._env = None

    @property
    def n_lanes(self) -> int:
        return int(self._sig.shape[1]) if self._sig.ndim == 2 else 0

    def rows_from(self, i0: int) -> np.ndarray:
        """y (plot units) of the points from index ``i0`` on."""
        if self._y is not None:
            return self._y[i0:]
        return (self._sig[i0:] - self._centre) * self._gain + self._offsets

    def env_from(self, j0: int) -> np.ndarray:
        if self._env is not None:
            return self._env[j0:]
        return self._env_src[j0:] * self._gain + self._offsets

    @property
    def x(self) -> np.ndarray:
        """Plot units: time before the newest point, shared by the lanes."""
        return self.t - (float(self.t[-1]) if len(self.t) else 0.0)

    @property
    def y(self) -> np.ndarray:
        """(points, lanes), plot units."""
        if self._y is None:
            self._y = self.rows_from(0)
        return self._y

    @property
    def env(self) -> np.ndarray:
        """(envelope points, lanes), plot units."""
        if self._env is None:
            self._env = self.env_from(0)
        return self._env

    @property
    def ys(self) -> list[np.ndarray]:
        return [self.y[:, c] for c in range(self.y.shape[1])]

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
        if not (self.use_cache and self._paint_cached(p, sx, sy, dx, dy)):
            self.cache.invalidate()
            # (opaque either way: the view fills no background under this item, see
            # TracesView.drawBackground)
            p.fillRect(self.device_rect(sx, sy, dx, dy), _BACKGROUND)
            self._paint_spans(p, [(a * sx + dx, b * sx + dx, c) for a, b, c in self.spans], y0, y1)
            self._paint_direct(p, sx, sy, dx, dy)
        if self.overlay is not None:
            self.overlay.paint_device(p, sx, sy, dx, dy)
        if self.axis is not None:
            self._paint_grid(p, sx, dx, y0, y1)
        p.restore()

    def device_rect(self, sx: float, sy: float, dx: float, dy: float) -> QtCore.QRectF:
        r = self._rect
        return QtCore.QRectF(
            r.left() * sx + dx, r.top() * sy + dy, r.width() * sx, r.height() * sy
        ).normalized()

    def _paint_grid(self, p: QtGui.QPainter, sx: float, dx: float, y0: float, y1: float) -> None:
        """The time axis's grid lines, over everything (pyqtgraph's axis sits above the view).
        The lines are kept between frames: in live mode they never move."""
        assert self.axis is not None
        levels = self.axis.grid_lines()
        key = (self.axis.grid_key, sx, dx, y0, y1)
        if key != self._grid_key:
            self._grid_key = key
            self._grid = []
            for pen, xs in levels:
                if xs:
                    arr, view = _line_array(len(xs))
                    view[:, 0] = view[:, 2] = np.asarray(xs) * sx + dx
                    view[:, 1], view[:, 3] = y0, y1
                    self._grid.append((pen, arr))
        for pen, lines in self._grid:
            p.setPen(pen)
            p.drawLines(lines)

    def _paint_spans(
        self,
        p: QtGui.QPainter,
        spans: list[tuple[float, float | None, QtGui.QColor]],
        y0: float,
        y1: float,
        open_end: float = 0.0,
    ) -> None:
        """Shaded rep spans in device x; an end of None (the rep lasts) reaches ``open_end``,
        with no edge drawn there."""
        if not spans:
            return
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        edges = []
        for xa, xb, color in spans:
            p.setBrush(color)
            p.drawRect(QtCore.QRectF(xa, y0, (xb if xb is not None else open_end) - xa, y1 - y0))
            edges.append(QtCore.QLineF(xa, y0, xa, y1))
            if xb is not None:
                edges.append(QtCore.QLineF(xb, y0, xb, y1))
        p.setPen(self.edge_pen)
        p.drawLines(*edges)

    # -- every column every frame (sparse points, uneven gaps, or the cache off) -------------
    def _paint_direct(self, p: QtGui.QPainter, sx: float, sy: float, dx: float, dy: float) -> None:
        px = self.x * sx + dx
        if self.y.shape[1] and len(px) > 1:
            py = self.y * sy + dy
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
        if self.env.shape[0] > 1:
            self._envelope(p, self.env_x_px(sx, dx), self.env * sy + dy)

    def env_x_px(self, sx: float, dx: float) -> np.ndarray:
        t_end = float(self.t[-1]) if len(self.t) else 0.0
        return (self.env_t - t_end) * sx + dx

    def _envelope(self, p: QtGui.QPainter, px: np.ndarray, py: np.ndarray) -> None:
        ok = np.isfinite(py)
        if ok.all():  # no gap: the same lines, lane by lane, without masks
            n_lanes, m = py.shape[1], len(px) - 1
            arr, view = _line_array(n_lanes * m)
            v3 = view.reshape(n_lanes, m, 4)
            v3[:, :, 0], v3[:, :, 2] = px[:-1], px[1:]
            v3[:, :, 1], v3[:, :, 3] = py[:-1].T, py[1:].T
            p.setPen(self.env_pen)
            p.drawLines(arr)
            return
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

    # -- the cache: only the newest columns painted, the rest scrolled ------------------------
    def _paint_cached(self, p: QtGui.QPainter, sx: float, sy: float, dx: float, dy: float) -> bool:
        """Composite the cached traces, painting what is new first. False: not cacheable
        (too few points for a column per pixel, or gaps that differ between lanes)."""
        t = self.t
        n = len(t)
        if n < 3 or not self.n_lanes or sx <= 0:
            return False
        if n - 1 < (float(t[-1]) - float(t[0])) * sx + 1:
            return False  # sparse: lines are drawn instead
        vb = self.getViewBox()
        if vb is None:
            return False
        vr = vb.viewRect()
        ya, yb = vr.top() * sy + dy, vr.bottom() * sy + dy
        top, height = math.floor(min(ya, yb)), math.ceil(abs(yb - ya)) + 2
        xl, xr = vr.left() * sx + dx, vr.right() * sx + dx
        width = math.ceil(xr - xl) + _TraceCache.MARGIN
        cache = self.cache
        key = (self.content, sx, sy, dy, width, height, round(float(t[1] - t[0]), 9))
        t_new = float(t[-1])
        if (
            cache.key != key
            or cache.image is None
            or t_new < cache.done_t
            or float(t[0]) > cache.done_t
        ):
            cache.key = key
            cache.width, cache.top = width, top
            # opaque: compositing it is a copy (blending a transparent one cost 0.5 ms)
            cache.image = QtGui.QImage(width, height, QtGui.QImage.Format.Format_RGB32)
            cache.done_col = None
            cache.spans = []
        image = cache.image
        newest = math.floor(t_new * sx)  # the stream-time pixel grid: pixel a is [a, a+1) / sx
        if cache.done_col is None:
            c_from = math.floor(float(t[0]) * sx)
        else:
            c_from = min(cache.done_col - 2, newest)
        # a rep span that appeared, ended, changed colour or was re-judged: repaint from it
        spans = [(a, b, c.rgb()) for a, b, c in self.spans_t]
        if spans != cache.spans:
            t_left = t_new - (xr - xl) / sx
            changed = set(spans) ^ set(cache.spans)
            starts = [a for a, b, _ in changed if b is None or b >= t_left]
            if starts:
                c_from = min(c_from, math.floor(max(min(starts), t_left) * sx) - 1)
        c_from = max(c_from, newest + 4 - width)  # (never more than the ring)
        if cache.done_col is None or c_from < cache.done_col - 2 or cache.done_t != t_new:
            if not self._paint_new(image, c_from, newest, sx, sy, dy - top):
                return False
            cache.done_col, cache.done_t, cache.spans = newest, t_new, spans
        # composite: stream-time pixel a is at device x a + shift
        shift = round(dx - t_new * sx)
        a_lo = math.floor(xl) - shift
        a_hi = min(math.ceil(xr) - shift, newest + 1)
        a = a_lo
        while a < a_hi:
            r = a % width
            m = min(a_hi - a, width - r)
            p.drawImage(QtCore.QPoint(a + shift, top), image, QtCore.QRect(r, 0, m, height))
            a += m
        right = math.ceil(xr)
        if a_hi + shift < right:  # (right of the newest column: no data yet)
            p.fillRect(QtCore.QRect(a_hi + shift, top, right - a_hi - shift, height), _BACKGROUND)
        return True

    def _paint_new(
        self,
        image: QtGui.QImage,
        c_from: int,
        newest: int,
        sx: float,
        sy: float,
        y_off: float,
    ) -> bool:
        """Paint the ring columns from ``c_from`` to a few past ``newest`` afresh: background,
        rep spans, the columns and envelope segments that reach them (one column earlier as
        context: a column may reach one pixel into the next). False, painting nothing: gaps
        that differ between lanes (drawn lane by lane, uncached)."""
        w, h = image.width(), image.height()
        # the points from the first in column c_from - 1 on
        i0 = int(np.searchsorted(self.t, (c_from - 1) / sx))
        while i0 > 0 and math.floor(self.t[i0 - 1] * sx) >= c_from - 1:
            i0 -= 1  # (t * sx rounds differently than a division)
        y = self.rows_from(i0)
        ok = np.isfinite(y)
        seg = ok[:-1] & ok[1:]
        if not bool((seg == seg[:, :1]).all()):
            return False
        lanes = _columns(self.t[i0:] * sx, y * sy + y_off, dense=False)
        c_to = newest + 3
        base = math.floor(c_from / w) * w
        pe, ey = np.empty(0), np.empty((0, 0))
        if len(self.env_t) > 1:
            j0 = max(0, int(np.searchsorted(self.env_t, c_from / sx, side="right")) - 2)
            pe, ey = self.env_t[j0:] * sx, self.env_from(j0) * sy + y_off
        t_from, t_to = c_from / sx, (c_to + 1) / sx
        spans = [
            (a * sx, None if b is None else b * sx, color)
            for a, b, color in self.spans_t
            if a <= t_to and (b is None or b >= t_from)
        ]
        q = QtGui.QPainter(image)
        q.setRenderHint(_NO_AA, False)
        for shift in (base, base + w):
            # this pass: the ring columns of stream-time pixels [shift, shift + w)
            lo, hi = max(c_from - shift, 0), min(c_to - shift, w - 1)
            if lo > hi:
                continue
            piece = QtCore.QRect(lo, 0, hi - lo + 1, h)
            q.setClipRect(piece)
            q.fillRect(piece, _BACKGROUND)
            q.resetTransform()
            q.translate(-shift, 0)
            # a lasting span reaches past the newest column (repainted as it grows)
            self._paint_spans(q, spans, 0, h, open_end=c_to + 2)
            q.resetTransform()
            q.setPen(QtCore.Qt.PenStyle.NoPen)
            if lanes is not None and lanes.shape[1]:
                n_lanes, n_cols = lanes.shape[:2]
                arr, view = _rect_array(n_lanes * n_cols)
                view[:] = lanes.reshape(-1, 4)
                view[:, 0] -= shift
                view[:, 2] -= shift
                for c, color in enumerate(self.colors[:n_lanes]):
                    q.setBrush(color)
                    q.drawRects(arr[c * n_cols : (c + 1) * n_cols])
            if len(pe) > 1:
                self._envelope(q, pe - shift, ey)
        q.end()
        return True

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
    """Thresholds and onset markers, above the curves and envelopes."""

    def __init__(self) -> None:
        super().__init__()
        self.thr_pen = pg.mkPen("#555555", width=1, style=QtCore.Qt.PenStyle.DashLine)
        self.thr = np.empty((0, 3))  # rows x0, x1, y
        self.markers = np.empty((0, 2))  # rows x, lane top (plot units)
        self.symbol = renderSymbol(_MARKER, 11, pg.mkPen(None), pg.mkBrush("#000000"))

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        tr = p.transform()
        if tr.m12() or tr.m21():
            return
        p.save()
        p.resetTransform()
        p.setRenderHint(_NO_AA, False)
        self.paint_device(p, tr.m11(), tr.m22(), tr.dx(), tr.dy())
        p.restore()

    def paint_device(self, p: QtGui.QPainter, sx: float, sy: float, dx: float, dy: float) -> None:
        """Paint with ``p`` in device pixels (the signal layer paints this over its own: one
        item less for Qt to visit and repaint every frame)."""
        thr = self.thr
        if len(thr):
            arr, view = _line_array(len(thr))  # (no QLineF built one by one in Python)
            view[:, 0], view[:, 2] = thr[:, 0] * sx + dx, thr[:, 1] * sx + dx
            view[:, 1] = view[:, 3] = thr[:, 2] * sy + dy
            p.setPen(self.thr_pen)
            p.drawLines(arr)
        if len(self.markers):
            sym = self.symbol
            w = sym.width() / 2
            # Just inside the top of the onset's lane whatever the lane height: a marker never
            # reaches into the lane above, out of the plot or over an axis.
            for x, top in self.markers:
                p.drawImage(QtCore.QPointF(x * sx + dx - w, top * sy + dy + 1), sym)


@dataclass
class LaneLabel:
    """What the lane axis draws for one lane, in the axis item's pixels."""

    band: tuple[float, float]  # visible top, bottom of the lane
    lines: list[tuple[str, QtGui.QFont, QtCore.QRectF]] = field(default_factory=list)
    bar: tuple[float, float, float] | None = None  # x, y top, y bottom of the scale bar
    bar_uv: float | None = None  # what the bar spans, µV
    named: bool = False  # the first line is the channel's name (drawn in its colour)


class LaneAxis(pg.AxisItem):
    """The left axis as a column of lane labels: each lane's channel name (in its colour),
    muscle, level in % of the reference when calibrated, and a µV scale bar, drawn beside the
    lane in pixels. Repainted only when a text or a bar changes: while the traces scroll, Qt
    keeps the cached picture."""

    WIDTH = 136  # px: "right lumbar ES" and "100 µV" in 8-9 pt fit beside the bar
    BAR_X = 6  # px from the right edge to the scale bar

    def __init__(self) -> None:
        super().__init__("left")
        self.setWidth(self.WIDTH)
        self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.names: list[str] = []
        self.roles: list[str] = []
        self.extras: list[str] = []  # "% ref" per lane ("" without a reference)
        self.colors: list[QtGui.QColor] = []
        self.offsets: list[float] = []  # lane centre (plot units)
        self.scales = np.empty(0)  # µV per plot unit of each lane, as last drawn
        self.name_font = QtGui.QFont("Sans", 9, QtGui.QFont.Weight.Bold)
        self.small_font = QtGui.QFont("Sans", 8)
        self.bar_pen = pg.mkPen("#222222", width=2)

    def set_lanes(
        self, names: list[str], roles: list[str], colors: list[QtGui.QColor], offsets: list[float]
    ) -> None:
        self.names, self.roles, self.colors = list(names), list(roles), list(colors)
        self.offsets = list(offsets)
        self.extras = [""] * len(names)
        self.scales = np.full(len(names), np.nan)
        self.update()

    def set_extra(self, lane: int, text: str) -> None:
        if 0 <= lane < len(self.extras) and self.extras[lane] != text:
            self.extras[lane] = text
            self.update()

    def set_scales(self, scales: np.ndarray) -> None:
        """The lanes' gains (µV per half lane). A change under 1 % moves a bar by less than a
        pixel: not worth a repaint."""
        new = np.asarray(scales, dtype=float)
        old = self.scales
        if new.shape != old.shape or not np.all(np.abs(new - old) <= 0.01 * np.abs(old)):
            self.scales = new.copy()
            self.update()

    def _y(self, y: float) -> float | None:
        view = self.linkedView()
        if view is None:
            return None
        return float(self.mapFromScene(view.mapViewToScene(QtCore.QPointF(0, y))).y())

    def lanes(self) -> list[LaneLabel]:
        """What is drawn for each lane (the layout that :meth:`paint` draws).

        The name, muscle and "% ref" stack from the lane's top; the scale's value sits beside
        its bar at the lane's middle; a text line beside the value is shortened to end before
        it. Lines that do not fit the lane's height are left out, the least needed first
        (% ref, then muscle, then the scale's value): nothing is drawn outside its lane."""
        out: list[LaneLabel] = []
        vb = self.linkedView()
        if vb is None or not self.offsets:
            return out
        rect = self.boundingRect()
        vb_rect = self.mapRectFromScene(vb.sceneBoundingRect())
        bar_x = rect.right() - self.BAR_X
        left = rect.left() + 4
        text_w = bar_x - 6 - left
        name_fm = QtGui.QFontMetricsF(self.name_font)
        small_fm = QtGui.QFontMetricsF(self.small_font)
        elide = QtCore.Qt.TextElideMode.ElideRight
        for c, centre in enumerate(self.offsets):
            ys = [self._y(centre + LANE / 2), self._y(centre - LANE / 2), self._y(centre)]
            unit_y = self._y(centre + 1.0)
            if unit_y is None or any(y is None for y in ys):
                return out
            top_y, bottom_y, mid_y = (float(y) for y in ys)  # type: ignore[arg-type]
            # the visible part of the lane (the view's padding may cut the outer lanes)
            top, bottom = max(top_y, vb_rect.top()), min(bottom_y, vb_rect.bottom())
            lane = LaneLabel((top, bottom))
            scale = float(self.scales[c]) if c < len(self.scales) else float("nan")
            bar_uv = scale_bar_uv(scale)
            stack = [(self.names[c], self.name_font, name_fm)]
            if self.roles[c]:
                stack.append((self.roles[c], self.small_font, small_fm))
            if self.extras[c]:
                stack.append((self.extras[c], self.name_font, name_fm))
            value = uv_text(bar_uv) if bar_uv is not None else ""
            value_h = small_fm.height() if value else 0.0
            room = bottom - top - 2
            # drop lines until the stack fits, and the value's line below it if need be
            while len(stack) > 1 and sum(fm.height() for _, _, fm in stack) > room - value_h:
                stack.pop()
            if stack and stack[0][2].height() > room:
                stack = []
            if value and sum(fm.height() for _, _, fm in stack) + value_h > room:
                value = ""
            lane.named = bool(stack)
            y = top + 1
            text_bottom = y + sum(fm.height() for _, _, fm in stack)
            value_rect = None
            if value:
                value_w = small_fm.horizontalAdvance(value) + 1
                # at the bar's middle when that clears the stack; else just under the stack
                vy = min(max(mid_y - value_h / 2, text_bottom), bottom - 1 - value_h)
                value_rect = QtCore.QRectF(bar_x - 5 - value_w, vy, value_w, value_h)
            for text, font, fm in stack:
                h = fm.height()
                width = text_w
                if value_rect is not None and y < value_rect.bottom() and y + h > value_rect.top():
                    width = value_rect.left() - 4 - left
                shown = fm.elidedText(text, elide, max(0.0, width))
                lane.lines.append((shown, font, QtCore.QRectF(left, y, width, h)))
                y += h
            if value_rect is not None and bar_uv is not None:
                lane.lines.append((value, self.small_font, value_rect))
                half = abs(unit_y - mid_y) * bar_uv / scale / 2
                half = min(half, (bottom - top) / 2 - 1)
                lane.bar = (bar_x, mid_y - half, mid_y + half)
                lane.bar_uv = bar_uv
            out.append(lane)
        return out

    def paint(self, p: QtGui.QPainter, *args: object) -> None:
        if self.linkedView() is None:
            return
        p.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        flags = (QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop).value
        for c, lane in enumerate(self.lanes()):
            for i, (text, font, rect) in enumerate(lane.lines):
                p.setFont(font)
                # the name in the lane's colour; muscle, % and scale in dark grey
                named = i == 0 and lane.named
                p.setPen(self.colors[c] if named else QtGui.QColor("#333333"))
                p.drawText(rect, flags, text)
            if lane.bar is not None:
                x, y0, y1 = lane.bar
                p.setPen(self.bar_pen)
                p.drawLine(QtCore.QPointF(x, y0), QtCore.QPointF(x, y1))
                p.drawLine(QtCore.QPointF(x - 3, y0), QtCore.QPointF(x, y0))
                p.drawLine(QtCore.QPointF(x - 3, y1), QtCore.QPointF(x, y1))


class TracesView(pg.PlotWidget):
    """The lanes. ``rep_clicked`` carries the start index of the rep span clicked on."""

    rep_clicked = QtCore.pyqtSignal(int)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent=parent, background="w")
        # The signal layer paints every pixel of the plot area (opaque), so the background is
        # filled only around it (drawBackground): filling all of it first, twice (the window's
        # fill under the viewport and the view's cached background) cost 0.2-0.4 ms a frame.
        self.viewport().setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.setCacheMode(QtWidgets.QGraphicsView.CacheModeFlag.CacheNone)
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
        self._span_index: dict[float, int] = {}  # span start (s) -> the rep's start index
        self.file_time = False  # replay: the axis reads file time (m:ss.mmm)
        self.marks: list[tuple[float, pg.InfiniteLine]] = []
        # The x axis is time relative to now, so its labels never change while the traces
        # scroll: pyqtgraph then keeps the axis picture instead of re-rendering its text.
        self.t_end = 0.0
        self._x_window = 0.0
        self._tenth_shown = -1
        self._marker_channels: list[int] = []  # the lane of each marker drawn
        self._centre: np.ndarray | None = None  # raw view: each lane's DC level
        self._centre_at = -1  # (in quarter seconds of stream time)
        self._lane_offsets: np.ndarray = np.empty(0)
        self._opaque_key: tuple[object, ...] | None = None
        self._opaque = QtCore.QRectF()
        self.reference: np.ndarray | None = None  # per channel reference RMS (calibration)
        self._span_colors: dict[str, QtGui.QColor] = {}
        plot = self.getPlotItem()
        self.lane_axis = LaneAxis()
        self.time_axis = TimeAxis()
        give_to_plot(plot, {"left": self.lane_axis, "bottom": self.time_axis})
        plot.disableAutoRange()
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setLabel("bottom", "time before now", units="s")
        # The axis never changes while scrolling: let Qt keep it as a pixmap instead of
        # re-rendering its text every frame.
        cache = QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
        plot.getAxis("bottom").setCacheMode(cache)
        plot.showAxis("left")  # the lane labels: beside the lanes, never over the signals
        # The vertical grid is painted by the signal layer over the traces (as pyqtgraph's
        # would be, the axis sitting above the view): see TimeAxis.set_view_grid.
        self.time_axis.set_view_grid()
        plot.showGrid(x=True, y=False, alpha=0.2)
        self._signal.axis = self.time_axis
        self.scene().sigMouseClicked.connect(self._clicked)

    def drawBackground(self, painter: QtGui.QPainter | None, rect: QtCore.QRectF) -> None:  # noqa: N802
        """The background everywhere in ``rect`` (scene coordinates) except under the signal
        layer, which paints its own."""
        if painter is None:
            return
        brush = self.backgroundBrush()
        inner = self._opaque_rect()
        if inner.contains(rect):
            return  # (every frame while streaming: only the layer's rect is repainted)
        if inner.isEmpty() or not rect.intersects(inner):
            painter.fillRect(rect, brush)
            return
        i = rect & inner
        left, top, right, bottom = rect.left(), rect.top(), rect.right(), rect.bottom()
        for part in (
            QtCore.QRectF(left, top, rect.width(), i.top() - top),  # above
            QtCore.QRectF(left, i.bottom(), rect.width(), bottom - i.bottom()),  # below
            QtCore.QRectF(left, i.top(), i.left() - left, i.height()),  # left of it
            QtCore.QRectF(i.right(), i.top(), right - i.right(), i.height()),  # right of it
        ):
            if part.width() > 0 and part.height() > 0:
                painter.fillRect(part, brush)

    def _opaque_rect(self) -> QtCore.QRectF:
        """The whole pixels (scene coordinates) the signal layer paints opaquely; kept while
        the layer's rect, the view box's range and geometry and the widget's size stay."""
        layer = self._signal
        vb = self.getPlotItem().getViewBox()
        key = (
            layer,
            layer.boundingRect(),
            layer.isVisible(),
            vb.viewRect(),
            vb.geometry(),
            self.width(),
            self.height(),
        )
        if key == self._opaque_key:
            return self._opaque
        inner = QtCore.QRectF()
        shown = layer.scene() is self.scene() and layer.isVisible()
        if shown and not layer.boundingRect().isEmpty():
            covered = layer.sceneBoundingRect() & vb.sceneBoundingRect()
            # whole pixels only: a partly covered edge pixel gets the background too
            left, top = math.ceil(covered.left()), math.ceil(covered.top())
            right, bottom = math.floor(covered.right()), math.floor(covered.bottom())
            if right > left and bottom > top:
                inner = QtCore.QRectF(left, top, right - left, bottom - top)
        self._opaque_key, self._opaque = key, inner
        return inner

    def set_file_time(self, on: bool) -> None:
        """Replay: the axis shows file time; live: seconds before now."""
        self.file_time = bool(on)
        label = "file time (m:ss)" if on else "time before now"
        self.getPlotItem().setLabel("bottom", label, units=None if on else "s")
        self.time_axis.set_file_time(self.t_end if on else None)

    def rep_at(self, t: float) -> int | None:
        """The start index of the rep whose span holds stream time ``t`` (s), if any."""
        for start, end, _ in reversed(self._spans):
            if start <= t and (end is None or t <= end) and start in self._span_index:
                return self._span_index[start]
        return None

    def _clicked(self, ev: object) -> None:
        button = getattr(ev, "button", lambda: None)()
        if button != QtCore.Qt.MouseButton.LeftButton:
            return
        vb = self.getPlotItem().getViewBox()
        pos = ev.scenePos()  # type: ignore[attr-defined]
        if not vb.sceneBoundingRect().contains(pos):
            return
        x = float(vb.mapSceneToView(pos).x())
        start = self.rep_at(x + self.t_end)
        if start is not None:
            self.rep_clicked.emit(start)

    def configure(self, info: StreamInfo) -> None:
        plot = self.getPlotItem()
        for item in (self._signal, self._overlay):
            plot.removeItem(item)
        self.info = info
        n = info.n_channels
        self._curves = []
        names, roles = [], []
        self._signal = _SignalLayer()
        self._overlay = _OverlayLayer()
        plot.addItem(self._signal)
        for c in range(n):
            color = QtGui.QColor(CHANNEL_COLORS[c % len(CHANNEL_COLORS)])
            self._signal.colors.append(color)
            self._signal.pens.append(pg.mkPen(color, width=1))
            role = info.role_of(c)
            names.append(info.channel_names[c])
            roles.append(role.label if role else "")
            self._curves.append(_Curve(self._signal, c))
        self.lane_axis.set_lanes(
            names, roles, self._signal.colors, [self.lane_offset(c) for c in range(n)]
        )
        self._signal.overlay = self._overlay  # (painted by the signal layer, not an item)
        self._signal.axis = self.time_axis
        self._x_window = 0.0
        self._centre = None  # a new stream: its own DC levels
        self._onsets.clear()
        self._spans.clear()
        self._span_index.clear()
        plot.setYRange(-LANE * (n - 0.5), LANE * 0.5, padding=0.02)

    def lane_offset(self, channel: int) -> float:
        return -LANE * channel

    def add_onset(self, t: float, channel: int) -> None:
        self._onsets.append((t, channel))

    def add_mark(self, t: float, label: str) -> None:
        # A replayed file's mark comes back as its annotation ("mark: mark 1"): the purple
        # line already says it is a mark, so the label is said once.
        label = label.removeprefix("mark: ")
        line = pg.InfiniteLine(
            t - self.t_end,
            angle=90,
            pen=pg.mkPen("#8e44ad", width=2),
            label=label,
            labelOpts={"position": 0.97, "color": "#8e44ad"},
        )
        keep_label_inside(line, (t - self.t_end) / max(self.window_s, 1e-9))
        self.getPlotItem().addItem(line)
        self.marks.append((t, line))
        if len(self.marks) > 50:
            self.getPlotItem().removeItem(self.marks.pop(0)[1])

    def add_rep(
        self, start: float, end: float | None, order: str, index: int | None = None
    ) -> None:
        """Shade a rep span (``end`` None while it lasts); a repeated start updates it.
        ``index`` (the rep's start sample) lets a click on the span select the rep."""
        if index is not None:
            self._span_index[start] = index
            if len(self._span_index) > 4 * (self._spans.maxlen or 60):  # forget old spans
                kept = {s for s, _, _ in self._spans}
                self._span_index = {s: i for s, i in self._span_index.items() if s in kept}
        for i, (s, _, _) in enumerate(self._spans):
            if s == start:
                self._spans[i] = (start, end, order)
                return
        self._spans.append((start, end, order))

    def clear_events(self) -> None:
        """No rep spans and no onset markers (a replay jumped elsewhere)."""
        self._spans.clear()
        self._onsets.clear()
        self._span_index.clear()

    def rejudge(
        self,
        upto: float,
        spans: list[tuple[float, float | None, str]],
        onsets: list[tuple[float, int]],
        since: float = 0.0,
    ) -> None:
        """The reps from ``since`` to ``upto`` (s) were judged again: their spans and onsets
        replace what was drawn for that stretch."""
        kept_spans = [sp for sp in self._spans if not since <= sp[0] < upto]
        kept_onsets = [o for o in self._onsets if not since <= o[0] < upto]
        self._spans.clear()
        self._spans.extend(sorted([*spans, *kept_spans], key=lambda sp: sp[0]))
        self._onsets.clear()
        self._onsets.extend(sorted([*onsets, *kept_onsets]))

    def marker_rects(self) -> list[tuple[int, QtCore.QRectF]]:
        """Each onset marker on screen as (channel, its rectangle in this widget's pixels),
        placed as the overlay paints it: just inside the top of its lane."""
        vb = self.getPlotItem().getViewBox()
        sym = self._overlay.symbol
        out = []
        for c, (x, top) in zip(self._marker_channels, self._overlay.markers, strict=True):
            at = self.mapFromScene(vb.mapViewToScene(QtCore.QPointF(float(x), float(top))))
            rect = QtCore.QRectF(at.x() - sym.width() / 2, at.y() + 1, sym.width(), sym.height())
            out.append((c, rect))
        return out

    @property
    def max_points(self) -> int:
        """Points per curve worth drawing: two (a min/max pair) per pixel of width."""
        return max(200, 2 * self.getPlotItem().getViewBox().width().__int__())

    def draw(self, snap: Snapshot) -> None:
        """Update every curve from a snapshot (called from the GUI timer)."""
        if self.info is None or self.paused or snap.filtered.shape[0] == 0:
            return
        t = snap.t
        # Raw keeps its offset: centre each lane on the median of what is on screen (its DC
        # level; the newest sample alone is mid-burst EMG half the time and made the lanes
        # jump by up to a lane per frame), scale as filtered.
        # (the raw view subtracts each lane's DC level: see _SignalLayer.set_data)
        sig, dc = (snap.raw, self._raw_centre(snap)) if self.show_raw else (snap.filtered, 0.0)
        scale = snap.scale
        t_end = float(t[-1])
        self.t_end = t_end
        if self.file_time:
            self.time_axis.set_file_time(t_end)
        n_ch = self.info.n_channels
        offsets = self._lane_offsets
        if offsets.shape != (n_ch,):
            offsets = self._lane_offsets = -LANE * np.arange(n_ch)
        if self._x_window != self.window_s:
            self._x_window = self.window_s
            self.getPlotItem().setXRange(-self.window_s, 0, padding=0)
        # Spans shade the whole height. The layers' bounds are the view's range exactly: what
        # Qt repaints each frame is their bounds, and any larger repaints the axes too.
        vr = self.getPlotItem().getViewBox().viewRect()
        rect = QtCore.QRectF(-self.window_s, vr.top(), self.window_s, vr.height())
        self._signal.set_rect(rect)
        self._overlay.set_rect(rect)
        sl = self._signal
        # One point per pixel is plenty for the smooth envelope.
        sl.set_data(t, sig, dc, scale, offsets, t[::2], snap.envelope[::2])
        # What the drawn height of points already on screen depends on: a change repaints
        # every column (the gains change at most twice a second, the raw centring 4 times).
        centre = self._centre.tobytes() if self.show_raw and self._centre is not None else b""
        sl.content = (self.show_raw, np.asarray(scale, dtype=float).tobytes(), centre, n_ch)
        ov = self._overlay
        thr = snap.thresholds / scale
        ok = np.isfinite(thr) & (not self.show_raw)
        ov.thr = np.column_stack(
            [np.full(ok.sum(), float(t[0]) - t_end), np.zeros(ok.sum()), (offsets + thr)[ok]]
        )
        self.lane_axis.set_scales(scale)
        tenth = int(t_end * 10)
        if tenth != self._tenth_shown:  # (an axis repaint at most ten times a second)
            self._tenth_shown = tenth
            self._show_reference_percent(snap.envelope)
        self._draw_events(t_end)
        sl.update()
        ov.update()

    def _raw_centre(self, snap: Snapshot) -> np.ndarray:
        """Each lane's DC level for the raw view: the median of every 8th point on screen,
        at most four times a second (a median of all points each frame cost 0.4-0.8 ms;
        the DC level drifts far slower than that)."""
        quarter = int(float(snap.t[-1]) * 4)
        cached = self._centre
        if cached is not None and self._centre_at == quarter and cached.shape == snap.raw[0].shape:
            return cached
        sub = snap.raw[::8]
        if np.isfinite(sub).all():
            centre = np.median(sub, axis=0)
        else:  # gaps: NaN rows
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-gap lane
                centre = np.nanmedian(sub, axis=0)
        self._centre = np.where(np.isfinite(centre), centre, 0.0)
        self._centre_at = quarter
        return self._centre

    def _show_reference_percent(self, envelope: np.ndarray) -> None:
        """With a reference contraction calibrated, each lane says its level in % of it."""
        ref = self.reference
        if ref is None or envelope.shape[0] == 0:
            return
        now = envelope[-1]
        for c in range(min(len(now), len(self.lane_axis.extras))):
            if c < len(ref) and np.isfinite(ref[c]) and ref[c] > 0 and np.isfinite(now[c]):
                self.lane_axis.set_extra(c, f"{100 * now[c] / ref[c]:.0f}% ref")

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
        shown = [(t, c) for t, c in self._onsets if t >= t0]
        self._marker_channels = [c for _, c in shown]
        pts = [(t - t_end, self.lane_offset(c) + LANE / 2) for t, c in shown]
        self._overlay.markers = np.array(pts) if pts else np.empty((0, 2))
        self._signal.spans_t = [
            (s, e, self._span_color(o)) for s, e, o in self._spans if e is None or e >= t0
        ]
        self._signal.spans = [
            (s - t_end, 0.0 if e is None else e - t_end, c) for s, e, c in self._signal.spans_t
        ]
        for t, line in self.marks:
            line.setPos(t - t_end)
            keep_label_inside(line, (t - t_end) / max(self.window_s, 1e-9))
