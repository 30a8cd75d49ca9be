"""Start the desktop application (``fireorder`` with no arguments, ``make run``)."""

from __future__ import annotations

import sys


def run_gui(argv: list[str] | None = None) -> int:
    from PyQt6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(argv or sys.argv)
    app.setOrganizationName("fireorder")
    app.setApplicationName("fireorder")
    from app.main_window import MainWindow

    window = MainWindow()
    window.show()
    code = int(app.exec())
    window.close()  # stops the acquisition thread before Qt goes away
    return code
