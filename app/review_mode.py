"""Review of a replayed file in the window: navigation in file time, rep selection, onset
handles with keyboard nudges, and undo/redo of corrections.

The window owns the session; this object owns what only a replay has (the overview strip,
the file's rep index, the Replay menu's actions and the undo stack) and is attached to each
new session, so nothing of one file is left when the next is opened.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from PyQt6 import QtCore, QtGui, QtWidgets

from app.overview import OverviewStrip
from app.replay_index import ReplayIndex, ReplayIndexer
from app.settings_store import WINDOW_S_RANGE
from dsp.contract import Role
from dsp.reps import RepResult

if TYPE_CHECKING:
    from devices.session.controller import SessionController

log = logging.getLogger(__name__)

#: where a selected rep is shown: its start this far into the traces' window
SHOW_AT = 0.3


class CorrectionCommand(QtGui.QUndoCommand):
    """One onset moved by hand; undo puts it back where it was (both are kept in the
    review's log, the last one counts)."""

    def __init__(self, review: ReviewMode, start: int, role: Role, before: int, after: int):
        super().__init__(f"move {role.value} onset")
        self.review, self.start, self.role = review, start, role
        self.before, self.after = before, after

    def redo(self) -> None:
        self.review.apply_correction(self.start, self.role, self.after)

    def undo(self) -> None:
        self.review.apply_correction(self.start, self.role, self.before)


class ReviewMode(QtCore.QObject):
    def __init__(self, window: Any) -> None:
        """``window``: the MainWindow (not imported here: it imports this module)."""
        super().__init__(window)
        self.win = window
        self.overview = OverviewStrip(window)  # (a Qt child from the start: see give_to_plot)
        self.indexer = ReplayIndexer()
        self.indexer.ready.connect(self._index_ready)
        self.index: ReplayIndex | None = None
        self.undo = QtGui.QUndoStack(self)
        self.selected: int | None = None  # start index of the selected rep
        self.overview.seek_requested.connect(self.centre_on)
        self.overview.zoom_requested.connect(self.zoom_to)
        # ◀ rep / rep ▶ move the same cursor as ←/→ (they kept their own and disagreed)
        window.replay_bar.step_requested.connect(self.step_rep)
        # playing, the rep a step went to (the replay resumes 2 s before it, where the rep
        # on show is still the one before): the next step goes on from it
        self._aimed: int | None = None
        self._aim_seen = False  # the traces were drawn in the lead-in before the aim
        self._completed = False  # the finished replay's tally was made the file's whole
        self._drawn_view: tuple[float, float] | None = None

    # -- the session ----------------------------------------------------------------------
    @property
    def ctl(self) -> SessionController | None:
        ctl = self.win.ctl
        return ctl if ctl is not None and ctl.replay is not None else None

    def attach(self, ctl: SessionController | None) -> None:
        """A new session: a replay gets its strip and index; anything else hides them."""
        self.undo.clear()
        self.selected = None
        self._aimed = None
        self._completed = False
        self.index = None
        self._drawn_view = None
        self.overview.clear_data()
        replay = ctl.replay if ctl is not None else None
        self.overview.setVisible(replay is not None)
        self.win.rep_table.limit_rows = replay is None
        self.win.traces.set_file_time(replay is not None)
        for act in self.actions:
            act.setEnabled(replay is not None)
        self.win.video.attach(ctl)  # the replayed file's video, if it has one
        if ctl is None or replay is None or ctl.info is None:
            self.indexer.build(None, None, None)
            return
        self.overview.duration = replay.n_samples / ctl.fs
        self._build_index(ctl)

    def settings_changed(self) -> None:
        """New settings in a replay: the file's index (overview spans, ←/→, the rows ahead)
        is built again with them; the reps already played keep what the replay said."""
        ctl = self.ctl
        if ctl is None or ctl.info is None:
            return
        self._build_index(ctl)

    def _build_index(self, ctl: SessionController) -> None:
        """The file's index with the settings the replay follows: the recording's own (from
        its start, with each change it had), or those the user chose for it."""
        schedule = ctl.schedule
        if schedule is not None:
            self.indexer.build(ctl.replay, ctl.info, schedule.start, schedule.changes)
        else:
            self.indexer.build(ctl.replay, ctl.info, ctl.settings)

    def _index_ready(self, index: ReplayIndex) -> None:
        if self.ctl is None:
            return
        again = self.index is not None
        self.index = index
        self.ctl.set_file_reps([r.start for r in index.reps])  # (the rows' numbers)
        self.win.replay_bar.set_rep_starts([r.start for r in index.reps])
        if again:
            # rebuilt after a settings change: the rows not yet played show the new index (a
            # row corrected by hand stays as the reviewer left it)
            self.win.rep_table.drop_ahead(c.start for pair in self.ctl.corrections for c in pair)
        # every rep of the file in the table from the start, to be picked in any order (rows
        # of reps already played keep what the replay said)
        # (a rep only cued, not yet ended -- the one under way when new settings came -- has
        # no record of its own in the table: its row stays the file's until it ends)
        played = _Played([r for r in self.ctl.tally.reps if r.end is not None])
        for rep in index.reps:
            if played.record_of(rep) is None:
                # (a rep corrected before, saved with the file: as the reviewer left it)
                self.win.rep_table.show_ahead(self.ctl.reviewed(rep))
        if self.selected is None:
            self.win.rep_table.scrollToTop()  # (the rows came in at the bottom: the file's start)
        if index.overview is not None:
            index.overview.marks = self._marks()
            self.overview.set_data(index.overview)
            self._redraw_reps()

    def _marks(self) -> list[tuple[float, str]]:
        ctl = self.ctl
        if ctl is None or not ctl.fs:
            return []
        from devices.session.controller import MarkKind

        return [(m.index / ctl.fs, m.label) for m in ctl.marks if m.kind != MarkKind.TRUTH]

    def marks_changed(self) -> None:
        if self.ctl is not None and self.index is not None:
            self.overview.set_marks(self._marks())

    def reps(self) -> list[RepResult]:
        """Every rep of the file: as played (with corrections) where played, else from the
        index."""
        ctl = self.ctl
        played = {r.start: r for r in ctl.tally.reps} if ctl is not None else {}
        known = {}
        if ctl is not None and self.index is not None:
            known = {r.start: ctl.reviewed(r) for r in self.index.reps}
        index = _Played(list(known.values()))
        for start, seen in played.items():
            # (an index built with other settings than the rep was played with dates the
            # burst a few ms elsewhere: one record of it, the replay's)
            whole = index.record_of(seen)
            if whole is not None and whole.start != start:
                del known[whole.start]
            if seen.end is None and whole is not None and whole.end is not None:
                # decided but not yet ended when playback stopped: the file says where it ends
                seen = dataclasses.replace(seen, end=whole.end)  # noqa: PLW2901
            known[start] = seen
        return [known[k] for k in sorted(known)]

    def rep(self, start: int) -> RepResult | None:
        return next((r for r in self.reps() if r.start == start), None)

    def _redraw_reps(self) -> None:
        ctl = self.ctl
        if ctl is None or not ctl.fs:
            return
        fs = ctl.fs
        self.overview.set_reps(
            [(r.start / fs, (r.end or r.start) / fs, r.order) for r in self.reps()]
        )

    def redraw_spans(self, index: int) -> None:
        """After a seek to ``index``: the traces' rep spans and onset markers are those of the
        reps before it (the seek's pre-roll reports none, and spans of reps still open at the
        old place must not stretch to the new one)."""
        # (every seek comes here: a step's aim is left behind, and an ended replay runs again)
        self._aimed = None
        self._completed = False
        ctl = self.ctl
        info = ctl.info if ctl is not None else None
        if ctl is None or info is None or not ctl.fs:
            return
        fs, traces = ctl.fs, self.win.traces
        lo = index - round(60 * fs)  # (the traces hold at most 30 s)
        near = [r for r in self.reps() if lo <= r.start <= index]
        spans = [
            (r.start / fs, None if r.end is None or r.end > index else r.end / fs, r.order)
            for r in near
        ]
        onsets = [
            (i / fs, info.roles[role])
            for r in near
            for role, i in r.onsets.items()
            if i is not None and i <= index and role in info.roles and role not in r.censored
        ]
        traces.clear_events()
        for (start, end, order), rep in zip(spans, near, strict=True):
            traces.add_rep(start, end, order, rep.start)
        traces.rejudge(0.0, [], onsets)  # (replaces the markers with these)

    # -- every frame ------------------------------------------------------------------------
    def frame(self) -> None:
        ctl = self.ctl
        if ctl is None:
            return
        traces = self.win.traces
        self.win.onset_editor.follow(traces.t_end)
        self.win.video.follow(traces.t_end)  # the video at the traces' newest sample
        view = (traces.t_end, traces.window_s)
        if view != self._drawn_view:
            self._drawn_view = view
            self.overview.set_view(*view)
        if self._aimed is not None and traces.t_end * ctl.fs < self._aimed:
            self._aim_seen = True
        from devices.session.controller import SessionState

        if ctl.state == SessionState.FINISHED and not self._completed and self.index is not None:
            self._completed = True
            self._complete_tally()

    def _complete_tally(self) -> None:
        """The replay reached the file's end: its tally (and lag history) is the file's whole,
        every rep once, whatever was skipped by seeks and steps before. A rep never played
        (or cued but not ended in this pass) counts as the file's index has it, reviewed."""
        ctl = self.ctl
        if ctl is None or self.index is None:
            return
        from devices.session.tally import same_burst

        tally = ctl.tally
        added = 0
        for rep in self.index.reps:
            final = ctl.reviewed(rep)
            seen = [r for r in tally.reps if same_burst(r, final)]
            if not seen or all(r.end is None for r in seen):
                tally.add(final)
                added += 1
        if added:
            log.info("replay ended: %d rep(s) not played in this pass counted from the file", added)
            self.win.order_panel.history.show_reps(tally.reps)
            self.win.order_panel.update_counts()
            self._redraw_reps()

    # -- navigation -------------------------------------------------------------------------
    def _seek(self, index: int, paused: bool | None = None) -> None:
        ctl = self.ctl
        if ctl is None:
            return
        index = max(0, min(int(index), ctl.replay.n_samples if ctl.replay else index))
        self.win.seek(index, paused=paused)

    def centre_on(self, t: float) -> None:
        """The overview was clicked at file time ``t``: show it mid-window."""
        ctl = self.ctl
        if ctl is not None:
            self._seek(round((t + self.win.traces.window_s / 2) * ctl.fs))

    def zoom_to(self, a: float, b: float) -> None:
        """Show file time ``a``..``b`` in the traces, paused there."""
        ctl = self.ctl
        if ctl is None:
            return
        lo, hi = WINDOW_S_RANGE
        width = min(max(b - a, lo), hi)
        self.set_window(width)
        self._seek(round((a + width) * ctl.fs), paused=True)

    def set_window(self, seconds: float) -> None:
        lo, hi = WINDOW_S_RANGE
        self.win.traces.window_s = float(min(max(seconds, lo), hi))
        self.win.onset_editor.follow(self.win.traces.t_end)

    def zoom(self, factor: float) -> None:
        """+/-: a narrower (``factor`` < 1) or wider window, ending where it ends now."""
        self.set_window(self.win.traces.window_s * factor)

    def home(self) -> None:
        self._seek(0)

    def end(self) -> None:
        ctl = self.ctl
        if ctl is not None and ctl.replay is not None:
            self._seek(ctl.replay.n_samples, paused=True)

    def step_rep(self, step: int) -> None:
        """←/→: the previous / next rep. Paused, it is shown and selected; playing, the replay
        goes on from just before it."""
        ctl = self.ctl
        if ctl is None or ctl.replay is None:
            return
        starts = [r.start for r in self.reps()]
        if not starts:
            self.win._say("no reps found in this file yet", 3000)
            return
        here = self.cursor(starts)
        if here is None:  # before the first rep: → goes to it
            i = 0 if step > 0 else -1
        elif step > 0:
            i = bisect.bisect_right(starts, here)
        else:
            i = bisect.bisect_left(starts, here) - 1
        if not 0 <= i < len(starts):
            self.win._say("no more reps " + ("after" if step > 0 else "before") + " this one", 3000)
            return
        if ctl.replay.paused:
            self.select(starts[i])
        else:
            self.win.replay_bar.seek_requested.emit(max(0, starts[i] - round(2 * ctl.fs)))
            self._aimed = starts[i]  # (after the seek, which forgets the last aim)
            self._aim_seen = False
            # the cursor in sight: its row and (until the replay's own records come) its
            # verdict on the banner, not the rep shown before the jump
            rep = self.rep(starts[i])
            if rep is not None:
                self.win.rep_table.select_rep(rep.start)
                self.win.order_panel.show_rep(rep, ctl.fs)

    def play_from_selected(self) -> bool:
        """Play with a rep selected (paused, shown): the replay goes on from just before that
        rep, as a step while playing does. The rep was shown by moving the replay to the end
        of a window that holds it, 7 s on at 10 s: playing from there skipped the reps
        between, unplayed and uncounted. False when there is nothing to move back for."""
        ctl = self.ctl
        if ctl is None or ctl.replay is None or not ctl.fs or not self.selected_on_show():
            return False
        start = self.selected
        assert start is not None
        if ctl.position <= start:
            return False
        self._seek(max(0, start - round(2 * ctl.fs)), paused=False)
        self._aimed, self._aim_seen = start, False  # (after the seek, which forgets the aim)
        # played, it is picked no more: a pause and Play again go on from there (they jumped
        # back to it each time), and the banner follows the replay
        self.selected = None
        self.win.onset_editor.clear()
        return True

    def cursor(self, starts: list[int]) -> int | None:
        """The one rep cursor of ←/→ and ◀ rep / rep ▶ (the start of a rep in ``starts``, None
        before the first): paused, the selected rep; else the rep a step while playing went
        to, until the replay is past it; else the rep on show (the last one started by the
        traces' newest sample: the one the banner shows)."""
        ctl = self.ctl
        if ctl is None or ctl.replay is None:
            return None
        if self.selected_on_show():
            return self.selected
        now = round(self.win.traces.t_end * ctl.fs)
        # (until the traces have been drawn before the aim, they show where the replay was:
        # the seek is the worker's, done a frame or two later)
        if self._aimed is not None and (not self._aim_seen or now < self._aimed):
            return self._aimed
        i = bisect.bisect_right(starts, now) - 1
        return starts[i] if i >= 0 else None

    def select(self, start: int) -> None:
        """Select the rep starting at ``start``: shown in the traces, playback paused there,
        its onsets as handles."""
        ctl = self.ctl
        rep = self.rep(start)
        if ctl is None or rep is None or ctl.replay is None:
            return
        fs, traces = ctl.fs, self.win.traces
        self.selected = start
        t0, t1 = traces.t_end - traces.window_s, traces.t_end
        end = rep.end if rep.end is not None else rep.start
        shown = ctl.replay.paused and t0 <= rep.start / fs and end / fs <= t1 and traces.t_end > 0
        if not shown:
            target = rep.start + round(traces.window_s * (1 - SHOW_AT) * fs)
            self._seek(max(target, end + round(0.1 * fs)), paused=True)
            traces.t_end = min(target, ctl.replay.n_samples) / fs  # (drawn at the next frame)
        else:
            ctl.replay.pause()
        self.win.onset_editor.edit(rep, fs)
        self.win.rep_table.select_rep(start)
        self.win.order_panel.show_rep(rep, fs)  # its verdict on the banner
        self.win._say(f"rep {rep.index + 1}: drag an onset, or ] then ←/→; Ctrl+Z undoes", 8000)

    def selected_on_show(self) -> bool:
        """A rep is selected and still in the traces. Played on past it (or sought away from
        it) it is left behind: the banner and ←/→ follow the rep on show instead (they
        stayed on "rep 4" to the file's end)."""
        ctl, traces = self.ctl, self.win.traces
        if self.selected is None or ctl is None or not ctl.fs:
            return False
        t = self.selected / ctl.fs
        return traces.t_end - traces.window_s <= t <= traces.t_end + 0.5  # (0.5: a frame late)

    def keep_banner(self) -> None:
        """A rep selected in review keeps the banner while later reps arrive (a seek's last
        seconds, playback): the reviewer reads the rep being corrected."""
        ctl = self.ctl
        on_show = self.selected if self.selected_on_show() and ctl else None
        rep = self.rep(on_show) if on_show is not None else None
        if rep is not None and ctl is not None:
            self.win.order_panel.show_rep(rep, ctl.fs)

    def deselect(self) -> None:
        if self.win.onset_editor.current is not None:
            self.win.onset_editor.select(None)  # Esc: first the handle, then the rep
            return
        self.selected = None
        self.win.onset_editor.clear()

    def left_right(self, step: int, big: bool = False) -> None:
        """←/→ nudge the selected onset handle (±1 ms, Shift ±10 ms); with no handle
        selected they go rep to rep."""
        ms = (10.0 if big else 1.0) * step
        if not self.win.onset_editor.nudge(ms):
            self.step_rep(step)

    # -- corrections --------------------------------------------------------------------------
    def corrected(self, rep: RepResult, role: Role, index: int) -> None:
        """A handle was moved: one undoable step."""
        before = rep.onsets.get(role)
        if before is None or before == index:
            return
        self.undo.push(CorrectionCommand(self, rep.start, role, before, index))

    def apply_correction(self, start: int, role: Role, index: int) -> None:
        rep = self.rep(start)
        if rep is None or self.ctl is None:
            return
        self.win.apply_correction(rep, role, index)
        self._redraw_reps()

    # -- actions ----------------------------------------------------------------------------
    def build_menu(self, menu: QtWidgets.QMenu) -> None:
        """The Replay menu: every key of review, so it can be found (enabled in replay)."""
        win = self.win
        act = win._action
        bar = win.replay_bar
        # (Space is Session ▸ Start / stop's key, which plays and pauses a replay: shown here
        # beside the item, not bound twice)
        self.act_play = act(menu, "Play / pause\tSpace", win.toggle_running)
        self.act_loop_a = act(menu, "Loop start here (A)", lambda *_: bar.a_btn.click())
        self.act_loop_b = act(menu, "Loop end here (B)", lambda *_: bar.b_btn.click())
        self.act_loop = act(menu, "Loop A–B", bar.loop.setChecked, checkable=True)
        bar.loop.toggled.connect(self.act_loop.setChecked)  # (one state, either control)
        menu.addSeparator()
        self.act_prev = act(
            menu, "Previous rep / nudge onset −1 ms", lambda *_: self.left_right(-1), "Left"
        )
        self.act_next = act(
            menu, "Next rep / nudge onset +1 ms", lambda *_: self.left_right(+1), "Right"
        )
        self.act_prev10 = act(
            menu, "Nudge onset −10 ms", lambda *_: self.left_right(-1, True), "Shift+Left"
        )
        self.act_next10 = act(
            menu, "Nudge onset +10 ms", lambda *_: self.left_right(+1, True), "Shift+Right"
        )
        self.act_onset_next = act(
            menu, "Select next onset", lambda *_: win.onset_editor.cycle(+1), "]"
        )
        self.act_onset_prev = act(
            menu, "Select previous onset", lambda *_: win.onset_editor.cycle(-1), "["
        )
        self.act_deselect = act(menu, "Deselect", self.deselect, "Esc")
        menu.addSeparator()
        self.act_home = act(menu, "Go to start", self.home, "Home")
        self.act_end = act(menu, "Go to end", self.end, "End")
        self.act_zoom_in = act(menu, "Zoom in", lambda *_: self.zoom(0.5), "+")
        self.act_zoom_in.setShortcuts([QtGui.QKeySequence("+"), QtGui.QKeySequence("=")])
        self.act_zoom_out = act(menu, "Zoom out", lambda *_: self.zoom(2.0), "-")
        menu.addSeparator()
        self.act_undo = self.undo.createUndoAction(self, "Undo")
        self.act_redo = self.undo.createRedoAction(self, "Redo")
        assert self.act_undo is not None and self.act_redo is not None
        self.act_undo.setShortcut(QtGui.QKeySequence.StandardKey.Undo)
        self.act_redo.setShortcuts(
            [QtGui.QKeySequence("Ctrl+Shift+Z"), QtGui.QKeySequence("Ctrl+Y")]
        )
        menu.addAction(self.act_undo)
        menu.addAction(self.act_redo)
        win.addAction(self.act_undo)
        win.addAction(self.act_redo)
        self.actions = [
            self.act_play,
            self.act_loop_a,
            self.act_loop_b,
            self.act_loop,
            self.act_prev,
            self.act_next,
            self.act_prev10,
            self.act_next10,
            self.act_onset_next,
            self.act_onset_prev,
            self.act_deselect,
            self.act_home,
            self.act_end,
            self.act_zoom_in,
            self.act_zoom_out,
            *win.video.build_replay_actions(menu),
        ]
        for a in self.actions:
            a.setEnabled(False)


class _Played:
    """Records of reps sorted by start, to find the one of a given burst (the same start, or
    :func:`same_burst`: a rep judged with other settings starts a few ms elsewhere)."""

    def __init__(self, reps: list[RepResult]) -> None:
        self._reps = sorted(reps, key=lambda r: r.start)
        self._starts = [r.start for r in self._reps]

    def record_of(self, rep: RepResult) -> RepResult | None:
        from devices.session.tally import same_burst

        i = bisect.bisect_left(self._starts, rep.start)
        near = self._reps[max(0, i - 2) : i + 2]
        exact = next((r for r in near if r.start == rep.start), None)
        return exact or next((r for r in near if same_burst(r, rep)), None)
