"""Review in the real window (offscreen Qt), driven as a reviewer drives it: keys, clicks on
the traces and the overview strip, the slider, the Replay menu's actions, the note dialog.

Each test is one finding of the review issue: a replay could not be restarted after its end,
the slider was 35 px wide, the axis said "time before now", P froze the picture while playback
went on, a click on a rep's span did nothing, the four onset lines of a rep overlapped, a
correction left the per-side results and counts as they were, the notes column held machine
reasons. The session is stepped synchronously (``pump``), so nothing depends on wall time.
"""

from __future__ import annotations

import functools
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest
from PyQt6 import QtCore, QtWidgets
from PyQt6.QtTest import QTest

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from devices.files.sidecar import ReviewStore, browse
from devices.session.states import SessionState
from dsp.contract import Role
from tests.window_helpers import DEMO, demo_copy
from tests.window_helpers import pump as _pump

pump = functools.partial(_pump, step=0.5, housekeeping=True)  # a review: 0.5 s steps, 4 Hz upkeep
FS = 2000  # the demo recordings' rate


@pytest.fixture
def review(qtbot, store: SettingsStore, tmp_path: Path) -> MainWindow:
    """A copy of a demo recording replayed in a 1366x740 window, its rep index built."""
    bdf = demo_copy(tmp_path)
    win = MainWindow(store, source=SourceChoice("file", {"path": str(bdf)}), threaded=False)
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    qtbot.waitUntil(lambda: win.review.index is not None, timeout=60_000)
    return win


def key(win: MainWindow, k: QtCore.Qt.Key, mod=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(win, k, mod)


def test_a_replay_restarts_after_its_end(review: MainWindow) -> None:
    win = review
    pump(win, 70.0, step=2.0)
    ctl = win.ctl
    assert ctl is not None and ctl.state == SessionState.FINISHED
    n = len(ctl.tally.reps)
    whole = (ctl.tally.session, ctl.tally.side_counts("left"), ctl.tally.side_counts("right"))
    first = win.review.index.reps[0]  # type: ignore[union-attr]
    key(win, QtCore.Qt.Key.Key_Space)  # Space after the end: from the start again
    assert ctl.state == SessionState.STREAMING and ctl.replay is not None
    assert ctl.replay.position < FS
    # a pass from the start counts up again, as live: nothing of the last pass's score
    assert ctl.tally.count == 0 and len(win.order_panel.history._points.data) == 0
    pump(win, 5.0)
    assert 0 < win.traces.t_end == pytest.approx(ctl.replay.position / FS, abs=0.05)  # drawn
    assert 0 < ctl.tally.count <= sum(r.start < ctl.replay.position for r in win.review.reps())
    assert ctl.tally.reps[0].start == pytest.approx(first.start, abs=0.1 * FS)
    pump(win, 70.0, step=2.0)
    assert ctl.state == SessionState.FINISHED and len(ctl.tally.reps) == n  # none twice
    again = (ctl.tally.session, ctl.tally.side_counts("left"), ctl.tally.side_counts("right"))
    assert again == whole  # the same file, the same score
    # after the end again, the slider dragged to 0:00 plays from there
    bar = win.replay_bar
    bar.slider.sliderPressed.emit()
    bar.slider.setValue(0)
    bar.slider.sliderReleased.emit()
    assert ctl.state == SessionState.STREAMING
    pump(win, 3.0)
    assert 0 < win.traces.t_end < 30
    assert win.traces.t_end == pytest.approx(ctl.replay.position / FS, abs=0.05)


def test_file_time_axis_and_a_slider_across_the_window(review: MainWindow) -> None:
    win = review
    pump(win, 12.0)
    axis = win.traces.time_axis
    assert axis.offset == pytest.approx(win.traces.t_end)
    levels = axis.tickValues(-10, 0, 600)
    labels = list(itertools.chain(*(axis.tickStrings(v, 1, s) for s, v in levels)))
    assert labels and all(":" in t for t in labels)  # m:ss, not seconds before now
    assert "file time" in win.traces.getPlotItem().getAxis("bottom").labelText
    # the slider and the overview strip span the window, not the gap between the docks
    assert win.replay_bar.slider.width() > 0.5 * win.width()
    assert win.review.overview.width() > 0.95 * win.width()
    from app.time_axis import clock_text

    position = win.ctl.replay.position / FS  # type: ignore[union-attr]
    assert win.replay_bar.time.text() == f"{clock_text(position)} / 1:00"


def test_live_keeps_time_before_now(qtbot, store) -> None:
    sim = SourceChoice("simulator", {"fs": 2000.0, "preset": "clean", "seed": 3})
    win = MainWindow(store, source=sim, threaded=False)
    qtbot.addWidget(win)
    pump(win, 2.0)
    assert win.traces.time_axis.offset is None and win.replay_toolbar.isHidden()
    assert not win.review.act_next.isEnabled()  # the Replay menu is for replays


def test_p_pauses_playback_itself(review: MainWindow) -> None:
    win = review
    pump(win, 5.0)
    replay = win.ctl.replay  # type: ignore[union-attr]
    assert replay is not None
    win.act_pause.trigger()
    assert replay.paused and win.ctl.state == SessionState.PAUSED  # type: ignore[union-attr]
    at = replay.position
    pump(win, 3.0)
    assert replay.position == at and not win.traces.paused  # nothing plays on unseen
    assert win.state_strip.paused.text() == "PAUSED"
    # a file under review is no device "streaming": the status bar names its transport
    assert win.status_labels["state"].text() == "file: paused"
    # a paused file has no rate or frame rate, and a file drops nothing (no gaps: no field)
    win._update_status(1e9)
    for key in ("rate", "fps", "latency", "dropped"):
        assert win.status_labels[key].text() == "", key
    win.act_pause.trigger()
    pump(win, 2.0)
    assert replay.position > at
    win._update_status(1e9)
    assert win.status_labels["state"].text() == "file: playing"
    assert win.status_labels["rate"].text().startswith("2,000 Hz")


def _span_point(win: MainWindow, start: int) -> QtCore.QPoint:
    """Where the rep starting at ``start`` is drawn in the traces' viewport (its middle)."""
    rep = win.review.rep(start)
    assert rep is not None and rep.end is not None
    t = (rep.start + rep.end) / 2 / FS - win.traces.t_end
    vb = win.traces.getPlotItem().getViewBox()
    scene = vb.mapViewToScene(QtCore.QPointF(t, -1.0))
    return win.traces.mapFromScene(scene)


def test_click_a_rep_on_the_traces_and_its_handles_do_not_overlap(review: MainWindow) -> None:
    win = review
    pump(win, 20.0)
    win.act_pause.trigger()
    t0, t1 = win.traces.t_end - win.traces.window_s, win.traces.t_end
    rep = next(
        r
        for r in win.tally.reps
        if r.end is not None and t0 + 0.2 < r.start / FS and r.end / FS < t1 - 0.2
    )
    QTest.mouseClick(
        win.traces.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=_span_point(win, rep.start)
    )
    assert win.review.selected == rep.start
    lines = win.onset_editor.lines
    assert set(lines) == {r for r, i in rep.onsets.items() if i is not None} and len(lines) == 4
    # each handle on its own lane: spans and labels never overlap
    spans = sorted(line.span for line in lines.values())
    assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(spans))
    QtWidgets.QApplication.processEvents()
    boxes = [line.label.sceneBoundingRect() for line in lines.values()]
    assert not any(a.intersects(b) for a, b in itertools.combinations(boxes, 2))
    # the rep's row is selected in the table
    rows = {i.row() for i in win.rep_table.selectedItems()}
    assert rows == {win.rep_table.row_of(rep.start)}


def test_keyboard_nudges_with_undo_and_redo(review: MainWindow) -> None:
    win = review
    pump(win, 12.0)
    win.act_pause.trigger()
    key(win, QtCore.Qt.Key.Key_Right)  # paused: the next rep is selected and shown
    start = win.review.selected
    assert start is not None and win.onset_editor.lines
    key(win, QtCore.Qt.Key.Key_BracketRight)  # the first onset handle
    role = win.onset_editor.current
    assert role is not None
    before = win.review.rep(start).onsets[role]  # type: ignore[union-attr]
    key(win, QtCore.Qt.Key.Key_Right)  # +1 ms
    key(win, QtCore.Qt.Key.Key_Right, QtCore.Qt.KeyboardModifier.ShiftModifier)  # +10 ms
    assert win.review.rep(start).onsets[role] == before + 22  # type: ignore[union-attr]
    QTest.keyClick(win, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert win.review.rep(start).onsets[role] == before + 2  # type: ignore[union-attr]
    QTest.keyClick(
        win,
        QtCore.Qt.Key.Key_Z,
        QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier,
    )
    assert win.review.rep(start).onsets[role] == before + 22  # type: ignore[union-attr]
    saved = ReviewStore(win.ctl.replay.path).corrections()  # type: ignore[union-attr]
    assert [round(c.corrected_s * FS) for c in saved][-1] == before + 22
    key(win, QtCore.Qt.Key.Key_Escape)  # the handle, then the rep
    key(win, QtCore.Qt.Key.Key_Escape)
    assert win.review.selected is None and not win.onset_editor.lines


def test_a_correction_moves_every_figure(review: MainWindow, tmp_path: Path) -> None:
    win = review
    pump(win, 20.0)
    win.act_pause.trigger()
    rep = next(r for r in win.tally.reps if r.order == "glute_first" and r.end is not None)
    win.rep_table.cellClicked.emit(win.rep_table.row_of(rep.start), 0)
    assert win.review.selected == rep.start
    left_before = dict(win.tally.side_counts("left"))
    counts_before = win.order_panel.counts.text()
    glute_l = rep.onsets[Role.GLUTE_L]
    assert glute_l is not None
    line = win.onset_editor.lines[Role.LUMBAR_L]
    target = glute_l - round(0.1 * FS)
    line.setValue(target / FS - win.traces.t_end)  # a drag, released
    line.sigPositionChangeFinished.emit(line)
    fixed = next(r for r in win.tally.reps if r.start == rep.start)
    assert fixed.left is not None and fixed.left.order == "lumbar_first"
    assert fixed.left.lag_ms == pytest.approx(-100, abs=1)
    assert fixed.order == "lumbar_first"
    row = win.rep_table.row_of(rep.start)
    assert row is not None
    assert win.rep_table.item(row, 3).text() == "lumbar first (was glute first)"
    assert "detected" in win.rep_table.item(row, 2).text()
    assert win.rep_table.item(row, 4).text() == "lumbar first"  # the left side follows
    left = win.tally.side_counts("left")
    assert left["lumbar_first"] == left_before["lumbar_first"] + 1
    assert left["glute_first"] == left_before["glute_first"] - 1
    assert win.order_panel.counts.text() != counts_before  # "left side: k/n glute first"
    # the session browser's figures follow the correction
    (listed,) = [r for r in browse(tmp_path) if r.path.name == DEMO.name]
    assert listed.corrected == 1
    # the overview recolours the rep
    fs_start = rep.start / FS
    spans = win.review.overview.reps.spans
    assert any(abs(a - fs_start) < 1e-6 and c.name() == "#d7263d" for a, _, c in spans)


def test_a_note_goes_to_the_selected_reps_row(review: MainWindow, qtbot) -> None:
    win = review
    pump(win, 20.0)
    win.act_pause.trigger()
    rep = next(r for r in win.tally.reps if r.end is not None)
    win.rep_table.cellClicked.emit(win.rep_table.row_of(rep.start), 0)

    def answer() -> None:  # the N dialog, typed into and accepted as a user does
        dialog = next(
            w
            for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, QtWidgets.QInputDialog) and w.isVisible()
        )
        dialog.setTextValue("hips shot up")
        dialog.accept()

    QtCore.QTimer.singleShot(200, answer)
    win.act_note.trigger()
    assert win.rep_table.note_text(rep.start) == "hips shot up"
    row = win.rep_table.row_of(rep.start)
    assert win.rep_table.item(row, win.rep_table.REASON).text() != "hips shot up"
    doc = json.loads(Path(str(win.ctl.replay.path) + ".json").read_text())  # type: ignore[union-attr]
    assert doc["notes"][-1]["text"] == "hips shot up"
    assert doc["notes"][-1]["t_s"] == pytest.approx(rep.start / FS, abs=1e-3)


def test_the_play_button_after_the_end_plays_from_the_start(review: MainWindow) -> None:
    win = review
    pump(win, 70.0, step=2.0)
    ctl = win.ctl
    assert ctl is not None and ctl.state == SessionState.FINISHED and ctl.replay is not None
    win.replay_bar.play_btn.click()  # (it toggled a transport with nothing left to play)
    assert ctl.state == SessionState.STREAMING and ctl.replay.position < FS
    pump(win, 0.5)  # (the seek runs on the session's worker; the window follows)
    assert not ctl.replay.paused and win.replay_bar.play_btn.text() == "Pause"
    win.replay_bar.play_btn.click()  # and it pauses as before
    assert ctl.replay.paused and win.replay_bar.play_btn.text() == "Play"


def test_home_end_zoom_and_speed(review: MainWindow) -> None:
    win = review
    pump(win, 10.0)
    replay = win.ctl.replay  # type: ignore[union-attr]
    assert replay is not None
    w = win.traces.window_s
    key(win, QtCore.Qt.Key.Key_Minus)
    assert win.traces.window_s == min(2 * w, 30.0)
    key(win, QtCore.Qt.Key.Key_Plus)
    key(win, QtCore.Qt.Key.Key_Plus)
    assert win.traces.window_s == pytest.approx(w / 2)
    key(win, QtCore.Qt.Key.Key_End)
    assert replay.position == replay.n_samples and replay.paused
    # the spans drawn are the last reps', each closed but (maybe) the file's last one: none
    # is left open from where the replay was before
    spans = list(win.traces._spans)
    assert spans and all(e is not None for _, e, _ in spans[:-1])
    assert min(st for st, _, _ in spans) >= replay.n_samples / FS - 60
    key(win, QtCore.Qt.Key.Key_Home)
    assert replay.position == 0
    win.replay_bar.speed.setCurrentText("0.1")
    assert replay.speed == pytest.approx(0.1)


def test_overview_click_and_drag(review: MainWindow, qtbot) -> None:
    win = review
    pump(win, 5.0)
    strip = win.review.overview
    vb = strip.getPlotItem().getViewBox()

    def at(t: float) -> QtCore.QPoint:
        return strip.mapFromScene(vb.mapViewToScene(QtCore.QPointF(t, 0.5)))

    QTest.mouseClick(strip.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=at(30.0))
    replay = win.ctl.replay  # type: ignore[union-attr]
    assert replay is not None
    # 30 s is centred in the traces
    assert replay.position == pytest.approx((30.0 + win.traces.window_s / 2) * FS, abs=FS * 0.3)
    # a drag from 40 to 44 s shows exactly that range, paused
    QTest.mousePress(strip.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=at(40.0))
    for t in (41.0, 42.0, 43.0, 44.0):
        QTest.mouseMove(strip.viewport(), at(t))
    QTest.mouseRelease(strip.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=at(44.0))
    assert win.traces.window_s == pytest.approx(4.0, abs=0.2)
    assert replay.paused and replay.position == pytest.approx(44.0 * FS, abs=FS * 0.2)


def test_a_file_connected_after_live_shows_its_own_time_zero(qtbot, store, tmp_path) -> None:
    """Live for a while, then a file connected through the source panel (not started yet):
    its file-time axis starts at 0:00, not at the live session's clock (it read 0:40-0:48)."""
    live = SourceChoice("simulator", {"fs": 2000.0, "preset": "clean", "seed": 2})
    win = MainWindow(store, source=live, threaded=False, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    win.show()
    pump(win, 20.0)
    assert win.traces.t_end > 15
    panel = win.source_panel
    panel.kind.setCurrentText("file")
    panel.file_path.setText(str(DEMO))
    qtbot.mouseClick(panel.connect_btn, QtCore.Qt.MouseButton.LeftButton)
    assert win.ctl is not None and win.ctl.replay is not None
    assert win.traces.t_end == 0.0 and win.traces.time_axis.offset == 0.0


def test_a_file_that_begins_mid_burst_shows_each_rep_once(qtbot, store, tmp_path: Path) -> None:
    """The table is filled ahead from the file's index, whose first reps are re-judged (the
    file begins without rest: their onsets are fitted again and their starts move by a few
    ms); the replay's own first records of those reps replace those rows, they are not shown
    beside them, before and after the replay re-judges them too."""
    from types import SimpleNamespace

    from bench import accuracy
    from bench.speed import write_bdf

    spec = next(s for s in accuracy.specs("mu-hard", 20, 40.0) if "seed 5005" in s.label)
    rec = accuracy.make_recording(spec)
    data = accuracy.full_array(rec)[: round(14 * rec.info.fs)]
    bdf = tmp_path / "mid_burst.bdf"
    write_bdf(bdf, SimpleNamespace(data=data, info=rec.info))
    # at the speed of life, so that the replay is where its first reps are played
    source = SourceChoice("file", {"path": str(bdf), "speed": 1.0})
    win = MainWindow(store, source=source, threaded=False)
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    qtbot.waitUntil(lambda: win.review.index is not None, timeout=60_000)
    index = win.review.index
    assert index is not None and any(r.rejudged for r in index.reps)  # the case at hand
    fs = win.ctl.fs  # type: ignore[union-attr]

    def spans() -> list[tuple[float, float]]:
        table = win.rep_table
        return [(s / fs, table._spans.get(s, s) / fs) for s in table._starts]

    def assert_no_overlap() -> None:
        got = spans()
        assert all(a[1] < b[0] for a, b in itertools.pairwise(got)), got

    replay = win.ctl.replay  # type: ignore[union-attr]
    assert replay is not None
    while replay.position < 7.0 * fs:  # the first two reps played, not yet re-judged (8 s)
        pump(win, 0.1, step=0.1)
    assert replay.position < 7.9 * fs
    assert_no_overlap()
    assert win.rep_table.rowCount() == len(index.reps)
    pump(win, 4.0)  # past the re-judging
    assert_no_overlap()
    assert win.rep_table.rowCount() == len(index.reps)
    counted = len(win.tally.reps)
    # Home, and play from the start again: a new pass, counted from none; Home once more
    # while a rep is cued but not yet ended: the cue is not left in the count
    key(win, QtCore.Qt.Key.Key_Home)
    assert not win.tally.reps
    if replay.paused:
        key(win, QtCore.Qt.Key.Key_Space)
    for _ in range(300):
        if any(r.end is None for r in win.tally.reps):
            break
        pump(win, 0.05, step=0.05)
    assert any(r.end is None for r in win.tally.reps)
    key(win, QtCore.Qt.Key.Key_Home)
    assert not win.tally.reps and win.tally.count == 0
    if replay.paused:
        key(win, QtCore.Qt.Key.Key_Space)
    while replay.position < 7.0 * fs:
        pump(win, 0.1, step=0.1)
    # the rows wait for the replay's records, and the tally counts each rep once
    assert_no_overlap()
    assert win.rep_table.rowCount() == len(index.reps)
    tallied = sorted((r.start, r.end if r.end is not None else r.start) for r in win.tally.reps)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(tallied)), tallied
    pump(win, 4.0)
    assert len(win.tally.reps) == counted


def test_start_opens_another_file_picked_while_one_is_replayed(
    review: MainWindow, qtbot, tmp_path: Path
) -> None:
    """Pause a replay, type another file into the source panel, press Start: that file is
    replayed (before, Start did nothing while the first one was paused)."""
    win = review
    pump(win, 2.0)
    key(win, QtCore.Qt.Key.Key_Space)  # pause
    ctl = win.ctl
    assert ctl is not None and ctl.replay is not None and ctl.replay.paused
    src = DEMO.with_name("demo_lumbar_first.bdf")
    other = tmp_path / "other" / src.name
    other.parent.mkdir()
    shutil.copy(src, other)
    shutil.copy(src.with_name(src.name + ".json"), other.with_name(other.name + ".json"))
    field = win.source_panel.file_path
    field.clear()
    qtbot.keyClicks(field, str(other))
    win.source_panel.start_btn.click()
    ctl = win.ctl
    assert ctl is not None and ctl.replay is not None
    assert Path(ctl.replay.path).resolve() == other.resolve()
    assert ctl.state == SessionState.STREAMING
    assert win.tally.count == 0  # nothing of the first file


def test_the_rate_is_the_files_at_any_speed_and_after_a_jump_back(review: MainWindow) -> None:
    """Found by a newcomer: "-29,286 Hz" after ← (the sample count started again under a
    rate measured across the jump), and "8,000 Hz" for a 2 kHz file played at 4x."""
    win = review
    win.replay_bar.speed.setCurrentText("4")
    pump(win, 3.0)
    win._update_status(1e9)
    assert win.status_labels["rate"].text().startswith("2,000 Hz ×4")
    win.replay_bar.speed.setCurrentText("1")
    pump(win, 6.0)
    for _ in range(3):  # rep by rep back towards the start, playing on between the jumps
        win.review.act_prev.trigger()
        pump(win, 0.3)
        win._update_status(1e9)
        text = win.status_labels["rate"].text()
        assert text.startswith("2,000 Hz") and "-" not in text, text


def test_a_row_of_the_file_keeps_its_final_record_while_its_rep_plays(review: MainWindow) -> None:
    """Found by a newcomer: the row of the rep under way turned from the file's "glute first"
    to the cue's "undetermined" (a side still pending), and back at the rep's end."""
    win = review
    index = win.review.index
    assert index is not None and index.reps
    table = win.rep_table

    def cells(row: int) -> list[str]:  # lag, verdict, left, right, onsets
        return [table.item(row, col).text() for col in range(2, 7)]

    finals = {r.start: cells(table.row_of(r.start)) for r in index.reps}  # shown ahead
    under_way = 0
    for _ in range(150):  # 15 s in 0.1 s steps: several reps cued, then ended
        pump(win, 0.1, step=0.1)
        for rep in win.ctl.tally.reps:  # type: ignore[union-attr]
            if rep.end is not None:
                continue
            under_way += 1
            start = next(s for s in finals if abs(s - rep.start) < 0.1 * FS)
            row = table.row_of(start)
            assert row is not None, rep.start
            assert cells(row) == finals[start], (row, rep.order)
    assert under_way > 0  # the check saw reps under way
    assert table.rowCount() == len(index.reps)


def test_a_jump_back_into_the_file_counts_a_rep_under_way_as_its_final_record(
    review: MainWindow,
) -> None:
    """A rep cued but not ended before a seek never ends in that pass: its count is the
    file's final record, not the cue; the reps before the target stay counted."""
    win = review
    from app.review import SLIDER_STEPS

    pump(win, 20.0)
    for _ in range(300):  # on until a rep is under way
        if any(r.end is None for r in win.tally.reps):
            break
        pump(win, 0.05, step=0.05)
    assert any(r.end is None for r in win.tally.reps)
    before = win.tally.count
    bar = win.replay_bar
    bar.slider.sliderPressed.emit()
    bar.slider.setValue(SLIDER_STEPS // 6)  # back to 0:10 of the 1:00 file
    bar.slider.sliderReleased.emit()
    assert all(r.end is not None for r in win.tally.reps)
    assert win.tally.count == before  # a jump into the file is no new pass


def test_a_side_waiting_for_its_onset_says_when_it_has_fired(review: MainWindow) -> None:
    """The banner's detail read "right: lumbar not yet fired" for a second after the right
    lumbar's onset was drawn on the traces (the side is judged at the rep's end)."""
    win = review
    index = win.review.index
    assert index is not None
    panel = win.order_panel
    replay = win.ctl.replay  # type: ignore[union-attr]
    assert replay is not None
    fired_seen = 0
    for _ in range(300):  # 15 s in 50 ms steps
        pump(win, 0.05, step=0.05)
        rep = panel.shown_record
        if rep is None or rep.end is not None:
            continue
        final = next(r for r in index.reps if abs(r.start - rep.start) < 0.1 * FS)
        for role, at in rep.onsets.items():
            truth = final.onsets.get(role)
            if at is not None or truth is None or truth + 0.3 * FS > win.ctl.position:  # type: ignore[union-attr]
                continue  # (an onset is confirmed well within 0.3 s)
            side = "left" if role.value.endswith("_l") else "right"
            muscle = "glute" if role.is_glute else "lumbar"
            text = panel.detail.text().replace("\xa0", " ")
            assert f"{side}: {muscle} not yet fired" not in text, text
            assert re.search(rf"{side}: [a-z ]+ fired, judged at the rep's end", text), text
            fired_seen += 1
    assert fired_seen > 0  # (the demo has reps decided before a side's lumbar fired)
