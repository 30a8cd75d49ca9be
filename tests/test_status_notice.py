"""A recording opened without its sidecar says so in the status bar in words that fit: the
notice was 150 characters ("X has no sidecar: opened read-only from its BDF+ annotations;
notes and corrections are kept in /a/long/path") and the bar showed its first 65."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil
from pathlib import Path

from PyQt6 import QtCore

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from devices.files.sidecar import ReviewStore

DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo_glute_first.bdf"


def test_the_no_sidecar_notice_fits_the_status_bar(qtbot, tmp_path: Path) -> None:
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    bdf = tmp_path / "a_long_recording_name_from_another_lab_2026-12-02.bdf"
    shutil.copy(DEMO, bdf)  # (its sidecar left behind)
    win = MainWindow(store, autostart=False, threaded=False)
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    qtbot.waitExposed(win)
    panel = win.source_panel
    panel.kind.setCurrentText("file")
    panel.file_path.clear()
    qtbot.keyClicks(panel.file_path, str(bdf))
    panel.start_btn.click()  # the user's Start
    bar = win.statusBar()
    assert bar is not None
    shown = bar.currentMessage()
    assert "no sidecar" in shown and "data folder" in shown, shown
    # drawn whole left of the first permanent field (or cut with a visible "…")
    first_field = min(label.geometry().left() for label in win.status_labels.values())
    assert bar.fontMetrics().horizontalAdvance(shown) < first_field, (shown, first_field)
    # the whole notice, the copy's path with it, is the tooltip while the message shows
    full = ReviewStore(bdf).notice
    assert full is not None and bar.toolTip() == full and str(ReviewStore(bdf).path) in full
    win._say("something else", 1000)
    assert bar.toolTip() == ""  # (it explained the notice, not what came after)
