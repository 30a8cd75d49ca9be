"""The main window's status bar: every message fits the room the permanent fields leave.

A message wider than that room was clipped mid-word by the first permanent field ("saved
/tmp/…/2026-12-02_042659_Sam_|device: streaming"): the end of a path, the part a user looks
for, was the part lost. Here a message too wide is elided in the middle ("saved /tmp/…/
2026-12-02_042659_Sam_hinge.bdf" keeps its start and its file name) and the whole text is the
bar's tooltip while the message shows. Every caller gets this: ``showMessage`` from Python
(the window's ``_say``, the export dialog, the LSL panel) and Qt's own (a menu's status tip)."""

from __future__ import annotations

import time

from PyQt6 import QtCore, QtWidgets

#: a message shown until the next one keeps the fields that stepped aside for it this long (ms)
ASIDE_MS = 8000


class StatusBar(QtWidgets.QStatusBar):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""  # the message as given (what the tooltip shows when it is cut)
        self._shown = ""  # the message as drawn
        self._tip = ""
        self._until = 0.0  # time.monotonic() the message goes (0: until the next one)
        # Permanent fields that may step aside while a message needs their room, the first
        # first (a window narrower than the fields left the message no room: "…" alone)
        self._optional: list[QtWidgets.QWidget] = []
        self._stepped_aside: list[QtWidgets.QWidget] = []
        self._aside_timer = QtCore.QTimer(self)
        self._aside_timer.setSingleShot(True)
        self._aside_timer.timeout.connect(self._back_after)
        self.messageChanged.connect(self._changed)

    def _relayout(self) -> None:
        layout = self.layout()
        if layout is not None:
            layout.invalidate()
            layout.activate()

    def set_optional(self, widgets: list[QtWidgets.QWidget]) -> None:
        """Fields hidden, in this order, while a message would not fit beside them."""
        self._optional = list(widgets)

    def _give_back(self) -> None:
        self._aside_timer.stop()
        if not self._stepped_aside:
            return
        for w in self._stepped_aside:
            w.show()
        self._stepped_aside = []
        self._relayout()  # (their places again, before the next message is measured)

    def _make_room(self, text: str) -> None:
        """Hide optional fields until ``text`` fits (or none is left to hide)."""
        need = self.fontMetrics().horizontalAdvance(text)
        if not self.isVisible() or self.width() <= 0:  # (not laid out: no room to measure)
            return
        for w in self._optional:
            if self.room() >= need:
                break
            if w.isVisible():
                w.hide()
                self._stepped_aside.append(w)
                self._relayout()  # (the fields' places now, for room())

    def room(self) -> int:
        """Pixels for the message: from its left margin to the first permanent field (Qt
        draws the message from x=6 up to that field); 0 before the bar is laid out."""
        if not self.isVisible() or self.width() <= 0:
            return 0
        fields = [
            w.geometry().left()
            for w in self.findChildren(
                QtWidgets.QWidget, options=QtCore.Qt.FindChildOption.FindDirectChildrenOnly
            )
            if w.isVisible() and not isinstance(w, QtWidgets.QSizeGrip) and w.width() > 0
        ]
        right = min(fields) if fields else self.width() - 12
        return max(0, right - 6 - 8)  # (8: a gap, so the last letter never touches the field)

    def show_message(self, text: str, ms: int = 0, full: str | None = None) -> None:
        """Show ``text`` for ``ms`` (0: until the next message), elided in the middle to the
        room; the tooltip is ``full`` (a longer story ``text`` is the short form of) or, when
        ``text`` had to be cut, ``text`` itself."""
        self._full = text
        self._until = time.monotonic() + ms / 1000.0 if ms > 0 else 0.0
        self._tip = full if full is not None else ""
        self._give_back()
        if text:
            self._make_room(text)
            if ms <= 0 and self._stepped_aside:
                # a message until the next one: the fields come back after a while, the
                # message then cut to the room they leave (a timer of the bar's own: it
                # goes with the bar, and each message restarts it)
                self._aside_timer.start(ASIDE_MS)
        self._put(ms)

    def _back_after(self) -> None:
        if not self._stepped_aside:
            return
        self._give_back()
        if self._full and self.currentMessage() == self._shown:
            self._put(0)

    def showMessage(self, text: str | None, msecs: int = 0) -> None:  # noqa: N802 (Qt's name)
        self.show_message(text or "", msecs)

    def _elided(self, text: str) -> str:
        if not self.isVisible() or self.width() <= 0:
            return text  # (not laid out: nothing to measure against yet)
        room = self.room()
        if self.fontMetrics().horizontalAdvance(text) <= room:
            return text
        if room <= 0:
            return ""  # (no room at all: the tooltip has it; "…" alone said nothing)
        return self.fontMetrics().elidedText(text, QtCore.Qt.TextElideMode.ElideMiddle, room)

    def _put(self, ms: int) -> None:
        shown = self._elided(self._full)
        self._shown = shown
        self.setToolTip(self._tip or (self._full if shown != self._full else ""))
        super().showMessage(shown, ms)

    def _changed(self, text: str) -> None:
        if text == self._shown:
            return
        if not text:  # timed out or cleared: the tooltip explained the message, gone with it
            self._full = self._shown = self._tip = ""
            self.setToolTip("")
            self._give_back()  # (the fields that stepped aside for it)
            return
        # a message Qt showed itself (a menu's status tip): cut to the room as well
        self._full, self._tip, self._until = text, "", 0.0
        self._put(0)

    def resizeEvent(self, event: object) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)  # type: ignore[arg-type]
        if self._full and self.currentMessage() == self._shown:
            # the room changed: cut the message again for what it has left to show
            left = 0 if not self._until else int((self._until - time.monotonic()) * 1000)
            if self._until and left <= 0:
                return
            again = self._elided(self._full)
            if again != self._shown:
                self._put(max(left, 0))
