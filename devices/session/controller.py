"""One source's session, owned by one object: the window and ``fireorder live``/``record`` run
on it, so the wiring exists once.

A :class:`SessionController` holds the live session (worker, pipeline, buffers), the optional
recorder, the rep tally, the marks, notes and corrections of that recording, and routes every
event into them: pipeline events and device markers into the recording, settings, role and
calibration changes into the recording, decided reps into the tally. Consumers observe it
through plain callbacks (no Qt); they are called on the thread that calls :meth:`drain`
(the GUI thread, or the CLI's loop).

Opening another source or file means a new controller: nothing of the previous one (tally,
marks, corrections, recorder) can be drawn, counted or saved into the next.

Lab Streaming Layer (both off unless asked for): :meth:`attach_markers` subscribes to an LSL
marker stream whose markers become :attr:`MarkKind.DEVICE` marks at the sample taken when
the marker was stamped (the device's own sample times where it knows them, else a
:class:`~devices.session.clock_map.ClockMap` of chunk arrivals); :meth:`set_lsl_out` sends
every finished rep's verdict as an LSL marker (:mod:`devices.session.lsl_out`).
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.drivers.base import Device, Replay
from devices.files.recorder import Recorder, RecordingSummary, SessionMeta, recording_path
from devices.files.sidecar import (
    Correction,
    Note,
    ReviewStore,
    is_user_annotation,
    recorded_settings,
    standing_corrections,
)
from devices.session.clock_map import ClockMap
from devices.session.live import LiveSession, SessionStats, TimedEvent
from devices.session.markers_in import ExternalMarker, MarkerFeed
from devices.session.states import MarkKind, SessionState
from devices.session.tally import RepTally
from dsp.contract import Chunk, Role, StreamInfo
from dsp.events import GapEvent, RepsRejudged
from dsp.onset import OnsetEvent
from dsp.reps import RepEnded, RepResult, SideResult, classify, group_onset
from dsp.settings import STATISTIC_FIELDS, DspSettings, SettingsSchedule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mark:
    """A point on the session's timeline (sample index of the stream or file)."""

    index: int
    label: str
    kind: MarkKind


class RecordingError(RuntimeError):
    """A recording could not be started (the message says why, in one line)."""


def corrected(
    rep: RepResult, hand: Mapping[Role, int], fs: float, tolerance_ms: float
) -> RepResult:
    """``rep`` (the detector's record) with the onsets placed by hand: lag, verdict and each
    side's result recomputed from the onsets. A hand-placed onset has no estimator interval,
    so the lag's interval is dropped (the detected rep keeps its own). No onset placed: the
    rep as detected."""
    if not hand:
        return rep
    onsets = dict(rep.onsets)
    onsets.update(hand)
    known = {r: float(i) for r, i in onsets.items() if i is not None}
    glutes, lumbars = any(r.is_glute for r in hand), any(r.is_lumbar for r in hand)
    # A group with an onset placed by hand began when its first side did: the detector's
    # pooling of two sides' noisy estimates is for its own, and with a hand-placed side it
    # made the lag move against the hand (the glutes' onset later as the earlier glute was
    # nudged later, then back). A group left as detected is pooled as the detector pools it.
    spread = {
        r: (float(a), float(b))
        for r, (a, b) in rep.onset_ci.items()
        if not (glutes if r.is_glute else lumbars)
    }

    def lag_of(glute_roles: tuple[Role, ...], lumbar_roles: tuple[Role, ...]) -> float | None:
        g = group_onset(known, spread, glute_roles)
        lu = group_onset(known, spread, lumbar_roles)
        return round((lu.at - g.at) * 1000.0 / fs, 3) if g and lu else None

    def side(was: SideResult | None, glute: Role, lumbar: Role) -> SideResult | None:
        if was is None:
            return None
        if glute not in hand and lumbar not in hand:
            return was  # (as detected, with its interval)
        lag = lag_of((glute,), (lumbar,))
        return SideResult(lag, classify(lag, tolerance_ms), None)

    lag = lag_of(tuple(r for r in onsets if r.is_glute), tuple(r for r in onsets if r.is_lumbar))
    names = ", ".join(r.value for r in sorted(hand, key=lambda r: r.value))
    return dataclasses.replace(
        rep,
        onsets=onsets,
        lag_ms=lag,
        order=classify(lag, tolerance_ms),
        left=side(rep.left, Role.GLUTE_L, Role.LUMBAR_L),
        right=side(rep.right, Role.GLUTE_R, Role.LUMBAR_R),
        lag_ci_ms=None,
        lag_below_ms=None,
        reason=f"{names} onset corrected by hand",
    )


#: a replay's record of a rep starts this close (s) to the file's record of it or later:
#: less than any rep lasts, more than a re-judged onset moves
FILE_REP_SLACK_S = 0.2


def rep_in_progress(s: LiveSession) -> tuple[int | None, int] | None:
    """The rep under way in ``s`` (its index and start; no index yet: a burst whose onset
    is still being confirmed), or None when every mapped channel is at rest: a new pipeline
    begun mid-rep would lose that rep's onsets."""
    p, info = s.pipeline, s.info
    if p is None or info is None:
        return None
    rep = p.reps._rep  # (the tracker's open rep: decided or not, it has not ended)
    mapped = list(info.roles.values())
    if rep is None and not p.detector.active[mapped].any():
        return None
    return (rep.index, rep.start) if rep is not None else (None, p.next_index)


Callback = Callable[..., None]
#: Settings changed mid-rep wait for the channels to be at rest, at most this long (s) of
#: stream: a rep lasts a few seconds; a contraction held longer is told lost, not hidden.
SETTINGS_WAIT_S = 8.0
MARKS_KEPT = 1000
#: an external marker whose sample has not arrived this long (s) after its time (a stalled
#: stream) is placed where its sample will be, rather than held on
MARKER_HOLD_S = 2.0
#: external markers held at most (a stream that never delivers a sample)
MARKERS_HELD = 10_000
_CALLBACKS = (
    "on_onset",
    "on_rep",
    "on_rep_final",
    "on_rejudged",
    "on_gap",
    "on_mark",
    "on_state",
    "on_error",
    "on_recording_stopped",
    "on_notice",
)


def recorded_text(mark: Mark) -> str:
    """The annotation a mark becomes in the recording."""
    if mark.kind == MarkKind.MARK:
        return f"mark: {mark.label}"
    if mark.kind in (MarkKind.DEVICE, MarkKind.TRUTH):
        return f"{mark.kind.value} {mark.label}"
    return mark.label


class SessionController:
    """Everything about one source's session. See the module docstring.

    Callbacks (attributes, ``None`` = not observed), called from :meth:`drain`:

    * ``on_onset(OnsetEvent)``, ``on_rep(RepResult)`` (a verdict, as soon as it is decided),
      ``on_rep_final(RepEnded)`` (the rep's final record when it ends),
      ``on_rejudged(RepsRejudged)``, ``on_gap(GapEvent)``, ``on_mark(Mark)``;
    * ``on_state(SessionState)`` when the state changes, ``on_error(str)`` once per error;
    * ``on_recording_stopped(RecordingSummary)`` when the recording stopped by itself (a
      full disk): its ``error`` says why; the stream goes on;
    * ``on_notice(str)``: a status line of the LSL marker feed or outlet (found, lost, back,
      a marker placed at the recording's start), or of new settings (waiting for the rep
      under way to end, in use, a rep lost to them); the session goes on.
    """

    def __init__(
        self,
        device: Device,
        settings: DspSettings | None = None,
        *,
        meta: SessionMeta | None = None,
        recordings_dir: str | os.PathLike[str] | None = None,
        roles: dict[Role, int] | None = None,
        tally_window: int = 10,
        device_marks: MarkKind = MarkKind.DEVICE,
        buffer_s: float = 32.0,
    ) -> None:
        self.settings = settings or DspSettings()
        self.session = LiveSession(device, self.settings, roles=roles, buffer_s=buffer_s)
        self.device = device
        self.meta = meta or SessionMeta()
        self.recordings_dir = Path(recordings_dir) if recordings_dir is not None else None
        self.tally = RepTally(window=tally_window)
        self.marks: list[Mark] = []  # the newest MARKS_KEPT (all are in the recording)
        self._user_marks = 0  # the user's marks so far: the next one's number
        self.corrections: list[tuple[RepResult, RepResult]] = []  # (detected, corrected)
        # The reviewer's onsets by the start of the rep they were placed on, in the order
        # placed (this session's and those saved with a replayed file): every record the
        # pipeline makes of that rep again (a second pass, a seek, the file opened again)
        # gets them, so what is shown and counted stays the reviewer's.
        self._hand: dict[int, dict[Role, int]] = {}
        self._detected: dict[int, RepResult] = {}  # start -> the detector's record of a rep
        self.calibration: dict[str, Any] | None = None
        self.recorder: Recorder | None = None
        self.last_recording: RecordingSummary | None = None
        self.device_marks = device_marks
        self.latencies: list[float] = []  # chunk arrival -> event drained, s (last 1000)
        self._state = SessionState.IDLE
        self.event_arrived = 0.0
        self._error_told: str | None = None
        self.on_onset: Callback | None = None
        self.on_rep: Callback | None = None
        self.on_rep_final: Callback | None = None
        self.on_rejudged: Callback | None = None
        self.on_gap: Callback | None = None
        self.on_mark: Callback | None = None
        self.on_state: Callback | None = None
        self.on_error: Callback | None = None
        self.on_recording_stopped: Callback | None = None
        self.on_notice: Callback | None = None
        # LSL: the marker feed, its markers waiting for their sample, the verdict outlet
        self.clock: ClockMap | None = None  # made at open (the rate is known then)
        self.marker_feed: MarkerFeed | None = None
        self.markers_placed = 0
        self._held: list[ExternalMarker] = []
        self._rec_first: int | None = None  # stream index of the recording's first sample
        self.lsl_out: Any = None  # a devices.session.lsl_out.VerdictOutlet while on
        self.lsl_emg: Any = None  # a devices.session.lsl_out.EmgOutlet while on
        self._emg_next: int | None = None  # the next sample index it sends
        self.session.on_raw = self._on_raw
        # Settings waiting for the channels to be at rest (see apply_settings); the worker
        # says what it did through _worker_notices (a deque: appended there, read here).
        self._pending_settings: DspSettings | None = None
        self._pending_from: int | None = None  # stream index at the first look
        self._pending_posted = False
        self._pending_told = False
        self._rep_ends: list[int] = []  # where the file's reps end, as the last seek was told
        self._file_starts: list[int] = []  # where they start (set_file_reps)
        self._worker_notices: collections.deque[tuple[str, Any, Any]] = collections.deque()
        self._own_settings = False  # a replay the user gave settings of their own

    def detach(self) -> None:
        """Drop every observer (a window that moves on to another source, or closes); the
        LSL outlet and marker feed end with it."""
        for name in _CALLBACKS:
            setattr(self, name, None)
        self.session.on_verdict = None
        self.set_lsl_out(False)
        self.set_lsl_out_emg(False)
        self.attach_markers(None, wait_s=0.0)

    # -- what the consumers read -----------------------------------------------------------
    @property
    def info(self) -> StreamInfo | None:
        return self.session.info

    @property
    def state(self) -> SessionState:
        """The session's state; a replay held by its transport reads PAUSED."""
        s = SessionState(self.session.state)
        replay = self.replay
        if s == SessionState.STREAMING and replay is not None and replay.paused:
            return SessionState.PAUSED
        return s

    @property
    def error(self) -> str | None:
        return self.session.error

    @property
    def stats(self) -> SessionStats:
        return self.session.stats

    @property
    def schedule(self) -> SettingsSchedule | None:
        """The recording's own settings a replay follows (None: live, a file with none, or
        the user chose other settings for this replay)."""
        return None if self._own_settings else self.session.schedule

    def _tolerance_at(self, index: int) -> float:
        """The neutral zone a rep starting at ``index`` was judged with (a replay that follows
        its recording's settings: those in force there)."""
        schedule = self.schedule
        return (schedule.at(index) if schedule is not None else self.settings).tolerance_ms

    @property
    def settings_in_use(self) -> DspSettings:
        """The settings the pipeline runs with now (a replay: those in force where it is)."""
        return self.session.settings

    @property
    def replay(self) -> Replay | None:
        return self.device.replay()

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    @property
    def position(self) -> int:
        """Index of the newest sample: the file position in a replay (file time)."""
        replay = self.replay
        if replay is not None:
            return replay.position
        # (the pipeline's index line: its sample counts restart with a new pipeline, when
        # the settings or the mapping change mid-session)
        pipeline = self.session.pipeline
        if pipeline is not None:
            return pipeline.next_index
        st = self.session.stats
        return st.samples + st.lost_samples

    @property
    def fs(self) -> float:
        info = self.session.info
        return info.fs if info is not None else 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> StreamInfo:
        replay = self.replay
        if replay is not None and self.session.pipeline is None:
            # A recording replays with the settings it was made with (and each change made
            # while it was recorded, from where it came into use): the reviewer sees the
            # verdicts the live session gave, whatever the settings in use now.
            schedule = recorded_settings(replay.path)
            if schedule is not None:
                self.session.follow(schedule)
                self.settings = schedule.start
                for at, _ in schedule.changes:  # where the live session took new settings
                    self._add_mark(at, "new settings", MarkKind.SETTINGS, record=False)
        try:
            info = self.session.open()
        finally:
            self._notice_state()
        self.clock = ClockMap(info.fs)
        replay = self.replay
        if replay is not None:  # a replayed file's own marks and notes, in file time
            for onset_s, _dur, text in replay.annotations:
                if is_user_annotation(text):
                    self._add_mark(round(onset_s * info.fs), text, MarkKind.FILE, record=False)
            self._load_review(replay.path)
        return info

    def start(self, threaded: bool = True) -> None:
        self.session.start(threaded=threaded)
        self._notice_state()

    def stop(self) -> None:
        self.session.stop()
        self.drain()
        self._notice_state()

    def close(self) -> RecordingSummary | None:
        """Stop streaming, settle the open rep, finish the recording; idempotent."""
        self.session.close()
        self.drain()  # (the last reps' verdicts still go out over LSL)
        self._place_external(final=True)  # markers still waiting: at the last sample
        self.set_lsl_out(False)
        self.set_lsl_out_emg(False)
        self.attach_markers(None)
        summary = self.stop_recording()
        self._notice_state()
        return summary

    def run(self, duration_s: float | None = None, *, until_exhausted: bool = False) -> None:
        """Stream on this thread (the CLI); events are drained after every chunk."""

        def routed(chunk: Any) -> None:
            rec = self.recorder
            self._on_raw(chunk)
            self.drain()
            if rec is not None and rec.error:
                self.session.stop()  # a headless recorder has nothing left to do

        self.session.on_raw = routed
        try:
            self.session.run(duration_s, until_exhausted=until_exhausted)
        finally:
            self.session.on_raw = self._on_raw
            self.drain()
            self._notice_state()

    def pump(self, seconds: float) -> None:
        """Process ``seconds`` of stream synchronously (tests), then route what came out."""
        self.session.pump(seconds)
        self.drain()

    # -- the routing ---------------------------------------------------------------------
    def drain(self) -> int:
        """Route everything the worker queued since the last call; the number of events."""
        events = self.session.drain_events()
        info = self.session.info
        rec = self.recorder
        for te in events:
            self._route(te, rec)
        while self.session.markers:
            marker = self.session.markers.popleft()
            self._add_mark(marker.index, marker.label, self.device_marks)
        self._place_external()
        self._send_emg()
        self._settings_notices()
        if info is not None and self.session.state == SessionState.ERROR:
            err = self.session.error or "unknown error"
            if err != self._error_told:
                self._error_told = err
                if self.on_error is not None:
                    self.on_error(err)
        if rec is not None and rec.error:
            summary = self.stop_recording()  # streaming and feedback go on
            if self.on_recording_stopped is not None and summary is not None:
                self.on_recording_stopped(summary)  # its error says why
        self._notice_state()
        return len(events)

    def _route(self, te: TimedEvent, rec: Recorder | None) -> None:
        ev = te.event
        self.event_arrived = te.arrived  # for consumers timing "chunk arrived -> shown"
        if rec is not None:
            rec.add_dsp_event(ev)
        if isinstance(ev, OnsetEvent):
            if self.on_onset is not None:
                self.on_onset(ev)
        elif isinstance(ev, RepResult):
            ev = self._numbered(self.reviewed(ev))
            self.tally.add(ev)
            self.latencies.append(te.ready - te.arrived)
            del self.latencies[:-1000]
            if self.on_rep is not None:
                self.on_rep(ev)
        elif isinstance(ev, RepEnded):
            result = self._numbered(self.reviewed(ev.result))
            ev = dataclasses.replace(ev, index=result.index, result=result)
            self.tally.add(ev.result)  # the final record: onsets that came after the verdict
            self._send_verdict(ev.result, final=True)
            if self.on_rep_final is not None:
                self.on_rep_final(ev)
        elif isinstance(ev, RepsRejudged):
            ev = dataclasses.replace(
                ev, reps=tuple(self._numbered(self.reviewed(r)) for r in ev.reps)
            )
            self.tally.rejudge(ev.upto, ev.reps, ev.since)
            for rep in ev.reps:  # they replace the verdicts sent for those reps
                self._send_verdict(rep, final=rep.end is not None)
            if self.on_rejudged is not None:
                self.on_rejudged(ev)
        elif isinstance(ev, GapEvent) and self.on_gap is not None:
            self.on_gap(ev)

    def set_file_reps(self, starts: Sequence[int]) -> None:
        """A replay's reps as the whole file's analysis has them (their starts): the reps the
        replay makes are numbered as the file's (the rep table's rows), also before a file
        that began mid-burst has its first reps judged again (the banner said "rep 1" for
        the table's rep 2: the burst under way at the start was not known yet)."""
        self._file_starts = sorted(starts)

    def _numbered(self, rep: RepResult) -> RepResult:
        starts = self._file_starts
        if self.replay is None or not starts or not self.fs:
            return rep
        # the file's reps that began before this one (a record of the same burst may start a
        # few ms off the file's: re-judged in one pass and not in the other)
        n = bisect.bisect_left(starts, rep.start - round(FILE_REP_SLACK_S * self.fs))
        return rep if n == rep.index else dataclasses.replace(rep, index=n)

    def _notice_state(self) -> None:
        state = self.state
        if state != self._state:
            self._state = state
            if self.on_state is not None:
                self.on_state(state)

    # -- changes that belong in the recording --------------------------------------------------
    def apply_roles(self, roles: dict[Role, int]) -> StreamInfo:
        info = self.session.apply_roles(roles)
        if self.recorder is not None:
            text = ", ".join(f"{r.value}={info.channel_names[i]}" for r, i in roles.items())
            self.recorder.add_event(self.position, f"roles changed: {text}")
        return info

    def apply_settings(self, settings: DspSettings) -> str | None:
        """Use ``settings`` from the next moment the channels are at rest (see
        :data:`SETTINGS_WAIT_S`): a new pipeline then goes on with the same rep numbering,
        and the rep in progress is not cut in two. Returns why the calibration in use no
        longer applies (the statistic's units changed), else None."""
        # (a replay may have moved on to a recorded change: compare with what runs now)
        current = self.session.settings if self.replay is not None else self.settings
        if settings == current and self._pending_settings is None:
            return None  # (OK on an unchanged dialog: nothing to wait for, mark or record)
        if self.replay is not None:  # (the recording's own schedule no longer applies)
            self._own_settings = True
        old, self.settings = current, settings
        void = None
        if self.calibration is not None and not settings.same_statistic(old):
            changed = [k for k in STATISTIC_FIELDS if getattr(settings, k) != getattr(old, k)]
            void = f"filter settings changed ({', '.join(changed)})"
            self.calibration = None  # (a recording started from now on has none)
            if self.recorder is not None:
                self.recorder.set_calibration(None)
                self.recorder.add_event(self.position, f"calibration void: {void}")
        self._pending_settings = settings
        self._pending_from = None
        self._post_pending_settings()
        return void

    def _post_pending_settings(self) -> None:
        if self._pending_settings is not None and not self._pending_posted:
            self._pending_posted = True
            self.session.post(self._settings_step)

    def _settings_step(self, s: LiveSession) -> None:
        """On the worker, between chunks: apply the waiting settings if no rep is under way
        (or the wait is over: the rep in progress is then told lost, never silently)."""
        self._pending_posted = False
        settings, p, info = self._pending_settings, s.pipeline, s.info
        if settings is None or p is None or info is None:
            return
        now = p.next_index
        if self._pending_from is None:
            self._pending_from = now
        # (a stream that has ended has nothing under way: its end settled the last rep)
        busy = None if s.state == SessionState.FINISHED else rep_in_progress(s)
        replay = self.replay
        flowing = s.state == SessionState.STREAMING and not (replay is not None and replay.paused)
        waited = (now - self._pending_from) / info.fs
        if busy is not None and flowing and waited < SETTINGS_WAIT_S:
            if not self._pending_told:
                self._pending_told = True
                what = "the burst under way" if busy[0] is None else f"rep {busy[0] + 1}"
                self._worker_notices.append(("wait", busy, f"new settings wait for {what} to end"))
            return
        self._pending_settings = None
        self._pending_told = False
        if busy is not None and replay is not None:
            # A file can be read again: the rep under way is judged with the new settings
            # from its start (the replay re-settles where it is, as a seek does), not lost.
            paused = replay.paused
            ends = self._rep_ends or [r.end for r in self.tally.reps if r.end is not None]
            s.seek(now, rep_ends=ends, settings=settings)  # (runs next: before the next chunk)
            s.post(lambda _s: replay.pause() if paused else None)  # (the pre-roll played it)
            self.clock = ClockMap(info.fs)
            self._worker_notices.append(("again", busy, now))
            return
        s.apply_settings(settings)  # (runs next: before the next chunk)
        self._worker_notices.append(("applied", busy, now))

    def _settings_notices(self) -> None:
        """What the worker did with waiting settings, told on this thread (drain)."""
        while self._worker_notices:
            what, busy, detail = self._worker_notices.popleft()
            if what == "wait":
                self._notice(f"{detail} (channels at rest)")
                continue
            at = int(detail)
            if self.recorder is not None:
                self.recorder.update_settings(self.settings, at)
            # on the timeline: the verdicts on either side were judged with other settings
            # (the recording has the change as its own event)
            self._add_mark(at, "new settings", MarkKind.SETTINGS, record=False)
            if what == "again" and busy is not None:
                n = busy[0]
                what_rep = "the burst under way" if n is None else f"rep {n + 1}"
                self._notice(
                    f"new settings in use from {at / self.fs:.1f} s: {what_rep} judged again"
                )
                continue
            if busy is None:
                self._notice(f"new settings in use from {at / self.fs:.1f} s")
                continue
            n, start = busy
            text = f"{'a burst' if n is None else f'rep {n + 1}'} lost: settings changed mid-rep"
            self._notice(f"{text} (no rest in {SETTINGS_WAIT_S:g} s)")
            if self.recorder is not None:
                self.recorder.add_event(start, text)
        self._post_pending_settings()  # (waiting: look again after the next chunks)

    def apply_calibration(self, calibration: Mapping[str, Any]) -> str | None:
        """Use a stored calibration; the reason it does not fit, else None (recorded)."""
        from devices.session.calibration import apply_calibration

        cal = dict(calibration)
        why = apply_calibration(self.session, cal)
        if why is None:
            self.calibration_changed(cal)
        return why

    def clear_calibration(self) -> None:
        """Take the calibration off the session (adaptive baseline again; recorded)."""
        from devices.session.calibration import clear_calibration

        clear_calibration(self.session)
        self.calibration_changed(None)

    def calibration_changed(self, calibration: Mapping[str, Any] | None) -> None:
        """A calibration was made or applied: it goes with the recording from now on."""
        self.calibration = None if calibration is None else dict(calibration)
        if self.recorder is not None:
            self.recorder.set_calibration(self.calibration)
            self.recorder.add_event(self.position, "calibration changed")

    # -- recording -------------------------------------------------------------------------------
    def _on_raw(self, chunk: Chunk) -> None:
        """Every raw chunk, on the acquisition thread: the clock map learns when it arrived,
        the recorder (if any) queues it."""
        clock = self.clock
        if clock is not None:
            arrived = chunk.timestamp if chunk.timestamp > 0 else time.monotonic()
            clock.feed(arrived, chunk.stop - 1)
        rec = self.recorder
        if rec is not None:
            if self._rec_first is None:
                self._rec_first = chunk.start
            rec.write(chunk)

    def start_recording(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        device_info: Mapping[str, Any] | None = None,
    ) -> Path:
        """Record from now on (raw samples queued from the worker; the disk never blocks it)."""
        info = self.session.info
        if info is None:
            raise RecordingError("no stream to record: connect a source first")
        if self.recorder is not None:
            return self.recorder.path
        folder = self.recordings_dir
        target = Path(path) if path is not None else recording_path(folder, self.meta)
        if target.exists() and not overwrite:
            raise RecordingError(f"{target} exists (use --overwrite to replace it)")
        try:
            rec = Recorder(
                target,
                info,
                self.meta,
                self.settings,
                self.calibration,
                overwrite=overwrite,
                device_info=device_info,
            )
        except ValueError as exc:  # a rate BDF records cannot hold, a bad name: one line
            raise RecordingError(f"cannot record to {target}: {exc}") from None
        if not rec.start():
            raise RecordingError(rec.error or f"cannot record to {target}")
        self._rec_first = None  # (set by the first chunk the recorder gets)
        self.recorder = rec
        return target

    def stop_recording(self) -> RecordingSummary | None:
        rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        self.last_recording = rec.stop()
        return self.last_recording

    # -- marks, notes, corrections ---------------------------------------------------------------
    def _add_mark(self, index: int, label: str, kind: MarkKind, record: bool = True) -> Mark:
        mark = Mark(int(index), label, kind)
        if kind != MarkKind.TRUTH:
            # the simulator's truth (several per rep, for hours) goes to the recording and
            # the callback only: kept here it would grow the session without bound
            self.marks.append(mark)
            # a device's trigger every rep for hours: the window draws the last 50 only
            del self.marks[:-MARKS_KEPT]
            if kind == MarkKind.MARK:
                self._user_marks += 1
        if record and self.recorder is not None:
            self.recorder.add_event(mark.index, recorded_text(mark))
        if self.on_mark is not None:
            self.on_mark(mark)
        return mark

    def mark(self, label: str | None = None) -> Mark:
        """The user marks the moment (file time in a replay, kept with the file's review as
        a note: a mark made in a replay was gone when the file was opened again)."""
        n = 1 + self._user_marks
        mark = self._add_mark(self.position, label or f"mark {n}", MarkKind.MARK)
        replay = self.replay
        if replay is not None and self.fs:
            try:
                ReviewStore(replay.path).add_note(Note(mark.index / self.fs, mark.label))
            except OSError as exc:
                log.warning("mark not saved with %s: %s", replay.path, exc)
        return mark

    def note(self, text: str, index: int | None = None) -> tuple[Mark, Path | None]:
        """A note at ``index`` (default now): on the timeline, in the recording, and for a
        replayed file in its review (where it is kept is returned; None if not kept)."""
        at = self.position if index is None else int(index)
        mark = self._add_mark(at, f"note: {text}", MarkKind.NOTE)
        replay = self.replay
        if replay is None or not self.fs:
            return mark, None
        try:
            return mark, ReviewStore(replay.path).add_note(Note(at / self.fs, text))
        except OSError as exc:
            log.warning("note not saved with %s: %s", replay.path, exc)
            return mark, None

    def correct(self, rep: RepResult, role: Role, index: int) -> tuple[RepResult, Path | None]:
        """Move one onset of ``rep`` by hand: the detected rep is kept, the corrected one is
        counted and (for a replayed file) saved in its review. Returns it and where it was
        saved. The onset stays within the rep (between its start and its end)."""
        fs = self.fs
        if not fs:
            raise ValueError("no stream: nothing to correct")
        key = self._hand_key(rep)
        detected = self._detected.get(rep.start) if key is not None else None
        detected = detected or next((d for d, _ in self.corrections if d.start == rep.start), None)
        detected = detected or next((r for r in self.tally.reps if r.start == rep.start), rep)
        key = rep.start if key is None else key
        hand = dict(self._hand.get(key, {}))
        if detected.onsets.get(role) == index:
            hand.pop(role, None)  # back where the detector put it (an undo): no correction
        else:
            hand[role] = index
        fixed = corrected(detected, hand, fs, self._tolerance_at(detected.start))
        if hand:
            self._hand[key] = hand
            self.corrections.append((detected, fixed))
            self._detected[fixed.start] = detected
        else:  # every onset as detected again: the rep is the detector's, nothing corrected
            self._hand.pop(key, None)
            self.corrections = [p for p in self.corrections if p[0].start != detected.start]
            self._detected.pop(detected.start, None)
        self.tally.add(fixed)
        replay = self.replay
        if replay is None:
            return fixed, None
        was = detected.onsets.get(role)
        entry = Correction(
            rep_start_s=rep.start / fs,
            role=role.value,
            detected_s=None if was is None else was / fs,
            corrected_s=index / fs,
            lag_ms=fixed.lag_ms,
            order=fixed.order,
            detected_order=detected.order,
        )
        try:
            return fixed, ReviewStore(replay.path).add_correction(entry)
        except OSError as exc:
            log.warning("correction not saved with %s: %s", replay.path, exc)
            return fixed, None

    def _hand_key(self, rep: RepResult) -> int | None:
        """The start under which the reviewer's onsets of ``rep``'s burst are kept: its own,
        or one a few ms off (the rep re-judged in one pass and not in another, its cue and
        its final record), as :func:`devices.session.tally.same_burst` tells two records of
        one burst apart: closer than half its span."""
        if rep.start in self._hand:
            return rep.start
        if not self._hand:
            return None
        near = min(self._hand, key=lambda k: abs(k - rep.start))
        end = rep.end if rep.end is not None else rep.decided_at
        return near if 2 * abs(near - rep.start) < max(end - rep.start, 1) else None

    def reviewed(self, rep: RepResult) -> RepResult:
        """``rep`` with the onsets the reviewer placed on it (as it is if none): a record the
        pipeline makes again of a corrected rep is shown and counted as corrected."""
        key = self._hand_key(rep)
        if key is None or not self.fs:
            return rep
        fixed = corrected(rep, self._hand[key], self.fs, self._tolerance_at(rep.start))
        self._detected[fixed.start] = rep
        return fixed

    def detected_of(self, rep: RepResult) -> RepResult | None:
        """The detector's record of a rep shown corrected (None: not corrected)."""
        return self._detected.get(rep.start) if self._hand_key(rep) is not None else None

    def _load_review(self, path: str) -> None:
        """Notes and corrections already made on this file: the notes are shown again, the
        corrected onsets given to the reps' records as the replay makes them."""
        fs = self.fs
        store = ReviewStore(path)
        for note in store.notes():
            self._add_mark(round(note.t_s * fs), f"note: {note.text}", MarkKind.NOTE, False)
        info = self.info
        mapped = set(info.roles) if info is not None else set()
        for c in standing_corrections(store.corrections()):  # (the last of each role)
            try:
                role = Role(c.role)
            except ValueError:
                continue  # a role this version does not know: the report says so
            if role in mapped:
                self._hand.setdefault(round(c.rep_start_s * fs), {})[role] = round(
                    c.corrected_s * fs
                )

    # -- replay ---------------------------------------------------------------------------------
    def seek(self, index: int, *, paused: bool | None = None, rep_ends: Sequence[int] = ()) -> bool:
        """Replay: continue from sample ``index`` (the pipeline re-settles before it).
        ``paused`` True holds the transport there once the seek is done (review shows a rep
        and waits), False plays on; None keeps it as it is. ``rep_ends``: where the file's
        reps end, so that the reps after the jump keep the file's numbers."""
        replay = self.replay
        if replay is None:
            return False
        was_paused = replay.paused
        if rep_ends:
            self._rep_ends = list(rep_ends)  # (new settings mid-rep re-settle with them too)
        self.session.seek(index, rep_ends=rep_ends)
        if self.fs:  # chunk arrivals before the jump say nothing about the index line after it
            self.clock = ClockMap(self.fs)
        hold = was_paused if paused is None else paused
        # after the seek's own command (which plays the transport to run its pre-roll)
        self.session.post(lambda _s: replay.pause() if hold else replay.play())
        self.session.resume_after_end()  # a replay that had reached its end goes on
        self._notice_state()
        return True

    # -- Lab Streaming Layer: markers in, verdicts out -------------------------------------------
    def _notice(self, text: str) -> None:
        log.info("%s", text)
        if self.on_notice is not None:
            self.on_notice(text)

    def index_at(self, t: float) -> int | None:
        """The stream index of the sample taken at host time ``t`` (``time.monotonic``, LSL's
        ``local_clock``): the device's own answer where it knows its sample times, else the
        clock map of chunk arrivals; None before any sample."""
        index = self.device.index_at(t)
        if index is not None:
            return index
        return self.clock.index_at(t) if self.clock is not None else None

    def time_of(self, index: int) -> float | None:
        """The host time at which sample ``index`` was taken (the inverse of :meth:`index_at`);
        None before any sample."""
        clock, fs = self.clock, self.fs
        t = clock.time_of(index) if clock is not None else None
        if t is None or not fs:
            return t
        for _ in range(3):  # a device that knows its sample times: refine on its own map
            known = self.device.index_at(t)
            if known is None or known == index:
                break
            t += (index - known) / fs
        return t

    def attach_markers(self, feed: MarkerFeed | str | None, *, wait_s: float = 1.5) -> None:
        """Put the markers of an LSL marker stream (a feed, or a stream name) on this
        session's timeline from now on; None detaches the current one. The previous feed is
        stopped (waiting at most ``wait_s`` for its thread)."""
        old, self.marker_feed = self.marker_feed, None
        if old is not None:
            old.stop(timeout=wait_s)
            self._held.clear()
        if feed is None:
            return
        if isinstance(feed, str):
            feed = MarkerFeed(feed)
        self.marker_feed = feed
        feed.start()

    def _place_external(self, final: bool = False) -> None:
        """External markers onto the timeline: each at the sample taken at its time, once
        that sample has arrived (so a mark never runs ahead of the traces; a stalled stream
        holds a marker at most MARKER_HOLD_S). ``final``: the stream has ended, a marker
        still waiting goes on the last sample, saying so."""
        feed = self.marker_feed
        if feed is not None:
            for text in feed.notices():
                self._notice(text)
            self._held.extend(feed.poll())
            del self._held[:-MARKERS_HELD]
        if not self._held or self.info is None:
            return
        newest = self.position - 1
        now = time.monotonic()
        waiting = []
        for marker in self._held:
            index = self.index_at(marker.t)
            if final and newest >= 0 and (index is None or index > newest):
                late = "" if index is None else f" ({(index - newest) / self.fs:.3f} s after it)"
                self._notice(f"marker {marker.label!r} came after the last sample: put on it")
                self._place_marker(ExternalMarker(marker.t, f"{marker.label}{late}"), newest)
                continue
            if index is None or (index > newest and now - marker.t < MARKER_HOLD_S):
                waiting.append(marker)  # its sample is not here yet
                continue
            self._place_marker(marker, index)
        self._held = waiting
        if final and waiting:  # no sample ever arrived: nothing to put them on
            log.info("%d external markers and no sample to place them on", len(waiting))

    def _place_marker(self, marker: ExternalMarker, index: int) -> None:
        label = marker.label
        if self.recorder is not None:
            floor = self._rec_first if self._rec_first is not None else self.position
            what = "recording"
        else:
            floor, what = 0, "stream"
        if index < floor:
            # kept, never dropped: at the first sample, saying how much earlier it was
            early = (floor - index) / self.fs
            label = f"{label} ({early:.3f} s before the {what} began)"
            self._notice(f"marker {marker.label!r} came before the {what} began: put at its start")
            index = floor
        self.markers_placed += 1
        self._add_mark(index, label, MarkKind.DEVICE)

    def set_lsl_out(self, on: bool, name: str | None = None) -> str | None:
        """Turn the LSL verdict outlet on (one JSON marker per finished rep) or off (the
        outlet is destroyed). Returns why it could not be opened, else None."""
        if not on:
            out, self.lsl_out = self.lsl_out, None
            if out is not None:
                out.close()
            return None
        from devices.session.lsl_out import DEFAULT_NAME, VerdictOutlet

        name = name or DEFAULT_NAME
        if self.lsl_out is not None and self.lsl_out.name == name:
            return None
        self.set_lsl_out(False)
        try:
            self.lsl_out = VerdictOutlet(name)
        except Exception as exc:  # liblsl missing or refusing: one line, the session goes on
            why = f"LSL verdict outlet {name} not opened: {exc}"
            self._notice(why)
            return why
        return None

    def _send_verdict(self, rep: RepResult, *, final: bool) -> None:
        out = self.lsl_out
        if out is None or not self.fs:
            return
        from devices.session.lsl_out import verdict_message

        try:
            out.send(verdict_message(rep, self.fs, self.time_of, final=final))
        except Exception as exc:  # the network side must never stop the feedback
            log.warning("verdict not sent over LSL: %s", exc)

    def set_lsl_out_emg(self, on: bool, name: str | None = None) -> str | None:
        """Send the filtered EMG and envelopes as an LSL float stream from now on (or stop:
        the outlet is destroyed). Returns why it could not be opened, else None."""
        if not on:
            out, self.lsl_emg = self.lsl_emg, None
            if out is not None:
                out.close()
            return None
        info = self.info
        if info is None:
            return "no stream to send: open the source first"
        from devices.session.lsl_out import DEFAULT_EMG_NAME, EmgOutlet

        name = name or DEFAULT_EMG_NAME
        self.set_lsl_out_emg(False)
        try:
            self.lsl_emg = EmgOutlet(name, tuple(info.channel_names), info.fs)
        except Exception as exc:
            why = f"LSL EMG outlet {name} not opened: {exc}"
            self._notice(why)
            return why
        self._emg_next = None
        return None

    def _send_emg(self) -> None:
        """What the worker filtered since the last call, from the session's buffers (the
        filtered ring is written before the envelope ring: the envelope's end bounds both)."""
        out, s = self.lsl_emg, self.session
        if out is None or s.info is None:
            return
        env_end = s.envelope.end
        if self._emg_next is None or self._emg_next > env_end:  # (from now; after a seek)
            self._emg_next = env_end
            return
        start, env = s.envelope.snapshot(min(env_end - self._emg_next, s.envelope.capacity))
        if not len(env):
            return
        f_start, filt = s.filtered.snapshot(s.filtered.end - start)
        cut = start - f_start
        filt = filt[cut : cut + len(env)]
        if len(filt) != len(env):  # the rings were rebuilt meanwhile (a seek): next time
            return
        stop = start + len(env)
        try:
            out.send(filt, env, self.time_of(stop - 1))
        except Exception as exc:  # the network side must never stop the feedback
            log.warning("EMG not sent over LSL: %s", exc)
        self._emg_next = stop
