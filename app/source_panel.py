"""Source panel: pick a source and its settings, connect/start/stop, map channels to muscles."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from PyQt6 import QtCore, QtWidgets

from dsp.contract import Role, StreamInfo

log = logging.getLogger(__name__)
NO_ROLE = "—"

_W = TypeVar("_W", bound=QtWidgets.QWidget)


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
        for key in ("port", "board", "path"):
            if self.options.get(key):
                return f"{self.kind}:{self.options[key]}"
        return self.kind


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

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        from devices.drivers.base import registered

        self.kind = _combo("source_kind", [k for k in registered() if k] or ["simulator"])
        self.kind.setCurrentText("simulator")
        self.forms = QtWidgets.QStackedWidget()
        self._pages: dict[str, QtWidgets.QWidget] = {}
        self._build_simulator()
        self._build_file()
        self._build_serial()
        self._build_brainflow()
        self.athlete = _named(QtWidgets.QLineEdit("athlete"), "athlete")
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
        self._combos: list[QtWidgets.QComboBox] = []

    # -- per-source forms ----------------------------------------------------------------
    def _page(self, kind: str) -> QtWidgets.QFormLayout:
        page = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
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
        self.file_speed = _combo("file_speed", ["0.25", "0.5", "1", "2", "4", "8"], "1")
        form.addRow("file", row)
        form.addRow("speed (×)", self.file_speed)

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
        self.serial_fs.setRange(100, 20000)
        self.serial_fs.setValue(1000)
        self.serial_seq = _named(
            QtWidgets.QCheckBox("first field is a sample counter"), "serial_seq"
        )
        form.addRow("port", self.serial_port)
        form.addRow("protocol", self.serial_protocol)
        form.addRow("baud", self.serial_baud)
        form.addRow("sampling rate (Hz)", self.serial_fs)
        form.addRow("", self.serial_seq)

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
            "Recordings (*.bdf *.edf *.csv *.tsv *.txt);;All files (*)",
        )
        if path:
            self.file_path.setText(path)

    def _kind_changed(self, kind: str) -> None:
        page = self._pages.get(kind)
        if page is not None:
            self.forms.setCurrentWidget(page)
        if kind == "brainflow" and not self._boards_listed:
            self._boards_listed = True
            current = self.bf_board.currentText()
            self.bf_board.clear()
            self.bf_board.addItems(self._boards())
            self.bf_board.setCurrentText(current)

    # -- the choice --------------------------------------------------------------------------
    def choice(self) -> SourceChoice:
        kind = self.kind.currentText()
        if kind == "file":
            speed = float(self.file_speed.currentText())
            return SourceChoice("file", {"path": self.file_path.text().strip(), "speed": speed})
        if kind == "serial":
            return SourceChoice(
                "serial",
                {
                    "port": self.serial_port.currentText().strip(),
                    "protocol": self.serial_protocol.currentText(),
                    "baud": int(self.serial_baud.currentText() or 115200),
                    "fs": float(self.serial_fs.value()),
                    "seq": self.serial_seq.isChecked(),
                },
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
            return SourceChoice("brainflow", opts)
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

    def _connect(self) -> None:
        self.connect_requested.emit(self.choice())

    def set_state(self, text: str) -> None:
        self.state.setText(text)

    def show_mapping(self, info: StreamInfo) -> None:
        """One row per channel with a role combo; a role can be taken by one channel only."""
        self.mapping.setRowCount(info.n_channels)
        self._combos = []
        for c, name in enumerate(info.channel_names):
            self.mapping.setItem(c, 0, QtWidgets.QTableWidgetItem(name))
            role = info.role_of(c)
            combo = _combo(
                f"role_{c}", [NO_ROLE] + [r.value for r in Role], role.value if role else NO_ROLE
            )
            combo.currentTextChanged.connect(lambda _t, c=c: self._role_picked(c))
            self.mapping.setCellWidget(c, 1, combo)
            self._combos.append(combo)

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
