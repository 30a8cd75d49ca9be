"""Review: the rep table (click a rep to go there) and the replay transport for file sources."""

from __future__ import annotations

import bisect
import logging
import threading
from typing import TypeVar

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

from app.theme import VERDICT_COLOR
from devices.drivers.base import Replay
from dsp.contract import StreamInfo
from dsp.reps import RepResult, SideResult, Verdict
from dsp.settings import DspSettings

log = logging.getLogger(__name__)
SPEEDS = ("0.25", "0.5", "1", "2", "4", "8")

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


def side_text(name: str, side: SideResult, rep: RepResult) -> str:
    """``left: lumbar first (-98 ms)``; while a lumbar-first rep waits for its glutes the side
    is pending, not "undetermined"."""
    if side.lag_ms is None and rep.lag_ms is None and rep.lag_below_ms is not None:
        return f"{name}: glute not yet fired"
    if side.lag_ms is None and not rep.reason:
        # a side without a lag in a rep judged whole: say which muscle gave no onset
        suffix = "_l" if name == "left" else "_r"
        missing = [
            "glute" if role.is_glute else "lumbar"
            for role, index in rep.onsets.items()
            if role.value.endswith(suffix) and index is None
        ]
        if missing and rep.end is None:  # decided; the rep's end may still bring it
            return f"{name}: {' and '.join(missing)} not yet fired"
        if missing:
            return f"{name}: no {' or '.join(missing)} onset"
    lag = "—" if side.lag_ms is None else f"{side.lag_ms:+.0f} ms"
    return f"{name}: {side.order.replace('_', ' ')} ({lag})"


class RepTable(QtWidgets.QTableWidget):
    """One row per rep: time, onsets, lag, verdict, per side, reason. Rows update when a rep
    ends (its final record). ``rep_clicked`` carries the rep's start index."""

    rep_clicked = QtCore.pyqtSignal(int)
    #: rows kept: 8 items a rep made the table the window's largest growth over hours
    #: (issue 11); older reps are in the recording, and in the tally's counts
    MAX_ROWS = 500

    HEAD = ("rep", "time s", "lag ms (95 %)", "verdict", "left", "right", "onsets (s)", "note")

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(0, len(self.HEAD), parent)
        self.setHorizontalHeaderLabels(list(self.HEAD))
        rows, columns = self.verticalHeader(), self.horizontalHeader()
        assert rows is not None and columns is not None  # a QTableWidget always has both
        rows.setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        columns.setStretchLastSection(True)
        # The lag with its interval ("+62 (+38…+82)") must read on one line.
        self.setWordWrap(False)
        mode = QtWidgets.QHeaderView.ResizeMode.ResizeToContents
        columns.setSectionResizeMode(2, mode)
        self.fs = 1.0
        self._starts: list[int] = []  # row -> rep start index (a rep's identity in replay)
        self._above = 0  # rows dropped from the top: the first row's rep number - 1
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
        self._above = 0

    def show_rep(self, rep: RepResult) -> None:
        row = bisect.bisect_left(self._starts, rep.start)
        if row == len(self._starts) or self._starts[row] != rep.start:
            self.insertRow(row)
            self._starts.insert(row, rep.start)
        onsets = ", ".join(
            f"{r.value} {i / self.fs:.3f}" for r, i in rep.onsets.items() if i is not None
        )

        def side(result: SideResult | None) -> str:
            return "" if result is None else result.order.replace("_", " ")

        note = rep.reason
        if rep.rejudged:
            note = "re-judged once rest was seen" + (f"; {note}" if note else "")
        cells = [
            str(row + 1 + self._above),
            f"{rep.start / self.fs:.2f}",
            lag_text(rep.lag_ms, rep.lag_ci_ms),
            rep.order.replace("_", " "),
            side(rep.left),
            side(rep.right),
            onsets,
            note,
        ]
        for col, text in enumerate(cells):
            item = QtWidgets.QTableWidgetItem(text)
            if col == 3:
                color = QtGui.QColor(VERDICT_COLOR[Verdict(rep.order)])
                color.setAlpha(90)
                item.setBackground(QtGui.QBrush(color))
            self.setItem(row, col, item)
        if row == self.rowCount() - 1:
            self.scrollToBottom()
        if self.rowCount() > self.MAX_ROWS:  # drop the row farthest from the one just shown
            far = 0 if row >= self.rowCount() // 2 else self.rowCount() - 1
            self.removeRow(far)
            del self._starts[far]
            self._above += far == 0

    def rejudge(self, upto: int, reps: tuple[RepResult, ...]) -> None:
        """The reps before sample ``upto`` were judged again: these rows replace theirs."""
        for row in range(len(self._starts) - 1, -1, -1):
            if self._starts[row] < upto:
                self.removeRow(row)
                del self._starts[row]
        for rep in reps:
            self.show_rep(rep)
        for row in range(self.rowCount()):  # renumber
            item = self.item(row, 0)
            if item is not None:
                item.setText(str(row + 1 + self._above))

    def _clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._starts):
            self.rep_clicked.emit(self._starts[row])


class ReplayBar(QtWidgets.QWidget):
    """Play/pause, speed, a seek slider, previous/next rep, for a file being replayed.

    Rep starts for previous/next come from a quick offline pass over the file, run on a
    background thread (the GUI thread does no DSP)."""

    seek_requested = QtCore.pyqtSignal(int)  # sample index
    _reps_ready = QtCore.pyqtSignal(object)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.play_btn = _named(QtWidgets.QPushButton("Pause"), "replay_play")
        self.speed = _named(QtWidgets.QComboBox(), "replay_speed")
        self.speed.addItems([*SPEEDS, "fast"])
        self.speed.setCurrentText("1")
        self.prev_btn = _named(QtWidgets.QPushButton("◀ rep"), "replay_prev")
        self.next_btn = _named(QtWidgets.QPushButton("rep ▶"), "replay_next")
        self.slider = _named(QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal), "replay_seek")
        self.slider.setRange(0, 1000)
        self.time = _named(QtWidgets.QLabel("0:00 / 0:00"), "replay_time")
        self.a_btn = _named(QtWidgets.QPushButton("A"), "replay_a")
        self.b_btn = _named(QtWidgets.QPushButton("B"), "replay_b")
        self.loop = _named(QtWidgets.QCheckBox("loop A–B"), "replay_loop")
        for b, tip in ((self.a_btn, "loop start = now"), (self.b_btn, "loop end = now")):
            b.setMaximumWidth(28)
            b.setToolTip(tip)
        self.loop_range: tuple[int, int] | None = None
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(4, 0, 4, 0)
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
        self.source: Replay | None = None
        self.info: StreamInfo | None = None
        self._generation = 0
        self.rep_starts: list[int] = []
        self._dragging = False
        self.play_btn.clicked.connect(self.toggle_play)
        self.speed.currentTextChanged.connect(self._speed)
        self.prev_btn.clicked.connect(lambda: self.jump_rep(-1))
        self.next_btn.clicked.connect(lambda: self.jump_rep(+1))
        self.slider.sliderPressed.connect(lambda: setattr(self, "_dragging", True))
        self.slider.sliderReleased.connect(self._released)
        self._reps_ready.connect(self._set_reps)
        self.a_btn.clicked.connect(lambda: self.set_loop_point(0))
        self.b_btn.clicked.connect(lambda: self.set_loop_point(1))

    def attach(
        self,
        source: Replay | None,
        info: StreamInfo | None = None,
        settings: DspSettings | None = None,
    ) -> None:
        """Follow a replay's transport (None hides the bar). The rep index for previous /
        next comes from the session's own settings and channel roles, so it lists the reps
        the replay shows."""
        self.source = source
        self.info = info
        self.setVisible(source is not None)
        self.rep_starts = []
        self._generation += 1  # an index still being built for the previous file is dropped
        if source is None or info is None:
            return
        self.play_btn.setText("Play" if source.paused else "Pause")
        self.speed.blockSignals(True)
        speed = source.speed
        self.speed.setCurrentText("fast" if speed is None else f"{speed:g}")
        self.speed.blockSignals(False)
        args = (source.samples(), info, settings, self._generation)
        threading.Thread(target=self._find_reps, args=args, daemon=True).start()

    def _find_reps(
        self, data: np.ndarray, info: StreamInfo, settings: DspSettings | None, generation: int
    ) -> None:
        from dsp.analysis import analyze

        try:
            result = analyze(data[:, : len(info.channel_names)], info, settings)
            self._reps_ready.emit((generation, [r.start for r in result.reps]))
        except Exception as exc:  # navigation is a convenience: never break replay
            log.warning("rep index for replay not built: %s", exc)

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

    def _set_reps(self, found: tuple[int, list[int]]) -> None:
        generation, starts = found
        if generation == self._generation:
            self.rep_starts = list(starts)

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
        if self.source is not None:
            self.source.set_speed(None if text == "fast" else float(text))

    def _released(self) -> None:
        self._dragging = False
        src = self.source
        if src is not None and src.n_samples:
            self.seek_requested.emit(int(self.slider.value() / 1000 * src.n_samples))

    def jump_rep(self, step: int, now: int | None = None) -> None:
        src = self.source
        if src is None or not self.rep_starts:
            return
        pos = src.position if now is None else now
        starts = np.array(self.rep_starts)
        # a little before the rep, so its onsets are on screen when it plays
        assert self.info is not None
        margin = round(2 * self.info.fs)
        if step > 0:
            # past the rep we may be positioned before already, so repeated presses advance
            later = starts[starts > pos + margin + 1]
            target = int(later[0]) if later.size else None
        else:
            earlier = starts[starts < pos - margin - 1]
            target = int(earlier[-1]) if earlier.size else None
        if target is not None:
            self.seek_requested.emit(max(0, target - margin))

    def update_position(self) -> None:
        src = self.source
        if src is None or not src.n_samples or self._dragging:
            return
        wanted = "Play" if src.paused else "Pause"  # the transport may change under the bar
        if self.play_btn.text() != wanted:
            self.play_btn.setText(wanted)
        self.slider.blockSignals(True)
        self.slider.setValue(int(1000 * src.position / src.n_samples))
        self.slider.blockSignals(False)
        fs = self.info.fs if self.info is not None else 1.0

        def clock(n: int) -> str:
            s = int(n / fs)
            return f"{s // 60}:{s % 60:02d}"

        self.time.setText(f"{clock(src.position)} / {clock(src.n_samples)}")
