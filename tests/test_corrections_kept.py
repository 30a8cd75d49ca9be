"""A reviewer's correction stays what the window shows: replayed again from the start (Home,
Space) or the file opened again (Stop, Start), the rep's row, the tally and the banner show the
corrected onset and verdict, not the detector's (before, the replay's new record of the rep
replaced the correction everywhere but in the sidecar).

Driven as a reviewer drives it: a click on the rep's row, ] to the lumbar handle, Shift+Left
nudges, Home, Space, the Stop and Start buttons. The session is stepped synchronously."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil
from pathlib import Path

import pytest
from PyQt6 import QtCore
from PyQt6.QtTest import QTest

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from devices.files.sidecar import ReviewStore
from dsp.contract import Role
from dsp.reps import RepResult

DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo_glute_first.bdf"
FS = 2000
Key, Mod = QtCore.Qt.Key, QtCore.Qt.KeyboardModifier


def play_to(win: MainWindow, t_s: float) -> None:
    """Replay up to file time ``t_s`` (a second of file a read: the session is stepped)."""
    assert win.session is not None and win.ctl is not None and win.ctl.replay is not None
    replay = win.ctl.replay
    while replay.position < t_s * FS and not replay.at_end:
        win.session.pump_once()
        win._last_status = 0.0
        win.refresh()


def key(win: MainWindow, k: QtCore.Qt.Key, mod=Mod.NoModifier) -> None:
    QTest.keyClick(win, k, mod)


def row_cells(win: MainWindow, start: int) -> list[str]:
    table = win.rep_table
    row = table.row_of(start)
    assert row is not None, start
    return [table.item(row, c).text() for c in range(7)]  # type: ignore[union-attr]


def tallied(win: MainWindow, start: int) -> RepResult:
    return next(r for r in win.tally.reps if abs(r.start - start) < 0.05 * FS)


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    bdf = tmp_path / DEMO.name
    shutil.copy(DEMO, bdf)
    shutil.copy(DEMO.with_name(DEMO.name + ".json"), bdf.with_name(bdf.name + ".json"))
    win = MainWindow(store, autostart=False, threaded=False, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    panel = win.source_panel
    panel.kind.setCurrentText("file")
    panel.file_path.clear()
    qtbot.keyClicks(panel.file_path, str(bdf))
    panel.start_btn.click()
    qtbot.waitUntil(lambda: win.review.index is not None, timeout=60_000)
    return win


def correct_a_rep(win: MainWindow) -> tuple[RepResult, RepResult]:
    """Play 20 s, pause, click a glute-first rep's row, move its left lumbar onset 120 ms
    earlier with the keys. The detected rep and the corrected one."""
    play_to(win, 20.0)
    key(win, Key.Key_Space)  # pause
    rep = next(
        r
        for r in win.tally.reps
        if r.order == "glute_first" and r.end is not None and r.onsets.get(Role.LUMBAR_L)
    )
    table = win.rep_table
    item = table.item(table.row_of(rep.start), 0)  # type: ignore[arg-type]
    table.scrollToItem(item)
    QTest.mouseClick(
        table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=table.visualItemRect(item).center()
    )
    assert win.review.selected == rep.start
    for _ in range(4):
        if win.onset_editor.current == Role.LUMBAR_L:
            break
        key(win, Key.Key_BracketRight)
    assert win.onset_editor.current == Role.LUMBAR_L
    for _ in range(12):
        key(win, Key.Key_Left, Mod.ShiftModifier)  # -10 ms each
    fixed = tallied(win, rep.start)
    assert fixed.onsets[Role.LUMBAR_L] == rep.onsets[Role.LUMBAR_L] - round(0.12 * FS)
    assert fixed.order != rep.order  # (the case at hand: the verdict changed)
    return rep, fixed


def assert_shown_corrected(
    win: MainWindow, rep: RepResult, fixed: RepResult, played: bool = True
) -> None:
    """The rep's record (the tally's once played, else review's from the file's index) and
    its row show the correction."""
    now = (
        tallied(win, rep.start)
        if played
        else next(r for r in win.review.reps() if abs(r.start - rep.start) < 0.05 * FS)
    )
    assert now.onsets[Role.LUMBAR_L] == fixed.onsets[Role.LUMBAR_L]
    assert now.order == fixed.order and now.lag_ms == pytest.approx(fixed.lag_ms, abs=0.5)
    cells = row_cells(win, now.start)
    verdict = fixed.order.replace("_", " ")
    assert cells[3] == f"{verdict} (was {rep.order.replace('_', ' ')})", cells
    assert "detected" in cells[2] and f"lumbar_l {fixed.onsets[Role.LUMBAR_L] / FS:.3f}" in cells[6]
    if played:
        assert win.tally.session[fixed.order] >= 1


def test_a_correction_stays_when_the_file_is_replayed_again(window: MainWindow) -> None:
    win = window
    rep, fixed = correct_a_rep(win)
    counts = dict(win.tally.session)
    key(win, Key.Key_Escape)
    key(win, Key.Key_Escape)
    key(win, Key.Key_Home)  # from the start again
    if win.ctl is not None and win.ctl.replay is not None and win.ctl.replay.paused:
        key(win, Key.Key_Space)
    assert win.ctl is not None and win.ctl.replay is not None and not win.ctl.replay.paused
    assert_shown_corrected(win, rep, fixed, played=False)  # the row waiting ahead
    table = win.rep_table
    assert table.rowAt(0) == 0  # the table shows where the replay goes on, not the file's end
    play_to(win, 20.0)  # as far as before: the replay made its record again
    assert_shown_corrected(win, rep, fixed)
    assert win.tally.session == counts


def test_a_correction_stays_when_the_file_is_opened_again(window: MainWindow) -> None:
    win = window
    rep, fixed = correct_a_rep(win)
    counts = dict(win.tally.session)
    path = win.ctl.replay.path  # type: ignore[union-attr]
    assert len(ReviewStore(path).corrections()) == 12  # saved with the file, one per nudge
    win.source_panel.stop_btn.click()
    win.source_panel.start_btn.click()  # the same file, opened again: a new session
    assert win.ctl is not None and not win.ctl.corrections
    win.review.index = None
    from PyQt6.QtWidgets import QApplication

    for _ in range(600):  # the index of the file is built again
        QApplication.processEvents()
        if win.review.index is not None:
            break
        QTest.qWait(50)
    assert win.review.index is not None
    assert_shown_corrected(win, rep, fixed, played=False)  # the row from the file's index
    play_to(win, 20.0)
    assert_shown_corrected(win, rep, fixed)
    assert win.tally.session == counts


def test_undo_back_to_the_detected_onset_leaves_no_correction(window: MainWindow) -> None:
    """Found by a newcomer: after Shift+Right x5 and Ctrl+Z x5 the onset was back at the
    detected 6.957 s, yet the row read "+57 (detected +54)", the banner "corrected by hand",
    and the report, Sessions ("1 corrected") and the file reopened kept it. The nudges also
    moved the lag against the hand (46.8, 36.8, 26.8, then 48.3 ms)."""
    from devices.files.sidecar import standing_corrections

    win = window
    play_to(win, 20.0)
    key(win, Key.Key_Space)  # pause
    rep = next(
        r
        for r in win.tally.reps
        if r.end is not None
        and r.onsets.get(Role.GLUTE_L) is not None
        and r.onsets.get(Role.GLUTE_R) is not None
        and r.onsets[Role.GLUTE_L] < r.onsets[Role.GLUTE_R]  # the left glute fired first
    )
    before = row_cells(win, rep.start)
    table = win.rep_table
    item = table.item(table.row_of(rep.start), 0)  # type: ignore[arg-type]
    table.scrollToItem(item)
    QTest.mouseClick(
        table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=table.visualItemRect(item).center()
    )
    for _ in range(4):
        if win.onset_editor.current == Role.GLUTE_L:
            break
        key(win, Key.Key_BracketRight)
    assert win.onset_editor.current == Role.GLUTE_L
    lags = []
    for _ in range(5):  # the first glute 10 ms later each time: the glutes' onset can only
        key(win, Key.Key_Right, Mod.ShiftModifier)  # stay or come later, the lag shrink
        lags.append(tallied(win, rep.start).lag_ms)
    assert all(b <= a + 1e-9 for a, b in zip([rep.lag_ms, *lags], lags, strict=False)), lags
    assert "detected" in row_cells(win, rep.start)[2]
    for _ in range(5):
        key(win, Key.Key_Z, Mod.ControlModifier)
    back = tallied(win, rep.start)
    assert back.onsets == rep.onsets and back.lag_ms == rep.lag_ms and back.order == rep.order
    assert row_cells(win, rep.start) == before  # "detected" and "(was" gone
    assert "corrected by hand" not in win.order_panel.detail.text()
    path = win.ctl.replay.path  # type: ignore[union-attr]
    assert not standing_corrections(ReviewStore(path).corrections())
    win.sessions.refresh()
    row = next(r for r in win.sessions.rows if Path(r.path).name == Path(path).name)
    assert row.corrected == 0
