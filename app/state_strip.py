"""The state strip: what the window is doing, in words on coloured badges, always in view.

A user glancing at the screen must see at once whether the traces are live or a replay, still
scrolling, filtered or raw, and whether the session is being recorded. A status-bar word in
black is missed (issue 10); a badge with its own colour is not. Every badge is a word as well
as a colour, so the strip does not depend on colour vision.

The strip has a slot for widgets of other features (e.g. a calibration badge):
:meth:`StateStrip.add_widget` places them after the built-in badges.
"""

from __future__ import annotations

from PyQt6 import QtCore, QtGui, QtWidgets

from devices.session.states import SessionState

# Badge colours: none is a verdict colour (green/amber/red/grey of the firing order), so a
# badge is never read as a verdict; REC keeps the red every recorder uses, in a darker shade.
LIVE_COLOR = "#0e6655"  # dark teal: a live source streaming
REPLAY_COLOR = "#1f4e8c"  # blue: a file being replayed
IDLE_COLOR = "#566573"  # slate: connected, not streaming (stopped, finished)
LINK_COLOR = "#9a4d00"  # brown-orange: the driver reports a lost link (reconnecting)
ERROR_COLOR = "#922b21"  # dark red: the source failed
PAUSED_COLOR = "#f5b041"  # yellow-orange, dark text: the picture is frozen
RAW_COLOR = "#6c3483"  # violet: raw, unfiltered display
REC_COLOR = "#cb1b1b"  # recorder red

_PAD_PX = 16  # horizontal padding of a badge's text (the style's 8 px a side)
_SPARE_PX = 6  # a badge is this much wider than its text: elision never bites at full size


class Badge(QtWidgets.QLabel):
    """One state word on a rounded coloured background; hidden when the state is off."""

    def __init__(self, name: str, sample: str = "", shrink: bool = False) -> None:
        super().__init__("")
        self.setObjectName(f"state_{name}")
        self._shrink = shrink  # may be narrower than its text: then drawn elided
        font = self.font()
        font.setBold(True)
        font.setPointSizeF(max(9.0, font.pointSizeF() + 1))
        self.setFont(font)
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._style = ""
        if sample:
            # Text that changes every second (REC mm:ss) in a badge of fixed width: no relayout
            # of the window per tick, and the badge does not twitch as the digits change.
            self.setFixedWidth(self.fontMetrics().horizontalAdvance(sample) + _PAD_PX + _SPARE_PX)
        self.hide()

    @property
    def color(self) -> str:
        """The background colour shown (``#rrggbb``), for tests and screenshots."""
        return self._style.split("background:")[1].split(";")[0].strip() if self._style else ""

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        hint = super().minimumSizeHint()
        if self._shrink:  # a long file name must not set the window's minimum width
            hint.setWidth(min(self.sizeHint().width(), 120))
        return hint

    def shown_text(self) -> str:
        """The text as painted: elided in the middle when the badge is narrower than it."""
        room = max(0, self.width() - _PAD_PX)
        if not self._shrink or self.fontMetrics().horizontalAdvance(self.text()) <= room:
            return self.text()
        return self.fontMetrics().elidedText(self.text(), QtCore.Qt.TextElideMode.ElideMiddle, room)

    def paintEvent(self, event: QtGui.QPaintEvent | None) -> None:  # noqa: N802 (Qt API)
        shown = self.shown_text()
        if shown == self.text():
            super().paintEvent(event)
            return
        # Elided: the style's background (the badge's rounded fill), then the shorter text.
        # (text() stays whole, so the size hint asks for the full width when there is room)
        painter = QtGui.QPainter(self)
        opt = QtWidgets.QStyleOption()
        opt.initFrom(self)
        style = self.style()
        if style is not None:
            style.drawPrimitive(QtWidgets.QStyle.PrimitiveElement.PE_Widget, opt, painter, self)
        painter.setFont(self.font())
        painter.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
        rect = self.rect().adjusted(_PAD_PX // 2, 0, -_PAD_PX // 2, 0)
        painter.drawText(rect, QtCore.Qt.AlignmentFlag.AlignCenter, shown)
        painter.end()

    def show_state(self, text: str, bg: str, fg: str = "white", tip: str = "") -> None:
        style = f"QLabel {{ background: {bg}; color: {fg}; border-radius: 4px; padding: 2px 8px; }}"
        if style != self._style:  # (restyling re-polishes the widget: only on a change)
            self._style = style
            self.setStyleSheet(style)
        if text != self.text():
            self.setText(text)
        if tip != self.toolTip():
            self.setToolTip(tip)
        if self.isHidden():
            self.show()

    def off(self) -> None:
        if not self.isHidden():
            self.hide()


def clock_text(seconds: float) -> str:
    """mm:ss, and h:mm:ss from the first hour on."""
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60:02d}:{s % 60:02d}"


class StateStrip(QtWidgets.QFrame):
    """Source (LIVE / REPLAY file), PAUSED, RAW and REC badges, a slot for more, the clock."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("state_strip")
        self.setStyleSheet("QFrame#state_strip { background: #eaecee; }")
        self.source = Badge("source", shrink=True)
        self.paused = Badge("paused")
        self.raw = Badge("raw")
        self.rec = Badge("rec", sample="● REC 00:00:00")
        self.clock = QtWidgets.QLabel("")
        self.clock.setObjectName("state_clock")
        self.clock.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        )
        self.clock.setStyleSheet("QLabel { color: #333333; }")
        # fixed: the clock changes ten times a second (see Badge: no relayout per change)
        self.clock.setFixedWidth(self.clock.fontMetrics().horizontalAdvance("t = 00000.0 s") + 8)
        self.clock.setToolTip("time of the newest sample on screen")
        self._row = QtWidgets.QHBoxLayout(self)
        self._row.setContentsMargins(6, 3, 6, 3)
        self._row.setSpacing(6)
        for badge in (self.source, self.paused, self.raw, self.rec):
            self._row.addWidget(badge)
        self._slot = self._row.count()  # other features' widgets go here, in order
        self._row.addStretch(1)
        self._row.addWidget(self.clock)
        # Room for the badges even when all are off: the strip does not jump in height.
        self.setMinimumHeight(self.rec.sizeHint().height() + 6)
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Fixed
        )

    def add_widget(self, widget: QtWidgets.QWidget) -> None:
        """Place another feature's state widget (e.g. a calibration badge) in the strip,
        after the built-in badges and before the clock. Widgets added later go further right.
        A :class:`Badge` fits the look; any widget of the strip's height works."""
        self._row.insertWidget(self._slot, widget)
        self._slot += 1

    # -- the states ------------------------------------------------------------------------
    def set_source(
        self,
        state: SessionState,
        replay_path: str | None = None,
        link: str | None = None,
        source: str = "",
    ) -> None:
        """LIVE or REPLAY <file>, coloured by what the stream does."""
        if state == SessionState.CLOSED or (state == SessionState.IDLE and not source):
            self.source.show_state("NO SOURCE", IDLE_COLOR, tip="no source connected")
            return
        if replay_path is not None:
            name = QtCore.QFileInfo(replay_path).fileName() or replay_path
            word = f"REPLAY  {name}"
            color, tip = REPLAY_COLOR, f"replaying {replay_path}"
        else:
            # the device after the word (a serial port, a BrainFlow board): which live source
            word = f"LIVE  {source}" if source else "LIVE"
            color, tip = LIVE_COLOR, f"live: {source}" if source else "live"
        if state == SessionState.ERROR:
            word, color = word + "  · error", ERROR_COLOR
        elif link and link != "streaming":
            word, color = f"{word}  · {link}", LINK_COLOR
        elif state in (SessionState.STOPPED, SessionState.FINISHED, SessionState.OPEN):
            shown = {SessionState.FINISHED: "ended", SessionState.OPEN: "not started"}
            word, color = f"{word}  · {shown.get(state, state.value)}", IDLE_COLOR
        self.source.show_state(word, color, tip=tip)

    def set_paused(self, display: bool, playback: bool) -> None:
        """PAUSED when the picture is frozen (View ▸ Pause scrolling) or a replay is held."""
        if display and playback:
            text, tip = "PAUSED", "display and playback paused"
        elif display:
            text, tip = "PAUSED", "display frozen (P): acquisition and recording go on"
        elif playback:
            text, tip = "PAUSED", "replay paused (Space or P plays on)"
        else:
            self.paused.off()
            return
        self.paused.show_state(text, PAUSED_COLOR, fg="#1b1b1b", tip=tip)

    def set_raw(self, on: bool) -> None:
        if on:
            self.raw.show_state(
                "RAW", RAW_COLOR, tip="raw signal: no band-pass, notch or threshold (R)"
            )
        else:
            self.raw.off()

    def set_recording(self, seconds: float | None, path: str = "") -> None:
        """REC with the recorded time (None: not recording)."""
        if seconds is None:
            self.rec.off()
        else:
            tip = f"recording to {path}" if path else "recording"
            self.rec.show_state(f"● REC {clock_text(seconds)}", REC_COLOR, tip=tip)

    def set_clock(self, t: float | None) -> None:
        text = "" if t is None else f"t = {max(t, 0.0):.1f} s"  # (no "-0.0" at the start)
        if text != self.clock.text():
            self.clock.setText(text)


__all__ = ["Badge", "StateStrip", "clock_text"]
