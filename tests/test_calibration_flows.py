"""The calibration and signal-check flows a newcomer drove into (real window, offscreen Qt).

Everything goes through what the user does: Start and Connect buttons, Ctrl+K, the wizard's
buttons and the stored-calibration question answered. Found: a demo file asked "Use the stored
calibrated: Sam, ...?" while it played on behind the question, and Use then said "not used"
in a clipped line; Ctrl+K on a connected source led to "start the stream" inside a modal
wizard; the signal check kept a stopped run's green "good" rows after Connect; reps done
during the calibration's steps counted in the session's tally.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import datetime
from pathlib import Path
from typing import Any

from PyQt6 import QtCore, QtGui, QtWidgets
from PyQt6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.calibration import CalibrationWizard, Phase
from app.calibration_badge import NO_CALIBRATION
from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.signal_check import STALE_GREY, STALE_TEXT
from app.source_panel import SourceChoice
from devices.session.calibration import BASELINE_KEYS, setup_of

LEFT = QtCore.Qt.MouseButton.LeftButton
NEXT = QtWidgets.QWizard.WizardButton.NextButton
CANCEL = QtWidgets.QWizard.WizardButton.CancelButton
ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_lumbar_first.bdf"  # its sidecar names the athlete "demo"
BUSY = {"fs": 2000.0, "preset": "clean", "seed": 3, "lead_in_s": 0.5, "rep_period_s": 2.0}
SIM = SourceChoice("simulator", BUSY)
FILE = SourceChoice("file", {"path": str(DEMO)})


def window(qtbot: QtBot, store: SettingsStore) -> MainWindow:
    win = MainWindow(store, source=SIM, threaded=False, autostart=False)
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()  # (the shortcuts go to the active window)
    assert QTest.qWaitForWindowActive(win, 5000)
    return win


def plant(win: MainWindow, store: SettingsStore, athlete: str, **dsp: Any) -> None:
    """A fresh calibration of ``athlete`` made on the window's current source (as the wizard
    stores one), with ``dsp`` settings changed from the window's."""
    assert win.ctl is not None and win.ctl.info is not None
    info = win.ctl.info
    settings = {k: getattr(win.settings, k) for k in BASELINE_KEYS}
    cal = {
        "version": 1,
        "athlete": athlete,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **setup_of(info),
        "fs": info.fs,
        "dsp": {**settings, **dsp},
        "rest": {"seconds": 5.0, "baseline": {"mean": [5.0] * 4, "sd": [1.0] * 4}},
        "reference": None,
    }
    store.save_calibration(athlete, cal)


def click(widget: QtWidgets.QWidget | None) -> None:
    assert widget is not None
    QTest.mouseClick(widget, LEFT)


def open_as(win: MainWindow, athlete: str, button: str = "start") -> None:
    """The athlete typed into the source panel, then Start (or Connect) pressed."""
    panel = win.source_panel
    panel.athlete.setText(athlete)
    click(panel.start_btn if button == "start" else panel.connect_btn)


def offer(win: MainWindow) -> QtWidgets.QMessageBox | None:
    box = win.findChild(QtWidgets.QMessageBox, "calibration_offer")
    return box if box is not None and box.isVisible() else None


def status(win: MainWindow) -> QtWidgets.QStatusBar:
    bar = win.statusBar()
    assert bar is not None
    return bar


# -- 1. the stored-calibration question --------------------------------------------------------
def test_another_athletes_recording_is_not_offered_the_calibration(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    win.connect_source(FILE)
    plant(win, store, "Sam")  # fits the file's channels and settings: only the owner differs
    win.disconnect_source()
    win.source_panel.file_path.setText(str(DEMO))
    open_as(win, "Sam")
    assert win.ctl is not None and win.ctl.replay is not None
    assert offer(win) is None  # the demo file is "demo"'s, not Sam's
    assert win.calibration_badge.label.text() == NO_CALIBRATION
    assert "recording is demo's" in win.calibration_badge.toolTip()
    assert not win.ctl.replay.paused  # nothing to wait for: it plays


def test_the_athlete_field_names_whose_session_is_open(
    qtbot: QtBot, store: SettingsStore, tmp_path: Path
) -> None:
    """Found by a newcomer: "Sam" typed live still named the demo's replay (the recording is
    "demo"'s), and a recording of no named athlete was offered Sam's calibration."""
    from app.cli import main

    win = window(qtbot, store)
    open_as(win, "Sam")  # live, on the simulator
    assert win.ctl is not None and win.ctl.replay is None
    plant(win, store, "Sam")
    win.stop()
    win.source_panel.kind.setCurrentText("file")
    win.source_panel.file_path.setText(str(DEMO))
    click(win.source_panel.start_btn)
    assert win.ctl is not None and win.ctl.replay is not None
    assert win.source_panel.athlete.text() == "demo"
    # a recording that names nobody: no one's calibration, and the badge says why
    unnamed = tmp_path / "unnamed.bdf"
    argv = ["record", "--source", "simulator", "--fast", "--duration", "4", "--out"]
    assert main([*argv, str(unnamed)]) == 0
    win.source_panel.file_path.setText(str(unnamed))
    click(win.source_panel.start_btn)  # (another file picked: Start opens it)
    assert win.ctl is not None and win.ctl.replay is not None
    assert win.ctl.replay.path == str(unnamed)
    assert win.source_panel.athlete.text() == ""
    assert offer(win) is None and win.ctl.calibration is None
    assert "Sam's calibration not offered" in win.calibration_badge.toolTip()
    # back to the simulator: Sam's session again
    win.source_panel.kind.setCurrentText("simulator")
    click(win.source_panel.start_btn)
    assert win.ctl is not None and win.ctl.replay is None
    assert win.source_panel.athlete.text() == "Sam"


def test_a_fitting_calibration_is_offered_to_a_replay_never_applied_unasked(
    qtbot: QtBot, store: SettingsStore, tmp_path: Path
) -> None:
    """Found by a newcomer: a replay of the athlete's recording applied their stored
    calibration unasked ("calibration of alex reused"), and its reps differed from the
    file's table, Sessions, `analyze` and report (rep 1: -21 ms undetermined there, +4 ms
    simultaneous in the replay)."""
    from app.cli import main

    bdf = tmp_path / "alex.bdf"
    argv = ["record", "--source", "simulator", "--fast", "--duration", "6", "--athlete", "alex"]
    assert main([*argv, "--out", str(bdf)]) == 0
    win = window(qtbot, store)
    choice = SourceChoice("file", {"path": str(bdf)})
    win.connect_source(choice)
    assert win.ctl is not None
    setup = win._recorded_setup(win.ctl)
    assert setup is not None and setup[1] is not None
    plant(win, store, "alex")
    cal = store.load_calibration("alex")
    assert cal is not None
    # made on the recording's own source an hour before it: nothing against it
    cal["source"] = setup[0]
    cal["created"] = (setup[1] - datetime.timedelta(hours=1)).isoformat(timespec="seconds")
    store.save_calibration("alex", cal)
    win.disconnect_source()
    win.source_panel.kind.setCurrentText("file")
    win.source_panel.file_path.setText(str(bdf))
    click(win.source_panel.start_btn)
    box = offer(win)
    assert box is not None and "analysed without it" in box.informativeText()
    assert win.ctl is not None and win.ctl.calibration is None  # (not before an answer)
    QTest.keyClick(box, QtCore.Qt.Key.Key_Return)  # the default: Don't use
    assert offer(win) is None and win.ctl.calibration is None
    assert win.calibration_badge.label.text() == NO_CALIBRATION


def test_the_replay_waits_while_the_question_is_open_and_goes_on_after(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    win.connect_source(FILE)
    plant(win, store, "demo")
    cal = store.load_calibration("demo")
    assert cal is not None  # made on the file source: a fresh one would be applied unasked
    cal["source"] = "simulator (clean)"
    store.save_calibration("demo", cal)
    win.disconnect_source()
    win.source_panel.file_path.setText(str(DEMO))
    open_as(win, "demo")
    box = offer(win)
    assert box is not None
    made = datetime.datetime.fromisoformat(cal["created"]).astimezone()
    assert box.text() == f"Use demo's calibration of {made:%d %b %H:%M}?"
    ctl = win.ctl
    assert ctl is not None and ctl.replay is not None
    assert ctl.replay.paused and win.replay_bar.play_btn.text() == "Play"
    at = ctl.replay.position
    ctl.session.pump(0.5)
    win.refresh()
    assert ctl.replay.position == at  # nothing played behind the question
    click(next(b for b in box.buttons() if b.text() == "Use"))
    assert not ctl.replay.paused and win.replay_bar.play_btn.text() == "Pause"
    assert win.calibration_badge.label.text().startswith("calibrated: demo, ")
    ctl.session.pump(0.5)
    assert ctl.replay.position > at


def test_a_calibration_that_cannot_be_applied_is_not_offered_and_says_so_short(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    win.connect_source(SIM)
    plant(win, store, "Sam", bandpass_low_hz=win.settings.bandpass_low_hz + 10.0)
    open_as(win, "Sam", "connect")
    assert offer(win) is None
    bar = status(win)
    assert bar.currentMessage() == "Sam's calibration not used: settings changed since"
    from app.status_bar import StatusBar

    assert isinstance(bar, StatusBar)
    assert 0 < bar.fontMetrics().horizontalAdvance(bar.currentMessage()) <= bar.room()  # fits
    assert "bandpass_low_hz" in bar.toolTip() and "calibrate again" in bar.toolTip()
    assert win.calibration_badge.label.text() == NO_CALIBRATION
    session = win.session
    assert session is not None and session.pipeline is not None
    assert session.pipeline.baseline.calibrated is None


# -- 2. Ctrl+K on a source that does not stream ---------------------------------------------------
def test_ctrl_k_on_a_connected_source_starts_the_stream_the_wizard_needs(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    click(win.source_panel.connect_btn)
    assert win.ctl is not None and win.ctl.state == "open"
    QTest.keyClick(win, QtCore.Qt.Key.Key_K, QtCore.Qt.KeyboardModifier.ControlModifier)
    wiz = win.findChild(CalibrationWizard)
    assert wiz is not None and wiz.isVisible()
    assert wiz.session.state == "streaming"
    assert wiz.intro_page.note.text() == "The stream was started for the calibration."
    assert status(win).currentMessage() == "stream started for the calibration"
    wiz.countdown_s, wiz.rest_s = 0, 1.0
    click(wiz.button(NEXT))
    click(wiz.findChild(QtWidgets.QPushButton, "rest_start"))
    assert wiz.rest_page.phase == Phase.RECORDING  # not "The device is not streaming"
    wiz.session.pump(1.5)
    qtbot.waitUntil(lambda: wiz.rest_page.phase in (Phase.DONE, Phase.REJECTED), timeout=5000)


# -- 3. the signal check after Stop -------------------------------------------------------------
def test_a_stopped_runs_signal_check_is_greyed_as_not_live(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    click(win.source_panel.start_btn)
    assert win.session is not None
    for _ in range(8):
        win.session.pump(0.25)
        win.refresh()
    qtbot.wait(1100)  # the window refreshes its signal check once a second
    win.refresh()
    panel = win.signal_check
    assert panel.table.rowCount() == 4 and not panel.stale_label.isVisible()
    assert panel.table.item(0, 2).text() == "good"  # type: ignore[union-attr]
    click(win.source_panel.stop_btn)
    qtbot.wait(1100)
    click(win.source_panel.connect_btn)  # connected again, not streaming
    win.refresh()
    assert panel.stale_label.isVisible() and panel.stale_label.text() == STALE_TEXT
    for row in range(panel.table.rowCount()):
        for col in range(panel.table.columnCount()):
            item = panel.table.item(row, col)
            assert item is not None
            assert item.foreground().color() == QtGui.QColor(STALE_GREY), (row, col)
            assert item.toolTip().startswith(STALE_TEXT)
    click(win.source_panel.start_btn)  # live again: live figures, in colour
    for _ in range(8):
        win.session.pump(0.25)
        win.refresh()
    qtbot.wait(1100)
    win.refresh()
    assert not panel.stale_label.isVisible()
    assert panel.table.item(0, 2).foreground().color() != QtGui.QColor(STALE_GREY)  # type: ignore[union-attr]


# -- 4. reps during the calibration -------------------------------------------------------------
def test_reps_during_the_calibration_wizard_are_left_out_of_the_tally(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    click(win.source_panel.start_btn)
    session = win.session
    assert session is not None
    for _ in range(13):  # 6.5 s: reps at 0.5, 2.5, 4.5 s
        session.pump(0.5)
        win.refresh()
    before = win.tally.count
    assert before >= 2
    assert win.ctl is not None
    lo = win.ctl.position
    win.act_calibrate.trigger()
    wiz = win.findChild(CalibrationWizard)
    assert wiz is not None
    for _ in range(12):  # 6 s on the intro page: the simulated athlete does reps
        session.pump(0.5)
        win.refresh()
    assert win.tally.count >= before + 2  # counted while the wizard is open...
    hi = win.ctl.position
    click(wiz.button(CANCEL))
    assert win.tally.count == before  # ...and left out when it closes
    assert win.order_panel.tally is win.tally
    assert "left out of the tally" in status(win).currentMessage()
    for _ in range(10):  # a rep that began in the wizard may end now: still out
        session.pump(0.5)
        win.refresh()
    assert win.tally.count >= before + 1  # reps after the wizard count again
    assert not any(lo <= r.start <= hi for r in win.tally.reps)


def test_a_replay_is_offered_a_later_calibration_by_what_differs_and_return_declines(
    qtbot: QtBot, store: SettingsStore
) -> None:
    """Found by a newcomer: replaying a simulator recording after calibrating its athlete on
    the simulator, the question said "it was made on another source (simulator)" (the file
    was compared, not the recording's source), and Return applied a calibration made after
    the recording, changing what the replay judged from what the session saw."""
    win = window(qtbot, store)
    win.connect_source(SIM)
    plant(win, store, "demo")  # made now, on the simulator: the demo was recorded on one
    win.disconnect_source()
    win.source_panel.kind.setCurrentText("file")
    win.source_panel.file_path.setText(str(DEMO))
    open_as(win, "demo")
    box = offer(win)
    assert box is not None
    why = box.informativeText()
    assert "another source" not in why, why
    assert "made after this recording began" in why, why
    QTest.keyClick(box, QtCore.Qt.Key.Key_Return)
    assert offer(win) is None
    assert win.calibration_badge.label.text() == NO_CALIBRATION
    assert win.ctl is not None and win.ctl.calibration is None
