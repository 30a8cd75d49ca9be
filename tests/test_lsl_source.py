"""The LSL source with real pylsl outlets and inlets on the loopback-only liblsl config.

Every test names its streams uniquely (tests may run in parallel processes, which would
otherwise see each other's outlets) and bounds every wait.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices.drivers.base import DeviceError, create
from devices.drivers.lsl_source import LslSource, TimeMap
from tests.cli_run import run_cli
from tests.lsl_env import lsl_loopback  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_lumbar_first.bdf"
ROLES = ("glute_l", "glute_r", "lumbar_l", "lumbar_r")


def unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------
# the time stamp -> index mapping alone (no LSL)
# --------------------------------------------------------------------------------------


def _feed(
    tm: TimeMap, t: np.ndarray, chunk: int = 20, resumed_at: Sequence[int] = ()
) -> np.ndarray:
    out = np.full(t.size, -1)
    for a in range(0, t.size, chunk):
        for r0, r1, k in tm.assign(t[a : a + chunk], resumed=a in resumed_at):
            out[a + r0 : a + r1] = np.arange(k, k + r1 - r0)
    return out


def test_jitter_of_the_time_stamps_is_not_a_gap() -> None:
    fs, k = 2000.0, np.arange(40_000)
    rng = np.random.default_rng(3)
    t = 50 + k / fs
    for a in range(0, k.size, 20):  # a sender late by 0-15 ms, now and then by 60 ms
        t[a : a + 20] += rng.uniform(0, 0.015) + (0.06 if rng.random() < 0.02 else 0.0)
    tm = TimeMap(fs)
    assert np.array_equal(_feed(tm, t), k)
    assert tm.gaps == 0 and tm.jitter_events > 0


def test_missing_samples_are_one_gap_of_their_length() -> None:
    fs = 2000.0
    k = np.r_[np.arange(10_000), np.arange(10_300, 30_000)]  # 300 samples never sent
    tm = TimeMap(fs)
    idx = _feed(tm, 50 + k / fs)
    assert (tm.gaps, tm.lost) == (1, 300)
    assert np.all(np.diff(idx) > 0)  # never an index twice
    # placed by their time once the lateness lasted confirm_s (0.25 s = 500 samples)
    assert np.array_equal(idx[10_500:], k[10_500:])
    assert tm.index_at(50 + 12.0) == 24_000


def test_after_a_silence_the_outage_is_a_gap_at_once() -> None:
    fs = 1000.0
    k = np.r_[np.arange(5000), np.arange(7000, 9000)]
    tm = TimeMap(fs)
    assert np.array_equal(_feed(tm, 10 + k / fs, resumed_at=(5000,)), k)
    assert (tm.gaps, tm.lost) == (1, 2000)


def test_an_outage_in_the_middle_of_late_samples_is_still_one_gap() -> None:
    fs = 1000.0
    k = np.r_[np.arange(3000), np.arange(3000, 3100), np.arange(6000, 8000)]
    t = 10 + k / fs
    t[3000:3100] += 0.05  # late (pending), then the outlet went silent
    tm = TimeMap(fs)
    idx = _feed(tm, t, chunk=100, resumed_at=(3100,))
    assert (tm.gaps, tm.lost) == (1, 2900) and np.array_equal(idx[3100:], k[3100:])


def test_a_device_clock_off_its_nominal_rate_makes_no_gaps() -> None:
    fs, k = 2000.0, np.arange(80_000)  # 40 s
    for ppm in (-300, 300):
        tm = TimeMap(fs)
        assert np.array_equal(_feed(tm, 5 + k / fs * (1 + ppm * 1e-6)), k)
        assert tm.gaps == 0


def test_one_pulled_block_with_a_gap_inside_is_split() -> None:
    tm = TimeMap(2000.0)
    k = np.r_[np.arange(5000), np.arange(5600, 8000)]
    runs = tm.assign(1 + k / 2000.0)
    assert runs == [(0, 5500, 0), (5500, 7400, 6100)] and tm.lost == 600


# --------------------------------------------------------------------------------------
# real outlets
# --------------------------------------------------------------------------------------


@pytest.fixture
def pylsl(lsl_loopback: None) -> Any:  # noqa: F811 - the fixture
    import pylsl as mod

    return mod


def make_outlet(
    pylsl: Any,
    name: str,
    labels: Sequence[str],
    units: Sequence[str] | str = "uV",
    fs: float = 2000.0,
    fmt: str = "float32",
    source_id: str | None = None,
    type_: str = "EMG",
) -> Any:
    sid = f"{name}_sid" if source_id is None else source_id
    info = pylsl.StreamInfo(name, type_, len(labels), fs, fmt, sid)
    chans = info.desc().append_child("channels")
    unit_list = [units] * len(labels) if isinstance(units, str) else list(units)
    for label, unit in zip(labels, unit_list, strict=True):
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info, 20)


def read_all(dev: LslSource, until: float, want: int | None = None) -> list[Any]:
    chunks = []
    while time.monotonic() < until:
        c = dev.read()
        if c is None:
            if want is not None and sum(x.n_samples for x in chunks) >= want:
                break
            time.sleep(0.005)
            continue
        chunks.append(c)
    return chunks


@pytest.fixture
def demo() -> Any:
    from devices.files import read_recording

    rec = read_recording(str(DEMO))
    assert rec.channel_names == ROLES and rec.fs == 2000.0
    return rec


def _wait_consumer(outlet: Any, timeout: float = 20.0) -> None:
    assert outlet.wait_for_consumers(timeout), "the consumer never connected"
    time.sleep(0.3)  # its start() flushes what arrived before it: push after that


def test_a_recording_streamed_over_lsl_gives_the_analyze_verdicts(pylsl: Any, demo: Any) -> None:
    """An outlet streams the demo recording in volts (double64) with its sample times, ten
    times faster than real time; `fireorder live --source lsl` on it decides every rep as
    `fireorder analyze` does on the file."""
    name = unique("verdicts")
    outlet = make_outlet(pylsl, name, [f"EMG {r}" for r in ROLES], "V", fmt="double64")
    mapping = ",".join(f"{r}=EMG {r}" for r in ROLES)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    cmd = [sys.executable, "-m", "app", "live", "--source", "lsl", "--stream", name,
           "--channels", mapping, "--duration", "60", "--jsonl"]  # fmt: skip
    pipe = subprocess.PIPE
    live = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=pipe, stderr=pipe, text=True)
    try:
        _wait_consumer(outlet)
        volts = np.ascontiguousarray(demo.data * 1e-6)
        t0 = pylsl.local_clock()
        for a in range(0, demo.n_samples, 200):  # 0.1 s of stream every 10 ms
            block = volts[a : a + 200]
            outlet.push_chunk(block, list(t0 + (a + np.arange(len(block))) / demo.fs))
            time.sleep(0.01)
        out, err = live.communicate(timeout=60)
    finally:
        if live.poll() is None:
            live.kill()
            live.communicate()
    assert live.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    summary = lines[-1]
    assert (summary["samples"], summary["gaps"], summary["lost_samples"]) == (120_000, 0, 0)
    finals = sorted((x for x in lines[:-1] if x["final"]), key=lambda x: x["rep"])
    analyze = subprocess.run(
        [sys.executable, "-m", "app", "analyze", str(DEMO), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    expected = json.loads(analyze.stdout)["reps"]
    assert len(finals) == len(expected) >= 15
    got = [(x["order"], x["lag_ms"], x["t_s"]) for x in finals]
    assert got == [(r["order"], r["lag_ms"], r["start_s"]) for r in expected]


def test_volts_and_millivolts_become_microvolts_and_labels_come_from_the_stream(
    pylsl: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("units")
    labels = ["Trigno 1", "Trigno 2", "", "aux"]
    outlet = make_outlet(pylsl, name, labels, ["V", "mV", "microvolts", "counts"])
    dev = create("lsl", stream=name, roles={"glute_l": "Trigno 1", "lumbar_l": "Trigno 2"})
    assert isinstance(dev, LslSource)
    with caplog.at_level(logging.WARNING, logger="devices.drivers.lsl_source"):
        info = dev.open()
    try:
        # an empty label is chN; the reported units are kept
        assert info.channel_names == ("Trigno 1", "Trigno 2", "ch3", "aux")
        assert info.units == ("V", "mV", "microvolts", "counts") and info.fs == 2000.0
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 1 and "counts" in warned[0] and "µV" in warned[0]
        dev.start()
        _wait_consumer(outlet, 5.0)
        x = np.array([[1e-4, 0.1, 100.0, 7.0]] * 40, dtype=np.float32)
        outlet.push_chunk(x)
        got = read_all(dev, time.monotonic() + 5.0, want=40)
        data = np.concatenate([c.data for c in got])
        assert data.shape == (40, 4)
        np.testing.assert_allclose(data[0], [100.0, 100.0, 100.0, 7.0], rtol=1e-6)
        assert got[0].start == 0
    finally:
        dev.close()


def test_index_at_maps_host_time_to_the_stream_index(pylsl: Any) -> None:
    name = unique("index")
    outlet = make_outlet(pylsl, name, ["a", "b"], fs=1000.0)
    dev = LslSource(name, roles={"glute_l": "a", "lumbar_l": "b"})
    dev.open()
    try:
        assert dev.index_at(time.monotonic()) is None  # nothing received yet
        dev.start()
        _wait_consumer(outlet, 5.0)
        t0 = pylsl.local_clock() - 1.0  # 1 s of samples taken up to now
        outlet.push_chunk(np.zeros((1000, 2), np.float32), list(t0 + np.arange(1000) / 1000))
        got = read_all(dev, time.monotonic() + 5.0, want=1000)
        assert sum(c.n_samples for c in got) == 1000
        assert got[-1].timestamp == pytest.approx(t0 + 0.999, abs=1e-3)  # (+ clock offset)
        assert dev.index_at(t0) == 0 and dev.index_at(t0 + 0.5) == 500
        assert dev.index_at(t0 + 2.0) == 2000  # beyond: along the stream's rate
    finally:
        dev.close()


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    return run_cli(*args, cwd=ROOT, env=env, timeout=timeout)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fireorder: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_a_marker_stream_is_refused_in_one_line(pylsl: Any) -> None:
    name = unique("markers")
    info = pylsl.StreamInfo(name, "Markers", 1, 0, "string", f"{name}_sid")
    outlet = pylsl.StreamOutlet(info)
    line = _one_error_line(
        _cli("live", "--source", "lsl", "--stream", name, "--channels", "glute_l=a,lumbar_l=b")
    )
    assert f"'{name}' is a marker stream; use --markers" in line
    del outlet


def test_an_irregular_stream_and_a_missing_one_are_refused(pylsl: Any) -> None:
    name = unique("irregular")
    outlet = make_outlet(pylsl, name, ["a", "b"], fs=0.0)
    with pytest.raises(DeviceError, match="irregular rate"):
        LslSource(name, timeout_s=2.0).open()
    missing = unique("absent")
    with pytest.raises(DeviceError) as err:
        LslSource(missing, timeout_s=0.5).open()
    text = str(err.value)
    assert text.startswith(f"no LSL stream named '{missing}'; found: ")
    assert f"'{name}' (EMG, 2 ch, irregular rate)" in text  # what there is, described
    del outlet


def test_without_channels_the_cli_names_the_stream_labels(pylsl: Any) -> None:
    name = unique("labels")
    outlet = make_outlet(pylsl, name, ["EMG1", "EMG2", "EMG3", "EMG4"])
    line = _one_error_line(_cli("record", "--source", "lsl", "--stream", name))
    assert "give --channels; the stream sends EMG1,EMG2,EMG3,EMG4 (2000 Hz)" in line
    assert "--channels glute_l=EMG1,glute_r=EMG2,lumbar_l=EMG3,lumbar_r=EMG4" in line
    del outlet


def test_the_suggested_channels_paste_as_is_when_labels_have_spaces(pylsl: Any) -> None:
    """A vendor's labels are often "EMG 1": the hint quotes them for the shell, so the line
    the user copies is one that runs."""
    import shlex

    name = unique("spaced")
    outlet = make_outlet(pylsl, name, ["EMG 1", "EMG 2", "EMG 3", "EMG 4"])
    line = _one_error_line(_cli("live", "--source", "lsl", "--stream", name))
    example = line.split("e.g. ", 1)[1]
    words = shlex.split(example)  # what the shell makes of the pasted text
    assert words[0] == "--channels" and len(words) == 2
    assert words[1] == "glute_l=EMG 1,glute_r=EMG 2,lumbar_l=EMG 3,lumbar_r=EMG 4"
    from app.cli import build_parser

    argv = ["live", "--source", "lsl", "--stream", name, *words]
    args = build_parser(argv).parse_args(argv)  # the real parser takes it whole
    assert args.channels == words[1]
    del outlet


def test_fireorder_devices_lists_lsl_streams_only_when_asked(pylsl: Any) -> None:
    name = unique("listed")
    outlet = make_outlet(pylsl, name, ["L1", "L2", "L3"], fs=1500.0)
    listed = _cli("devices", "--lsl", "--json")
    assert listed.returncode == 0, listed.stderr
    ours = [s for s in json.loads(listed.stdout)["lsl_streams"] if s["name"] == name]
    assert len(ours) == 1
    s = ours[0]
    got = (s["type"], s["channels"], s["rate_hz"], s["source_id"])
    assert got == ("EMG", 3, 1500.0, f"{name}_sid")
    assert s["labels"] == ["L1", "L2", "L3"] and s["host"]
    text = _cli("devices")
    assert "LSL streams: not looked for (add --lsl)" in text.stdout and name not in text.stdout
    del outlet


class _Pusher(threading.Thread):
    """Pushes ``fs`` samples a second in 10-sample chunks, stamped at push, until stopped."""

    def __init__(self, outlet: Any, pylsl: Any, fs: float, n_ch: int) -> None:
        super().__init__(daemon=True)
        self.outlet, self.pylsl, self.fs, self.n_ch = outlet, pylsl, fs, n_ch
        self.halt = threading.Event()
        self.pushed = 0

    def run(self) -> None:
        t0 = self.pylsl.local_clock()
        while not self.halt.is_set():
            due = int((self.pylsl.local_clock() - t0) * self.fs)
            while self.pushed + 10 <= due:
                k = self.pushed + np.arange(10)
                x = np.repeat(0.05 * np.sin(k / 7.0)[:, None], self.n_ch, axis=1)  # (±50 µV in mV)
                self.outlet.push_chunk(x.astype(np.float32), self.pylsl.local_clock())
                self.pushed += 10
            time.sleep(0.004)


class _Seen(LslSource):
    """The LSL source, keeping (start, n, timestamp) of every chunk it delivers."""

    seen: list[tuple[int, int, float]]

    def read(self) -> Any:
        chunk = super().read()
        if chunk is not None:
            self.seen.append((chunk.start, chunk.n_samples, chunk.timestamp))
        return chunk


@pytest.mark.parametrize("recoverable", [True, False], ids=["same source_id", "no source_id"])
def test_an_outlet_that_stops_and_comes_back_is_one_counted_gap(
    pylsl: Any, recoverable: bool
) -> None:
    """With a source_id liblsl reconnects the inlet itself; without one it reports the
    stream lost and the driver finds it again by name."""
    from devices.session.controller import SessionController

    name, fs = unique("outage"), 1000.0
    sid = unique("sid") if recoverable else ""
    labels = ["g", "l"]
    outlet = make_outlet(pylsl, name, labels, fs=fs, source_id=sid)
    dev = _Seen(name, roles={"glute_l": "g", "lumbar_l": "l"})
    dev.seen = []
    ctl = SessionController(dev)
    ctl.open()
    ctl.start(threaded=True)
    states: list[str | None] = []
    pusher = None
    try:
        _wait_consumer(outlet, 10.0)
        pusher = _Pusher(outlet, pylsl, fs, 2)
        pusher.start()
        time.sleep(1.5)
        pusher.halt.set()
        pusher.join(5)
        del outlet  # the amplifier's app quits
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            states.append(dev.link_state)
            time.sleep(0.05)
        assert "disconnected" in states and ctl.state.value == "streaming"
        outlet = make_outlet(pylsl, name, labels, fs=fs, source_id=sid)  # it is back
        pusher = _Pusher(outlet, pylsl, fs, 2)
        pusher.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and dev.counters["reconnects"] == 0:
            time.sleep(0.05)
        time.sleep(1.0)
        assert dev.link_state == "streaming"
    finally:
        if pusher is not None:
            pusher.halt.set()
            pusher.join(5)
        ctl.stop()
        ctl.close()
    c, st = dev.counters, ctl.stats
    assert (c["reconnects"], c["gaps"], st.gaps) == (1, 1, 1), c
    assert ctl.state.value != "error", ctl.error
    # the outage (the silence, then liblsl's reconnect) is lost samples of its length: the
    # time between the last sample before and the first after, by their time stamps
    at = next(i for i, (k, n, _) in enumerate(dev.seen[1:], 1) if k != sum(dev.seen[i - 1][:2]))
    k0, n0, t_last = dev.seen[at - 1]
    k1, n1, t_end = dev.seen[at]
    t_first = t_end - (n1 - 1) / fs
    assert k1 - (k0 + n0) == st.lost_samples == c["lost_samples"]
    # (within about one push: the pusher stamps each 10-sample chunk when it gets to push
    # it, so on a loaded machine a stamp can be late by up to a chunk, 10 ms here)
    assert st.lost_samples / fs == pytest.approx(t_first - t_last - 1 / fs, abs=0.012)
    assert t_first - t_last > 2.5  # at least the silence
    starts = [k for k, _, _ in dev.seen]
    assert starts == sorted(set(starts))  # never an index twice


def test_the_window_lists_an_lsl_outlet_after_refresh_and_connect_starts_it(
    pylsl: Any, qtbot: Any, tmp_path: Path
) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6 import QtCore, QtWidgets
    from PyQt6.QtTest import QTest

    from app.main_window import MainWindow
    from app.settings_store import SettingsStore
    from devices.session.states import SessionState

    name = unique("window")
    labels = ["Trigno EMG 1", "Trigno EMG 2", "Trigno EMG 3", "Trigno EMG 4"]
    outlet = make_outlet(pylsl, name, labels, "mV")
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    win = MainWindow(store, autostart=False, threaded=True, recordings_dir=None)
    qtbot.addWidget(win)
    win.show()
    panel = win.source_panel
    left = QtCore.Qt.MouseButton.LeftButton
    panel.kind.setCurrentText("lsl")  # opening the page looks once
    qtbot.waitUntil(lambda: not panel.lsl_listing, timeout=10_000)
    QTest.mouseClick(panel.lsl_refresh, left)  # and Refresh looks again
    assert panel.lsl_listing
    qtbot.waitUntil(lambda: not panel.lsl_listing, timeout=10_000)
    items = [panel.lsl_stream.itemText(i) for i in range(panel.lsl_stream.count())]
    ours = [i for i, text in enumerate(items) if text.startswith(f"{name} — ")]
    assert len(ours) == 1, items
    host = panel.lsl_stream.itemData(ours[0]).host
    assert items[ours[0]].endswith(f"EMG, 4 ch @ 2000 Hz, {host}")
    panel.lsl_stream.setCurrentIndex(ours[0])  # what a user's pick in the list does
    table = panel.mapping
    rows = []
    for r in range(table.rowCount()):
        combo = table.cellWidget(r, 1)
        assert isinstance(combo, QtWidgets.QComboBox)
        rows.append((table.item(r, 0).text(), combo.currentText()))  # type: ignore[union-attr]
    assert rows == list(zip(labels, ROLES, strict=True))  # the labels, the suggested roles
    QTest.mouseClick(panel.connect_btn, left)
    qtbot.waitUntil(lambda: win.ctl is not None, timeout=10_000)
    assert win.ctl is not None and win.ctl.info is not None
    assert win.ctl.info.source == f"lsl:{name}" and win.ctl.info.units == ("mV",) * 4
    QTest.mouseClick(panel.start_btn, left)
    qtbot.waitUntil(lambda: win.ctl is not None and win.ctl.state == SessionState.STREAMING)
    _wait_consumer(outlet, 10.0)
    pusher = _Pusher(outlet, pylsl, 2000.0, 4)
    pusher.start()
    try:
        qtbot.waitUntil(
            lambda: win.ctl is not None and win.ctl.stats.samples >= 2000, timeout=10_000
        )
    finally:
        pusher.halt.set()
        pusher.join(5)
    raw = win.ctl.session.raw
    assert raw.end >= 2000
    win.disconnect_source()
