"""Rep navigation in a replay, driven as the newcomer drove it: the bar's ◀ rep / rep ▶ buttons,
the ←/→ keys (the Replay menu's actions), the source panel's speed box, playing on to the end.

Found by a newcomer pass: the buttons moved the view but selected nothing and kept their own
cursor (→ then jumped back), the banner stayed on the rep selected long before, the tally
missed reps jumped over, the source panel's speed did nothing to a running replay, trace
drawing cast NaN to int, and a replayed mark read "mark: mark 1", cut at the plot's edges.
The session is stepped synchronously (``pump``), so nothing depends on wall time.
"""

from __future__ import annotations

import functools
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from devices.session.states import SessionState
from devices.session.tally import same_burst
from tests.window_helpers import DEMO
from tests.window_helpers import pump as _pump

pump = functools.partial(_pump, step=0.5, housekeeping=True)  # a review: 0.5 s steps, 4 Hz upkeep
FS = 2000


@pytest.fixture
def review(qtbot, store: SettingsStore, tmp_path: Path) -> MainWindow:
    bdf = tmp_path / DEMO.name
    shutil.copy(DEMO, bdf)
    win = MainWindow(store, source=SourceChoice("file", {"path": str(bdf)}), threaded=False)
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    qtbot.waitUntil(lambda: win.review.index is not None, timeout=60_000)
    return win


def _starts(win: MainWindow) -> list[int]:
    assert win.review.index is not None
    return [r.start for r in win.review.index.reps]


def _selected_row_start(win: MainWindow) -> int | None:
    rows = {i.row() for i in win.rep_table.selectedIndexes()}
    assert len(rows) <= 1
    return win.rep_table._starts[rows.pop()] if rows else None


def _banner_rep(win: MainWindow) -> str:
    return win.order_panel.detail.text().split("  ")[0]


def _rep_no(win: MainWindow, start: int) -> str:
    rep = win.review.rep(start)
    assert rep is not None
    return f"rep {rep.index + 1}"


def test_buttons_and_keys_move_one_rep_cursor(review: MainWindow) -> None:
    win, bar = review, review.replay_bar
    pump(win, 4.0)
    win.act_pause.trigger()
    starts = _starts(win)
    here = max(s for s in starts if s <= win.traces.t_end * FS)
    k = starts.index(here)
    bar.next_btn.click()  # rep ▶: the next rep is selected, in the table and on the banner
    assert win.review.selected == starts[k + 1] == _selected_row_start(win)
    assert _banner_rep(win) == _rep_no(win, starts[k + 1])
    bar.next_btn.click()
    assert win.review.selected == starts[k + 2] == _selected_row_start(win)
    win.review.act_next.trigger()  # → goes on from there (it went back to its own rep)
    assert win.review.selected == starts[k + 3] == _selected_row_start(win)
    assert _banner_rep(win) == _rep_no(win, starts[k + 3])
    bar.prev_btn.click()
    win.review.act_prev.trigger()
    assert win.review.selected == starts[k + 1] == _selected_row_start(win)
    assert win.ctl is not None and win.ctl.replay is not None and win.ctl.replay.paused


def test_playing_left_goes_to_the_rep_before_the_one_on_show(review: MainWindow) -> None:
    win = review
    pump(win, 16.5)
    replay = win.ctl.replay  # type: ignore[union-attr]
    starts = _starts(win)
    on_show = max(s for s in starts if s <= win.traces.t_end * FS)
    k = starts.index(on_show)
    win.review.act_prev.trigger()  # ← while playing: from 2 s before the previous rep
    assert replay is not None and replay.position == starts[k - 1] - 2 * FS
    assert _selected_row_start(win) == starts[k - 1]  # the cursor in sight
    assert _banner_rep(win) == _rep_no(win, starts[k - 1])
    win.replay_bar.prev_btn.click()  # again at once: the one before (not the same one)
    assert replay.position == starts[k - 2] - 2 * FS
    win.review.act_next.trigger()
    assert replay.position == starts[k - 1] - 2 * FS


def test_after_navigation_playing_through_counts_the_whole_file(review: MainWindow) -> None:
    win, bar = review, review.replay_bar
    pump(win, 4.0)
    win.act_pause.trigger()
    bar.next_btn.click()
    bar.next_btn.click()
    selected = win.review.selected
    assert selected is not None
    # the source panel's speed box sets the running replay's speed; the bar shows it
    win.source_panel.file_speed.setCurrentText("4")
    replay = win.ctl.replay  # type: ignore[union-attr]
    assert replay is not None and replay.speed == 4.0 and bar.speed.currentText() == "4"
    bar.speed.setCurrentText("2")  # and the other way round: one speed
    assert replay.speed == 2.0 and win.source_panel.file_speed.currentText() == "2"
    bar.play_btn.click()
    bar.next_btn.click()  # playing: on to the rep after next, skipping what lies between
    bar.next_btn.click()
    pump(win, 70.0, step=1.0)
    ctl = win.ctl
    assert ctl is not None and ctl.state == SessionState.FINISHED
    # the banner follows the replay to the file's last rep, not the one selected before
    assert _banner_rep(win) != _rep_no(win, selected)
    index = win.review.index
    assert index is not None
    reps = ctl.tally.reps
    assert len(reps) == len(index.reps)  # every rep once
    for rep in index.reps:
        assert sum(same_burst(rep, r) for r in reps) == 1, rep.start
        # with the file's number, however the replay got there (the jumps restarted the
        # numbering: the panel said "rep 4" at the file's rep 15)
        played = next(r for r in reps if same_burst(rep, r))
        assert played.index == rep.index, (rep.start, played.index, rep.index)
    assert ctl.tally.count == len(index.reps)
    # the lag history has a point for every rep with a lag (rep 5 was missing)
    xs, _ = win.order_panel.history._points.getData()
    assert sorted(xs) == sorted(r.index + 1 for r in reps if r.lag_ms is not None)
    assert len(xs) == sum(r.lag_ms is not None for r in index.reps)


def test_trace_columns_of_a_lane_without_data_cast_no_nan() -> None:
    from app.traces import _columns

    px = np.arange(0.0, 40.0, 0.25)
    py = np.column_stack([np.sin(px), np.full_like(px, np.nan)])  # lane 1: no data yet
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _columns(px, py)
    assert out is not None and out.shape[0] == 2 and (out[0, :, 1] > -1000).all()


def test_a_replayed_mark_is_labelled_once_inside_the_plot(review: MainWindow) -> None:
    win = review
    pump(win, 12.0)
    plot = win.traces
    t_end = plot.t_end
    for t in (t_end - 0.05, t_end - plot.window_s + 0.05):  # at either edge
        plot.add_mark(t, "mark: mark 1")  # (a file's mark comes back as its annotation)
    win.act_pause.trigger()
    pump(win, 1.0)
    vb = plot.getPlotItem().getViewBox().sceneBoundingRect()
    for _, line in plot.marks[-2:]:
        assert line.label.toPlainText() == "mark 1"
        box = line.label.sceneBoundingRect()
        assert vb.left() - 1 <= box.left() and box.right() <= vb.right() + 1, (box, vb)


def test_a_jump_deep_into_the_file_keeps_the_files_rep_numbers(review: MainWindow) -> None:
    # Past the file's first half minute a seek primes the baseline and runs the full
    # pipeline only over the last seconds: the reps it finds there numbered from 1 again,
    # and the banner said "rep 4" at the file's rep 15.
    win, bar = review, review.replay_bar
    pump(win, 4.0)
    win.act_pause.trigger()
    index = win.review.index
    assert index is not None
    deep = [r for r in index.reps if r.start > 36 * FS]
    assert len(deep) >= 3
    while win.review.selected is None or win.review.selected < deep[0].start:
        bar.next_btn.click()
    bar.play_btn.click()
    pump(win, 8.0)
    played = [r for r in win.ctl.tally.reps if r.start >= deep[0].start]  # type: ignore[union-attr]
    assert played
    for rep in played:
        twin = next(r for r in index.reps if same_burst(rep, r))
        assert rep.index == twin.index, (rep.start, rep.index, twin.index)
    assert _banner_rep(win) == f"rep {played[-1].index + 1}"


def test_after_a_jump_the_banner_shows_a_rep_of_where_the_replay_is(review: MainWindow) -> None:
    win = review
    pump(win, 12.0)
    index = win.review.index
    assert index is not None and win.ctl is not None
    shown = _banner_rep(win)
    win.review.act_end.trigger()  # End: the file's end (it still said the rep of 0:10)
    pump(win, 0.5)
    last = max((r for r in index.reps), key=lambda r: r.start)
    assert _banner_rep(win) == f"rep {last.index + 1}" != shown
    win.review.act_home.trigger()  # Home: before the first rep, nothing on show
    pump(win, 0.5)
    first = min(r.start for r in index.reps)
    assert win.ctl.replay is not None and win.ctl.replay.position < first
    assert _banner_rep(win) == ""


def test_play_after_picking_a_rep_plays_that_rep(review: MainWindow) -> None:
    """Paused, → shows the next rep by moving the replay to the end of a window that holds
    it (7 s on at 10 s); Play then went on from there, and the reps between were never
    played nor counted. It plays from just before the rep picked."""
    win = review
    pump(win, 11.5)
    win.act_pause.trigger()
    replay = win.ctl.replay  # type: ignore[union-attr]
    assert replay is not None and replay.paused
    starts = _starts(win)
    win.review.act_next.trigger()
    picked = win.review.selected
    assert picked is not None and picked in starts and picked > 11.5 * FS
    assert replay.position > picked + 5 * FS  # (shown: the window ends well after it)
    win.replay_bar.play_btn.click()
    assert not replay.paused and replay.position == picked - 2 * FS
    pump(win, 6.0)
    tally = win.ctl.tally.reps  # type: ignore[union-attr]
    k = starts.index(picked)
    for start in starts[k : k + 2]:  # the rep picked and the next one, each counted once
        rep = win.review.rep(start)
        assert rep is not None and sum(same_burst(rep, r) for r in tally) == 1, start
    # played, it is picked no more: Pause then Play goes on from where it paused (it went
    # back to the picked rep each time)
    win.replay_bar.play_btn.click()
    assert replay.paused
    here = replay.position
    win.replay_bar.play_btn.click()
    assert not replay.paused and replay.position == here


def test_start_with_another_source_chosen_leaves_a_paused_replay(review: MainWindow, qtbot) -> None:
    """A replay paused, the simulator picked in the source panel, Start: the simulator runs
    (Start did nothing, silently, until Stop)."""
    win = review
    pump(win, 3.0)
    win.act_pause.trigger()
    assert win.ctl is not None and win.ctl.replay is not None and win.ctl.replay.paused
    win.source_panel.kind.setCurrentText("simulator")
    qtbot.mouseClick(win.source_panel.start_btn, QtCore.Qt.MouseButton.LeftButton)
    assert win.ctl is not None and win.ctl.replay is None
    assert win.ctl.state == SessionState.STREAMING
    assert win.ctl.info is not None and win.ctl.info.source.startswith("simulator")
    # a live stream is never ended by the panel: Start with a file picked says what to do
    win.source_panel.kind.setCurrentText("file")
    win.source_panel.file_path.setText(str(DEMO))
    qtbot.mouseClick(win.source_panel.start_btn, QtCore.Qt.MouseButton.LeftButton)
    assert win.ctl.replay is None and win.ctl.state == SessionState.STREAMING
    assert (
        win.statusBar().currentMessage() == "to open the source chosen, stop this one first (Space)"
    )


def test_the_replay_menu_plays_pauses_and_loops(review: MainWindow) -> None:
    """Found by a newcomer: the Replay menu ("every key of review") had no play / pause and
    no loop."""
    win = review
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Replay")
    assert menu is not None
    items = {a.text().split("\t")[0]: a for a in menu.actions() if a.text()}
    replay = win.ctl.replay  # type: ignore[union-attr]
    assert replay is not None and not replay.paused
    items["Play / pause"].trigger()
    assert replay.paused
    items["Play / pause"].trigger()
    assert not replay.paused
    pump(win, 2.0)
    items["Loop start here (A)"].trigger()
    pump(win, 2.0)
    items["Loop end here (B)"].trigger()
    a, b = win.replay_bar.loop_range  # type: ignore[misc]
    assert 0 < a < b <= replay.position
    items["Loop A–B"].trigger()
    assert win.replay_bar.loop.isChecked() and items["Loop A–B"].isChecked()
    win.replay_bar.loop.setChecked(False)  # the bar's box and the menu item: one state
    assert not items["Loop A–B"].isChecked()


def test_onset_handle_labels_stay_inside_the_traces(review: MainWindow) -> None:
    """Found by a newcomer: at the traces' right edge the handles' labels were cut ("glu",
    "lu"); a label faces the middle of the plot, as the marks' labels do."""
    win = review
    pump(win, 6.0)
    win.act_pause.trigger()
    win.review.act_prev.trigger()  # a rep picked: its onsets are handles
    editor = win.onset_editor
    assert editor.lines
    win.review.set_window(0.6)
    rep = editor.rep
    assert rep is not None
    last = max(i for i in rep.onsets.values() if i is not None)
    editor.follow(last / FS + 0.05)  # the traces end just after the last onset
    sides = set()
    for line in editor.lines.values():
        x = line.value() / win.traces.window_s  # -1 at the left edge, 0 at the right
        side = line.label.anchors[0][0]
        assert side == (1.0 if x > -0.5 else 0.0), (x, side)
        sides.add(side)
    assert sides == {1.0}  # (all in the right half here: the test could fail)
