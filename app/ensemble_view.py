"""Ensemble view (review): every rep's envelopes aligned at its first glute onset, averaged
per verdict with the 25-75 % band (:mod:`devices.session.ensemble`, the numbers the report
draws). One panel per verdict, one curve per muscle in the window's lane colours.

The lead wires it with one call: ``add_ensemble_tab(window)`` adds an "Ensemble" dock beside
the Reps dock; it reads the replayed recording (with its review) when shown or when its
button is pressed. ``EnsembleView.load(path)`` can be called directly on opening a file.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtWidgets, sip

from app.theme import CHANNEL_COLORS, VERDICT_COLOR, VERDICT_TEXT

if TYPE_CHECKING:
    from devices.session.ensemble import Ensemble
    from dsp.settings import DspSettings

log = logging.getLogger(__name__)


def compute(
    path: str, channels: dict[str, str] | None = None, settings: DspSettings | None = None
) -> tuple[Ensemble, dict[str, Any]]:
    """Analyse ``path``, apply its review and build the ensemble (no Qt; a worker runs it).
    Returns the ensemble and the reviewed analysis document."""
    from devices.files.mapping import load_mapped
    from devices.session.ensemble import ensemble
    from devices.session.review_model import reviewed_document
    from dsp.analysis import analyze

    mapped = load_mapped(path, channels)
    result = analyze(mapped.data, mapped.info, settings)
    doc = reviewed_document(result.to_dict(mapped.source(path)), path, mapped.recording.annotations)
    return ensemble(doc, mapped.data, mapped.info, result.settings), doc


class EnsembleView(QtWidgets.QWidget):
    computed = QtCore.pyqtSignal(object)  # (job, (Ensemble, doc) or error text)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: str | None = None
        self.ensemble: Ensemble | None = None
        self.doc: dict[str, Any] | None = None
        self._job = 0
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("ensemble_plots")
        self.graphics.setBackground("w")
        self.status = QtWidgets.QLabel("Open a recording to see its reps averaged per verdict.")
        self.status.setObjectName("ensemble_status")
        self.status.setWordWrap(True)
        self.button = QtWidgets.QPushButton("Average the reps of this recording")
        self.button.setObjectName("ensemble_compute")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.graphics, 1)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.button)
        layout.addLayout(bottom)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}  # (verdict, role) -> mean
        self.computed.connect(self._done, QtCore.Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]

    @property
    def busy(self) -> bool:
        return self._job > 0 and self.ensemble is None and self.path is not None

    def load(
        self,
        path: str | Path,
        channels: dict[str, str] | None = None,
        settings: DspSettings | None = None,
    ) -> None:
        """Analyse ``path`` on a worker thread and draw its ensemble when done."""
        self._job += 1
        job, self.path, self.ensemble = self._job, str(path), None
        self.status.setText(f"Averaging the reps of {Path(path).name}…")

        def work() -> None:
            try:
                result: object = compute(str(path), channels, settings)
            except Exception as exc:  # shown in the view, never raised into Qt
                log.warning("ensemble of %s: %s", path, exc)
                result = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not sip.isdeleted(self):
                self.computed.emit((job, result))

        threading.Thread(target=work, name="ensemble", daemon=True).start()

    def _done(self, payload: tuple[int, object]) -> None:
        job, result = payload
        if job != self._job:
            return  # another file was opened meanwhile
        if not isinstance(result, tuple):
            self.status.setText(f"No ensemble: {result}")
            return
        ens, doc = result
        self.show_ensemble(ens, doc)

    def show_ensemble(self, ens: Ensemble, doc: dict[str, Any]) -> None:
        from devices.session.ensemble import verdict_order
        from dsp.contract import Role
        from dsp.reps import Verdict

        self.ensemble, self.doc = ens, doc
        self.graphics.clear()
        self.plots.clear()
        self.curves.clear()
        # the window's lane colours: by the channel's place in the file
        channels = list((doc.get("source") or {}).get("channels") or [])
        roles = doc.get("roles") or {}

        def color(role: Role) -> str:
            name = roles.get(role.value)
            k = channels.index(name) if name in channels else list(Role).index(role)
            return CHANNEL_COLORS[k % len(CHANNEL_COLORS)]

        verdicts = verdict_order(list(dict.fromkeys(c.verdict for c in ens.curves)))
        top = max(
            (float(np.nanmax(c.hi)) for c in ens.curves if np.isfinite(c.hi).any()), default=1.0
        )
        first: pg.PlotItem | None = None
        for col, verdict in enumerate(verdicts):
            curves = ens.of(verdict)
            v = Verdict(verdict)
            plot = self.graphics.addPlot(row=0, col=col)
            plot.setTitle(
                f"{VERDICT_TEXT[v].lower()} ({curves[0].n} reps)",
                color=VERDICT_COLOR[v],
                size="10pt",
            )
            plot.setLabel("bottom", "ms from the first glute onset")
            if col == 0:
                plot.setLabel("left", "envelope (µV)")
                plot.addLegend(offset=(5, 5))
            plot.showGrid(y=True, alpha=0.2)
            plot.addItem(
                pg.InfiniteLine(
                    0, angle=90, pen=pg.mkPen("#222222", style=QtCore.Qt.PenStyle.DashLine)
                )
            )
            for c in curves:
                rgb = color(c.role)
                lo = pg.PlotDataItem(ens.t_ms, np.nan_to_num(c.lo), pen=pg.mkPen(None))
                hi = pg.PlotDataItem(ens.t_ms, np.nan_to_num(c.hi), pen=pg.mkPen(None))
                band = pg.mkColor(rgb)
                band.setAlpha(45)
                plot.addItem(pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(band)))
                mean = plot.plot(ens.t_ms, c.mean, pen=pg.mkPen(rgb, width=2), name=c.role.label)
                self.curves[(verdict, c.role.value)] = mean
            plot.setYRange(0, top * 1.05, padding=0)
            if first is not None:
                plot.setYLink(first)
            first = first or plot
            self.plots[verdict] = plot
        lone = [v for v, n in ens.reps.items() if n < 2]
        fixed = int((doc.get("review") or {}).get("corrected_reps", 0))
        if not verdicts:
            self.status.setText("Too few reps of any one verdict to average (needs 2).")
            return
        self.status.setText(
            f"{sum(ens.reps.values())} reps aligned at their first glute onset; "
            "line = mean, band = middle half (25–75 %)"
            + (f"; {fixed} corrected in review, counted as corrected" if fixed else "")
            + (f"; not averaged (a single rep): {', '.join(lone)}" if lone else "")
            + (
                f"; {ens.skipped} rep(s) without a glute onset or at the file's edge left out"
                if ens.skipped
                else ""
            )
            + "."
        )


def add_ensemble_tab(window: Any) -> EnsembleView:
    """Add an "Ensemble" dock to the main window, tabbed with its other bottom docks. Its
    button (and showing it) averages the replayed file (with its review) or the last
    recording, with the window's settings and channel mapping."""
    view = EnsembleView()
    dock = QtWidgets.QDockWidget("Ensemble", window)
    dock.setObjectName("dock_ensemble")
    dock.setWidget(view)
    window.addDockWidget(QtCore.Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    others = [
        d
        for d in window.findChildren(QtWidgets.QDockWidget)
        if d is not dock
        and window.dockWidgetArea(d) == QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
    ]
    if others:
        window.tabifyDockWidget(others[-1], dock)

    def current() -> None:
        ctl = getattr(window, "ctl", None)
        replay = ctl.replay if ctl is not None else None
        path = replay.path if replay is not None else getattr(window, "_last_recording", None)
        if not path:
            view.status.setText("Nothing to average: replay or record a session first.")
            return
        info = ctl.info if ctl is not None else None
        channels = (
            {r.value: info.channel_names[i] for r, i in info.roles.items()}
            if info is not None and replay is not None
            else None
        )
        if str(path) != view.path or view.ensemble is None:
            view.load(str(path), channels, getattr(window, "settings", None))

    view.button.clicked.connect(current)
    dock.visibilityChanged.connect(lambda shown: current() if shown else None)
    window.ensemble_view = view
    window.ensemble_dock = dock
    return view
