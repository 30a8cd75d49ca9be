"""Manual onset corrections in review: movable onset lines on the traces.

Dragging one reports (rep, role, new index); the session controller computes the corrected
rep and keeps it beside the detected one (devices/session/controller.py), and the review is
stored through devices/files/sidecar.py.
"""

from __future__ import annotations

import logging

import pyqtgraph as pg
from PyQt6 import QtCore

from app.traces import TracesView
from dsp.contract import Role
from dsp.reps import RepResult

log = logging.getLogger(__name__)


class OnsetEditor(QtCore.QObject):
    """Movable lines on the traces for the onsets of one rep (while the view is paused)."""

    changed = QtCore.pyqtSignal(object, object, int)  # rep, role, new index

    def __init__(self, traces: TracesView) -> None:
        super().__init__()
        self.traces = traces
        self.rep: RepResult | None = None
        self.lines: dict[Role, pg.InfiniteLine] = {}
        self.fs = 1.0

    def edit(self, rep: RepResult, fs: float) -> None:
        self.clear()
        self.rep, self.fs = rep, fs
        t_end = self.traces.t_end
        plot = self.traces.getPlotItem()
        for role, index in rep.onsets.items():
            if index is None:
                continue
            color = "#1b9e4b" if role.is_glute else "#d7263d"
            line = pg.InfiniteLine(
                index / fs - t_end,
                angle=90,
                movable=True,
                pen=pg.mkPen(color, width=2),
                label=role.value,
                labelOpts={"position": 0.05, "color": color},
            )
            line.sigPositionChangeFinished.connect(lambda ln, role=role: self._moved(role, ln))
            plot.addItem(line)
            self.lines[role] = line

    def _moved(self, role: Role, line: pg.InfiniteLine) -> None:
        if self.rep is None or role not in self.lines or self.lines[role] is not line:
            return  # a line of an earlier edit (another rep, another file) moved: ignore it
        t_end = self.traces.t_end
        index = round((line.value() + t_end) * self.fs)
        self.changed.emit(self.rep, role, index)

    def clear(self) -> None:
        plot = self.traces.getPlotItem()
        for line in self.lines.values():
            plot.removeItem(line)
        self.lines.clear()
        self.rep = None
