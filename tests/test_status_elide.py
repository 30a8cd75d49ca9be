"""Every status-bar message fits beside the permanent fields: "saved /tmp/…/2026-12-02_042659_
Sam_|device: streaming" was clipped by the first field, the file's name (what the user looks
for) the part lost. A message too wide is elided in the middle, its whole text the tooltip."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

from PyQt6 import QtCore, QtWidgets
from PyQt6.QtTest import QTest

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice

SIM = SourceChoice("simulator", {"fs": 2000.0, "preset": "clean", "seed": 11})


def _fits(win: MainWindow, shown: str) -> None:
    bar = win.statusBar()
    assert bar is not None
    first_field = min(w.geometry().left() for w in win.status_labels.values() if w.isVisible())
    assert 6 + bar.fontMetrics().horizontalAdvance(shown) < first_field, (shown, first_field)


def test_a_long_saved_path_is_elided_in_the_middle(qtbot, tmp_path: Path) -> None:
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    # (longer than the whole bar: the fields that step aside for a message make no room)
    deep = (
        tmp_path
        / "a_lab_folder_with_a_long_name"
        / "recordings_of_the_spring_block"
        / "athletes_of_the_first_team_and_their_coaches_for_the_whole_of_the_season"
    )
    deep.mkdir(parents=True)
    win = MainWindow(store, source=SIM, threaded=False, recordings_dir=str(deep))
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    win.activateWindow()
    assert QTest.qWaitForWindowActive(win, 5000)
    win.source_panel.athlete.setText("Samantha")
    assert win.ctl is not None
    for _ in range(4):
        win.ctl.session.pump(0.25)
        win.refresh()
    ctrl = QtCore.Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(win, QtCore.Qt.Key.Key_R, ctrl)  # Session ▸ Record
    assert win.recorder is not None
    path = str(win.recorder.path)
    for _ in range(4):
        win.ctl.session.pump(0.25)
        win.refresh()
    qtbot.keyClick(win, QtCore.Qt.Key.Key_R, ctrl)  # and stop: "saved <path>"
    bar = win.statusBar()
    assert bar is not None
    qtbot.waitUntil(lambda: bar.toolTip() == f"saved {path}", timeout=10000)
    shown = bar.currentMessage()
    assert shown != f"saved {path}" and "…" in shown, shown
    assert shown.startswith("saved /") and shown.endswith(".bdf"), shown  # both ends kept
    _fits(win, shown)
    # any caller's showMessage, not only the window's own: cut the same way
    bar.showMessage("report saved: " + "/x" * 200 + "/report.html", 5000)
    assert bar.currentMessage().endswith("report.html") and "…" in bar.currentMessage()
    _fits(win, bar.currentMessage())
    assert bar.toolTip().startswith("report saved: /x/x")
    bar.showMessage("short", 1000)
    assert bar.currentMessage() == "short" and bar.toolTip() == ""
    # a narrower window cuts an earlier message again rather than letting the field clip it
    bar.showMessage("saved " + path, 0)
    win.resize(1000, 740)
    QtWidgets.QApplication.processEvents()
    _fits(win, bar.currentMessage())
    assert bar.toolTip() == f"saved {path}"


def test_the_rate_field_says_a_replays_speed_and_what_it_keeps_up_with() -> None:
    from app.main_window import rate_text

    assert rate_text(1987.6, 2000.0, replay=False) == "1,988 Hz"  # a device: as measured
    assert rate_text(0.0, 2000.0, replay=False) == "2,000 Hz"  # (not measured yet)
    assert rate_text(8000.0, 2000.0, replay=True, speed=4.0) == "2,000 Hz ×4"
    assert rate_text(2000.0, 2000.0, replay=True, speed=1.0) == "2,000 Hz"
    # a machine that cannot keep up says how fast the file really plays
    assert rate_text(3000.0, 2000.0, replay=True, speed=4.0) == "2,000 Hz ×1.5"
    assert rate_text(5e6, 2000.0, replay=True, speed=None) == "2,000 Hz ×fast"


def test_fields_step_aside_while_a_message_needs_their_room(
    qtbot, tmp_path: Path, monkeypatch
) -> None:
    """Found by a newcomer: in a window narrower than the fields, "report saved: …" showed as
    "…" alone. A timed message that does not fit beside the fields has the least needed of
    them step aside while it shows; they are back once it has gone."""
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    win = MainWindow(store, source=SIM, threaded=False)
    qtbot.addWidget(win)
    win.resize(1000, 740)
    win.show()
    assert QTest.qWaitForWindowExposed(win)
    assert win.ctl is not None
    for _ in range(4):
        win.ctl.session.pump(0.25)
        win.refresh()
    bar = win.statusBar()
    assert bar is not None
    text = "report saved: 2026-12-03_141347_hinge.html, 2026-12-03_141347_hinge.csv"
    assert bar.room() < bar.fontMetrics().horizontalAdvance(text)  # (it would not fit)
    win._say(text, 400)
    assert bar.currentMessage() == text  # whole
    hidden = [k for k, w in win.status_labels.items() if not w.isVisible()]
    aside = ("audio", "fps", "buffer", "latency", "dropped", "rate")  # the least needed first
    assert hidden and set(hidden) == set(aside[: len(hidden)]), hidden
    _fits(win, text)
    qtbot.waitUntil(lambda: bar.currentMessage() == "", timeout=5000)
    assert all(w.isVisible() for w in win.status_labels.values())  # back
    # a message until the next one has them step aside for a while, then cut to the room
    from app import status_bar

    monkeypatch.setattr(status_bar, "ASIDE_MS", 300)
    win._say(text)
    assert bar.currentMessage() == text and not win.status_labels["audio"].isVisible()
    qtbot.waitUntil(win.status_labels["audio"].isVisible, timeout=5000)
    assert all(w.isVisible() for w in win.status_labels.values())
    assert bar.currentMessage() != text and bar.toolTip() == text  # cut; whole in the tooltip
    _fits(win, bar.currentMessage())
