"""The serial driver through real ptys (socat) and pyserial's ``loop://``.

A writer process (tests/serial_writer.py) plays the board, paced in real time; the driver
must deliver every sample in order with the right values, count injected faults exactly,
and survive the port vanishing. Every wait is bounded; nothing asserts a speed.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial

from devices.drivers import base
from devices.drivers.base import DeviceError
from devices.drivers.serial_board import SerialDevice, describe_open_error, list_serial_ports
from devices.drivers.serial_protocol import Scale, encode_fob1_frames
from dsp.contract import Chunk, Role
from tests import serial_writer
from tests.serial_writer import pattern

WRITER = Path(serial_writer.__file__).resolve()
ROLES = {"glute_l": "glute_l", "glute_r": "glute_r", "lumbar_l": "lumbar_l", "lumbar_r": "lumbar_r"}
needs_socat = pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed")


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class VirtualPorts:
    """A socat pty pair with stable link names (DIR/ttyV0 <-> DIR/ttyV1)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.board = folder / "ttyV0"  # the writer's end
        self.host = folder / "ttyV1"  # the driver's end
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = ["socat", "-d", "-d"]
        cmd += [f"pty,raw,echo=0,link={self.board}", f"pty,raw,echo=0,link={self.host}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.board.exists() and self.host.exists(), 10, "socat's links")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        for link in (self.board, self.host):  # socat removes them; be sure
            link.unlink(missing_ok=True)


class Board:
    """The writer process."""

    def __init__(self, ports: VirtualPorts, *args: str, go: bool = False) -> None:
        self.argv = ["--port", str(ports.board), *args]
        cmd = [sys.executable, str(WRITER), *self.argv] + (["--go"] if go else [])
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    @property
    def done(self) -> bool:
        return self.proc.poll() is not None

    def summary(self) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=20)
        assert self.proc.returncode == 0, err
        return json.loads(out)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=5)

    def event_bytes(self, k: int) -> bytes:
        """What the writer sends for sample k (its events included)."""
        args = serial_writer.parse_args(self.argv)
        return serial_writer.Writer(args).block(k, k + 1)


def collect(
    dev: SerialDevice, board: Board, timeout: float, on_poll: Callable[[], None] | None = None
) -> list[Chunk]:
    """Read until the board is done and nothing more arrives (bounded by ``timeout``)."""
    chunks: list[Chunk] = []
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if on_poll is not None:
            on_poll()
        chunk = dev.read()
        if chunk is not None:
            chunks.append(chunk)
            quiet_since = None
            continue
        if board.done:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.3:
                return chunks
        time.sleep(0.002)
    raise AssertionError("the stream did not end in time")


def joined(chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    index = np.concatenate([np.arange(c.start, c.stop) for c in chunks])
    return index, np.concatenate([c.data for c in chunks])


def jumps(chunks: list[Chunk]) -> list[tuple[int, int]]:
    """(first missing index, samples missing) for every jump of Chunk.start."""
    out = []
    for a, b in itertools.pairwise(chunks):
        assert b.start >= a.stop, "an index went backwards"
        if b.start > a.stop:
            out.append((a.stop, b.start - a.stop))
    return out


# --------------------------------------------------------------------------------------
# Through a pty pair
# --------------------------------------------------------------------------------------


@needs_socat
def test_text_1khz_4ch_labels_seq_messages_and_faults(ports: VirtualPorts) -> None:
    events = [
        ["message", 300],
        ["garbage", 500, 20],
        ["truncate", 700, 2],
        ["drop", 900, 5],
        ["garbage", 1100, 7],
        ["truncate", 1300, 3],
        ["message", 1500],
        ["drop", 1600, 100],
    ]
    board = Board(
        ports,
        *("--protocol", "text", "--fs", "1000", "--channels", "4", "--seconds", "2"),
        *("--seq", "--labels", "--crlf", "--sep", "tab", "--counter-start", "4294966000"),
        *("--events", json.dumps(events)),
        go=True,
    )
    dev = SerialDevice(
        str(ports.host), "text", fs=1000, seq=True, roles=ROLES, scale=Scale(gain=2.0, offset=1.0)
    )
    try:
        result: dict[str, Any] = {}
        opener = threading.Thread(target=lambda: result.update(info=dev.open()))
        opener.start()  # open() waits for the first sample to learn the labels
        wait_for(lambda: dev.port_open, 10, "the port to open")
        board.go()
        opener.join(timeout=15)
        info = result["info"]
        assert info.channel_names == ("glute_l", "glute_r", "lumbar_l", "lumbar_r")
        assert info.roles == {Role.GLUTE_L: 0, Role.GLUTE_R: 1, Role.LUMBAR_L: 2, Role.LUMBAR_R: 3}
        assert info.units == ("uV",) * 4
        dev.start()
        chunks = collect(dev, board, timeout=30)
        summary = board.summary()
    finally:
        dev.close()
        board.stop()
    index, data = joined(chunks)
    # the first line after opening is dropped (it may be a fragment): k starts at 1
    k = index + 1
    assert k[-1] == summary["last"] == 1999
    np.testing.assert_array_equal(data, (pattern(k, 4) - 1.0) * 2.0)
    lost = [(start + 1, n) for start, n in jumps(chunks)]
    assert lost == [(700, 1), (900, 5), (1300, 1), (1600, 100)]
    s = dev.stats
    assert s["samples"] == 2000 - 1 - 107 == len(index)
    assert (s["gaps"], s["lost_samples"]) == (4, 107)
    assert (s["bad_lines"], s["truncated"], s["resyncs"], s["messages"]) == (2, 2, 4, 2)
    short_lines = len(board.event_bytes(700)) + len(board.event_bytes(1300))
    assert s["garbage_bytes"] == (20 + 1) + (7 + 1) + short_lines
    assert s["crc_errors"] == 0 and s["reconnects"] == 0
    assert dev.drain_messages() == ["event at 300", "event at 1500"]


@needs_socat
def test_fob1_4khz_8ch_every_sample_and_exact_fault_counts(ports: VirtualPorts) -> None:
    events = [
        ["garbage", 1000, 17],
        ["badcrc", 2000],
        ["truncate", 3000, 9],
        ["drop", 4000, 1],
        ["drop", 5000, 500],
        ["garbage", 7000, 3],
        ["badcrc", 8000],
        ["truncate", 9000, 2],
    ]
    dev = SerialDevice(str(ports.host), "fob1", fs=4000, channels=8, wait_first=False)
    dev.open()
    dev.start()
    board = Board(
        ports,
        *("--protocol", "fob1", "--fs", "4000", "--channels", "8", "--seconds", "3"),
        *("--counter-start", "60000", "--events", json.dumps(events)),  # the counter wraps
    )
    try:
        chunks = collect(dev, board, timeout=30)
        summary = board.summary()
    finally:
        dev.close()
        board.stop()
    index, data = joined(chunks)
    assert index[0] == 0 and index[-1] == 11999 == summary["last"]
    np.testing.assert_array_equal(data, pattern(index, 8))  # index == k: nothing shifted
    assert jumps(chunks) == [(2000, 1), (3000, 1), (4000, 1), (5000, 500), (8000, 1), (9000, 1)]
    s = dev.stats
    assert s["samples"] == summary["n_sent"] == 12000 - 505 == len(index)
    assert (s["gaps"], s["lost_samples"]) == (6, 505)
    assert (s["crc_errors"], s["truncated"], s["resyncs"]) == (2, 2, 6)
    assert s["garbage_bytes"] == 17 + 3 + 2 * 23 + 9 + 2
    assert s["reconnects"] == 0 and s["duplicates"] == 0 and s["overflow_samples"] == 0


@needs_socat
def test_unplug_and_replug_resumes_with_an_exact_gap(ports: VirtualPorts) -> None:
    dev = SerialDevice(
        str(ports.host), "fob1", fs=4000, channels=8, wait_first=False, backoff_s=(0.05, 0.1)
    )
    dev.open()
    dev.start()
    board = Board(
        ports,
        *("--fs", "4000", "--channels", "8", "--seconds", "3.5", "--reopen"),
        "--linger",
        "0.5",
    )
    states: list[str] = []
    phase = {"killed_at": 0.0, "restarted": False}

    def on_poll() -> None:
        if not states or states[-1] != dev.state:
            states.append(dev.state)
        if not phase["killed_at"] and dev.stats["samples"] > 4000:
            ports.kill()  # the cable is pulled: both ends vanish
            phase["killed_at"] = time.monotonic()
        elif (
            phase["killed_at"]
            and not phase["restarted"]
            and dev.state == "disconnected"
            and time.monotonic() - phase["killed_at"] > 0.3
        ):
            ports.start()  # plugged back in, same names
            phase["restarted"] = True

    try:
        chunks = collect(dev, board, timeout=40, on_poll=on_poll)
        summary = board.summary()
    finally:
        dev.close()
        board.stop()
    assert phase["restarted"] and summary["reopens"] == 1
    i = states.index("disconnected")
    assert "streaming" in states[:i] and "streaming" in states[i + 1 :]
    s = dev.stats
    assert s["reconnects"] == 1
    # one jump, as large as the samples the board sampled while unplugged (its counter
    # agreed with the clock, so the driver used the exact count)
    gaps = jumps(chunks)
    assert len(gaps) == 1 and s["gaps"] == 1
    assert gaps[0][1] == s["lost_samples"] > 0
    index, data = joined(chunks)
    np.testing.assert_array_equal(data, pattern(index, 8))  # before and after: intact, aligned
    assert index[-1] == summary["last"]


@needs_socat
def test_replug_of_a_rebooted_board_uses_the_clock(ports: VirtualPorts) -> None:
    dev = SerialDevice(
        str(ports.host), "fob1", fs=2000, channels=2, wait_first=False, backoff_s=(0.05, 0.1)
    )
    dev.open()
    dev.start()
    board = Board(
        ports,
        *("--fs", "2000", "--channels", "2", "--seconds", "2.5", "--reopen", "--reset-counter"),
        *("--counter-start", "30000"),
    )
    phase = {"killed_at": 0.0, "restarted": False}

    def on_poll() -> None:
        if not phase["killed_at"] and dev.stats["samples"] > 1000:
            ports.kill()
            phase["killed_at"] = time.monotonic()
        elif (
            phase["killed_at"]
            and not phase["restarted"]
            and dev.state == "disconnected"
            and time.monotonic() - phase["killed_at"] > 0.3
        ):
            ports.start()
            phase["restarted"] = True

    try:
        chunks = collect(dev, board, timeout=40, on_poll=on_poll)
        board.summary()
    finally:
        dev.close()
        board.stop()
    assert dev.stats["reconnects"] == 1
    gaps = jumps(chunks)
    assert len(gaps) == 1 and gaps[0][1] > 0  # the clock's estimate: a gap, whatever its size
    index, data = joined(chunks)
    k = data[:, 0].astype(np.int64)  # channel 0 carries k (below 20000 here)
    np.testing.assert_array_equal(data, pattern(k, 2))  # every row intact
    before = index < gaps[0][0]
    assert np.all(np.diff(k[before]) == 1) and np.all(np.diff(k[~before]) == 1)


@needs_socat
def test_busy_port_is_one_clear_error(ports: VirtualPorts) -> None:
    holder = serial.Serial(str(ports.host), exclusive=True)
    try:
        with pytest.raises(DeviceError, match="busy"):
            SerialDevice(str(ports.host), "fob1", fs=1000, channels=1, wait_first=False).open()
    finally:
        holder.close()


@needs_socat
def test_no_data_at_all_is_reported_at_open(ports: VirtualPorts) -> None:
    dev = SerialDevice(str(ports.host), "text", fs=1000, open_timeout_s=0.3)
    with pytest.raises(DeviceError, match="no data from serial port"):
        dev.open()
    assert not dev.port_open


# --------------------------------------------------------------------------------------
# Without ptys
# --------------------------------------------------------------------------------------


def test_wrong_port_path_is_one_clear_error() -> None:
    with pytest.raises(DeviceError, match=r"serial port /nonexistent/ttyFO0 not found"):
        SerialDevice("/nonexistent/ttyFO0", "fob1", fs=1000).open()
    with pytest.raises(DeviceError, match="invalid serial port"):
        SerialDevice("nosuch://x", "fob1", fs=1000).open()


def test_open_error_messages() -> None:
    denied = describe_open_error("/dev/ttyACM0", serial.SerialException(errno.EACCES, "denied"))
    assert denied.startswith("permission denied on serial port /dev/ttyACM0")
    if sys.platform.startswith("linux"):
        assert "dialout" in denied
    busy = describe_open_error("/dev/ttyUSB0", serial.SerialException(errno.EBUSY, "busy"))
    assert "busy" in busy
    notty = describe_open_error("/dev/null", serial.SerialException(errno.ENOTTY, "ioctl"))
    assert notty == "/dev/null is not a serial port"


def test_bad_settings_are_device_errors() -> None:
    with pytest.raises(DeviceError, match="unknown protocol"):
        SerialDevice("loop://", "morse", fs=1000)
    with pytest.raises(DeviceError, match="2 names for 3 channels"):
        SerialDevice("loop://", "fob1", fs=1000, channels=3, names="a,b")
    with pytest.raises(DeviceError, match="give channels"):
        SerialDevice("loop://", "fob1", fs=1000, wait_first=False)
    with pytest.raises(DeviceError, match="sampling rate"):
        SerialDevice("loop://", "fob1", fs=0)
    dev = SerialDevice("loop://", "fob1", fs=1000, channels=2, wait_first=False, roles="glute_l=x")
    with pytest.raises(DeviceError, match="unknown channel 'x'"):
        dev.open()
    assert not dev.port_open


def loop_device(**kw: Any) -> SerialDevice:
    dev = SerialDevice("loop://", wait_first=False, **kw)
    dev.open()
    dev.start()
    return dev


def read_n(dev: SerialDevice, n: int, timeout: float = 5.0) -> list[Chunk]:
    """Read until ``n`` samples have come (bounded)."""
    chunks: list[Chunk] = []
    deadline = time.monotonic() + timeout
    while sum(c.n_samples for c in chunks) < n:
        assert time.monotonic() < deadline, f"timed out waiting for {n} samples"
        chunk = dev.read()
        if chunk is None:
            time.sleep(0.002)
        else:
            chunks.append(chunk)
    return chunks


def test_loop_fob1_values_scale_and_registry() -> None:
    dev = base.create(
        "serial",
        port="loop://",
        protocol="fob1",
        fs=2000,
        channels=3,
        names="glute_l,lumbar_l,x",
        roles={"glute_l": "glute_l", "lumbar_l": "lumbar_l"},
        scale={"bits": 10, "vref": 5.0, "amp_gain": 1000.0},
        wait_first=False,
    )
    assert isinstance(dev, SerialDevice)
    info = dev.open()
    info.validate_roles()
    assert info.units == ("counts",) * 3 and info.source == "serial:loop://"
    dev.start()
    try:
        values = np.array([[512, 513, 0], [1023, 511, 512]])
        dev.write(encode_fob1_frames([5, 6], values))
        chunks = read_n(dev, 2)
    finally:
        dev.close()
    index, data = joined(chunks)
    np.testing.assert_array_equal(index, [0, 1])
    np.testing.assert_allclose(data, (values - 512) * 5.0 / 1024 / 1000 * 1e6)
    assert not chunks[0].data.flags.writeable
    assert dev.state == "closed"


def test_loop_text_names_default_and_stop_pauses_delivery() -> None:
    dev = loop_device(protocol="text", fs=500, channels=2, skip_first_line=False)
    try:
        dev.write(b"1,2\n3,4\n")
        chunks = read_n(dev, 2)
        assert dev.info is not None and dev.info.channel_names == ("ch1", "ch2")
        np.testing.assert_array_equal(joined(chunks)[1], [[1, 2], [3, 4]])
        dev.stop()
        dev.write(b"5,6\n")
        wait_for(lambda: dev.stats["samples"] == 3, 5, "the third sample")
        assert dev.read() is None  # stopped: nothing is delivered...
        dev.start()
        np.testing.assert_array_equal(read_n(dev, 1)[0].data, [[5, 6]])  # ...nor lost
    finally:
        dev.close()


def test_protocol_mismatch_ends_the_stream_with_a_clear_error() -> None:
    dev = loop_device(protocol="fob1", fs=1000, channels=4, timeout_no_frames_s=0.3)
    try:
        deadline = time.monotonic() + 10
        with pytest.raises(DeviceError, match="check protocol and baud rate"):
            while time.monotonic() < deadline:
                dev.read()
                with contextlib.suppress(DeviceError):  # the port closes with the error
                    dev.write(b"512,498,530,505\r\n" * 5)  # a text board, fob1 setting
                time.sleep(0.02)
        assert dev.state == "error" and "no valid frames in 0.3 s" in (dev.error or "")
    finally:
        dev.close()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.t

    def advance(self, dt: float) -> None:
        with self.lock:
            self.t += dt


@pytest.mark.parametrize(("jump", "low", "high"), [(7950, 7950, 7950), (-100, 7990, 7999)])
def test_gap_after_a_silence_from_counter_or_clock(jump: int, low: int, high: int) -> None:
    """After 2 s of silence the counter is trusted only if it agrees with the clock: a
    jump of 7950 at 4 kHz does (exact gap); a counter that went back (a reboot) does not, so
    the gap is the clock's 2 s x 4000 minus the samples that arrived with the first read
    after the silence (all 10, or fewer if the read caught the write half done)."""
    clock = FakeClock()
    dev = loop_device(protocol="fob1", fs=4000, channels=1, clock=clock, timeout_no_frames_s=60)
    try:
        dev.write(encode_fob1_frames(np.arange(100) + 1000, np.zeros((100, 1))))
        first = read_n(dev, 100)
        clock.advance(2.0)
        start = 1000 + 100 + jump
        dev.write(encode_fob1_frames(np.arange(10) + start, np.ones((10, 1))))
        second = read_n(dev, 10)
    finally:
        dev.close()
    gap = second[0].start - 100
    assert first[0].start == 0 and low <= gap <= high
    assert dev.stats["gaps"] == 1 and dev.stats["lost_samples"] == gap


def test_text_counter_fills_the_gap_after_a_silence() -> None:
    clock = FakeClock()
    dev = loop_device(
        protocol="text", fs=1000, channels=1, seq=True, clock=clock, skip_first_line=False
    )
    try:
        dev.write(b"".join(f"{c},{c}\n".encode() for c in range(500, 600)))
        read_n(dev, 100)
        clock.advance(3.0)
        dev.write(b"".join(f"{c},{c}\n".encode() for c in range(3550, 3560)))
        second = read_n(dev, 10)
    finally:
        dev.close()
    assert second[0].start == 100 + 2950  # the counter's exact gap: it agrees with the clock
    np.testing.assert_array_equal(second[0].data[:, 0], np.arange(3550, 3550 + len(second[0].data)))


def test_backlog_limit_drops_oldest_and_shows_a_gap() -> None:
    dev = loop_device(protocol="fob1", fs=100, channels=1, max_backlog_s=1.0)
    try:
        for block in range(4):  # 4 x 60 samples while nobody reads; room for 100
            dev.write(encode_fob1_frames(np.arange(60) + 60 * block, np.zeros((60, 1))))
            wait_for(lambda b=block: dev.stats["samples"] == 60 * (b + 1), 5, "samples")
        chunks = read_n(dev, 60)
    finally:
        dev.close()
    # whole runs go, oldest first, until at most 100 samples wait
    dropped = dev.stats["overflow_samples"]
    assert 140 <= dropped <= 240 - 60 and chunks[0].start == dropped
    assert dropped + sum(c.n_samples for c in chunks) == 240


def test_list_serial_ports_shape() -> None:
    ports = list_serial_ports()
    assert isinstance(ports, list)
    for p in ports:
        assert {"device", "description", "hwid", "vid_pid", "manufacturer"} <= set(p)
        assert os.path.isabs(p["device"]) or p["device"].startswith("COM")
