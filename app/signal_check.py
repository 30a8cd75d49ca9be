"""Signal check: per-channel traffic lights from the quality monitor, with plain-language fixes.

The figures come from :meth:`dsp.quality.QualityMonitor.recent`: noise floor and hum over the
last seconds of rest, issues held with hysteresis, so a steady signal shows a steady row.
"""

from __future__ import annotations

import math

from PyQt6 import QtCore, QtGui, QtWidgets

from dsp.contract import StreamInfo
from dsp.quality import HUM_FLOOR_DB, ISSUE_LABELS, ChannelQuality, QualitySettings

LIGHT = {"ok": "#1b9e4b", "warn": "#e0a000", "bad": "#d7263d"}
STATUS_TEXT = {"ok": "good", "warn": "check", "bad": "fix"}
_LIMITS = QualitySettings()
STALE_TEXT = "last run, not live"
STALE_GREY = "#8a8a8a"
COLUMNS = ["", "channel", "status", "noise µV RMS", "hum", "clipped / flat", "advice"]


def _num(value: float, fmt: str) -> str:
    return format(value, fmt).replace("-", "−") if math.isfinite(value) else "—"


def _hum_text(q: ChannelQuality) -> str:
    if not math.isfinite(q.hum_db):
        return "—"
    if q.hum_db <= HUM_FLOOR_DB:
        return f"< {_num(HUM_FLOOR_DB, '.0f')} dB"
    return f"{_num(q.hum_db, '+.0f')} dB ({_num(q.hum_rms_uv, '.1f')} µV)"


class SignalCheckPanel(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("signal_check_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        rows, columns = self.table.verticalHeader(), self.table.horizontalHeader()
        assert rows is not None and columns is not None  # a QTableWidget always has both
        rows.setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        columns.setStretchLastSection(True)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(True)
        for col, tip in (
            (
                3,
                f"rest noise floor, 20-450 Hz; good skin preparation: under "
                f"{_LIMITS.noise_warn_uv:g} µV, poor above {_LIMITS.noise_bad_uv:g} µV",
            ),
            (
                4,
                "mains hum (all harmonics) over the rest noise floor, and its RMS; an issue "
                f"from {_LIMITS.hum_warn_db:+g} dB when above {_LIMITS.hum_min_uv:g} µV",
            ),
        ):
            header = self.table.horizontalHeaderItem(col)
            if header is not None:
                header.setToolTip(tip)
        self.stale_label = QtWidgets.QLabel(STALE_TEXT)
        self.stale_label.setObjectName("signal_check_stale")
        self.stale_label.setStyleSheet(f"color: {STALE_GREY}; font-weight: bold;")
        self.stale_label.setVisible(False)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.stale_label)
        layout.addWidget(self.table)
        self.statuses: list[str] = []
        self.stale = False  # the rows are a stopped stream's last figures

    def clear(self) -> None:
        """No rows: the electrodes listed belonged to a source no longer chosen."""
        self.table.setRowCount(0)
        self.statuses = []
        self.stale = False
        self.stale_label.setVisible(False)

    def mark_stale(self) -> None:
        """The stream stopped: the rows stay (the last run's noise is worth seeing) but
        greyed under "last run, not live", so no "good" reads as the electrodes' state now
        (a newcomer saw a stopped run's green rows after Connect)."""
        t = self.table
        if self.stale or t.rowCount() == 0:
            return
        self.stale = True
        grey = QtGui.QBrush(QtGui.QColor(STALE_GREY))
        for row in range(t.rowCount()):
            for col in range(t.columnCount()):
                item = t.item(row, col)
                if item is not None:
                    item.setForeground(grey)
                    item.setToolTip(f"{STALE_TEXT}: {item.toolTip() or item.text()}")
        self.stale_label.setVisible(True)

    def update_quality(self, info: StreamInfo, report: list[ChannelQuality]) -> None:
        t = self.table
        self.stale = False
        self.stale_label.setVisible(False)
        t.setRowCount(len(report))
        self.statuses = [str(q.status) for q in report]
        for row, q in enumerate(report):
            role = info.role_of(row)
            name = info.channel_names[row] + (f" ({role.label})" if role else "")
            color = QtGui.QColor(LIGHT.get(q.status, "#7f8c8d"))
            light = QtWidgets.QTableWidgetItem("●")
            light.setForeground(QtGui.QBrush(color))
            light.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            light.setToolTip(str(q.status))
            reasons = ", ".join(ISSUE_LABELS.get(code, code) for code in q.issues)
            status = QtWidgets.QTableWidgetItem(
                STATUS_TEXT.get(q.status, str(q.status)) + (f": {reasons}" if reasons else "")
            )
            status.setForeground(QtGui.QBrush(color))
            # the channel is named in its own column: the advice says only what to do
            advice = "; ".join(q.advice) or "good"
            advice_item = QtWidgets.QTableWidgetItem(advice)
            advice_item.setToolTip(advice)  # the full sentence, however narrow the dock
            cells = [
                light,
                QtWidgets.QTableWidgetItem(name),
                status,
                QtWidgets.QTableWidgetItem(_num(q.noise_rms_uv, ".1f")),
                QtWidgets.QTableWidgetItem(_hum_text(q)),
                QtWidgets.QTableWidgetItem(
                    f"{_num(100 * q.saturation_fraction, '.1f')} % / "
                    f"{_num(100 * q.flat_fraction, '.0f')} %"
                ),
                advice_item,
            ]
            for col, item in enumerate(cells):
                t.setItem(row, col, item)
        # the advice column takes the rest of the width and wraps: the whole fix stays readable
        for col in range(len(COLUMNS) - 1):
            t.resizeColumnToContents(col)
        t.resizeRowsToContents()
