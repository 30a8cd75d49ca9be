"""A live session: one device streamed through the pipeline on a worker thread. No Qt.

The worker reads the device, runs the pipeline, writes ring buffers (raw, filtered, envelope)
and queues events. Readers (the GUI timer) take snapshots and drain events; they never run DSP.
Settings changes and calibration travel to the worker as commands applied between chunks.
A device error stops the stream, is logged, and is reported through :attr:`state`.
"""

from __future__ import annotations

import bisect
import collections
import copy
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from devices.drivers.base import Device, DeviceError, Marker
from devices.session.display import DisplayRing
from devices.session.states import SessionState
from dsp.baseline import BaselineEstimate
from dsp.contract import Chunk, Role, StreamInfo
from dsp.events import Event
from dsp.pipeline import Pipeline, continued
from dsp.quality import ChannelQuality, QualityMonitor, QualitySettings
from dsp.reps import RepResult
from dsp.ringbuffer import RingBuffer
from dsp.settings import DspSettings, SettingsSchedule

log = logging.getLogger(__name__)
Array = NDArray[np.float64]

#: seconds before a seek's target that the full pipeline runs (the rest of the pre-roll only
#: primes the baseline): the detector, artefact scan and rep tracker settle well within it
SEEK_SETTLE_S = 3.0


@dataclass(frozen=True)
class TimedEvent:
    """An event with the host time its deciding chunk arrived and the time it was ready."""

    event: Event
    arrived: float
    ready: float


#: a lane's display scale is at least this times the onset threshold (µV RMS), see
#: LiveSession._display_scale
DISPLAY_FLOOR_X_THRESHOLD = 5.0


@dataclass(frozen=True)
class Snapshot:
    """Display data for the newest ``seconds``: rows at times ``t`` (s). When decimated, raw
    and filtered hold min/max pairs per bin (peaks survive) and the envelope is sampled."""

    start: int  # absolute index of the first sample covered
    fs: float
    t: Array
    raw: Array
    filtered: Array
    envelope: Array
    thresholds: Array  # per channel, envelope units (uV RMS) equivalent of the onset threshold
    scale: Array  # per channel display amplitude (robust peak of the recent filtered signal)


@dataclass(frozen=True)
class CalibrationResult:
    kind: str  # "rest" | "reference"
    channels: tuple[int, ...]
    values: dict[str, Any]


#: the least wall time a rate is measured over
RATE_SPAN_S = 0.5


@dataclass
class SessionStats:
    samples: int = 0
    gaps: int = 0
    lost_samples: int = 0
    chunks: int = 0
    busy_s: float = 0.0
    started: float = 0.0
    last_latency_s: float = 0.0
    rate_hz: float = 0.0  # samples read per second of wall clock (a replay: × its speed)
    delivered: int = 0  # samples read from the device: only grows (a seek restarts ``samples``)
    _rate_window: collections.deque[tuple[float, int]] = field(
        default_factory=lambda: collections.deque(maxlen=200)
    )
    _end: int | None = None  # stream index after the last chunk counted

    def count(self, start: int, n: int, now: float) -> None:
        """A chunk of ``n`` samples from stream index ``start`` was read at ``now``: the rate
        is the stream's advance per wall second, samples the device lost included (a lossy
        board still runs at its rate). Only forward steps count: a seek restarts the window."""
        end = start + n
        if self._end is not None and start >= self._end:
            self.delivered += end - self._end  # (a gap is samples the device did send)
        else:
            self.delivered += n
            if self._end is not None:
                self._rate_window.clear()  # a jump back: what came before is another span
                self.rate_hz = 0.0
        self._end = end
        self._rate_window.append((now, self.delivered))
        (t_a, n_a), (t_b, n_b) = self._rate_window[0], self._rate_window[-1]
        # (0: not known yet; two chunks a few ms apart are no measure of a rate)
        self.rate_hz = (n_b - n_a) / (t_b - t_a) if t_b - t_a >= RATE_SPAN_S else 0.0

    def restart_rate(self) -> None:
        """The stream jumps (a seek): the rate starts again from the next chunk."""
        self._rate_window.clear()
        self._end = None
        self.rate_hz = 0.0


Command = Callable[["LiveSession"], None]


def _nan_percentile(x: Array, q: float) -> Array:
    """Per-column percentile ignoring NaN; NaN for a column with no data (without the
    RuntimeWarning numpy raises for all-NaN columns, e.g. at the very start of a stream)."""
    out = np.full(x.shape[1], np.nan)
    ok = np.isfinite(x).any(axis=0)
    if ok.any():
        out[ok] = np.nanpercentile(x[:, ok], q, axis=0)
    return out


def _minmax(x: Array, k: int) -> Array:
    """Interleaved min and max of each bin of ``k`` rows (``len(x)`` is a multiple of k)."""
    bins = x.reshape(-1, k, x.shape[1])
    out = np.empty((2 * bins.shape[0], x.shape[1]))
    out[0::2] = bins.min(axis=1)
    out[1::2] = bins.max(axis=1)
    return out


class LiveSession:
    def __init__(
        self,
        device: Device,
        settings: DspSettings | None = None,
        *,
        buffer_s: float = 32.0,
        poll_s: float = 0.002,
        on_raw: Callable[[Chunk], None] | None = None,
        roles: dict[Role, int] | None = None,
    ) -> None:
        self.device = device
        self.roles = roles  # overrides the device's own channel-to-muscle mapping
        # Called on the worker when a verdict is queued, so a GUI can draw it at once instead
        # of at its next timer tick (it must only post a wake-up, e.g. emit a Qt signal).
        self.on_verdict: Callable[[], None] | None = None
        self.settings = settings or DspSettings()
        self.buffer_s = buffer_s
        self.poll_s = poll_s
        self.on_raw = on_raw
        self.info: StreamInfo | None = None
        self.pipeline: Pipeline | None = None
        self.state: SessionState = SessionState.IDLE
        self.error: str | None = None
        self.stats = SessionStats()
        self.markers: collections.deque[Marker] = collections.deque(maxlen=10_000)
        self.reference: Array | None = None  # per channel envelope value of the reference
        self._events: collections.deque[TimedEvent] = collections.deque(maxlen=10_000)
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._threaded = True
        self._stop = threading.Event()
        self._collect: tuple[str, int, list[Array], Callable[[Array], None]] | None = None
        self._pristine: tuple[StreamInfo, DspSettings, Pipeline] | None = None  # see seek
        # A replayed recording's settings changes still ahead: (index, settings) ascending.
        # The pipeline goes on with each from its index, as the live session that recorded
        # it did (see follow).
        self._changes: list[tuple[int, DspSettings]] = []
        self.schedule: SettingsSchedule | None = None
        self._quality_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> StreamInfo:
        self.state = SessionState.CONNECTING
        try:
            info = self.device.open()
            if self.roles is not None:
                info = dataclasses.replace(info, roles=self.roles)
            info.validate_roles()
        except Exception as exc:
            self._fail(exc)
            raise
        self.info = info
        self.pipeline = Pipeline(info, self.settings, display=True)
        cap = round(self.buffer_s * info.fs)
        self.raw = RingBuffer(cap, info.n_channels)
        self.filtered = RingBuffer(cap, info.n_channels)
        self.envelope = RingBuffer(cap, info.n_channels)
        self.quality = QualityMonitor(
            info.fs, info.n_channels, QualitySettings(line_freq=self.settings.notch_hz)
        )
        self._thr_uv = np.full(info.n_channels, np.nan)
        self._scale = np.full(info.n_channels, np.nan)
        self.display: DisplayRing | None = None
        self._thr_due = -1
        self.state = SessionState.OPEN
        return info

    def start(self, threaded: bool = True) -> None:
        if self.info is None:
            self.open()
        self.device.start()
        self.stats.started = time.monotonic()
        self.state = SessionState.STREAMING
        self._stop.clear()
        self._threaded = threaded
        if threaded:
            self._thread = threading.Thread(target=self._run, name="acquisition", daemon=True)
            self._thread.start()

    def resume_after_end(self) -> bool:
        """A replay that reached its end goes on (after a seek): the worker runs again on
        the open device. False if the session had not finished."""
        if self.state != SessionState.FINISHED or self.info is None:
            return False
        self.state = SessionState.STREAMING
        self._stop.clear()
        if self._threaded:
            self._thread = threading.Thread(target=self._run, name="acquisition", daemon=True)
            self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.state == SessionState.STREAMING:
            try:
                self.device.stop()
            except Exception as exc:  # stopping a broken device must not raise in the GUI
                log.warning("device stop failed: %s", exc)
            self.state = SessionState.STOPPED

    def close(self) -> None:
        self.stop()
        try:
            self.device.close()
        except Exception as exc:
            log.warning("device close failed: %s", exc)
        self.state = SessionState.CLOSED

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- worker ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.pump_once():
                    if self.device.finished:
                        self._finish()
                        return
                    time.sleep(self.poll_s)
            except Exception as exc:
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        msg = str(exc) if isinstance(exc, DeviceError) else f"{type(exc).__name__}: {exc}"
        # Whoever runs the session reports the error once (status bar, one CLI line); the
        # traceback of an unexpected one is for developers (-vv).
        log.info("stream stopped: %s", msg)
        log.debug("stream stopped", exc_info=exc)
        self.error = msg
        self.state = SessionState.ERROR

    def _finish(self) -> None:
        assert self.pipeline is not None
        now = time.monotonic()
        for ev in self.pipeline.finish():
            self._events.append(TimedEvent(ev, now, now))
        self.state = SessionState.FINISHED

    def pump_once(self) -> bool:
        """Apply pending commands, read the device once and process; False if no data."""
        assert self.pipeline is not None and self.info is not None
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                break
            cmd(self)
        chunk = self.device.read()
        self.markers.extend(self.device.drain_markers())
        if chunk is None:
            return False
        while self._changes and self._changes[0][0] < chunk.stop:
            # a recorded settings change within this chunk: the samples before it with the
            # old settings, the rest with the new
            at, settings = self._changes.pop(0)
            if at > chunk.start:
                k = at - chunk.start
                self._process(Chunk(chunk.data[:k], chunk.start, chunk.timestamp))
                chunk = Chunk(chunk.data[k:], at, chunk.timestamp)
            self._go_on_with(settings)
        self._process(chunk)
        return True

    def _go_on_with(self, settings: DspSettings) -> None:
        """On the worker: a pipeline with ``settings`` goes on from the current one (see
        :meth:`_continued`), keeping a calibrated rest baseline where the statistic's units
        are unchanged."""
        assert self.info is not None and self.pipeline is not None
        old = self.pipeline
        self.settings = settings
        self.pipeline = self._continued(old, self.info, settings)
        if old.baseline.calibrated is None:
            pass
        elif not settings.same_statistic(old.settings):
            log.warning("filter/detector settings changed: the rest calibration is void")
        else:
            self.pipeline.set_baseline(old.baseline.calibrated)

    def follow(self, schedule: SettingsSchedule | None) -> None:
        """Replay with the settings a recording was made with: ``schedule.start`` from its
        start (call before :meth:`open`), each change from its index; None: the session's
        own settings throughout (the user chose others for this replay)."""
        self.schedule = schedule
        self._changes = list(schedule.changes) if schedule is not None else []
        if schedule is not None and self.pipeline is None:
            self.settings = schedule.start

    def _process(self, chunk: Chunk) -> None:
        """One chunk through the pipeline, the quality monitor and the rings."""
        assert self.pipeline is not None
        arrived = chunk.timestamp if chunk.timestamp > 0 else time.monotonic()
        t0 = time.perf_counter()
        out = self.pipeline.process(chunk)
        with self._quality_lock:
            self.quality.process(chunk.data)
        self.raw.write(chunk.start, chunk.data)
        if out.filtered is not None and out.envelope is not None:
            self.filtered.write(out.start, out.filtered)
            self.envelope.write(out.start, out.envelope)
            display = self.display
            if display is not None:  # rows the pipeline kept (duplicates are dropped)
                kept = chunk.data[chunk.data.shape[0] - out.filtered.shape[0] :]
                display.write(out.start, kept, out.filtered, out.envelope)
        ready = time.monotonic()
        verdict = False
        for ev in out.events:
            self._events.append(TimedEvent(ev, arrived, ready))
            verdict |= isinstance(ev, RepResult)
        if verdict and self.on_verdict is not None:
            self.on_verdict()
        if self.on_raw is not None:
            self.on_raw(chunk)
        self._collect_samples(chunk, out.filtered)
        self._update_threshold()
        st = self.stats
        st.busy_s += time.perf_counter() - t0
        st.chunks += 1
        st.samples = self.pipeline.samples
        st.gaps = self.pipeline.gaps
        st.lost_samples = self.pipeline.lost_samples
        st.last_latency_s = ready - arrived if chunk.timestamp > 0 else 0.0
        st.count(chunk.start, chunk.n_samples, ready)

    def run(self, duration_s: float | None = None, *, until_exhausted: bool = False) -> None:
        """Stream in the calling thread (headless use) until ``duration_s`` of stream time,
        :meth:`stop` from another thread, an error, or (``until_exhausted``) the first empty
        read of a source that delivers as fast as possible. Then settle the open rep."""
        if self.info is None:
            self.open()
        assert self.info is not None
        limit = None if duration_s is None else round(duration_s * self.info.fs)
        self.start(threaded=False)
        try:
            while not self._stop.is_set():
                got = self.pump_once()
                if limit is not None and self.stats.samples + self.stats.lost_samples >= limit:
                    break
                if not got:
                    if until_exhausted or self.device.finished:
                        break
                    time.sleep(self.poll_s)
        except Exception as exc:
            self._fail(exc)
            raise
        finally:
            if self.state != SessionState.ERROR:
                self._finish()

    def pump(self, seconds: float) -> None:
        """Process ``seconds`` of stream synchronously (tests, as fast as the source allows)."""
        assert self.info is not None and self.pipeline is not None

        def done() -> int:
            assert self.pipeline is not None
            return self.pipeline.samples + self.pipeline.lost_samples

        target = done() + round(seconds * self.info.fs)
        replay = self.device.replay()
        while done() < target:
            if not self.pump_once() and (self.device.finished or (replay and replay.paused)):
                break  # (a paused replay delivers nothing until it plays again)
        if self.device.finished and self.state == SessionState.STREAMING:
            self._finish()  # as the worker does at the end of a file

    # -- reader side ------------------------------------------------------------------------
    def drain_events(self) -> list[TimedEvent]:
        out = []
        while self._events:
            out.append(self._events.popleft())
        return out

    def _bin_size(self, n: int, max_points: int | None) -> int:
        return 1 if not max_points or n <= max_points else 2 * int(np.ceil(n / max_points))

    def set_display(self, k: int) -> None:
        """Keep min/max bins of ``k`` samples on the worker (rebuilt from the buffers)."""

        def cmd(s: LiveSession) -> None:
            assert s.info is not None
            ring = DisplayRing(k, int(np.ceil(s.raw.capacity / k)) + 1, s.info.n_channels)
            n = min(s.raw.end, s.raw.capacity)
            start, raw = s.raw.snapshot(n)
            _, filt = s.filtered.snapshot(n)
            _, env = s.envelope.snapshot(n)
            ring.write(start, raw, filt, env)
            s.display = ring

        self.post(cmd)

    def snapshot(self, seconds: float, max_points: int | None = None, raw: bool = True) -> Snapshot:
        """Display data for the newest ``seconds``; with ``max_points``, min/max-decimated to
        about that many points per channel (the worker keeps the bins; see DisplayRing)."""
        assert self.info is not None and self.pipeline is not None
        fs = self.info.fs
        n = round(seconds * fs)
        k = self._bin_size(n, max_points)
        thr, scale = self._thr_uv.copy(), self._scale.copy()
        display = self.display
        if k > 1 and display is not None and display.k == k:
            first, filt, rows, env = display.snapshot(int(np.ceil(n / k)), raw)
            t = (first * k + np.arange(filt.shape[0]) * (k // 2)) / fs
            return Snapshot(first * k, fs, t, rows, filt, np.repeat(env, 2, axis=0), thr, scale)
        if k > 1:
            self.set_display(k)  # from the next frame on
        start, filt = self.filtered.snapshot(n)
        _, env = self.envelope.snapshot(n)
        rows = self.raw.snapshot(n)[1] if raw else np.empty((0, filt.shape[1]))
        if k == 1:
            return Snapshot(start, fs, (start + np.arange(n)) / fs, rows, filt, env, thr, scale)
        cut = (start + n) % k
        lead = (-start) % k
        sl = slice(lead, n - cut)
        filt, env = filt[sl], env[sl]
        rows = _minmax(rows[sl], k) if raw else rows
        t = (start + lead + np.arange(0, filt.shape[0], k // 2)) / fs
        return Snapshot(start + lead, fs, t, rows, _minmax(filt, k), env[:: k // 2], thr, scale)

    def _update_threshold(self) -> None:
        """Refresh the drawn threshold twice a second (worker side: it reads the buffers)."""
        assert self.info is not None
        due = self.stats.samples // max(1, round(0.5 * self.info.fs))
        if due != self._thr_due:
            self._thr_due = due
            self._thr_uv = self._threshold_uv()
            self._scale = self._display_scale()

    def _display_scale(self) -> Array:
        # Lanes scale to a robust peak of the last seconds; they grow at once, shrink slowly.
        assert self.info is not None
        _, filt = self.filtered.snapshot(round(5 * self.info.fs))
        amp = _nan_percentile(np.abs(filt[::4]), 99.5)
        # At rest the lanes' noise alone filled them (stopped 1.4 s in, every lane looked
        # active): a half lane spans at least 5x the onset threshold (as an RMS amplitude;
        # rest noise's peaks then reach about a third of it, the threshold a fifth).
        amp = np.fmax(amp, DISPLAY_FLOOR_X_THRESHOLD * self._thr_uv)
        if self.reference is not None:  # (a reference contraction sets the lane: "% ref")
            ref = 3.0 * self.reference
            amp = np.where(np.isfinite(ref) & (ref > 0), ref, amp)
        old = self._scale
        new = np.where(np.isfinite(old), np.where(amp > old, amp, 0.8 * old + 0.2 * amp), amp)
        return np.where(np.isfinite(new) & (new > 0), new, 1.0)

    def _threshold_uv(self) -> Array:
        """The onset threshold expressed as an RMS amplitude, for drawing over envelopes."""
        assert self.pipeline is not None
        b = self.pipeline.baseline
        mean, sd = b.mean, b.sd
        level = mean + self.settings.k_on * sd
        if self.settings.detector == "power":
            return np.sqrt(np.maximum(level, 0.0))
        # TKEO of a narrow-band signal ~ A^2 w^2 / 2 vs power A^2 / 2: scale by the rest ratio.
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = level / mean
        return np.sqrt(np.maximum(ratio, 0.0)) * self._rest_rms()

    def _rest_rms(self) -> Array:
        assert self.info is not None
        _, env = self.envelope.snapshot(round(5 * self.info.fs))
        return _nan_percentile(env, 10)

    def quality_report(self, recent: bool = True) -> list[ChannelQuality]:
        with self._quality_lock:
            return self.quality.recent() if recent else self.quality.report()

    # -- commands (run on the worker between chunks) ------------------------------------------
    def post(self, command: Command) -> None:
        """Run ``command`` on the worker between chunks (at once when no worker runs)."""
        if self.running:
            self._commands.put(command)
        else:
            command(self)

    def apply_settings(self, settings: DspSettings) -> None:
        def cmd(s: LiveSession) -> None:
            s.follow(None)  # (a replay: the user's settings from now on, not the recording's)
            s._go_on_with(settings)

        self.post(cmd)

    def apply_roles(self, roles: dict[Role, int]) -> StreamInfo:
        """Re-map channels to muscles mid-stream (a new pipeline on the same index line)."""
        assert self.info is not None
        info = dataclasses.replace(self.info, roles=roles)
        info.validate_roles()
        self.roles = roles

        def cmd(s: LiveSession) -> None:
            old = s.pipeline
            assert old is not None
            s.info = info
            s.pipeline = s._continued(old, info, s.settings)

        self.post(cmd)
        return info

    def _continued(self, old: Pipeline, info: StreamInfo, settings: DspSettings) -> Pipeline:
        """A pipeline that goes on where ``old`` stopped (settings or mapping changed
        mid-stream), primed from the raw samples kept (the last ``buffer_s``), as a seek
        primes it (see :func:`dsp.pipeline.continued`)."""
        n = min(self.raw.end, self.raw.capacity)
        start, raw = self.raw.snapshot(n)
        return continued(old, info, settings, start, raw)

    def calibrate_rest(self, seconds: float, done: Callable[[CalibrationResult], None]) -> None:
        """Record ``seconds`` of rest, then fix the baseline from it."""

        def finish(raw: Array) -> None:
            assert self.pipeline is not None
            est = self.pipeline.calibrate_rest(raw)
            done(CalibrationResult("rest", tuple(range(raw.shape[1])), est.to_dict()))

        self.post(lambda s: s._start_collect("raw", seconds, finish))

    def calibrate_reference(
        self, channels: list[int], seconds: float, done: Callable[[CalibrationResult], None]
    ) -> None:
        """Record a reference contraction; the peak 250 ms RMS becomes 100 % for ``channels``."""

        def finish(filtered: Array) -> None:
            assert self.info is not None
            w = max(1, round(0.25 * self.info.fs))
            sq = np.nan_to_num(filtered) ** 2
            c = np.cumsum(np.vstack([np.zeros((1, sq.shape[1])), sq]), axis=0)
            rms = np.sqrt(np.maximum((c[w:] - c[:-w]) / w, 0))
            peak = rms.max(axis=0) if len(rms) else np.zeros(sq.shape[1])
            if self.reference is None:
                self.reference = np.full(self.info.n_channels, np.nan)
            for ch in channels:
                self.reference[ch] = peak[ch]
            done(
                CalibrationResult(
                    "reference",
                    tuple(channels),
                    {"peak_rms_uv": [float(peak[ch]) for ch in channels]},
                )
            )

        self.post(lambda s: s._start_collect("filtered", seconds, finish))

    def seek(
        self,
        index: int,
        preroll_s: float = 60.0,
        settle_s: float = SEEK_SETTLE_S,
        rep_ends: Sequence[int] = (),
        settings: DspSettings | None = None,
    ) -> None:
        """Replay sources: continue from sample ``index``, with filters, baseline (its history
        is 60 s) and detector settled at the target as in a full pass, and no events from
        before it. ``settings``: use these from now on (the pre-roll runs with them).

        A source that reads by range (``read_range``, e.g. a file) costs little: the minute
        before the target only primes the baseline's history (filters, no detector; see
        :meth:`Pipeline.prime_baseline`), and the full pipeline runs the last ``settle_s``
        (the detector, artefact scan and rep tracker settle within a few seconds). Within the
        file's first half minute (while a full pass may still re-judge its first reps), and
        for other sources, the full pipeline re-runs the pre-roll, flat out.

        ``rep_ends``: where the file's reps end (a review's index of the whole file): the reps
        found from the full pass on are numbered after those that ended before it, as in one
        pass from the file's start (the panel said "rep 4" at the file's rep 15). A rep under
        way where the full pass begins is found again there and keeps its number."""

        def cmd(s: LiveSession) -> None:
            assert s.info is not None and s.pipeline is not None
            device = s.device.replay()  # the transport; samples come through read() as ever
            if device is None:
                raise DeviceError("this source cannot seek")
            if settings is not None:  # the user's, for the rest of this replay
                s.follow(None)
                s.settings = settings
            elif s.schedule is not None:  # the recording's, as they were at the target
                s.settings = s.schedule.at(index)
                s._changes = list(s.schedule.after(index))
            block = s.pipeline.baseline.block
            start = max(0, int(index - preroll_s * s.info.fs))
            start -= start % block  # baseline blocks stay aligned as in a full pass
            calibrated = s.pipeline.baseline.calibrated
            s.pipeline = s._fresh_pipeline()
            if calibrated is not None:
                s.pipeline.set_baseline(calibrated)
            reader = getattr(device, "read_range", None)
            full_from = max(start, int(index - settle_s * s.info.fs))
            full_from -= full_from % block
            # From the file's start, a full pass re-judges its first reps until the baseline is
            # sound (at the latest 4 x rejudge_after_s in): priming is a full pass from then on.
            early = round(4 * s.settings.rejudge_after_s * s.info.fs)
            primed = callable(reader) and full_from > start and (start > 0 or full_from >= early)
            for ring in (s.raw, s.filtered, s.envelope):
                ring.clear(start)
            if primed:
                assert callable(reader)
                # the display's history too: only what the rings keep (buffer_s) is shown
                keep = max(start, full_from - s.raw.capacity)
                raw = np.asarray(reader(start, full_from))
                shown = s.pipeline.prime_baseline(start, raw, display_from=keep)
                assert shown is not None
                s.raw.write(keep, raw[keep - start :])
                s.filtered.write(keep, shown[0])
                s.envelope.write(keep, shown[1])
                start = full_from
            else:
                s.pipeline.resume_at(start)
            if rep_ends:
                s.pipeline.number_from(bisect.bisect_right(sorted(rep_ends), start))
            s.display = None
            s.stats.restart_rate()  # (a jump forward is no burst of samples either)
            speed = device.speed
            device.seek(start)
            device.set_speed(None)
            device.play()
            try:
                while device.position < index:
                    chunk = s.device.read()
                    if chunk is None:
                        if device.at_end:
                            break
                        continue
                    cut = max(0, min(chunk.n_samples, index - chunk.start))
                    out = s.pipeline.process(Chunk(chunk.data[:cut], chunk.start, chunk.timestamp))
                    if out.filtered is not None and out.envelope is not None and cut:
                        s.raw.write(chunk.start, chunk.data[:cut])
                        s.filtered.write(out.start, out.filtered)
                        s.envelope.write(out.start, out.envelope)
                    if cut < chunk.n_samples:
                        device.seek(index)
                        break
            finally:
                device.set_speed(speed)
            s._events.clear()  # verdicts of the pre-roll belong to the past

        self.post(cmd)

    def _fresh_pipeline(self) -> Pipeline:
        """A new pipeline for the current stream and settings: a copy of one built once (the
        filter design is most of a new pipeline's cost, and a seek wants it small)."""
        assert self.info is not None
        cached = self._pristine
        if cached is None or cached[0] is not self.info or cached[1] != self.settings:
            cached = (self.info, self.settings, Pipeline(self.info, self.settings, display=True))
            self._pristine = cached
        # (the stream's info and the settings are immutable: shared, not copied)
        shared: dict[int, Any] = {id(self.info): self.info, id(self.settings): self.settings}
        return copy.deepcopy(cached[2], shared)

    def set_baseline(self, estimate: BaselineEstimate | None) -> None:
        self.post(lambda s: s.pipeline.set_baseline(estimate) if s.pipeline else None)

    def _start_collect(self, what: str, seconds: float, finish: Callable[[Array], None]) -> None:
        assert self.info is not None
        self._collect = (what, round(seconds * self.info.fs), [], finish)

    def _collect_samples(self, chunk: Chunk, filtered: Array | None) -> None:
        if self._collect is None:
            return
        what, need, parts, finish = self._collect
        parts.append(np.array(chunk.data if what == "raw" or filtered is None else filtered))
        have = sum(len(p) for p in parts)
        if have >= need:
            self._collect = None
            finish(np.concatenate(parts)[:need])
