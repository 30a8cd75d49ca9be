"""Serial EMG boards (Arduino and friends) speaking the ``text`` or ``fob1`` protocol.

A reader thread owns the port: it reads what has arrived, parses it (see
:mod:`devices.drivers.serial_protocol`), stamps it with the arrival time and queues runs of
consecutive samples; :meth:`SerialDevice.read` only pops that queue, so it never blocks.

Faults. When the port vanishes (a read or a status query fails, or during a silence the
path is gone or names another device) the state becomes "disconnected", with one log line,
and the thread reopens the same path with backoff; on success the stream resumes on the
same index line. The time lost is a gap: estimated from the wall clock and ``fs``, replaced
by the device counter's jump when that is consistent with the clock (a board that kept
running), so every consumer sees the real number of lost samples as a jump in
``Chunk.start``. A stream without counters (text without ``seq``) gets its gaps from
host timing (:class:`~devices.drivers.serial_protocol.ArrivalClock`): silences and
reconnects after which fewer samples arrived than the elapsed time holds (a suspected
gap is confirmed over a short hold, during which the reads wait). Nothing already
received is dropped. Bytes that never form a valid frame for ``timeout_no_frames_s`` (wrong
protocol or baud rate) end the stream with one clear :class:`~devices.drivers.base.DeviceError`.

Timestamps (``Chunk.timestamp``) are ``time.monotonic()`` at the arrival of the oldest
bytes in the chunk.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import serial
from serial.tools import list_ports

from devices.drivers.base import Device, DeviceError, register
from devices.drivers.serial_protocol import (
    CLOCK_MIN_TOLERANCE_S,
    ArrivalClock,
    Fob1Parser,
    Parsed,
    Scale,
    TextParser,
    make_parser,
)
from dsp.contract import Chunk, ContractError, StreamInfo

log = logging.getLogger(__name__)

PROTOCOLS = ("text", "fob1")
#: how long one blocking read waits for a first byte (bounds the reaction to close())
READ_TIMEOUT_S = 0.05
#: delays between attempts to reopen a vanished port (the last one repeats): quick enough
#: to catch a replugged board within 2 s, slow enough not to spin on a missing device
BACKOFF_S = (0.5, 1.0, 2.0)
#: after this much silence the reader checks that the port still exists and answers
PROBE_AFTER_S = 0.5


def list_serial_ports() -> list[dict[str, Any]]:
    """Serial ports the OS lists (USB adapters, built-in UARTs), sorted by device path.

    Each entry: device, description, hwid, vid_pid ("2341:0043" or None), manufacturer,
    serial_number and, on Linux, by_id (a stable /dev/serial/by-id path, or None). Virtual
    ports (ptys) are not listed; any path can still be given to :class:`SerialDevice`.
    """
    by_id = _by_id_links()
    out = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        vid_pid = f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None and p.pid is not None else None
        out.append(
            {
                "device": p.device,
                "description": p.description,
                "hwid": p.hwid,
                "vid_pid": vid_pid,
                "manufacturer": p.manufacturer,
                "serial_number": p.serial_number,
                "by_id": by_id.get(os.path.realpath(p.device)),
            }
        )
    return out


def _by_id_links() -> dict[str, str]:
    folder = Path("/dev/serial/by-id")
    try:
        return {os.path.realpath(link): str(link) for link in sorted(folder.iterdir())}
    except OSError:
        return {}


def _ports_hint() -> str:
    try:
        ports = list_serial_ports()
    except Exception:  # listing is a courtesy in an error message
        return ""
    if not ports:
        return " (no serial ports found)"
    names = ", ".join(
        p["device"] + (f" ({p['description']})" if p["description"] not in (None, "n/a") else "")
        for p in ports[:6]
    )
    return f" (available: {names})"


def describe_open_error(port: str, exc: BaseException) -> str:
    """One line for the user about why ``port`` did not open."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if isinstance(exc, ValueError):
        return f"invalid serial port {port!r}: {text}"
    if code == errno.ENOENT or "No such file" in text:
        return f"serial port {port} not found{_ports_hint()}"
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        hint = ""
        if sys.platform.startswith("linux"):
            hint = (
                ": add your user to the 'dialout' group (sudo usermod -aG dialout $USER), "
                "then log out and back in"
            )
        return f"permission denied on serial port {port}{hint}"
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text:
        return f"serial port {port} is busy: another program (a serial monitor?) has it open"
    if code == errno.ENOTTY or "Inappropriate ioctl" in text:
        return f"{port} is not a serial port"
    return f"cannot open serial port {port}: {text}"


def _split_names(value: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    names = tuple(str(v).strip() for v in value if str(v).strip())
    return names or None


def _role_map(value: Mapping[str, str] | str | None) -> dict[str, str]:
    """``{"glute_l": "ch1"}`` or ``"glute_l=ch1,lumbar_l=ch3"`` (role -> channel name)."""
    if value is None:
        return {}
    if isinstance(value, str):
        out = {}
        for part in value.split(","):
            if not part.strip():
                continue
            role, sep, name = part.partition("=")
            if not sep:
                raise DeviceError(f"serial: roles need role=channel pairs, got {part!r}")
            out[role.strip()] = name.strip()
        return out
    return {str(k): str(v) for k, v in value.items()}


class SerialDevice(Device):
    """A board on a serial port (a path, a /dev/serial/by-id link, a pty, or a pyserial URL
    such as ``loop://``). See the module doc; parameters:

    ``fs`` the board's sampling rate (the wire carries none); ``channels`` fixes the channel
    count (else the first sample does); ``names`` the channel names (else text labels, else
    ch1..chN); ``roles`` role -> channel name; ``scale`` wire values -> microvolts
    (:class:`~devices.drivers.serial_protocol.Scale`, or a dict for it). ``seq``/``seq_wrap``: the
    text protocol's sample counter. ``wait_first``: :meth:`open` waits for the first sample
    (it learns the layout and proves protocol and baud rate); without it ``channels`` is
    required. ``backoff_s``: delays between reconnection attempts (the last one repeats).
    ``read_interval_s``: the reader wakes at most this often, batching small USB packets.
    ``gap_tolerance_s``: without a counter, the smallest lost time inferred from host timing
    (see :class:`~devices.drivers.serial_protocol.ArrivalClock`).
    """

    name = "serial"

    def __init__(
        self,
        port: str,
        protocol: str = "text",
        *,
        fs: float,
        baud: int = 115200,
        seq: bool = False,
        seq_wrap: int | None = None,
        channels: int | None = None,
        names: Sequence[str] | str | None = None,
        roles: Mapping[str, str] | str | None = None,
        scale: Scale | Mapping[str, Any] | None = None,
        reconnect: bool = True,
        timeout_no_frames_s: float = 2.0,
        open_timeout_s: float = 5.0,
        wait_first: bool = True,
        backoff_s: Sequence[float] = BACKOFF_S,
        read_interval_s: float = 0.002,
        silence_break_s: float = 1.0,
        max_gap_s: float = 10.0,
        max_backlog_s: float = 60.0,
        max_chunk_s: float = 1.0,
        skip_first_line: bool = True,
        gap_tolerance_s: float = CLOCK_MIN_TOLERANCE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            if protocol not in PROTOCOLS:
                raise ValueError(f"unknown protocol {protocol!r} (expected text or fob1)")
            fs = float(fs)
            if not np.isfinite(fs) or fs <= 0:
                raise ValueError(f"sampling rate must be > 0, got {fs}")
            if int(baud) <= 0:
                raise ValueError(f"baud rate must be > 0, got {baud}")
            if channels is not None:
                channels = int(channels)
            self.names = _split_names(names)
            if self.names and channels is not None and len(self.names) != channels:
                raise ValueError(f"{len(self.names)} names for {channels} channels")
            if not wait_first and channels is None:
                raise ValueError("give channels= when open() does not wait for the first sample")
            if not backoff_s or min(backoff_s) <= 0:
                raise ValueError("backoff delays must be > 0")
            if not timeout_no_frames_s > 0 or not open_timeout_s > 0:
                raise ValueError("timeouts must be > 0")
            self.scale = Scale.from_value(scale)
            self.roles = _role_map(roles)
            self._parser = make_parser(
                protocol,
                channels=channels,
                seq=bool(seq),
                seq_wrap=seq_wrap,
                scale=self.scale,
                max_gap=max(1, round(max_gap_s * fs)),
                skip_first_line=skip_first_line,
            )
            # without a counter only host timing can tell a silence from normal flow
            self._arrival = (
                ArrivalClock(fs, min_tolerance_s=float(gap_tolerance_s))
                if protocol == "text" and not seq
                else None
            )
        except (ValueError, TypeError) as exc:
            raise DeviceError(f"serial: {exc}") from None
        self.port = str(port)
        self.protocol = protocol
        self.fs = fs
        self.baud = int(baud)
        self.channels = channels
        self.reconnect = reconnect
        self.timeout_no_frames_s = float(timeout_no_frames_s)
        self.open_timeout_s = float(open_timeout_s)
        self.wait_first = wait_first
        self.backoff_s = tuple(float(b) for b in backoff_s)
        self.read_interval_s = float(read_interval_s)
        self.silence_break_s = float(silence_break_s)
        self.max_backlog = max(1, round(max_backlog_s * fs))
        self.max_chunk = max(1, round(max_chunk_s * fs))
        self.skip_first_line = skip_first_line
        self._clock = clock

        self.state = "idle"
        self.info: StreamInfo | None = None
        self._ser: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._quit = threading.Event()
        self._first = threading.Event()
        self._lock = threading.Lock()
        self._backlog: collections.deque[tuple[int, np.ndarray, float]] = collections.deque()
        self._queued = 0
        self._running = False
        self._error: DeviceError | None = None
        self._messages: collections.deque[str] = collections.deque(maxlen=200)
        self.last_message: str | None = None
        # stream position and accounting (reader thread)
        self._offset = 0  # device index = parser index + offset
        self._next = 0  # index one past the last queued sample
        self._samples = 0
        self._gaps = 0
        self._lost = 0
        self._reconnects = 0
        self._overflow = 0
        self._last_counter: int | None = None
        self._t_last_sample: float | None = None
        self._t_last_bytes = 0.0
        self._t_invalid_since: float | None = None
        self._silence_warned = False
        self._broken = False  # the next samples follow a reconnect
        self._t_empty = 0.0  # the last poll that found no bytes
        # reads held while a host-timing gap is decided: (index, samples, arrival time)
        self._held: list[tuple[np.ndarray, np.ndarray, float]] = []
        self._t_probe = 0.0
        self._cpu_s = 0.0

    # -- Device interface -----------------------------------------------------------------
    def open(self) -> StreamInfo:
        if self._thread is not None:
            raise DeviceError(f"serial port {self.port} is already open")
        self.state = "connecting"
        try:
            self._ser = self._open_port()
        except DeviceError:
            self.state = "error"
            raise
        self._t_last_bytes = self._clock()
        self._quit.clear()
        self._thread = threading.Thread(target=self._run, name="serial-reader", daemon=True)
        self._reader = self._thread  # kept after close(): did it really end?
        self._thread.start()
        if self.wait_first:
            self._wait_first()
        try:
            self.info = self._stream_info()
        except DeviceError:
            self.close()
            raise
        log.info(
            "serial %s open: %s at %d baud, %g Hz, channels %s",
            self.port,
            self.protocol,
            self.baud,
            self.fs,
            ", ".join(self.info.channel_names),
        )
        return self.info

    def _wait_first(self) -> None:
        deadline = time.monotonic() + self.open_timeout_s
        while not self._first.is_set():
            if self._error is not None:
                err = self._error
                self.close()
                raise err
            if time.monotonic() > deadline:
                self.close()
                raise DeviceError(
                    f"no data from serial port {self.port} in {self.open_timeout_s:g} s: "
                    "is the board powered and running the fireorder sketch "
                    f"({self.protocol} at {self.baud} baud)?"
                )
            self._first.wait(0.02)

    def _stream_info(self) -> StreamInfo:
        n = self._parser.n_channels or self.channels
        assert n is not None
        if self.names is not None:
            if len(self.names) != n:
                raise DeviceError(
                    f"serial: {len(self.names)} channel names given, the board sends {n} channels"
                )
            names = self.names
        else:
            names = self._parser.channel_names or tuple(f"ch{i + 1}" for i in range(n))
        try:
            return StreamInfo.from_role_names(
                self.fs,
                names,
                self.roles,
                units=(self.scale.unit,) * n,
                source=f"serial:{self.port}",
            )
        except ContractError as exc:
            raise DeviceError(f"serial: {exc}") from None

    def start(self) -> None:
        if self._thread is None:
            raise DeviceError("serial device is not open")
        self._running = True

    def stop(self) -> None:
        self._running = False

    def close(self) -> None:
        self._running = False
        self._quit.set()
        ser = self._ser
        if ser is not None and hasattr(ser, "cancel_read"):
            with contextlib.suppress(Exception):
                ser.cancel_read()  # wake a blocking read at once
        stopped = True
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            stopped = not self._thread.is_alive()
            if not stopped:
                log.warning("serial reader of %s did not stop", self.port)
            self._thread = None
        if self._arrival is not None and self._held and stopped:
            self._release(self._arrival.settle() or 0)  # what arrived is not lost at close
        self._close_port()
        if self.state != "error":
            self.state = "closed"

    def read(self) -> Chunk | None:
        if not self._running:
            return None
        with self._lock:
            if not self._backlog:
                if self._error is not None:
                    raise self._error
                return None
            start, data, t = self._backlog.popleft()
            parts = [data]
            stop = start + data.shape[0]
            while (
                self._backlog
                and self._backlog[0][0] == stop
                and stop - start + self._backlog[0][1].shape[0] <= self.max_chunk
            ):
                _, more, _ = self._backlog.popleft()
                parts.append(more)
                stop += more.shape[0]
            self._queued -= stop - start
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        out.flags.writeable = False  # a fresh array: spare Chunk its defensive copy
        return Chunk(data=out, start=start, timestamp=t)

    # -- extras -----------------------------------------------------------------------------
    @property
    def link_state(self) -> str | None:
        return self.state

    @property
    def counters(self) -> dict[str, int]:
        return self.stats

    @property
    def stats(self) -> dict[str, int]:
        p = self._parser.stats
        return {
            "samples": self._samples,
            "gaps": self._gaps,
            "lost_samples": self._lost,
            "crc_errors": p.crc_errors,
            "resyncs": p.resyncs,
            "reconnects": self._reconnects,
            "garbage_bytes": p.garbage_bytes,
            "truncated": p.truncated,
            "messages": p.messages,
            "bad_lines": p.bad_lines,
            "duplicates": p.duplicates,
            "channel_mismatch": p.channel_mismatch,
            "overflow_samples": self._overflow,
            "bytes": p.bytes,
        }

    @property
    def error(self) -> str | None:
        return str(self._error) if self._error is not None else None

    @property
    def gap_tolerance_s(self) -> float | None:
        """Without a counter: the lost time below which no gap is inferred (it widens with
        the delivery jitter seen); None when the wire carries a counter."""
        return self._arrival.tolerance_s if self._arrival is not None else None

    @property
    def reader_alive(self) -> bool:
        """The reader thread still runs (also after a close() that could not stop it)."""
        return self._reader is not None and self._reader.is_alive()

    @property
    def port_open(self) -> bool:
        return self._ser is not None

    @property
    def reader_cpu_s(self) -> float:
        """CPU time the reader thread has used (``time.thread_time``), for benchmarks."""
        return self._cpu_s

    @property
    def parser(self) -> TextParser | Fob1Parser:
        return self._parser

    def drain_messages(self) -> list[str]:
        """Device messages (text lines starting with '#') since the last call."""
        out = []
        while self._messages:
            out.append(self._messages.popleft())
        return out

    def write(self, data: bytes) -> None:
        """Send bytes to the board (commands; with ``loop://`` they come back as input)."""
        ser = self._ser
        if ser is None:
            raise DeviceError(f"serial port {self.port} is not connected")
        try:
            ser.write(data)
        except (OSError, serial.SerialException) as exc:
            raise DeviceError(f"cannot write to serial port {self.port}: {exc}") from None

    # -- port -------------------------------------------------------------------------------
    def _open_port(self) -> serial.SerialBase:
        kwargs: dict[str, Any] = {
            "baudrate": self.baud,
            "timeout": READ_TIMEOUT_S,
            "write_timeout": 1.0,
        }
        if "://" not in self.port and os.name == "posix":
            kwargs["exclusive"] = True  # a second program on the port is an error, not noise
        try:
            ser = serial.serial_for_url(self.port, do_not_open=True, **kwargs)
            ser.open()
        except (OSError, ValueError, serial.SerialException) as exc:
            raise DeviceError(describe_open_error(self.port, exc)) from None
        return ser

    def _close_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception as exc:  # closing a vanished port may fail; it is gone anyway
                log.debug("closing %s: %s", self.port, exc)

    # -- reader thread ------------------------------------------------------------------------
    def _run(self) -> None:
        cpu0 = time.thread_time()
        attempt = 0
        next_try = 0.0
        last_read = 0.0
        try:
            while not self._quit.is_set():
                ser = self._ser
                if ser is None:
                    if self._clock() < next_try:
                        self._quit.wait(min(0.05, next_try - self._clock()))
                        continue
                    if self._reopen():
                        attempt = 0
                    else:
                        next_try = self._clock() + self.backoff_s[attempt]
                        attempt = min(attempt + 1, len(self.backoff_s) - 1)
                    continue
                # batch small packets: wake at most every read_interval_s
                wait = last_read + self.read_interval_s - self._clock()
                if wait > 0:
                    time.sleep(min(wait, self.read_interval_s))  # cheaper than Event.wait
                last_read = self._clock()
                try:
                    waiting = ser.in_waiting
                    data = ser.read(waiting or 1)
                    if data and not waiting and ser.in_waiting:
                        data += ser.read(ser.in_waiting)
                except (OSError, serial.SerialException) as exc:
                    if self._quit.is_set():
                        break
                    self._disconnected(str(exc))
                    next_try = self._clock() + self.backoff_s[0]
                    attempt = 1 % len(self.backoff_s)
                    continue
                now = self._clock()
                if data:
                    self._ingest(data, now)
                else:
                    self._t_empty = now  # the link was heard silent at this moment
                    if self._held:
                        self._decide_held(now)
                    gone = self._probe(ser, now)
                    if gone is not None:
                        self._disconnected(gone)
                        next_try = self._clock() + self.backoff_s[0]
                        attempt = 1 % len(self.backoff_s)
                        continue
                if self._watchdog(now):
                    break
                self._cpu_s = time.thread_time() - cpu0
        except Exception as exc:  # a bug must end the stream loudly, not stall it
            log.exception("serial reader of %s failed", self.port)
            self._fail(f"serial reader failed: {type(exc).__name__}: {exc}")
        finally:
            self._cpu_s = time.thread_time() - cpu0

    def _decide_held(self, now: float) -> None:
        """No read came to confirm or refute a suspected gap: decide it once due."""
        assert self._arrival is not None
        gap = self._arrival.due(now)
        if gap is not None:
            self._release(gap)

    def _probe(self, ser: serial.SerialBase, now: float) -> str | None:
        """During a silence, every PROBE_AFTER_S: why the port is gone, else None. A vanished
        device does not always make read() fail (a USB node removed, or a by-id link moved
        to a new node, under an open handle that just stays silent)."""
        if min(now - self._t_last_bytes, now - self._t_probe) <= PROBE_AFTER_S:
            return None
        self._t_probe = now
        return self._port_gone(ser)

    def _port_gone(self, ser: serial.SerialBase) -> str | None:
        """Why the open port is no longer usable, or None if it still looks alive: its
        handle answers a terminal query, and its path still names the same device."""
        if "://" in self.port or os.name != "posix":
            return None  # URLs and Windows ports report a vanished device through read()
        import termios  # POSIX only

        fd = getattr(ser, "fd", None)
        if not isinstance(fd, int):
            return None
        try:
            mine = os.fstat(fd).st_rdev
            termios.tcgetattr(fd)  # a hung-up terminal answers EIO
        except (OSError, termios.error) as exc:
            return f"the port stopped answering ({exc})"
        try:
            st = os.stat(self.port)
        except FileNotFoundError:
            return f"{self.port} is gone"
        except OSError as exc:
            return f"{self.port}: {exc}"
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != mine:
            return f"{self.port} now names another device"
        return None

    def _disconnected(self, reason: str) -> None:
        if self._arrival is not None and self._held:  # deliver what came before the outage
            self._release(self._arrival.settle() or 0)
        self._close_port()
        self._parser.flush()  # an unfinished frame cannot be completed any more
        if not self.reconnect:
            log.warning("serial port %s disconnected: %s", self.port, reason)
            self._fail(f"serial port {self.port} disconnected: {reason}")
            return
        self.state = "disconnected"
        log.warning("serial port %s disconnected (%s); retrying", self.port, reason)

    def _reopen(self) -> bool:
        try:
            ser = self._open_port()
        except DeviceError as exc:
            log.debug("reconnect %s: %s", self.port, exc)
            return False
        self._ser = ser
        self._reconnects += 1
        self._broken = True
        self.state = "connecting"
        self._t_invalid_since = None
        self._t_last_bytes = self._clock()
        if isinstance(self._parser, TextParser):
            self._parser.restart_sequence(skip_first_line=self.skip_first_line)
        else:
            self._parser.restart_sequence()
        log.info("serial port %s reconnected (%d)", self.port, self._reconnects)
        return True

    def _fail(self, message: str) -> None:
        self._error = DeviceError(message)
        self.state = "error"
        self._quit.set()
        self._close_port()

    def _watchdog(self, now: float) -> bool:
        """Detect a protocol or baud mismatch (bytes, no frames); warn about silence."""
        # bytes kept coming for the whole timeout and none formed a sample (a board that
        # stalls mid-frame is silent, not mismatched)
        since = self._t_invalid_since
        if since is not None and self._t_last_bytes - since > self.timeout_no_frames_s:
            p = self._parser.stats
            detail = (
                f"{p.garbage_bytes} garbage bytes, {p.crc_errors} CRC errors"
                if self.protocol == "fob1"
                else f"{p.bad_lines} bad lines, {p.truncated} short lines"
            )
            if p.channel_mismatch:
                detail += f", {p.channel_mismatch} frames with another channel count"
            if self.last_message:
                detail += f"; last device message: {self.last_message!r}"
            self._fail(
                f"no valid frames in {self.timeout_no_frames_s:g} s from {self.port} — "
                f"check protocol and baud rate (expected {self.protocol} at {self.baud} "
                f"baud; {detail})"
            )
            return True
        silent = now - self._t_last_bytes
        if silent > self.timeout_no_frames_s and not self._silence_warned:
            self._silence_warned = True
            log.warning("no data from serial port %s for %.1f s", self.port, silent)
        return False

    def _ingest(self, data: bytes, now: float) -> None:
        # how long the reader listened to silence before these bytes (0 if it was stalled)
        heard = max(0.0, self._t_empty - self._t_last_bytes)
        if self._t_last_sample is not None and now - self._t_last_bytes > self.silence_break_s:
            # after a long silence the counter may have wrapped or restarted: re-check it
            self._parser.restart_sequence()
        self._t_last_bytes = now
        self._silence_warned = False
        parsed = self._parser.feed(data)
        for msg in parsed.messages:
            log.info("serial %s: # %s", self.port, msg)
            self._messages.append(msg)
            self.last_message = msg
        if len(parsed) == 0:
            if self._t_invalid_since is None:
                self._t_invalid_since = now
            return
        self._t_invalid_since = None
        index = parsed.index + self._offset
        for b in parsed.breaks:
            gap = self._break_gap(parsed, b, now)
            index[b:] += gap
            self._offset += gap
        broken, self._broken = self._broken, False
        if self._arrival is None:
            one_run = self._account(index)
            self._queue(parsed.samples, index, now, one_run)
        else:
            self._held.append((index, parsed.samples, now))
            decided = self._arrival.arrive(now, int(index[-1]) + 1, heard_s=heard, broken=broken)
            if decided is not None:
                self._release(decided, broken)
        self._samples += len(parsed)
        self._t_last_sample = now
        if parsed.counter is not None:
            self._last_counter = int(parsed.counter[-1])
        if self.state != "streaming":
            self.state = "streaming"
        self._first.set()

    def _release(self, gap: int, broken: bool = False) -> None:
        """Queue the reads held while a host-timing gap was being decided, ``gap`` samples
        after the last sample queued before them."""
        if gap:
            self._offset += gap
            log.info(
                "serial %s: %d samples lost (%.0f ms by host timing%s)",
                self.port,
                gap,
                1000 * gap / self.fs,
                ", after a reconnect" if broken else "",
            )
        held, self._held = self._held, []
        for index, samples, t in held:
            shifted = index + gap if gap else index
            self._queue(samples, shifted, t, self._account(shifted))

    def _break_gap(self, parsed: Parsed, b: int, now: float) -> int:
        """Samples lost before row ``b``, where the counter alone cannot tell (a reconnect,
        a long silence, an implausible jump): the wall clock, or the counter's jump when it
        agrees with the clock within 0.1 s (or 10 %)."""
        n_after = len(parsed) - b
        elapsed = now - self._t_last_sample if b == 0 and self._t_last_sample is not None else 0
        gap_wall = max(0, round(elapsed * self.fs) - n_after)
        wrap = self._parser.wrap
        last = self._last_counter if b == 0 else int(parsed.counter[b - 1])  # type: ignore[index]
        source = "clock"
        gap = gap_wall
        if parsed.counter is not None and last is not None and wrap:
            gap_c = (int(parsed.counter[b]) - last - 1) % wrap
            gap_c += max(0, round((gap_wall - gap_c) / wrap)) * wrap
            if abs(gap_c - gap_wall) <= max(0.1 * self.fs, 0.1 * gap_wall):
                gap, source = gap_c, "counter"
        log.info("serial %s: %d samples lost (from the %s)", self.port, gap, source)
        return gap

    def _account(self, index: np.ndarray) -> bool:
        """Count the jumps (indices only increase); True if ``index`` is one run."""
        first, last, n = int(index[0]), int(index[-1]), index.shape[0]
        one_run = last - first == n - 1
        prev = self._next - 1 if self._samples else first - 1
        if first - prev > 1:
            self._gaps += 1
            self._lost += first - prev - 1
        if not one_run:
            steps = index[1:] - index[:-1]
            jumps = steps[steps > 1] - 1
            self._gaps += int(jumps.size)
            self._lost += int(jumps.sum())
        self._next = last + 1
        return one_run

    def _queue(self, samples: np.ndarray, index: np.ndarray, now: float, one_run: bool) -> None:
        if one_run:
            bounds = [0, len(index)]
        else:
            cuts = np.flatnonzero(index[1:] - index[:-1] != 1) + 1
            bounds = [0, *cuts.tolist(), len(index)]
        with self._lock:
            for a, b in itertools.pairwise(bounds):
                self._backlog.append((int(index[a]), samples[a:b], now))
                self._queued += b - a
            while self._queued > self.max_backlog and len(self._backlog) > 1:
                _, dropped, _ = self._backlog.popleft()
                self._queued -= dropped.shape[0]
                self._overflow += dropped.shape[0]
                log.warning(
                    "serial %s: nobody reads, dropped %d old samples", self.port, len(dropped)
                )


register("serial", SerialDevice)
