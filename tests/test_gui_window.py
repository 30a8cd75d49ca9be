"""The live window in real Qt (offscreen), driven on the simulator as fast as possible.

The tests step the session synchronously and call the same timer slot the app uses
(``MainWindow.refresh``), so no test depends on wall-clock time.
"""

from __future__ import annotations

import itertools
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore, QtWidgets

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from devices.drivers.base import Device, DeviceError, register
from dsp.contract import Chunk, Role, StreamInfo
from dsp.reps import RepResult, group_onset

SIM = SourceChoice("simulator", {"fs": 2000.0, "preset": "clean", "seed": 11})


def run_for(win: MainWindow, seconds: float, step: float = 0.25) -> None:
    assert win.session is not None
    for _ in range(round(seconds / step)):
        win.session.pump(step)
        win.refresh()


def make(qtbot, store: SettingsStore, source: SourceChoice = SIM) -> MainWindow:
    win = MainWindow(store, source=source, threaded=False)
    qtbot.addWidget(win)
    win.show()
    return win


def test_reps_appear_and_match_truth(qtbot, store: SettingsStore) -> None:
    win = make(qtbot, store)
    cued: list[str] = []
    win.cues.cue_played.connect(cued.append)
    run_for(win, 30.0)
    reps = win.tally.reps
    assert len(reps) >= 8
    truth = win.session.device.truth()  # type: ignore[union-attr]
    fs = win.session.info.fs  # type: ignore[union-attr]
    checked = 0
    for rt in truth.reps:
        if abs(rt.lag_ms) < 40 or not rt.complete:
            continue
        match = [r for r in reps if abs(r.start / fs - rt.start_s) < 0.1]
        assert match and match[0].order == rt.order
        checked += 1
    assert checked >= 5
    # the verdict is drawn, in words, and a cue was issued for every rep (default rules)
    assert win.order_panel.verdict.order == reps[-1].order
    assert win.order_panel.verdict.text().startswith(reps[-1].order.replace("_", " ").upper())
    assert len(cued) == len(reps)
    assert "session" in win.order_panel.counts.text()


def test_traces_draw_every_channel(qtbot, store: SettingsStore) -> None:
    win = make(qtbot, store)
    win.resize(1366, 740)  # (offscreen, the window opens within an 800x600 screen)
    QtWidgets.QApplication.processEvents()
    run_for(win, 6.0)
    curves = win.traces._curves
    assert len(curves) == 4
    for c in curves:
        x, y = c.getData()
        assert x is not None and len(x) > 0 and np.isfinite(y).any()
    x, _ = curves[0].getData()
    # x is time before now; the newest sample is drawn, the oldest within one decimation bin
    # (a min/max pair per bin: max_points / 2 bins over the window)
    bin_s = 2 * win.traces.window_s / win.traces.max_points
    assert x[-1] == 0.0 and x[0] == pytest.approx(-10.0, abs=bin_s + 1e-3)
    assert win.traces.t_end == pytest.approx(win.session.stats.samples / 2000.0, abs=0.03)  # type: ignore[union-attr]
    image = win.grab().toImage()
    assert image.width() > 800 and not image.isNull()


def test_athlete_view_opens_with_shortcut_action(qtbot, store: SettingsStore) -> None:
    win = make(qtbot, store)
    run_for(win, 8.0)
    win.act_athlete.trigger()
    view = win.athlete_view
    assert view is not None and view.isVisible()
    with qtbot.waitSignal(win.rep_shown, timeout=10_000):
        run_for(win, 4.0)
    win.act_athlete.trigger()
    assert not view.isVisible()


def test_settings_persist_across_restart(qtbot, store: SettingsStore, tmp_path: Path) -> None:
    win = make(qtbot, store)
    new = win.settings.with_(tolerance_ms=35.0, exercise="deadlift")
    prefs = type(win.prefs)(**{**win.prefs.__dict__, "window_s": 20.0})
    win.apply_settings(new, prefs)
    win.close()
    again = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    win2 = make(qtbot, again)
    assert win2.settings.tolerance_ms == 35.0 and win2.settings.exercise == "deadlift"
    assert win2.traces.window_s == 20.0
    assert win2.session is not None and win2.session.settings.tolerance_ms == 35.0


def test_channel_mapping_is_remembered(qtbot, store: SettingsStore) -> None:
    win = make(qtbot, store)
    # Unmap the right glute: the left glute and both lumbar channels remain.
    combo = win.source_panel.mapping.cellWidget(1, 1)
    combo.setCurrentText("—")
    run_for(win, 1.0)
    assert Role.GLUTE_R not in win.session.info.roles  # type: ignore[union-attr]
    assert store.load_mapping("simulator") == {
        "glute_l": "glute_l",
        "lumbar_l": "lumbar_l",
        "lumbar_r": "lumbar_r",
    }
    win.close()
    win2 = make(qtbot, store)
    assert Role.GLUTE_R not in win2.session.info.roles  # type: ignore[union-attr]


class _Failing(Device):
    """Delivers a second of data, then reports an unplugged device."""

    def __init__(self, **_: object) -> None:
        self.n = 0

    def open(self) -> StreamInfo:
        return StreamInfo(1000.0, ("g", "l"), {Role.GLUTE_L: 0, Role.LUMBAR_L: 1})

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...

    def read(self) -> Chunk | None:
        self.n += 1
        if self.n > 50:
            raise DeviceError("device unplugged (cable pulled?)")
        rng = np.random.default_rng(self.n)
        return Chunk(rng.standard_normal((20, 2)) * 5, (self.n - 1) * 20)


register("failing-test-device", _Failing)


def test_device_error_reaches_status_bar_and_window_stays_usable(qtbot, store) -> None:
    win = make(qtbot, store, SourceChoice("failing-test-device", {}))
    for _ in range(80):
        try:
            win.session.pump_once()  # type: ignore[union-attr]
        except DeviceError as exc:
            win.session._fail(exc)  # type: ignore[union-attr]  (what the worker does)
            break
    win.refresh()
    assert "device unplugged" in win.statusBar().currentMessage()
    assert win.session.stats.samples == 1000  # type: ignore[union-attr]  nothing lost
    win.act_raw.trigger()
    win.refresh()
    assert win.traces.show_raw
    # a fresh start after the error works (new stream, window alive)
    win.source_panel.kind.setCurrentText("simulator")
    win.connect_source(SIM)
    win.start()
    run_for(win, 2.0)
    assert win.session.state == "streaming" and win.session.stats.samples >= 4000  # type: ignore[union-attr]


def test_unknown_source_is_a_message_not_a_crash(qtbot, store) -> None:
    win = make(qtbot, store)
    win.connect_source(SourceChoice("no-such-device", {}))
    assert "no-such-device" in win.statusBar().currentMessage()
    assert isinstance(win, QtWidgets.QMainWindow) and win.isVisible()


def test_mark_event_and_pause(qtbot, store) -> None:
    win = make(qtbot, store)
    run_for(win, 2.0)
    win.act_mark.trigger()
    assert len(win.traces.marks) == 1
    win.act_pause.trigger()
    t_before = win.traces.t_end
    run_for(win, 1.0)
    assert win.traces.t_end == t_before  # frozen view
    assert win.session.stats.samples >= 6000  # type: ignore[union-attr]  acquisition went on
    win.act_pause.trigger()
    run_for(win, 0.5)
    assert win.traces.t_end > t_before
    assert isinstance(win.tally.reps, list) and all(
        isinstance(r, RepResult) for r in win.tally.reps
    )


def test_calibration_from_the_window_is_reused_on_reconnect(qtbot, store) -> None:
    from app.calibration import CalibrationWizard

    win = make(qtbot, store)
    win.source_panel.athlete.setText("maria")
    run_for(win, 0.5)
    win.open_calibration()
    wiz = win.findChild(CalibrationWizard)
    assert wiz is not None
    wiz.countdown_s, wiz.rest_s = 0, 1.0
    wiz.next()
    wiz.rest_page.start()
    run_for(win, 1.5)
    qtbot.waitUntil(wiz.rest_page.isComplete, timeout=5000)
    wiz.next()
    wiz.findChild(QtWidgets.QCheckBox, "reference_skip").setChecked(True)
    wiz.next()
    wiz.accept()
    assert store.load_calibration("maria") is not None
    assert "maria" in win.statusBar().currentMessage()
    win.connect_source(SIM)
    assert "calibration of maria reused" in win.statusBar().currentMessage()
    assert win.session.pipeline.baseline.calibrated is not None  # type: ignore[union-attr]


def test_sixteen_channels_at_4096_hz(qtbot, store) -> None:
    names = ",".join(["glute_l", "glute_r", "lumbar_l", "lumbar_r"] + [f"x{i}" for i in range(12)])
    src = SourceChoice("simulator", {"fs": 4096.0, "preset": "clean", "channels": names, "seed": 5})
    win = make(qtbot, store, src)
    run_for(win, 12.0, step=0.5)  # more than the 10 s window: every point has data
    assert win.session.info.n_channels == 16  # type: ignore[union-attr]
    assert len(win.traces._curves) == 16 and len(win.tally.reps) >= 1
    x, y = win.traces._curves[15].getData()
    assert len(x) <= 2 * win.traces.max_points and np.isfinite(y).all()


def test_reference_calibration_shows_percent_in_lane_labels(qtbot, store) -> None:
    win = make(qtbot, store)
    run_for(win, 1.0)
    done = []
    win.session.calibrate_reference([0, 1], 1.0, done.append)  # type: ignore[union-attr]
    run_for(win, 4.0)
    assert done and win.traces.reference is not None
    lanes = win.traces.lane_axis.lanes()
    assert any(text.endswith("% ref") for text, _, _ in lanes[0].lines)
    assert not any(text.endswith("% ref") for text, _, _ in lanes[2].lines)


def test_replay_a_file_in_the_window(qtbot, store, tmp_path: Path) -> None:
    from app.cli import main

    csv = tmp_path / "session.csv"
    assert main(["simulate", "--duration", "20", "--seed", "9", "--out", str(csv)]) == 0
    win = make(qtbot, store)
    panel = win.source_panel
    panel.kind.setCurrentText("file")
    assert panel.forms.currentWidget() is panel._pages["file"]
    panel.file_path.setText(str(csv))
    panel.connect_btn.click()
    win.start()
    assert win.session is not None and win.session.info.source.startswith("file")
    run_for(win, 20.0, step=0.5)
    assert len(win.tally.reps) >= 5
    assert panel.choice().device_id == f"file:{csv}"


def test_record_in_the_window_then_analyze_the_file(qtbot, store, tmp_path: Path) -> None:
    from app.cli import main
    from devices.files import read_recording

    win = MainWindow(store, source=SIM, threaded=False, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    run_for(win, 1.0)
    win.act_record.trigger()
    assert win.recorder is not None
    run_for(win, 12.0)
    win.act_mark.trigger()
    run_for(win, 1.0)
    assert win.state_strip.rec.text().startswith("● REC 00:1")  # 13 s recorded
    win.act_record.trigger()
    assert win.recorder is None and not win.act_record.isChecked()
    files = list(tmp_path.glob("*.bdf"))
    assert len(files) == 1
    rec = read_recording(str(files[0]))
    assert rec.roles and rec.data.shape[0] >= 13 * 2000 - 600
    texts = [a.text for a in rec.annotations]
    assert any(t.startswith("rep ") for t in texts) and any(t.startswith("mark:") for t in texts)
    assert any(t.startswith("cue ") for t in texts)
    assert win.session is not None and win.session.state == "streaming"
    # the roles travel in the file: analyze needs no --channels
    assert main(["analyze", str(files[0]), "--json"]) == 0


def test_unwritable_recordings_folder_is_a_message(qtbot, store, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.write_text("a file, not a folder")
    win = MainWindow(store, source=SIM, threaded=False, recordings_dir=str(locked / "sub"))
    qtbot.addWidget(win)
    run_for(win, 0.5)
    assert win.start_recording() is False
    assert "recording not started" in win.statusBar().currentMessage()
    run_for(win, 1.0)
    assert win.session is not None and win.session.state == "streaming"


def test_review_rep_table_and_replay_transport(qtbot, store, tmp_path: Path) -> None:
    from app.cli import main

    csv = tmp_path / "review.csv"
    assert main(["simulate", "--duration", "40", "--seed", "13", "--out", str(csv)]) == 0
    src = SourceChoice("file", {"path": str(csv), "speed": 1.0})
    win = make(qtbot, store, src)
    bar, table = win.replay_bar, win.rep_table
    assert not bar.isHidden()
    qtbot.waitUntil(lambda: len(bar.rep_starts) >= 10, timeout=20_000)  # background index
    run_for(win, 20.0, step=0.5)
    n_rows = table.rowCount()
    assert n_rows == len(win.tally.reps) >= 5
    assert table.item(0, 3).text() == win.tally.reps[0].order.replace("_", " ")
    # click rep 2: it is shown 30 % into the traces, playback paused there, its onsets as
    # handles; playing on, the same reps do not come twice
    second = win.tally.reps[1]
    table.cellClicked.emit(1, 0)
    device = win.session.device  # type: ignore[union-attr]
    window = round(win.traces.window_s * 2000)
    assert device.position == max(second.start + round(0.7 * window), second.end + 200)
    assert device.paused and win.review.selected == second.start
    assert set(win.onset_editor.lines) == {r for r, i in second.onsets.items() if i is not None}
    win.replay_bar.play_btn.click()
    run_for(win, 10.0, step=0.5)
    assert table.rowCount() == n_rows and len(win.tally.reps) == n_rows
    assert [r.start for r in win.tally.reps] == sorted(r.start for r in win.tally.reps)
    # next rep from here, and speed / pause controls reach the source
    # (rep ▶ playing: on from the rep on show, the last one begun by the traces' newest sample)
    on_show = max(s for s in bar.rep_starts if s <= win.traces.t_end * 2000)
    bar.next_btn.click()
    following = min(s for s in bar.rep_starts if s > on_show)
    assert device.position == following - 4000
    bar.next_btn.click()  # pressing again moves on to the rep after
    assert device.position == min(s for s in bar.rep_starts if s > following) - 4000
    bar.speed.setCurrentText("4")
    assert device.speed == 4.0
    bar.play_btn.click()
    assert device._paused and bar.play_btn.text() == "Play"
    bar.play_btn.click()
    assert not device._paused
    bar.update_position()
    from app.review import SLIDER_STEPS

    assert bar.slider.value() == int(SLIDER_STEPS * device.position / device.n_samples)


def test_live_sources_hide_the_replay_bar(qtbot, store) -> None:
    win = make(qtbot, store)
    assert win.replay_bar.isHidden()


def test_session_browser_lists_recordings_and_replays_one(qtbot, store, tmp_path: Path) -> None:
    from devices.files.locations import EXAMPLES
    from devices.files.sidecar import browse as scan

    win = MainWindow(store, source=SIM, threaded=False, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    win.source_panel.athlete.setText("kim")
    run_for(win, 0.5)
    assert win.start_recording()
    run_for(win, 14.0)
    win.stop_recording()
    rows = scan(tmp_path)
    assert len(rows) == 1 and rows[0].athlete == "kim" and rows[0].exercise == "hinge"
    assert rows[0].reps == len(win.tally.reps) >= 3 and rows[0].glute_first_pct is not None
    table = win.sessions.table
    # the user's recordings first, then the shipped examples (read-only)
    assert table.rowCount() == 1 + len(scan(EXAMPLES)) and table.item(0, 1).text() == "kim"
    # under a minute in seconds ("0.2 min" was 14 s), a minute and more in minutes
    dur = win.sessions.HEAD.index("duration")
    assert table.item(0, dur).text() == f"{rows[0].duration_s:.0f} s"
    demo = next(r for r in range(table.rowCount()) if "demo" in table.item(r, 7).text())
    assert table.item(demo, dur).text() == "1.0 min"
    table.cellDoubleClicked.emit(0, 0)
    assert win.session is not None and win.session.info.source.startswith("file")
    assert not win.replay_bar.isHidden()


def test_session_browser_on_the_demo_recordings() -> None:
    from devices.files.sidecar import browse as scan

    rows = scan(Path(__file__).resolve().parents[1] / "recordings")
    names = {r.path.name for r in rows}
    assert {"demo_glute_first.bdf", "demo_lumbar_first.bdf"} <= names


def test_drag_an_onset_to_correct_it(qtbot, store, tmp_path: Path) -> None:
    import json
    import shutil

    demo = Path(__file__).resolve().parents[1] / "recordings" / "demo_glute_first.bdf"
    bdf = tmp_path / demo.name
    shutil.copy(demo, bdf)
    shutil.copy(demo.with_suffix(".bdf.json"), tmp_path / (demo.name + ".json"))
    win = make(qtbot, store, SourceChoice("file", {"path": str(bdf), "speed": 1.0}))
    run_for(win, 20.0, step=0.5)
    win.act_pause.trigger()
    fs = win.session.info.fs  # type: ignore[union-attr]
    t0 = win.traces.t_end - win.traces.window_s
    row, rep = next(
        (i, r)
        for i, r in enumerate(win.tally.reps)
        if r.start / fs > t0 + 0.5 and r.order == "glute_first" and r.end
    )
    win.rep_table.cellClicked.emit(row, 0)
    lines = win.onset_editor.lines
    assert set(lines) == {r for r, i in rep.onsets.items() if i is not None}
    # move the left lumbar onset to 100 ms before the earliest glute onset
    first_glute = min(i for r, i in rep.onsets.items() if r.is_glute and i is not None)
    target = first_glute - round(0.1 * fs)
    lines[Role.LUMBAR_L].setValue(target / fs - win.traces.t_end)
    lines[Role.LUMBAR_L].sigPositionChangeFinished.emit(lines[Role.LUMBAR_L])
    fixed = next(r for r in win.tally.reps if r.start == rep.start)
    # the lag runs from the glute group's onset (both sides pooled where their intervals
    # overlap, as the detector groups them), which the correction leaves where it was
    known = {r: float(i) for r, i in rep.onsets.items() if i is not None}
    glutes = group_onset(known, rep.onset_ci, [r for r in known if r.is_glute])
    assert glutes is not None and glutes.at >= first_glute
    want = (target - glutes.at) * 1000.0 / fs
    assert fixed.order == "lumbar_first" and fixed.lag_ms == pytest.approx(want, abs=1)
    assert want <= -100
    assert win.corrections[-1][0] == rep  # the detected rep is kept beside the correction
    assert win.rep_table.item(row, 3).text() == "lumbar first (was glute first)"
    win.add_note("hips shot up early")
    doc = json.loads((tmp_path / (demo.name + ".json")).read_text())
    assert doc["notes"][-1]["text"] == "hips shot up early"
    corr = doc["corrections"][-1]
    assert corr["role"] == "lumbar_l" and corr["order"] == "lumbar_first"
    assert corr["detected_s"] == pytest.approx(rep.onsets[Role.LUMBAR_L] / fs, abs=1e-3)


def test_replay_loops_a_range(qtbot, store, tmp_path: Path) -> None:
    from app.cli import main

    csv = tmp_path / "loop.csv"
    assert main(["simulate", "--duration", "30", "--seed", "14", "--out", str(csv)]) == 0
    win = make(qtbot, store, SourceChoice("file", {"path": str(csv), "speed": 1.0}))
    bar = win.replay_bar
    device = win.session.device  # type: ignore[union-attr]
    run_for(win, 2.0, step=0.5)
    bar.set_loop_point(0, 4000)
    bar.set_loop_point(1, 10000)
    bar.loop.setChecked(True)
    positions = []
    for _ in range(30):
        run_for(win, 0.5, step=0.5)
        win._last_status = 0.0  # let the next refresh run its 4 Hz housekeeping
        win.refresh()
        positions.append(device.position)
    assert max(positions) <= 10000 + 2000 and min(positions[5:]) >= 4000 - 1
    assert any(b < a for a, b in itertools.pairwise(positions))  # it jumped back


def test_export_a_report_from_the_window(qtbot, store, tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[1] / "recordings" / "demo_lumbar_first.bdf"
    win = make(qtbot, store, SourceChoice("file", {"path": str(demo), "speed": 1.0}))
    out = tmp_path / "report.html"
    job = win.export_report(str(out))
    assert job is not None
    # the work runs on a thread; the window reports the end in its status bar
    qtbot.waitUntil(lambda: "report saved" in win.statusBar().currentMessage(), timeout=60_000)
    assert out.exists() and out.with_suffix(".csv").exists()
    assert "lumbar" in out.read_text()


def test_export_without_a_file_is_a_message(qtbot, store) -> None:
    win = make(qtbot, store)
    assert win.export_report("/tmp/never.html") is None
    assert "nothing to report on" in win.statusBar().currentMessage()
