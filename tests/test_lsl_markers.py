"""LSL markers in: a real pylsl outlet's markers land on the EMG timeline and in the BDF+.

Every test runs liblsl on the loopback-only config (tests/lsl_env.py) with a stream name of
its own, and bounds every wait.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devices.drivers.simulator import SimulatorDevice
from devices.files import read_recording
from devices.session.clock_map import ClockMap
from devices.session.controller import SessionController
from devices.session.markers_in import MarkerFeed, list_marker_streams
from devices.session.states import MarkKind
from dsp.settings import DspSettings
from tests.lsl_env import lsl_loopback  # noqa: F401 (the fixture, used by pytestmark)

pytestmark = pytest.mark.usefixtures("lsl_loopback")

FS = 2000.0


def unique(stem: str) -> str:
    return f"fireorder-test-{stem}-{uuid.uuid4().hex[:8]}"


def marker_outlet(name: str, fmt: str = "string") -> Any:
    import pylsl

    channel_format = pylsl.cf_string if fmt == "string" else pylsl.cf_float32
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, channel_format, name)
    return pylsl.StreamOutlet(info)


def until(ctl: SessionController, done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        ctl.drain()
        time.sleep(0.01)
    ctl.drain()


def realtime_sim() -> SimulatorDevice:
    return SimulatorDevice(preset="clean", realtime=True, seed=5, fs=FS)


# -- the clock map (pure) ---------------------------------------------------------------------


def test_clock_map_follows_the_earliest_arrivals_and_the_drift() -> None:
    """Chunks arrive 0-30 ms late (never early) from a board whose clock runs 200 ppm slow:
    the map puts a host time within a sample or two of the sample taken then."""
    import random

    rnd = random.Random(1)
    fs, t0, true_fs = 1000.0, 500.0, 1000.0 * (1 - 200e-6)
    cm = ClockMap(fs)
    assert cm.index_at(t0) is None and not cm.ready
    last = 0
    while last < 30_000:
        last += 10
        delay = rnd.choice([0.0005, 0.001, 0.002, 0.008, 0.03])
        if rnd.random() < 0.02:
            delay += 0.4  # a stall, then a burst of late chunks
        cm.feed(t0 + last / true_fs + delay, last)
    for i in (25_000, 29_000, 30_500):
        t = t0 + i / true_fs
        assert abs(cm.index_at(t) - i) <= 2  # type: ignore[operator]
        assert abs(cm.time_of(i) - t) <= 0.002  # type: ignore[operator]


# -- markers into a recording ------------------------------------------------------------------


def test_markers_land_in_the_recording_within_a_chunk_of_their_sample(tmp_path: Path) -> None:
    import pylsl

    name = unique("rec")
    outlet = marker_outlet(name)
    device = realtime_sim()
    ctl = SessionController(device, recordings_dir=tmp_path, device_marks=MarkKind.TRUTH)
    notices: list[str] = []
    ctl.on_notice = notices.append
    ctl.open()
    ctl.attach_markers(name)
    feed = ctl.marker_feed
    assert feed is not None
    path = ctl.start_recording()
    ctl.start(threaded=True)
    try:
        until(ctl, feed.connected.is_set)
        until(ctl, lambda: ctl.position >= FS * 1.0)
        sent: list[tuple[str, float]] = []
        # one from before the stream began: kept at the recording's start, with a note
        early = device._t0 - 0.75  # (the simulator's own start time is its sample clock)
        outlet.push_sample(["before start"], early)
        for k in range(6):
            now = pylsl.local_clock()
            # some stamped when pushed, some back-dated (a trigger box reporting late)
            stamp = now - (0.15 if k % 2 else 0.0)
            outlet.push_sample([f"stim {k}"], stamp)
            sent.append((f"stim {k}", stamp))
            time.sleep(0.21)
            ctl.drain()
        until(ctl, lambda: ctl.markers_placed >= 7)
        status = feed.status()
    finally:
        ctl.close()
    assert status.endswith("7 markers received")
    got = {a.text: a.onset_s for a in read_recording(path).annotations}
    errors = []
    for label, stamp in sent:
        true_s = stamp - device._t0  # the simulator's sample i is taken at t0 + i / fs
        errors.append(got[f"marker {label}"] - true_s)
    # within one chunk (the simulator's packets are 10 ms) of the true sample
    assert max(abs(e) for e in errors) <= 0.010, errors
    (before,) = [t for t in got if t.startswith("marker before start")]
    assert "0.750 s before the recording began" in before and got[before] == 0.0
    assert any("came before the recording began" in n for n in notices)
    device_marks = [m for m in ctl.marks if m.kind == MarkKind.DEVICE]
    assert [m.label for m in device_marks][1:] == [label for label, _ in sent]


def test_a_marker_still_waiting_when_the_stream_ends_is_kept_on_its_last_sample(
    tmp_path: Path,
) -> None:
    import pylsl

    name = unique("late")
    outlet = marker_outlet(name)
    ctl = SessionController(realtime_sim(), recordings_dir=tmp_path, device_marks=MarkKind.TRUTH)
    ctl.open()
    ctl.attach_markers(name)
    feed = ctl.marker_feed
    assert feed is not None
    path = ctl.start_recording()
    ctl.start(threaded=True)
    try:
        until(ctl, feed.connected.is_set)
        until(ctl, lambda: ctl.position >= FS * 0.5)
        outlet.push_sample(["end of set"], pylsl.local_clock() + 1.0)  # its sample never comes
        until(ctl, lambda: feed.received == 1)
        ctl.drain()
        assert ctl.markers_placed == 0  # held: its sample has not arrived
    finally:
        ctl.stop()
        last = ctl.position - 1
        ctl.close()
    (mark,) = [m for m in ctl.marks if m.kind == MarkKind.DEVICE]
    assert mark.index == last and mark.label.startswith("end of set (")
    texts = [a.text for a in read_recording(path).annotations]
    assert f"marker {mark.label}" in texts


def test_markers_of_the_cli_recording_show_in_its_report(tmp_path: Path) -> None:
    """``fireorder record --markers NAME`` as a user runs it: the markers are in the BDF+
    annotations and in the report's notes table."""
    import subprocess
    import sys

    name = unique("cli")
    outlet = marker_outlet(name, "float")
    out = tmp_path / "session.bdf"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "record",
            "--source",
            "simulator",
            "--duration",
            "6",
            "--markers",
            name,
            "--out",
            str(out),
            "--folder",
            str(tmp_path),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not outlet.have_consumers():
            assert time.monotonic() < deadline and proc.poll() is None, "no inlet came"
            time.sleep(0.05)
        time.sleep(1.0)
        for code in (11.0, 22.0, 33.0):
            outlet.push_sample([code])
            time.sleep(0.5)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"marker stream {name} connected" in stderr
    texts = [a.text for a in read_recording(out).annotations]
    assert [t for t in texts if t.startswith("marker ")] == ["marker 11", "marker 22", "marker 33"]
    report = tmp_path / "report.html"
    done = subprocess.run(  # noqa: PLW1510 (the return code is asserted)
        [sys.executable, "-m", "app", "report", str(out), "--out", str(report)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    html = report.read_text()
    assert "marker 11" in html and "marker 33" in html


def test_bad_marker_option_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(  # noqa: PLW1510 (the return code is asserted)
        [
            sys.executable,
            "-m",
            "app",
            "live",
            "--source",
            "simulator",
            "--fast",
            "--duration",
            "1",
            "--markers",
            "  ",
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fireorder: error: --markers needs the name of an LSL marker stream"
    ]


# -- the outlet going away ----------------------------------------------------------------------


def test_the_marker_outlet_stopping_is_a_notice_and_the_session_goes_on() -> None:
    name = unique("gone")
    outlet = marker_outlet(name)
    ctl = SessionController(realtime_sim(), device_marks=MarkKind.TRUTH)
    notices: list[str] = []
    ctl.on_notice = notices.append
    ctl.open()
    ctl.attach_markers(MarkerFeed(name, resolve_s=0.3))
    feed = ctl.marker_feed
    assert feed is not None
    ctl.start(threaded=True)
    try:
        until(ctl, feed.connected.is_set)
        outlet.push_sample(["one"])
        until(ctl, lambda: ctl.markers_placed == 1)
        del outlet  # the trigger program quits
        until(ctl, lambda: any(n.endswith("lost; waiting for it to come back") for n in notices))
        assert "lost" in feed.status()
        at = ctl.position
        until(ctl, lambda: ctl.position > at + FS * 0.5)  # the EMG goes on
        outlet = marker_outlet(name)  # ... and starts again
        until(ctl, lambda: any(n.endswith(f"{name} back") for n in notices))
        outlet.push_sample(["two"])
        until(ctl, lambda: ctl.markers_placed == 2)
    finally:
        ctl.close()
    assert [m.label for m in ctl.marks if m.kind == MarkKind.DEVICE] == ["one", "two"]
    assert sum(" lost;" in n for n in notices) == 1  # one line, not one per retry
    assert ctl.error is None
    assert feed.state == "stopped" and not feed.running


def test_the_picker_lists_marker_streams_not_emg() -> None:
    import pylsl

    name = unique("list")
    _markers = marker_outlet(name)
    emg_name = unique("emg")
    emg = pylsl.StreamOutlet(pylsl.StreamInfo(emg_name, "EMG", 4, 2000.0, pylsl.cf_float32, "e"))
    found = {s.name: s for s in list_marker_streams(wait_s=1.0)}
    assert name in found and emg_name not in found
    assert found[name].format == "string" and found[name].channels == 1
    del emg


# -- BrainFlow's marker channel, the same path ----------------------------------------------------


def test_brainflow_markers_reach_the_recording(tmp_path: Path) -> None:
    from devices.drivers.brainflow_board import BrainFlowDevice

    device = BrainFlowDevice("SYNTHETIC_BOARD", stall_timeout_s=0.5, retry_s=(0.1, 0.5))
    settings = DspSettings().with_(bandpass_high_hz=100.0, notch_hz=0.0)
    ctl = SessionController(device, settings, recordings_dir=tmp_path)
    try:
        ctl.open()
        path = ctl.start_recording()
        ctl.start(threaded=True)
        until(ctl, lambda: ctl.position >= 100)
        assert device.mark(7.0)
        until(ctl, lambda: any(m.kind == MarkKind.DEVICE for m in ctl.marks))
        until(ctl, lambda: ctl.position >= 300)
    finally:
        ctl.close()
    (mark,) = [m for m in ctl.marks if m.kind == MarkKind.DEVICE]
    assert mark.label == "7"
    got = [a for a in read_recording(path).annotations if a.text == "marker 7"]
    assert len(got) == 1
    assert got[0].onset_s == pytest.approx(mark.index / ctl.fs, abs=1e-6)


# -- the window's picker ------------------------------------------------------------------------


def test_the_picker_lists_a_marker_outlet_and_its_markers_show_on_the_traces(
    qtbot: Any, tmp_path: Path
) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6 import QtCore

    from app.main_window import MainWindow
    from app.settings_store import SettingsStore
    from app.source_panel import SourceChoice

    name = unique("pick")
    outlet = marker_outlet(name)
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    source = SourceChoice("simulator", {"fs": FS, "preset": "clean", "seed": 11})
    # threaded: the real-time simulator, as the app runs it (marks need host times)
    win = MainWindow(store, source=source, threaded=True, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    win.show()
    panel = win.markers_panel
    assert panel.stream.count() == 1 and panel.chosen is None  # nothing looked up unasked
    qtbot.mouseClick(panel.refresh_button, QtCore.Qt.MouseButton.LeftButton)
    key = f"{name}\x1f{name}"  # (the item's data: name and source_id)
    qtbot.waitUntil(lambda: panel.stream.findData(key) >= 0, timeout=5000)
    assert panel.refresh_button.isEnabled() and "found" in panel.status.text()
    panel.stream.setCurrentIndex(panel.stream.findData(key))  # the user picks it
    ctl = win.ctl
    assert ctl is not None and ctl.marker_feed is not None
    qtbot.waitUntil(ctl.marker_feed.connected.is_set, timeout=5000)
    outlet.push_sample(["squat cue"])
    qtbot.waitUntil(lambda: any(m.label == "squat cue" for m in ctl.marks), timeout=5000)
    (mark,) = [m for m in ctl.marks if m.label == "squat cue"]
    assert mark.kind == MarkKind.DEVICE
    assert any(abs(t - mark.index / FS) < 1e-9 for t, _ in win.traces.marks)  # drawn
    qtbot.waitUntil(lambda: panel.status.text() == f"{name}: 1 marker received", timeout=3000)
    # a recording opened for review: today's trigger box stays off its timeline, and no
    # verdict of the replay goes out as if it were live, whatever Settings say
    from dataclasses import replace

    win.apply_settings(win.settings, replace(win.prefs, lsl_out=True, lsl_out_name=unique("out")))
    assert ctl.lsl_out is not None  # live: on
    demo = Path(__file__).resolve().parents[1] / "recordings" / "demo_lumbar_first.bdf"
    win.connect_source(SourceChoice("file", {"path": str(demo)}))
    replay = win.ctl
    assert replay is not None and replay is not ctl and replay.replay is not None
    assert replay.marker_feed is None and replay.lsl_out is None
    assert "not listened to while a file is replayed" in panel.status.text()
    assert "not sent for a replayed file" in panel.outlet_status.text()
    win.connect_source(source)  # live again: both come back
    assert win.ctl is not None and win.ctl.marker_feed is not None and win.ctl.lsl_out is not None
    panel.stream.setCurrentIndex(0)  # "none": no more listening
    assert win.ctl.marker_feed is None and panel.status.text() == "no marker stream"
    win.close()


def test_after_an_outage_only_the_same_outlet_is_taken_back() -> None:
    """Two trigger boxes publish under one name (two stations): the feed keeps to the outlet
    it first connected to; when that one restarts it is taken back, the other never is."""
    import pylsl

    name = unique("twin")

    def outlet(source_id: str) -> Any:
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string", source_id)
        return pylsl.StreamOutlet(info)

    mine = outlet("box-A")
    feed = MarkerFeed(name, resolve_s=0.5)
    feed.start()
    try:
        deadline = time.monotonic() + 10
        while not feed.connected.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert feed.source_id == "box-A"
        other = outlet("box-B")  # the other station's box appears
        del mine  # ours goes away...
        deadline = time.monotonic() + 10
        while feed.state != "lost":
            assert time.monotonic() < deadline, feed.state
            time.sleep(0.02)
        time.sleep(1.5)  # ...the other is there all along: it is never taken
        assert not feed.connected.is_set()
        other.push_sample(["theirs"])
        mine = outlet("box-A")  # ours is back (a new outlet, the same source_id)
        deadline = time.monotonic() + 10
        while not feed.connected.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)
        mine.push_sample(["ours"])
        other.push_sample(["theirs"])
        deadline = time.monotonic() + 5
        got: list[str] = []
        while "ours" not in got:
            assert time.monotonic() < deadline
            got += [m.label for m in feed.poll()]
            time.sleep(0.02)
        time.sleep(0.3)
        got += [m.label for m in feed.poll()]
        assert got == ["ours"]
        assert any("back" in n for n in feed.notices())
    finally:
        feed.stop()
