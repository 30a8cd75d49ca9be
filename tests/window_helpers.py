"""What the window tests share: demo recordings copied out of the checkout, pumping a window's
session without its timers, and answering a modal file dialog as a user would."""

from __future__ import annotations

import shutil
from pathlib import Path

from PyQt6 import QtCore, QtWidgets
from PyQt6.QtTest import QTest

from app.main_window import MainWindow

DEMOS = Path(__file__).resolve().parents[1] / "recordings"
DEMO = DEMOS / "demo_glute_first.bdf"


def demo_copy(tmp_path: Path, name: str = DEMO.name, as_name: str = "") -> Path:
    """A shipped demo recording copied (with its sidecar) to ``tmp_path``: the tests open,
    correct and export it without touching the checkout."""
    src = DEMOS / name
    dst = tmp_path / (as_name or name)
    shutil.copy(src, dst)
    shutil.copy(src.with_name(src.name + ".json"), dst.with_name(dst.name + ".json"))
    return dst


def pump(win: MainWindow, seconds: float, step: float = 0.25, housekeeping: bool = False) -> None:
    """Run the window's (unthreaded) session ``seconds`` of stream in ``step``s, refreshing
    the window after each; ``housekeeping`` runs its 4 Hz part (slider, clock) every time."""
    assert win.session is not None
    for _ in range(round(seconds / step)):
        win.session.pump(step)
        if housekeeping:
            win._last_status = 0.0
        win.refresh()


def answer_file_dialog(path: Path) -> list[str]:
    """Put ``path`` into the next file dialog (open or save) and press Enter. The dialog is
    modal and runs its own event loop: this waits for it from a timer. Returns the titles of
    the dialogs answered. (The text is set rather than typed: typing opens the path
    completer's popup, which would take the Enter meant for the dialog; the Xvfb test types.)"""
    seen: list[str] = []

    def fill() -> None:
        dlg = QtWidgets.QApplication.activeModalWidget()
        if not isinstance(dlg, QtWidgets.QFileDialog):
            QtCore.QTimer.singleShot(50, fill)
            return
        seen.append(dlg.windowTitle())
        edit = dlg.findChild(QtWidgets.QLineEdit, "fileNameEdit")
        assert edit is not None
        edit.setText(str(path))
        QTest.keyClick(edit, QtCore.Qt.Key.Key_Return)

    QtCore.QTimer.singleShot(50, fill)
    return seen
