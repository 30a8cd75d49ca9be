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


def test_a_settings_change_in_a_replay_rebuilds_the_index_and_lists_each_burst_once(
    qtbot: QtBot, store: SettingsStore, tmp_path: Path
) -> None:
    bdf = tmp_path / DEMO.name
    shutil.copy(DEMO, bdf)
    win = MainWindow(store, source=SourceChoice("file", {"path": str(bdf)}), threaded=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.review.index is not None, timeout=60_000)
    first = win.review.index
    assert first is not None and first.reps
    assert not all(r.order == "simultaneous" for r in first.reps)
    pump(win, 12.0)
    played = [r for r in win.ctl.tally.reps if r.end is not None]  # type: ignore[union-attr]
    assert played
    # the widest neutral zone and a higher threshold: every verdict ahead is "simultaneous"
    # (or undetermined), and the onsets the new threshold finds start elsewhere
    _answer_settings(qtbot, "200", "8")
    next(a for a in win.actions() if a.text() == "Settings…").trigger()
    assert win.settings.tolerance_ms == 200.0 and win.settings.k_on == 8.0
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
