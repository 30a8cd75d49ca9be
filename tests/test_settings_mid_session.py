"""Settings ▸ OK in the middle of a live set (a newcomer's pass, issue new9_31..34): one
session keeps one numbering and one tally, the rep under way is not lost, and the
calibration badge says when the calibration no longer applies."""

from __future__ import annotations

import itertools
import json
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest
from PyQt6 import QtCore, QtWidgets
from PyQt6.QtTest import QTest
from pytestqt.qtbot import QtBot

import devices.session.controller as controller_mod
from app.calibration import CalibrationWizard, Phase
from app.calibration_badge import VOID_CALIBRATION
from app.main_window import MainWindow
from app.settings_dialog import SettingsDialog
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from devices.drivers.simulator import SimulatorDevice
from devices.session.controller import SessionController
from dsp.contract import Role

LEFT = QtCore.Qt.MouseButton.LeftButton
FS = 2000.0
SIM = SourceChoice("simulator", {"fs": FS, "preset": "clean", "seed": 11})


def run_for(win: MainWindow, seconds: float, step: float = 0.25) -> None:
    assert win.session is not None
    for _ in range(round(seconds / step)):
        win.session.pump(step)
        win.refresh()


def window(qtbot: QtBot, store: SettingsStore) -> MainWindow:
    win = MainWindow(store, source=SIM, threaded=False)
    qtbot.addWidget(win)
    win.show()
    win.source_panel.athlete.setText("sam")
    return win


def calibrate(qtbot: QtBot, win: MainWindow) -> None:
    """Session ▸ Calibrate…: the rest recorded, the reference skipped, Finish."""
    session = win.session
    assert session is not None
    win.act_calibrate.trigger()
    wiz = win.findChild(CalibrationWizard)
    assert wiz is not None
    wiz.countdown_s, wiz.rest_s = 0, 2.0
    QTest.mouseClick(wiz.button(QtWidgets.QWizard.WizardButton.NextButton), LEFT)
    session.pump(1.0)  # (the simulated athlete relaxes when asked)
    start = wiz.findChild(QtWidgets.QPushButton, "rest_start")
    assert start is not None
    QTest.mouseClick(start, LEFT)
    session.pump(2.5)
    qtbot.waitUntil(lambda: wiz.rest_page.phase in (Phase.DONE, Phase.REJECTED), timeout=5000)
    assert wiz.rest_page.phase == Phase.DONE
    QTest.mouseClick(wiz.button(QtWidgets.QWizard.WizardButton.NextButton), LEFT)
    skip = wiz.findChild(QtWidgets.QCheckBox, "reference_skip")
    assert skip is not None
    QTest.mouseClick(skip, LEFT, pos=QtCore.QPoint(8, skip.height() // 2))
    QTest.mouseClick(wiz.button(QtWidgets.QWizard.WizardButton.NextButton), LEFT)
    with qtbot.waitSignal(wiz.calibration_done, timeout=5000):
        QTest.mouseClick(wiz.button(QtWidgets.QWizard.WizardButton.FinishButton), LEFT)


def change_filters(qtbot: QtBot, win: MainWindow) -> None:
    """Settings… (the menu's action), notch 60 Hz and band-pass low 30 Hz typed in, OK."""

    def answer() -> None:
        dlg = next(
            w
            for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, SettingsDialog) and w.isVisible()
        )
        dlg.notch_hz.setCurrentIndex(dlg.notch_hz.findData(60.0))
        dlg.bandpass_low_hz.selectAll()
        qtbot.keyClicks(dlg.bandpass_low_hz, "30")
        ok = dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        assert ok is not None
        qtbot.mouseClick(ok, LEFT)

    action = next(a for a in win.actions() if a.text() == "Settings…")
    QtCore.QTimer.singleShot(100, answer)
    action.trigger()
    # (the session's: in a replay the live settings are kept, see test_review_settings)
    dsp = win.ctl.settings if win.ctl is not None else win.settings
    assert dsp.notch_hz == 60.0 and dsp.bandpass_low_hz == 30.0


def numbers(win: MainWindow) -> list[int]:
    table = win.rep_table
    return [int(table.item(row, 0).text()) for row in range(table.rowCount())]  # type: ignore[union-attr]


def test_settings_changed_mid_set_keep_one_table_one_tally_and_say_the_calibration_is_void(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    calibrate(qtbot, win)
    badge = win.calibration_badge
    assert badge.label.text().startswith("calibrated: sam")
    run_for(win, 40.0)
    before = list(win.tally.reps)
    counts = dict(win.tally.session)
    assert len(before) >= 10
    change_filters(qtbot, win)
    # the badge says at once that the calibration is no longer used, and what to do
    assert badge.label.text() == VOID_CALIBRATION and "Ctrl+K" in badge.label.text()
    assert "notch_hz" in badge.toolTip() and not badge.clear_button.isVisible()
    assert win.ctl is not None and win.ctl.calibration is None
    for _ in range(8):  # the stream's rate stays a rate (the new pipeline counts afresh)
        time.sleep(0.26)  # (the window writes its status fields 4 times a second)
        run_for(win, 0.25)
        assert win.session is not None and win.session.stats.rate_hz >= 0
        assert not win.status_labels["rate"].text().startswith("-")
    run_for(win, 40.0)
    assert win.session is not None and win.session.pipeline is not None
    assert win.session.pipeline.settings.notch_hz == 60.0  # the change took effect
    reps = win.tally.reps
    # the reps before the change are still counted and listed, and the later ones follow
    assert {r.start for r in before} <= {r.start for r in reps}
    assert win.tally.count == len(reps) >= len(before) + 10
    assert all(win.tally.session[o] >= n for o, n in counts.items())
    # one numbering: row n of the table is rep n of the banner, the lag plot and the tally
    assert numbers(win) == [r.index + 1 for r in reps] == list(range(1, len(reps) + 1))
    # every rep the simulated athlete made is there: none lost at the change
    truth = win.session.device.truth()  # type: ignore[attr-defined]
    made = [rt for rt in truth.reps if rt.complete and rt.start_s < reps[-1].start / FS]
    missing = [
        rt.start_s for rt in made if not any(abs(r.start / FS - rt.start_s) < 0.15 for r in reps)
    ]
    assert len(made) >= 25 and not missing


def test_a_settings_change_mid_rep_waits_for_rest_and_keeps_the_rep(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    run_for(win, 20.0)
    session = win.session
    assert session is not None and session.pipeline is not None
    for _ in range(400):  # on until a rep is under way: two of its muscles have fired
        if (rep := session.pipeline.reps._rep) is not None and len(rep.onsets) >= 2:
            break
        session.pump(0.02)
        win.refresh()
    rep = session.pipeline.reps._rep
    assert rep is not None
    under_way, first = rep.index, rep.start
    change_filters(qtbot, win)
    run_for(win, 0.25)
    status = win.statusBar()
    assert status is not None
    assert f"new settings wait for rep {under_way + 1} to end" in status.currentMessage()
    run_for(win, 15.0)
    assert session.pipeline.settings.notch_hz == 60.0
    kept = [r for r in win.tally.reps if r.index == under_way]
    assert kept and abs(kept[0].start - first) < 0.1 * FS and kept[0].end is not None
    assert all(kept[0].onsets.get(role) is not None for role in Role)  # every onset
    assert numbers(win) == [r.index + 1 for r in win.tally.reps]


def test_a_rep_that_never_rests_is_told_lost_and_the_recording_keeps_every_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait is bounded: past it the rep under way is told lost (status line and the
    recording), never dropped silently; the recording's verdict counts keep the reps before
    the change (the session browser's "reps" and "glute first")."""
    monkeypatch.setattr(controller_mod, "SETTINGS_WAIT_S", 0.05)
    ctl = SessionController(
        SimulatorDevice(preset="clean", realtime=False, seed=4), recordings_dir=tmp_path
    )
    notices: list[str] = []
    ctl.on_notice = notices.append
    ctl.open()
    path = ctl.start_recording()
    ctl.start(threaded=False)
    ctl.pump(20.0)
    ctl.session.set_baseline(ctl.session.pipeline.baseline.estimate)  # type: ignore[union-attr]
    ctl.calibration_changed({"athlete": "sam"})
    ctl.pump(21.3)  # (mid-rep: a rep is under way at 41.3 s)
    rep = ctl.session.pipeline.reps._rep  # type: ignore[union-attr]
    assert rep is not None
    void = ctl.apply_settings(ctl.settings.with_(notch_hz=60.0, bandpass_low_hz=30.0))
    assert void is not None and "notch_hz" in void and "bandpass_low_hz" in void
    for _ in range(160):
        ctl.pump(0.25)
    summary = ctl.close()
    assert summary is not None
    assert f"rep {rep.index + 1} lost: settings changed mid-rep (no rest in 0.05 s)" in notices
    side = json.loads(path.with_name(path.name + ".json").read_text())
    assert sum(side["summary"]["verdicts"].values()) == ctl.tally.count >= 25
    assert side["calibration"] is None
    from devices.files import read_recording

    texts = [a.text for a in read_recording(path).annotations]
    assert f"rep {rep.index + 1} lost: settings changed mid-rep" in texts
    assert any(t.startswith("calibration void: filter settings changed") for t in texts)


def test_the_burst_just_after_a_settings_change_is_detected_at_once() -> None:
    """The new pipeline's filters and rest baseline are primed from the samples kept: a
    burst 60 ms after the change is a rep with its four onsets (a pipeline learning rest
    afresh missed it, and its first reps were judged on a provisional baseline)."""
    ctl = SessionController(SimulatorDevice(preset="clean", realtime=False, seed=4))
    finals: list = []
    ctl.on_rep_final = lambda e: finals.append(e.result)
    rejudged: list = []
    ctl.on_rejudged = rejudged.append
    ctl.open()
    ctl.start(threaded=False)
    ctl.pump(20.0)
    ctl.session.set_baseline(ctl.session.pipeline.baseline.estimate)  # type: ignore[union-attr]
    ctl.pump(41.0)  # (at rest: the next burst begins at 61.06 s)
    assert ctl.session.pipeline is not None and ctl.session.pipeline.reps._rep is None
    ctl.apply_settings(ctl.settings.with_(notch_hz=60.0, bandpass_low_hz=30.0))
    for _ in range(40):
        ctl.pump(0.25)
    after = [r for r in finals if r.start >= 61.0 * FS]
    assert after and abs(after[0].start - 61.06 * FS) < 0.05 * FS
    assert all(after[0].onsets.get(role) is not None for role in Role)
    # and judged (it was "undetermined: already active when the data began", as if the
    # new pipeline's start were the data's: its filters and baseline were primed)
    assert not after[0].censored and after[0].order != "undetermined", after[0].reason
    assert [r.index for r in finals] == list(range(len(finals)))
    assert not rejudged  # (a sound baseline at once: nothing to judge again)


def test_settings_changed_after_a_replay_ended_lose_no_rep(
    qtbot: QtBot, store: SettingsStore, tmp_path: Path
) -> None:
    from app.cli import main
    from devices.session.states import SessionState

    # a file that ends in the middle of a burst (its last rep is cut by the end)
    csv = tmp_path / "cut.csv"
    argv = ["simulate", "--preset", "ecg", "--ecg", "5", "--duration", "60", "--seed", "3"]
    assert main([*argv, "--out", str(csv)]) == 0
    win = MainWindow(store, source=SourceChoice("file", {"path": str(csv)}), threaded=False)
    qtbot.addWidget(win)
    win.show()
    run_for(win, 70.0, step=2.0)
    assert win.ctl is not None and win.ctl.state == SessionState.FINISHED
    change_filters(qtbot, win)
    run_for(win, 0.5)
    status = win.statusBar()
    assert status is not None
    # it said "a burst lost: settings changed mid-rep (no rest in 8 s)" with nothing playing
    assert "lost" not in status.currentMessage()
    assert "new settings in use" in status.currentMessage()


@pytest.mark.parametrize("seed", [3, 8])
def test_new_settings_at_a_reps_end_make_no_rep_of_its_tail(seed: int) -> None:
    """Found by a newcomer: new settings asked for mid-rep came into use as the rep ended;
    the new pipeline found the burst's tail under way at its start and told it as a rep,
    "undetermined: already active when the data began", counted and numbered."""
    ctl = SessionController(SimulatorDevice(preset="clean", realtime=False, seed=seed))
    finals: list = []
    ctl.on_rep_final = lambda e: finals.append(e.result)
    ctl.open()
    ctl.start(threaded=False)
    ctl.pump(6.0)
    for _ in range(400):  # on until a rep is under way
        if ctl.session.pipeline.reps._rep is not None:  # type: ignore[union-attr]
            break
        ctl.pump(0.02)
    ctl.apply_settings(ctl.settings.with_(tolerance_ms=35.0))  # waits for the rep's end
    for _ in range(80):
        ctl.pump(0.25)
    assert len(finals) >= 8
    assert not [r for r in finals if "already active" in r.reason]
    assert [r.index for r in finals] == list(range(len(finals)))
    counted = [r.index for r in ctl.tally.reps]  # (the last may be under way still)
    assert counted == list(range(len(counted))) and len(counted) - len(finals) in (0, 1)
    starts = [r.start for r in finals]
    assert all(b - a > 1.0 * FS for a, b in itertools.pairwise(starts))
