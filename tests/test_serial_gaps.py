"""Gaps of a serial stream without sample counters, and a port that vanishes.

The text protocol without ``seq`` carries no counter: only host timing can tell a silence in
which samples were lost from normal, bursty delivery (``ArrivalClock``). A port that
vanishes must always end in "disconnected", a retry, and a resumed stream with the outage
counted as a gap. The pty tests use a real socat pair and the writer process
(tests/serial_writer.py); channel 0 of every sample carries its sample number ``k``, so the
true number of lost samples is read off the data and the driver's estimate is checked
against it. One test streams synthetic EMG through the port into a LiveSession: the reps it
judges must be the true ones, at their true times, none across the join. Every wait is
bounded; nothing asserts a speed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from devices.drivers.serial_board import SerialDevice
from devices.drivers.serial_protocol import (
    CLOCK_MAX_TOLERANCE_S,
    CLOCK_MIN_TOLERANCE_S,
    ArrivalClock,
)
from devices.session.live import LiveSession
from dsp.contract import Chunk
from dsp.reps import RepResult
from tests.serial_writer import pattern
from tests.synth import bursts
from tests.test_serial_device import (
    ROLES,
    Board,
    FakeClock,
    VirtualPorts,
    collect,
    joined,
    jumps,
    loop_device,
    read_n,
    wait_for,
)

FS = 1000


def true_jumps(chunks: list[Chunk]) -> list[tuple[int, int]]:
    """(k of the first sample after, samples the board really lost) at every jump of k."""
    k = joined(chunks)[1][:, 0].astype(np.int64)
    cut = np.flatnonzero(np.diff(k) != 1)
    return [(int(k[i + 1]), int(k[i + 1] - k[i] - 1)) for i in cut]


def check_rows(chunks: list[Chunk], n_channels: int) -> None:
    """Every row is a whole sample of the writer's pattern (nothing shifted or mixed)."""
    data = joined(chunks)[1]
    np.testing.assert_array_equal(data, pattern(data[:, 0].astype(np.int64), n_channels))


# --------------------------------------------------------------------------------------
# The clock model alone (synthetic arrival times)
# --------------------------------------------------------------------------------------


def test_clock_bursty_drifting_delivery_gives_no_gap_and_a_silence_gives_its_length() -> None:
    """A board 0.5 % slow (a ceramic resonator: 995 samples/s where the host assumes 1000)
    delivers everything it sampled in blocks 50-100 ms apart, each up to 20 ms late, for 60 s;
    then 3.5 s in which it sends nothing and its samples are lost; then blocks again."""
    rng = np.random.default_rng(7)
    clock = ArrivalClock(FS)
    rate, t0 = 995.0, 100.0
    received = inferred = 0
    gaps: list[int] = []
    t = t0
    silence = (160.0, 163.5)
    while t < 170.0:
        t += rng.uniform(0.05, 0.1)
        if silence[0] <= t < silence[1]:
            continue
        taken = int((t - t0) * rate)
        lost = int((silence[1] - silence[0]) * rate) if t >= silence[1] else 0
        new = taken - lost - received
        if new <= 0:
            continue
        received += new
        g = clock.arrive(t + rng.uniform(0, 0.02), received + inferred)
        if g:
            gaps.append(g)
            inferred += g
        if t < silence[0]:
            assert gaps == [], f"a false gap at {t - t0:.2f} s"
            tolerance = clock.tolerance_s
    assert CLOCK_MIN_TOLERANCE_S < tolerance < 0.25  # twice the ~75 ms delivery period
    # one gap, in host samples (1000/s) of the 3.5 s: the clock errs by its jitter (20 ms)
    assert len(gaps) == 1 and abs(gaps[0] - 3500) <= 30


def steady(clock: ArrivalClock, t: float, stop: int, seconds: float) -> tuple[float, int, int]:
    """Real-time 2 ms reads (2 samples each) for ``seconds``, or until a pending gap is
    decided; (t, stop, the gap decided or 0)."""
    end = t + seconds
    while t < end:
        t += 0.002
        stop += 2
        got = clock.arrive(t, stop, heard_s=0.001)
        if got:
            return t, stop, got
    return t, stop, 0


def test_clock_a_stalled_reader_is_no_gap_a_heard_silence_is() -> None:
    """The host reader stalls 0.6 s while the board is flow-controlled (a pty, a USB CDC
    device the host does not read): its next read finds old bytes waiting, 0.4 s late, then
    the backlog drains fast. The reader heard no silence (it was not polling): no gap. The
    same lateness after a silence the reader did hear is a gap."""
    clock = ArrivalClock(FS)
    t, stop = 10.0, 0
    for _ in range(500):  # steady 2 ms reads, each after 2 ms heard empty
        t += 0.002
        stop += 2
        assert clock.arrive(t, stop, heard_s=0.001) == 0
    t += 0.6
    stop += 200  # the buffer held 0.2 s: samples up to 0.4 s before now
    assert clock.arrive(t, stop, heard_s=0.0) == 0
    for _ in range(50):  # the rest of the backlog drains in 50 fast reads
        t += 0.0005
        stop += 8
        assert clock.arrive(t, stop, heard_s=0.0) == 0
    for _ in range(500):
        t += 0.002
        stop += 2
        assert clock.arrive(t, stop, heard_s=0.001) == 0
    t += 0.6
    stop += 200
    assert clock.arrive(t, stop, heard_s=0.598) is None  # suspected; the next reads decide
    assert clock.pending
    t_seen = t
    t, stop, got = steady(clock, t, stop, 2.0)
    assert abs(got - 400) <= 2 and not clock.pending
    assert 0.3 <= t - t_seen <= 0.31  # decided after the hold (three 0.1 s tolerances)


def test_clock_a_relay_that_held_data_up_is_no_gap() -> None:
    """A starved relay (a pty's socat, a USB worker on a loaded host) delivers a block
    0.3 s late after a heard silence, then the backlog follows at once: delivery was late,
    nothing was lost. The suspected gap is refuted by the read that catches up."""
    clock = ArrivalClock(FS)
    t, stop, got = steady(clock, 10.0, 0, 1.0)
    assert got == 0
    t += 0.3
    assert clock.arrive(t, stop + 2, heard_s=0.3) is None  # samples up to 0.3 s ago
    t += 0.002
    stop += 302 + 2
    assert clock.arrive(t, stop, heard_s=0.0) == 0  # the rest: up to now
    assert not clock.pending
    t, stop, got = steady(clock, t, stop, 1.0)
    assert got == 0


def test_clock_delivery_falling_behind_without_silence_is_no_gap() -> None:
    """A congested radio link: for 1 s bytes keep coming but at half the rate, so the
    samples end up 0.5 s late for good. Nothing was lost, and no silence could have held a
    loss: no gap is invented (the tolerance widens with the lateness, within its cap, until
    the reference has moved); a later silence with loss is still seen."""
    clock = ArrivalClock(FS)
    t, stop = 5.0, 0
    for i in range(2500):  # 2 ms reads: 1 s normal, 1 s at half rate, then normal again
        t += 0.002
        stop += 1 if 500 <= i < 1000 else 2
        assert clock.arrive(t, stop) == 0, f"a false gap at read {i}"
    assert clock.tolerance_s <= CLOCK_MAX_TOLERANCE_S
    t += 2.0  # 2 s of nothing; 10 samples, the rest of the 2 s lost
    assert clock.arrive(t, stop + 10) is None
    assert steady(clock, t, stop + 10, 2.0)[2] == 2000 - 10


def test_clock_after_a_reconnect_always_reports_a_gap() -> None:
    clock = ArrivalClock(FS)
    for i in range(1, 100):
        clock.arrive(i * 0.01, i * 10)
    # the board buffered everything while unplugged: continuity is unknown, not proven
    assert clock.arrive(1.5, 1500, broken=True) == 1
    # the next one (index 1511: the first gap counts) after 1.5 s with 10 samples
    assert clock.arrive(3.0, 1511, broken=True) == 1500 - 10


# --------------------------------------------------------------------------------------
# The driver, deterministic (loop:// and a fake clock)
# --------------------------------------------------------------------------------------


def test_text_without_counter_gap_after_a_silence_on_a_fake_clock() -> None:
    clock = FakeClock()
    dev = loop_device(protocol="text", fs=FS, channels=1, clock=clock, skip_first_line=False)
    try:
        dev.write(b"".join(f"{k}\n".encode() for k in range(100)))
        first = read_n(dev, 100)
        clock.advance(3.0)  # 3 s pass; then 10 samples: the other 2990 were lost
        time.sleep(0.2)  # the reader polls (and hears nothing) at the new time
        dev.write(b"".join(f"{k}\n".encode() for k in range(3100, 3110)))
        wait_for(lambda: dev.stats["samples"] == 110, 5, "the 10 samples to arrive")
        assert dev.read() is None  # held while the suspected gap is confirmed...
        clock.advance(0.5)  # ...for twice the tolerance, with no catch-up: lost
        second = read_n(dev, 10)
    finally:
        dev.close()
    gap = second[0].start - 100
    assert first[0].start == 0 and gap == 2990
    assert (dev.stats["gaps"], dev.stats["lost_samples"]) == (1, gap)


# --------------------------------------------------------------------------------------
# Through a pty pair
# --------------------------------------------------------------------------------------


def test_text_silence_of_3_5_s_is_one_gap_of_its_length(ports: VirtualPorts) -> None:
    dev = SerialDevice(str(ports.host), "text", fs=FS, channels=4, wait_first=False)
    dev.open()
    dev.start()
    board = Board(
        ports,
        *("--protocol", "text", "--fs", str(FS), "--channels", "4", "--seconds", "6.5"),
        *("--events", json.dumps([["drop", 1500, 3500]])),  # 3.5 s silence, samples lost
    )
    try:
        chunks = collect(dev, board, timeout=40)
        board.summary()
    finally:
        dev.close()
        board.stop()
    check_rows(chunks, 4)
    assert true_jumps(chunks) == [(5000, 3500)]
    gaps = jumps(chunks)
    assert len(gaps) == 1
    assert abs(gaps[0][1] - 3500) <= 350
    s = dev.stats
    assert (s["gaps"], s["lost_samples"]) == (1, gaps[0][1])
    assert s["reconnects"] == 0


def test_session_over_a_text_stream_with_a_silence_judges_only_the_true_reps(
    ports: VirtualPorts, tmp_path: Path
) -> None:
    """The finding end to end: synthetic EMG (glute 60 ms before lumbar, reps at 1.5, 4, 6.5,
    11 and 13.5 s) as plain text lines, and 3.5 s lost from 6.53 s, between the rep's glute
    and lumbar onsets. The session must count the gap, judge no rep across the join, and
    place every rep it judges at its true time (the stream glued over the silence put the
    last two 3.5 s early, next to a rep "without a lumbar onset" that never was)."""
    truth = [1.5, 4.0, 6.5, 11.0, 13.5]
    lumbar = [t + 0.06 for t in truth]
    emg = bursts(FS, 15.5, [truth, truth, lumbar, lumbar], seed=5)
    rows = np.column_stack([np.round(emg), np.arange(emg.shape[0])]).astype(np.int64)
    data = tmp_path / "emg.npy"
    np.save(data, rows)
    names = (*ROLES, "k")
    dev = SerialDevice(
        str(ports.host), "text", fs=FS, channels=5, names=names, roles=ROLES, wait_first=False
    )
    raw: list[Chunk] = []
    session = LiveSession(dev, on_raw=raw.append)
    session.open()
    session.start(threaded=False)
    board = Board(
        ports,
        *("--protocol", "text", "--fs", str(FS), "--seconds", "15.5", "--data", str(data)),
        *("--events", json.dumps([["drop", 6530, 3500]])),
    )
    events = []
    try:
        deadline = time.monotonic() + 60
        quiet_since = None
        while time.monotonic() < deadline:
            if session.pump_once():
                quiet_since = None
                continue
            events += [e.event for e in session.drain_events()]
            if board.done:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.3:
                    break
            time.sleep(0.002)
        else:
            raise AssertionError("the stream did not end in time")
        board.summary()
    finally:
        session.close()
        board.stop()
    assert session.pipeline is not None
    events += [e.event for e in session.drain_events()] + session.pipeline.finish()
    index, values = joined(raw)
    k = values[:, 4].astype(np.int64)
    assert np.flatnonzero(np.diff(k) != 1).size == 1  # one true join
    gaps = jumps(raw)
    assert len(gaps) == 1 and abs(gaps[0][1] - 3500) <= 350
    assert (session.stats.gaps, session.stats.lost_samples) == (1, gaps[0][1])
    # stream index -> board time: exact before the join, off by the estimate's error after
    shift = {True: int(k[0] - index[0]), False: int(k[-1] - index[-1])}
    judged = []
    for rep in (e for e in events if isinstance(e, RepResult) and e.order != "undetermined"):
        judged.append((rep.start + shift[rep.start < gaps[0][0]]) / FS)
    assert len(judged) == 4, judged
    for t_true, t_seen in zip([1.5, 4.0, 11.0, 13.5], sorted(judged), strict=True):
        assert abs(t_seen - t_true) < 0.05, (judged, t_true)
    assert all(r.order == "glute_first" for r in events if isinstance(r, RepResult))


def test_text_bursty_delivery_has_no_false_gap_and_one_real_one(ports: VirtualPorts) -> None:
    """Writes 50-100 ms apart (75 +- 25 ms, seeded), a real 1 s loss in the middle."""
    dev = SerialDevice(str(ports.host), "text", fs=FS, channels=2, wait_first=False)
    dev.open()
    dev.start()
    board = Board(
        ports,
        *("--protocol", "text", "--fs", str(FS), "--channels", "2", "--seconds", "9"),
        *("--block-ms", "75", "--jitter-ms", "25", "--seed", "3"),
        *("--events", json.dumps([["drop", 4000, 1000]])),
    )
    try:
        chunks = collect(dev, board, timeout=40)
        board.summary()
    finally:
        dev.close()
        board.stop()
    check_rows(chunks, 2)
    assert true_jumps(chunks) == [(5000, 1000)]
    gaps = jumps(chunks)
    assert len(gaps) == 1, gaps  # 8 s of bursts around it: no false gap
    assert abs(gaps[0][1] - 1000) <= 100
    assert (dev.stats["gaps"], dev.stats["lost_samples"]) == (1, gaps[0][1])
    tolerance = dev.gap_tolerance_s
    assert tolerance is not None and tolerance >= CLOCK_MIN_TOLERANCE_S


def test_text_unplug_and_replug_repeatedly_always_disconnects_and_resumes(
    ports: VirtualPorts, caplog: pytest.LogCaptureFixture
) -> None:
    """The cable is pulled (socat killed: both pty ends vanish) and plugged back in (socat
    restarted on the same link names), in several trials: each must go disconnected, retry
    with the default backoff, resume, and count the outage as one gap of about its length."""
    caplog.set_level(logging.INFO, logger="devices.drivers.serial_board")
    for trial in range(4):
        caplog.clear()
        dev = SerialDevice(str(ports.host), "text", fs=FS, channels=4, wait_first=False)
        dev.open()
        dev.start()
        board = Board(
            ports,
            *("--protocol", "text", "--fs", str(FS), "--channels", "4", "--seconds", "4"),
            *("--reopen", "--linger", "0.5"),
        )
        states: list[str] = []
        phase = {"killed_at": 0.0, "restarted": False}

        pull_after = 800 + 100 * trial  # unplug at a different moment each time

        def on_poll(
            dev: SerialDevice = dev,
            states: list[str] = states,
            phase: dict[str, float] = phase,
            pull_after: int = pull_after,
        ) -> None:
            if not states or states[-1] != dev.state:
                states.append(dev.state)
            if not phase["killed_at"] and dev.stats["samples"] > pull_after:
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
            summary = board.summary()
        finally:
            dev.close()
            board.stop()
        assert not dev.reader_alive, f"trial {trial}: the reader did not stop"
        assert phase["restarted"] and summary["reopens"] == 1, f"trial {trial}"
        i = states.index("disconnected")
        assert "streaming" in states[:i] and "streaming" in states[i + 1 :], (trial, states)
        down = [r for r in caplog.records if "disconnected" in r.getMessage()]
        assert len(down) == 1 and down[0].levelno == logging.WARNING, (trial, down)
        check_rows(chunks, 4)
        truth = true_jumps(chunks)
        gaps = jumps(chunks)
        assert len(truth) == 1 and len(gaps) == 1, (trial, truth, gaps)
        lost = truth[0][1]  # the outage plus what was in flight and the skipped first line
        assert abs(gaps[0][1] - lost) <= max(0.1 * lost, 50), (trial, gaps, truth)
        s = dev.stats
        assert (s["reconnects"], s["gaps"], s["lost_samples"]) == (1, 1, gaps[0][1])


def _repoint(link: Path, target: Path) -> None:
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.realpath(target), tmp)
    os.replace(tmp, link)  # atomic: the path names the new device at once


def test_a_path_that_names_another_device_under_a_silent_handle_reconnects(
    tmp_path: Path,
) -> None:
    """A USB adapter re-enumerates: the stable path (a /dev/serial/by-id link) now names a
    new device node, while the old handle stays open and silent without ever failing a read
    (here: the old pty pair stays up). The reader must notice, go disconnected and reopen the
    path, not wait on the old handle for ever."""
    if shutil.which("socat") is None:
        pytest.skip("socat not installed")
    first, second = VirtualPorts(tmp_path / "a"), VirtualPorts(tmp_path / "b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    link = tmp_path / "by-id-link"
    first.start()
    _repoint(link, first.host)
    dev = SerialDevice(str(link), "text", fs=FS, channels=2, wait_first=False)
    boards: list[Board] = []
    try:
        dev.open()
        dev.start()
        boards.append(
            Board(
                first,
                *("--protocol", "text", "--fs", str(FS), "--channels", "2"),
                "--seconds",
                "1.5",
            )
        )
        chunks = collect(dev, boards[0], timeout=20)
        assert dev.state == "streaming"
        second.start()
        _repoint(link, second.host)
        boards.append(
            Board(
                second,
                *("--protocol", "text", "--fs", str(FS), "--channels", "2"),
                "--seconds",
                "2",
            )
        )
        wait_for(lambda: dev.state == "disconnected", 10, "the reader to notice")
        chunks += collect(dev, boards[1], timeout=30)
        for b in boards:
            b.summary()
    finally:
        dev.close()
        for b in boards:
            b.stop()
        first.kill()
        second.kill()
    assert not dev.reader_alive
    s = dev.stats
    assert s["reconnects"] == 1 and s["gaps"] == 1
    gaps = jumps(chunks)
    assert len(gaps) == 1 and gaps[0][1] == s["lost_samples"] >= 1
    check_rows(chunks, 2)
    k = joined(chunks)[1][:, 0].astype(np.int64)
    after = np.flatnonzero(np.diff(k) != 1)
    # the new board counts from 0 (what it sent before the path was reopened is gone)
    assert after.size == 1 and k[after[0]] == 1499 and k[after[0] + 1] < 1499 and k[-1] == 1999
