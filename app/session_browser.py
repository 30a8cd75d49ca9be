"""Session browser: the recordings in the recordings folder (and the shipped examples) with
athlete, date, exercise, reps and glute-first %. Double-click replays one. Its Progress tab
shows one athlete's sessions over dates (app/progress_view.py).

The list opens from the sidecars (the live feedback's counts, no sample read); then, while the
tab is looked at, a worker reads each file's review (the analysis the progress view caches,
corrections applied) and the reps and glute-first cells show the counts the opened recording
and the progress view show. Where the live counts differ (a rep already under way when the
recording began is undetermined on review) the cell says both and its tooltip why."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PyQt6 import QtCore, QtWidgets, sip

from devices.files import locations
from devices.files.sidecar import SessionRow, browse
from devices.session.progress import ReviewCounts
from dsp.reps import ORDERS

log = logging.getLogger(__name__)

REPS_COL, PCT_COL = 5, 6
#: the name of the thread that reads the listed recordings' review counts
REVIEW_THREAD = "session-reviews"


def _verdicts(counts: dict[str, int]) -> str:
    parts = [f"{counts[str(o)]} {str(o).replace('_', ' ')}" for o in ORDERS if counts.get(str(o))]
    return ", ".join(parts) or "none"



def duration_text(seconds: float | None) -> str:
    """A recording's length as read at a glance: "45 s" under a minute ("0.1 min" was 5 s),
    "2.5 min" from there."""
    if seconds is None:
        return ""
    return f"{seconds:.0f} s" if seconds < 59.5 else f"{seconds / 60:.1f} min"

class SessionBrowser(QtWidgets.QWidget):
    open_requested = QtCore.pyqtSignal(str)  # path of a recording to replay
    reviewed = QtCore.pyqtSignal(object)  # (job, path, ReviewCounts) from the worker thread

    HEAD = ("date", "athlete", "session", "exercise", "duration", "reps", "glute first", "file")

    def __init__(
        self,
        folder: str | Path,
        parent: QtWidgets.QWidget | None = None,
        *,
        examples: str | Path | None = locations.EXAMPLES,
    ) -> None:
        super().__init__(parent)
        # Set when the widget goes: the review reader stops before its next file (a reader
        # left running into whatever comes next analysed files no one would see).
        self._gone = threading.Event()
        self.destroyed.connect(self._gone.set)
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
        self.review: dict[Path, ReviewCounts] = {}  # the rows' counts on review, as read
        self._listed = False
        self._job = 0
        self._read_job = -1  # the listing whose reviews are read (or being read)
        self.reviewed.connect(self._reviewed, QtCore.Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]
        self.table.cellDoubleClicked.connect(self._open)
        # a correction saved: listed again shortly after (one re-listing for a burst of ←/→
        # nudges, each of which is saved)
        self._soon = QtCore.QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(400)
        self._soon.timeout.connect(self.refresh)
        self.refresh()

    def refresh_soon(self) -> None:
        """Refresh after a moment (a review saved into a sidecar): coalesces a burst."""
        self._soon.start()

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
            dur = duration_text(r.duration_s)
            pct = "" if r.glute_first_pct is None else f"{r.glute_first_pct:.0f}%"
            if r.corrected:
                pct += f" ({r.corrected} corrected)"
            cells = [
                r.date,
                r.athlete,
                r.session,
                r.exercise,
                dur,
                "" if r.reps is None else f"{r.reps} live",
                pct,
                r.path.name + (" (example)" if locations.is_example(r.path) else ""),
            ]
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QtWidgets.QTableWidgetItem(text))
            if r.reps is not None:
                for j in (REPS_COL, PCT_COL):
                    cell = self.table.item(i, j)
                    if cell is not None:
                        cell.setToolTip(
                            "live: the session's own feedback (its sidecar); the counts on "
                            "review (as the opened recording shows them) follow once read"
                        )
        self.table.resizeColumnsToContents()
        self._job += 1
        self.review.clear()
        if self.isVisible():
            self._read_reviews()

    def showEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)  # type: ignore[arg-type]
        if self._read_job != self._job:
            self._read_reviews()

    @property
    def busy(self) -> bool:
        """True while the listed recordings' reviews are still to be read."""
        return len(self.review) < sum(r.reps is not None for r in self.rows)

    def _read_reviews(self) -> None:
        """Read the reviews on a worker (a long history is analysed once, then cached)."""
        self._read_job = job = self._job
        paths = [r.path for r in self.rows if r.reps is not None]
        gone = self._gone

        def work() -> None:
            from devices.session.progress import review_counts

            for path in paths:
                if gone.is_set() or sip.isdeleted(self) or job != self._job:
                    return
                try:
                    counts = review_counts(path)
                except (OSError, ValueError) as exc:  # the row keeps its live counts
                    log.info("review of %s not read: %s", path, exc)
                    continue
                if not gone.is_set() and not sip.isdeleted(self):
                    self.reviewed.emit((job, path, counts))

        threading.Thread(target=work, name=REVIEW_THREAD, daemon=True).start()

    def _reviewed(self, payload: tuple[int, Path, ReviewCounts]) -> None:
        job, path, rev = payload
        if job != self._job:
            return  # a listing refreshed since: its rows are other rows
        self.review[path] = rev
        for i, r in enumerate(self.rows):
            if r.path == path:
                self._show_review(i, r, rev)
        self.table.resizeColumnsToContents()

    def _show_review(self, i: int, r: SessionRow, rev: ReviewCounts) -> None:
        pct = rev.glute_first_pct
        live_pct = r.glute_first_pct
        reps = str(rev.reps) + (f" ({r.reps} live)" if r.reps != rev.reps else "")
        text = "" if pct is None else f"{pct:.0f}%"
        if live_pct is not None and (pct is None or round(pct) != round(live_pct)):
            text += f" ({live_pct:.0f}% live)"
        if r.corrected:
            text += f" ({r.corrected} corrected)"
        tip = (
            f"On review (as the opened recording and the progress view count them): {rev.reps} "
            f"reps: {_verdicts(rev.counts)}."
        )
        if rev.why_undetermined:
            tip += "\nUndetermined: " + "; ".join(rev.why_undetermined) + "."
        if r.reps != rev.reps or reps != str(rev.reps) or "live" in text:
            tip += (
                f"\nLive (the session's own feedback, in its sidecar): {r.reps} reps"
                + (f", {live_pct:.0f}% glute first" if live_pct is not None else "")
                + ". The review reads the file alone, so at its ends a rep can count in one "
                "and not the other: one already under way when the recording began has no "
                "onset in the file (undetermined on review)."
            )
        for j, shown in ((REPS_COL, reps), (PCT_COL, text)):
            cell = QtWidgets.QTableWidgetItem(shown)
            cell.setToolTip(tip)
            self.table.setItem(i, j, cell)

    def _open(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.rows):
            self.open_requested.emit(str(self.rows[row].path))
