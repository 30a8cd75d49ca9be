"""Settings persistence, the settings dialog and the calibration wizard (pytest-qt)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from PyQt6 import QtCore, QtWidgets
from PyQt6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.calibration import ID_REF_SETUP, ID_REST, ID_SUMMARY, CalibrationWizard
from app.settings_dialog import SettingsDialog
from app.settings_store import GuiPrefs, SettingsStore
from devices.drivers.simulator import SimulatorDevice
from devices.session.calibration import apply_calibration
from devices.session.live import LiveSession
from dsp.settings import DspSettings


def ini(path: Path) -> QtCore.QSettings:
    return QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat)


@pytest.fixture
def ini_path(tmp_path: Path) -> Path:
    return tmp_path / "fireorder.ini"


@pytest.fixture
def store(ini_path: Path) -> SettingsStore:
    return SettingsStore(ini(ini_path))


# -- SettingsStore ------------------------------------------------------------------------------


def test_empty_store_gives_defaults(store: SettingsStore) -> None:
    assert store.load_dsp() == DspSettings()
    assert store.load_prefs() == GuiPrefs()
    assert store.load_mapping("simulator") is None
    assert store.load_calibration("anna") is None


def test_round_trip_survives_a_restart(store: SettingsStore, ini_path: Path) -> None:
    dsp = DspSettings(
        bandpass_low_hz=25.0,
        notch_hz=60.0,
        detector="power",
        k_on=4.5,
        notch_harmonics=2,
        exercise="bird_dog_left",
    )
    prefs = GuiPrefs(
        window_s=15.0,
        cue_mode="faded",
        cue_every_n=3,
        cue_mute=True,
        cue_volume=0.4,
        athlete_screen=True,
        show_raw=True,
        recent_window_n=20,
    )
    mapping = {"glute_l": "EXG1", "glute_r": "EXG2", "lumbar_l": "A, 3", "lumbar_r": "EXG4"}
    cal = {
        "rest": {"baseline": {"mean": [1.5, None], "sd": [0.5, float("nan")]}},
        "reference": {"kind": "mvc", "peak_rms_uv": {"EXG1": 120.0}},
    }
    store.save_dsp(dsp)
    store.save_prefs(prefs)
    store.save_mapping("serial:/dev/ttyACM0", mapping)
    store.save_mapping("simulator", {"glute_l": "glute_l", "lumbar_l": "lumbar_l"})
    store.save_calibration("Anna/B ö", cal)

    again = SettingsStore(ini(ini_path))  # a new process would open the file like this
    assert again.load_dsp() == dsp
    assert again.load_prefs() == prefs
    assert again.load_mapping("serial:/dev/ttyACM0") == mapping
    assert again.load_mapping("simulator") == {"glute_l": "glute_l", "lumbar_l": "lumbar_l"}
    loaded = again.load_calibration("Anna/B ö")
    assert loaded is not None
    assert loaded["rest"]["baseline"] == {"mean": [1.5, None], "sd": [0.5, None]}  # NaN -> null
    assert loaded["reference"] == cal["reference"]
    assert again.load_calibration("Anna") is None


def test_corrupted_values_fall_back_field_by_field(
    store: SettingsStore, ini_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.save_dsp(DspSettings(k_on=4.0, tolerance_ms=35.0))
    store.save_prefs(GuiPrefs(recent_window_n=25))
    qs = ini(ini_path)
    qs.setValue("dsp/k_on", "{not json")
    qs.setValue("dsp/detector", '"wavelet"')
    qs.setValue("dsp/notch_harmonics", "2.5")
    qs.setValue("dsp/bandpass_low_hz", "-3")
    qs.setValue("dsp/exercise", "7")
    qs.setValue("prefs/window_s", "99")
    qs.setValue("prefs/cue_mode", '"loud"')
    qs.setValue("prefs/cue_mute", '"yes"')
    qs.setValue("mappings/simulator", "[1, 2]")
    qs.setValue("calibrations/anna", "oops")
    qs.sync()

    fresh = SettingsStore(ini(ini_path))
    with caplog.at_level(logging.WARNING, logger="app.settings_store"):
        dsp = fresh.load_dsp()
        prefs = fresh.load_prefs()
        assert fresh.load_mapping("simulator") is None
        assert fresh.load_calibration("anna") is None
    d = DspSettings()
    assert (dsp.k_on, dsp.detector, dsp.notch_harmonics) == (d.k_on, d.detector, d.notch_harmonics)
    assert (dsp.bandpass_low_hz, dsp.exercise) == (d.bandpass_low_hz, d.exercise)
    assert dsp.tolerance_ms == 35.0  # the intact neighbours survive
    p = GuiPrefs()
    assert (prefs.window_s, prefs.cue_mode, prefs.cue_mute) == (p.window_s, p.cue_mode, p.cue_mute)
    assert prefs.recent_window_n == 25
    assert len(caplog.records) >= 10


def test_empty_band_pass_is_repaired(store: SettingsStore, ini_path: Path) -> None:
    # (DspSettings itself refuses an empty band: the file is edited or from an older version)
    store.save_dsp(DspSettings(bandpass_low_hz=300.0))
    store._set("dsp/bandpass_high_hz", 100.0)
    store._sync()
    dsp = SettingsStore(ini(ini_path)).load_dsp()
    assert dsp.bandpass_low_hz < dsp.bandpass_high_hz


def test_restore_defaults_keeps_mappings_and_calibrations(
    store: SettingsStore, ini_path: Path
) -> None:
    store.save_dsp(DspSettings(k_on=9.0))
    store.save_prefs(GuiPrefs(window_s=20.0))
    store.save_mapping("simulator", {"glute_l": "a", "lumbar_l": "b"})
    store.save_calibration("anna", {"rest": None})
    assert store.restore_defaults() == DspSettings()
    again = SettingsStore(ini(ini_path))
    assert again.load_dsp() == DspSettings()
    assert again.load_prefs() == GuiPrefs()
    assert again.load_mapping("simulator") == {"glute_l": "a", "lumbar_l": "b"}
    assert again.load_calibration("anna") == {"rest": None}


# -- SettingsDialog -----------------------------------------------------------------------------


@pytest.fixture
def dialog(qtbot: QtBot) -> SettingsDialog:
    dlg = SettingsDialog(DspSettings(rms_window_ms=80.0), GuiPrefs(show_raw=True))
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


W = TypeVar("W", bound=QtCore.QObject)


def find(parent: QtWidgets.QWidget, cls: type[W], name: str) -> W:
    w = parent.findChild(cls, name)
    assert isinstance(w, cls), name
    return w


def test_dialog_edits_reach_the_result(dialog: SettingsDialog) -> None:
    find(dialog, QtWidgets.QDoubleSpinBox, "bandpass_low_hz").setValue(30.0)
    find(dialog, QtWidgets.QDoubleSpinBox, "k_on").setValue(8.0)
    notch = find(dialog, QtWidgets.QComboBox, "notch_hz")
    notch.setCurrentIndex(notch.findData(60.0))
    find(dialog, QtWidgets.QCheckBox, "ecg_highpass_enabled").setChecked(False)
    gate = find(dialog, QtWidgets.QCheckBox, "ecg_gate_enabled")
    assert gate.isChecked()  # on by default
    QTest.mouseClick(gate, QtCore.Qt.MouseButton.LeftButton)  # the user unticks it
    det = find(dialog, QtWidgets.QComboBox, "detector")
    det.setCurrentIndex(det.findData("power"))
    ex = find(dialog, QtWidgets.QComboBox, "exercise")
    ex.setCurrentIndex(ex.findData("squat"))
    assert ex.currentText() == "Squat"
    find(dialog, QtWidgets.QDoubleSpinBox, "window_s").setValue(20.0)
    cue = find(dialog, QtWidgets.QComboBox, "cue_mode")
    cue.setCurrentIndex(cue.findData("faded"))
    find(dialog, QtWidgets.QSpinBox, "cue_every_n").setValue(3)
    find(dialog, QtWidgets.QSlider, "cue_volume").setValue(25)
    find(dialog, QtWidgets.QSpinBox, "recent_window_n").setValue(15)

    find(dialog, QtWidgets.QDialogButtonBox, "buttons").accepted.emit()
    assert dialog.result() == QtWidgets.QDialog.DialogCode.Accepted
    dsp, prefs = dialog.result_settings()
    assert (dsp.bandpass_low_hz, dsp.k_on, dsp.notch_hz) == (30.0, 8.0, 60.0)
    assert (dsp.ecg_highpass_hz, dsp.detector, dsp.exercise) == (0.0, "power", "squat")
    assert dsp.ecg_gate_ratio == 0.0
    assert dsp.rms_window_ms == 80.0  # a field the dialog does not show passes through
    assert prefs == GuiPrefs(
        window_s=20.0,
        cue_mode="faded",
        cue_every_n=3,
        cue_volume=0.25,
        recent_window_n=15,
        show_raw=True,
    )


def test_invalid_band_pass_keeps_the_dialog_open(dialog: SettingsDialog, qtbot: QtBot) -> None:
    find(dialog, QtWidgets.QDoubleSpinBox, "bandpass_low_hz").setValue(300.0)
    find(dialog, QtWidgets.QDoubleSpinBox, "bandpass_high_hz").setValue(200.0)
    ok = find(dialog, QtWidgets.QDialogButtonBox, "buttons")
    ok.accepted.emit()
    err = find(dialog, QtWidgets.QLabel, "error_label")
    assert dialog.isVisible() and dialog.result() != QtWidgets.QDialog.DialogCode.Accepted
    assert err.isVisible() and "must be below" in err.text() and "low" in err.text()
    # Fixing it lets the dialog close.
    find(dialog, QtWidgets.QDoubleSpinBox, "bandpass_high_hz").setValue(450.0)
    ok.accepted.emit()
    assert dialog.result() == QtWidgets.QDialog.DialogCode.Accepted and not err.isVisible()


def test_hysteresis_and_nyquist_are_checked(qtbot: QtBot) -> None:
    dlg = SettingsDialog(DspSettings(), GuiPrefs(), fs=500.0)
    qtbot.addWidget(dlg)
    problem = dlg.validate()
    assert problem is not None and "half the sampling rate" in problem[0]
    dlg.bandpass_high_hz.setValue(200.0)
    dlg.k_off.setValue(dlg.k_on.value())
    problem = dlg.validate()
    assert problem is not None and "Offset k" in problem[0]


def test_restore_defaults_resets_the_form(dialog: SettingsDialog, qtbot: QtBot) -> None:
    find(dialog, QtWidgets.QDoubleSpinBox, "k_on").setValue(12.0)
    find(dialog, QtWidgets.QCheckBox, "cue_mute").setChecked(True)
    restore = find(dialog, QtWidgets.QPushButton, "restore_defaults")
    qtbot.mouseClick(restore, QtCore.Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert dialog.result_settings() == (DspSettings(), GuiPrefs())


# -- CalibrationWizard --------------------------------------------------------------------------


@pytest.fixture
def session() -> Iterator[LiveSession]:
    s = LiveSession(SimulatorDevice(preset="clean", realtime=False, seed=3, lead_in_s=4.0))
    s.open()
    s.start(threaded=False)
    yield s
    s.close()


@pytest.fixture
def wizard(qtbot: QtBot, session: LiveSession, store: SettingsStore) -> CalibrationWizard:
    wiz = CalibrationWizard(session, "anna", store)
    wiz.countdown_s = 0
    wiz.rest_s = 1.5
    wiz.contraction_s = 3.5
    qtbot.addWidget(wiz)
    wiz.show()
    wiz.next()
    assert wiz.currentId() == ID_REST
    return wiz


def test_rest_then_reference_then_finish(
    qtbot: QtBot, wizard: CalibrationWizard, session: LiveSession, store: SettingsStore
) -> None:
    rest = wizard.rest_page
    next_button = wizard.button(QtWidgets.QWizard.WizardButton.NextButton)
    assert next_button is not None
    assert not rest.isComplete() and not next_button.isEnabled()
    start = find(wizard, QtWidgets.QPushButton, "rest_start")
    qtbot.mouseClick(start, QtCore.Qt.MouseButton.LeftButton)
    assert rest.phase == "recording" and not start.isEnabled()
    session.pump(2.0)  # the session is not threaded: the test steps it
    qtbot.waitUntil(rest.isComplete, timeout=5000)
    assert next_button.isEnabled()
    assert session.pipeline is not None and session.pipeline.baseline.calibrated is not None
    text = find(wizard, QtWidgets.QLabel, "rest_result").text()
    assert "µV" in text and "left glute max" in text and "right lumbar ES" in text
    assert find(wizard, QtWidgets.QProgressBar, "rest_progress").value() == 100
    noise = rest.noise()
    assert len(noise) == 4 and all(0 < v < 100 for v in noise.values())

    wizard.next()
    assert wizard.currentId() == ID_REF_SETUP
    find(wizard, QtWidgets.QRadioButton, "reference_submax").setChecked(True)
    wizard.next()
    glute = wizard.ref_pages["glute"]
    assert wizard.currentPage() is glute
    assert "squeeze the glutes" in glute.instructions.text().lower()
    glute.start()
    session.pump(4.0)  # covers the first simulated rep (lead-in 4 s)
    qtbot.waitUntil(glute.isComplete, timeout=5000)
    peaks = glute.peaks()
    info = session.info
    assert info is not None and sorted(peaks) == sorted(
        info.roles[r] for r in info.roles if r.is_glute
    )
    assert all(v > 0 for v in peaks.values())
    assert session.reference is not None and np.all(session.reference[list(peaks)] > 0)

    wizard.next()
    lumbar = wizard.ref_pages["lumbar"]
    assert wizard.currentPage() is lumbar
    lumbar.start()
    session.pump(4.0)
    qtbot.waitUntil(lumbar.isComplete, timeout=5000)
    wizard.next()
    assert wizard.currentId() == ID_SUMMARY
    assert "sub-maximal" in find(wizard, QtWidgets.QLabel, "summary").text()

    with qtbot.waitSignal(wizard.calibration_done, timeout=5000) as sig:
        wizard.accept()
    cal = sig.args[0]
    assert cal["athlete"] == "anna" and cal["reference"]["kind"] == "submax"
    assert set(cal["rest"]["noise_rms_uv"]) == set(info.channel_names)
    assert len(cal["reference"]["peak_rms_uv"]) == 4
    assert store.load_calibration("anna") == cal


def test_skip_reference_and_reuse(
    qtbot: QtBot, wizard: CalibrationWizard, session: LiveSession, store: SettingsStore
) -> None:
    wizard.rest_page.start()
    session.pump(2.0)
    qtbot.waitUntil(wizard.rest_page.isComplete, timeout=5000)
    wizard.next()
    find(wizard, QtWidgets.QCheckBox, "reference_skip").setChecked(True)
    wizard.next()
    assert wizard.currentId() == ID_SUMMARY
    wizard.accept()
    cal = store.load_calibration("anna")
    assert cal is not None and cal["reference"] is None and cal["rest"]["baseline"]["mean"]

    # A later session on the same setup reuses it; changed detector settings refuse it.
    later = LiveSession(SimulatorDevice(preset="clean", realtime=False, seed=4))
    later.open()
    later.start(threaded=False)
    assert apply_calibration(later, cal) is None
    later.pump(0.1)
    assert later.pipeline is not None and later.pipeline.baseline.calibrated is not None
    later.close()
    other = LiveSession(
        SimulatorDevice(preset="clean", realtime=False, seed=4), DspSettings(detector="power")
    )
    other.open()
    reason = apply_calibration(other, cal)
    assert reason is not None and "detector" in reason
    other.close()


def test_countdown_then_cancel_restores_the_session(
    qtbot: QtBot, wizard: CalibrationWizard, session: LiveSession
) -> None:
    wizard.countdown_s = 1
    wizard.tick_ms = 10  # the countdown itself is not under test: keep it short
    page = wizard.rest_page
    page.start()
    assert page.phase == "ready"
    assert find(wizard, QtWidgets.QLabel, "rest_countdown").text().startswith("Get ready")
    qtbot.waitUntil(lambda: page.phase == "recording", timeout=5000)
    session.pump(2.0)
    qtbot.waitUntil(page.isComplete, timeout=5000)
    assert session.pipeline is not None and session.pipeline.baseline.calibrated is not None
    wizard.reject()
    session.pump(0.05)  # the restore travels as a command
    assert session.pipeline.baseline.calibrated is None


def test_not_streaming_is_reported(
    qtbot: QtBot, wizard: CalibrationWizard, session: LiveSession
) -> None:
    session.stop()
    wizard.rest_page.start()
    assert wizard.rest_page.phase == "failed"
    assert "not streaming" in find(wizard, QtWidgets.QLabel, "rest_result").text()


def test_threaded_session_result_reaches_the_gui_thread(qtbot: QtBot, store: SettingsStore) -> None:
    s = LiveSession(SimulatorDevice(preset="clean", realtime=False, seed=5))
    s.open()
    wiz = CalibrationWizard(s, "ben", store, countdown_s=0, rest_s=1.0)
    qtbot.addWidget(wiz)
    seen: list[bool] = []
    wiz.rest_page._finished.connect(
        lambda *_: seen.append(threading.current_thread() is threading.main_thread()),
        QtCore.Qt.ConnectionType.DirectConnection,  # type: ignore[call-arg]
    )  # direct: the slot runs on the thread that emits
    s.start(threaded=True)
    try:
        wiz.show()
        wiz.next()
        wiz.rest_page.start()
        qtbot.waitUntil(wiz.rest_page.isComplete, timeout=10_000)
    finally:
        s.close()
    assert seen == [False]  # emitted on the worker, handled on the GUI thread
    assert all(v > 0 for v in wiz.rest_page.noise().values())


def test_the_notch_count_says_which_frequencies_it_removes(dialog: SettingsDialog, qtbot) -> None:
    count = find(dialog, QtWidgets.QSpinBox, "notch_harmonics")
    mains = find(dialog, QtWidgets.QComboBox, "notch_hz")
    assert count.text() == "3  (50, 100, 150 Hz)"
    mains.setCurrentIndex(mains.findData(60.0))
    assert count.text() == "3  (60, 120, 180 Hz)"
    count.setFocus()
    qtbot.keyClick(count, QtCore.Qt.Key.Key_Up)  # the user steps it up
    assert count.value() == 4 and count.text() == "4  (60, 120, 180, … Hz)"
    mains.setCurrentIndex(mains.findData(0.0))
    assert not count.isEnabled() and count.suffix() == ""
    assert count.value() == 4  # the count itself is kept
