"""Export a report from the window: analysis + HTML on a worker thread, with a progress bar."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from PyQt6 import QtCore, QtWidgets, sip

from dsp.settings import DspSettings, SettingsSchedule

log = logging.getLogger(__name__)


class ReportExporter(QtCore.QObject):
    """Runs analyze + write_report (and the rep CSV) off the GUI thread."""

    progress = QtCore.pyqtSignal(int)  # 0..100
    finished = QtCore.pyqtSignal(str)  # "" on success, else the one-line error

    def __init__(
        self,
        source_path: str,
        out: str,
        channels: dict[str, str] | None,
        settings: DspSettings | SettingsSchedule,
        meta: dict[str, str],
    ) -> None:
        super().__init__()
        self.source_path, self.out, self.channels = source_path, out, channels
        self.meta = meta
        # a recording's own schedule (its settings and each change), or settings throughout
        if isinstance(settings, SettingsSchedule):
            self.settings, self.changes = settings.start, settings.changes
        else:
            self.settings, self.changes = settings, ()

    def start(self) -> None:
        threading.Thread(target=self._run, name="report", daemon=True).start()

    def _run(self) -> None:
        from app.report import header_meta, rep_table_csv, write_report
        from devices.files.mapping import load_mapped
        from devices.session.review_model import reviewed_document
        from dsp.analysis import analyze

        try:
            mapped = load_mapped(self.source_path, self.channels)
            data, info = mapped.data, mapped.info
            result = analyze(
                data,
                info,
                self.settings,
                progress=lambda f: self.progress.emit(int(80 * f)),
                changes=self.changes,
            )
            # the same reviewed reps as `fireorder report`: corrections and notes applied
            doc = reviewed_document(
                result.to_dict(mapped.source(self.source_path)),
                self.source_path,
                mapped.recording.annotations,
            )
            write_report(
                doc,
                data,
                info,
                self.out,
                # the recording's own athlete and session win: the window's athlete field is
                # for the live session, and may name someone else by now
                meta={**self.meta, **header_meta(self.source_path, mapped.recording.start_time)},
                progress=lambda f: self.progress.emit(80 + int(20 * f)),
            )
            rep_table_csv(doc, str(Path(self.out).with_suffix(".csv")))
        except Exception as exc:  # reported in the window, never raised into Qt
            log.warning("report failed: %s", exc)
            self.finished.emit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        self.progress.emit(100)
        self.finished.emit("")


def default_report_path(source_path: str, last_dir: str | None = None) -> Path:
    """In the folder the last report went to (``last_dir``, if it is still there); else beside
    the recording when its folder is the user's; the shipped examples and read-only folders
    get their reports in the data folder (tracked files stay untouched)."""
    from devices.files import locations

    src = Path(source_path)
    if last_dir and Path(last_dir).is_dir() and os.access(last_dir, os.W_OK):
        return Path(last_dir) / src.with_suffix(".html").name
    if locations.is_example(src) or not os.access(src.parent, os.W_OK):
        folder = locations.data_dir() / "reports"
        with contextlib.suppress(OSError):  # if it cannot be made, the dialog shows why
            folder.mkdir(parents=True, exist_ok=True)
        return folder / src.with_suffix(".html").name
    return src.with_suffix(".html")


def export_report(
    window: QtWidgets.QMainWindow,
    source_path: str,
    channels: dict[str, str] | None,
    settings: DspSettings | SettingsSchedule,
    meta: dict[str, str],
    out: str | None = None,
    last_dir: str | None = None,
    saved_to: Callable[[str], None] | None = None,
    caption: str = "Save report",
) -> ReportExporter | None:
    """Ask where to save (unless ``out``; offered in ``last_dir``, see default_report_path),
    then export with a progress dialog; ``saved_to`` hears the folder of a report written."""
    if out is None:
        default = str(default_report_path(source_path, last_dir))
        out, _ = QtWidgets.QFileDialog.getSaveFileName(
            window, caption, default, "HTML report (*.html)"
        )
        if not out:
            return None
    dialog = QtWidgets.QProgressDialog("Analysing and writing the report…", None, 0, 100, window)
    dialog.setWindowTitle("Export report")
    dialog.setMinimumDuration(300)
    job = ReportExporter(source_path, out, channels, settings, meta)
    # PyQt6's QtCore.pyi declares pyqtBoundSignal.connect(slot) only, but the runtime takes the
    # connection type too (connect(slot, type=...)): the ignores below are for that stub gap.
    # Queued, because the worker emits from a Python thread.
    job.progress.connect(
        dialog.setValue,
        QtCore.Qt.ConnectionType.QueuedConnection,  # type: ignore[call-arg]
    )

    def done(error: str) -> None:
        if sip.isdeleted(window) or sip.isdeleted(dialog):
            # the window was closed while the report was written: nobody to tell
            log.info("report %s: %s", out, error or "saved")
            return
        dialog.close()
        bar = window.statusBar()
        if bar is not None:
            # the names in view (a whole path was cut in the middle: "d…ep table"), the
            # folder in the tooltip
            html, csv_name = Path(out).name, Path(out).with_suffix(".csv").name
            text = f"report not written: {error}" if error else f"report saved: {html}, {csv_name}"
            full = (
                f"report not written: {error}"
                if error
                else (f"report saved: {out}; its rep table: {Path(out).with_suffix('.csv')}")
            )
            say = getattr(window, "_say", None)
            if callable(say):
                say(text, 10000, full)
            else:
                bar.showMessage(text, 10000)
        if not error and saved_to is not None:
            saved_to(str(Path(out).parent))

    job.finished.connect(
        done,
        QtCore.Qt.ConnectionType.QueuedConnection,  # type: ignore[call-arg]
    )
    job.start()
    return job
