"""The live window: source, traces, firing order, signal check, cues, athlete view.

Acquisition and DSP run on the session's worker thread. The GUI timer slot (``refresh``) only
drains events, takes a snapshot of the ring buffers and draws.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

from app.order_panel import FiringOrderPanel
from app.review import ReplayBar, RepTable
from app.signal_check import SignalCheckPanel
from app.source_panel import DISCOVERED_KINDS, SourceChoice, SourcePanel
from app.state_strip import StateStrip
from app.traces import TracesView
from devices.drivers.base import Device, create
from devices.files import locations
from devices.files.recorder import Recorder, RecordingSummary, SessionMeta
from devices.session.controller import Mark, RecordingError, SessionController
from devices.session.live import CalibrationResult, LiveSession
from devices.session.states import MarkKind, SessionState
from devices.session.tally import RepTally, same_burst
from dsp.contract import Role, StreamInfo
from dsp.events import GapEvent, RepsRejudged
from dsp.onset import OnsetEvent
from dsp.reps import RepEnded, RepResult
from dsp.settings import DspSettings, SettingsSchedule

if TYPE_CHECKING:
    from app.athlete_view import AthleteView
    from app.settings_store import GuiPrefs, SettingsStore

log = logging.getLogger(__name__)


def rate_text(measured_hz: float, fs: float, replay: bool, speed: float | None = 1.0) -> str:
    """The status bar's rate: a device's measured rate (a serial board's clock may be off its
    nominal one); a replay's file rate, with the speed it plays at (what it delivers per wall
    second is the speed's business, not the file's)."""
    if not replay:
        return f"{measured_hz:,.0f} Hz" if measured_hz > 0 else f"{fs:,.0f} Hz"
    if speed is None:
        return f"{fs:,.0f} Hz ×fast"  # (the speed box names it "fast")
    if 0 < measured_hz < 0.9 * fs * speed:  # the machine does not keep up: what it plays at
        speed = float(f"{measured_hz / fs:.2g}")
    return f"{fs:,.0f} Hz" if speed == 1 else f"{fs:,.0f} Hz ×{speed:g}"


class MainWindow(QtWidgets.QMainWindow):
    rep_shown = QtCore.pyqtSignal(object)  # RepResult, after it is drawn
    _verdict_ready = QtCore.pyqtSignal()  # emitted on the worker thread: a queued wake-up

    def __init__(
        self,
        store: SettingsStore | None = None,
        *,
        source: SourceChoice | None = None,
        autostart: bool = True,
        threaded: bool = True,
        fps: int = 60,
        recordings_dir: str | None = None,
    ) -> None:
        super().__init__()
        from app.cues import CuePlayer, CueRules
        from app.settings_store import SettingsStore

        self.setWindowTitle("fireorder — glute vs lumbar firing order")
        self.store = store if store is not None else SettingsStore()
        self.settings: DspSettings = self.store.load_dsp()
        self.prefs = self.store.load_prefs()
        self.threaded = threaded
        self.ctl: SessionController | None = None
        self._no_tally = RepTally(window=self.prefs.recent_window_n)  # before any source
        self.cue_rules = CueRules(mode=self.prefs.cue_mode, every_n=self.prefs.cue_every_n)
        self.cues = CuePlayer(self)
        self.cues.set_muted(self.prefs.cue_mute)
        self.cues.set_volume(self.prefs.cue_volume)
        self.athlete_view: AthleteView | None = None
        self.latencies: deque[float] = deque(maxlen=1000)  # chunk arrival -> verdict drawn, s
        self._frame_times: deque[float] = deque(maxlen=120)
        self._last_quality = 0.0
        self._last_status = 0.0
        self._error_shown: str | None = None
        self._last_recording: str | None = None
        # The athlete typed for the live session, kept while a file is replayed (the field
        # then names the recording's athlete): "Sam" typed live named the demo's replay, and
        # an unnamed recording was offered Sam's calibration.
        self._live_athlete: str | None = None
        self._replay_athlete: str | None = None  # the name the field was given for a replay
        self._export_job: object | None = None
        self._maximise_on_show = False
        self.recordings_dir = str(
            recordings_dir or self.prefs.recordings_dir or locations.default_recordings_dir()
        )

        self.traces = TracesView()
        self.traces.window_s = self.prefs.window_s
        self.traces.show_raw = self.prefs.show_raw
        self.replay_bar = ReplayBar()
        self.replay_bar.attach(None)
        # LIVE/REPLAY, PAUSED, RAW, REC: above the traces, where the eyes are (not in the
        # status bar's small black text, which nobody reads mid-session)
        self.state_strip = StateStrip()
        central = QtWidgets.QWidget()
        box = QtWidgets.QVBoxLayout(central)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.state_strip)
        box.addWidget(self.traces, 1)
        self.setCentralWidget(central)
        from app.review_mode import ReviewMode

        self.review = ReviewMode(self)
        # Replay's overview strip and seek slider span the whole window (a toolbar row above
        # the docks), not only the traces between them.
        replay_row = QtWidgets.QWidget()
        replay_row.setObjectName("replay_row")
        rows = QtWidgets.QVBoxLayout(replay_row)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.setSpacing(0)
        rows.addWidget(self.review.overview)
        rows.addWidget(self.replay_bar)
        self.replay_toolbar = QtWidgets.QToolBar("Replay", self)
        self.replay_toolbar.setObjectName("replay_toolbar")
        self.replay_toolbar.setMovable(False)
        self.replay_toolbar.setFloatable(False)
        self.replay_toolbar.setContentsMargins(0, 0, 0, 0)
        self.replay_toolbar.setStyleSheet("QToolBar { padding: 0px; spacing: 0px; border: 0px }")
        self.replay_toolbar.toggleViewAction().setVisible(False)  # type: ignore[union-attr]
        self._replay_row_action = self.replay_toolbar.addWidget(replay_row)
        self.addToolBar(QtCore.Qt.ToolBarArea.TopToolBarArea, self.replay_toolbar)
        self.replay_toolbar.hide()
        self.rep_table = RepTable()
        self.order_panel = FiringOrderPanel(self.tally)
        self.order_panel.history.set_tolerance(self.settings.tolerance_ms)
        self.source_panel = SourcePanel()
        self.signal_check = SignalCheckPanel()
        self.docks: list[QtWidgets.QDockWidget] = []  # in the View menu's order
        self._dock(
            "Source", self.source_panel, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, scroll=True
        )
        self._dock("Firing order", self.order_panel, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        # The firing order runs the window's full height and the bottom docks stop at it:
        # its 440 px of banner, bars, history and counts then share the height only with the
        # replay strip above (at 11 pt, stacked over the bottom docks too, it did not fit a
        # 768 px screen).
        self.setCorner(
            QtCore.Qt.Corner.BottomRightCorner, QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        )
        bottom = QtCore.Qt.DockWidgetArea.BottomDockWidgetArea
        check = self._dock("Signal check", self.signal_check, bottom)
        reps = self._dock("Reps", self.rep_table, bottom)
        self.tabifyDockWidget(check, reps)
        from app.session_browser import SessionBrowser

        self.sessions = SessionBrowser(self.recordings_dir)
        self.tabifyDockWidget(reps, self._dock("Sessions", self.sessions, bottom))
        from app.ensemble_view import add_ensemble_tab

        self.ensemble_view = add_ensemble_tab(self)  # (tabbed after Sessions; View ▸ Panels)
        self.docks.append(self.ensemble_view.parentWidget())  # type: ignore[arg-type]
        from app.markers_panel import add_markers_dock

        self.markers_panel = add_markers_dock(self)  # LSL markers in, verdicts out
        check.raise_()
        from app.video_dock import VideoDock

        self.video = VideoDock(self)  # (tabbed with Source; raised when a video is shown)
        self.video.build()
        self.sessions.open_requested.connect(self.open_recording)
        self.rep_table.rep_clicked.connect(self.go_to_rep)
        self.traces.rep_clicked.connect(self.go_to_rep)
        from app.corrections import OnsetEditor

        self.onset_editor = OnsetEditor(self.traces)
        self.onset_editor.changed.connect(self.correct_onset)
        self.onset_editor.selected.connect(self._onset_selected)
        self.replay_bar.seek_requested.connect(self.seek)
        # Play / Pause is Space's action: once the replay has ended it plays from the start
        # again (the button alone only toggled a transport that had nothing left to play)
        self.replay_bar.play_btn.clicked.disconnect(self.replay_bar.toggle_play)
        self.replay_bar.play_btn.clicked.connect(self.toggle_running)
        # one replay speed: either box sets it and both show it
        self.replay_bar.speed_changed.connect(self.source_panel.show_speed)
        self._build_status()
        self._build_calibration_badge()
        self._build_actions()
        # A text field takes Ctrl+E (end of line) and Ctrl+K (delete to the end) before the
        # menu's Export report and Calibrate shortcuts: with the focus in the athlete field
        # Ctrl+E did nothing (found driving the window). The menu's Ctrl shortcuts win.
        self._menu_keys = {
            act.shortcut().toString()
            for act in self.actions()
            if act.shortcut().toString().startswith("Ctrl+")
        }
        for edit in self.findChildren(QtWidgets.QLineEdit):
            edit.installEventFilter(self)
        self.source_panel.connect_requested.connect(self.connect_source)
        self.source_panel.start_requested.connect(self.start)
        self.source_panel.file_speed_changed.connect(self.replay_bar.set_speed)
        self.source_panel.stop_requested.connect(self.stop)
        self.source_panel.mapping_changed.connect(self._mapping_changed)
        self.source_panel.discovered.connect(self._discovered)
        self.source_panel.kind.currentTextChanged.connect(self._source_kind_changed)
        self.source_panel.discovery_failed.connect(self._discovery_failed)
        self._start_when_discovered = False
        self._fit_screen(1400, 860)
        self._update_state_strip()

        self.timer = QtCore.QTimer(self)
        # 16 ms for 60 fps (round() would give 17 ms: at most 58.8 fps); precise, because a
        # coarse timer may fire up to 5 % late and drop frames.
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(max(1, int(1000 / fps)))
        self.timer.timeout.connect(self.refresh)
        queued = QtCore.Qt.ConnectionType.QueuedConnection
        # (PyQt6's stubs omit connect's connection-type argument; PyQt6 itself takes it)
        self._verdict_ready.connect(self.refresh, queued)  # type: ignore[call-arg]
        QtCore.QTimer.singleShot(0, self.recover_recordings)
        if autostart:
            self.connect_source(source or self.source_panel.choice())
            if self.source_panel.discovering:  # a board given to the window: after the look
                self._start_when_discovered = True
            else:
                self.start()

    # -- layout ----------------------------------------------------------------------------
    def _say(self, text: str, ms: int = 0, full: str | None = None) -> None:
        """A message in the status bar (``ms`` = 0: until the next one). ``full``: the whole
        story, when ``text`` is its short form: the status bar's tooltip while it shows. A
        message wider than the room the permanent fields leave is elided in the middle, its
        whole text the tooltip (app/status_bar.py; so is every ``showMessage``)."""
        self._bar.show_message(text, ms, full)

    def _dock(
        self,
        title: str,
        widget: QtWidgets.QWidget,
        area: QtCore.Qt.DockWidgetArea,
        *,
        scroll: bool = False,
    ) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.replace(' ', '_').lower()}")
        if scroll:
            # A tall form (the source panel with its scale fields) scrolls rather than
            # setting the window's minimum height: the window must fit a 768 px screen.
            holder = QtWidgets.QScrollArea()
            holder.setObjectName(f"scroll_{title.replace(' ', '_').lower()}")
            holder.setWidget(widget)
            holder.setWidgetResizable(True)
            holder.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
            holder.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            bar = holder.verticalScrollBar()
            extra = bar.sizeHint().width() if bar is not None else 16
            holder.setMinimumWidth(widget.minimumSizeHint().width() + extra)
            dock.setWidget(holder)
        else:
            dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks.append(dock)
        return dock

    def _fit_screen(self, width: int, height: int) -> None:
        """Open at ``width`` x ``height``, or at the screen's available area if smaller (a
        1366x768 laptop): a window larger than its screen hides its own status bar."""
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        if screen is not None:
            area = screen.availableGeometry()
            # The window manager's frame (title bar) comes on top of the size: a screen that
            # cannot take the size opens the window maximised, frame included (showEvent).
            # Offscreen (tests) there is no frame and no one to restore it: the size as is.
            framed = QtGui.QGuiApplication.platformName() not in ("offscreen", "minimal")
            too_big = width >= area.width() or height >= area.height()
            self._maximise_on_show = framed and too_big
            width, height = min(width, area.width()), min(height, area.height())
        self.resize(width, height)
        # The docks open at their size hints otherwise: the firing order's counts alone asked
        # for 650 px and left the traces a third of a 1366 px screen.
        horizontal, vertical = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical
        side = [d for d in self.docks if d.windowTitle() in ("Source", "Firing order")]
        self.resizeDocks(side, [min(340, width // 4), min(420, int(width * 0.28))], horizontal)
        bottom = [d for d in self.docks if d.windowTitle() == "Signal check"]
        # a quarter of the height: the signal check's four channel rows at 768 px
        self.resizeDocks(bottom, [max(150, height // 4)], vertical)

    def add_state_widget(self, widget: QtWidgets.QWidget) -> None:
        """The place for another feature's always-visible state (e.g. a calibration badge):
        the state strip above the traces, after LIVE/REPLAY, PAUSED, RAW and REC. An
        :class:`app.state_strip.Badge` matches the look (``show_state(text, colour)``)."""
        self.state_strip.add_widget(widget)

    def _build_status(self) -> None:
        from app.status_bar import StatusBar

        self._bar = bar = StatusBar(self)  # (every message elided to fit, not clipped)
        self.setStatusBar(bar)
        self.status_labels: dict[str, QtWidgets.QLabel] = {}
        # Fixed widths: a label that resizes with its text relayouts (and repaints) the whole
        # window several times a second.
        widest = {
            "state": "device: disconnected",
            "rate": "16,000 Hz ×0.25",
            "dropped": "dropped 000000 (000 gaps)",
            "latency": "latency 000 ms",
            "fps": "000 fps",
            "buffer": "history 000 s",
        }
        tips = {
            "rate": "samples per second: a device's as measured, a file's with its replay speed",
            "latency": "median time from a chunk's arrival to its rep's cue on screen",
            "buffer": "signal kept in memory for scrolling back (a recording keeps all of it)",
        }
        # (REC is a badge of the state strip: red and in view, not status-bar text)
        for key in ("state", "rate", "dropped", "latency", "fps", "buffer", "audio"):
            label = QtWidgets.QLabel("")
            label.setObjectName(f"status_{key}")
            label.setToolTip(tips.get(key, ""))
            if key in widest:
                label.setFixedWidth(label.fontMetrics().horizontalAdvance(widest[key]) + 12)
            bar.addPermanentWidget(label)
            self.status_labels[key] = label
        # (the state stays; the others make way, the least needed first, for a message that
        # would not fit: a narrow window left a report's "saved" message as "…")
        aside = ("audio", "fps", "buffer", "latency", "dropped", "rate")
        bar.set_optional([self.status_labels[k] for k in aside])
        self.status_labels["audio"].setText(self.cues.status_text)
        self.cues.status_changed.connect(self.status_labels["audio"].setText)

    def _action(
        self,
        menu: QtWidgets.QMenu,
        text: str,
        slot: Callable[..., object],
        shortcut: str = "",
        checkable: bool = False,
    ) -> QtGui.QAction:
        act = QtGui.QAction(text, self)
        if shortcut:
            act.setShortcut(QtGui.QKeySequence(shortcut))
        act.setCheckable(checkable)
        if checkable or not inspect.ismethod(slot):  # Qt's own slots pick their overload
            act.triggered.connect(slot)
        else:  # triggered(checked=False) must not become the slot's first argument
            # (a weak reference: a lambda holding the window would keep it alive in a cycle,
            # to be collected later in the middle of another window's painting)
            method = weakref.WeakMethod(slot)  # type: ignore[arg-type]

            def call(_checked: bool = False) -> None:
                bound = method()
                if bound is not None:
                    bound()

            act.triggered.connect(call)
        menu.addAction(act)
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        mb = self.menuBar()
        assert mb is not None

        def menu(title: str) -> QtWidgets.QMenu:
            m = mb.addMenu(title)
            assert m is not None
            return m

        session = menu("&Session")
        self.act_open = self._action(session, "Open recording…", self.ask_open_recording, "Ctrl+O")
        self.act_start = self._action(session, "Start / stop", self.toggle_running, "Space")
        self.act_mark = self._action(session, "Mark event", self.mark_event, "M")
        self.act_note = self._action(session, "Add note…", self.ask_note, "N")
        self.act_export = self._action(session, "Export report…", self.export_report, "Ctrl+E")
        self.act_record = self._action(
            session, "Record", self.toggle_recording, "Ctrl+R", checkable=True
        )
        self.act_record_video = self.video.build_session_action(session)
        self.act_calibrate = self._action(session, "Calibrate…", self.open_calibration, "Ctrl+K")
        session.addSeparator()
        self._action(session, "Quit", self.close, "Ctrl+Q")
        view = menu("&View")
        self.act_athlete = self._action(view, "Athlete view", self.toggle_athlete_view, "F2")
        # F2 also works while the athlete view has the focus (it gets this action too)
        self.act_athlete.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        self.act_raw = self._action(view, "Raw signal", self.set_raw, "R", checkable=True)
        self.act_raw.setChecked(self.traces.show_raw)
        self.act_pause = self._action(view, "Pause scrolling", self.set_paused, "P", checkable=True)
        self.act_mute = self._action(view, "Mute cues", self.set_muted, "Ctrl+M", checkable=True)
        self.act_mute.setChecked(self.cues.muted)
        # Every panel, so a closed one comes back: Qt's own toggle action of each dock
        # (checked while the dock is shown, whether closed by its X or by this menu).
        view.addSeparator()
        panels = view.addMenu("&Panels")
        assert panels is not None
        self.dock_actions: dict[str, QtGui.QAction] = {}
        for dock in self.docks:
            act = dock.toggleViewAction()
            assert act is not None
            panels.addAction(act)
            self.dock_actions[dock.windowTitle()] = act
        self._action(panels, "Show all panels", self.show_all_panels)
        settings = menu("Se&ttings")
        self._action(settings, "Settings…", self.open_settings, "Ctrl+,")
        self.review.build_menu(menu("&Replay"))
        help_menu = menu("&Help")
        self._action(help_menu, "About fireorder", self.show_about)

    # -- the session of the current source ---------------------------------------------------
    # One SessionController per source or file: a new one is made on every connect, so
    # nothing of the previous source (tally, marks, corrections, recorder) can leak.
    @property
    def session(self) -> LiveSession | None:
        return self.ctl.session if self.ctl is not None else None

    @property
    def tally(self) -> RepTally:
        return self.ctl.tally if self.ctl is not None else self._no_tally

    @property
    def recorder(self) -> Recorder | None:
        return self.ctl.recorder if self.ctl is not None else None

    @property
    def corrections(self) -> list[tuple[RepResult, RepResult]]:
        return self.ctl.corrections if self.ctl is not None else []

    def _make_device(self, choice: SourceChoice) -> Device:
        opts = dict(choice.options)
        if choice.kind == "simulator":
            opts.setdefault("realtime", self.threaded)
        if choice.kind == "file" and not self.threaded:
            opts["speed"] = None  # tests step the session: replay as fast as it is pumped
        return create(choice.kind, **opts)

    def _meta(self, device: str = "") -> SessionMeta:
        return SessionMeta(
            athlete=self.athlete_name, exercise=self.settings.exercise, device=device
        )

    def connect_source(self, choice: SourceChoice) -> None:
        """Open a source. A serial or BrainFlow board without a mapping is asked first what
        it sends (the table then lists its channels); Start opens it with the mapping."""
        if choice.kind in DISCOVERED_KINDS and "roles" not in choice.options:
            self.disconnect_source()
            self.source_panel.discover(choice, self.store.load_mapping(choice.device_id))
            return
        self._start_when_discovered = False
        self.source_panel.cancel_discovery()  # a look still running is for another source
        if choice.kind == "file" and choice.options.get("path"):
            # (a file given on the command line or from the Sessions tab: the panel says so,
            # not the simulator it was set to)
            self.source_panel.kind.setCurrentText("file")
            self.source_panel.file_path.setText(str(choice.options["path"]))
        self.disconnect_source()
        try:
            device = self._make_device(choice)
            marks = MarkKind.TRUTH if choice.kind == "simulator" else MarkKind.DEVICE
            ctl = SessionController(
                device,
                self.settings,
                meta=self._meta(),
                recordings_dir=self.recordings_dir,
                tally_window=self.prefs.recent_window_n,
                device_marks=marks,
            )
            info = ctl.open()
            picked = choice.options.get("roles")
            mapping = None if picked is not None else self.store.load_mapping(choice.device_id)
            if isinstance(picked, dict):  # mapped in the table: remembered for this device
                self.store.save_mapping(choice.device_id, picked)
            if mapping:  # remembered per device
                roles = {
                    Role(r): info.channel_names.index(n)
                    for r, n in mapping.items()
                    if n in info.channel_names
                }
                try:
                    ctl.apply_roles(roles)
                except Exception as exc:  # a stale mapping must not block the device
                    log.info("stored mapping ignored: %s", exc)
        except Exception as exc:
            self.show_error(f"cannot open {choice.kind}: {exc}")
            return
        ctl.meta = self._meta(info.source)
        ctl.session.on_verdict = self._verdict_ready.emit
        ctl.on_onset = self._on_onset
        ctl.on_rep = self._show_rep
        ctl.on_rep_final = self._on_rep_final
        ctl.on_rejudged = self._rejudged
        ctl.on_gap = self._on_gap
        ctl.on_mark = self._draw_mark
        ctl.on_state = self._on_state
        ctl.on_error = self.show_error
        ctl.on_recording_stopped = self._recording_stopped
        self.ctl = ctl
        self.markers_panel.attach(ctl, self.prefs)
        self._device_id = choice.device_id
        self._show_athlete_of(ctl)
        self._configure_views()
        # (a replay is judged with its recording's own settings: its neutral zone too)
        self.order_panel.history.set_tolerance(self._dsp_in_view().tolerance_ms)
        self._reuse_calibration()
        self._on_state(ctl.state)
        self._update_state_strip()

    _calibration_offer: QtWidgets.QMessageBox | None  # the stored-calibration question, open
    _replay_held: bool  # a replay paused until that question is answered
    _calibration_span: tuple[int, int] | None = None  # sample indices the wizard was open

    def _reuse_calibration(self) -> None:
        """The athlete's stored calibration: applied when it matches this source, mapping and
        is fresh, otherwise offered (Use / Don't use); never applied unseen -- the badge
        always shows what is in use. Nothing is looked up under the placeholder name, nor
        offered for another athlete's recording or when it cannot be applied (one short line
        says why, the whole reason in its tooltip). A replay waits while the question is open.
        """
        from app.calibration import offer_question
        from app.settings_store import is_athlete_name
        from devices.session.calibration import misfit, reuse_concerns

        ctl = self.ctl
        assert ctl is not None and ctl.info is not None
        self._calibration_span = None  # (the previous source's wizard: its sample indices)
        self.calibration_badge.set_calibration(None)
        name = self.source_panel.athlete.text().strip()  # (a replay: the recording's athlete)
        cal = self.store.load_calibration(name) if is_athlete_name(name) else None
        typed = (self._live_athlete or "").strip()
        if not cal:
            if (
                ctl.replay is not None
                and is_athlete_name(typed)
                and typed.casefold() != name.casefold()
                and self.store.load_calibration(typed)
            ):  # the name typed live: not this recording's athlete
                whose = f"{name}'s" if name else "of no named athlete"
                note = f"{typed}'s calibration not offered: the recording is {whose}"
                self.calibration_badge.set_calibration(None, note)
            return
        owner = self._recording_athlete(ctl)
        if owner and owner.casefold() != name.casefold():
            # a recording of someone else (the demo files are "demo"'s): not this calibration
            note = f"{name}'s calibration not offered: the recording is {owner}'s"
            self.calibration_badge.set_calibration(None, note)
            return
        wrong = misfit(cal, ctl.info, ctl.settings)
        if wrong is not None:
            self._calibration_misfit(name, *wrong)
            return
        recorded = self._recorded_setup(ctl)
        concerns = reuse_concerns(cal, ctl.info, recorded=recorded)
        if ctl.replay is not None and not concerns:
            # never applied unasked to a replay: it changes what the replay judges from what
            # the file's table, Sessions, `analyze` and its report say (a newcomer saw a rep
            # turn from "-21 undetermined" to "+4 simultaneous" with one status line)
            concerns = ["a replay is analysed without it (the Reps table, Sessions, reports)"]
        if not concerns:
            self._apply_stored_calibration(cal)
            return
        box = QtWidgets.QMessageBox(self)
        box.setObjectName("calibration_offer")
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Stored calibration")
        box.setText(offer_question(cal))
        box.setInformativeText(
            "It may not fit this session: " + "; ".join(concerns) + ". Without it, onsets "
            "are judged against the adaptive baseline; you can also calibrate again (Ctrl+K)."
        )
        use = box.addButton("Use", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        dont = box.addButton("Don't use", QtWidgets.QMessageBox.ButtonRole.RejectRole)
        if ctl.replay is not None:
            box.setDefaultButton(dont)  # (Return keeps a replay's verdicts as the file's)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(button: QtWidgets.QAbstractButton | None) -> None:
            if self.ctl is not ctl:
                return  # the source changed while the question was open
            if button is use:
                self._apply_stored_calibration(cal)
            else:
                self.calibration_badge.set_calibration(None, "stored calibration declined")
                self._say(f"stored calibration of {name} not used", 8000)

        def closed(_result: int) -> None:
            self._calibration_offer = None
            held, self._replay_held = self._replay_held, False
            replay = ctl.replay
            if held and self.ctl is ctl and replay is not None and replay.paused:
                self.replay_bar.toggle_play()  # the replay goes on where it waited
                self._update_state_strip()

        box.buttonClicked.connect(answered)
        box.finished.connect(closed)
        self._calibration_offer = box
        box.open()  # window-modal, not blocking: a live stream runs on meanwhile

    def _hold_replay_for_offer(self) -> None:
        """Start began a replay while the calibration question is open: it waits (paused)
        for the answer instead of playing on behind the question."""
        ctl = self.ctl
        replay = ctl.replay if ctl is not None else None
        if self._calibration_offer is None or replay is None or replay.paused:
            return
        replay.pause()
        self.replay_bar.play_btn.setText("Play")
        self._replay_held = True
        self._update_state_strip()

    @staticmethod
    def _recorded_setup(ctl: SessionController) -> tuple[str, datetime.datetime | None] | None:
        """A replayed recording's own source and start, from its sidecar (None: live, or a
        file fireorder did not record)."""
        from devices.files.bdf_format import read_sidecar, sidecar_part

        replay = ctl.replay
        if replay is None:
            return None
        doc = read_sidecar(replay.path)
        source = sidecar_part(doc, "stream").get("source")
        created = doc.get("created") if isinstance(doc, dict) else None
        try:
            began = datetime.datetime.fromisoformat(created) if isinstance(created, str) else None
        except ValueError:
            began = None
        if began is not None and began.tzinfo is None:
            began = began.replace(tzinfo=datetime.UTC)
        if not isinstance(source, str) and began is None:
            return None
        return (source if isinstance(source, str) else "", began)

    def _show_athlete_of(self, ctl: SessionController) -> None:
        """The athlete field names whose session is open: a replay's recording's athlete
        (none for a recording without one); back to a live source, the name typed for it.
        A name typed while a replay's is shown is the one typed for the next session."""
        field = self.source_panel.athlete
        shown = self._replay_athlete
        if ctl.replay is not None:
            if self._live_athlete is None or field.text() != shown:
                self._live_athlete = field.text()  # (typed since)
            self._replay_athlete = self._recording_athlete(ctl)
            field.setText(self._replay_athlete)
            return
        if self._live_athlete is not None and field.text() == shown:
            field.setText(self._live_athlete)
        self._live_athlete = self._replay_athlete = None

    @staticmethod
    def _recording_athlete(ctl: SessionController) -> str:
        """Whose recording a replay is (its sidecar's athlete; "" when live or unknown)."""
        from devices.files.bdf_format import read_sidecar, sidecar_part

        replay = ctl.replay
        if replay is None:
            return ""
        athlete = sidecar_part(read_sidecar(replay.path), "meta").get("athlete")
        return athlete.strip() if isinstance(athlete, str) else ""

    def _calibration_misfit(self, name: str, short: str, full: str) -> None:
        self.calibration_badge.set_calibration(None, f"stored calibration not usable: {full}")
        self._say(f"{name}'s calibration not used: {short}", 8000, full=f"{name}'s: {full}")

    def _apply_stored_calibration(self, cal: dict) -> None:
        assert self.ctl is not None
        why = self.ctl.apply_calibration(cal)
        if why is None:
            self.calibration_badge.set_calibration(cal)
            self._say(f"calibration of {cal.get('athlete')} reused", 5000)
        else:
            self._calibration_misfit(str(cal.get("athlete") or "stored"), "does not fit", why)

    def _build_calibration_badge(self) -> None:
        from app.calibration_badge import CalibrationBadge

        self.calibration_badge = CalibrationBadge()
        self._calibration_offer = None
        self._replay_held = False
        self.calibration_badge.clear_requested.connect(self._clear_calibration)
        # in the state strip, beside LIVE/REC: which calibration judges the reps is state
        # the technician must see at all times (the status bar has no room left at 1366 px)
        self.add_state_widget(self.calibration_badge)

    def _clear_calibration(self) -> None:
        if self.ctl is not None:
            self.ctl.clear_calibration()
        self.calibration_badge.set_calibration(None, "cleared")
        self._say("calibration cleared", 5000)

    @property
    def athlete_name(self) -> str:
        """The athlete typed in the source panel ("" when none: a recording names nobody)."""
        from app.settings_store import is_athlete_name

        name = self.source_panel.athlete.text().strip()
        return name if is_athlete_name(name) else ""

    def _configure_views(self) -> None:
        """Every view starts empty for the new session (nothing of the previous one)."""
        ctl = self.ctl
        assert ctl is not None and ctl.info is not None
        info = ctl.info
        self.onset_editor.clear()
        self.traces.configure(info)
        # a new stream begins at its own time 0: a file connected but not started showed the
        # previous source's time on its file-time axis (0:40-0:48 for a file at 0:00)
        self.traces.t_end = 0.0
        plot = self.traces.getPlotItem()
        for _, line in self.traces.marks:  # marks belong to the session that made them
            plot.removeItem(line)
        self.traces.marks.clear()
        self.rep_table.reset(info.fs)
        self.rep_table.detected_of = ctl.detected_of  # (rows of reps corrected by hand)
        self.replay_bar.attach(ctl.replay, info)
        if self.replay_toolbar.isVisible() != (ctl.replay is not None):
            self.replay_toolbar.setVisible(ctl.replay is not None)
            # the strip took (or gave back) height: the bottom docks keep their quarter
            bottom = [d for d in self.docks if d.windowTitle() == "Signal check"]
            self.resizeDocks(bottom, [max(150, self.height() // 4)], QtCore.Qt.Orientation.Vertical)
        self.review.attach(ctl)
        if ctl.replay is not None:
            # a reviewer works in the rep table; the signal check is the technician's, live
            reps_dock = next((d for d in self.docks if d.windowTitle() == "Reps"), None)
            if reps_dock is not None:
                reps_dock.raise_()
            from devices.files.sidecar import ReviewStore

            review = ReviewStore(ctl.replay.path)  # a sidecar it will not write into
            if review.notice and review.trouble:
                log.info("%s", review.notice)
                # The whole notice (the copy's path with it) is 150 characters; the status bar
                # leaves its messages about 400 px at 1366: the gist, the rest as its tooltip.
                trouble = review.trouble.removeprefix("has ").split(" (")[0]
                short = f"{trouble}: read-only, review kept in the data folder"
                self._say(short, 15000, full=review.notice)
        self.source_panel.show_mapping(info, self._device_id)
        self.source_panel.set_state(f"connected: {info.source or 'device'} at {info.fs:g} Hz")
        self.order_panel.tally = ctl.tally
        self.order_panel.reset()
        self.state_strip.clock.setText("")
        if self.athlete_view is not None:
            self.athlete_view.tally = ctl.tally
            self.athlete_view.reset()
        self.latencies.clear()
        self._frame_times.clear()
        for mark in ctl.marks:  # a replayed file's own marks and notes
            self._draw_mark(mark)
        prefix = "note: "  # (a note's mark label)
        self.rep_table.set_notes(
            [
                (m.index, m.label[len(prefix) :])
                for m in ctl.marks
                if m.kind == MarkKind.NOTE and m.label.startswith(prefix)
            ]
        )

    def disconnect_source(self) -> None:
        self.stop_recording()
        self.timer.stop()
        ctl, self.ctl = self.ctl, None
        self.rep_table.detected_of = lambda _rep: None  # (nor its corrections)
        if ctl is not None:
            ctl.detach()  # its last events are not this window's business any more
            ctl.close()
        self._on_state(SessionState.CLOSED)

    def _ready_to_open(self) -> bool:
        """A board's channels must be known and mapped before Start opens it: look at the
        board first (then start), or say once what the mapping lacks."""
        panel = self.source_panel
        choice = panel.choice()
        if panel.discovering and panel.looking_at == choice.kind:
            self._start_when_discovered = True  # starts when the look ends
            return False
        if choice.kind not in DISCOVERED_KINDS:
            return True
        if "roles" not in choice.options:
            self._start_when_discovered = True
            self.connect_source(choice)
            return False
        problem = panel.mapping_problem()
        if problem is not None:
            self.show_error(problem)
            return False
        return True

    def _source_kind_changed(self, _kind: str) -> None:
        """Another kind of source chosen while none streams: the signal check's rows were the
        stopped source's electrodes and would read as the new one's (a newcomer's finding)."""
        if self.ctl is None or self.ctl.state not in (SessionState.STREAMING, SessionState.PAUSED):
            self.signal_check.clear()

    def _discovered(self, found: object) -> None:
        """The table lists the board's channels: the views start empty on them."""
        from devices.drivers.discovery import Discovery

        assert isinstance(found, Discovery)
        self._error_shown = None
        fs = found.nominal_hz or 1000.0
        self.traces.configure(StreamInfo(fs, found.channel_names))
        self.rep_table.reset(fs)
        self.signal_check.clear()  # the previous source's electrodes
        self.order_panel.tally = self.tally
        self.order_panel.reset()
        self.state_strip.clock.setText("")  # no stream yet: no time of one
        if self.athlete_view is not None:
            self.athlete_view.reset()
        if self._start_when_discovered:  # Start (or autostart) came before the look ended
            self._start_when_discovered = False
            choice = self.source_panel.mapped_choice()
            problem = self.source_panel.mapping_problem()
            if choice is None or problem is not None:
                self.show_error(problem or "the board's channels are not known: Connect again")
                return
            self.connect_source(choice)
            if self.ctl is not None:
                self.start()

    def _discovery_failed(self, message: str) -> None:
        self._start_when_discovered = False
        self.show_error(message)

    def start(self) -> None:
        if self.ctl is None:
            if not self._ready_to_open():
                return
            self.connect_source(self.source_panel.choice())
        ctl = self.ctl
        if ctl is None:
            return
        running = ctl.state in (SessionState.STREAMING, SessionState.PAUSED)
        if running and not self._other_source_chosen():
            return
        if running and ctl.replay is None:
            # (a live stream, maybe recording, is never ended by a change in the panel)
            self._say("to open the source chosen, stop this one first (Space)", 6000)
            return
        # a fresh stream after a stop or an end; or another file picked in the panel while
        # one is replayed: Start opens that one
        ended = ctl.state in (SessionState.STOPPED, SessionState.ERROR, SessionState.FINISHED)
        if running or ended:
            if not self._ready_to_open():
                return
            self.connect_source(self.source_panel.choice())
            ctl = self.ctl
            if ctl is None:
                return
        ctl.start(threaded=self.threaded)
        self._hold_replay_for_offer()
        self.timer.start()

    def _other_source_chosen(self) -> bool:
        """The source panel names another source than the one open: another file than the
        one replayed, or another kind (a replay paused, the simulator picked: Start did
        nothing, silently)."""
        replay = self.ctl.replay if self.ctl is not None else None
        choice = self.source_panel.choice()
        path = choice.options.get("path")
        if replay is not None:
            if choice.kind != "file":
                return True
            return bool(path) and Path(str(path)).resolve() != Path(str(replay.path)).resolve()
        return choice.device_id != self._device_id

    def stop(self) -> None:
        """Stop the stream; a recording ends with it (saved and said so): a stopped source
        writes nothing more, and a file left open would read as still recording."""
        if self.ctl is not None:
            self.ctl.stop()  # (what was streamed before Stop still reaches the recorder)
            if self.ctl.recording:
                self.stop_recording()
        self.refresh()
        self.timer.stop()

    def toggle_running(self) -> None:
        """Space: start / stop a live source; play / pause a replay (from the start again
        once it has ended)."""
        ctl = self.ctl
        replay = ctl.replay if ctl is not None else None
        if ctl is not None and replay is not None:
            if ctl.state == SessionState.FINISHED:
                self.seek(0, paused=False)
                return
            if ctl.state in (SessionState.STREAMING, SessionState.PAUSED):
                if not (replay.paused and self.review.play_from_selected()):
                    self.replay_bar.toggle_play()
                self._update_state_strip()
                return
        if self.ctl is not None and self.ctl.state in (
            SessionState.STREAMING,
            SessionState.PAUSED,
        ):
            self.stop()
        else:
            self.start()

    def _mapping_changed(self, roles: dict[Role, int]) -> None:
        if self.ctl is None or self.ctl.info is None:
            return
        try:
            info = self.ctl.apply_roles(roles)
        except Exception as exc:
            self._say(f"mapping not applied: {exc}", 8000)
            return
        names = info.channel_names
        self.store.save_mapping(self._device_id, {r.value: names[i] for r, i in roles.items()})
        self.traces.configure(info)

    # -- the GUI timer slot: no DSP here -----------------------------------------------------------
    def refresh(self) -> None:
        ctl = self.ctl
        if ctl is None or ctl.info is None:
            return
        now = time.monotonic()
        self._frame_times.append(now)
        ctl.drain()  # routes the worker's events to the callbacks below
        s = ctl.session
        self.traces.reference = s.reference
        if not self.traces.paused:
            snap = s.snapshot(
                self.traces.window_s, self.traces.max_points, raw=self.traces.show_raw
            )
            self.traces.draw(snap)
            self.state_strip.set_clock(self.traces.t_end if self.traces.info else None)
        self.review.frame()
        if now - self._last_status > 0.25:  # text relayouts are costly; 4 Hz is readable
            self._last_status = now
            self._update_status(now)
            self.replay_bar.update_position()
            replay = ctl.replay
            if replay is not None and self.act_pause.isChecked() != replay.paused:
                self.act_pause.blockSignals(True)  # P's tick follows the transport
                self.act_pause.setChecked(replay.paused)
                self.act_pause.blockSignals(False)
            back = self.replay_bar.loop_target()
            if back is not None:
                self.seek(back)
        # Every frame, not at 4 Hz with the status bar: only a changed text costs anything, and
        # REC, PAUSED and the file name must never lag what the user just did.
        self._update_state_strip()

    # -- what the session reports (called from ctl.drain on the GUI thread) ------------------
    def _on_onset(self, ev: OnsetEvent) -> None:
        ctl = self.ctl
        self.traces.add_onset(ev.index / ctl.fs if ctl else 0.0, ev.channel)
        info = ctl.info if ctl is not None else None
        role = next((r for r, c in info.roles.items() if c == ev.channel), None) if info else None
        if role is not None:
            self.order_panel.onset_seen(role, ev.index)

    def _on_rep_final(self, ev: RepEnded) -> None:
        fs = self.ctl.fs if self.ctl is not None else 1.0
        r = ev.result
        if self.ctl is not None and self._calibrating_at(r.start):
            self.ctl.tally.remove(r.start)  # began in the wizard, ended after: still left out
        self.traces.add_rep(r.start / fs, ev.end / fs, r.order, r.start)
        self.rep_table.show_rep(r)
        self.order_panel.show_final(r, fs)
        self.review.keep_banner()
        if self.athlete_view is not None:
            self.athlete_view.show_final(r)

    def _on_gap(self, ev: GapEvent) -> None:
        fs = self.ctl.fs if self.ctl is not None else 1.0
        self._say(f"gap: {ev.length} samples lost at {ev.start / fs:.2f} s", 5000)

    def _draw_mark(self, mark: Mark) -> None:
        # The simulator's truth is recorded for checking, never shown: it would give the
        # answer away.
        if mark.kind != MarkKind.TRUTH and self.ctl is not None and self.ctl.fs:
            self.traces.add_mark(mark.index / self.ctl.fs, mark.label)
            self.review.marks_changed()

    def _state_text(self, state: SessionState, link: str | None = None) -> str:
        """The status bar's first field: a device's link, or a replayed file's transport (a
        file under review is not a device "streaming")."""
        replay = self.ctl.replay if self.ctl is not None else None
        if replay is None:
            return f"device: {link or state.value}"
        if state == SessionState.STREAMING:
            return "file: paused" if replay.paused else "file: playing"
        return f"file: {state.value}"

    def _on_state(self, state: SessionState) -> None:
        """The state is shown as it is: nothing says "streaming" once the stream stopped."""
        self._set_status("state", self._state_text(state))
        self._update_state_strip()
        if state not in (SessionState.STREAMING, SessionState.PAUSED):
            for key in ("rate", "latency", "fps", "buffer"):
                self._set_status(key, "")
            self.signal_check.mark_stale()  # its figures are the last run's, not live
        if state == SessionState.STREAMING:
            self.source_panel.set_state("streaming")
        elif state in (SessionState.STOPPED, SessionState.FINISHED, SessionState.PAUSED):
            self.source_panel.set_state(state.value)
        if state in (SessionState.STOPPED, SessionState.ERROR):
            self.order_panel.stream_stopped()  # a rep under way never ends: say so
            self.rep_table.stream_stopped()

    def _rejudged(self, ev: RepsRejudged) -> None:
        """The stream began mid-activity: its first reps were judged again once rest was
        seen; their records replace the first verdicts everywhere (the tally already)."""
        fs = self.ctl.fs if self.ctl is not None else 1.0
        self.rep_table.rejudge(ev.upto, ev.reps, ev.since)
        spans = [(r.start / fs, None if r.end is None else r.end / fs, r.order) for r in ev.reps]
        info = self.ctl.info if self.ctl is not None else None
        onsets = [
            (i / fs, info.roles[role])
            for r in ev.reps
            for role, i in r.onsets.items()
            if info is not None and i is not None and role not in r.censored
        ]
        self.traces.rejudge(ev.upto / fs, spans, onsets, ev.since / fs)
        self.order_panel.history.show_reps(self.tally.reps)
        self.order_panel.update_counts()
        # (short: the status bar's permanent fields leave little room)
        self._say(f"{len(ev.reps)} early rep(s) re-judged: rest seen late", 10000)

    def _show_rep(self, rep: RepResult) -> None:
        fs = self.ctl.fs if self.ctl is not None else 1.0
        if self.ctl is not None:
            self.latencies.append(time.monotonic() - self.ctl.event_arrived)
        self.rep_table.show_rep(rep)
        self.order_panel.show_rep(rep, fs)
        self.review.keep_banner()
        self.traces.add_rep(rep.start / fs, None, rep.order, rep.start)
        if self.cue_rules.should_cue(rep, self.tally.count):
            self.cues.play(rep.order)
            if self.recorder is not None:
                self.recorder.add_event(rep.decided_at, f"cue {rep.order}")
        if self.athlete_view is not None:
            self.athlete_view.show_rep(rep)
        self.rep_shown.emit(rep)

    def _update_recording_status(self) -> None:
        """REC with the time recorded so far: samples written over the rate, so it is the
        file's length (it stands still while the device delivers nothing)."""
        rec = self.recorder
        if rec is None:
            self.state_strip.set_recording(None)
            return
        info = self.ctl.info if self.ctl else None
        secs = rec.samples_written / info.fs if info else 0.0
        self.state_strip.set_recording(secs, str(rec.path))

    def _update_state_strip(self) -> None:
        """The strip's badges from the real state: the session's, the view's, the recorder's."""
        strip = self.state_strip
        ctl = self.ctl
        if ctl is None or ctl.info is None:
            strip.set_source(SessionState.CLOSED)
            strip.set_paused(self.traces.paused, False)
        else:
            state = ctl.state
            replay = ctl.replay
            link = ctl.device.link_state if state == SessionState.STREAMING else None
            strip.set_source(
                state, replay.path if replay is not None else None, link, ctl.info.source
            )
            strip.set_paused(self.traces.paused, state == SessionState.PAUSED)
        strip.set_raw(self.traces.show_raw)
        self._update_recording_status()

    def _set_status(self, key: str, text: str) -> None:
        label = self.status_labels[key]
        if label.text() != text:
            label.setText(text)

    def _update_status(self, now: float) -> None:
        ctl = self.ctl
        assert ctl is not None and ctl.info is not None
        s = ctl.session
        st = s.stats
        state = ctl.state
        # The driver knows more (e.g. "disconnected" while it reconnects); the session less.
        link = ctl.device.link_state if state == SessionState.STREAMING else None
        self._set_status("state", self._state_text(state, link))
        replay = ctl.replay
        if replay is None:
            self._set_status("dropped", f"dropped {st.lost_samples} ({st.gaps} gaps)")
        elif st.gaps:
            # A file drops nothing while it plays: what it has are the gaps it was recorded with.
            self._set_status("dropped", f"gaps in file {st.gaps} ({st.lost_samples} samples)")
        else:
            self._set_status("dropped", "")
        # what the traces can scroll back over (it read "buffer 100%", like an overflow)
        held_s = min(s.raw.end, s.raw.capacity) / ctl.fs if ctl.fs else 0.0
        self._set_status("buffer", f"history {held_s:.0f} s")
        live = state in (SessionState.STREAMING, SessionState.PAUSED)
        if now - self._last_quality > 1.0 and live:
            self._last_quality = now  # (a stopped stream's figures stay marked stale)
            self.signal_check.update_quality(ctl.info, s.quality_report(recent=True))
        if state != SessionState.STREAMING or (replay is not None and replay.paused):
            # no rate, latency or frame rate of a stream that does not run
            for key in ("rate", "latency", "fps"):
                self._set_status(key, "")
            return
        speed = replay.speed if replay is not None else None
        self._set_status("rate", rate_text(st.rate_hz, ctl.fs, replay is not None, speed))
        lat = np.median(self.latencies) * 1000 if self.latencies else float("nan")
        self._set_status("latency", f"latency {lat:.0f} ms" if np.isfinite(lat) else "latency —")
        if len(self._frame_times) > 1:
            span = self._frame_times[-1] - self._frame_times[0]
            self._set_status(
                "fps", f"{(len(self._frame_times) - 1) / span:.0f} fps" if span > 0 else ""
            )

    def show_error(self, message: str) -> None:
        if message == self._error_shown:
            return
        self._error_shown = message
        log.error("%s", message)
        self._say(message)
        self.source_panel.set_state(message)

    # -- actions ---------------------------------------------------------------------------------
    def mark_event(self) -> None:
        if self.ctl is None or self.ctl.info is None:
            return
        mark = self.ctl.mark()
        self._say(f"event marked at {mark.index / self.ctl.fs:.2f} s", 3000)

    def ask_open_recording(self) -> None:
        """Session ▸ Open recording…: pick a file and replay it (the recordings folder first)."""
        from app.source_panel import RECORDING_FILTER

        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open a recording", str(self.recordings_dir), RECORDING_FILTER
        )
        if path:
            self.open_recording(path)

    def open_recording(self, path: str) -> None:
        """Replay a recording (from the session browser, or ``fireorder FILE``)."""
        panel = self.source_panel
        panel.kind.setCurrentText("file")
        panel.file_path.setText(path)
        self.connect_source(panel.choice())
        self.start()

    def seek(self, index: int, paused: bool | None = None) -> None:
        """Replay: continue from sample ``index`` (the pipeline re-settles before it);
        ``paused`` holds it there (None: as the transport was)."""
        ctl = self.ctl
        built = self.review.index
        ends = [r.start if r.end is None else r.end for r in built.reps] if built else []
        if ctl is None or not ctl.seek(index, paused=paused, rep_ends=ends):
            return
        # the reps from there on are replayed: their rows wait for the replay's records
        # (the file's records as reviewed: a corrected rep's row stays corrected)
        finals = [ctl.reviewed(r) for r in built.reps] if built is not None else []
        self.rep_table.ahead_from(index, None if built is None else finals)
        if finals and index <= finals[0].start:
            # From before the first rep the file is played again from its start: the score
            # counts up again as it did live (it held the whole file's, and rep 1's cue then
            # replaced rep 1's final record in it: the side lines moved, the totals did not).
            ctl.tally.reset()
            if self.athlete_view is not None:
                self.athlete_view.reset()
            self.order_panel.history.show_reps(ctl.tally.reps)
            self.order_panel.update_counts()
        # A rep cued but not ended before the seek never ends in this pass: its count is the
        # file's final record (the cue may have been revised), not the cue.
        for cue in [r for r in ctl.tally.reps if r.end is None] if finals else ():
            final = next((r for r in finals if same_burst(cue, r)), None)
            if final is not None:
                ctl.tally.add(final)
        # The banner shows the file's last rep before the target, not the one on show before
        # the jump (after End it still said "rep 4" at the file's end)
        before = [r for r in finals if r.start < index]
        if before:
            self.order_panel.show_rep(before[-1], ctl.fs)
        elif finals:
            self.order_panel.clear_shown()
        self.timer.start()  # a replay that had reached its end runs again
        self.review.redraw_spans(index)
        from app.time_axis import clock_text

        self._say(f"replay from {clock_text(index / ctl.fs)}", 3000)

    def go_to_rep(self, start: int) -> None:
        """A click on a rep (its row, or its span on the traces). In a replay it is selected:
        shown, playback paused, its onsets as handles. Live, with the view paused, its onsets
        become movable lines (if it is on screen)."""
        ctl = self.ctl
        if ctl is None or ctl.info is None:
            return
        if ctl.replay is not None:
            self.review.select(start)
            return
        fs = ctl.fs
        rep = next((r for r in ctl.tally.reps if r.start == start), None)
        visible = self.traces.t_end - self.traces.window_s <= start / fs <= self.traces.t_end
        if self.traces.paused and rep is not None and visible:
            self.onset_editor.edit(rep, fs)
            self._say("drag an onset line to correct it", 5000)
            return
        self.seek(max(0, start - round(2 * fs)))

    def correct_onset(self, rep: RepResult, role: Role, index: int) -> None:
        """An onset handle was moved. In a replay this is an undoable step (Ctrl+Z)."""
        ctl = self.ctl
        if ctl is None or self.onset_editor.rep is None:
            return
        known = ctl.tally.reps if ctl.replay is None else self.review.reps()
        if all(r.start != rep.start for r in known):
            return  # a line left from another recording: never write it into this one
        if ctl.replay is not None:
            self.review.corrected(rep, role, index)
        else:
            self.apply_correction(rep, role, index)

    def apply_correction(self, rep: RepResult, role: Role, index: int) -> None:
        """Keep the detected rep; show and count the corrected one; save it with the file."""
        ctl = self.ctl
        if ctl is None:
            return
        fs = ctl.fs
        fixed, saved = ctl.correct(rep, role, index)
        if saved:  # the Sessions list and progress count it now, not after a Refresh
            self.sessions.refresh_soon()
        self.rep_table.show_rep(fixed, ctl.detected_of(fixed))
        self.order_panel.history.show_reps(ctl.tally.reps)
        self.order_panel.update_counts()
        self.onset_editor.update_rep(fixed)
        end = None if fixed.end is None else fixed.end / fs
        self.traces.add_rep(fixed.start / fs, end, fixed.order, fixed.start)
        from app.time_axis import clock_text

        # (short: the status bar's permanent fields leave it about 400 px at 1366)
        self._say(
            f"{role.value} → {clock_text(index / fs)}: {fixed.order.replace('_', ' ')}"
            + (" (saved)" if saved else ""),
            8000,
        )
        self.order_panel.show_rep(fixed, fs)  # the banner shows the rep being reviewed

    def toggle_recording(self) -> None:
        if self.recorder is None:
            self.start_recording()
        else:
            self.stop_recording()

    def start_recording(self) -> bool:
        ctl = self.ctl
        if ctl is None or ctl.info is None or ctl.recording:
            self.act_record.setChecked(ctl is not None and ctl.recording)
            return False
        ctl.meta = self._meta(ctl.info.source)
        try:
            path = ctl.start_recording()
        except RecordingError as exc:
            self.show_error(f"recording not started: {exc}")
            self.act_record.setChecked(False)
            return False
        self.act_record.setChecked(True)
        self.video.recording_started(path)  # the camera too, when Record video is on
        self._update_recording_status()
        self._say(f"recording to {path}", 5000)
        return True

    def stop_recording(self) -> None:
        self.act_record.setChecked(False)
        ctl = self.ctl
        summary = ctl.stop_recording() if ctl is not None else None
        self.video.recording_stopped(summary)
        if summary is not None:
            self._recording_saved(summary)

    def _recording_stopped(self, summary: RecordingSummary) -> None:
        self.act_record.setChecked(False)
        self.video.recording_stopped(summary)
        self._recording_saved(summary)

    def _recording_saved(self, summary: RecordingSummary) -> None:
        self._last_recording = str(summary.path)
        self._update_recording_status()
        self.sessions.refresh()
        if summary.error:
            self.show_error(summary.error)  # streaming and feedback go on
        else:
            self._say(f"saved {summary.path}", 8000)

    def recover_recordings(self) -> None:
        """Finalise recordings a crash left unfinished (what the app does on start)."""
        from devices.files.recorder import recover_folder

        try:
            reports = recover_folder(self.recordings_dir)
        except OSError as exc:
            log.warning("cannot check %s for unfinished recordings: %s", self.recordings_dir, exc)
            return
        if reports:
            names = ", ".join(str(r.path) for r in reports)
            self._say(f"repaired unfinished recordings: {names}", 10000)

    def export_report(self, out: str | None = None) -> object | None:
        """Report on the replayed file, or on the last recording of this window.
        Without ``out`` a save dialog asks where."""
        from app.export_dialog import export_report

        replay = self.ctl.replay if self.ctl is not None else None
        path = replay.path if replay is not None else self._last_recording
        if not path:
            self._say("nothing to report on: replay or record a session", 6000)
            return None
        info = self.ctl.info if self.ctl is not None else None
        channels = (
            {r.value: info.channel_names[i] for r, i in info.roles.items()}
            if info is not None and replay is not None
            else None
        )
        # the name in the field is only a fallback, for a replayed file that names no athlete
        # (typed for it); a recording that names its athlete keeps it, and the last recording
        # of a live session has the name it was recorded with (the field may name the next)
        typed = self.source_panel.athlete.text().strip() if replay is not None else ""
        meta = {"athlete": typed} if typed else {}
        self._export_job = export_report(
            self,
            str(path),
            channels,
            self._report_settings(str(path)),
            meta,
            out,
            last_dir=self.store.load_report_dir(),
            saved_to=self.store.save_report_dir,
            # which file the report is on: live, it is the last recording, not the stream
            caption=(
                f"Save report on {Path(path).name}"
                if replay is not None
                else f"Save report on the last recording, {Path(path).name}"
            ),
        )
        return self._export_job

    def _report_settings(self, path: str) -> DspSettings | SettingsSchedule:
        """The settings a report on ``path`` is judged with: those the replay follows (the
        recording's own, or the ones chosen for this replay), else the recording's own, so
        that the report gives the verdicts shown live and in the replay."""
        from devices.files.sidecar import recorded_settings

        ctl = self.ctl
        if ctl is not None and ctl.replay is not None:
            return ctl.schedule or ctl.settings_in_use
        return recorded_settings(path) or self.settings

    def ask_note(self) -> None:
        text, ok = QtWidgets.QInputDialog.getText(self, "Note", "Note at this moment:")
        if ok and text.strip():
            self.add_note(text.strip())

    def add_note(self, text: str) -> None:
        """A note at the newest sample (file time in a replay): on the traces, in the
        recording, and for a replayed file in its review (notes travel with the file)."""
        if self.ctl is None or self.ctl.info is None:
            return
        # A rep selected in review: the note is that rep's (it shows in its row)
        rep = self.review.rep(self.review.selected) if self.review.selected is not None else None
        _mark, saved = self.ctl.note(text, None if rep is None else rep.start)
        if rep is not None:
            self.rep_table.add_note(rep.start, text)
        self.review.marks_changed()
        self._say("note added" + (" and saved" if saved else ""), 4000)

    def set_raw(self, on: bool) -> None:
        self.traces.show_raw = bool(on)
        self._update_state_strip()

    def set_paused(self, on: bool) -> None:
        """P: live, the traces stop scrolling (the stream goes on); in a replay, playback
        itself pauses (the traces then show where it stands)."""
        ctl = self.ctl
        replay = ctl.replay if ctl is not None else None
        if replay is not None:
            self.traces.paused = False
            if bool(on) != replay.paused and (on or not self.review.play_from_selected()):
                self.replay_bar.toggle_play()
        else:
            self.traces.paused = bool(on)
        self._update_state_strip()

    def _onset_selected(self, role: Role | None) -> None:
        if role is not None:
            self._say(f"{role.label} onset: ←/→ 1 ms, Shift 10 ms, Esc", 6000)

    def show_all_panels(self) -> None:
        for dock in self.docks:
            dock.show()

    def set_muted(self, on: bool) -> None:
        self.cues.set_muted(bool(on))

    def toggle_athlete_view(self) -> None:
        from app.athlete_view import AthleteView

        if self.athlete_view is not None and self.athlete_view.isVisible():
            self.athlete_view.close()
            return
        if self.athlete_view is None:
            self.athlete_view = AthleteView(self.tally)
            # F2 in the athlete's window is this same action: the one toggle from both
            self.athlete_view.addAction(self.act_athlete)
            self.athlete_view.closed.connect(self._athlete_view_closed)
        self.athlete_view.show_on_screen(None, fullscreen=True)
        if self.tally.reps:
            self.athlete_view.show_rep(self.tally.reps[-1])

    def _athlete_view_closed(self) -> None:
        """Back to the operator's window, so its shortcuts work without a click."""
        if self.isVisible():
            self.activateWindow()

    def open_settings(self) -> None:
        from app.settings_dialog import SettingsDialog

        replay = self.ctl.replay if self.ctl is not None else None
        scope = None
        if self.ctl is not None and replay is not None:
            own = self.ctl.schedule is not None
            scope = (
                f"Filters, onset detector and verdict for this replay of {Path(replay.path).name}"
                + (": the settings it was recorded with." if own else ": chosen for it.")
                + " A change to them applies to this replay only; the live settings stay as they"
                " are. Display, cues and LSL apply as always."
            )
        dlg = SettingsDialog(self._dsp_in_view(), self.prefs, self, scope=scope)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.apply_settings(*dlg.result_settings())

    def _dsp_in_view(self) -> DspSettings:
        """The signal-processing settings of what the window shows: a replay's (the
        recording's own where it is), else the live ones."""
        if self.ctl is not None and self.ctl.replay is not None:
            return self.ctl.settings_in_use
        return self.settings

    def apply_settings(self, settings: DspSettings, prefs: GuiPrefs) -> None:
        from app.cues import CueRules

        folder_was = self.prefs.recordings_dir
        dsp_before = self._dsp_in_view()
        replaying = self.ctl is not None and self.ctl.replay is not None
        if not replaying:  # (a replay's settings are its own: the live ones are kept)
            self.settings = settings
            self.store.save_dsp(settings)
        self.prefs = prefs
        self.store.save_prefs(prefs)
        if prefs.recordings_dir != folder_was:  # the next recording goes there
            self.recordings_dir = prefs.recordings_dir or str(locations.default_recordings_dir())
            if self.ctl is not None:
                self.ctl.recordings_dir = Path(self.recordings_dir)
            self.sessions.folder = Path(self.recordings_dir)
            self.sessions.refresh()
        self.traces.window_s = prefs.window_s
        self.traces.show_raw = prefs.show_raw
        self.act_raw.setChecked(self.traces.show_raw)
        self.order_panel.history.set_tolerance(settings.tolerance_ms)
        self.tally.window = prefs.recent_window_n
        self.cue_rules = CueRules(mode=prefs.cue_mode, every_n=prefs.cue_every_n)
        self.cues.set_muted(prefs.cue_mute)
        self.cues.set_volume(prefs.cue_volume)
        if self.ctl is not None:
            void = self.ctl.apply_settings(settings)  # recorded when recording
            if void is not None:  # (the rest levels were in the old filters' units)
                self.calibration_badge.set_void(void)
            if self.ctl.replay is not None and settings != dsp_before:
                self.review.settings_changed()  # the file's reps as the new settings find them
        self.markers_panel.prefs_changed(prefs)  # the LSL verdict outlet on or off

    def open_calibration(self) -> None:
        from app.calibration import CalibrationWizard

        started = False
        if self.ctl is None or self.ctl.state != SessionState.STREAMING:
            # The wizard is modal: Start in the window cannot be pressed once it is open, so
            # the stream it needs is started here (a newcomer was stuck: "start the stream").
            paused = self.ctl is not None and self.ctl.state == SessionState.PAUSED
            if not paused:
                self.start()
            if self.ctl is None or self.ctl.state != SessionState.STREAMING:
                why = "the replay is paused: play it" if paused else "the source did not start"
                self._say(f"calibration needs a running stream: {why}", 8000)
                return
            started = True
            self._say("stream started for the calibration", 5000)
        if self.session is None:
            return
        name = self.source_panel.athlete.text().strip()  # the wizard asks when it is none
        wiz = CalibrationWizard(self.session, name, store=self.store, parent=self)
        if started:
            wiz.intro_page.note.setText("The stream was started for the calibration.")
        wiz.calibration_done.connect(self._calibrated)
        ctl, first = self.ctl, self.ctl.position if self.ctl is not None else 0
        wiz.finished.connect(lambda _result: self._leave_out_calibration_reps(ctl, first))
        wiz.open()

    def _leave_out_calibration_reps(self, ctl: SessionController | None, first: int) -> None:
        """Bursts detected while the wizard was open (a reference hold, a twitch at rest)
        are no exercise reps: they leave the session tally (the recording keeps them)."""
        if ctl is None or self.ctl is not ctl:
            return
        ctl.drain()  # (a rep decided during the last step, not yet routed)
        self._calibration_span = (first, ctl.position)
        gone = [r.start for r in ctl.tally.reps if self._calibrating_at(r.start)]
        for start in gone:
            ctl.tally.remove(start)
        if gone:
            self.order_panel.history.show_reps(ctl.tally.reps)
            self.order_panel.update_counts()
            self._say(f"{len(gone)} rep(s) during the calibration left out of the tally", 8000)

    def _calibrating_at(self, start: int) -> bool:
        """A rep starting at ``start`` began while the calibration wizard was open."""
        span = self._calibration_span
        return span is not None and span[0] <= start <= span[1]

    def _calibrated(self, result: dict) -> None:
        if self.ctl is not None:
            self.ctl.calibration_changed(result)  # the recording keeps the new calibration
        self.calibration_badge.set_calibration(result)
        name = str(result.get("athlete", ""))
        if self.source_panel.athlete.text().strip() != name:
            self.source_panel.athlete.setText(name)  # the session is that athlete's now
        self._say(f"calibration of {name} stored", 5000)

    def show_about(self) -> None:
        import platform

        import pyqtgraph
        from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

        from app import __version__

        QtWidgets.QMessageBox.about(
            self,
            "About fireorder",
            f"<b>fireorder {__version__}</b><br>Glute-vs-lumbar firing order biofeedback.<br><br>"
            f"Python {platform.python_version()} · Qt {QT_VERSION_STR} · PyQt {PYQT_VERSION_STR}"
            f" · pyqtgraph {pyqtgraph.__version__} · numpy {np.__version__}",
        )

    def showEvent(self, event: QtGui.QShowEvent | None) -> None:  # noqa: N802 (Qt API)
        if self._maximise_on_show:  # once: a window the user restored stays restored
            self._maximise_on_show = False
            self.setWindowState(self.windowState() | QtCore.Qt.WindowState.WindowMaximized)
        super().showEvent(event)

    def eventFilter(  # noqa: N802 (Qt API)
        self, watched: QtCore.QObject | None, event: QtCore.QEvent | None
    ) -> bool:
        if (
            event is not None
            and event.type() == QtCore.QEvent.Type.ShortcutOverride
            and isinstance(event, QtGui.QKeyEvent)
            and QtGui.QKeySequence(event.keyCombination()).toString() in self._menu_keys
        ):
            event.ignore()  # not overridden: the shortcut map triggers the menu's action
            return True
        return super().eventFilter(watched, event)

    def closeEvent(self, event: QtGui.QCloseEvent | None) -> None:  # noqa: N802 (Qt API)
        self.source_panel.cancel_discovery()
        self.disconnect_source()
        self.video.shutdown()
        if self.athlete_view is not None:
            self.athlete_view.close()
        super().closeEvent(event)


__all__ = ["CalibrationResult", "MainWindow"]
