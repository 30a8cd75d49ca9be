"""The calibration badge of the state strip: which calibration the detector uses, always visible.

A wrong calibration gives wrong feedback without any other sign, so the window never applies
or keeps one silently: the badge names the athlete and the time it was made, or says that the
adaptive baseline is in use, and its Clear takes the calibration off the running session.
"""

from __future__ import annotations

from typing import Any

from PyQt6 import QtCore, QtGui, QtWidgets

from devices.session.calibration import created_at

NO_CALIBRATION = "no calibration"  # (the tooltip: an adaptive baseline is in use)
#: the calibration in use was voided by a settings change (its units are gone)
VOID_CALIBRATION = "calibration void: recalibrate (Ctrl+K)"  # (the tooltip says why)


def describe(cal: dict[str, Any]) -> str:
    """``"calibrated: anna, 01 Dec 14:05"`` (local time) for a stored calibration."""
    when = created_at(cal)
    stamp = when.astimezone().strftime("%d %b %H:%M") if when is not None else "date unknown"
    return f"calibrated: {cal.get('athlete') or '?'}, {stamp}"


class _ElidingLabel(QtWidgets.QLabel):
    """A label that may be narrower than its text (then drawn elided at the end, the whole
    text in :meth:`text` and the badge's tooltip): the badge shares the state strip at
    1366 px with LIVE/REPLAY, PAUSED, RAW and REC and must not set the window's width."""

    MIN_PX = 90

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        hint = super().minimumSizeHint()
        hint.setWidth(min(hint.width(), self.MIN_PX))
        return hint

    def shown_text(self) -> str:
        return self.fontMetrics().elidedText(
            self.text(), QtCore.Qt.TextElideMode.ElideRight, max(0, self.width())
        )

    def paintEvent(self, event: QtGui.QPaintEvent | None) -> None:  # noqa: N802 (Qt API)
        shown = self.shown_text()
        if shown == self.text():
            super().paintEvent(event)
            return
        painter = QtGui.QPainter(self)
        painter.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
        painter.drawText(self.rect(), int(self.alignment()), shown)
        painter.end()


class CalibrationBadge(QtWidgets.QFrame):
    """Shows the calibration in use; :attr:`clear_requested` when its Clear is pressed."""

    clear_requested = QtCore.pyqtSignal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("calibration_badge")
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.label = _ElidingLabel(NO_CALIBRATION)
        self.label.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Preferred
        )
        self.label.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter
        )
        self.label.setObjectName("calibration_badge_text")
        self.clear_button = QtWidgets.QToolButton()
        self.clear_button.setObjectName("calibration_clear")
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Stop using this calibration in the running session")
        self.clear_button.clicked.connect(lambda _checked=False: self.clear_requested.emit())
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 2, 0)
        layout.setSpacing(4)
        layout.addWidget(self.label)
        layout.addWidget(self.clear_button)
        self.calibration: dict[str, Any] | None = None
        self.set_calibration(None)

    def set_calibration(self, cal: dict[str, Any] | None, note: str = "") -> None:
        """Show ``cal`` as the one in use (None: the adaptive baseline); ``note`` says why
        a stored one is not in use, in the tooltip."""
        self.calibration = None if cal is None else dict(cal)
        if cal is None:
            self.label.setText(NO_CALIBRATION)
            self.setStyleSheet("#calibration_badge { background: #fff3cd; }")
            self.setToolTip(note or "Onsets are judged against a baseline that adapts to rest.")
        else:
            self.label.setText(describe(cal))
            self.setStyleSheet("#calibration_badge { background: #d4edda; }")
            rest = (cal.get("rest") or {}).get("noise_rms_uv") or {}
            levels = ", ".join(f"{k} {v:.1f} µV" for k, v in rest.items())
            when = created_at(cal)
            made = when.astimezone().isoformat(timespec="minutes") if when else "unknown"
            self.setToolTip(
                f"Athlete: {cal.get('athlete')}\nMade: {made} on {cal.get('source')}\n"
                f"Rest levels: {levels or '—'}"
            )
        self.clear_button.setVisible(cal is not None)

    def set_void(self, why: str) -> None:
        """The calibration was made under other filter settings (``why`` names them): its
        rest levels are in other units and are no longer used -- the badge says so, and how
        to get one again, until a new calibration is made or applied."""
        self.calibration = None
        self.label.setText(VOID_CALIBRATION)
        self.setStyleSheet("#calibration_badge { background: #f8d7da; }")
        self.setToolTip(
            f"The calibration no longer applies: {why}.\n"
            "Onsets are judged against a baseline that adapts to rest until you calibrate "
            "again (Session ▸ Calibrate…, Ctrl+K)."
        )
        self.clear_button.setVisible(False)
