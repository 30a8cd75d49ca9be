"""LSL out: one JSON verdict per finished rep on a real pylsl marker stream, off by default.

Loopback-only liblsl (tests/lsl_env.py), a stream name per test, every wait bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from devices.drivers.simulator import SimulatorDevice
from devices.session.controller import SessionController
from devices.session.states import MarkKind
from dsp.reps import RepEnded
from tests.lsl_env import lsl_loopback  # noqa: F401 (the fixture, used by pytestmark)

pytestmark = pytest.mark.usefixtures("lsl_loopback")
ROOT = Path(__file__).resolve().parents[1]


def unique(stem: str) -> str:
    return f"fireorder-test-{stem}-{uuid.uuid4().hex[:8]}"


def visible(name: str, wait_s: float = 1.0) -> list[Any]:
    import pylsl

    return list(pylsl.resolve_byprop("name", name, 0, wait_s))


def inlet_for(name: str) -> Any:
    import pylsl

    (info,) = pylsl.resolve_byprop("name", name, 1, 5.0)
    inlet = pylsl.StreamInlet(info, recover=False)
    inlet.open_stream(timeout=5.0)
    return inlet


def pull_all(inlet: Any, quiet_s: float = 0.5, limit_s: float = 10.0) -> list[str]:
    """Every message until none came for ``quiet_s`` (at most ``limit_s``)."""
    got: list[str] = []
    deadline = time.monotonic() + limit_s
    last = time.monotonic()
    while time.monotonic() - last < quiet_s and time.monotonic() < deadline:
        samples, _ = inlet.pull_chunk(timeout=0.0)
        if samples:
            got += [s[0] for s in samples]
            last = time.monotonic()
        time.sleep(0.02)
    return got


def test_one_verdict_marker_per_finished_rep_as_the_tally_has_it() -> None:
    name = unique("verdicts")
    ctl = SessionController(
        SimulatorDevice(preset="clean", realtime=False, seed=8), device_marks=MarkKind.TRUTH
    )
    ended: list[RepEnded] = []
    ctl.on_rep_final = ended.append
    info = ctl.open()
    assert ctl.set_lsl_out(True, name) is None
    inlet = inlet_for(name)
    stream = inlet.info(timeout=2.0)
    assert stream.type() == "Markers" and stream.nominal_srate() == 0
    assert stream.source_id().startswith(f"fireorder:{name}@")
    ctl.start(threaded=False)
    ctl.pump(40.0)
    messages = [json.loads(m) for m in pull_all(inlet)]
    ctl.close()
    assert ctl.lsl_out is None and not visible(name, 0.5)  # gone with the session
    finals = [m for m in messages if not m["rejudged"]]
    assert len(ended) >= 8 and len(finals) == len(ended)  # one per rep, no more
    by_start = {round(r.start / info.fs, 4): r for r in ctl.tally.reps}
    for msg, ev in zip(finals, ended, strict=True):
        rep = ev.result
        assert msg["rep"] == rep.index + 1 and msg["final"] is True
        assert msg["lag_ms"] == rep.lag_ms and msg["order"] == rep.order
        tallied = by_start[msg["t_s"]]  # the session's tally counts the same verdict
        assert (tallied.lag_ms, tallied.order) == (msg["lag_ms"], msg["order"])
        # onsets in LSL time: the same spacing as the samples they name
        for role, t in msg["onsets_lsl"].items():
            index = next(i for r, i in rep.onsets.items() if r.value == role)
            if index is None:
                assert t is None
            else:
                gap = (index - rep.start) / info.fs
                assert t - msg["start_lsl"] == pytest.approx(gap, abs=2 / info.fs)
        assert msg["end_lsl"] > msg["start_lsl"]
        for side in ("left", "right"):
            want = getattr(rep, side)
            assert msg[side] == (want.to_dict() if want else None)


def test_onsets_are_sent_in_lsl_time_of_their_sample() -> None:
    """A real-time source: a rep's onset times in the message are host (LSL) times of the
    onset samples, within a packet of where the simulator took them."""
    import pylsl

    name = unique("times")
    device = SimulatorDevice(preset="clean", realtime=True, seed=3)
    ctl = SessionController(device, device_marks=MarkKind.TRUTH)
    ended: list[RepEnded] = []
    ctl.on_rep_final = ended.append
    info = ctl.open()
    ctl.set_lsl_out(True, name)
    inlet = inlet_for(name)
    ctl.start(threaded=True)
    try:
        deadline = time.monotonic() + 30
        while len(ended) < 2:
            assert time.monotonic() < deadline, "no reps"
            ctl.drain()
            time.sleep(0.02)
        messages = [json.loads(m) for m in pull_all(inlet, quiet_s=0.3)]
    finally:
        ctl.close()
    assert len(messages) >= 2
    for msg in messages[:2]:
        rep = next(e.result for e in ended if e.result.index + 1 == msg["rep"])
        # the simulator takes sample i at its start time + i / fs
        assert msg["start_lsl"] == pytest.approx(device._t0 + rep.start / info.fs, abs=0.012)
        assert abs(msg["start_lsl"] - pylsl.local_clock()) < 30


def test_no_outlet_unless_asked_and_off_destroys_it() -> None:
    name = unique("switch")
    ctl = SessionController(SimulatorDevice(preset="clean", realtime=False, seed=2))
    ctl.open()
    assert ctl.lsl_out is None  # off by default
    ctl.set_lsl_out(True, name)
    assert len(visible(name)) == 1
    ctl.set_lsl_out(False)
    assert ctl.lsl_out is None and not visible(name)
    ctl.set_lsl_out(True, name)
    ctl.detach()  # a window moving on: the outlet goes with its observers
    assert not visible(name)
    ctl.close()


def test_emg_outlet_sends_the_filtered_signal_and_envelopes_sample_for_sample() -> None:
    import numpy as np

    name = unique("emg")
    ctl = SessionController(SimulatorDevice(preset="clean", realtime=False, seed=6))
    info = ctl.open()
    assert ctl.set_lsl_out_emg(True, name) is None
    inlet = inlet_for(name)
    stream = inlet.info(timeout=2.0)
    assert stream.channel_count() == 2 * info.n_channels and stream.nominal_srate() == info.fs
    ctl.start(threaded=False)
    ctl.pump(0.5)  # the outlet sends from the first drain on
    first = ctl.session.envelope.end
    for _ in range(8):
        ctl.pump(0.25)
    last = ctl.session.envelope.end
    got: list[Any] = []
    deadline = time.monotonic() + 5
    while sum(len(c) for c in got) < last - first and time.monotonic() < deadline:
        chunk, _ = inlet.pull_chunk(timeout=0.0)
        if chunk:
            got.append(np.asarray(chunk))
        time.sleep(0.02)
    rows = np.vstack(got)
    _, filt = ctl.session.filtered.snapshot(last - first)
    _, env = ctl.session.envelope.snapshot(last - first)
    ctl.close()
    assert rows.shape == (last - first, 2 * info.n_channels)  # every sample, once
    n = info.n_channels
    np.testing.assert_allclose(rows[:, :n], filt, rtol=1e-6, atol=1e-3)  # (float32)
    np.testing.assert_allclose(rows[:, n:], env, rtol=1e-6, atol=1e-3)
    assert ctl.lsl_emg is None and not visible(name, 0.5)


def test_live_without_lsl_options_never_loads_liblsl() -> None:
    """``fireorder live`` as run by default: liblsl is not loaded, so no LSL socket exists
    (and no fireorder outlet can be visible)."""
    code = (
        "import sys; from app.cli import main; "
        "rc = main(['live', '--source', 'simulator', '--fast', '--duration', '3']); "
        "print('pylsl loaded' if 'pylsl' in sys.modules else 'no pylsl', file=sys.stderr)"
    )
    done = subprocess.run(  # noqa: PLW1510 (the return code is asserted)
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "no pylsl"


def test_cli_lsl_out_sends_verdicts() -> None:
    from pylsl.util import LostError

    name = unique("cli")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "live",
            "--source",
            "simulator",
            "--duration",
            "12",
            "--jsonl",
            "--lsl-out",
            name,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        inlet = inlet_for(name)
        got: list[str] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                samples, _ = inlet.pull_chunk(timeout=0.0)
            except LostError:  # the command ended: its outlet went with it
                break
            got += [s[0] for s in samples]
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"sending verdicts on LSL stream {name}" in stderr
    printed = [json.loads(x) for x in stdout.splitlines() if '"final": true' in x]
    sent = [json.loads(m) for m in got]
    assert printed and [(m["rep"], m["lag_ms"], m["order"]) for m in sent] == [
        (p["rep"], p["lag_ms"], p["order"]) for p in printed
    ]


def test_the_settings_checkbox_turns_the_outlet_on_and_off(qtbot: Any, tmp_path: Path) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from app.settings_dialog import SettingsDialog
    from app.settings_store import SettingsStore
    from app.source_panel import SourceChoice

    name = unique("gui")
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    source = SourceChoice("simulator", {"fs": 2000.0, "preset": "clean", "seed": 11})
    win = MainWindow(store, source=source, threaded=False, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    win.show()
    assert win.ctl is not None and win.ctl.lsl_out is None  # off by default
    assert not store.load_prefs().lsl_out

    def answer(on: bool) -> None:  # the dialog, clicked and typed into as a user does
        dlg = next(
            w
            for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, SettingsDialog) and w.isVisible()
        )
        if dlg.lsl_out.isChecked() != on:
            box = QtCore.QPoint(8, dlg.lsl_out.height() // 2)  # on the box, not past its text
            qtbot.mouseClick(dlg.lsl_out, QtCore.Qt.MouseButton.LeftButton, pos=box)
        assert dlg.lsl_out.isChecked() == on
        if on:
            dlg.lsl_out_name.clear()
            qtbot.keyClicks(dlg.lsl_out_name, name)
        ok = dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        assert ok is not None
        qtbot.mouseClick(ok, QtCore.Qt.MouseButton.LeftButton)

    settings = next(a for a in win.actions() if a.text() == "Settings…")
    QtCore.QTimer.singleShot(200, lambda: answer(True))
    settings.trigger()
    assert store.load_prefs().lsl_out and store.load_prefs().lsl_out_name == name
    assert len(visible(name)) == 1  # resolvable: LabRecorder would list it
    inlet = inlet_for(name)
    session = win.session
    assert session is not None
    for _ in range(80):  # 20 s of stream, stepped as the window's timer would
        session.pump(0.25)
        win.refresh()
    sent = [json.loads(m) for m in pull_all(inlet, quiet_s=0.3)]
    assert sent and {m["rep"] for m in sent} <= {r.index + 1 for r in win.tally.reps}
    assert win.markers_panel.outlet_status.text().startswith(f"verdicts over LSL: {name}")
    QtCore.QTimer.singleShot(200, lambda: answer(False))
    settings.trigger()
    assert win.ctl.lsl_out is None and not visible(name)
    assert not store.load_prefs().lsl_out
    win.close()
