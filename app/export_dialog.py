"""Export a report from the window: analysis + HTML on a worker thread, with a progress bar."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PyQt6 import QtCore, QtWidgets

if TYPE_CHECKING:  # imported lazily at run time, like the rest of the analysis stack
    from dsp.settings import DspSettings

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
        settings: DspSettings,
        meta: dict[str, str],
    ) -> None:
        super().__init__()
        self.source_path, self.out, self.channels = source_path, out, channels
        self.settings, self.meta = settings, meta

    def start(self) -> None:
        threading.Thread(target=self._run, name="report", daemon=True).start()

    def _run(self) -> None:
        from app.commands.common import load_mapped, source_of
        from app.report import rep_table_csv, write_report
        from dsp.analysis import analyze

        try:
            spec = ",".join(f"{r}={c}" for r, c in self.channels.items()) if self.channels else None
            rec, data, info = load_mapped(self.source_path, spec)
            result = analyze(
                data,
                info,
                self.settings,
                progress=lambda f: self.progress.emit(int(80 * f)),
            )
            doc = result.to_dict(source_of(rec, self.source_path))
            write_report(
                doc,
                data,
                info,
                self.out,
                meta=self.meta,
                progress=lambda f: self.progress.emit(80 + int(20 * f)),
            )
            rep_table_csv(doc, str(Path(self.out).with_suffix(".csv")))
        except Exception as exc:  # reported in the window, never raised into Qt
            log.warning("report failed: %s", exc)
            self.finished.emit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        self.progress.emit(100)
        self.finished.emit("")


def export_report(
    window: QtWidgets.QMainWindow,
    source_path: str,
    channels: dict[str, str] | None,
    settings: DspSettings,
    meta: dict[str, str],
    out: str | None = None,
) -> ReportExporter | None:
    """Ask where to save (unless ``out``), then export with a progress dialog."""
    if out is None:
        default = str(Path(source_path).with_suffix(".html"))
        out, _ = QtWidgets.QFileDialog.getSaveFileName(
            window, "Save report", default, "HTML report (*.html)"
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
        dialog.close()
        bar = window.statusBar()
        if bar is not None:
            bar.showMessage(
                f"report not written: {error}" if error else f"report saved: {out}", 10000
            )

    job.finished.connect(
        done,
        QtCore.Qt.ConnectionType.QueuedConnection,  # type: ignore[call-arg]
    )
    job.start()
    return job
