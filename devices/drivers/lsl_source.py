"""An EMG stream from Lab Streaming Layer: Delsys Trigno, PLUX/biosignalsplux, BrainVision or
any LSL outlet with a regular numeric stream.

The stream is found by name (or ``type`` / ``source_id``) with a bounded wait; its channel
labels and units come from the description (``desc/channels/channel/label`` and ``unit``) and
samples are converted to microvolts. Nothing here talks to the network before :meth:`open`
(LSL stays off unless a user picks it); :mod:`pylsl` is imported then, not at import time.

Time. Each sample's LSL timestamp (corrected by the inlet's clock offset, so it is host time:
``pylsl.local_clock`` == ``time.monotonic`` on Linux) is mapped to the stream index by
:class:`TimeMap`. Indices count samples; the timestamps decide where a count jumps (a gap):
samples late beyond ``gap_tolerance_s`` for longer than ``confirm_s`` (or right after a
silence) are placed by their time, so the jump is the time that went missing; shorter
lateness is jitter and moves nothing. The inlet runs with ``proc_none`` and the clock offset
is applied here, for two reasons: liblsl's ``proc_dejitter`` fits the time stamps over the
*sample count* (a recursive least-squares line with a 90 s half-time), so a run of missing
samples is smeared over a minute instead of showing as a gap; and its ``proc_clocksync``
queries the offset from inside ``pull_chunk``, a wait this driver cannot bound, whereas
``time_correction(timeout=0)`` here never blocks.

Reconnect. An outlet silent for ``silence_s`` makes ``link_state`` "disconnected"; liblsl
recovers an inlet by itself when the outlet (same ``source_id``) comes back, and a stream
without a source id is resolved again by name on a background thread. The outage is one
counted gap of the elapsed time. ``finished`` stays False: a live source never ends.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from devices.drivers.base import Device, DeviceError, register
from dsp.contract import Chunk, ContractError, StreamInfo

log = logging.getLogger(__name__)

#: how long open() waits for the named stream (LSL answers within milliseconds on a LAN)
RESOLVE_TIMEOUT_S = 2.0
#: how long a listing waits for answers
LIST_WAIT_S = 1.0
#: how long a listing waits for one stream's description (labels, units)
DESCRIBE_S = 1.0
#: no sample for this long: the outlet is gone ("disconnected")
SILENCE_S = 1.0
#: lateness of a sample's time stamp against the stream's time line that is still jitter
GAP_TOLERANCE_S = 0.02
#: lateness beyond the tolerance must last this long (of stream time) to be a gap: a sender
#: that stamps its chunks when it pushes them is late by its scheduling delay now and then
CONFIRM_S = 0.25
#: the time line follows a device clock that runs slower than its nominal rate with this
#: time constant (a faster one is followed at once: time stamps are never early)
FOLLOW_TAU_S = 5.0
#: the inlet's buffer: what survives a consumer that stalls (at 2 kHz x 16 float32: 3.8 MB)
MAX_BUFFER_S = 30
#: how often the clock offset is asked again (liblsl measures it every few seconds anyway)
CLOCK_REFRESH_S = 2.0
#: at most this much of the stream per read (a backlog is delivered over several reads)
MAX_READ_S = 0.5


def import_pylsl() -> ModuleType:
    """pylsl, or one clear line. (Loading liblsl reads its config, LSLAPICFG, once.)"""
    try:
        import pylsl
    except Exception as exc:  # ImportError, or liblsl failing to load (RuntimeError)
        raise DeviceError(f"LSL is not available: {exc}") from None
    return pylsl


@dataclass(frozen=True)
class LslStream:
    """One stream an LSL resolve found, as listed to a user."""

    name: str
    type: str
    channel_count: int
    rate: float  # nominal rate; 0 = irregular (markers)
    channel_format: str  # "float32", "string", ...
    host: str
    source_id: str
    labels: tuple[str, ...] = ()  # from the description, when it was read
    units: tuple[str, ...] = ()

    @property
    def is_string(self) -> bool:
        return self.channel_format == "string"

    @property
    def usable(self) -> bool:
        """A stream fireorder can read as EMG: numbers at a regular rate."""
        return not self.is_string and self.rate > 0

    def describe(self) -> str:
        """``'Trigno' (EMG, 8 ch @ 2000 Hz)``; markers and irregular streams say so."""
        kind = self.type or "no type"
        if self.is_string:
            what = "markers"
        elif self.rate <= 0:
            what = f"{self.channel_count} ch, irregular rate"
        else:
            what = f"{self.channel_count} ch @ {self.rate:g} Hz"
        return f"{self.name!r} ({kind}, {what})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "channels": self.channel_count,
            "rate_hz": self.rate,
            "format": self.channel_format,
            "host": self.host,
            "source_id": self.source_id,
            "labels": list(self.labels),
            "units": list(self.units),
        }


_FORMATS = {1: "float32", 2: "double64", 3: "string", 4: "int32", 5: "int16", 6: "int8", 7: "int64"}


def channel_labels(info: Any) -> tuple[list[str], list[str]]:
    """Labels and units of ``info``'s channels from ``desc/channels/channel``; a missing or
    empty label is ``chN``, a repeated one gets ``_2``, ``_3`` (names must be unique)."""
    n = int(info.channel_count())
    labels: list[str] = []
    units: list[str] = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(labels) < n:
        labels.append(ch.child_value("label").strip())
        units.append(ch.child_value("unit").strip())
        ch = ch.next_sibling("channel")
    labels += [""] * (n - len(labels))
    units += [""] * (n - len(units))
    seen: set[str] = set()
    out = []
    for i, label in enumerate(labels):
        name = label or f"ch{i + 1}"
        base, k = name, 2
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        out.append(name)
    return out, units


def stream_of(info: Any, described: bool = False) -> LslStream:
    labels, units = channel_labels(info) if described else ([], [])
    return LslStream(
        name=str(info.name()),
        type=str(info.type()),
        channel_count=int(info.channel_count()),
        rate=float(info.nominal_srate()),
        channel_format=_FORMATS.get(int(info.channel_format()), "unknown"),
        host=str(info.hostname()),
        source_id=str(info.source_id()),
        labels=tuple(labels),
        units=tuple(units),
    )


def describe_info(pylsl: ModuleType, info: Any, timeout_s: float) -> Any:
    """The full description of a resolved stream (a resolve returns it without ``desc``),
    or the short one if the outlet does not answer within ``timeout_s``."""
    try:
        inlet = pylsl.StreamInlet(info, max_buflen=1, recover=False)
        try:
            return inlet.info(timeout=timeout_s)
        finally:
            inlet.close_stream()
            del inlet
    except Exception as exc:  # (pylsl.TimeoutError, LostError): the listing still shows it
        log.info("LSL stream %r: no description (%s)", info.name(), exc)
        return info


def resolve(pylsl: ModuleType, pred: str | None, wait_s: float, first: bool) -> list[Any]:
    """The streams matching ``pred`` (all: None) that answer within ``wait_s``; with
    ``first``, as soon as one does. A continuous resolver polled here, because liblsl's
    one-shot resolves (``resolve_bypred``, ``resolve_streams``) overran their timeout by
    5.5 s in three of four tries on the loopback config (the unicast RTT of its peers)."""
    resolver = pylsl.ContinuousResolver(pred=pred) if pred else pylsl.ContinuousResolver()
    deadline = time.monotonic() + wait_s
    try:
        while True:
            found = list(resolver.results())
            if (first and found) or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)
    finally:
        del resolver


def list_streams(wait_s: float = LIST_WAIT_S, describe: bool = True) -> list[LslStream]:
    """Every LSL stream that answers within ``wait_s`` (name, type, channels, rate, host,
    source id; with ``describe`` also the channel labels of the usable ones)."""
    pylsl = import_pylsl()
    infos = resolve(pylsl, None, wait_s, first=False)
    found = [stream_of(info) for info in infos]
    wanted = [i for i, s in enumerate(found) if describe and s.usable]
    if wanted:
        # side by side: an outlet that just quit is still listed for a few seconds and makes
        # its description wait the whole timeout
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
            full = list(pool.map(lambda i: describe_info(pylsl, infos[i], DESCRIBE_S), wanted))
        for i, info in zip(wanted, full, strict=True):
            found[i] = stream_of(info, described=True)
    found.sort(key=lambda s: (not s.usable, s.name.lower(), s.host))
    return found


def _quote(value: str) -> str:
    return "'" + value.replace("'", "") + "'"


def predicate(name: str | None, type_: str | None, source_id: str | None) -> str:
    """An LSL XPath predicate (``name='X' and type='EMG'``)."""
    parts = [
        f"{key}={_quote(val)}"
        for key, val in (("name", name), ("type", type_), ("source_id", source_id))
        if val
    ]
    if not parts:
        raise DeviceError("lsl: give a stream name (--stream NAME; `fireorder devices --lsl`)")
    return " and ".join(parts)


def what_found(streams: Sequence[LslStream]) -> str:
    return ", ".join(s.describe() for s in streams) if streams else "no LSL streams at all"


def selection(name: str | None, type_: str | None, source_id: str | None) -> str:
    """How a user named the stream: ``named 'X'``, ``of type 'EMG'``."""
    if name:
        return f"named {name!r}"
    return " and ".join(
        f"{k} {v!r}" for k, v in (("of type", type_), ("with source_id", source_id)) if v
    )


#: how long a resolve by name goes on looking for a second stream of that name (s)
SECOND_LOOK_S = 0.5


def resolve_stream(
    pylsl: ModuleType,
    name: str | None,
    type_: str | None = None,
    source_id: str | None = None,
    timeout_s: float = RESOLVE_TIMEOUT_S,
) -> tuple[Any, LslStream]:
    """The one stream a user named (pylsl's StreamInfo and its listing), waiting at most
    ``timeout_s``; a DeviceError that lists what there is when it is not there, and one for
    a marker or irregular stream, which is not EMG."""
    pred = predicate(name, type_, source_id)
    try:
        infos = resolve(pylsl, pred, timeout_s, first=True)
    except Exception as exc:
        raise DeviceError(f"lsl: cannot resolve streams: {exc}") from None
    what = selection(name, type_, source_id)
    if not infos:
        try:
            found = list_streams(wait_s=min(LIST_WAIT_S, timeout_s), describe=False)
        except DeviceError:
            found = []
        raise DeviceError(f"no LSL stream {what}; found: {what_found(found)}")
    if source_id is None:
        # a name is not unique on a lab network (two stations, a vendor default): look a
        # moment longer, and say which one is taken and how to pick the other
        try:
            infos = resolve(pylsl, pred, SECOND_LOOK_S, first=False) or infos
        except Exception as exc:
            log.debug("second look for LSL streams %s: %s", what, exc)
    if len(infos) > 1:
        taken = infos[0]
        others = ", ".join(
            f"source_id={i.source_id() or '(none)'} on {i.hostname()}" for i in infos[1:]
        )
        log.warning(
            "%d LSL streams %s; using source_id=%s on %s (also: %s); give --stream "
            "source_id=ID to choose",
            len(infos), what, taken.source_id() or "(none)", taken.hostname(), others,
        )  # fmt: skip
    short = stream_of(infos[0])
    if short.is_string:
        raise DeviceError(f"{short.name!r} is a marker stream; use --markers")
    if short.rate <= 0:
        raise DeviceError(
            f"{short.name!r} has an irregular rate: fireorder needs an EMG stream with a "
            "regular sampling rate"
        )
    return infos[0], short


# --------------------------------------------------------------------------------------
# time stamps -> stream indices
# --------------------------------------------------------------------------------------


@dataclass
class TimeMap:
    """Stream indices for time stamped samples (host seconds), at nominal rate ``fs``.

    The time line ``T(k) = t_a + (k - k_a) / fs`` runs along the earliest time stamps (a
    sender stamps late when it is delayed, never early). A sample's lateness is its time
    stamp minus ``T`` of the next index: within ``tolerance_s`` it is jitter and the sample
    gets the next index; beyond it for ``confirm_s`` of samples (or at once when
    ``resumed`` after a silence) the index jumps by the lateness -- a counted gap. An early
    sample pulls the line to itself. A slow device clock is followed (``follow_tau_s``).
    """

    fs: float
    tolerance_s: float = GAP_TOLERANCE_S
    confirm_s: float = CONFIRM_S
    follow_tau_s: float = FOLLOW_TAU_S
    next: int = 0
    gaps: int = 0
    lost: int = 0
    jitter_events: int = 0  # lateness beyond the tolerance that went away again (no gap)
    _t_a: float | None = None
    _k_a: int = 0
    _pending_from: int | None = None  # index where a run of late samples began
    _pending_min: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # (host time from which a line holds, t_a, k_a), oldest first; the last one follows
    _lines: list[tuple[float, float, int]] = field(default_factory=list, repr=False)

    def assign(
        self, t: NDArray[np.float64], resumed: bool = False
    ) -> list[tuple[int, int, int]]:
        """Runs ``(row_from, row_to, first_index)`` covering the rows of ``t`` in order."""
        n = int(t.shape[0])
        if n == 0:
            return []
        fs = self.fs
        tol = max(self.tolerance_s, 1.0 / fs)  # (so that a lateness beyond it is a sample)
        if self._t_a is None:
            self._t_a, self._k_a = float(t[0]), self.next
            self._new_line(float(t[0]))
        if resumed:  # a late run cut by the silence: the outage decides, at once
            self._pending_from = None
        runs: list[tuple[int, int, int]] = []
        confirm_n = max(1, round(self.confirm_s * fs))
        i = 0
        while i < n:
            k = self.next + np.arange(n - i)
            late = t[i:] - (self._t_a + (k - self._k_a) / fs)
            if self._pending_from is None:
                over = np.flatnonzero(late > tol)
                j = int(over[0]) if over.size else n - i
                if j > 0:  # on time (the usual whole chunk): the next indices
                    runs.append((i, i + j, self.next))
                    self.next += j
                    self._settle(late[:j])
                    i += j
                    continue
                if resumed and i == 0:  # late right after a silence: the outage, at once
                    self._jump(round(float(late[0]) * fs))
                    continue
                self._pending_from, self._pending_min = self.next, float(late[0])
            # a run of late samples: a gap once it lasts confirm_n samples, else jitter
            ok = np.flatnonzero(late <= tol)
            m = int(ok[0]) if ok.size else n - i
            due = max(0, confirm_n - (self.next - self._pending_from))
            if m > due:  # still late after confirm_n samples: the time really went missing
                self._pending_min = min(self._pending_min, float(late[: due + 1].min()))
                if due:
                    runs.append((i, i + due, self.next))
                    self.next += due
                    i += due
                self._jump(round(self._pending_min * fs))
                continue
            if m:
                self._pending_min = min(self._pending_min, float(late[:m].min()))
                runs.append((i, i + m, self.next))
                self.next += m
                i += m
            if ok.size:  # back on the line: it was jitter
                self.jitter_events += 1
                self._pending_from = None
        return _merge(runs)

    def _jump(self, jump: int) -> None:
        """A gap of ``jump`` samples before the next sample."""
        self._pending_from = None
        if jump <= 0:
            return
        # (the time line stays: the indices jump onto it)
        self.gaps += 1
        self.lost += jump
        self.next += jump

    def _settle(self, late: NDArray[np.float64]) -> None:
        """Move the line by what on-time samples say: at once to an early one, slowly
        towards late ones (a device clock slower than its nominal rate)."""
        if late.size == 0:
            return
        early = float(late.min())
        assert self._t_a is not None
        if early < 0:
            shift = early
        else:
            shift = float(np.mean(late)) * min(1.0, late.size / self.fs / self.follow_tau_s)
        with self._lock:
            self._t_a += shift
            if shift < -self.tolerance_s:  # time stamps went back (a reset clock): new line
                self._lines.append((self._t_a + (self.next - self._k_a) / self.fs, 0.0, 0))
            self._fix_last()

    def _new_line(self, t_from: float) -> None:
        with self._lock:
            self._lines.append((t_from, 0.0, 0))
            del self._lines[:-256]  # markers are placed within seconds, not hours back
            self._fix_last()

    def _fix_last(self) -> None:
        assert self._t_a is not None
        t_from = self._lines[-1][0]
        self._lines[-1] = (t_from, self._t_a, self._k_a)

    def index_at(self, t: float) -> int | None:
        """The index of the sample taken at host time ``t`` (None before the first one)."""
        with self._lock:
            if not self._lines:
                return None
            starts = [line[0] for line in self._lines]
            pos = max(0, bisect.bisect_right(starts, t) - 1)
            _, t_a, k_a = self._lines[pos]
        return max(0, k_a + round((t - t_a) * self.fs))


def _merge(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    for a, b, k in runs:
        if out and out[-1][1] == a and out[-1][2] + (out[-1][1] - out[-1][0]) == k:
            out[-1] = (out[-1][0], b, out[-1][2])
        else:
            out.append((a, b, k))
    return out


# --------------------------------------------------------------------------------------
# the device
# --------------------------------------------------------------------------------------


class LslSource(Device):
    """One regular numeric LSL stream as a :class:`~devices.drivers.base.Device`.

    ``stream`` is the stream's name (``type`` and ``source_id`` narrow or replace it);
    ``roles`` maps roles to channel labels (``{"glute_l": "EMG1", ...}``); without it a
    mapping is suggested from the labels (as for other sources).
    """

    name = "lsl"

    def __init__(
        self,
        stream: str | None = None,
        *,
        type: str | None = None,  # (the LSL property's name)
        source_id: str | None = None,
        roles: dict[str, str] | None = None,
        channels: dict[str, str] | None = None,  # (the file source's name for roles)
        timeout_s: float = RESOLVE_TIMEOUT_S,
        gap_tolerance_s: float = GAP_TOLERANCE_S,
        confirm_s: float = CONFIRM_S,
        silence_s: float = SILENCE_S,
        max_buffer_s: int = MAX_BUFFER_S,
    ) -> None:
        self.stream_name = (stream or "").strip() or None
        self.stream_type = (type or "").strip() or None
        self.source_id = (source_id or "").strip() or None
        self._pred = predicate(self.stream_name, self.stream_type, self.source_id)
        self.roles = dict(roles or channels or {})
        if not timeout_s > 0 or not silence_s > 0 or not gap_tolerance_s >= 0:
            raise DeviceError("lsl: timeouts must be > 0")
        self.timeout_s = float(timeout_s)
        self.gap_tolerance_s = float(gap_tolerance_s)
        self.confirm_s = float(confirm_s)
        self.silence_s = float(silence_s)
        self.max_buffer_s = int(max_buffer_s)
        self._pylsl: ModuleType | None = None
        self._inlet: Any = None
        self._info: StreamInfo | None = None
        self._stream: LslStream | None = None
        self._scale: NDArray[np.float64] | None = None
        self._buf: NDArray[Any] | None = None
        self._map: TimeMap | None = None
        self._ready: deque[Chunk] = deque()
        self._running = False
        self._state: str | None = None
        self._offset = 0.0
        self._next_clock = 0.0
        self._last_data = 0.0
        self._reconnects = 0
        self._samples = 0
        self._resolver: threading.Thread | None = None
        self._resolved: Any = None  # a new inlet the resolver thread found
        self._closing = threading.Event()

    # -- open ---------------------------------------------------------------------------
    def open(self) -> StreamInfo:
        pylsl = self._pylsl = import_pylsl()
        self._closing.clear()
        resolved, short = resolve_stream(
            pylsl, self.stream_name, self.stream_type, self.source_id, self.timeout_s
        )
        sid = str(resolved.source_id() or "")
        if sid:  # found again after an outage: this outlet, not another of the same name
            self._pred = predicate(self.stream_name, self.stream_type, sid)
        self._inlet = self._make_inlet(resolved)
        try:
            full = self._inlet.info(timeout=self.timeout_s)
        except Exception as exc:
            self.close()
            raise DeviceError(f"LSL stream {short.name!r} did not answer: {exc}") from None
        stream = self._stream = stream_of(full, described=True)
        self._offset = self._clock_offset(self.timeout_s, default=0.0)
        try:
            info = self._stream_info(stream)
        except DeviceError:
            self.close()
            raise
        self._info = info
        log.info("LSL stream %s on %s: %s", stream.describe(), stream.host, info.channel_names)
        return info

    def _make_inlet(self, info: Any) -> Any:
        assert self._pylsl is not None
        # proc_none: the clock offset and the dejittering are done here (module docstring)
        return self._pylsl.StreamInlet(
            info, max_buflen=self.max_buffer_s, recover=True, processing_flags=0
        )

    def _stream_info(self, stream: LslStream) -> StreamInfo:
        from devices.files.common import microvolt_factor

        names = stream.labels
        factors = [microvolt_factor(u) if u else None for u in stream.units]
        unknown = sorted({u or "(none)" for u, f in zip(stream.units, factors, strict=True)
                          if f is None})
        if unknown:
            log.warning(
                "LSL stream %r: unit %s is not a voltage fireorder knows; values taken as µV",
                stream.name, ", ".join(unknown),
            )
        self._scale = np.array([f if f is not None else 1.0 for f in factors], dtype=np.float64)
        try:
            roles = self.roles or _suggest(names)
            return StreamInfo.from_role_names(
                stream.rate, names, roles, units=stream.units, source=f"lsl:{stream.name}"
            )
        except ContractError as exc:
            raise DeviceError(
                f"LSL stream {stream.name!r}: {exc} (channels: {', '.join(names)})"
            ) from None

    def _clock_offset(self, timeout: float, default: float) -> float:
        """The inlet's clock offset (add to a time stamp for host time), or ``default`` when
        no estimate is there within ``timeout``."""
        try:
            return float(self._inlet.time_correction(timeout=timeout))
        except Exception as exc:  # pylsl.TimeoutError, LostError
            if timeout > 0:
                log.warning("LSL clock offset not measured (%s): taken as %.3f s", exc, default)
            return default

    @property
    def info(self) -> StreamInfo:
        if self._info is None:
            raise DeviceError("lsl source is not open")
        return self._info

    @property
    def stream(self) -> LslStream | None:
        return self._stream

    # -- run ------------------------------------------------------------------------------
    def start(self) -> None:
        info = self.info
        assert self._inlet is not None and self._stream is not None
        try:
            self._inlet.open_stream(timeout=self.timeout_s)
            self._inlet.flush()  # what queued between open and start is not this session's
        except Exception as exc:
            raise DeviceError(f"LSL stream {self._stream.name!r}: {exc}") from None
        fmt = self._stream.channel_format
        dtype = {"float32": np.float32, "double64": np.float64, "int32": np.int32,
                 "int16": np.int16, "int8": np.int8, "int64": np.int64}.get(fmt, np.float64)
        n = max(64, round(info.fs * 0.1))
        self._buf = np.zeros((n, info.n_channels), dtype=dtype)
        self._map = TimeMap(info.fs, self.gap_tolerance_s, self.confirm_s)
        self._ready.clear()
        self._last_data = time.monotonic()
        self._next_clock = self._last_data + CLOCK_REFRESH_S
        self._state = "streaming"
        self._running = True

    def stop(self) -> None:
        self._running = False

    def close(self) -> None:
        self._running = False
        self._closing.set()
        resolver, self._resolver = self._resolver, None
        if resolver is not None:
            resolver.join(timeout=2.0)
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            try:
                inlet.close_stream()
            except Exception as exc:  # a lost stream may fail to close; it is gone anyway
                log.debug("closing the LSL inlet: %s", exc)
            del inlet
        self._state = None

    def read(self) -> Chunk | None:
        if self._ready:
            return self._ready.popleft()
        if not self._running or self._inlet is None or self._buf is None:
            return None
        now = time.monotonic()
        if self._resolved is not None:  # the resolver found the stream again
            self._swap_inlet()
        if now >= self._next_clock:
            self._next_clock = now + CLOCK_REFRESH_S
            self._offset = self._clock_offset(0.0, default=self._offset)
        data, stamps = self._pull()
        if data is None or stamps is None:
            if self._state != "disconnected" and now - self._last_data > self.silence_s:
                self._state = "disconnected"
                log.warning(
                    "LSL stream %r: no data for %.1f s; waiting for it to come back",
                    self._stream.name if self._stream else "?", now - self._last_data,
                )
            return None
        resumed = self._state == "disconnected"
        if resumed:
            self._reconnects += 1
            log.warning("LSL stream %r is back", self._stream.name if self._stream else "?")
        self._state = "streaming"
        self._last_data = now
        assert self._map is not None and self._scale is not None
        host = stamps + self._offset
        values = data.astype(np.float64) * self._scale
        values.flags.writeable = False  # a fresh array: spare Chunk its defensive copy
        gaps_before = self._map.gaps
        for a, b, first in self._map.assign(host, resumed=resumed):
            # the host time the chunk's last sample was taken (never later than now)
            self._ready.append(Chunk(values[a:b], first, min(float(host[b - 1]), now)))
        if self._map.gaps > gaps_before:
            log.info("LSL gap: %d samples so far in %d gaps", self._map.lost, self._map.gaps)
        self._samples += int(values.shape[0])
        return self._ready.popleft()

    def _pull(self) -> tuple[NDArray[Any] | None, NDArray[np.float64] | None]:
        """What the inlet holds now (at most MAX_READ_S of it), or (None, None)."""
        assert self._buf is not None and self._pylsl is not None
        buf, parts, stamps, total = self._buf, [], [], 0
        limit = round(self.info.fs * MAX_READ_S)
        try:
            while total < limit:
                _, ts = self._inlet.pull_chunk(
                    timeout=0.0, max_samples=buf.shape[0], dest_obj=buf, as_numpy=True
                )
                n = len(ts)
                if n == 0:
                    break
                parts.append(buf[:n].copy())
                stamps.append(np.asarray(ts, dtype=np.float64))
                total += n
                if n < buf.shape[0]:
                    break
        except _lost_error():  # a stream without a source id: liblsl cannot recover it
            self._lost()
        if not parts:
            return None, None
        if len(parts) == 1:
            return parts[0], stamps[0]
        return np.concatenate(parts), np.concatenate(stamps)

    # -- a stream without a source id: resolved again by name ------------------------------
    def _lost(self) -> None:
        if self._resolver is not None:
            return
        log.warning(
            "LSL stream %s was lost; looking for it again",
            selection(self.stream_name, self.stream_type, self.source_id),
        )
        self._state = "disconnected"
        self._resolver = threading.Thread(target=self._resolve_loop, name="lsl-resolve",
                                          daemon=True)
        self._resolver.start()

    def _resolve_loop(self) -> None:
        pylsl = self._pylsl
        assert pylsl is not None
        while not self._closing.is_set():
            try:
                infos = resolve(pylsl, self._pred, 1.0, first=True)
                if infos:
                    inlet = self._make_inlet(infos[0])
                    inlet.open_stream(timeout=self.timeout_s)
                    self._resolved = inlet
                    return
            except Exception as exc:  # keep looking until closed
                log.debug("LSL re-resolve: %s", exc)
            self._closing.wait(0.5)

    def _swap_inlet(self) -> None:
        inlet, self._resolved = self._resolved, None
        old, self._inlet = self._inlet, inlet
        self._resolver = None
        try:
            old.close_stream()
        except Exception as exc:
            log.debug("closing the lost LSL inlet: %s", exc)
        self._offset = self._clock_offset(0.0, default=self._offset)

    # -- what callers may ask -------------------------------------------------------------------
    @property
    def link_state(self) -> str | None:
        return self._state

    @property
    def counters(self) -> dict[str, int]:
        m = self._map
        return {
            "samples": self._samples,
            "gaps": m.gaps if m else 0,
            "lost_samples": m.lost if m else 0,
            "reconnects": self._reconnects,
            "jitter_events": m.jitter_events if m else 0,
        }

    def index_at(self, t: float) -> int | None:
        m = self._map
        return m.index_at(t) if m is not None else None


def _lost_error() -> type[Exception]:
    from pylsl.util import LostError  # (not exported at pylsl's top level)

    return LostError


def _suggest(names: Sequence[str]) -> dict[str, str]:
    from devices.drivers.role_guess import suggest_roles

    return suggest_roles(names)


register("lsl", LslSource)
