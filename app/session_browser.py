"""Session browser: the recordings in the recordings folder (and the shipped examples) with
athlete, date, exercise, reps and glute-first %, from their sidecars and reviews (no sample
data is read). Double-click replays one. Its Progress tab shows one athlete's sessions over
dates (app/progress_view.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt6 import QtCore, QtWidgets

from devices.files import locations
from devices.files.sidecar import SessionRow, browse

log = logging.getLogger(__name__)


class SessionBrowser(QtWidgets.QWidget):
    open_requested = QtCore.pyqtSignal(str)  # path of a recording to replay

    HEAD = ("date", "athlete", "session", "exercise", "duration", "reps", "glute first", "file")

    def __init__(
        self,
        folder: str | Path,
        parent: QtWidgets.QWidget | None = None,
        *,
        examples: str | Path | None = locations.EXAMPLES,
    ) -> None:
        super().__init__(parent)
        self.folder = Path(folder)
        self.examples = None if examples is None else Path(examples)
        self.table = QtWidgets.QTableWidget(0, len(self.HEAD))
        self.table.setObjectName("sessions")
        self.table.setHorizontalHeaderLabels(list(self.HEAD))
        rows, columns = self.table.verticalHeader(), self.table.horizontalHeader()
        assert rows is not None and columns is not None  # a QTableWidget always has both
        rows.setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        columns.setStretchLastSection(True)
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.setObjectName("sessions_refresh")
        refresh.clicked.connect(self.refresh)
        listing = QtWidgets.QWidget()
        inner = QtWidgets.QVBoxLayout(listing)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.table)
        inner.addWidget(refresh)
        from app.progress_view import ProgressView

        folders = [self.folder] + ([self.examples] if self.examples is not None else [])
        self.progress = ProgressView(folders)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("sessions_tabs")
        self.tabs.addTab(listing, "Recordings")
        self.tabs.addTab(self.progress, "Progress")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tabs)
        self.rows: list[SessionRow] = []
        self._listed = False
        self.table.cellDoubleClicked.connect(self._open)
        self.refresh()

    def refresh(self) -> None:
        if self._listed:
            self.progress.refresh()  # new recordings, new reviews: the progress follows
        self._listed = True
        rows = browse(self.folder)
        if self.examples is not None and self.examples.resolve() != self.folder.resolve():
            rows += browse(self.examples)  # read-only: reviews of them go to the data folder
        self.rows = rows
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            dur = "" if r.duration_s is None else f"{r.duration_s / 60:.1f} min"
            pct = "" if r.glute_first_pct is None else f"{r.glute_first_pct:.0f}%"
            if r.corrected:
                pct += f" ({r.corrected} corrected)"
            cells = [
                r.date,
                r.athlete,
                r.session,
                r.exercise,
                dur,
                "" if r.reps is None else str(r.reps),
                pct,
                r.path.name + (" (example)" if locations.is_example(r.path) else ""),
            ]
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def _open(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.rows):
            self.open_requested.emit(str(self.rows[row].path))
