"""Manual onset corrections in review: a handle per onset of the selected rep on the traces.

Each handle is a short vertical line on its own channel's lane (so the four onsets of a rep
never overlap, and each label sits in its lane), bounded to the rep's span. Drag one, or
select it (click) and nudge it with the keyboard; the editor reports (rep, role, new index).
The session controller computes the corrected rep and keeps it beside the detected one
(devices/session/controller.py); the review is stored through devices/files/sidecar.py.
"""

from __future__ import annotations

import logging

import pyqtgraph as pg
from PyQt6 import QtCore

from app.traces import LANE, TracesView, keep_label_inside
from dsp.contract import Role
from dsp.reps import RepResult

log = logging.getLogger(__name__)

_GLUTE, _LUMBAR = "#1b9e4b", "#d7263d"
#: how far before the rep's first detected onset a hand may place one: a slow-rising muscle's
#: true onset can precede the detector's by a few hundred ms (the detector's own look-back)
BEFORE_START_MS = 300.0


def editable_range(rep: RepResult, fs: float) -> tuple[int, int]:
    """Where an onset of ``rep`` may be moved to (sample indices): within the rep."""
    last = max((i for i in rep.onsets.values() if i is not None), default=rep.start)
    end = rep.end if rep.end is not None else last
    return rep.start - round(BEFORE_START_MS * fs / 1000.0), max(end, last)


def short_label(role: Role) -> str:
    """``glute L``, ``lumbar R``: what a handle says (its lane names the channel)."""
    return f"{'glute' if role.is_glute else 'lumbar'} {role.side[0].upper()}"


class OnsetEditor(QtCore.QObject):
    """Handles for the onsets of one rep. ``changed(rep, role, index)`` when one is moved by
    drag or nudge; ``selected(role)`` when the handle to nudge changes (None: none)."""

    changed = QtCore.pyqtSignal(object, object, int)  # rep, role, new index
    selected = QtCore.pyqtSignal(object)

    def __init__(self, traces: TracesView) -> None:
        super().__init__()
        self.traces = traces
        self.rep: RepResult | None = None
        self.lines: dict[Role, pg.InfiniteLine] = {}
        self.fs = 1.0
        self.current: Role | None = None  # the handle the keyboard nudges
        self._t_end = 0.0

    # -- handles --------------------------------------------------------------------------
    def edit(self, rep: RepResult, fs: float) -> None:
        """Show handles for ``rep``'s onsets (replacing any others)."""
        keep = self.current if self.rep is not None and self.rep.start == rep.start else None
        self.clear()
        self.rep, self.fs = rep, fs
        self._t_end = self.traces.t_end
        info = self.traces.info
        plot = self.traces.getPlotItem()
        for role, index in rep.onsets.items():
            if index is None or info is None or role not in info.roles:
                continue
            color = _GLUTE if role.is_glute else _LUMBAR
            line = pg.InfiniteLine(
                index / fs - self._t_end,
                angle=90,
                movable=True,
                pen=pg.mkPen(color, width=2),
                hoverPen=pg.mkPen(color, width=4),
                label=short_label(role),
                labelOpts={
                    "position": 0.82,
                    "color": color,
                    "fill": (255, 255, 255, 220),
                    "anchors": [(0.0, 0.5), (0.0, 0.5)],  # to the right of the line
                },
            )
            line.setZValue(20)
            line.setToolTip(f"{role.label} onset: drag, or click and use ←/→ (Shift: 10 ms)")
            line.sigPositionChangeFinished.connect(lambda ln, role=role: self._moved(role, ln))
            line.sigClicked.connect(lambda _ln, _ev, role=role: self.select(role))
            plot.addItem(line)
            self.lines[role] = line
        self._place()
        self.select(keep if keep in self.lines else None)

    def _place(self) -> None:
        """Each handle on its own lane; movement bounded to the rep's span."""
        rep, info = self.rep, self.traces.info
        if rep is None or info is None:
            return
        (y0, y1) = self.traces.getPlotItem().getViewBox().viewRange()[1]
        height = (y1 - y0) or 1.0
        first, last = editable_range(rep, self.fs)
        lo, hi = first / self.fs - self._t_end, last / self.fs - self._t_end
        for role, line in self.lines.items():
            centre = self.traces.lane_offset(info.roles[role])
            bottom = (centre - LANE / 2 - y0) / height
            top = (centre + LANE / 2 - y0) / height
            line.setSpan(max(0.0, bottom), min(1.0, top))
            # (setSpan keeps the old bounding rectangle, and with it the old extent: the
            # line would still be drawn over every lane)
            line.viewTransformChanged()
            line.setBounds((lo, hi))
            # (a handle near the traces' right edge: its label on the line's left, not cut)
            keep_label_inside(line, line.value() / max(self.traces.window_s, 1e-9))
            if line.label is not None:
                line.label.updatePosition()

    def follow(self, t_end: float) -> None:
        """The traces moved (their newest sample is at ``t_end``): the handles go along."""
        if self.rep is None or t_end == self._t_end:
            return
        self._t_end = t_end
        for role, line in self.lines.items():
            index = self.rep.onsets.get(role)
            if index is not None:
                line.setBounds((None, None))  # (the old bounds must not clip the new place)
                line.setValue(index / self.fs - t_end)
        self._place()

    def index_of(self, role: Role) -> int | None:
        line = self.lines.get(role)
        return None if line is None else round((line.value() + self._t_end) * self.fs)

    def select(self, role: Role | None) -> None:
        """The handle that ←/→ nudge (drawn thicker); None: no handle, ←/→ go rep to rep."""
        self.current = role if role in self.lines else None
        for r, line in self.lines.items():
            color = _GLUTE if r.is_glute else _LUMBAR
            line.setPen(pg.mkPen(color, width=4 if r == self.current else 2))
        self.selected.emit(self.current)

    def cycle(self, step: int) -> None:
        """Select the next (``+1``) or previous handle, in time order."""
        order = sorted(self.lines, key=lambda r: (self.index_of(r) or 0, r.value))
        if not order:
            return
        if self.current not in order:
            self.select(order[0 if step > 0 else -1])
        else:
            self.select(order[(order.index(self.current) + step) % len(order)])

    def nudge(self, ms: float) -> bool:
        """Move the selected handle by ``ms`` (within the rep); False if none is selected."""
        role, rep = self.current, self.rep
        if role is None or rep is None:
            return False
        now = rep.onsets.get(role)
        if now is None:
            return False
        first, last = editable_range(rep, self.fs)
        index = min(max(now + round(ms * self.fs / 1000.0), first), last)
        if index != now:
            self.changed.emit(rep, role, index)
        return True

    def _moved(self, role: Role, line: pg.InfiniteLine) -> None:
        if self.rep is None or role not in self.lines or self.lines[role] is not line:
            return  # a line of an earlier edit (another rep, another file) moved: ignore it
        index = round((line.value() + self._t_end) * self.fs)
        if index != self.rep.onsets.get(role):
            self.changed.emit(self.rep, role, index)

    def update_rep(self, rep: RepResult) -> None:
        """The rep after a correction (or its undo): handles move to its onsets."""
        if self.rep is None or rep.start != self.rep.start:
            return
        self.rep = rep
        for role, line in self.lines.items():
            index = rep.onsets.get(role)
            if index is not None:
                line.setValue(index / self.fs - self._t_end)

    def clear(self) -> None:
        plot = self.traces.getPlotItem()
        for line in self.lines.values():
            plot.removeItem(line)
        self.lines.clear()
        self.rep = None
        self.current = None
