"""The settings dialog: DSP tunables and GUI preferences in one grouped form.

Each editor's objectName is the name of the field it edits (``bandpass_low_hz``, ``cue_mode``,
...), so that tests and style sheets can find it. Fields the dialog does not show pass through
unchanged from the settings it was opened with.
"""

from __future__ import annotations

import logging
from typing import Any

from PyQt6 import QtCore, QtWidgets

from app.settings_store import CUE_MODES, WINDOW_S_RANGE, GuiPrefs
from dsp.settings import DspSettings
from dsp.templates import TEMPLATES

log = logging.getLogger(__name__)

NOTCH_CHOICES: tuple[tuple[str, float], ...] = (("50 Hz", 50.0), ("60 Hz", 60.0), ("Off", 0.0))
DETECTOR_CHOICES: tuple[tuple[str, str], ...] = (
    ("TKEO (Teager-Kaiser energy, rejects ECG/motion)", "tkeo"),
    ("Power (plain signal energy)", "power"),
)
CUE_MODE_TEXT: dict[str, str] = {
    "every": "Every rep",
    "lumbar_only": "Only when the lumbar leads",
    "faded": "Faded (every N-th rep)",
}


def _limit_range(name: str, decimals: int) -> tuple[float, float]:
    """The spin box range of DSP setting ``name``: its own limit (DspSettings.LIMITS), so
    the dialog can never offer a value the settings refuse (an open lower end starts one
    step of the last decimal above it)."""
    limit = DspSettings.LIMITS[name]
    lo = limit.lo + 10.0**-decimals if limit.low_open else limit.lo
    return lo, limit.hi


def _dspin(
    name: str, lo: float, hi: float, step: float, decimals: int, suffix: str = "", tip: str = ""
) -> QtWidgets.QDoubleSpinBox:
    w = QtWidgets.QDoubleSpinBox()
    w.setObjectName(name)
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setDecimals(decimals)
    if suffix:
        w.setSuffix(suffix)
    if tip:
        w.setToolTip(tip)
    return w


def _ispin(name: str, lo: int, hi: int, suffix: str = "", tip: str = "") -> QtWidgets.QSpinBox:
    w = QtWidgets.QSpinBox()
    w.setObjectName(name)
    w.setRange(lo, hi)
    if suffix:
        w.setSuffix(suffix)
    if tip:
        w.setToolTip(tip)
    return w


def _combo(name: str, items: tuple[tuple[str, Any], ...]) -> QtWidgets.QComboBox:
    w = QtWidgets.QComboBox()
    w.setObjectName(name)
    for text, data in items:
        w.addItem(text, data)
    return w


def _set_combo(w: QtWidgets.QComboBox, data: Any) -> None:
    i = w.findData(data)
    if i < 0:
        log.warning("%s: no choice for %r; keeping %r", w.objectName(), data, w.currentData())
        return
    w.setCurrentIndex(i)


class SettingsDialog(QtWidgets.QDialog):
    """Edit :class:`DspSettings` and :class:`GuiPrefs`; read them with :meth:`result_settings`.

    ``fs`` (the stream's sampling rate), when known, lets the dialog check the band-pass top
    edge against the Nyquist frequency.
    """

    def __init__(
        self,
        settings: DspSettings,
        prefs: GuiPrefs,
        parent: QtWidgets.QWidget | None = None,
        *,
        fs: float | None = None,
        scope: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settings_dialog")
        self.fs = fs
        self._base_dsp = settings
        self._base_prefs = prefs

        # -- Filters
        self.bandpass_low_hz = _dspin(
            "bandpass_low_hz",
            *_limit_range("bandpass_low_hz", 1),
            1.0,
            1,
            " Hz",
            "Lower edge of the sEMG band (typically 20 Hz).",
        )
        self.bandpass_high_hz = _dspin(
            "bandpass_high_hz",
            *_limit_range("bandpass_high_hz", 1),
            10.0,
            1,
            " Hz",
            "Upper edge of the sEMG band (typically 450 Hz).",
        )
        self.notch_hz = _combo("notch_hz", NOTCH_CHOICES)
        self.notch_hz.setToolTip("Mains frequency where you are (Europe 50 Hz, Americas 60 Hz).")
        self.notch_harmonics = _ispin(
            "notch_harmonics",
            int(DspSettings.LIMITS["notch_harmonics"].lo),
            int(DspSettings.LIMITS["notch_harmonics"].hi),
            "",
            "Number of hum frequencies removed: fundamental + harmonics.",
        )
        self.ecg_highpass_enabled = QtWidgets.QCheckBox("High-pass the lumbar channels")
        self.ecg_highpass_enabled.setObjectName("ecg_highpass_enabled")
        self.ecg_highpass_enabled.setToolTip(
            "Removes the heartbeat picked up by lumbar electrodes."
        )
        self.ecg_highpass_hz = _dspin(
            "ecg_highpass_hz", *_limit_range("ecg_highpass_hz", 1), 5.0, 1, " Hz"
        )
        self.ecg_highpass_enabled.toggled.connect(self.ecg_highpass_hz.setEnabled)
        self.ecg_gate_enabled = QtWidgets.QCheckBox("Skip heartbeats on lumbar channels")
        self.ecg_gate_enabled.setObjectName("ecg_gate_enabled")
        self.ecg_gate_enabled.setToolTip(
            "While a strong heartbeat passes, a lumbar channel can neither start nor end a "
            "burst: what the high-pass leaves of it is not taken for the back muscles firing."
        )
        self.notch_hz.currentIndexChanged.connect(self._notch_changed)
        self.notch_harmonics.valueChanged.connect(self._notch_changed)

        filters = QtWidgets.QGroupBox("Filters")
        f = QtWidgets.QFormLayout(filters)
        f.addRow("Band-pass low", self.bandpass_low_hz)
        f.addRow("Band-pass high", self.bandpass_high_hz)
        f.addRow("Mains notch", self.notch_hz)
        f.addRow("Hum frequencies notched", self.notch_harmonics)
        ecg = QtWidgets.QHBoxLayout()
        ecg.addWidget(self.ecg_highpass_enabled)
        ecg.addWidget(self.ecg_highpass_hz)
        f.addRow("ECG removal", ecg)
        f.addRow("", self.ecg_gate_enabled)

        # -- Detector
        self.detector = _combo("detector", DETECTOR_CHOICES)
        self.k_on = _dspin(
            "k_on",
            *_limit_range("k_on", 1),
            0.5,
            1,
            " SD",
            "Onset threshold: rest mean + k × SD. Higher = fewer false onsets.",
        )
        self.min_on_ms = _dspin(
            "min_on_ms",
            *_limit_range("min_on_ms", 0),
            5.0,
            0,
            " ms",
            "The statistic must stay above threshold this long.",
        )
        self.k_off = _dspin(
            "k_off",
            *_limit_range("k_off", 1),
            0.5,
            1,
            " SD",
            "Offset threshold (below the onset threshold: hysteresis).",
        )
        self.min_off_ms = _dspin("min_off_ms", *_limit_range("min_off_ms", 0), 10.0, 0, " ms")
        self.detector_lowpass_hz = _dspin(
            "detector_lowpass_hz",
            *_limit_range("detector_lowpass_hz", 1),
            1.0,
            1,
            " Hz",
            "Smoothing of the detection statistic.",
        )
        detector = QtWidgets.QGroupBox("Onset detector")
        d = QtWidgets.QFormLayout(detector)
        d.addRow("Statistic", self.detector)
        d.addRow("Onset k", self.k_on)
        d.addRow("Minimum on time", self.min_on_ms)
        d.addRow("Offset k", self.k_off)
        d.addRow("Minimum off time", self.min_off_ms)
        d.addRow("Smoothing low-pass", self.detector_lowpass_hz)

        # -- Verdict
        self.exercise = _combo("exercise", tuple((t.title, t.name) for t in TEMPLATES.values()))
        for i, t in enumerate(TEMPLATES.values()):
            self.exercise.setItemData(i, t.description, QtCore.Qt.ItemDataRole.ToolTipRole)
        self.tolerance_ms = _dspin(
            "tolerance_ms",
            *_limit_range("tolerance_ms", 0),
            5.0,
            0,
            " ms",
            "Onsets closer than this count as simultaneous.",
        )
        self.settle_ms = _dspin(
            "settle_ms",
            *_limit_range("settle_ms", 0),
            10.0,
            0,
            " ms",
            "How long to wait for the other side's onset before deciding.",
        )
        verdict = QtWidgets.QGroupBox("Verdict")
        v = QtWidgets.QFormLayout(verdict)
        v.addRow("Exercise", self.exercise)
        v.addRow("Simultaneous within ±", self.tolerance_ms)
        v.addRow("Settle time", self.settle_ms)

        # -- Display
        lo, hi = WINDOW_S_RANGE
        self.window_s = _dspin("window_s", lo, hi, 1.0, 0, " s", "Width of the live traces.")
        self.show_raw = QtWidgets.QCheckBox("Show raw signals instead of filtered")
        self.show_raw.setObjectName("show_raw")
        self.athlete_screen = QtWidgets.QCheckBox("Athlete screen (large verdict)")
        self.athlete_screen.setObjectName("athlete_screen")
        self.recent_window_n = _ispin(
            "recent_window_n", 1, 500, " reps", "Reps counted in the 'recent' tally."
        )
        from devices.files.locations import default_recordings_dir

        self.recordings_dir = QtWidgets.QLineEdit()
        self.recordings_dir.setObjectName("recordings_dir")
        self.recordings_dir.setPlaceholderText(str(default_recordings_dir()))
        self.recordings_dir.setToolTip(
            "Where recordings are saved and the Sessions tab looks (empty: the default)."
        )
        browse = QtWidgets.QPushButton("Browse…")
        browse.setObjectName("recordings_dir_browse")
        browse.clicked.connect(self._browse_recordings)
        folder_row = QtWidgets.QHBoxLayout()
        folder_row.addWidget(self.recordings_dir, 1)
        folder_row.addWidget(browse)
        display = QtWidgets.QGroupBox("Display")
        g = QtWidgets.QFormLayout(display)
        g.addRow("Recordings folder", folder_row)
        g.addRow("Trace window", self.window_s)
        g.addRow("Recent tally over", self.recent_window_n)
        g.addRow(self.show_raw)
        g.addRow(self.athlete_screen)

        # -- Cues
        self.cue_mode = _combo("cue_mode", tuple((CUE_MODE_TEXT.get(m, m), m) for m in CUE_MODES))
        self.cue_every_n = _ispin("cue_every_n", 1, 50, "", "Cue every N-th rep (faded mode).")
        self.cue_mute = QtWidgets.QCheckBox("Mute")
        self.cue_mute.setObjectName("cue_mute")
        self.cue_volume = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.cue_volume.setObjectName("cue_volume")
        self.cue_volume.setRange(0, 100)
        self.cue_mute.toggled.connect(lambda m: self.cue_volume.setEnabled(not m))
        self.cue_mode.currentIndexChanged.connect(self._cue_mode_changed)
        cues = QtWidgets.QGroupBox("Cues")
        c = QtWidgets.QFormLayout(cues)
        c.addRow("When", self.cue_mode)
        c.addRow("Every N-th rep", self.cue_every_n)
        c.addRow("Volume", self.cue_volume)
        c.addRow(self.cue_mute)

        # -- Lab Streaming Layer
        self.lsl_out = QtWidgets.QCheckBox("Send verdicts over LSL")
        self.lsl_out.setObjectName("lsl_out")
        self.lsl_out.setToolTip(
            "One JSON marker per finished rep on an LSL marker stream, for LabRecorder or "
            "another lab tool. Off: fireorder opens no network socket."
        )
        self.lsl_out_name = QtWidgets.QLineEdit()
        self.lsl_out_name.setObjectName("lsl_out_name")
        self.lsl_out_name.setToolTip("The stream's name (give each station its own).")
        self.lsl_out.toggled.connect(self.lsl_out_name.setEnabled)
        lsl = QtWidgets.QGroupBox("Lab Streaming Layer")
        lsl_form = QtWidgets.QFormLayout(lsl)
        lsl_form.addRow(self.lsl_out)
        lsl_form.addRow("Stream name", self.lsl_out_name)

        # -- errors and buttons
        self.error_label = QtWidgets.QLabel()
        self.error_label.setObjectName("error_label")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("QLabel { color: #c0392b; font-weight: bold; }")
        self.error_label.hide()
        Btn = QtWidgets.QDialogButtonBox.StandardButton
        self.buttons = QtWidgets.QDialogButtonBox(Btn.Ok | Btn.Cancel | Btn.RestoreDefaults)
        self.buttons.setObjectName("buttons")
        self.restore_button = self.buttons.button(Btn.RestoreDefaults)
        assert self.restore_button is not None
        self.restore_button.setObjectName("restore_defaults")
        self.restore_button.clicked.connect(self.restore_defaults)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        left = QtWidgets.QVBoxLayout()
        left.addWidget(filters)
        left.addWidget(detector)
        left.addStretch(1)
        right = QtWidgets.QVBoxLayout()
        right.addWidget(verdict)
        right.addWidget(display)
        right.addWidget(cues)
        right.addWidget(lsl)
        right.addStretch(1)
        columns = QtWidgets.QHBoxLayout()
        columns.addLayout(left)
        columns.addLayout(right)
        layout = QtWidgets.QVBoxLayout(self)
        # Whose settings these are, when they are not the live session's (a replay runs with
        # the recording's own): an OK must not look like it changed the live defaults.
        self.scope_label = QtWidgets.QLabel(scope or "")
        self.scope_label.setObjectName("scope_label")
        self.scope_label.setWordWrap(True)
        self.scope_label.setVisible(bool(scope))
        layout.addWidget(self.scope_label)
        layout.addLayout(columns)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        self.set_form(settings, prefs)

    # -- form <-> values ----------------------------------------------------------------------
    def set_form(self, s: DspSettings, p: GuiPrefs) -> None:
        self.bandpass_low_hz.setValue(s.bandpass_low_hz)
        self.bandpass_high_hz.setValue(s.bandpass_high_hz)
        _set_combo(self.notch_hz, float(s.notch_hz))
        self.notch_harmonics.setValue(max(1, s.notch_harmonics))
        on = s.ecg_highpass_hz > 0
        self.ecg_highpass_enabled.setChecked(on)
        # Off is stored as 0 Hz: offer the default cutoff should the user switch it back on.
        self.ecg_highpass_hz.setValue(s.ecg_highpass_hz if on else DspSettings().ecg_highpass_hz)
        self.ecg_highpass_hz.setEnabled(on)
        self.ecg_gate_enabled.setChecked(s.ecg_gate_ratio > 0)
        _set_combo(self.detector, s.detector)
        self.k_on.setValue(s.k_on)
        self.min_on_ms.setValue(s.min_on_ms)
        self.k_off.setValue(s.k_off)
        self.min_off_ms.setValue(s.min_off_ms)
        self.detector_lowpass_hz.setValue(s.detector_lowpass_hz)
        _set_combo(self.exercise, s.exercise)
        self.tolerance_ms.setValue(s.tolerance_ms)
        self.settle_ms.setValue(s.settle_ms)
        self.window_s.setValue(p.window_s)
        self.recordings_dir.setText(p.recordings_dir)
        self.show_raw.setChecked(p.show_raw)
        self.athlete_screen.setChecked(p.athlete_screen)
        self.recent_window_n.setValue(p.recent_window_n)
        _set_combo(self.cue_mode, p.cue_mode)
        self.cue_every_n.setValue(p.cue_every_n)
        self.cue_mute.setChecked(p.cue_mute)
        self.cue_volume.setValue(round(p.cue_volume * 100))
        self.cue_volume.setEnabled(not p.cue_mute)
        self.lsl_out.setChecked(p.lsl_out)
        self.lsl_out_name.setText(p.lsl_out_name)
        self.lsl_out_name.setEnabled(p.lsl_out)
        self._notch_changed()
        self._cue_mode_changed()
        self._show_error(None)

    def _browse_recordings(self) -> None:
        start = self.recordings_dir.text() or self.recordings_dir.placeholderText()
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Recordings folder", start)
        if folder:
            self.recordings_dir.setText(folder)

    def result_settings(self) -> tuple[DspSettings, GuiPrefs]:
        """The settings as the form shows them (valid once the dialog was accepted)."""
        notch = float(self.notch_hz.currentData())
        dsp = self._base_dsp.with_(
            bandpass_low_hz=self.bandpass_low_hz.value(),
            bandpass_high_hz=self.bandpass_high_hz.value(),
            notch_hz=notch,
            notch_harmonics=self.notch_harmonics.value(),
            ecg_highpass_hz=(
                self.ecg_highpass_hz.value() if self.ecg_highpass_enabled.isChecked() else 0.0
            ),
            ecg_gate_ratio=(
                (self._base_dsp.ecg_gate_ratio or DspSettings().ecg_gate_ratio)
                if self.ecg_gate_enabled.isChecked()
                else 0.0
            ),
            detector=self.detector.currentData(),
            k_on=self.k_on.value(),
            min_on_ms=self.min_on_ms.value(),
            k_off=self.k_off.value(),
            min_off_ms=self.min_off_ms.value(),
            detector_lowpass_hz=self.detector_lowpass_hz.value(),
            exercise=self.exercise.currentData(),
            tolerance_ms=self.tolerance_ms.value(),
            settle_ms=self.settle_ms.value(),
        )
        prefs = self._base_prefs.with_(
            window_s=self.window_s.value(),
            recordings_dir=self.recordings_dir.text().strip(),
            show_raw=self.show_raw.isChecked(),
            athlete_screen=self.athlete_screen.isChecked(),
            recent_window_n=self.recent_window_n.value(),
            cue_mode=self.cue_mode.currentData(),
            cue_every_n=self.cue_every_n.value(),
            cue_mute=self.cue_mute.isChecked(),
            cue_volume=self.cue_volume.value() / 100.0,
            lsl_out=self.lsl_out.isChecked(),
            lsl_out_name=self.lsl_out_name.text().strip() or GuiPrefs().lsl_out_name,
        )
        return dsp, prefs

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> tuple[str, QtWidgets.QWidget] | None:
        """The first problem of the form as (message, widget), or None."""
        low, high = self.bandpass_low_hz.value(), self.bandpass_high_hz.value()
        if low >= high:
            return (
                f"Band-pass low ({low:g} Hz) must be below band-pass high ({high:g} Hz).",
                self.bandpass_low_hz,
            )
        if self.fs is not None and high >= 0.5 * self.fs:
            return (
                f"Band-pass high ({high:g} Hz) must be below half the sampling rate "
                f"({0.5 * self.fs:g} Hz for {self.fs:g} Hz).",
                self.bandpass_high_hz,
            )
        if self.ecg_highpass_enabled.isChecked() and self.ecg_highpass_hz.value() >= high:
            return (
                f"The ECG high-pass ({self.ecg_highpass_hz.value():g} Hz) must be below "
                f"band-pass high ({high:g} Hz).",
                self.ecg_highpass_hz,
            )
        if self.k_off.value() >= self.k_on.value():
            return (
                f"Offset k ({self.k_off.value():g}) must be below onset k "
                f"({self.k_on.value():g}): otherwise a burst ends as soon as it starts.",
                self.k_off,
            )
        try:  # the settings' own checks (their ranges and how fields go together)
            self.result_settings()
        except ValueError as exc:
            return str(exc), self.bandpass_low_hz
        return None

    def accept(self) -> None:
        problem = self.validate()
        if problem is not None:
            message, widget = problem
            self._show_error(message)
            widget.setFocus()
            log.info("settings not accepted: %s", message)
            return  # the dialog stays open
        self._show_error(None)
        super().accept()

    def restore_defaults(self) -> None:
        """Reset the form (and the hidden fields that pass through) to the defaults."""
        self._base_dsp = DspSettings()
        self._base_prefs = GuiPrefs()
        self.set_form(self._base_dsp, self._base_prefs)

    # -- helpers ------------------------------------------------------------------------------
    def _show_error(self, message: str | None) -> None:
        self.error_label.setText(message or "")
        self.error_label.setVisible(bool(message))

    def _notch_changed(self) -> None:
        hz = float(self.notch_hz.currentData())
        self.notch_harmonics.setEnabled(hz > 0)
        # which frequencies the count means, in the field: "3" alone read as nothing
        n = self.notch_harmonics.value()
        if hz > 0:
            shown = ", ".join(f"{k * hz:g}" for k in range(1, min(n, 3) + 1))
            self.notch_harmonics.setSuffix(f"  ({shown}{', …' if n > 3 else ''} Hz)")
        else:
            self.notch_harmonics.setSuffix("")

    def _cue_mode_changed(self) -> None:
        self.cue_every_n.setEnabled(self.cue_mode.currentData() == "faded")
