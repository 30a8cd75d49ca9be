"""Live traces: one lane per channel in a single plot, curves created once, setData per frame.

Each lane shows the filtered (or raw) EMG scaled to the lane, its RMS envelope on top, the
onset threshold, onset markers and shaded rep spans. Downsampling keeps peaks (EMG spikes
survive) and clip-to-view skips what is off screen.
"""

from __future__ import annotations

import collections

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from app.theme import CHANNEL_COLORS, VERDICT_COLOR
from devices.session.live import Snapshot
from dsp.contract import StreamInfo

LANE = 2.0  # lane height in plot units; a lane's signal spans about +-1

# Draw curves as line segments rather than one stroked path: with thousands of points per lane
# the path stroker costs more than the rest of the frame (GUI thread 70% -> 30% busy at 50 fps,
# 8 channels, measured under Xvfb by bench/gui.py).
pg.setConfigOption("segmentedLineMode", "on")


class TracesView(pg.PlotWidget):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent=parent, background="w")
        self.window_s = 10.0
        self.show_raw = False
        self.paused = False
        self.info: StreamInfo | None = None
        self._curves: list[pg.PlotCurveItem] = []
        self._env = pg.PlotCurveItem()
        self._thr = pg.PlotCurveItem()
        self._onsets: collections.deque[tuple[float, int]] = collections.deque(maxlen=400)
        self._spans: collections.deque[tuple[float, float | None, str]] = collections.deque(
            maxlen=60
        )
        self._regions: list[pg.LinearRegionItem] = []
        self._markers = pg.ScatterPlotItem(size=11, symbol="t1", pen=None)
        self._labels: list[pg.TextItem] = []
        self.marks: list[tuple[float, pg.InfiniteLine]] = []
        # The x axis is time relative to now, so its labels never change while the traces
        # scroll: pyqtgraph then keeps the axis picture instead of re-rendering its text.
        self.t_end = 0.0
        self._x_window = 0.0
        self._clock = pg.TextItem("", color="#444444", anchor=(1, 0))
        self._clock_shown = -1
        self.reference: np.ndarray | None = None  # per channel reference RMS (calibration)
        self._label_texts: list[str] = []
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
        for item in [*self._curves, *self._regions, *self._labels, self._env, self._thr]:
            plot.removeItem(item)
        plot.removeItem(self._markers)
        self.info = info
        n = info.n_channels
        self._curves, self._labels, self._label_texts = [], [], []
        self._regions = []
        for c in range(n):
            color = CHANNEL_COLORS[c % len(CHANNEL_COLORS)]
            # Snapshots arrive min/max-decimated to the plot's width, so the items need no
            # downsampling of their own.
            curve = pg.PlotCurveItem(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            plot.addItem(curve)
            role = info.role_of(c)
            text = info.channel_names[c] + (f"  ({role.label})" if role else "")
            self._label_texts.append(text)
            label = pg.TextItem(text, color=color, anchor=(0, 1))
            label.setFont(QtGui.QFont("Sans", 9, QtGui.QFont.Weight.Bold))
            label.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            plot.addItem(label)
            self._curves.append(curve)
            self._labels.append(label)
        # Envelopes and thresholds of all lanes are one item each (fewer items, less per-frame
        # overhead): lanes are separated by breaks in the ``connect`` array.
        self._env = pg.PlotCurveItem(pen=pg.mkPen("#111111", width=1), skipFiniteCheck=True)
        dash = QtCore.Qt.PenStyle.DashLine
        self._thr = pg.PlotCurveItem(pen=pg.mkPen("#555555", width=1, style=dash))
        plot.addItem(self._env)
        plot.addItem(self._thr)
        plot.addItem(self._markers)
        plot.removeItem(self._clock)
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
        # NaN marks a gap; only then does the path need the slower finite-aware connection.
        connect = "finite" if np.isnan(sig).any() or np.isnan(snap.envelope).any() else "all"
        t_end = float(t[-1])
        self.t_end = t_end
        x = t - t_end
        n_ch = self.info.n_channels
        offsets = np.array([self.lane_offset(c) for c in range(n_ch)])
        if self._x_window != self.window_s:
            self._x_window = self.window_s
            self.getPlotItem().setXRange(-self.window_s, 0, padding=0)
            for c, label in enumerate(self._labels):
                label.setPos(-self.window_s, offsets[c] + LANE * 0.48)
            self._clock.setPos(0, LANE * 0.5)
        for c in range(n_ch):
            self._curves[c].setData(x, sig[:, c] / scale[c] + offsets[c], connect=connect)
        # One point per pixel is plenty for the smooth envelope.
        env = snap.envelope[::2] / scale + offsets
        brk = np.ones(env.shape, dtype=bool)
        brk[-1] = False  # no line from the end of one lane to the start of the next
        brk &= np.isfinite(env)
        self._env.setData(np.tile(x[::2], n_ch), env.T.ravel(), connect=brk.T.ravel())
        thr = snap.thresholds / scale
        ok = np.isfinite(thr) & (not self.show_raw)
        if ok.any():
            ys = np.repeat(offsets[ok] + thr[ok], 2)
            xs = np.tile([x[0], 0.0], int(ok.sum()))
            self._thr.setData(xs, ys, connect="pairs")
        else:
            self._thr.setData([], [])
        tenth = int(t_end * 10)
        if tenth != self._clock_shown:
            self._clock_shown = tenth
            self._clock.setText(f"t = {t_end:.1f} s")
            self._show_reference_percent(snap.envelope)
        self._draw_events(t_end)

    def _show_reference_percent(self, envelope: np.ndarray) -> None:
        """With a reference contraction calibrated, each lane says its level in % of it."""
        ref = self.reference
        if ref is None or envelope.shape[0] == 0:
            return
        now = envelope[-1]
        for c, label in enumerate(self._labels):
            if c < len(ref) and np.isfinite(ref[c]) and ref[c] > 0 and np.isfinite(now[c]):
                label.setText(f"{self._label_texts[c]}   {100 * now[c] / ref[c]:.0f}% ref")

    def _draw_events(self, t_end: float) -> None:
        t0 = t_end - self.window_s
        pts = [(t - t_end, self.lane_offset(c) + 0.9) for t, c in self._onsets if t >= t0]
        if pts:
            xs, ys = zip(*pts, strict=True)
            self._markers.setData(list(xs), list(ys), brush=pg.mkBrush("#000000"))
        else:
            self._markers.setData([], [])
        visible = [(s, e, o) for s, e, o in self._spans if (e is None or e >= t0)]
        plot = self.getPlotItem()
        while len(self._regions) < len(visible):
            region = pg.LinearRegionItem(movable=False)
            region.setZValue(-10)
            plot.addItem(region)
            self._regions.append(region)
        for i, region in enumerate(self._regions):
            if i < len(visible):
                s, e, order = visible[i]
                color = QtGui.QColor(VERDICT_COLOR.get(order, "#999999"))
                color.setAlpha(40)
                region.setBrush(pg.mkBrush(color))
                region.setRegion((s - t_end, 0.0 if e is None else e - t_end))
                region.show()
            else:
                region.hide()
        for t, line in self.marks:
            line.setPos(t - t_end)
