"""The athlete's window: the last rep's verdict, big enough to read from 2 m away.

White text on the full-window verdict colour, and always the verdict as a word too, so the
view does not depend on colour vision. Font sizes follow the window height (and shrink to fit
the width), so the same view works in a small window and full screen on a 4K display.
"""

from __future__ import annotations

import logging

from PyQt6 import QtCore, QtGui, QtWidgets
from PyQt6.QtCore import pyqtSignal

from app.review import verdict_lag_text
from app.theme import VERDICT_COLOR, VERDICT_CUE, VERDICT_TEXT
from devices.session.tally import RepTally
from dsp.reps import RepResult, Verdict

log = logging.getLogger(__name__)

WAITING_COLOR = "#2c3e50"  # dark slate: clearly "no verdict yet", white text stays readable
WAITING_TEXT = "READY"
WAITING_CUE = "waiting for the first rep"
FLASH_MS = 300
FLASH_LIGHTER = 140  # QColor.lighter factor (percent) while flashing
MIN_POINT_SIZE = 6.0

# Share of the window height given to each line's text (cap height is ~0.7 of pixel size).
_VERDICT_H = 0.17
_LAG_H = 0.10
_CUE_H = 0.06
_VALUE_H = 0.085
_CAPTION_H = 0.03


class _ShadowLabel(QtWidgets.QLabel):
    """White text with a thin dark drop shadow, which keeps it legible on the lighter verdict
    colours (amber). Painted directly: a QGraphicsDropShadowEffect renders each label through an
    offscreen pixmap and made a 4K repaint several times slower."""

    SHADOW = QtGui.QColor(0, 0, 0, 110)

    def paintEvent(self, event: QtGui.QPaintEvent | None) -> None:  # noqa: N802 (Qt API)
        text = self.text()
        if not text:
            return
        flags = self.alignment().value
        if self.wordWrap():
            flags |= QtCore.Qt.TextFlag.TextWordWrap.value
        rect = QtCore.QRectF(self.contentsRect())
        offset = max(1.0, self.font().pointSizeF() / 40.0)  # shadow grows with the text
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        painter.setFont(self.font())
        painter.setPen(self.SHADOW)
        painter.drawText(rect.translated(offset, offset), flags, text)
        painter.setPen(QtGui.QColor("white"))
        painter.drawText(rect, flags, text)
        painter.end()


class AthleteView(QtWidgets.QWidget):
    """Top-level window for the athlete. Feed it with :meth:`show_rep` after the rep has been
    added to ``tally`` (as for the firing-order panel): streak and percentages come from it."""

    closed = pyqtSignal()

    def __init__(self, tally: RepTally, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        # Always its own window, even with a parent (which then only ties lifetimes together).
        self.setWindowFlag(QtCore.Qt.WindowType.Window, True)
        self.setWindowTitle("fireorder — athlete")
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(240, 180)
        self.tally = tally
        self.order: str | None = None
        self._color = QtGui.QColor(WAITING_COLOR)
        self._flash_timer = QtCore.QTimer(self)
        self._flash_timer.setSingleShot(True)
        self._flash_timer.setInterval(FLASH_MS)
        self._flash_timer.timeout.connect(self.update)

        self.verdict_label = self._label(bold=True)
        self.lag_label = self._label(bold=True)
        self.cue_label = self._label()
        self.cue_label.setWordWrap(True)
        self.rep_value, rep_caption = self._label(bold=True), self._label("rep")
        self.streak_value = self._label(bold=True)
        streak_caption = self._label("glute-first streak")
        self.recent_value = self._label(bold=True)
        self.recent_caption = self._label(f"glute first · last {tally.window}")
        self.session_value = self._label(bold=True)
        session_caption = self._label("glute first · session")
        self._values = [self.rep_value, self.streak_value, self.recent_value, self.session_value]
        self._captions = [rep_caption, streak_caption, self.recent_caption, session_caption]
        for caption in self._captions:
            caption.setWordWrap(True)  # a narrow window wraps captions rather than clipping them

        stats = QtWidgets.QGridLayout()
        stats.setHorizontalSpacing(12)
        for col, (value, caption) in enumerate(zip(self._values, self._captions, strict=True)):
            stats.addWidget(value, 0, col)
            stats.addWidget(caption, 1, col)
            stats.setColumnStretch(col, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.verdict_label, 4)
        layout.addWidget(self.lag_label, 2)
        layout.addWidget(self.cue_label, 2)
        layout.addStretch(1)
        layout.addLayout(stats, 3)
        self.reset()
        self._rescale()

    def _label(self, text: str = "", *, bold: bool = False) -> QtWidgets.QLabel:
        label = _ShadowLabel(text, self)
        label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        # Let the window, not the text, decide the size: fonts follow the window.
        label.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored
        )
        font = label.font()
        font.setBold(bold)
        label.setFont(font)
        return label

    # --- content ---------------------------------------------------------------------------

    def show_rep(self, rep: RepResult) -> None:
        self.order = rep.order
        verdict = Verdict(rep.order)
        self._color = QtGui.QColor(VERDICT_COLOR[verdict])
        self.verdict_label.setText(VERDICT_TEXT[verdict])
        self.lag_label.setText(verdict_lag_text(rep))
        self.cue_label.setText(VERDICT_CUE[verdict])
        self.rep_value.setText(str(rep.index + 1))
        self._update_stats()
        # Flash even when the verdict repeats, so each new rep is unmistakable.
        self._flash_timer.start()
        self.update()

    def show_final(self, rep: RepResult) -> None:
        """The rep's final record: a lumbar-first rep decided before its glutes fired gets
        its measured lag, and one whose glute onset, fitted later, came first says it was
        revised. No new flash: it is the same rep. The scores count the final record."""
        if self.order is not None and self.rep_value.text() == str(rep.index + 1):
            # (the big verdict stays as cued: no second flash for the same rep; the line
            # under it says what the final record is)
            if rep.cued is not None:
                self.lag_label.setText(f"revised: {rep.order.replace('_', ' ')}")
            else:
                self.lag_label.setText(verdict_lag_text(rep))
        self._update_stats()

    def reset(self) -> None:
        self.order = None
        self._flash_timer.stop()
        self._color = QtGui.QColor(WAITING_COLOR)
        self.verdict_label.setText(WAITING_TEXT)
        self.lag_label.setText("")
        self.cue_label.setText(WAITING_CUE)
        self.rep_value.setText("—")
        self._update_stats()
        self.update()

    def _update_stats(self) -> None:
        t = self.tally
        self.streak_value.setText(str(t.streak))
        self.recent_caption.setText(f"glute first · last {t.window}")
        for label, counts in ((self.recent_value, t.recent), (self.session_value, t.session)):
            pct = t.percent(counts)
            label.setText("—" if pct is None else f"{pct:.0f}%")

    @property
    def flashing(self) -> bool:
        return self._flash_timer.isActive()

    @property
    def background_color(self) -> QtGui.QColor:
        """The colour currently painted (brighter while flashing)."""
        return self._color.lighter(FLASH_LIGHTER) if self.flashing else QtGui.QColor(self._color)

    # --- window ----------------------------------------------------------------------------

    def show_on_screen(self, screen_index: int | None = None, fullscreen: bool = True) -> None:
        """Show on ``screens()[screen_index]``, by default the first non-primary screen (the
        athlete's monitor) or the primary one if there is only one."""
        screens = QtGui.QGuiApplication.screens()
        primary = QtGui.QGuiApplication.primaryScreen()
        screen = None
        if isinstance(screen_index, bool):  # a yes/no preference is not a screen number
            screen_index = None
        if screen_index is not None:
            if 0 <= screen_index < len(screens):
                screen = screens[screen_index]
            else:
                log.info("no screen %d (have %d); using the default", screen_index, len(screens))
        if screen is None:
            screen = next((s for s in screens if s is not primary), primary)
        if screen is not None:
            self.setScreen(screen)
            area = screen.availableGeometry()
            # Place the window on that screen first: full screen uses the screen it is on.
            size = QtCore.QSize(int(area.width() * 0.6), int(area.height() * 0.6))
            rect = QtCore.QRect(QtCore.QPoint(0, 0), size)
            rect.moveCenter(area.center())
            self.setGeometry(rect)
        if fullscreen:
            self.showFullScreen()
        else:
            self.showNormal()
        self.raise_()
        self.activateWindow()

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def keyPressEvent(self, event: QtGui.QKeyEvent | None) -> None:  # noqa: N802 (Qt API)
        # Esc closes the view (full screen or not): leaving full screen only left a big
        # window over the operator's. F11 toggles full screen; F2 is the main window's
        # "Athlete view" action, added to this window by the main window.
        key = event.key() if event is not None else None
        if key == QtCore.Qt.Key.Key_Escape:
            self.close()
        elif key == QtCore.Qt.Key.Key_F11:
            self.toggle_fullscreen()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event: QtGui.QCloseEvent | None) -> None:  # noqa: N802 (Qt API)
        super().closeEvent(event)
        self.closed.emit()

    # --- painting and scaling --------------------------------------------------------------

    def paintEvent(self, event: QtGui.QPaintEvent | None) -> None:  # noqa: N802 (Qt API)
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), self.background_color)
        painter.end()

    def resizeEvent(self, event: QtGui.QResizeEvent | None) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        h, w = max(1, self.height()), max(1, self.width())
        # Each line is sized from the height, then shrunk until its longest possible text fits
        # the width, so the word size does not jump between verdicts.
        self._fit(self.verdict_label, _VERDICT_H * h, 0.94 * w, list(VERDICT_TEXT.values()))
        self._fit(self.lag_label, _LAG_H * h, 0.9 * w, ["-888 ms", "revised: undetermined"])
        self._fit(self.cue_label, _CUE_H * h, 0.94 * w, [*VERDICT_CUE.values(), WAITING_CUE])
        col_w = 0.9 * w / len(self._values)
        for value in self._values:
            self._fit(value, _VALUE_H * h, col_w, ["100%", "8888"])
        captions = [c.text() for c in self._captions] + ["glute first · last 100"]
        for caption in self._captions:
            self._fit(caption, _CAPTION_H * h, col_w, captions)

    def _fit(
        self, label: QtWidgets.QLabel, px: float, max_width: float, samples: list[str]
    ) -> None:
        font = label.font()
        font.setPixelSize(max(1, round(px)))
        widest = max(QtGui.QFontMetricsF(font).horizontalAdvance(s) for s in samples)
        if widest > max_width > 0:
            px *= max_width / widest
        # Point sizes (not pixels) so the font is sized consistently with the rest of the UI.
        dpi = self.logicalDpiY() or 96
        font.setPointSizeF(max(MIN_POINT_SIZE, px * 72.0 / dpi))
        label.setFont(font)
