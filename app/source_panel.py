"""Source panel: pick a source and its settings, connect/start/stop, map channels to muscles."""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6 import QtCore, QtWidgets

from dsp.contract import Role, StreamInfo

NO_ROLE = "—"


@dataclass(frozen=True)
class SourceChoice:
    kind: str
    options: dict[str, object]

    @property
    def device_id(self) -> str:
        return self.kind


class SourcePanel(QtWidgets.QWidget):
    connect_requested = QtCore.pyqtSignal(object)  # SourceChoice
    start_requested = QtCore.pyqtSignal()
    stop_requested = QtCore.pyqtSignal()
    mapping_changed = QtCore.pyqtSignal(dict)  # {Role: channel index}

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = QtWidgets.QComboBox(objectName="source_kind")
        from devices.base import registered

        self.kind.addItems(registered() or ["simulator"])
        self.fs = QtWidgets.QComboBox(objectName="sim_fs")
        self.fs.addItems(["1000", "2000", "2048", "4096"])
        self.fs.setCurrentText("2000")
        self.preset = QtWidgets.QComboBox(objectName="sim_preset")
        self.preset.addItems(["clean", "hard"])
        self.channels = QtWidgets.QSpinBox(objectName="sim_channels")
        self.channels.setRange(2, 16)
        self.channels.setValue(4)
        self.athlete = QtWidgets.QLineEdit("athlete", objectName="athlete")
        self.athlete.setToolTip("athlete id: calibrations are stored and reused per athlete")
        self.connect_btn = QtWidgets.QPushButton("Connect", objectName="connect")
        self.start_btn = QtWidgets.QPushButton("Start", objectName="start")
        self.stop_btn = QtWidgets.QPushButton("Stop", objectName="stop")
        self.state = QtWidgets.QLabel("not connected", objectName="device_state")
        form = QtWidgets.QFormLayout()
        form.addRow("source", self.kind)
        form.addRow("sampling rate (Hz)", self.fs)
        form.addRow("signal", self.preset)
        form.addRow("channels", self.channels)
        form.addRow("athlete", self.athlete)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.connect_btn, self.start_btn, self.stop_btn):
            buttons.addWidget(b)
        self.mapping = QtWidgets.QTableWidget(0, 2, objectName="mapping")
        self.mapping.setHorizontalHeaderLabels(["channel", "muscle"])
        self.mapping.horizontalHeader().setStretchLastSection(True)
        self.mapping.verticalHeader().setVisible(False)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.state)
        layout.addWidget(QtWidgets.QLabel("channel → muscle"))
        layout.addWidget(self.mapping, 1)
        self.connect_btn.clicked.connect(self._connect)
        self.start_btn.clicked.connect(self.start_requested)
        self.stop_btn.clicked.connect(self.stop_requested)
        self._combos: list[QtWidgets.QComboBox] = []

    def choice(self) -> SourceChoice:
        n = self.channels.value()
        roles = ["glute_l", "glute_r", "lumbar_l", "lumbar_r"]
        names = roles[:n] + [f"extra{i + 1}" for i in range(max(0, n - 4))]
        return SourceChoice(
            self.kind.currentText(),
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
            combo = QtWidgets.QComboBox()
            combo.addItems([NO_ROLE] + [r.value for r in Role])
            role = info.role_of(c)
            combo.setCurrentText(role.value if role else NO_ROLE)
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
