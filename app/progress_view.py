"""Progress view (Sessions tab): is the athlete learning over weeks?

Pick an athlete and an exercise: the glute-first share per session over dates (the number of
reps with a verdict at each point, a trend line from 3 sessions on) above the median lag per
session with the neutral band. The numbers come from :mod:`devices.session.progress` (the
same as ``fireorder report --athlete NAME``); recordings are analysed on a worker thread, so
the window stays live while a long history is read the first time.
"""

from __future__ import annotations

import datetime
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path

import pyqtgraph as pg
from PyQt6 import QtCore, QtWidgets, sip

from app.report import PROGRESS_SERIES
from app.theme import VERDICT_COLOR
from devices.session.progress import MIN_TREND_SESSIONS, Progress, SessionPoint, athletes
from dsp.reps import SIMULTANEOUS

log = logging.getLogger(__name__)

SERIES = PROGRESS_SERIES  # one colour per exercise, as the progress report draws them


def _x(day: datetime.date) -> float:
    """A session day on the date axis: its day number (a point per day; the axis says dates,
    never hours: a point at "12:00" read as the session's time, which it was not)."""
    return float(day.toordinal())


def _x_of(moment: datetime.datetime) -> float:
    """A moment (a trend line's end) on the same axis: days, fractions of a day from noon."""
    noon = datetime.datetime.combine(moment.date(), datetime.time(12), tzinfo=moment.tzinfo)
    return _x(moment.date()) + (moment - noon).total_seconds() / 86400.0


_STEPS = (1, 2, 7, 14, 28, 56, 91, 182, 364)  # days between date ticks


class DayAxis(pg.AxisItem):
    """Session dates: a tick per day, week or month as the room allows, labelled "2 Dec"
    (with the year where it changes or at the first tick)."""

    def __init__(self) -> None:
        super().__init__("bottom")

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802
        span = max(1.0, maxVal - minVal)
        room = max(1, int(size // 70))  # a label is about 60 px wide
        step = next((d for d in _STEPS if span / d <= room), _STEPS[-1])
        first = math.ceil(minVal / step) * step
        return [(float(step), [float(v) for v in range(first, math.floor(maxVal) + 1, step)])]

    def tickStrings(self, values: list, scale: float, spacing: float) -> list[str]:  # noqa: N802
        out: list[str] = []
        year: int | None = None
        for v in values:
            try:
                day = datetime.date.fromordinal(round(v))
            except (ValueError, OverflowError):
                out.append("")
                continue
            new_year = year is not None and day.year != year
            out.append(f"{day.day} {day:%b}" + (f" {day.year}" if new_year else ""))
            year = day.year
        return out


class ProgressView(QtWidgets.QWidget):
    loaded = QtCore.pyqtSignal(object)  # Progress (queued from the worker thread)

    def __init__(
        self, folders: Sequence[str | Path], parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.folders = [Path(f) for f in folders]
        self.progress: Progress | None = None
        self._job = 0
        self._shown = -1  # the job whose numbers are drawn
        self._pending: str | None = None
        self.athlete = QtWidgets.QComboBox()
        self.athlete.setObjectName("progress_athlete")
        self.exercise = QtWidgets.QComboBox()
        self.exercise.setObjectName("progress_exercise")
        self.status = QtWidgets.QLabel("")
        self.status.setObjectName("progress_status")
        self.status.setWordWrap(True)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Athlete"))
        top.addWidget(self.athlete, 1)
        top.addWidget(QtWidgets.QLabel("Exercise"))
        top.addWidget(self.exercise, 1)
        # Side by side, each titled above it: the Sessions dock is wide and short (about 970
        # x 150 px for both plots at 1366x768), and two plots stacked in it left each 40 px,
        # the rotated axis titles running into each other and the ticks crowding.
        self.pct_plot = pg.PlotWidget(axisItems={"bottom": DayAxis()})
        self.pct_plot.setObjectName("progress_pct")
        self.lag_plot = pg.PlotWidget(axisItems={"bottom": DayAxis()})
        self.lag_plot.setObjectName("progress_lag")
        for plot in (self.pct_plot, self.lag_plot):
            plot.setBackground("w")
            plot.showGrid(x=False, y=True, alpha=0.25)
            plot.setMouseEnabled(x=True, y=False)
            plot.setMinimumHeight(100)
            plot.getAxis("left").setWidth(42)
            # (a short plot would hide its end ticks rather than let them touch the edge)
            plot.getAxis("left").setStyle(hideOverlappingLabels=False)
        self.lag_plot.setXLink(self.pct_plot)
        self.pct_plot.getAxis("left").setTicks([[(v, f"{v:g}") for v in (0, 50, 100)]])
        self.pct_plot.setYRange(-14, 125, padding=0)  # room above 100 % for the point's n=
        self.pct_scatter = pg.ScatterPlotItem(size=9, pen=pg.mkPen("w"))
        self.lag_scatter = pg.ScatterPlotItem(size=9, pen=pg.mkPen("w"))
        self.pct_line = pg.PlotDataItem(pen=pg.mkPen("#999999", width=1))
        self.lag_line = pg.PlotDataItem(pen=pg.mkPen("#999999", width=1))
        self.trend_line = pg.PlotDataItem(
            pen=pg.mkPen("#333333", width=1.5, style=QtCore.Qt.PenStyle.DashLine)
        )
        band = pg.mkColor(VERDICT_COLOR[SIMULTANEOUS])
        band.setAlpha(60)
        self.band = pg.LinearRegionItem(
            (-20, 20),
            orientation="horizontal",
            movable=False,
            brush=pg.mkBrush(band),
            pen=pg.mkPen(None),
        )
        self.pct_plot.addItem(self.pct_line)
        self.pct_plot.addItem(self.trend_line)
        self.pct_plot.addItem(self.pct_scatter)
        self.lag_plot.addItem(self.band)
        self.lag_plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#999999")))
        self.lag_plot.addItem(self.lag_line)
        self.lag_plot.addItem(self.lag_scatter)
        self.labels: list[pg.TextItem] = []
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        # each plot's title a line of text above it (a plot's own title took 30 px of 150)
        plots = QtWidgets.QHBoxLayout()
        for plot, title in (
            (self.pct_plot, "glute first, % of the reps with a verdict (n: reps per point)"),
            (self.lag_plot, "median lag, ms (+ = glute first)"),
        ):
            column = QtWidgets.QVBoxLayout()
            column.setSpacing(0)
            label = QtWidgets.QLabel(title)
            label.setObjectName(f"{plot.objectName()}_title")
            label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            column.addWidget(label)
            column.addWidget(plot, 1)
            plots.addLayout(column, 1)
        layout.addLayout(plots, 1)
        layout.addWidget(self.status)
        self.loaded.connect(self._loaded, QtCore.Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]
        self.athlete.currentTextChanged.connect(self._pick_athlete)
        self.exercise.currentTextChanged.connect(lambda _t: self.draw())
        self.refresh()

    # -- data ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """List the athletes again (new recordings); the picked one stays picked."""
        keep = self.athlete.currentText()
        names = athletes(self.folders)
        self.athlete.blockSignals(True)
        self.athlete.clear()
        self.athlete.addItems(names)
        self.athlete.blockSignals(False)
        if not names:
            self.status.setText("No fireorder recordings with an athlete's name yet.")
            self._clear()
            return
        self.athlete.setCurrentIndex(max(0, names.index(keep)) if keep in names else 0)
        self._pick_athlete(self.athlete.currentText())

    def _pick_athlete(self, name: str) -> None:
        if not name:
            return
        if not self.isVisible():
            # read only when looked at: a window that never opens the tab analyses nothing
            self._pending = name
            return
        self._pending = None
        self._job += 1
        job, folders = self._job, list(self.folders)
        self.status.setText(f"Reading the recordings of {name}…")

        def work() -> None:
            from devices.session.progress import progress

            try:
                result: object = progress(folders, name)
            except Exception as exc:  # shown in the view, never raised into Qt
                log.warning("progress of %s: %s", name, exc)
                result = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not sip.isdeleted(self):
                self.loaded.emit((job, result))

        threading.Thread(target=work, name="progress", daemon=True).start()

    def showEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)  # type: ignore[arg-type]
        if self._pending:
            self._pick_athlete(self._pending)

    def _loaded(self, payload: tuple[int, object]) -> None:
        job, result = payload
        if job != self._job:
            return  # an athlete picked before this one: its numbers are stale
        self._shown = job
        if not isinstance(result, Progress):
            self.status.setText(f"Progress not available: {result}")
            return
        self.progress = result
        keep = self.exercise.currentText()
        self.exercise.blockSignals(True)
        self.exercise.clear()
        self.exercise.addItems(result.exercises)
        if keep in result.exercises:
            self.exercise.setCurrentText(keep)
        self.exercise.blockSignals(False)
        self.draw()

    @property
    def busy(self) -> bool:
        """True while the picked athlete's recordings are being read."""
        return self._pending is not None or self._shown != self._job

    # -- drawing ---------------------------------------------------------------------------
    def _clear(self) -> None:
        for item in (self.pct_scatter, self.lag_scatter):
            item.setData([], [])
        for line in (self.pct_line, self.lag_line, self.trend_line):
            line.setData([], [])
        for label in self.labels:
            self.pct_plot.removeItem(label)
        self.labels.clear()

    def series(self) -> list[SessionPoint]:
        prog, ex = self.progress, self.exercise.currentText()
        return [] if prog is None or not ex else prog.series(ex)

    def draw(self) -> None:
        self._clear()
        prog = self.progress
        pts = self.series()
        if prog is None or not pts:
            return
        k = max(0, self.exercise.currentIndex())
        color = SERIES[k % len(SERIES)]
        brush = pg.mkBrush(color)
        have = [s for s in pts if s.glute_first_pct is not None]
        xs = [_x(s.day) for s in have]
        ys = [float(s.glute_first_pct or 0.0) for s in have]
        self.pct_scatter.setData(xs, ys, brush=brush)
        if len(xs) >= MIN_TREND_SESSIONS:  # joined from 3 on: a line between two reads as a trend
            self.pct_line.setData(xs, ys)
        for s, x, y in zip(have, xs, ys, strict=True):
            label = pg.TextItem(f"n={s.decided}", color=color, anchor=(0.5, 1.2))
            label.setPos(x, y)
            self.pct_plot.addItem(label)
            self.labels.append(label)
        lagged = [s for s in pts if s.median_lag_ms is not None]
        lx = [_x(s.day) for s in lagged]
        ly = [float(s.median_lag_ms or 0.0) for s in lagged]
        self.lag_scatter.setData(lx, ly, brush=brush)
        if len(lx) >= MIN_TREND_SESSIONS:
            self.lag_line.setData(lx, ly)
        tol = prog.tolerance_ms
        self.band.setRegion((-tol, tol))
        # round ticks at ±top and 0; the range a third beyond, so a point at the top is whole
        want = max([3 * tol, 50.0, *(abs(v) for v in ly)])
        top = next((t for t in (50, 100, 150, 200, 300, 500, 1000) if t >= want), want)
        self.lag_plot.getAxis("left").setTicks(
            [[(v, f"{v:+g}" if v else "0") for v in (-top, 0, top)]]
        )
        self.lag_plot.setYRange(-top * 1.3, top * 1.3, padding=0)
        ex = self.exercise.currentText()
        line = prog.trend(ex)
        seg = prog.trend_segment(ex)
        if line is not None and seg is not None:
            self.trend_line.setData([_x_of(t) for t, _ in seg], [y for _, y in seg])
            said = f"trend {line[0]:+.1f} points a week over {len(have)} sessions"
        else:
            said = f"no trend line: it needs {MIN_TREND_SESSIONS} sessions"
        if xs:
            pad = max(1.0, (max(xs) - min(xs)) / 10)  # (days: room for the n= at the ends)
            self.pct_plot.setXRange(min(xs) - pad, max(xs) + pad, padding=0)
        reps = sum(s.reps for s in pts)
        decided = sum(s.decided for s in pts)
        fixed = sum(s.corrected for s in pts)
        # n= above a point counts the reps with a verdict: the caption says how many of all
        self.status.setText(
            f"{prog.athlete}, {ex}: {len(pts)} session(s), {reps} reps on review, "
            f"{decided} with a verdict (the n per point)"
            + (f", {reps - decided} undetermined" if reps > decided else "")
            + (f"; {fixed} corrected in review" if fixed else "")
            + f"; neutral band ±{tol:g} ms; {said}."
            + (f" {len(prog.skipped)} recording(s) not counted." if prog.skipped else "")
        )
