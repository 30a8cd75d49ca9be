"""Signal check: per-channel traffic lights from the quality monitor, with plain-language fixes."""

from __future__ import annotations

from PyQt6 import QtCore, QtGui, QtWidgets

from dsp.contract import StreamInfo
from dsp.quality import ChannelQuality

LIGHT = {"ok": "#1b9e4b", "warn": "#e0a000", "bad": "#d7263d"}


class SignalCheckPanel(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(
            ["", "channel", "hum dB", "noise µV", "clipped / flat", "advice"]
        )
        rows, columns = self.table.verticalHeader(), self.table.horizontalHeader()
        assert rows is not None and columns is not None  # a QTableWidget always has both
        rows.setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        columns.setStretchLastSection(True)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table)
        self.statuses: list[str] = []

    def update_quality(self, info: StreamInfo, report: list[ChannelQuality]) -> None:
        t = self.table
        t.setRowCount(len(report))
        self.statuses = [q.status for q in report]
        for row, q in enumerate(report):
            role = info.role_of(row)
            name = info.channel_names[row] + (f" ({role.label})" if role else "")
            light = QtWidgets.QTableWidgetItem("●")
            light.setForeground(QtGui.QBrush(QtGui.QColor(LIGHT.get(q.status, "#7f8c8d"))))
            light.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            light.setToolTip(q.status)
            advice = "; ".join(_personal(a, name) for a in q.advice) or "good"
            cells = [
                light,
                QtWidgets.QTableWidgetItem(name),
                QtWidgets.QTableWidgetItem(f"{q.hum_db:.0f}"),
                QtWidgets.QTableWidgetItem(f"{q.noise_rms_uv:.1f}"),
                QtWidgets.QTableWidgetItem(
                    f"{100 * q.saturation_fraction:.1f}% / {100 * q.flat_fraction:.0f}%"
                ),
                QtWidgets.QTableWidgetItem(advice),
            ]
            for col, item in enumerate(cells):
                t.setItem(row, col, item)
        t.resizeColumnsToContents()


def _personal(advice: str, name: str) -> str:
    """Name the electrode in the advice ("re-seat the electrode" -> "... on left lumbar ES")."""
    return f"{name}: {advice}"
