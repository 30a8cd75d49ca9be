"""Sessions, the opened recording and the progress view count a recording's reps the same way
(issue: Sessions said "7 reps, 71 %" from the live feedback, the opened file 4/1/1/1
undetermined, 67 %, the progress view "n=6" over "7 reps"). Sessions now shows the counts on
review (what the opened file shows), the live count beside them where they differ and why in
the tooltip; a saved correction shows in Sessions without pressing Refresh; the progress
view's plots are readable in the dock at 1366x768 (side by side, dates on the axis).

Driven as the user drives it: the Sessions tab clicked, a row double-clicked, the Progress tab
clicked, a correction made with the keys. The session is stepped synchronously."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import re
import shutil
from pathlib import Path

from PyQt6 import QtCore, QtWidgets
from PyQt6.QtTest import QTest
from test_corrections_kept import correct_a_rep, window  # noqa: F401 (a fixture)

from app.main_window import MainWindow
from app.session_browser import PCT_COL, REPS_COL
from app.settings_store import SettingsStore
from devices.session.progress import progress
from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS, UNDETERMINED

ROOT = Path(__file__).resolve().parents[1]
# its live feedback counted 20 reps with a verdict; on review one is undetermined
POOR = ROOT / "recordings" / "demo_lumbar_first.bdf"
FS = 2000


def _window(qtbot, tmp_path: Path, *, with_file: bool = True) -> tuple[MainWindow, Path]:
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    bdf = tmp_path / "rec" / POOR.name
    bdf.parent.mkdir()
    shutil.copy(POOR, bdf)
    shutil.copy(POOR.with_name(POOR.name + ".json"), bdf.with_name(bdf.name + ".json"))
    win = MainWindow(store, autostart=False, threaded=False, recordings_dir=str(bdf.parent))
    win.sessions.examples = None  # (the shipped examples would be listed too)
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    qtbot.waitExposed(win)
    return win, bdf


def _click_tab(qtbot, win: MainWindow, title: str) -> None:
    """Click the dock tab ``title`` in the window's tab bar of tabified docks."""
    for bar in win.findChildren(QtWidgets.QTabBar):
        for i in range(bar.count()):
            if bar.tabText(i) == title and bar.isVisible():
                QTest.mouseClick(bar, QtCore.Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
                return
    raise AssertionError(f"no tab {title!r}")


def _cells(win: MainWindow, row: int) -> tuple[str, str, str]:
    table = win.sessions.table
    reps, pct = table.item(row, REPS_COL), table.item(row, PCT_COL)
    assert reps is not None and pct is not None
    return reps.text(), pct.text(), pct.toolTip()


def test_sessions_counts_what_the_opened_recording_counts(qtbot, tmp_path: Path) -> None:
    win, bdf = _window(qtbot, tmp_path)
    _click_tab(qtbot, win, "Sessions")
    browser = win.sessions
    qtbot.waitUntil(lambda: browser.isVisible() and not browser.busy, timeout=60_000)
    reps, pct, tip = _cells(win, 0)
    rev = browser.review[bdf]
    assert rev.counts[UNDETERMINED] == 1 and rev.reps == 20 and rev.decided == 19
    # the review's share (4 of 19), the live one (4 of 20) beside it, and why
    assert reps == "20" and pct == "21% (20% live)", (reps, pct)
    assert "On review" in tip and "1 undetermined" in tip and "Live" in tip, tip
    assert re.search(r"Undetermined: rep \d+ ", tip), tip
    # the progress view counts the same
    (point,) = progress(bdf.parent, "demo").sessions
    assert (point.reps, point.decided, point.glute_first) == (20, 19, 4)
    # opened (double-click) and played to its end: the tally counts as Sessions said
    table = browser.table
    item = table.item(0, 0)
    assert item is not None
    at = table.visualItemRect(item).center()
    left = QtCore.Qt.MouseButton.LeftButton
    QTest.mouseClick(table.viewport(), left, pos=at)  # (a double-click is a click, then one more)
    QTest.mouseDClick(table.viewport(), left, pos=at)
    qtbot.waitUntil(lambda: win.ctl is not None and win.ctl.replay is not None, timeout=30_000)
    assert win.ctl is not None and win.ctl.replay is not None
    replay = win.ctl.replay
    while not replay.at_end:
        assert win.session is not None
        win.session.pump_once()
    win.refresh()
    shown = win.tally.session
    for o in (GLUTE_FIRST, SIMULTANEOUS, LUMBAR_FIRST, UNDETERMINED):
        assert shown[o] == rev.counts[str(o)], (o, dict(shown), rev.counts)


def test_a_saved_correction_shows_in_sessions_without_refresh(qtbot, window) -> None:  # noqa: F811
    win = window
    _click_tab(qtbot, win, "Sessions")
    qtbot.waitUntil(lambda: _cells(win, 0)[1].endswith("%"), timeout=60_000)
    _click_tab(qtbot, win, "Reps")  # the reviewer works in the rep table
    assert "corrected" not in _cells(win, 0)[1]
    correct_a_rep(win)
    _click_tab(qtbot, win, "Sessions")
    qtbot.waitUntil(lambda: "(1 corrected)" in _cells(win, 0)[1], timeout=5000)


def test_progress_plots_are_readable_in_the_dock_at_1366(qtbot, tmp_path: Path) -> None:
    win, _ = _window(qtbot, tmp_path)
    _click_tab(qtbot, win, "Sessions")
    browser = win.sessions
    tabs = browser.tabs.tabBar()
    assert tabs is not None
    QTest.mouseClick(tabs, QtCore.Qt.MouseButton.LeftButton, pos=tabs.tabRect(1).center())
    view = browser.progress
    qtbot.waitUntil(
        lambda: view.isVisible() and not view.busy and view.progress is not None, timeout=60_000
    )
    QtWidgets.QApplication.processEvents()
    pct, lag = view.pct_plot, view.lag_plot
    # side by side in the wide, short dock, each with room for its points
    assert pct.geometry().right() < lag.geometry().left()
    for plot in (pct, lag):
        box = plot.getPlotItem().vb.sceneBoundingRect()
        assert box.height() >= 50, box
    # the date axis says dates, never hours, and the point sits on its day's tick
    axis = pct.getPlotItem().getAxis("bottom")
    (lo, hi), _ = pct.viewRange()
    levels = axis.tickValues(lo, hi, pct.width())
    ticks = [v for _, values in levels for v in values]
    labels = axis.tickStrings(ticks, 1.0, levels[0][0])
    assert labels and all(re.fullmatch(r"\d{1,2} [A-Z][a-z]{2}( \d{4})?", s) for s in labels), (
        labels
    )
    xs, _ = view.pct_scatter.getData()
    assert float(xs[0]) in ticks
    # the points whole: inside their plot's range by more than the symbol's radius
    for plot, scatter in ((pct, view.pct_scatter), (lag, view.lag_scatter)):
        _, (y0, y1) = plot.viewRange()
        box = plot.getPlotItem().vb.sceneBoundingRect()
        px = box.height() / (y1 - y0)
        for y in scatter.getData()[1]:
            assert (y1 - y) * px > 6 and (y - y0) * px > 6, (y, y0, y1, px)
