"""Session browser: the recordings in a folder with athlete, date, exercise, reps and
glute-first %, from their sidecars (no sample data is read). Double-click replays one."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from PyQt6 import QtCore, QtWidgets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionRow:
    path: Path
    athlete: str
    session: str
    date: str
    exercise: str
    duration_s: float | None
    reps: int | None
    glute_first_pct: float | None
    state: str


def scan(folder: str | Path) -> list[SessionRow]:
    """Every fireorder recording in ``folder`` (newest first); unreadable sidecars are skipped."""
    rows = []
    base = Path(folder)
    if not base.is_dir():
        return rows
    for side in sorted(base.glob("*.bdf.json")):
        bdf = side.with_suffix("")
        if not bdf.exists():
            continue
        try:
            doc = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.info("skipping %s: %s", side, exc)
            continue
        meta = doc.get("meta") or {}
        summary = doc.get("summary") or {}
        verdicts = summary.get("verdicts") or {}
        reps = sum(verdicts.values()) if verdicts else None
        decided = sum(v for k, v in verdicts.items() if k != "undetermined")
        pct = 100.0 * verdicts.get("glute_first", 0) / decided if decided else None
        rows.append(
            SessionRow(
                bdf,
                str(meta.get("athlete", "")),
                str(meta.get("session", "")),
                str(doc.get("created", ""))[:16].replace("T", " "),
                str(meta.get("exercise", "")),
                summary.get("duration_s"),
                reps,
                pct,
                str(doc.get("state", "")),
            )
        )
    rows.sort(key=lambda r: r.date, reverse=True)
    return rows


class SessionBrowser(QtWidgets.QWidget):
    open_requested = QtCore.pyqtSignal(str)  # path of a recording to replay

    HEAD = ("date", "athlete", "session", "exercise", "duration", "reps", "glute first", "file")

    def __init__(self, folder: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = folder
        self.table = QtWidgets.QTableWidget(0, len(self.HEAD), objectName="sessions")
        self.table.setHorizontalHeaderLabels(list(self.HEAD))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setStretchLastSection(True)
        refresh = QtWidgets.QPushButton("Refresh", objectName="sessions_refresh")
        refresh.clicked.connect(self.refresh)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table)
        layout.addWidget(refresh)
        self.rows: list[SessionRow] = []
        self.table.cellDoubleClicked.connect(self._open)
        self.refresh()

    def refresh(self) -> None:
        self.rows = scan(self.folder)
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            dur = "" if r.duration_s is None else f"{r.duration_s / 60:.1f} min"
            pct = "" if r.glute_first_pct is None else f"{r.glute_first_pct:.0f}%"
            cells = [
                r.date,
                r.athlete,
                r.session,
                r.exercise,
                dur,
                "" if r.reps is None else str(r.reps),
                pct,
                r.path.name,
            ]
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def _open(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.rows):
            self.open_requested.emit(str(self.rows[row].path))
