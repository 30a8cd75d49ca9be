"""The window's Lab Streaming Layer panel: pick a marker stream, see the verdict outlet.

The picker lists the LSL marker streams (string streams, and numeric ones of irregular
rate) only when the user clicks Refresh: the look runs on a worker thread and lasts about a
second, so the window never waits on the network and nothing is sent on it unasked. The
chosen stream's markers go on the traces and into the recording (see
:meth:`SessionController.attach_markers`); the choice carries over to the next source.
"none" stops listening. The verdict outlet follows the Settings checkbox (off by default).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PyQt6 import QtCore, QtWidgets

if TYPE_CHECKING:
    from app.settings_store import GuiPrefs
    from devices.session.controller import SessionController

log = logging.getLogger(__name__)

#: how long Refresh looks for streams (s): liblsl answers on this machine within ~0.1 s
LOOK_S = 1.0


class MarkersPanel(QtWidgets.QWidget):
    """Marker-stream picker and LSL status. ``current`` gives the window's controller."""

    _found = QtCore.pyqtSignal(object)  # list[MarkerStream], or the error text (worker)

    def __init__(
        self,
        current: Callable[[], SessionController | None],
        say: Callable[[str], None],
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._current = current
        self._say = say
        self.chosen: tuple[str, str | None] | None = None  # (name, source_id)
        self.prefs_out = False  # verdicts over LSL asked for in Settings
        self.looking = False
        self._filling = False  # the list is being rebuilt: not a user's choice
        self.stream = QtWidgets.QComboBox()
        self.stream.setObjectName("marker_stream")
        self.stream.setMinimumContentsLength(24)
        self.stream.setToolTip("LSL marker stream whose markers go on the traces and recording")
        self.stream.addItem("none", None)
        self.refresh_button = QtWidgets.QPushButton("Refresh")
        self.refresh_button.setObjectName("marker_refresh")
        self.refresh_button.setToolTip(f"Look for LSL marker streams (about {LOOK_S:g} s)")
        self.status = QtWidgets.QLabel("no marker stream")
        self.status.setObjectName("marker_status")
        self.status.setWordWrap(True)
        self.outlet_status = QtWidgets.QLabel("verdicts over LSL: off (Settings)")
        self.outlet_status.setObjectName("lsl_out_status")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.stream, 1)
        row.addWidget(self.refresh_button)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Marker stream", row)
        form.addRow("", self.status)
        form.addRow("Out", self.outlet_status)
        self.refresh_button.clicked.connect(self.refresh)
        self.stream.currentIndexChanged.connect(self._picked)
        self._found.connect(self._show_found)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self.update_status)

    # -- looking for streams (worker thread) --------------------------------------------------
    def refresh(self) -> None:
        if self.looking:
            return
        self.looking = True
        self.refresh_button.setEnabled(False)
        self.status.setText("looking for marker streams…")
        signal = self._found

        def look() -> None:
            from devices.session.markers_in import list_marker_streams

            try:
                result: object = list_marker_streams(wait_s=LOOK_S)
            except Exception as exc:  # liblsl missing or failing: one line
                result = f"cannot look for LSL streams: {exc}"
            with contextlib.suppress(RuntimeError):  # (the panel was closed meanwhile)
                signal.emit(result)

        threading.Thread(target=look, name="lsl-look", daemon=True).start()

    def _show_found(self, result: object) -> None:
        self.looking = False
        self.refresh_button.setEnabled(True)
        if isinstance(result, str):
            self.status.setText(result)
            self._say(result)
            return
        assert isinstance(result, list)
        self._filling = True
        try:
            self.stream.clear()
            self.stream.addItem("none", None)
            names = [s.name for s in result]
            for s in result:
                text = s.describe()
                if names.count(s.name) > 1:  # two trigger boxes of one name: say which is which
                    text += f", source_id {s.source_id or '(none)'}"
                self.stream.addItem(text, f"{s.name}\x1f{s.source_id}")
            if self.chosen is not None:
                key = f"{self.chosen[0]}\x1f{self.chosen[1] or ''}"
                at = self.stream.findData(key)
                if at < 0:  # chosen earlier, not seen now: still listened for
                    self.stream.addItem(f"{self.chosen[0]} (not seen now)", key)
                    at = self.stream.count() - 1
                self.stream.setCurrentIndex(at)
        finally:
            self._filling = False
        n = len(result)
        found = f"{n} marker stream{'s' if n != 1 else ''} found"
        self.status.setText(found if self.chosen is None else f"{found}; {self._feed_status()}")

    # -- the choice ------------------------------------------------------------------------
    def _picked(self, index: int) -> None:
        if self._filling:
            return
        key = self.stream.itemData(index)
        if not isinstance(key, str):
            self.choose(None)
            return
        name, _, source_id = key.partition("\x1f")
        self.choose(name, source_id or None)

    def choose(self, name: str | None, source_id: str | None = None) -> None:
        """Listen to the marker stream ``name`` (that outlet, given its ``source_id``; None:
        to none) from now on."""
        self.chosen = None if name is None else (name, source_id)
        ctl = self._current()
        if ctl is not None:
            self._feed(ctl)
        self.update_status()

    @staticmethod
    def _live(ctl: SessionController) -> bool:
        # a replayed file is not happening now: today's trigger box does not belong on its
        # timeline, and its verdicts are not news for the lab's recorder
        return ctl.replay is None

    def _feed(self, ctl: SessionController) -> None:
        # (the old feed's thread ends on its own: the window does not wait on liblsl)
        if self.chosen is None or not self._live(ctl):
            ctl.attach_markers(None, wait_s=0.0)
            return
        from devices.session.markers_in import MarkerFeed

        ctl.attach_markers(MarkerFeed(self.chosen[0], source_id=self.chosen[1]), wait_s=0.0)

    def attach(self, ctl: SessionController, prefs: GuiPrefs) -> None:
        """A new source's controller: the chosen stream and the outlet carry over to live
        sources (a replay gets neither)."""
        ctl.on_notice = self._notice
        self._feed(ctl)
        self.prefs_changed(prefs)

    def prefs_changed(self, prefs: GuiPrefs) -> None:
        """The Settings dialog was answered: the outlet on or off as it says."""
        self.prefs_out = prefs.lsl_out
        ctl = self._current()
        if ctl is not None:
            why = ctl.set_lsl_out(prefs.lsl_out and self._live(ctl), prefs.lsl_out_name)
            if why is not None:
                self._say(why)
        self.update_status()

    # -- status -------------------------------------------------------------------------------
    def _notice(self, text: str) -> None:
        self._say(text)
        self.update_status()

    def _feed_status(self) -> str:
        ctl = self._current()
        feed = ctl.marker_feed if ctl is not None else None
        if feed is None and self.chosen is not None and ctl is not None and not self._live(ctl):
            return f"{self.chosen[0]}: not listened to while a file is replayed"
        return feed.status() if feed is not None else "no marker stream"

    def update_status(self) -> None:
        ctl = self._current()
        if not self.looking:
            self.status.setText(self._feed_status())
        out = ctl.lsl_out if ctl is not None else None
        if out is None and ctl is not None and not self._live(ctl) and self.prefs_out:
            self.outlet_status.setText("verdicts over LSL: not sent for a replayed file")
        elif out is None:
            self.outlet_status.setText("verdicts over LSL: off (Settings)")
        else:
            sent = f", {out.sent} sent" if out.sent else ""
            self.outlet_status.setText(f"verdicts over LSL: {out.name}{sent}")
        busy = ctl is not None and (ctl.marker_feed is not None or ctl.lsl_out is not None)
        if busy and not self.timer.isActive():
            self.timer.start()
        elif not busy:
            self.timer.stop()


def add_markers_dock(win: Any) -> MarkersPanel:
    """The panel as a tab beside the Sessions tab (View ▸ Panels lists it) of ``win``, the
    main window (typed loosely: the window imports this module)."""
    ref = weakref.ref(win)  # the panel must not keep the window alive in a cycle

    def current() -> SessionController | None:
        w = ref()
        return w.ctl if w is not None else None

    def say(text: str) -> None:
        w = ref()
        if w is not None:
            w.statusBar().showMessage(text, 8000)

    panel = MarkersPanel(current, say)
    dock = win._dock("LSL", panel, QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
    sessions = next((d for d in win.docks if d.windowTitle() == "Sessions"), None)
    if sessions is not None:
        win.tabifyDockWidget(sessions, dock)
    return panel


__all__ = ["MarkersPanel", "add_markers_dock"]
