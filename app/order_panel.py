"""The firing-order panel: current rep's timing bar and verdict, lag history, running counts."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from app.review import side_text, verdict_lag_text
from app.theme import VERDICT_COLOR, VERDICT_TEXT
from devices.session.tally import RepTally
from dsp.contract import Role
from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS, UNDETERMINED, RepResult, Verdict

NBSP = "\u00a0"  # a no-break space: keeps "glute first (+12 ms)" on one line


class VerdictLabel(QtWidgets.QLabel):
    """The verdict in big words. Its font shrinks to the panel's width rather than the
    words setting the panel's (and so the window's) minimum width: at 26 pt "LUMBAR FIRST
    +120 ms" alone was 360 px, and the window did not fit a 1366 px screen (issue 10)."""

    MIN_WIDTH = 160
    MIN_POINT_SIZE = 11

    def __init__(self, point_size: int = 26) -> None:
        super().__init__("waiting for a rep…")
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.point_size = point_size
        font = self.font()
        font.setPointSize(point_size)
        font.setBold(True)
        self.setFont(font)
        self.setMinimumHeight(int(point_size * 2.4))
        self.order: str | None = None
        self._paint("#bdc3c7", "#2c3e50")

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        return QtCore.QSize(self.MIN_WIDTH, self.minimumHeight())

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        return QtCore.QSize(self.MIN_WIDTH, self.minimumHeight())

    def setText(self, text: str | None) -> None:  # noqa: N802 (Qt API)
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: QtGui.QResizeEvent | None) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        """The largest size up to ``point_size`` at which the text fits the width."""
        font = QtGui.QFont(self.font())
        room = max(1, self.width() - 16)
        size = self.point_size
        font.setPointSize(size)
        while size > self.MIN_POINT_SIZE and (
            QtGui.QFontMetrics(font).horizontalAdvance(self.text()) > room
        ):
            size -= 1
            font.setPointSize(size)
        if font.pointSize() != self.font().pointSize():
            self.setFont(font)

    def _paint(self, bg: str, fg: str = "white") -> None:
        self.setStyleSheet(f"QLabel {{ background: {bg}; color: {fg}; border-radius: 8px; }}")

    def reset(self) -> None:
        self.order = None
        self.setText("waiting for a rep…")
        self._paint("#bdc3c7", "#2c3e50")

    def show_verdict(self, order: str, lag: str = "—") -> None:
        """``lag`` as :func:`app.review.verdict_lag_text` words it ("—": none)."""
        self.order = order
        lag = "" if lag == "—" else f"  {lag}"
        verdict = Verdict(order)
        self.setText(VERDICT_TEXT[verdict] + lag)
        self._paint(VERDICT_COLOR[verdict])


class TimingBar(pg.PlotWidget):
    """Onsets of the current rep on a common time axis, relative to the earliest glute."""

    def __init__(self) -> None:
        super().__init__(background="w")
        self.setMinimumHeight(104)  # 4 rows of 9 pt labels; with the history, fits 768 px
        plot = self.getPlotItem()
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setLabel("bottom", "onset after first glute", units="ms")  # (fits the narrow panel)
        self._bars = pg.BarGraphItem(x0=[], y=[], height=0.6, width=[])
        plot.addItem(self._bars)
        self._zero = pg.InfiniteLine(0, angle=90, pen=pg.mkPen("#333", width=1))
        plot.addItem(self._zero)
        self.roles: list[Role] = []

    def show_rep(self, rep: RepResult, fs: float) -> None:
        roles = list(rep.onsets)
        self.roles = roles
        glutes = [i for r, i in rep.onsets.items() if r.is_glute and i is not None]
        ref = (
            min(glutes)
            if glutes
            else min((i for i in rep.onsets.values() if i is not None), default=0)
        )
        x0, widths, ys, brushes = [], [], [], []
        for k, role in enumerate(roles):
            idx = rep.onsets[role]
            if idx is None:
                continue
            rel = (idx - ref) * 1000.0 / fs
            x0.append(rel)
            widths.append(max(5.0, 300.0 - rel))
            ys.append(k)
            brushes.append(pg.mkBrush("#1b9e4b" if role.is_glute else "#d7263d"))
        self._bars.setOpts(x0=x0, y=ys, width=widths, height=0.6, brushes=brushes)
        axis = self.getPlotItem().getAxis("left")
        axis.setTicks([[(k, r.label) for k, r in enumerate(roles)]])
        self.getPlotItem().setYRange(-0.6, len(roles) - 0.4)
        lo = min([0.0, *x0]) - 30
        self.getPlotItem().setXRange(lo, 300, padding=0)

    def clear_rep(self) -> None:
        # (not "clear": pyqtgraph's PlotWidget binds its plot's clear() on each instance)
        self.roles = []
        self._bars.setOpts(x0=[], y=[], width=[], height=0.6, brushes=[])
        self.getPlotItem().getAxis("left").setTicks([[]])


class LagHistory(pg.PlotWidget):
    """Lag per rep with the neutral zone; points coloured by verdict."""

    def __init__(self, tolerance_ms: float = 20.0) -> None:
        super().__init__(background="w")
        self.setMinimumHeight(100)
        plot = self.getPlotItem()
        plot.setLabel("left", "lag", units="ms")
        plot.setLabel("bottom", "rep")
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        self._zone = pg.LinearRegionItem(
            orientation="horizontal", movable=False, brush=pg.mkBrush(224, 160, 0, 50)
        )
        plot.addItem(self._zone)
        plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#888", width=1)))
        self._points = pg.ScatterPlotItem(size=10, pen=pg.mkPen("k", width=0.5))
        plot.addItem(self._points)
        self.set_tolerance(tolerance_ms)

    def set_tolerance(self, tolerance_ms: float) -> None:
        self._zone.setRegion((-tolerance_ms, tolerance_ms))

    #: points drawn: the view shows the last 30 reps; all of them made every new rep redraw
    #: (and hold) the whole session's points
    POINTS = 60

    def show_reps(self, reps: list[RepResult]) -> None:
        recent = reps[-self.POINTS :]
        pts = [(r.index + 1, r.lag_ms, r.order) for r in recent if r.lag_ms is not None]
        if not pts:
            self._points.setData([], [])
            return
        xs, ys, orders = zip(*pts, strict=True)
        self._points.setData(
            list(xs), list(ys), brush=[pg.mkBrush(VERDICT_COLOR[o]) for o in orders]
        )
        lim = max(150.0, float(np.max(np.abs(ys))) * 1.1)
        plot = self.getPlotItem()
        plot.setYRange(-lim, lim, padding=0)
        plot.setXRange(max(0.5, xs[-1] - 29.5), max(30.5, xs[-1] + 0.5), padding=0)


class FiringOrderPanel(QtWidgets.QWidget):
    def __init__(self, tally: RepTally, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.tally = tally
        self.verdict = VerdictLabel()
        self.detail = QtWidgets.QLabel("")
        self.detail.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        # wrapped: both sides' results on one line made the panel 360 px wide at least
        self.detail.setWordWrap(True)
        self.timing = TimingBar()
        self.history = LagHistory()
        self.counts = QtWidgets.QLabel("")
        self.counts.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.counts.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.verdict)
        layout.addWidget(self.detail)
        layout.addWidget(self.timing, 3)
        layout.addWidget(self.history, 3)
        layout.addWidget(self.counts)
        self._shown = -1  # index of the rep on show
        self._on_show: tuple[RepResult, float] | None = None  # its record, the stream's rate
        self._fired: set[Role] = set()  # onsets of the rep on show that came after its verdict
        self._stopped = False  # the stream stopped while the rep on show was under way
        self.update_counts()

    def resizeEvent(self, event: QtGui.QResizeEvent | None) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._fit_wrapped()

    def _fit_wrapped(self) -> None:
        """Wrapped labels take the height their text needs at the panel's width: the dock's
        minimum knows nothing of word wrap, and a narrow panel drew the lines over the plots."""
        for label in (self.detail, self.counts):
            width = label.width() or self.width()
            need = label.heightForWidth(width) if label.text() else 0
            if need > 0 and label.minimumHeight() != need:
                label.setMinimumHeight(need)

    def reset(self) -> None:
        """A new source or file: nothing of the previous session stays on show."""
        self.clear_shown()
        self.history.show_reps([])
        self.update_counts()

    def clear_shown(self) -> None:
        """No rep on show (the history and the counts stay)."""
        self._shown = -1
        self._on_show = None
        self._fired = set()
        self._stopped = False
        self.verdict.reset()
        self.detail.setText("")
        self.timing.clear_rep()

    def show_final(self, rep: RepResult, fs: float) -> None:
        """A rep's final record (at its end): onsets that came after the verdict fill in its
        lag and the per-side results of the rep on show; a lumbar-first verdict given before
        the glutes fired is revised when the glute onset fitted later says otherwise."""
        if rep.index == self._shown:
            self._show(rep, fs)

    def show_rep(self, rep: RepResult, fs: float) -> None:
        if rep.index != self._shown:
            self._fired = set()
        self._stopped = False
        self._shown = rep.index
        self._show(rep, fs)

    @property
    def shown_record(self) -> RepResult | None:
        """The record of the rep on show (its cue while it goes on), None if none is."""
        return None if self._on_show is None else self._on_show[0]

    def stream_stopped(self) -> None:
        """The stream stopped: a rep on show still under way gets no end, nor its sides'
        pending onsets (the banner kept "glute not yet fired" as if it would)."""
        shown = self._on_show
        if shown is None or shown[0].end is not None or self._stopped:
            return
        self._stopped = True
        self._show(*shown)

    def onset_seen(self, role: Role, index: int) -> None:
        """An onset came after the verdict of the rep on show (its side waited for it): the
        side no longer reads "not yet fired" while the rep goes on to its end."""
        shown = self._on_show
        if shown is None or role in self._fired:
            return
        rep, fs = shown
        if rep.end is not None or index < rep.start or rep.onsets.get(role, 0) is not None:
            return
        self._fired.add(role)
        self._show(rep, fs)

    def _show(self, rep: RepResult, fs: float) -> None:
        self._on_show = (rep, fs)
        self.verdict.show_verdict(rep.order, verdict_lag_text(rep))
        # (no-break spaces: a narrow panel wraps between the sides, not inside one)
        sides = [
            side_text(name, side, rep, self._fired, self._stopped).replace(" ", NBSP)
            for name, side in (("left", rep.left), ("right", rep.right))
            if side is not None
        ]
        text = f"rep {rep.index + 1}" + ("  ·  " + "  ·  ".join(sides) if sides else "")
        if rep.reason:
            text += f"\n{rep.reason}"
        if self._stopped and rep.end is None:
            text += "\nthe stream stopped before this rep ended"
        self.detail.setText(text)
        self._fit_wrapped()
        self.timing.show_rep(rep, fs)
        self.history.show_reps(self.tally.reps)
        self.update_counts()

    def update_counts(self) -> None:
        t = self.tally

        # A table, not sentences: the four counts of a window line up under their verdicts,
        # and the panel stays readable down to its minimum width (sentences took three lines
        # each there, more than a 768 px screen's dock has room for).
        heads = ("glute<br>first", "simul-<br>taneous", "lumbar<br>first", "undeter-<br>mined")
        cell = "<td align=right>{}</td>"

        def row(name: str, c: dict[str, int]) -> str:
            pct = t.percent(c)
            p = "—" if pct is None else f"{pct:.0f}%"
            counts = (c[GLUTE_FIRST], c[SIMULTANEOUS], c[LUMBAR_FIRST], c[UNDETERMINED])
            return (
                f"<tr><td><b>{name}</b></td>"
                + "".join(cell.format(n) for n in counts)
                + cell.format(f"<b>{p}</b>")
                + "</tr>"
            )

        header = "".join(cell.format(f"<small>{h}</small>") for h in heads)
        table = (
            "<table cellspacing=0 cellpadding=2>"
            f"<tr><td></td>{header}{cell.format('<small>glute<br>first</small>')}</tr>"
            + row(f"last {t.window}", t.recent)
            + row("session", t.session)
            + "</table>"
        )
        rows = [f"glute-first streak: <b>{t.streak}</b>"]
        for side in ("left", "right"):
            c = t.side_counts(side)
            if sum(c.values()):
                pct = t.percent(c)
                # the share is of the reps with a verdict, so is the fraction beside it
                decided = sum(c.values()) - c[UNDETERMINED]
                rows.append(
                    f"{side} side: {c[GLUTE_FIRST]}/{decided} glute first"
                    + ("" if pct is None else f" ({pct:.0f}%)")
                    + (f", {c[UNDETERMINED]} undetermined" if c[UNDETERMINED] else "")
                )
        self.counts.setText(table + "<br>".join(rows))
        self._fit_wrapped()
