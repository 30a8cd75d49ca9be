"""Manual onset corrections in review: drag an onset line, the rep's lag and verdict follow.

Detected values are never overwritten: a correction is kept beside them (in the rep table, the
tally, and for fireorder recordings in the sidecar's ``corrections`` list, which travels with
the file).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from pathlib import Path

import pyqtgraph as pg
from PyQt6 import QtCore

from app.traces import TracesView
from dsp.contract import Role
from dsp.reps import RepResult, classify

log = logging.getLogger(__name__)


def corrected(rep: RepResult, role: Role, index: int, fs: float, tolerance_ms: float) -> RepResult:
    """``rep`` with one onset moved by hand: lag and verdict recomputed from the onsets."""
    onsets = dict(rep.onsets)
    onsets[role] = index
    glutes = [i for r, i in onsets.items() if r.is_glute and i is not None]
    lumbars = [i for r, i in onsets.items() if r.is_lumbar and i is not None]
    lag = (min(lumbars) - min(glutes)) * 1000.0 / fs if glutes and lumbars else None
    return dataclasses.replace(
        rep,
        onsets=onsets,
        lag_ms=None if lag is None else round(lag, 3),
        order=classify(lag, tolerance_ms),
        reason=f"{role.value} onset corrected by hand",
    )


def save_correction(
    recording: str | Path, rep: RepResult, role: Role, detected: int | None, index: int, fs: float
) -> bool:
    """Append the correction to a fireorder recording's sidecar; False if it has none."""
    from devices.files.bdf_format import read_sidecar, sidecar_path, write_json_atomic

    doc = read_sidecar(recording)
    if doc is None:
        return False
    doc.setdefault("corrections", []).append(
        {
            "rep_start_s": round(rep.start / fs, 4),
            "role": role.value,
            "detected_s": None if detected is None else round(detected / fs, 4),
            "corrected_s": round(index / fs, 4),
            "lag_ms": rep.lag_ms,
            "order": rep.order,
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
    )
    write_json_atomic(sidecar_path(recording), doc)
    return True


def save_note(recording: str | Path, t_s: float, text: str) -> bool:
    """Append a review note to a fireorder recording's sidecar; False if it has none."""
    from devices.files.bdf_format import read_sidecar, sidecar_path, write_json_atomic

    doc = read_sidecar(recording)
    if doc is None:
        return False
    doc.setdefault("notes", []).append(
        {
            "t_s": round(t_s, 4),
            "text": text,
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
    )
    write_json_atomic(sidecar_path(recording), doc)
    return True


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
