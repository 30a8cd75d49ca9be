"""Start the desktop application (``fireorder`` with no arguments, ``make run``)."""

from __future__ import annotations

import sys


def run_gui(argv: list[str] | None = None, review: str | None = None) -> int:
    """The window on the built-in simulator, or reviewing the recording ``review``."""
    from PyQt6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(argv or sys.argv)
    app.setOrganizationName("fireorder")
    app.setApplicationName("fireorder")
    from app.main_window import MainWindow

    if review is None:
        window = MainWindow()
    else:
        window = MainWindow(autostart=False)
        window.open_recording(review)
    window.show()
    code = int(app.exec())
    window.close()  # stops the acquisition thread before Qt goes away
    return code
