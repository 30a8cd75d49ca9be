"""What a board sends, found out before a session opens it: channels, protocol, rate.

A serial board's wire carries no header: the channel count, the names (``label:value``
text fields) and the protocol only show in the data, and the rate only in its timing. So
:func:`discover_serial` opens the port, reads the first valid samples for about a second,
closes the port again and reports what it saw. Both parsers of
:mod:`devices.drivers.serial_protocol` read the same bytes, so a board speaking ``fob1``
while ``text`` was chosen is named, not reported as garbage. A BrainFlow board's layout is
its descriptor (:func:`discover_brainflow`, no session is prepared), an LSL stream's its
description (:func:`discover_lsl`, :func:`list_lsl_streams`: only when a user asks, as a
resolve sends LSL queries to the network).

With the channels known, :func:`suggest_roles` proposes a mapping (a stored one for the
device wins) and :meth:`Discovery.channels_option` spells it as ``--channels``.

Errors are one-line :class:`~devices.drivers.base.DeviceError`\\ s: port missing or busy, no
data, bytes that form no sample (baud rate or sketch).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import serial

from devices.drivers.base import DeviceError

# re-exported: the CLI, the window and the tests import them from here
from devices.drivers.role_guess import ROLE_ORDER, has_both_roles, suggest_roles  # noqa: F401
from devices.drivers.serial_protocol import Fob1Parser, Parsed, TextParser, make_parser

if TYPE_CHECKING:
    from devices.drivers.lsl_source import LslStream

log = logging.getLogger(__name__)

#: how long to wait for the first valid sample (an Arduino resets when its port opens and
#: runs its bootloader for about half a second first)
DEFAULT_TIMEOUT_S = 2.0
#: data right after the port opens may be a burst of what the OS, an adapter or the board
#: buffered while nobody read: never measured
SETTLE_S = 0.25
#: the rate is the slope of samples over arrival time in the last RATE_WINDOW_S, along the
#: on-time arrivals (measured: 998.6-1000.5 Hz for a 1 kHz writer on a pty, 10 ms blocks,
#: load average 14 on 2 cores); both halves of it must agree within RATE_AGREEMENT, else a
#: backlog is still draining and the look goes on, at most MAX_EXTRA_S longer (then the
#: rate is "unknown" rather than wrong)
RATE_WINDOW_S = 0.75
RATE_AGREEMENT = 0.15
MAX_EXTRA_S = 2.0
#: rates boards are commonly configured for; an estimate within 3 % is shown as one of these
COMMON_RATES_HZ = (
    100, 125, 200, 250, 256, 500, 512, 800, 1000, 1024, 1200, 1500, 1600,
    2000, 2048, 2500, 3000, 4000, 4096, 5000, 8000, 10000,
)  # fmt: skip
_READ_TIMEOUT_S = 0.05



@dataclass(frozen=True)
class Discovery:
    """What a source sends. ``rate_hz`` is an estimate (serial: host clock, with the
    device counter when there is one) or the descriptor's rate (BrainFlow)."""

    source: str  # "serial:/dev/ttyACM0", "brainflow:SYNTHETIC_BOARD", "lsl:Trigno"
    channel_names: tuple[str, ...]
    protocol: str  # "text", "fob1", "brainflow" or "lsl"
    rate_hz: float | None
    # "host clock", "device counter", "board descriptor", "stream description"
    rate_source: str
    samples: int = 0
    labelled: bool = False  # the names come from the board (text labels, descriptor)
    rows: tuple[int, ...] = ()  # BrainFlow rows of the channels
    messages: tuple[str, ...] = ()  # device messages ('# ...' text lines)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def nominal_hz(self) -> float | None:
        """The estimate as a common rate when within 3 % of one, else rounded."""
        return nominal_rate(self.rate_hz)

    def rate_text(self) -> str:
        rate = self.nominal_hz
        if rate is None:
            return "rate unknown"
        exact = self.rate_source in ("board descriptor", "stream description")
        return f"{rate:g} Hz" if exact else f"~{rate:g} Hz"

    def describe(self) -> str:
        """``4 channels ch1, ch2, ch3, ch4 (text, ~1000 Hz)``."""
        names = ", ".join(self.channel_names)
        n = self.n_channels
        return f"{n} channel{'s' if n != 1 else ''} {names} ({self.protocol}, {self.rate_text()})"

    def suggested_roles(self, stored: Mapping[str, str] | None = None) -> dict[str, str]:
        return suggest_roles(self.channel_names, stored)

    def channels_option(self, stored: Mapping[str, str] | None = None) -> str:
        """``glute_l=ch1,glute_r=ch2,...`` (the CLI's ``--channels``), or "" if none fits."""
        roles = self.suggested_roles(stored)
        return ",".join(f"{role}={name}" for role, name in roles.items())


def nominal_rate(rate: float | None) -> float | None:
    if rate is None or not rate > 0:
        return None
    near = min(COMMON_RATES_HZ, key=lambda r: abs(r - rate))
    if abs(near - rate) <= 0.03 * near:
        return float(near)
    return float(round(rate))


# --------------------------------------------------------------------------------------
# Serial
# --------------------------------------------------------------------------------------


def _open(port: str, baud: int) -> serial.SerialBase:
    from devices.drivers.serial_board import describe_open_error

    kwargs: dict[str, Any] = {"baudrate": int(baud), "timeout": _READ_TIMEOUT_S}
    if "://" not in port and os.name == "posix":
        kwargs["exclusive"] = True  # as the driver opens it: another program is an error
    try:
        ser = serial.serial_for_url(port, do_not_open=True, **kwargs)
        ser.open()
    except (OSError, ValueError, serial.SerialException) as exc:
        raise DeviceError(describe_open_error(port, exc)) from None
    return ser


class _Probe:
    """One parser of one protocol over the bytes read, with the arrival time of each sample
    run (for the rate)."""

    def __init__(self, parser: TextParser | Fob1Parser) -> None:
        self.parser = parser
        self.samples = 0
        self.t_first: float | None = None
        # (arrival time, stream position after the run): positions count lost samples too
        self.arrivals: list[tuple[float, int]] = []
        self.messages: list[str] = []

    def feed(self, data: bytes, now: float) -> None:
        parsed: Parsed = self.parser.feed(data)
        self.messages.extend(parsed.messages)
        if len(parsed):
            self.samples += len(parsed)
            if self.t_first is None:
                self.t_first = now
            self.arrivals.append((now, int(parsed.index[-1]) + 1))

    def rate(self, window_s: float = RATE_WINDOW_S) -> float | None:
        """Samples per second over the last ``window_s`` of arrivals (after settling), or
        None while its two halves disagree (a backlog draining faster than the board)."""
        if self.t_first is None or not self.arrivals:
            return None
        t_end = self.arrivals[-1][0]
        start = max(t_end - window_s, self.t_first + SETTLE_S)
        win = [(t, k) for t, k in self.arrivals if t >= start]
        if len(win) < 3 or win[-1][0] - win[0][0] < 0.5 * window_s:
            return None
        (t0, k0), (t1, k1) = win[0], win[-1]
        tm, km = min(win, key=lambda a: abs(a[0] - (t0 + t1) / 2))
        if not t0 < tm < t1:
            return None
        whole = (k1 - k0) / (t1 - t0)
        first, second = (km - k0) / (tm - t0), (k1 - km) / (t1 - tm)
        if whole <= 0 or abs(first - second) > RATE_AGREEMENT * whole:
            return None
        return _on_time_slope(
            np.array([a[0] for a in win]) - t0, np.array([a[1] for a in win], dtype=np.float64)
        )


def _on_time_slope(t: np.ndarray, k: np.ndarray) -> float | None:
    """Samples per second from arrivals (time ``t``, samples so far ``k``).

    Data can arrive late (this thread or the sender woke up late on a busy machine), never
    early: the board's pace is the line along the earliest arrivals. A least-squares line
    is fitted, the late half of the points (below it) dropped and the line fitted again,
    three times; with jittery wake-ups this is several times closer than the end points.
    """
    keep = np.ones(t.size, dtype=bool)
    slope = 0.0
    for _ in range(4):
        if np.count_nonzero(keep) < 3 or np.ptp(t[keep]) <= 0:
            break
        slope, icpt = np.polyfit(t[keep], k[keep], 1)
        resid = k - (icpt + slope * t)  # late arrivals: fewer samples than the line says
        keep = keep & (resid >= np.median(resid[keep]))
    return float(slope) if slope > 0 else None


def discover_serial(
    port: str,
    *,
    protocol: str | None = None,
    baud: int = 115200,
    seq: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Discovery:
    """Open ``port``, read the board for about a second after its first valid sample (at
    most ``timeout_s`` waiting for it), close it, and report what the board sends.

    ``protocol`` is the one the caller expects; the board's actual protocol is detected
    either way (both parsers read the bytes) and reported in ``Discovery.protocol``.
    ``seq``: the text protocol's first field is a sample counter (then it is not a channel).
    ``cancel`` ends the look early (a window closing); that is an error too.
    """
    if protocol not in (None, "text", "fob1"):
        raise DeviceError(f"serial: unknown protocol {protocol!r} (expected text or fob1)")
    probes = {
        "text": _Probe(make_parser("text", seq=seq, skip_first_line=True)),
        "fob1": _Probe(make_parser("fob1")),
    }
    ser = _open(port, baud)
    n_bytes = 0
    try:
        try:
            # what the OS held from before the port was opened is not the board's pace
            ser.reset_input_buffer()
        except (OSError, serial.SerialException) as exc:
            log.debug("reset_input_buffer on %s: %s", port, exc)
        t_open = clock()
        found: _Probe | None = None
        next_check = 0.0
        while True:
            if cancel is not None and cancel.is_set():
                raise DeviceError(f"looking at serial port {port} was cancelled")
            now = clock()
            if found is not None and found.t_first is not None:
                looked = now - found.t_first
                if looked >= SETTLE_S + RATE_WINDOW_S + MAX_EXTRA_S:
                    break
                if looked >= SETTLE_S + RATE_WINDOW_S and now >= next_check:
                    if found.rate() is not None:
                        break
                    next_check = now + 0.1
            elif now - t_open >= timeout_s:
                break
            try:
                data = ser.read(ser.in_waiting or 1)
            except (OSError, serial.SerialException) as exc:
                raise DeviceError(f"serial port {port} failed while reading: {exc}") from None
            if not data:
                continue
            n_bytes += len(data)
            now = clock()
            for probe in probes.values() if found is None else (found,):
                probe.feed(data, now)
            if found is None:
                # fob1 frames are CRC-checked: trust them first; text needs a valid line
                found = next((probes[p] for p in ("fob1", "text") if probes[p].samples), None)
    finally:
        try:
            ser.close()
        except Exception as exc:  # a vanished port may fail to close; it is gone anyway
            log.debug("closing %s: %s", port, exc)
    if found is None:
        raise DeviceError(_nothing_found(port, baud, timeout_s, n_bytes, probes))
    parser = found.parser
    n = parser.n_channels or 0
    names = parser.channel_names or tuple(f"ch{i + 1}" for i in range(n))
    labelled = isinstance(parser, TextParser) and parser.labels is not None
    counted = isinstance(parser, Fob1Parser) or seq
    result = Discovery(
        source=f"serial:{port}",
        channel_names=tuple(names),
        protocol=parser.protocol,
        rate_hz=found.rate(),
        rate_source="device counter" if counted else "host clock",
        samples=found.samples,
        labelled=labelled,
        messages=tuple(found.messages),
    )
    if protocol is not None and result.protocol != protocol:
        log.info("serial %s speaks %s, not %s", port, result.protocol, protocol)
    log.info("serial %s: %s", port, result.describe())
    return result


def _nothing_found(
    port: str, baud: int, timeout_s: float, n_bytes: int, probes: Mapping[str, _Probe]
) -> str:
    if n_bytes == 0:
        return (
            f"no data from serial port {port} in {timeout_s:g} s: is the board powered and "
            f"running its sketch (at {baud} baud)?"
        )
    messages = [m for p in probes.values() for m in p.messages]
    last = f"; last device message: {messages[-1]!r}" if messages else ""
    return (
        f"serial port {port} sent {n_bytes} bytes in {timeout_s:g} s but no valid text or "
        f"fob1 sample: check the baud rate ({baud}) and what the sketch prints{last}"
    )


# --------------------------------------------------------------------------------------
# BrainFlow
# --------------------------------------------------------------------------------------


def discover_brainflow(board: str | int, **params: Any) -> Discovery:
    """A BrainFlow board's channels from its descriptor (a playback/streaming board: its
    master board's), as the driver will name them; ``params`` as for the driver
    (``serial_port``, ``master_board``, ``file``, ...). Nothing is opened."""
    from devices.drivers.brainflow_board import BrainFlowDevice

    known = {
        "serial_port", "mac_address", "ip_address", "ip_port", "ip_protocol", "file",
        "master_board", "other_info", "serial_number", "timeout", "channels", "names",
    }  # fmt: skip
    device = BrainFlowDevice(board, **{k: v for k, v in params.items() if k in known})
    info = device.describe()
    return Discovery(
        source=info.source,
        channel_names=info.channel_names,
        protocol="brainflow",
        rate_hz=info.fs,
        rate_source="board descriptor",
        labelled=True,
        rows=tuple(device.rows),
    )


# --------------------------------------------------------------------------------------
# Lab Streaming Layer (opt-in: resolving sends stream queries to the network LSL is set up for)
# --------------------------------------------------------------------------------------


def list_lsl_streams(wait_s: float | None = None) -> list[LslStream]:
    """The LSL streams that answer within ``wait_s`` (about a second), numeric regular ones
    (EMG candidates) first, with their channel labels; what ``fireorder devices --lsl`` and
    the window's LSL page list."""
    from devices.drivers.lsl_source import LIST_WAIT_S, list_streams

    return list_streams(wait_s=LIST_WAIT_S if wait_s is None else wait_s)


def lsl_discovery(stream: LslStream) -> Discovery:
    """A listed LSL stream as a :class:`Discovery` (its labels, rate from the description)."""
    names = stream.labels or tuple(f"ch{i + 1}" for i in range(stream.channel_count))
    return Discovery(
        source=f"lsl:{stream.name}",
        channel_names=tuple(names),
        protocol="lsl",
        rate_hz=stream.rate,
        rate_source="stream description",
        labelled=bool(stream.labels),
    )


def discover_lsl(
    stream: str | None = None,
    *,
    type: str | None = None,  # (the LSL property's name)
    source_id: str | None = None,
    timeout_s: float | None = None,
) -> Discovery:
    """The named LSL stream's channels (labels from its description) and rate; the same
    one-line errors as opening it (not there: what there is; markers; irregular rate)."""
    from devices.drivers.lsl_source import (
        RESOLVE_TIMEOUT_S,
        describe_info,
        import_pylsl,
        resolve_stream,
        stream_of,
    )

    wait = RESOLVE_TIMEOUT_S if timeout_s is None else timeout_s
    pylsl = import_pylsl()
    info, _ = resolve_stream(pylsl, stream, type, source_id, wait)
    found = stream_of(describe_info(pylsl, info, timeout_s=wait), described=True)
    return lsl_discovery(found)


def discover(
    kind: str,
    options: Mapping[str, Any],
    *,
    cancel: threading.Event | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Discovery:
    """Discovery for a source kind and the options it would be created with."""
    if kind == "serial":
        port = str(options.get("port") or "").strip()
        if not port:
            raise DeviceError("serial: give a port (e.g. /dev/ttyACM0, COM3)")
        baud = options.get("baud") or 115200
        return discover_serial(
            port,
            protocol=str(options.get("protocol") or "text"),
            baud=int(baud) if isinstance(baud, int | float | str) else 115200,
            seq=bool(options.get("seq")),
            timeout_s=timeout_s,
            cancel=cancel,
        )
    if kind == "brainflow":
        opts = {k: v for k, v in options.items() if k != "board"}
        board = options.get("board") or "SYNTHETIC_BOARD"
        return discover_brainflow(board if isinstance(board, int) else str(board), **opts)
    if kind == "lsl":
        return discover_lsl(
            _text(options.get("stream")),
            type=_text(options.get("type")),
            source_id=_text(options.get("source_id")),
            timeout_s=timeout_s,
        )
    raise DeviceError(f"{kind}: nothing to discover")


def _text(value: object) -> str | None:
    return str(value).strip() or None if value else None
