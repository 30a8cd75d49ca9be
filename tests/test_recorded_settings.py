"""A recording is judged with the settings it was recorded with: replay, ``analyze``,
``report``, the window's export and the progress view all give the verdicts the live session
gave, whatever the settings in use now (a reviewer whose own neutral zone or threshold differ
saw other verdicts than the athlete had been cued with)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from PyQt6 import QtCore, QtWidgets
from pytestqt.qtbot import QtBot

from app.main_window import MainWindow
from app.settings_dialog import SettingsDialog
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from devices.drivers.file_replay import FileSource
from devices.drivers.simulator import SimulatorDevice
from devices.files.mapping import load_mapped
from devices.files.sidecar import recorded_settings
from devices.session.controller import SessionController
from devices.session.states import MarkKind
from dsp.analysis import analyze
from dsp.reps import RepResult
from dsp.settings import DspSettings
from tests.window_helpers import pump

FS = 2000.0
#: what the athlete was judged with: not the defaults, so a replay with the defaults differs
RECORDED = DspSettings().with_(tolerance_ms=45.0, k_on=5.0)
SETTLED_S = 10.0  # the start-up: a file's first reps may be judged again (rejudge_after_s)
LATE_S = 0.5  # the recording starts this far into the stream
CHANGE_AT_S = 41.0  # (the rep under way then ends first: the change waits for rest)


def _verdicts(reps: list[RepResult]) -> list[tuple[int, str, float | None]]:
    return [(r.start, r.order, r.lag_ms) for r in reps]


def _settled(reps: list[RepResult]) -> list[RepResult]:
    return [r for r in reps if r.start >= SETTLED_S * FS]


def _orders(reps: list[RepResult]) -> list[tuple[int, str]]:
    """What the athlete was told of each rep, and when it began (to 10 ms). (The file holds
    the samples at the BDF's 24-bit resolution from 0.5 s into the stream, the live session
    had them unquantised from its start: an onset may differ by a sample, a lag by a ms.)"""
    return [(round(r.start / (0.01 * FS)), r.order) for r in reps]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RepResult]]:
    """80 s recorded live with RECORDED, new filters from 41 s on; the live reps' records."""
    folder = tmp_path_factory.mktemp("recorded")
    ctl = SessionController(
        SimulatorDevice(preset="clean", realtime=False, seed=4),
        RECORDED,
        recordings_dir=folder,
    )
    finals: list[RepResult] = []
    ctl.on_rep_final = lambda e: finals.append(e.result)
    ctl.open()
    ctl.start(threaded=False)
    ctl.pump(LATE_S)  # (the file begins mid-stream: its sample 0 is the stream's LATE_S)
    path = ctl.start_recording()
    ctl.pump(CHANGE_AT_S - LATE_S)
    ctl.apply_settings(ctl.settings.with_(notch_hz=60.0, bandpass_low_hz=30.0))
    for _ in range(4 * 39):
        ctl.pump(0.25)
    ctl.close()
    assert len(finals) >= 20
    late = round(LATE_S * FS)
    return path, [dataclasses.replace(r, start=r.start - late) for r in finals]


def test_the_sidecar_keeps_the_settings_at_the_start_and_each_change(
    recording: tuple[Path, list[RepResult]],
) -> None:
    path, _ = recording
    schedule = recorded_settings(path)
    assert schedule is not None
    assert schedule.start == RECORDED
    assert len(schedule.changes) == 1
    at, new = schedule.changes[0]
    # (applied at the next rest; file time: the stream index less the recording's start)
    assert (CHANGE_AT_S - LATE_S) * FS <= at < (CHANGE_AT_S - LATE_S + 3.0) * FS
    assert (new.notch_hz, new.bandpass_low_hz, new.tolerance_ms) == (60.0, 30.0, 45.0)
    assert schedule.at(at - 1) == RECORDED and schedule.at(at) == new


def test_analyze_and_a_replay_give_the_live_verdicts(
    recording: tuple[Path, list[RepResult]],
) -> None:
    path, live = recording
    schedule = recorded_settings(path)
    assert schedule is not None
    mapped = load_mapped(str(path))
    result = analyze(mapped.data, mapped.info, schedule.start, changes=schedule.changes)
    # (the file began 0.5 s into the stream: its first rep was judged on less rest; the
    # reps from SETTLED_S on have a sound baseline in both)
    assert _orders(_settled(result.reps)) == _orders(_settled(live))
    lags = [
        (a.lag_ms, b.lag_ms) for a, b in zip(_settled(result.reps), _settled(live), strict=True)
    ]
    assert all(abs(a - b) < 5.0 for a, b in lags if a is not None and b is not None)
    # the same file judged with the defaults throughout gives other verdicts (the test
    # could fail): the wider neutral zone made "simultaneous" of some reps
    plain = analyze(mapped.data, mapped.info, DspSettings())
    assert _orders(_settled(plain.reps)) != _orders(_settled(live))

    # a replay, with the user's own (default) settings in the session it opens in
    ctl = SessionController(FileSource(str(path), speed=None), DspSettings())
    finals: list[RepResult] = []
    ctl.on_rep_final = lambda e: finals.append(e.result)
    ctl.open()
    assert ctl.settings == RECORDED and ctl.schedule == schedule
    marks = [m for m in ctl.marks if m.kind == MarkKind.SETTINGS]
    assert [m.index for m in marks] == [schedule.changes[0][0]]  # where the filters changed
    ctl.run(until_exhausted=True)
    assert _verdicts(finals) == _verdicts(result.reps)  # the same samples: the same records
    assert ctl.settings_in_use == schedule.changes[0][1]


def _analyze_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    from app.cli import main

    assert main(["analyze", *argv, "--json"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_the_cli_judges_with_the_recorded_settings_unless_told_otherwise(
    recording: tuple[Path, list[RepResult]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, live = recording
    doc = _analyze_json(capsys, str(path))
    assert doc["settings"]["tolerance_ms"] == 45.0 and doc["settings"]["k_on"] == 5.0
    (change,) = doc["settings_changes"]
    assert change["settings"]["notch_hz"] == 60.0
    told = [r["order"] for r in doc["reps"] if r["start_s"] >= SETTLED_S]
    assert told == [str(r.order) for r in _settled(live)]
    # an option changes that one setting, for the whole file
    doc = _analyze_json(capsys, str(path), "--tolerance-ms", "20")
    assert doc["settings"]["tolerance_ms"] == 20.0 and doc["settings"]["k_on"] == 5.0
    assert doc["settings"]["notch_hz"] == 50.0 and "settings_changes" not in doc
    # the table says so: a verdict read without its settings may not be reproduced
    from app.cli import main

    assert main(["analyze", str(path)]) == 0
    said = capsys.readouterr().out.splitlines()[-2]  # (before the signal quality's line)
    assert said.startswith("settings: k_on=5, tolerance_ms=45; changed during the recording at")
    assert main(["analyze", str(path), "--default-settings"]) == 0
    assert "settings: " not in capsys.readouterr().out  # (the defaults: nothing to say)
    # the defaults when asked
    doc = _analyze_json(capsys, str(path), "--default-settings")
    assert doc["settings"] == DspSettings().to_dict() and "settings_changes" not in doc


def test_a_lying_sidecar_falls_back_to_the_given_settings(
    tmp_path: Path,
    recording: tuple[Path, list[RepResult]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Out-of-range recorded settings: one log line, the file still opens (the defaults)."""
    import shutil

    path, _ = recording
    bdf = tmp_path / path.name
    shutil.copy(path, bdf)
    side_path = bdf.with_name(bdf.name + ".json")
    side = json.loads(path.with_name(path.name + ".json").read_text())
    side["settings_at_start"]["k_on"] = float("nan")
    side["settings_changes"] = [{"index": "soon", "settings": 3}]
    side_path.write_text(json.dumps(side))
    assert recorded_settings(bdf) is None
    assert sum("recorded settings cannot be used" in r.getMessage() for r in caplog.records) == 1
    ctl = SessionController(FileSource(str(bdf), speed=None), DspSettings())
    ctl.open()
    assert ctl.settings == DspSettings() and ctl.schedule is None
    # analyze: one warning line, in --json's warnings too (a script never sees stderr)
    doc = _analyze_json(capsys, str(bdf))
    assert doc["settings"] == DspSettings().to_dict()
    (warning,) = [w for w in doc["source"]["warnings"] if "recorded settings" in w]
    assert "cannot be used" in warning


def _read_dialog(qtbot: QtBot, win: MainWindow) -> tuple[float, str, bool]:
    """Settings… (the menu's action): the neutral zone shown and the scope line; Cancel."""
    seen: list[tuple[float, str, bool]] = []

    def answer() -> None:
        dlg = next(
            w
            for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, SettingsDialog) and w.isVisible()
        )
        seen.append((dlg.tolerance_ms.value(), dlg.scope_label.text(), dlg.scope_label.isVisible()))
        cancel = dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        assert cancel is not None
        qtbot.mouseClick(cancel, QtCore.Qt.MouseButton.LeftButton)

    QtCore.QTimer.singleShot(100, answer)
    next(a for a in win.actions() if a.text() == "Settings…").trigger()
    assert seen
    return seen[0]


def test_the_window_replays_with_the_recorded_settings_and_keeps_the_live_ones(
    qtbot: QtBot, store: SettingsStore, recording: tuple[Path, list[RepResult]]
) -> None:
    path, live = recording
    win = MainWindow(store, source=SourceChoice("file", {"path": str(path)}), threaded=False)
    qtbot.addWidget(win)
    win.show()
    assert win.ctl is not None and win.ctl.settings == RECORDED
    tolerance, scope, shown = _read_dialog(qtbot, win)
    assert tolerance == 45.0 and shown and "recorded with" in scope and path.name in scope
    assert win.order_panel.history._zone.getRegion() == (-45.0, 45.0)  # the lag plot's band
    pump(win, 30.0, step=1.0)
    played = [r for r in win.ctl.tally.reps if r.end is not None]
    assert (
        _settled(played)
        and _orders(_settled(played)) == _orders(_settled(live))[: len(_settled(played))]
    )
    assert win._report_settings(str(path)) == recorded_settings(path)  # what Ctrl+E judges with
    # back to the simulator: the live settings, not the recording's
    win.connect_source(SourceChoice("simulator", {"preset": "clean"}))
    assert win.ctl is not None and win.ctl.settings == DspSettings()
    tolerance, _scope, shown = _read_dialog(qtbot, win)
    assert tolerance == DspSettings().tolerance_ms and not shown
    zone = DspSettings().tolerance_ms
    assert win.order_panel.history._zone.getRegion() == (-zone, zone)


def test_the_report_names_the_recorded_settings_and_their_change(
    tmp_path: Path, recording: tuple[Path, list[RepResult]]
) -> None:
    from app.cli import main

    path, live = recording
    out = tmp_path / "r.html"
    csv = tmp_path / "r.csv"
    assert main(["report", str(path), "--out", str(out), "--csv", str(csv)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "neutral zone ± (ms)</td><td><strong>45.0 <em>(default 20.0)</em>" in page
    assert "Changed while recording" in page
    assert "notch_hz 50.0 → 60.0" in page and "bandpass_low_hz 20.0 → 30.0" in page
    rows = csv.read_text(encoding="utf-8").splitlines()[1:]
    assert len(rows) == len(live)
    assert "Not the recorded settings" not in page
    # judged with another neutral zone: the report says its verdicts are not the recorded
    assert main(["report", str(path), "--out", str(out), "--tolerance-ms", "20"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "Not the recorded settings" in page and "tolerance_ms 45.0 (here 20.0)" in page
