"""Review: the rep table (click a rep to go there) and the replay transport for file sources."""

from __future__ import annotations

import bisect
import html
import logging
from collections.abc import Callable, Collection, Iterable
from typing import TypeVar

from PyQt6 import QtCore, QtGui, QtWidgets

from app.theme import VERDICT_COLOR
from app.time_axis import clock_text
from devices.drivers.base import Replay
from devices.session.tally import same_burst
from dsp.contract import Role, StreamInfo
from dsp.reps import RepResult, SideResult, Verdict

log = logging.getLogger(__name__)
SPEEDS = ("0.1", "0.25", "0.5", "1", "2", "4", "8")  # the window offers these of 0.1-8x

SLIDER_STEPS = 10_000  # a slider step is 0.01 % of the file (an hour: 0.36 s)
KEYS_HINT = "Space play/pause · ←/→ rep · Home/End · +/− zoom · click a rep to correct"

_W = TypeVar("_W", bound=QtWidgets.QWidget)


def _named(widget: _W, name: str) -> _W:
    """``widget`` with its Qt object name set (what tests and the style sheet find it by)."""
    widget.setObjectName(name)
    return widget


def lag_text(lag_ms: float | None, ci_ms: tuple[float, float] | None) -> str:
    """``+49 (-39…+63)``: the lag and its 95 % interval, in ms."""
    if lag_ms is None:
        return "—"
    if ci_ms is None:
        return f"{lag_ms:+.0f}"
    return f"{lag_ms:+.0f} ({ci_ms[0]:+.0f}…{ci_ms[1]:+.0f})"


def verdict_lag_text(rep: RepResult) -> str:
    """The lag as the banner and the athlete view show it: ``-82 ms``; ``< -20 ms`` for a rep
    decided lumbar-first while the glutes were still at rest (the rep's end fills in the
    measured lag); ``—`` when there is none."""
    if rep.lag_ms is not None:
        return f"{rep.lag_ms:+.0f} ms"
    if rep.lag_below_ms is not None:
        return f"< {rep.lag_below_ms:+.0f} ms"
    return "—"


def wrapped_tip(text: str) -> str:
    """A tooltip that wraps (Qt wraps rich text, and draws plain text on one line)."""
    return f"<p>{html.escape(text)}</p>"


#: a side of a rep decided but not ended, whose onset the rep's end may still bring (short:
#: the side columns fit their contents, and would widen for each such rep)
PENDING_SIDE = "pending"


def side_text(
    name: str,
    side: SideResult,
    rep: RepResult,
    fired: Collection[Role] = (),
    stopped: bool = False,
) -> str:
    """``left: lumbar first (-98 ms)``; while a lumbar-first rep waits for its glutes the side
    is pending, not "undetermined". ``fired``: roles whose onset came after the verdict (the
    rep's final record, at its end, judges the side with them). ``stopped``: the stream
    stopped before the rep ended, so a side still pending is never judged: undetermined, as
    its row says (the banner said "lumbar fired, judged at the rep's end")."""
    if stopped and rep.end is None and side.lag_ms is None:
        return f"{name}: undetermined"
    if side.lag_ms is None and rep.lag_ms is None and rep.lag_below_ms is not None:
        glute = Role.GLUTE_L if name == "left" else Role.GLUTE_R
        if glute in fired and rep.end is None:
            return f"{name}: glute fired, judged at the rep's end"
        return f"{name}: glute not yet fired"
    if side.lag_ms is None and not rep.reason:
        # a side without a lag in a rep judged whole: say which muscle gave no onset
        suffix = "_l" if name == "left" else "_r"
        roles = [
            role
            for role, index in rep.onsets.items()
            if role.value.endswith(suffix) and index is None
        ]
        missing = ["glute" if role.is_glute else "lumbar" for role in roles]
        if missing and rep.end is None and all(role in fired for role in roles):
            return f"{name}: {' and '.join(missing)} fired, judged at the rep's end"
        if missing and rep.end is None:  # decided; the rep's end may still bring it
            return f"{name}: {' and '.join(missing)} not yet fired"
        if missing:
            return f"{name}: no {' or '.join(missing)} onset"
    lag = "—" if side.lag_ms is None else f"{side.lag_ms:+.0f} ms"
    return f"{name}: {side.order.replace('_', ' ')} ({lag})"


class RepTable(QtWidgets.QTableWidget):
    """One row per rep: file time, lag, verdict, per side, onsets, the machine's reason and
    the reviewer's notes. Rows update when a rep ends (its final record) or is corrected (the
    detected lag and verdict stay beside the corrected ones). ``rep_clicked`` carries the
    rep's start index."""

    rep_clicked = QtCore.pyqtSignal(int)
    #: rows kept: 8 items a rep made the table the window's largest growth over hours
    #: (issue 11); older reps are in the recording, and in the tally's counts
    MAX_ROWS = 500

    HEAD = (
        "rep",
        "time",
        "lag ms (95 %)",
        "verdict",
        "left",
        "right",
        "onsets (s)",
        "reason",
        "note",
    )
    ONSETS, REASON, NOTE = 6, 7, 8

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(0, len(self.HEAD), parent)
        self.setHorizontalHeaderLabels(list(self.HEAD))
        rows, columns = self.verticalHeader(), self.horizontalHeader()
        assert rows is not None and columns is not None  # a QTableWidget always has both
        rows.setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        # Every column as wide as its content (the onsets, a lag with its interval, a
        # corrected lag with the detected one beside it); the notes take what is left.
        columns.setStretchLastSection(True)
        self.setWordWrap(False)
        mode = QtWidgets.QHeaderView.ResizeMode.ResizeToContents
        for col in range(len(self.HEAD) - 1):
            columns.setSectionResizeMode(col, mode)
        # The onsets (four "glute_l 12.345" entries) took half the width and pushed the reason
        # a rep is undetermined out of view: they get the width of about two, cut with "…",
        # the whole list as the cell's tooltip; the column can be dragged wider.
        columns.setSectionResizeMode(self.ONSETS, QtWidgets.QHeaderView.ResizeMode.Interactive)
        self.setColumnWidth(
            self.ONSETS, self.fontMetrics().horizontalAdvance("glute_l 00.000, glute_r 00.000, …")
        )
        self.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        self.fs = 1.0
        self._starts: list[int] = []  # row -> rep start index (a rep's identity in replay)
        self._spans: dict[int, int] = {}  # rep start -> end (where its notes may fall)
        # rows filled in ahead from the file's index (its final records), not yet played
        self._ahead: dict[int, RepResult] = {}
        self._notes: list[tuple[int, str]] = []  # (sample index, text) of the file's notes
        self._above = 0  # rows dropped from the top: the first row's rep number - 1
        self.limit_rows = True  # live: the newest MAX_ROWS reps
        # the detector's record of a rep shown corrected (None: not corrected), so a row
        # re-made from a later record of the rep (a second pass, the file reopened) still
        # says what it was: the session sets it
        self.detected_of: Callable[[RepResult], RepResult | None] = lambda _rep: None
        self.cellClicked.connect(self._clicked)

    def reset(self, fs: float | None = None) -> None:
        """Empty the table for a new stream sampled at ``fs`` Hz.

        This overrides the QAbstractItemView.reset() slot, which Qt itself calls without an
        argument (on a model reset): that call only resets the view, as the base class does."""
        if fs is None:
            super().reset()
            return
        self.setRowCount(0)
        self.fs = fs
        self._starts.clear()
        self._spans.clear()
        self._ahead.clear()
        self._notes.clear()
        self._above = 0

    def set_notes(self, notes: list[tuple[int, str]]) -> None:
        """The file's notes (sample index, text): each shows in the row of the rep it is in."""
        self._notes = sorted(notes)
        for row, start in enumerate(self._starts):
            self._show_notes(row, start)

    def stream_stopped(self) -> None:
        """The stream stopped: a side still waiting for its rep's end never gets it (its row
        said "pending" on): undetermined, as the banner says."""
        for row in range(self.rowCount()):
            for col in (4, 5):
                item = self.item(row, col)
                if item is not None and item.text() == PENDING_SIDE:
                    item.setText("undetermined")

    def add_note(self, index: int, text: str) -> None:
        self._notes.append((index, text))
        self._notes.sort()
        for row, start in enumerate(self._starts):
            self._show_notes(row, start)

    def _show_notes(self, row: int, start: int) -> None:
        end = self._spans.get(start, start)
        texts = [t for i, t in self._notes if start <= i <= max(end, start)]
        item = self.item(row, self.NOTE)
        text = "; ".join(texts)
        if item is None:
            self.setItem(row, self.NOTE, QtWidgets.QTableWidgetItem(text))
        elif item.text() != text:
            item.setText(text)

    def note_text(self, start: int) -> str:
        row = self.row_of(start)
        item = None if row is None else self.item(row, self.NOTE)
        return "" if item is None else item.text()

    def row_of(self, start: int) -> int | None:
        row = bisect.bisect_left(self._starts, start)
        return row if row < len(self._starts) and self._starts[row] == start else None

    def select_rep(self, start: int) -> None:
        row = self.row_of(start)
        if row is not None:
            self.selectRow(row)
            item = self.item(row, 0)
            if item is not None:
                self.scrollToItem(item)

    def show_ahead(self, rep: RepResult) -> None:
        """A rep of the file's index (its final record), shown before the replay reaches it
        so that it can be picked; the replay's own record of it replaces the row."""
        if self.row_of(rep.start) is None:
            self._put_row(rep, None)
            self._ahead[rep.start] = rep

    def ahead_from(
        self, start: int, index: list[RepResult] | None, keep: Iterable[int] = ()
    ) -> None:
        """A replay seeks: the rows from sample ``start`` on will be replayed. They show the
        file's index (its final records) until then, and the replay's records replace them,
        so that a rep cued but not ended before the seek does not stay as its cue. Rows of
        reps starting at ``keep`` (corrected by hand) stay as they are."""
        if index is None:
            return  # (the index is not built yet: the replay's records update the rows)
        keep = set(keep)
        for row in range(len(self._starts) - 1, -1, -1):
            gone = self._starts[row]
            if gone >= start and gone not in keep:
                self.removeRow(row)
                del self._starts[row]
                self._ahead.pop(gone, None)
        for rep in index:
            if rep.start >= start and rep.start not in keep:
                self.show_ahead(rep)
        # The rows came in at the bottom and took the view there (the file's end after Home):
        # show where the replay goes on, unless the reviewer picked a row.
        row = min(bisect.bisect_left(self._starts, start), self.rowCount() - 1)
        item = self.item(row, 0) if row >= 0 and not self.selectedItems() else None
        if item is not None:
            self.scrollToItem(item, QtWidgets.QAbstractItemView.ScrollHint.PositionAtTop)

    def drop_ahead(self, keep: Iterable[int] = ()) -> None:
        """Remove every row shown from the file's index and not yet replayed (an index built
        again), but those of reps starting at ``keep`` (corrected by hand)."""
        keep = set(keep)
        for start in sorted(self._ahead, reverse=True):
            row = self.row_of(start)
            if start in keep:
                continue
            if row is not None:
                self.removeRow(row)
                del self._starts[row]
            del self._ahead[start]

    def _ahead_of(self, rep: RepResult) -> bool:
        """A row shown from the file's index is ``rep``'s burst."""
        if rep.start in self._ahead:
            return True
        return any(same_burst(rep, ahead) for ahead in self._ahead.values())

    def _drop_ahead_rows_of(self, rep: RepResult) -> None:
        """Rows shown ahead for the burst ``rep`` is (:func:`same_burst`): a rep of a file
        that began without rest is re-judged in the index, so the replay's first record of
        it has another start."""
        for start, ahead in sorted(self._ahead.items(), reverse=True):
            row = self.row_of(start)
            if row is None:
                del self._ahead[start]
            elif start != rep.start and same_burst(rep, ahead):
                self.removeRow(row)
                del self._starts[row]
                del self._ahead[start]

    def show_rep(self, rep: RepResult, detected: RepResult | None = None) -> None:
        """Show ``rep``'s row (a new row, or its row updated). ``detected``: the rep as the
        detector gave it, for a corrected rep."""
        if rep.end is None and self._ahead_of(rep):
            # A replay's rep under way: its row keeps the file's final record until the rep
            # ends (the cue, a side still pending, read as the row turning undetermined).
            return
        if self._ahead:
            if rep.start in self._ahead:
                del self._ahead[rep.start]
            else:
                self._drop_ahead_rows_of(rep)
        self._put_row(rep, detected)

    def _put_row(self, rep: RepResult, detected: RepResult | None) -> None:
        detected = detected or self.detected_of(rep)
        row = bisect.bisect_left(self._starts, rep.start)
        inserted = row == len(self._starts) or self._starts[row] != rep.start
        if inserted:
            self.insertRow(row)
            self._starts.insert(row, rep.start)
        if rep.end is not None:
            self._spans[rep.start] = rep.end
        onsets = ", ".join(
            f"{r.value} {i / self.fs:.3f}" for r, i in rep.onsets.items() if i is not None
        )

        def side(result: SideResult | None) -> str:
            if result is None:
                return ""
            if rep.end is None and result.lag_ms is None and result.order == "undetermined":
                # decided, not ended: the rep's end may bring this side's onset (the banner
                # said "lumbar fired, judged at the rep's end" beside "undetermined")
                return PENDING_SIDE
            return result.order.replace("_", " ")

        reason = rep.reason
        if rep.rejudged:
            reason = "re-judged once rest was seen" + (f"; {reason}" if reason else "")
        lag = lag_text(rep.lag_ms, rep.lag_ci_ms)
        verdict = rep.order.replace("_", " ")
        if rep.cued is not None:
            verdict += f" (cue: {rep.cued.replace('_', ' ')})"
        if detected is not None and detected is not rep:
            lag += f" (detected {lag_text(detected.lag_ms, None)})"
            if detected.order != rep.order:
                verdict += f" (was {detected.order.replace('_', ' ')})"
        cells = [
            str(row + 1 + self._above),  # (in time order: rows re-judged later keep their place)
            clock_text(rep.start / self.fs),
            lag,
            verdict,
            side(rep.left),
            side(rep.right),
            onsets,
            reason,
        ]
        for col, text in enumerate(cells):
            item = QtWidgets.QTableWidgetItem(text)
            if col in (self.ONSETS, self.REASON) and text:
                item.setToolTip(wrapped_tip(text))  # (cut to the column's width)
            if col in (4, 5) and text == PENDING_SIDE:
                item.setToolTip("judged at the rep's end: this side's onset may still come")
            if col == 3 and reason:
                item.setToolTip(wrapped_tip(reason))  # why it is undetermined, where one looks
            if col == 3:
                color = QtGui.QColor(VERDICT_COLOR[Verdict(rep.order)])
                color.setAlpha(90)
                item.setBackground(QtGui.QBrush(color))
            self.setItem(row, col, item)
        self._show_notes(row, rep.start)
        if inserted:
            for later in range(row + 1, self.rowCount()):  # renumber the rows after it
                number = self.item(later, 0)
                if number is not None:
                    number.setText(str(later + 1 + self._above))
        if row == self.rowCount() - 1 and not self.selectedItems():
            self.scrollToBottom()
        # (a replay lists the whole file, every rep to be picked: a file's reps are bounded)
        if self.limit_rows and self.rowCount() > self.MAX_ROWS:  # drop the row farthest away
            far = 0 if row >= self.rowCount() // 2 else self.rowCount() - 1
            self.removeRow(far)
            self._spans.pop(self._starts[far], None)
            del self._starts[far]
            self._above += far == 0

    def rejudge(self, upto: int, reps: tuple[RepResult, ...], since: int = 0) -> None:
        """The reps from sample ``since`` to ``upto`` were judged again: these rows replace
        theirs (the rows before ``since``, another pipeline's, stay)."""
        for row in range(len(self._starts) - 1, -1, -1):
            if since <= self._starts[row] < upto:
                self.removeRow(row)
                del self._starts[row]
        for rep in reps:
            self.show_rep(rep)

    def _clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._starts):
            self.rep_clicked.emit(self._starts[row])


class ReplayBar(QtWidgets.QWidget):
    """Play/pause, speed, a seek slider, previous/next rep, for a file being replayed.

    Rep starts for previous/next come from the replay index (app/replay_index.py), an
    offline pass over the file on a background thread (the GUI thread does no DSP)."""

    seek_requested = QtCore.pyqtSignal(int)  # sample index
    #: ◀ rep / rep ▶ (-1 / +1): the review's one rep cursor moves (the ←/→ keys' too), so
    #: the buttons select, bannered and in the table, exactly what the keys would
    step_requested = QtCore.pyqtSignal(int)
    #: the speed box was changed (None: as fast as it goes), for the source panel's box
    speed_changed = QtCore.pyqtSignal(object)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.play_btn = _named(QtWidgets.QPushButton("Pause"), "replay_play")
        self.speed = _named(QtWidgets.QComboBox(), "replay_speed")
        self.speed.addItems([*SPEEDS, "fast"])
        self.speed.setCurrentText("1")
        self.prev_btn = _named(QtWidgets.QPushButton("◀ rep"), "replay_prev")
        self.next_btn = _named(QtWidgets.QPushButton("rep ▶"), "replay_next")
        self.slider = _named(QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal), "replay_seek")
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip("drag to seek (or click the overview strip above the traces)")
        self.time = _named(QtWidgets.QLabel("0:00.000 / 0:00"), "replay_time")
        # the widest text it will hold, so the slider does not shift as the time changes
        self.time.setMinimumWidth(
            self.time.fontMetrics().horizontalAdvance("00:00.000 / 00:00") + 8
        )
        self.a_btn = _named(QtWidgets.QPushButton("A"), "replay_a")
        self.b_btn = _named(QtWidgets.QPushButton("B"), "replay_b")
        self.loop = _named(QtWidgets.QCheckBox("loop"), "replay_loop")
        self.loop.setToolTip("loop from A to B")
        for b, tip in (
            (self.a_btn, "loop start = now"),
            (self.b_btn, "loop end = now"),
            (self.prev_btn, "previous rep (←)"),
            (self.next_btn, "next rep (→)"),
            (self.play_btn, "play / pause (Space, P)"),
        ):
            # as wide as their text: the style's minimum button width (80 px) for each of
            # them left the slider too little of a 1366 px window
            b.setFixedWidth(b.fontMetrics().horizontalAdvance(max(b.text(), "Pause")) + 20)
            b.setToolTip(tip)
        self.loop_range: tuple[int, int] | None = None
        # One row, the slider taking all the width the buttons leave (with the window
        # maximised on a 1366 px screen about 900 px: a pixel is 70 ms of a minute's file);
        # the overview strip above it spans the whole window too. Keys are in the Replay menu
        # and the tooltip.
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(4, 0, 4, 2)
        for w in (
            self.play_btn,
            self.speed,
            self.prev_btn,
            self.next_btn,
            self.a_btn,
            self.b_btn,
            self.loop,
        ):
            row.addWidget(w)
        row.addWidget(self.slider, 1)
        row.addWidget(self.time)
        self.setToolTip(KEYS_HINT)
        self.source: Replay | None = None
        self.info: StreamInfo | None = None
        self.rep_starts: list[int] = []
        self._dragging = False
        self.play_btn.clicked.connect(self.toggle_play)
        self.speed.currentTextChanged.connect(self._speed)
        self.prev_btn.clicked.connect(lambda: self.step_requested.emit(-1))
        self.next_btn.clicked.connect(lambda: self.step_requested.emit(+1))
        self.slider.sliderPressed.connect(lambda: setattr(self, "_dragging", True))
        self.slider.sliderReleased.connect(self._released)
        # a click on the groove (or PgUp/PgDn on the focused slider) seeks too
        self.slider.actionTriggered.connect(self._slider_action)
        self.a_btn.clicked.connect(lambda: self.set_loop_point(0))
        self.b_btn.clicked.connect(lambda: self.set_loop_point(1))

    def attach(self, source: Replay | None, info: StreamInfo | None = None) -> None:
        """Follow a replay's transport (None hides the bar)."""
        self.source = source
        self.info = info
        self.setVisible(source is not None)
        self.rep_starts = []
        if source is None or info is None:
            return
        self.play_btn.setText("Play" if source.paused else "Pause")
        self.speed.blockSignals(True)
        speed = source.speed
        self.speed.setCurrentText("fast" if speed is None else f"{speed:g}")
        self.speed.blockSignals(False)

    def set_rep_starts(self, starts: list[int]) -> None:
        """The file's reps (from the replay index), for previous / next."""
        self.rep_starts = sorted(starts)

    def set_loop_point(self, which: int, index: int | None = None) -> None:
        """Set the loop start (0) or end (1) to ``index`` (default: the current position)."""
        if self.source is None:
            return
        pos = self.source.position if index is None else index
        a, b = self.loop_range or (0, self.source.n_samples)
        a, b = (pos, max(b, pos + 1)) if which == 0 else (min(a, pos - 1), pos)
        self.loop_range = (max(0, a), b)

    def loop_target(self) -> int | None:
        """Where to jump back to, if looping and the replay has passed the loop's end."""
        if self.source is None or not self.loop.isChecked() or self.loop_range is None:
            return None
        a, b = self.loop_range
        return a if self.source.position >= b else None

    def toggle_play(self) -> None:
        src = self.source
        if src is None:
            return
        if src.paused:
            src.play()
            self.play_btn.setText("Pause")
        else:
            src.pause()
            self.play_btn.setText("Play")

    def _speed(self, text: str) -> None:
        speed = None if text == "fast" else float(text)
        if self.source is not None:
            self.source.set_speed(speed)
        self.speed_changed.emit(speed)

    def set_speed(self, speed: float | None) -> None:
        """The replay at ``speed`` (None: fast), shown in the box (the source panel's speed
        box changed it: one speed, whichever box set it)."""
        text = "fast" if speed is None else f"{speed:g}"
        if self.speed.findText(text) < 0:
            self.speed.addItem(text)
        self.speed.blockSignals(True)  # (no echo back to the panel)
        self.speed.setCurrentText(text)
        self.speed.blockSignals(False)
        if self.source is not None:
            self.source.set_speed(speed)

    def _released(self) -> None:
        self._dragging = False
        src = self.source
        if src is not None and src.n_samples:
            self.seek_requested.emit(int(self.slider.value() / SLIDER_STEPS * src.n_samples))

    def _slider_action(self, action: int) -> None:
        if action in (
            QtWidgets.QAbstractSlider.SliderAction.SliderMove.value,
            QtWidgets.QAbstractSlider.SliderAction.SliderNoAction.value,
        ):
            return  # a drag: seek once, on release
        QtCore.QTimer.singleShot(0, self._released)  # after the slider took its new value

    def update_position(self) -> None:
        src = self.source
        if src is None or not src.n_samples or self._dragging:
            return
        # the transport may change under the bar; at the end, Play starts it again
        wanted = "Play" if src.paused or src.position >= src.n_samples else "Pause"
        if self.play_btn.text() != wanted:
            self.play_btn.setText(wanted)
        self.slider.blockSignals(True)
        self.slider.setValue(int(SLIDER_STEPS * src.position / src.n_samples))
        self.slider.blockSignals(False)
        fs = self.info.fs if self.info is not None else 1.0
        now = clock_text(src.position / fs)
        self.time.setText(f"{now} / {clock_text(src.n_samples / fs, millis=False)}")
