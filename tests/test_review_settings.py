"""Settings ▸ OK during a replay: the file's index (the overview's rep spans, ←/→, the rows
not yet played) is built again with the new settings, and a burst played before the change
is listed once, as the replay judged it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil
from pathlib import Path

from PyQt6 import QtCore, QtWidgets
from pytestqt.qtbot import QtBot

from app.main_window import MainWindow
from app.settings_dialog import SettingsDialog
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from devices.session.tally import same_burst
from tests.window_helpers import DEMO, pump

LEFT = QtCore.Qt.MouseButton.LeftButton


def _answer_settings(qtbot: QtBot, tolerance: str, k_on: str) -> None:
    def answer() -> None:
        dlg = next(
            w
            for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, SettingsDialog) and w.isVisible()
        )
        for box, text in ((dlg.tolerance_ms, tolerance), (dlg.k_on, k_on)):
            box.selectAll()
            qtbot.keyClicks(box, text)
        ok = dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        assert ok is not None
        qtbot.mouseClick(ok, LEFT)

    QtCore.QTimer.singleShot(100, answer)


def _row_verdicts(win: MainWindow) -> dict[int, str]:
    table = win.rep_table
    col = next(
        c
        for c in range(table.columnCount())
        if (h := table.horizontalHeaderItem(c)) is not None and h.text() == "verdict"
    )
    return {
        table._starts[r]: table.item(r, col).text()  # type: ignore[union-attr]
        for r in range(table.rowCount())
    }


def _replay(qtbot: QtBot, store: SettingsStore, tmp_path: Path) -> MainWindow:
    """A copy of the demo replayed unthreaded, its index of the whole file built."""
    bdf = tmp_path / DEMO.name
    shutil.copy(DEMO, bdf)
    win = MainWindow(store, source=SourceChoice("file", {"path": str(bdf)}), threaded=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.review.index is not None, timeout=60_000)
    return win


def test_a_settings_change_in_a_replay_rebuilds_the_index_and_lists_each_burst_once(
    qtbot: QtBot, store: SettingsStore, tmp_path: Path
) -> None:
    win = _replay(qtbot, store, tmp_path)
    first = win.review.index
    assert first is not None and first.reps
    assert not all(r.order == "simultaneous" for r in first.reps)
    pump(win, 12.0)
    played = [r for r in win.ctl.tally.reps if r.end is not None]  # type: ignore[union-attr]
    assert played
    # the widest neutral zone and a higher threshold: every verdict ahead is "simultaneous"
    # (or undetermined), and the onsets the new threshold finds start elsewhere
    live = win.settings
    _answer_settings(qtbot, "200", "8")
    next(a for a in win.actions() if a.text() == "Settings…").trigger()
    assert win.ctl is not None
    assert win.ctl.settings.tolerance_ms == 200.0 and win.ctl.settings.k_on == 8.0
    # for this replay only: the live settings, in the window and stored, are kept
    assert win.settings == live and store.load_dsp() == live
    qtbot.waitUntil(lambda: win.review.index is not first, timeout=60_000)
    again = win.review.index
    assert again is not None
    assert all(r.order in ("simultaneous", "undetermined") for r in again.reps)
    position = win.ctl.position  # type: ignore[union-attr]
    verdicts = _row_verdicts(win)
    ahead = [r for r in again.reps if r.start >= position]
    assert ahead
    for rep in ahead:  # the rows not yet played show the new index, not the old one
        assert verdicts[rep.start].split(" (")[0] == rep.order.replace("_", " ")
    # the bursts played before keep the replay's record, once each
    reps = win.review.reps()
    for rep in played:
        assert sum(same_burst(rep, r) for r in reps) == 1, rep.start
        assert any(r.start == rep.start and r.order == rep.order for r in reps)
    spans = win.review.overview.reps.spans  # what the strip draws
    assert len(spans) == len(reps)


def test_new_settings_while_a_paused_replay_is_mid_rep_judge_that_rep_again(
    qtbot: QtBot, store: SettingsStore, tmp_path: Path
) -> None:
    """Settings ▸ OK with the replay paused inside a rep: the rep was told lost ("settings
    changed mid-rep (no rest in 2 s)") and never got a record; the file is read again from
    before it instead, with the new settings, and the transport stays paused."""
    win = _replay(qtbot, store, tmp_path)
    first = win.review.index
    ctl = win.ctl
    assert ctl is not None and ctl.replay is not None
    notices: list[str] = []
    told = ctl.on_notice

    def heard(text: str) -> None:
        notices.append(text)
        if told is not None:
            told(text)

    ctl.on_notice = heard
    pump(win, 8.0)
    for _ in range(200):  # on, 50 ms at a time, until a rep is under way
        if any(r.end is None for r in ctl.tally.reps):
            break
        pump(win, 0.05, step=0.05)
    under_way = next(r for r in ctl.tally.reps if r.end is None)
    win.act_pause.trigger()  # (View ▸ Pause scrolling pauses a replay's transport)
    assert ctl.replay.paused
    _answer_settings(qtbot, "200", "5")
    next(a for a in win.actions() if a.text() == "Settings…").trigger()
    assert ctl.settings.tolerance_ms == 200.0
    rows_before = list(win.rep_table._starts)
    pump(win, 0.5)
    qtbot.waitUntil(lambda: win.review.index is not first, timeout=60_000)  # built again
    pump(win, 0.25)
    assert ctl.replay.paused  # the re-read did not leave it playing
    # every rep keeps its row and number, the one under way too (its row was dropped with
    # the rows ahead, and every later row numbered one less, until it was played again)
    assert len(win.rep_table._starts) == len(rows_before)
    assert any(same_burst(under_way, r) for r in win.review.reps())
    numbers = [win.rep_table.item(r, 0).text() for r in range(win.rep_table.rowCount())]
    assert numbers == [str(k + 1) for k in range(len(numbers))]
    assert win.review.index is not None
    shown = next(r for r in win.review.index.reps if same_burst(under_way, r))
    row = win.rep_table.row_of(shown.start)
    assert row is not None and numbers[row] == str(under_way.index + 1)
    assert not any("lost" in n for n in notices), notices
    assert any(f"rep {under_way.index + 1} judged again" in n for n in notices), notices
    from devices.session.states import MarkKind

    marks = [m for m in ctl.marks if m.kind == MarkKind.SETTINGS]  # drawn on the traces
    assert len(marks) == 1 and marks[0].label == "new settings"
    assert abs(marks[0].index - ctl.position) < 0.5 * ctl.fs
    win.act_pause.trigger()
    pump(win, 4.0)
    final = next(r for r in ctl.tally.reps if same_burst(r, under_way))
    assert final.end is not None  # it got its record, with the new neutral zone
    assert final.order in ("simultaneous", "undetermined")
    assert final.index == under_way.index  # and its number


def test_ok_on_unchanged_settings_changes_nothing(
    qtbot: QtBot, store: SettingsStore, tmp_path: Path
) -> None:
    """Settings ▸ OK with nothing changed: no "new settings" mark, no index built again."""
    from devices.session.states import MarkKind

    win = _replay(qtbot, store, tmp_path)
    first = win.review.index
    pump(win, 3.0)
    assert win.ctl is not None
    tolerance = f"{win.ctl.settings_in_use.tolerance_ms:g}"
    k_on = f"{win.ctl.settings_in_use.k_on:g}"
    _answer_settings(qtbot, tolerance, k_on)
    next(a for a in win.actions() if a.text() == "Settings…").trigger()
    pump(win, 1.0)
    assert win.ctl is not None
    assert not [m for m in win.ctl.marks if m.kind == MarkKind.SETTINGS]
    assert win.review.index is first
