"""Calibration that cannot silently ruin verdicts (issue 10).

Through the real wizard and window (offscreen Qt, buttons clicked with QTest) on the real
simulator: the rest step asks the source to rest, a rest with bursts is refused with its
reason, Finish needs every check passed and the athlete's name, stored calibrations are
offered (not applied) when their setup or age differ, and the status-bar badge shows what is
in use and clears it. The checks themselves are Qt-free and tested on synthetic windows.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import datetime
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore, QtWidgets
from PyQt6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.calibration import ID_REF_SETUP, ID_REST, ID_SUMMARY, CalibrationWizard, Phase
from app.calibration_badge import NO_CALIBRATION
from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from devices.drivers.simulator import SimulatorDevice
from devices.session.calibration import (
    MIN_REFERENCE_SNR_DB,
    Verdict,
    check_reference,
    check_rest,
    reuse_concerns,
)
from devices.session.live import LiveSession
from dsp.filters import design_bandpass, sosfilt

LEFT = QtCore.Qt.MouseButton.LeftButton
FS = 2000.0
# Reps from 0.5 s on, every 2 s: whatever window the rest step takes holds bursts unless the
# simulated athlete relaxes.
BUSY = {"preset": "clean", "seed": 3, "lead_in_s": 0.5, "rep_period_s": 2.0}
SIM = SourceChoice("simulator", {"fs": FS, **BUSY})


class NotResting(SimulatorDevice):
    """A source doing reps that cannot be told to rest (as a person who does not relax)."""

    def request_rest(self, on: bool) -> bool:
        return False


def open_session(device: SimulatorDevice) -> LiveSession:
    s = LiveSession(device)
    s.open()
    s.start(threaded=False)
    return s


@pytest.fixture
def busy() -> Iterator[LiveSession]:
    s = open_session(SimulatorDevice(realtime=False, **BUSY))  # type: ignore[arg-type]
    s.pump(3.0)  # mid-exercise when the coach opens the calibration
    yield s
    s.close()


def click(wiz: QtWidgets.QWizard, which: QtWidgets.QWizard.WizardButton) -> None:
    button = wiz.button(which)
    assert button is not None
    QTest.mouseClick(button, LEFT)


NEXT = QtWidgets.QWizard.WizardButton.NextButton
FINISH = QtWidgets.QWizard.WizardButton.FinishButton


def make_wizard(qtbot: QtBot, session: LiveSession, store: SettingsStore, athlete: str = ""):
    wiz = CalibrationWizard(session, athlete, store, countdown_s=0, rest_s=2.0, contraction_s=2.5)
    qtbot.addWidget(wiz)
    wiz.show()
    click(wiz, NEXT)
    assert wiz.currentId() == ID_REST
    return wiz


def record_rest(qtbot: QtBot, wiz: CalibrationWizard, session: LiveSession) -> None:
    session.pump(1.0)  # the coach reads the instructions: the source has been asked to rest
    start = wiz.findChild(QtWidgets.QPushButton, "rest_start")
    assert start is not None
    QTest.mouseClick(start, LEFT)
    assert wiz.rest_page.phase == Phase.RECORDING
    session.pump(2.5)
    qtbot.waitUntil(lambda: wiz.rest_page.phase in (Phase.DONE, Phase.REJECTED), timeout=5000)


def skip_reference(wiz: CalibrationWizard) -> None:
    click(wiz, NEXT)
    assert wiz.currentId() == ID_REF_SETUP
    skip = wiz.findChild(QtWidgets.QCheckBox, "reference_skip")
    assert skip is not None
    QTest.mouseClick(skip, LEFT, pos=QtCore.QPoint(8, skip.height() // 2))  # the box
    click(wiz, NEXT)
    assert wiz.currentId() == ID_SUMMARY


# -- the simulator obeys a rest request ------------------------------------------------------
def filtered(x: np.ndarray) -> np.ndarray:
    return np.asarray(sosfilt(design_bandpass(FS, 20.0, 450.0, 4), x.T)).T


def test_simulator_stops_its_bursts_when_asked_to_rest() -> None:
    dev = SimulatorDevice(realtime=False, chunk_ms=50.0, **BUSY)  # type: ignore[arg-type]
    dev.open()
    dev.start()
    parts, markers, n = [], [], 0
    while n < 16 * FS:
        if n == 4 * FS:
            assert dev.request_rest(True)
        if n == 10 * FS:
            dev.request_rest(False)
        chunk = dev.read()
        assert chunk is not None and chunk.start == n  # no gap, no repeat around the requests
        parts.append(chunk.data)
        markers += dev.drain_markers()
        n += chunk.n_samples
    x = filtered(np.concatenate(parts))

    def level(a: float, b: float) -> np.ndarray:
        return np.sqrt(np.mean(x[int(a * FS) : int(b * FS)] ** 2, axis=0))

    resting, working = level(4.5, 10.0), level(11.0, 16.0)
    truth = dev.truth()
    params = truth.channel_params
    noise = np.array([params[name]["noise_rms_uv"] for name in truth.channels])
    # at rest only the noise floor is left on the glutes (the lumbar ones carry the ECG too);
    # the reps come back after
    assert np.all(resting[:2] < 1.2 * noise[:2]) and np.all(working > 2.5 * resting)
    onsets = [min(r.onsets.values()) for r in truth.reps if r.onsets]
    assert not any(4.0 <= t < 10.0 for t in onsets)  # the truth drops the reps not done
    assert any(t >= 10.0 for t in onsets)
    assert not [m for m in markers if m.label.startswith("onset") and 4 * FS <= m.index < 10 * FS]


# -- Qt-free checks ---------------------------------------------------------------------------
OFFSET = 800.0  # an electrode offset (uV): a DC level is not movement


def session_filtered(raw: np.ndarray) -> np.ndarray:
    """What the session's filtered buffer holds: its band-pass settled long before."""
    return filtered(raw - OFFSET)


def quiet(seconds: float = 4.0, uv: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = filtered(rng.normal(0.0, 1.0, (int(seconds * FS), 2)))
    raw *= uv / raw.std(axis=0)
    raw += OFFSET
    return raw, session_filtered(raw)


def test_quiet_rest_passes_every_check() -> None:
    raw, filt = quiet()
    checks = check_rest(raw, filt, FS, [0, 1])
    assert [c.verdict for c in checks] == [Verdict.PASS, Verdict.PASS]
    assert all(3.0 < c.rms_uv < 5.0 and c.peak_ratio < 1.6 for c in checks)


def test_a_burst_in_the_rest_window_is_activity() -> None:
    raw, _ = quiet()
    rng = np.random.default_rng(1)
    burst = filtered(rng.normal(0.0, 1.0, (int(0.6 * FS), 1)))[:, 0]
    raw[int(2 * FS) : int(2.6 * FS), 1] += 20.0 * burst / burst.std()  # 5x the rest level
    checks = check_rest(raw, session_filtered(raw), FS, [0, 1])
    assert checks[0].verdict is Verdict.PASS
    assert checks[1].verdict is Verdict.FAIL and "muscle activity" in checks[1].reasons[0]


def test_a_low_frequency_deflection_is_movement() -> None:
    raw, _ = quiet()
    t = np.arange(int(0.4 * FS)) / FS
    raw[int(1.5 * FS) : int(1.5 * FS) + len(t), 0] += 300.0 * np.sin(np.pi * t / 0.4)
    checks = check_rest(raw, session_filtered(raw), FS, [0, 1])
    assert checks[1].verdict is Verdict.PASS
    assert any(r.startswith("movement") for r in checks[0].reasons), checks[0].reasons


def test_clipping_and_a_flat_channel_are_refused() -> None:
    raw, _ = quiet()
    # 160 uV RMS pinned at a rail 100 uV above the offset
    raw[:, 0] = np.clip((raw[:, 0] - OFFSET) * 40 + OFFSET, -np.inf, OFFSET + 100.0)
    raw[:, 1] = 5.0
    checks = check_rest(raw, session_filtered(raw), FS, [0, 1])
    assert any(r.startswith("clipping") for r in checks[0].reasons)
    assert checks[1].reasons and checks[1].reasons[0].startswith("flat")


def test_reference_must_clear_rest_by_the_stated_margin() -> None:
    rest = {0: 5.0, 1: 5.0}
    # 5x rest = 14 dB: too weak for an MVC, enough for a sub-maximal reference (12 dB)
    mvc = check_reference({0: 25.0, 1: 60.0}, rest, "mvc")
    assert [c.verdict for c in mvc] == [Verdict.FAIL, Verdict.PASS]
    assert math.isclose(mvc[1].snr_db, 20 * math.log10(12.0))
    assert f"{MIN_REFERENCE_SNR_DB:g} dB" in mvc[0].reasons[0]
    assert check_reference({0: 25.0}, rest, "submax")[0].verdict is Verdict.PASS
    assert check_reference({0: 25.0}, {}, "mvc")[0].verdict is Verdict.FAIL  # no rest level


# -- the wizard -------------------------------------------------------------------------------
def test_rest_step_asks_the_simulator_to_rest_and_passes(
    qtbot: QtBot, busy: LiveSession, store: SettingsStore
) -> None:
    asked_at = busy.stats.samples
    wiz = make_wizard(qtbot, busy, store)
    note = wiz.findChild(QtWidgets.QLabel, "rest_source_note")
    assert note is not None and "asked to rest" in note.text()
    record_rest(qtbot, wiz, busy)
    assert wiz.rest_page.phase == Phase.DONE, wiz.rest_page.failures()
    rested_until = busy.stats.samples
    checks = wiz.rest_page.checks()
    assert len(checks) == 4 and all(c.verdict is Verdict.PASS for c in checks.values())
    assert all(c.rms_uv < 25.0 for c in checks.values())
    next_button = wiz.button(NEXT)
    assert next_button is not None and next_button.isEnabled()
    assert busy.pipeline is not None and busy.pipeline.baseline.calibrated is not None
    click(wiz, NEXT)  # leaving the rest step: the source carries on
    busy.pump(4.0)
    # the simulated athlete did no rep from the moment the step opened until it was left
    truth = busy.device.truth()  # type: ignore[attr-defined]
    onsets = [min(r.onsets.values()) * FS for r in truth.reps if r.onsets]
    assert not [t for t in onsets if asked_at <= t < rested_until]
    assert [t for t in onsets if t >= rested_until]  # and went back to its reps after


def test_rest_window_with_bursts_is_rejected_with_the_reason(
    qtbot: QtBot, store: SettingsStore
) -> None:
    session = open_session(NotResting(realtime=False, **BUSY))  # type: ignore[arg-type]
    try:
        session.pump(3.0)
        wiz = make_wizard(qtbot, session, store, "anna")
        note = wiz.findChild(QtWidgets.QLabel, "rest_source_note")
        assert note is not None and "Tell the athlete to relax" in note.text()
        record_rest(qtbot, wiz, session)
        page = wiz.rest_page
        assert page.phase == Phase.REJECTED
        text = wiz.findChild(QtWidgets.QLabel, "rest_result").text()
        assert "REJECTED" in text and "muscle activity" in text
        start = wiz.findChild(QtWidgets.QPushButton, "rest_start")
        assert start.text() == "Retry" and start.isEnabled()
        next_button = wiz.button(NEXT)
        assert next_button is not None and not next_button.isEnabled()
        click(wiz, NEXT)
        assert wiz.currentId() == ID_REST  # cannot go on with it
        # the refused window does not stay the detector's baseline
        session.pump(0.05)
        assert session.pipeline is not None and session.pipeline.baseline.calibrated is None
        QTest.mouseClick(start, LEFT)  # Retry records again
        assert page.phase == Phase.RECORDING
    finally:
        session.close()


def test_reference_that_does_not_clear_rest_is_rejected(qtbot: QtBot, store: SettingsStore) -> None:
    # no rep for a minute: the "contraction" is rest again (no effort, a loose electrode)
    session = open_session(SimulatorDevice(realtime=False, preset="clean", seed=3, lead_in_s=60))
    try:
        wiz = make_wizard(qtbot, session, store, "anna")
        record_rest(qtbot, wiz, session)
        assert wiz.rest_page.phase == Phase.DONE
        click(wiz, NEXT)
        click(wiz, NEXT)  # MVC, the glutes first
        glute = wiz.ref_pages["glute"]
        assert wiz.currentPage() is glute
        start = wiz.findChild(QtWidgets.QPushButton, "ref_glute_start")
        QTest.mouseClick(start, LEFT)
        session.pump(3.0)
        qtbot.waitUntil(lambda: glute.phase != Phase.RECORDING, timeout=5000)
        assert glute.phase == Phase.REJECTED
        text = wiz.findChild(QtWidgets.QLabel, "ref_glute_result").text()
        assert f"below {MIN_REFERENCE_SNR_DB:g} dB" in text
        assert session.reference is None or not np.isfinite(session.reference).any()
    finally:
        session.close()


def test_finish_needs_a_name_and_stores_under_it(
    qtbot: QtBot, busy: LiveSession, store: SettingsStore
) -> None:
    wiz = make_wizard(qtbot, busy, store, "athlete")  # the source panel's placeholder
    record_rest(qtbot, wiz, busy)
    skip_reference(wiz)
    name = wiz.findChild(QtWidgets.QLineEdit, "athlete_name")
    assert name is not None and name.text() == ""  # the placeholder is not a name
    finish = wiz.button(FINISH)
    assert finish is not None and finish.isVisible() and not finish.isEnabled()
    verdict = wiz.findChild(QtWidgets.QLabel, "summary_verdict").text()
    assert "athlete's name" in verdict
    click(wiz, FINISH)
    assert wiz.isVisible() and wiz.saved is None
    summary = wiz.findChild(QtWidgets.QLabel, "summary").text()
    assert "Rest µV RMS" in summary and "pass" in summary and "left glute max" in summary

    QTest.keyClicks(name, "Lena K")
    assert finish.isEnabled()
    with qtbot.waitSignal(wiz.calibration_done, timeout=5000):
        click(wiz, FINISH)
    cal = store.load_calibration("Lena K")
    assert cal is not None and cal["athlete"] == "Lena K" and cal["rest"]["baseline"]["mean"]
    assert store.load_calibration("athlete") is None and store.load_calibration("") is None
    with pytest.raises(ValueError):
        store.save_calibration("  ", cal)


# -- the window: offered, not applied; the badge ----------------------------------------------
def make_window(qtbot: QtBot, store: SettingsStore, athlete: str = "") -> MainWindow:
    win = MainWindow(store, source=SIM, threaded=False, autostart=False)
    qtbot.addWidget(win)
    win.show()
    if athlete:
        win.source_panel.athlete.setText(athlete)
    win.connect_source(SIM)
    win.start()
    return win


def calibrate_in_window(qtbot: QtBot, win: MainWindow) -> CalibrationWizard:
    assert win.session is not None
    win.session.pump(3.0)
    win.act_calibrate.trigger()
    wiz = win.findChild(CalibrationWizard)
    assert wiz is not None
    wiz.countdown_s, wiz.rest_s = 0, 2.0
    click(wiz, NEXT)
    record_rest(qtbot, wiz, win.session)
    assert wiz.rest_page.phase == Phase.DONE
    skip_reference(wiz)
    with qtbot.waitSignal(wiz.calibration_done, timeout=5000):
        click(wiz, FINISH)
    return wiz


def offer(win: MainWindow) -> QtWidgets.QMessageBox:
    box = win.findChild(QtWidgets.QMessageBox, "calibration_offer")
    assert box is not None and box.isVisible()
    return box


def answer(box: QtWidgets.QMessageBox, text: str) -> None:
    button = next(b for b in box.buttons() if b.text() == text)
    QTest.mouseClick(button, LEFT)


def test_badge_shows_athlete_and_time_and_clear_removes_it(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = make_window(qtbot, store, "maria")
    badge = win.calibration_badge
    assert badge.label.text() == NO_CALIBRATION and not badge.clear_button.isVisible()
    bar = win.statusBar()
    assert bar is not None and badge.parent() is not None and badge.isVisible()
    wiz = calibrate_in_window(qtbot, win)
    assert wiz.saved is not None
    made = datetime.datetime.fromisoformat(wiz.saved["created"]).astimezone()
    assert badge.label.text() == f"calibrated: maria, {made:%d %b %H:%M}"
    assert badge.clear_button.isVisible()
    session = win.session
    assert session is not None and session.pipeline is not None
    assert session.pipeline.baseline.calibrated is not None

    QTest.mouseClick(badge.clear_button, LEFT)
    session.pump(0.05)
    assert session.pipeline.baseline.calibrated is None and session.reference is None
    assert badge.label.text() == NO_CALIBRATION
    assert win.ctl is not None and win.ctl.calibration is None


def test_other_channel_setup_is_offered_not_applied(qtbot: QtBot, store: SettingsStore) -> None:
    win = make_window(qtbot, store, "maria")
    calibrate_in_window(qtbot, win)
    # the glute electrodes swapped sides since: the same channels, another mapping
    swapped = {"glute_l": "glute_r", "glute_r": "glute_l"}
    store.save_mapping(SIM.device_id, {**swapped, "lumbar_l": "lumbar_l", "lumbar_r": "lumbar_r"})
    win.connect_source(SIM)
    win.start()  # the stream runs while the question is open
    box = offer(win)
    assert "mapping differs" in box.informativeText()
    session = win.session
    assert session is not None and session.pipeline is not None
    session.pump(0.1)
    assert session.pipeline.baseline.calibrated is None  # asked, not applied
    assert win.calibration_badge.label.text() == NO_CALIBRATION
    answer(box, "Don't use")
    session.pump(0.1)
    assert session.pipeline.baseline.calibrated is None
    assert win.calibration_badge.label.text() == NO_CALIBRATION


def test_old_calibration_is_offered_and_use_applies_it(qtbot: QtBot, store: SettingsStore) -> None:
    win = make_window(qtbot, store, "maria")
    calibrate_in_window(qtbot, win)
    cal = store.load_calibration("maria")
    assert cal is not None
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=30)
    cal["created"] = old.isoformat(timespec="seconds")
    store.save_calibration("maria", cal)
    win.connect_source(SIM)
    win.start()  # the stream runs while the question is open
    box = offer(win)
    assert "30 h old" in box.informativeText()
    assert win.session is not None and win.session.pipeline is not None
    assert win.session.pipeline.baseline.calibrated is None
    answer(box, "Use")
    win.session.pump(0.1)
    assert win.session.pipeline.baseline.calibrated is not None
    assert win.calibration_badge.label.text().startswith("calibrated: maria, ")


def test_matching_fresh_calibration_is_applied_and_shown(
    qtbot: QtBot, store: SettingsStore
) -> None:
    win = make_window(qtbot, store, "maria")
    calibrate_in_window(qtbot, win)
    win.connect_source(SIM)
    assert win.findChild(QtWidgets.QMessageBox, "calibration_offer") is None
    assert win.session is not None and win.session.pipeline is not None
    assert win.session.pipeline.baseline.calibrated is not None
    assert win.calibration_badge.label.text().startswith("calibrated: maria, ")


def test_nothing_is_reused_under_the_placeholder_name(qtbot: QtBot, store: SettingsStore) -> None:
    # what an earlier version saved under the source panel's default "athlete"
    qs = store.qs
    session = open_session(SimulatorDevice(realtime=False, **BUSY))  # type: ignore[arg-type]
    session.close()
    assert session.info is not None
    cal = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "athlete": "athlete",
        "fs": FS,
        "channel_names": list(session.info.channel_names),
        "rest": {"baseline": {"mean": [1.0] * 4, "sd": [0.1] * 4}},
    }
    import json

    qs.setValue("calibrations/athlete", json.dumps(cal))
    win = make_window(qtbot, store)  # athlete field left empty: nobody is named
    assert win.source_panel.athlete.text() == ""
    assert win.session is not None and win.session.pipeline is not None
    win.session.pump(0.1)
    assert win.session.pipeline.baseline.calibrated is None
    assert win.calibration_badge.label.text() == NO_CALIBRATION


def test_reuse_concerns_name_source_mapping_and_age() -> None:
    session = open_session(SimulatorDevice(realtime=False, **BUSY))  # type: ignore[arg-type]
    session.close()
    info = session.info
    assert info is not None
    names = info.channel_names
    now = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
    fresh = {
        "source": "simulator",
        "roles": {r.value: names[c] for r, c in info.roles.items()},
        "created": (now - datetime.timedelta(hours=2)).isoformat(),
    }
    assert reuse_concerns(fresh, info, now) == []
    assert reuse_concerns({**fresh, "source": "serial"}, info, now)[0].startswith("it was made")
    assert (
        "3 days"
        in reuse_concerns(
            {**fresh, "created": (now - datetime.timedelta(days=3)).isoformat()}, info, now
        )[0]
    )


REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "biosppy" / "emg_1.txt"


@pytest.mark.skipif(not REAL.is_file(), reason="the shared real sEMG data is not here")
def test_real_recording_quiet_stretch_passes_and_its_bursts_do_not() -> None:
    """BioSPPy's emg_1 (BITalino, 1 kHz): nobody here wrote it or tuned the checks to it."""
    from devices.files.bitalino_reader import read_simple_text

    rec = read_simple_text(str(REAL), fs=1000.0, units=None)
    fs = rec.fs
    x = np.asarray(rec.data[:, :1], dtype=np.float64)
    filt = np.asarray(sosfilt(design_bandpass(fs, 20.0, 450.0, 4), (x - x[:2000].mean()).T)).T

    def judge(start_s: float) -> tuple[Verdict, tuple[str, ...]]:
        a, b = int(start_s * fs), int((start_s + 3.0) * fs)
        c = check_rest(x[a:b], filt[a:b], fs, [0])[0]
        return c.verdict, c.reasons

    for quiet_s in (2.0, 4.0, 6.0, 10.0, 28.0, 50.0):  # the relaxed stretches
        assert judge(quiet_s)[0] is Verdict.PASS, quiet_s
    for burst_s in (14.0, 24.0):  # 3 s windows holding one of its bursts
        verdict, reasons = judge(burst_s)
        assert verdict is Verdict.FAIL and reasons[0].startswith("muscle activity"), burst_s
