"""Source panel: pick a source and its settings, connect/start/stop, map channels to muscles."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from PyQt6 import QtCore, QtWidgets

from dsp.contract import FS_LIMIT, Role, StreamInfo

if TYPE_CHECKING:
    from devices.drivers.discovery import Discovery
    from devices.drivers.lsl_source import LslStream
    from devices.drivers.serial_protocol import Scale

log = logging.getLogger(__name__)
NO_ROLE = "—"
#: sources whose channels are only known once the board is asked (Connect looks first)
DISCOVERED_KINDS = ("serial", "brainflow", "lsl")
#: how long Refresh on the LSL page waits for streams to answer (on a worker thread)
LSL_LIST_WAIT_S = 1.0

#: the serial form's scale presets: (ADC bits, ADC reference V, front-end gain), or None
#: for a board that already sends microvolts. A unipolar ADC reads the signal around
#: mid-scale, so the offset is 2**(bits-1) (Scale.from_adc, as the CLI's --adc-bits).
NO_SCALE = "board sends µV (no scaling)"
CUSTOM_SCALE = "custom"
SCALE_PRESETS: dict[str, tuple[int, float, float] | None] = {
    NO_SCALE: None,
    "Arduino Uno 10-bit 5 V": (10, 5.0, 1.0),
    "ESP32 12-bit 3.3 V": (12, 3.3, 1.0),
    # MyoWare 2.0 RAW output: fixed gain 200, centred on REF = Vin/2 (Advancer
    # Technologies, MyoWare Arduino Library, example ReadMyoWareVoltage: "the RAW gain
    # equation which is fixed at 200"). On the Arduino Shield Vin is the Uno's 5 V, on the
    # Wireless Shield the ESP32's 3.3 V: mid-scale of the ADC either way.
    "MyoWare 2.0 RAW, Uno (gain 200)": (10, 5.0, 200.0),
    "MyoWare 2.0 RAW, ESP32 (gain 200)": (12, 3.3, 200.0),
    CUSTOM_SCALE: None,
}

_W = TypeVar("_W", bound=QtWidgets.QWidget)

#: the file dialogs' filter: every format devices.files reads (BDF/EDF(+), CSV/TSV, OpenSignals
#: and BITalino text, BrainFlow's CSV, XDF)
RECORDING_FILTER = "Recordings (*.bdf *.edf *.csv *.tsv *.txt *.xdf);;All files (*)"


def _named(widget: _W, name: str) -> _W:
    """``widget`` with its Qt object name set (what tests and the style sheet find it by)."""
    widget.setObjectName(name)
    return widget


@dataclass(frozen=True)
class SourceChoice:
    kind: str
    options: dict[str, object]

    @property
    def device_id(self) -> str:
        """What channel mappings are remembered by: the kind and the port/board/file."""
        for key in ("port", "board", "path", "stream"):
            if self.options.get(key):
                return f"{self.kind}:{self.options[key]}"
        return self.kind


def _lsl_choice(stream: LslStream) -> SourceChoice:
    """The picked stream: by name and, where it has one, its source_id -- the very outlet
    picked, not another of the same name, now and when it reconnects."""
    options: dict[str, object] = {"stream": stream.name}
    if stream.source_id:
        options["source_id"] = stream.source_id
    return SourceChoice("lsl", options)


def _lsl_item(stream: LslStream) -> str:
    """``Trigno — EMG, 8 ch @ 2000 Hz, host lab-pc``."""
    return (
        f"{stream.name} — {stream.type or 'no type'}, {stream.channel_count} ch @ "
        f"{stream.rate:g} Hz, {stream.host}"
    )


def _combo(
    name: str, items: list[str], current: str | None = None, editable: bool = False
) -> QtWidgets.QComboBox:
    box = _named(QtWidgets.QComboBox(), name)
    box.addItems(items)
    box.setEditable(editable)
    if current is not None:
        box.setCurrentText(current)
    return box


class SourcePanel(QtWidgets.QWidget):
    connect_requested = QtCore.pyqtSignal(object)  # SourceChoice
    start_requested = QtCore.pyqtSignal()
    stop_requested = QtCore.pyqtSignal()
    mapping_changed = QtCore.pyqtSignal(dict)  # {Role: channel index}
    discovered = QtCore.pyqtSignal(object)  # Discovery: the table lists its channels
    discovery_failed = QtCore.pyqtSignal(str)  # one line: why the board could not be read
    #: the file's "speed (×)" was changed by hand: a replay running goes on at it
    file_speed_changed = QtCore.pyqtSignal(float)
    # (token, choice, stored mapping, Discovery or error text), emitted on the worker thread
    _discovery_done = QtCore.pyqtSignal(int, object, object, object)
    # (token, [LslStream] or error text), emitted on the LSL listing's worker thread
    _lsl_listed = QtCore.pyqtSignal(int, object)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        from devices.drivers.base import registered

        self._combos: list[QtWidgets.QComboBox] = []
        self._mapped_source: str | None = None  # device id of the channels in the table
        self._discovered_choice: SourceChoice | None = None
        self._looking_at: str | None = None
        self._discovery_token = 0
        self._discovery_thread: threading.Thread | None = None
        self._discovery_cancel: threading.Event | None = None

        self.kind = _combo("source_kind", [k for k in registered() if k] or ["simulator"])
        self.kind.setCurrentText("simulator")
        self.forms = QtWidgets.QStackedWidget()
        self._pages: dict[str, QtWidgets.QWidget] = {}
        self._build_simulator()
        self._build_file()
        self._build_serial()
        self._build_brainflow()
        self._build_lsl()
        # empty until someone types a name: a prefilled word ended up as the athlete of every
        # unnamed recording (and of its report and progress)
        self.athlete = _named(QtWidgets.QLineEdit(), "athlete")
        self.athlete.setPlaceholderText("name (for calibration, progress)")
        self.athlete.setToolTip("athlete id: calibrations are stored and reused per athlete")
        self.connect_btn = _named(QtWidgets.QPushButton("Connect"), "connect")
        self.start_btn = _named(QtWidgets.QPushButton("Start"), "start")
        self.stop_btn = _named(QtWidgets.QPushButton("Stop"), "stop")
        self.state = _named(QtWidgets.QLabel("not connected"), "device_state")
        self.state.setWordWrap(True)
        top = QtWidgets.QFormLayout()
        top.addRow("source", self.kind)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.connect_btn, self.start_btn, self.stop_btn):
            buttons.addWidget(b)
        athlete = QtWidgets.QFormLayout()
        athlete.addRow("athlete", self.athlete)
        self.mapping = _named(QtWidgets.QTableWidget(0, 2), "mapping")
        self.mapping.setHorizontalHeaderLabels(["channel", "muscle"])
        columns, rows = self.mapping.horizontalHeader(), self.mapping.verticalHeader()
        assert columns is not None and rows is not None  # a QTableWidget always has both
        columns.setStretchLastSection(True)
        rows.setVisible(False)
        # rows as tall as their role combo: four channels fit without scrolling
        row_h = QtWidgets.QComboBox().sizeHint().height() + 2
        rows.setDefaultSectionSize(row_h)
        # room for four channels (the usual two glutes and two lumbar sides) at any height
        self.mapping.setMinimumHeight(columns.sizeHint().height() + 4 * row_h + 4)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.forms)
        layout.addLayout(athlete)
        layout.addLayout(buttons)
        layout.addWidget(self.state)
        layout.addWidget(QtWidgets.QLabel("channel → muscle"))
        layout.addWidget(self.mapping, 1)
        self.kind.currentTextChanged.connect(self._kind_changed)
        self._kind_changed(self.kind.currentText())
        self.connect_btn.clicked.connect(self._connect)
        self.start_btn.clicked.connect(self.start_requested)
        self.stop_btn.clicked.connect(self.stop_requested)
        self._discovery_done.connect(self._on_discovery_done)
        self._lsl_listed.connect(self._on_lsl_listed)

    # -- per-source forms ----------------------------------------------------------------
    def _page(self, kind: str) -> QtWidgets.QFormLayout:
        page = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        # every field as wide as the panel (the simulator's combos were narrow stubs beside
        # the file page's full-width path, and jumped in width as the source changed)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.forms.addWidget(page)
        self._pages[kind] = page
        return form

    def _build_simulator(self) -> None:
        form = self._page("simulator")
        self.fs = _combo("sim_fs", ["1000", "2000", "2048", "4096"], "2000")
        self.preset = _combo("sim_preset", ["clean", "hard"])
        self.channels = _named(QtWidgets.QSpinBox(), "sim_channels")
        self.channels.setRange(2, 16)
        self.channels.setValue(4)
        form.addRow("sampling rate (Hz)", self.fs)
        form.addRow("signal", self.preset)
        form.addRow("channels", self.channels)

    def _build_file(self) -> None:
        form = self._page("file")
        self.file_path = _named(QtWidgets.QLineEdit(), "file_path")
        browse = _named(QtWidgets.QPushButton("…"), "file_browse")
        browse.setMaximumWidth(32)
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.file_path)
        row.addWidget(browse)
        self.file_speed = _combo("file_speed", ["0.1", "0.25", "0.5", "1", "2", "4", "8"], "1")
        form.addRow("file", row)
        form.addRow("speed (×)", self.file_speed)
        self.file_speed.currentTextChanged.connect(self._file_speed)

    def _file_speed(self, text: str) -> None:
        try:
            speed = float(text)
        except ValueError:
            return  # (a box being filled)
        self.file_speed_changed.emit(speed)

    def show_speed(self, speed: float | None) -> None:
        """The replay bar's speed box was changed: this box says the same (one speed). "fast"
        (None) is no speed this box offers: it keeps its own."""
        if speed is None:
            return
        text = f"{speed:g}"
        if self.file_speed.findText(text) < 0:
            self.file_speed.addItem(text)
        self.file_speed.blockSignals(True)  # (no echo back to the bar)
        self.file_speed.setCurrentText(text)
        self.file_speed.blockSignals(False)

    def _build_serial(self) -> None:
        form = self._page("serial")
        # pyserial does not list ptys or /dev/serial/by-id links: the port is also typed in.
        self.serial_port = _combo("serial_port", self._serial_ports(), editable=True)
        self.serial_protocol = _combo("serial_protocol", ["text", "fob1"])
        self.serial_baud = _combo(
            "serial_baud",
            ["9600", "115200", "230400", "460800", "921600", "1000000", "2000000"],
            "115200",
            editable=True,
        )
        self.serial_fs = _named(QtWidgets.QDoubleSpinBox(), "serial_fs")
        self.serial_fs.setRange(FS_LIMIT.lo, 20000)  # (serial boards stay far below 100 kHz)
        self.serial_fs.setValue(1000)
        self.serial_seq = _named(
            QtWidgets.QCheckBox("first field is a sample counter"), "serial_seq"
        )
        form.addRow("port", self.serial_port)
        form.addRow("protocol", self.serial_protocol)
        form.addRow("baud", self.serial_baud)
        rate = QtWidgets.QLabel("rate (Hz)")  # (short: the label column sets the width)
        rate.setToolTip("sampling rate the board sends at, in Hz")
        form.addRow(rate, self.serial_fs)
        form.addRow(self.serial_seq)  # spanning: the label column stays narrow
        self._build_scale(form)

    def _build_scale(self, form: QtWidgets.QFormLayout) -> None:
        """ADC bits, reference and front-end gain: what turns counts into microvolts. Their
        ranges are the scale's own (Scale.ADC_LIMITS), as the CLI's options are."""
        from devices.drivers.serial_protocol import Scale

        limits = Scale.ADC_LIMITS
        self.scale_preset = _combo("serial_scale_preset", list(SCALE_PRESETS), NO_SCALE)
        self.scale_preset.setToolTip("how the board's numbers become microvolts")
        # the long preset names show in the popup; closed, the box elides rather than set the
        # panel's (and so the window's) minimum width
        self.scale_preset.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.scale_preset.setMinimumContentsLength(10)
        self.adc_bits = _named(QtWidgets.QSpinBox(), "serial_adc_bits")
        self.adc_bits.setRange(int(limits["adc_bits"].lo), int(limits["adc_bits"].hi))
        self.adc_bits.setValue(10)
        self.adc_bits.setSuffix(" bits")
        self.vref = _named(QtWidgets.QDoubleSpinBox(), "serial_vref")
        self.vref.setRange(0.1, limits["vref"].hi)  # (a lower reference: no sEMG ADC)
        self.vref.setDecimals(3)
        self.vref.setSingleStep(0.1)
        self.vref.setValue(5.0)
        self.vref.setSuffix(" V")
        self.amp_gain = _named(QtWidgets.QDoubleSpinBox(), "serial_amp_gain")
        self.amp_gain.setRange(0.01, limits["amp_gain"].hi)
        self.amp_gain.setDecimals(2)
        self.amp_gain.setValue(1.0)
        self.amp_gain.setSuffix(" ×")
        self.amp_gain.setToolTip("gain of the analogue front end between electrodes and ADC")
        self.scale_text = _named(QtWidgets.QLabel(""), "serial_scale_text")
        self.adc_bits.setToolTip("ADC resolution")
        self.vref.setToolTip("ADC reference voltage (full scale)")
        adc = QtWidgets.QHBoxLayout()  # one row: the panel must fit a 768-pixel screen
        adc.addWidget(self.adc_bits)
        adc.addWidget(self.vref)
        form.addRow("scale", self.scale_preset)
        form.addRow("ADC", adc)
        form.addRow("front-end gain", self.amp_gain)
        form.addRow(self.scale_text)
        self.scale_preset.currentTextChanged.connect(self._preset_picked)
        for box in (self.adc_bits, self.vref, self.amp_gain):
            box.valueChanged.connect(self._scale_edited)
        self._preset_picked(self.scale_preset.currentText())

    def _preset_picked(self, name: str) -> None:
        values = SCALE_PRESETS.get(name)
        if values is not None:
            bits, vref, gain = values
            for box in (self.adc_bits, self.vref, self.amp_gain):
                box.blockSignals(True)
            self.adc_bits.setValue(bits)
            self.vref.setValue(vref)
            self.amp_gain.setValue(gain)
            for box in (self.adc_bits, self.vref, self.amp_gain):
                box.blockSignals(False)
        for box in (self.adc_bits, self.vref, self.amp_gain):
            box.setEnabled(name != NO_SCALE)
        self._show_scale()

    def _scale_edited(self) -> None:
        """A field edited by hand: the preset it matches, else custom."""
        values = (self.adc_bits.value(), self.vref.value(), self.amp_gain.value())
        match = next((n for n, v in SCALE_PRESETS.items() if v == values), CUSTOM_SCALE)
        self.scale_preset.blockSignals(True)
        self.scale_preset.setCurrentText(match)
        self.scale_preset.blockSignals(False)
        self._show_scale()

    def serial_scale(self) -> Scale | None:
        """The scale the driver gets: the same ``Scale.from_adc`` the CLI's ``--adc-bits
        --vref --amp-gain`` builds; None when the board sends microvolts."""
        from devices.drivers.serial_protocol import Scale

        if self.scale_preset.currentText() == NO_SCALE:
            return None
        return Scale.from_adc(
            bits=self.adc_bits.value(), vref=self.vref.value(), amp_gain=self.amp_gain.value()
        )

    def _show_scale(self) -> None:
        scale = self.serial_scale()
        if scale is None:
            self.scale_text.setText("values are taken as µV")
            return
        assert isinstance(scale.gain, float) and isinstance(scale.offset, float)
        # (short: one line of the narrow source panel)
        self.scale_text.setText(f"{scale.gain:.4g} µV/count, 0 V at count {scale.offset:g}")
        self.scale_text.setToolTip(
            f"one ADC count is {scale.gain:.4g} µV at the electrodes; "
            f"count {scale.offset:g} (mid-scale) is 0 V"
        )

    def _build_brainflow(self) -> None:
        form = self._page("brainflow")
        # Listed when the page is first shown: asking BrainFlow about every board is slow.
        self.bf_board = _combo("bf_board", ["SYNTHETIC_BOARD"], "SYNTHETIC_BOARD", editable=True)
        self._boards_listed = False
        self.bf_serial = _named(QtWidgets.QLineEdit(), "bf_serial_port")
        self.bf_mac = _named(QtWidgets.QLineEdit(), "bf_mac")
        self.bf_ip = _named(QtWidgets.QLineEdit(), "bf_ip")
        self.bf_file = _named(QtWidgets.QLineEdit(), "bf_file")
        self.bf_master = _named(QtWidgets.QLineEdit(), "bf_master_board")
        form.addRow("board", self.bf_board)
        form.addRow("serial port", self.bf_serial)
        form.addRow("MAC address", self.bf_mac)
        form.addRow("IP address", self.bf_ip)
        form.addRow("playback file", self.bf_file)
        form.addRow("master board", self.bf_master)

    def _build_lsl(self) -> None:
        """Lab Streaming Layer: the streams are resolved only when this page is opened or
        Refresh is clicked (a resolve sends LSL queries to the network), on a worker thread."""
        form = self._page("lsl")
        self.lsl_stream = _named(QtWidgets.QComboBox(), "lsl_stream")
        self.lsl_stream.setToolTip("EMG streams LSL found: name — type, channels, rate, host")
        self.lsl_stream.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.lsl_stream.setMinimumContentsLength(12)
        self.lsl_refresh = _named(QtWidgets.QPushButton("Refresh"), "lsl_refresh")
        self.lsl_refresh.setToolTip("look for LSL streams again (about a second)")
        self.lsl_text = _named(QtWidgets.QLabel("not looked for yet"), "lsl_text")
        self.lsl_text.setWordWrap(True)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.lsl_stream, 1)
        row.addWidget(self.lsl_refresh)
        form.addRow("stream", row)
        form.addRow(self.lsl_text)
        self._lsl_token = 0
        self._lsl_thread: threading.Thread | None = None
        self._lsl_listed_once = False
        self.lsl_refresh.clicked.connect(self.refresh_lsl)
        self.lsl_stream.currentIndexChanged.connect(self._lsl_picked)

    @property
    def lsl_listing(self) -> bool:
        return self._lsl_thread is not None

    def refresh_lsl(self) -> None:
        """Resolve LSL streams on a worker thread (bounded: LSL_LIST_WAIT_S plus a second
        per stream's description at most); the combo lists the EMG candidates."""
        from devices.drivers.discovery import list_lsl_streams

        self._lsl_listed_once = True
        self._lsl_token += 1
        token = self._lsl_token
        self.lsl_refresh.setEnabled(False)
        self.lsl_text.setText("looking for LSL streams …")

        def work() -> None:
            try:
                result: object = list_lsl_streams(LSL_LIST_WAIT_S)
            except Exception as exc:  # pylsl missing, liblsl failing: a line in the page
                result = str(exc) or type(exc).__name__
            with contextlib.suppress(RuntimeError):  # the panel was deleted meanwhile
                self._lsl_listed.emit(token, result)

        self._lsl_thread = threading.Thread(target=work, name="lsl-list", daemon=True)
        self._lsl_thread.start()

    def _on_lsl_listed(self, token: int, result: object) -> None:
        if token != self._lsl_token:
            return
        self._lsl_thread = None
        self.lsl_refresh.setEnabled(True)
        if isinstance(result, str):
            self.lsl_text.setText(result)
            return
        assert isinstance(result, list)
        usable = [s for s in result if s.usable]
        other = len(result) - len(usable)
        picked = self.lsl_stream.currentData()
        self.lsl_stream.blockSignals(True)
        self.lsl_stream.clear()
        names = [st.name for st in usable]
        for stream in usable:
            text = _lsl_item(stream)
            if names.count(stream.name) > 1:  # two amplifiers of one name: say which is which
                text += f", source_id {stream.source_id or '(none)'}"
            self.lsl_stream.addItem(text, stream)
        keep = next(
            (
                i
                for i, st in enumerate(usable)
                if picked is not None
                and (st.name, st.source_id) == (picked.name, picked.source_id)
            ),
            0,
        )
        self.lsl_stream.setCurrentIndex(keep if usable else -1)
        self.lsl_stream.blockSignals(False)
        n = len(usable)
        text = f"{n} EMG stream{'s' if n != 1 else ''}" if n else "no EMG stream answered"
        if other:
            text += f" ({other} marker or irregular stream{'s' if other != 1 else ''} not listed)"
        self.lsl_text.setText(text)
        if usable:
            self._lsl_picked(keep)

    def _lsl_picked(self, index: int) -> None:
        """A stream picked: the table lists its labels with the suggested mapping."""
        stream = self.lsl_stream.itemData(index) if index >= 0 else None
        if stream is None:
            return
        from devices.drivers.discovery import lsl_discovery

        found = lsl_discovery(stream)
        self.show_discovery(found, _lsl_choice(stream))
        self.lsl_text.setText(
            f"{stream.describe()} on {stream.host}; source_id {stream.source_id or '—'}"
        )

    @staticmethod
    def _serial_ports() -> list[str]:
        try:
            from devices.drivers.serial_board import list_serial_ports

            return [str(p["device"]) for p in list_serial_ports()]
        except Exception as exc:  # discovery is a convenience: never block the panel
            log.info("serial discovery unavailable: %s", exc)
            return []

    @staticmethod
    def _boards() -> list[str]:
        try:
            from devices.drivers.brainflow_board import list_boards

            return [str(b["name"]) for b in list_boards()]
        except Exception as exc:
            log.info("BrainFlow discovery unavailable: %s", exc)
            return ["SYNTHETIC_BOARD"]

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self,
            "Open a recording",
            "recordings",
            RECORDING_FILTER,
        )
        if path:
            self.file_path.setText(path)

    def _kind_changed(self, kind: str) -> None:
        page = self._pages.get(kind)
        if page is not None:
            # the stack takes the height of the page shown, not of the tallest (the serial
            # page with its scale fields): otherwise a short page leaves an empty band that
            # pushes the channel → muscle table below the fold at 768 px
            ignored, preferred = (
                QtWidgets.QSizePolicy.Policy.Ignored,
                QtWidgets.QSizePolicy.Policy.Preferred,
            )
            for other in self._pages.values():
                other.setSizePolicy(
                    preferred if other is page else ignored, preferred if other is page else ignored
                )
            self.forms.setCurrentWidget(page)
            self.forms.adjustSize()
        if kind == "brainflow" and not self._boards_listed:
            self._boards_listed = True
            current = self.bf_board.currentText()
            self.bf_board.clear()
            self.bf_board.addItems(self._boards())
            self.bf_board.setCurrentText(current)
        if kind == "lsl" and not self._lsl_listed_once:  # LSL stays off until asked for
            self.refresh_lsl()

    # -- the choice --------------------------------------------------------------------------
    def choice(self, mapped: bool = True) -> SourceChoice:
        """What the form describes. For a serial or BrainFlow board whose channels the table
        shows (``mapped``), ``roles`` carries the table's mapping (role -> channel name)."""
        kind = self.kind.currentText()
        if kind == "file":
            speed = float(self.file_speed.currentText())
            return SourceChoice("file", {"path": self.file_path.text().strip(), "speed": speed})
        if kind == "serial":
            baud = self.serial_baud.currentText().strip()
            return self._mapped(
                SourceChoice(
                    "serial",
                    {
                        "port": self.serial_port.currentText().strip(),
                        "protocol": self.serial_protocol.currentText(),
                        "baud": int(baud) if baud.isdigit() else 115200,
                        "fs": float(self.serial_fs.value()),
                        "seq": self.serial_seq.isChecked(),
                        "scale": self.serial_scale(),
                    },
                ),
                mapped,
            )
        if kind == "brainflow":
            opts: dict[str, object] = {"board": self.bf_board.currentText().strip()}
            for key, edit in (
                ("serial_port", self.bf_serial),
                ("mac_address", self.bf_mac),
                ("ip_address", self.bf_ip),
                ("file", self.bf_file),
                ("master_board", self.bf_master),
            ):
                if edit.text().strip():
                    opts[key] = edit.text().strip()
            return self._mapped(SourceChoice("brainflow", opts), mapped)
        if kind == "lsl":
            stream = self.lsl_stream.currentData()
            if stream is None:
                return self._mapped(SourceChoice("lsl", {"stream": ""}), mapped)
            return self._mapped(_lsl_choice(stream), mapped)
        n = self.channels.value()
        roles = ["glute_l", "glute_r", "lumbar_l", "lumbar_r"]
        names = roles[:n] + [f"extra{i + 1}" for i in range(max(0, n - 4))]
        return SourceChoice(
            kind,
            {
                "fs": float(self.fs.currentText()),
                "preset": self.preset.currentText(),
                "channels": ",".join(names),
            },
        )

    def _mapped(self, choice: SourceChoice, mapped: bool) -> SourceChoice:
        if not mapped or self._mapped_source != choice.device_id or self.discovering:
            return choice
        return SourceChoice(choice.kind, {**choice.options, "roles": self._table_roles()})

    def _table_roles(self) -> dict[str, str]:
        names = self.channel_names()
        return {r.value: names[i] for r, i in self.current_mapping().items()}

    def mapped_choice(self) -> SourceChoice | None:
        """The board last discovered, with the table's roles (what Start opens)."""
        found = self._discovered_choice
        if found is None or self._mapped_source != found.device_id:
            return None
        return SourceChoice(found.kind, {**found.options, "roles": self._table_roles()})

    def _connect(self) -> None:
        # Connect always looks again at a board (it may have been re-plugged or re-flashed);
        # an LSL stream was just listed with its labels: it opens with the table's mapping
        lsl = self.kind.currentText() == "lsl"
        self.connect_requested.emit(self.choice(mapped=lsl))

    def set_state(self, text: str) -> None:
        self.state.setText(text)

    def channel_names(self) -> list[str]:
        names = []
        for c in range(self.mapping.rowCount()):
            item = self.mapping.item(c, 0)
            names.append(item.text() if item is not None else "")
        return names

    def show_mapping(self, info: StreamInfo, device_id: str | None = None) -> None:
        """One row per channel with a role combo; a role can be taken by one channel only."""
        self._fill_mapping(info.channel_names, dict(info.roles))
        self._mapped_source = device_id

    def _fill_mapping(self, names: tuple[str, ...] | list[str], roles: Mapping[Role, int]) -> None:
        self.mapping.clearContents()
        self.mapping.setRowCount(len(names))
        self._combos = []
        role_of = {i: r for r, i in roles.items()}
        for c, name in enumerate(names):
            item = QtWidgets.QTableWidgetItem(name)
            item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
            self.mapping.setItem(c, 0, item)
            role = role_of.get(c)
            combo = _combo(
                f"role_{c}", [NO_ROLE] + [r.value for r in Role], role.value if role else NO_ROLE
            )
            combo.currentTextChanged.connect(lambda _t, c=c: self._role_picked(c))
            self.mapping.setCellWidget(c, 1, combo)
            self._combos.append(combo)

    # -- discovery (serial and BrainFlow boards) -------------------------------------------
    @property
    def discovering(self) -> bool:
        return self._discovery_thread is not None

    @property
    def looking_at(self) -> str | None:
        """The kind of source being looked at, or None."""
        return self._looking_at if self.discovering else None

    def discover(self, choice: SourceChoice, stored: Mapping[str, str] | None = None) -> None:
        """Ask the board what it sends, on a worker thread (a serial look takes about a
        second); the table then lists exactly its channels with a suggested mapping."""
        from devices.drivers.discovery import discover

        self.cancel_discovery()
        self._looking_at = choice.kind
        self._fill_mapping([], {})  # nothing of the previous source stays mappable
        self._mapped_source = None
        self._discovery_token += 1
        token, cancel = self._discovery_token, threading.Event()
        where = choice.options.get("port") or choice.options.get("board") or choice.kind
        self.set_state(f"looking at {where} …")
        self._set_busy(True)

        def work() -> None:
            try:
                result: object = discover(choice.kind, choice.options, cancel=cancel)
            except Exception as exc:  # every failure is a message in the panel, not a crash
                from devices.drivers.base import DeviceError

                if not isinstance(exc, DeviceError):
                    log.warning("discovery of %s failed", where, exc_info=exc)
                result = str(exc) or type(exc).__name__
            # (RuntimeError: the panel was deleted meanwhile, nobody to tell)
            with contextlib.suppress(RuntimeError):
                self._discovery_done.emit(token, choice, dict(stored or {}), result)

        self._discovery_cancel = cancel
        self._discovery_thread = threading.Thread(target=work, name="discovery", daemon=True)
        self._discovery_thread.start()

    def cancel_discovery(self) -> None:
        """Stop looking (another source was opened, the window closes); its result, even
        if already on its way, is dropped."""
        self._discovery_token += 1
        thread, self._discovery_thread = self._discovery_thread, None
        if self._discovery_cancel is not None:
            self._discovery_cancel.set()
        if thread is not None:
            thread.join(timeout=2.0)
        self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.connect_btn.setEnabled(not busy)
        self.start_btn.setEnabled(not busy)

    def _on_discovery_done(
        self, token: int, choice: SourceChoice, stored: dict[str, str], result: object
    ) -> None:
        if token != self._discovery_token:
            return  # an older look, cancelled or superseded
        self._discovery_thread = None
        self._set_busy(False)
        if isinstance(result, str):
            self.set_state(result)
            self.discovery_failed.emit(result)
            return
        from devices.drivers.discovery import Discovery

        assert isinstance(result, Discovery)
        self.show_discovery(result, choice, stored)
        self.discovered.emit(result)

    def show_discovery(
        self, found: Discovery, choice: SourceChoice, stored: Mapping[str, str] | None = None
    ) -> None:
        """The discovered channels in the table, with the suggested (or stored) roles."""
        names = found.channel_names
        roles = found.suggested_roles(stored)
        self._fill_mapping(names, {Role(r): names.index(n) for r, n in roles.items()})
        text = found.describe()
        if choice.kind == "serial" and found.protocol != choice.options.get("protocol"):
            self.serial_protocol.setCurrentText(found.protocol)  # what the board speaks
            choice = SourceChoice(choice.kind, {**choice.options, "protocol": found.protocol})
            text += f" — protocol set to {found.protocol}"
        self._mapped_source = choice.device_id
        self._discovered_choice = choice
        fs = choice.options.get("fs")
        rate = found.nominal_hz
        if choice.kind == "serial" and rate and isinstance(fs, float) and abs(rate - fs) > 0.1 * fs:
            text += f" — but the sampling rate is set to {fs:g} Hz"
        self.set_state(f"{text}; map the muscles, then Start")

    def mapping_problem(self) -> str | None:
        """Why Start cannot run on the table's mapping, or None."""
        roles = self.current_mapping()
        if any(r.is_glute for r in roles) and any(r.is_lumbar for r in roles):
            return None
        have = ", ".join(r.value for r in roles) or "none"
        return (
            "Start needs a glute and a lumbar channel: pick their muscles in the "
            f"channel → muscle table (mapped: {have})"
        )

    def _role_picked(self, channel: int) -> None:
        picked = self._combos[channel].currentText()
        if picked != NO_ROLE:
            for c, combo in enumerate(self._combos):
                if c != channel and combo.currentText() == picked:
                    combo.blockSignals(True)
                    combo.setCurrentText(NO_ROLE)
                    combo.blockSignals(False)
        self.mapping_changed.emit(self.current_mapping())

    def current_mapping(self) -> dict[Role, int]:
        return {
            Role(c.currentText()): i
            for i, c in enumerate(self._combos)
            if c.currentText() != NO_ROLE
        }
