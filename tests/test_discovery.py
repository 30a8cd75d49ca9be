"""Discovery: what a board sends, found through a real pty (socat) before a session opens
it, and the CLI's one line that says how to map it. BrainFlow: the synthetic board's
descriptor. Every wait is bounded; the rate estimate is checked loosely (10 %), never a
speed."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import serial

from app.cli import build_parser
from app.commands.sources import source_options
from devices.drivers.base import DeviceError
from devices.drivers.brainflow_board import BrainFlowDevice
from devices.drivers.discovery import (
    discover_brainflow,
    discover_serial,
    nominal_rate,
    suggest_roles,
)
from devices.drivers.serial_protocol import Scale
from tests.cli_run import run_cli
from tests.test_serial_device import Board, VirtualPorts

FOUR = "glute_l=ch1,glute_r=ch2,lumbar_l=ch3,lumbar_r=ch4"


def _port_is_free(port: Path) -> bool:
    """The driver opens ports exclusively: a second exclusive open fails while one is open."""
    try:
        s = serial.Serial(str(port), exclusive=True, timeout=0)
    except serial.SerialException:
        return False
    s.close()
    return True


# -- serial through a pty -----------------------------------------------------------------


def test_text_board_channels_rate_and_the_port_is_closed_after(ports: VirtualPorts) -> None:
    board = Board(ports, "--protocol", "text", "--fs", "1000", "--channels", "4", "--seconds", "6")
    try:
        found = discover_serial(str(ports.host), protocol="text")
        assert _port_is_free(ports.host)  # discovery gave the port back
    finally:
        board.stop()
    assert found.channel_names == ("ch1", "ch2", "ch3", "ch4")
    assert found.protocol == "text" and not found.labelled
    assert found.rate_source == "host clock"
    assert found.rate_hz == pytest.approx(1000, rel=0.1)
    assert found.nominal_hz == 1000
    assert found.samples >= 100
    assert found.describe() == "4 channels ch1, ch2, ch3, ch4 (text, ~1000 Hz)"
    assert found.channels_option() == FOUR


def test_fob1_board_is_named_when_text_was_expected(ports: VirtualPorts) -> None:
    board = Board(ports, "--protocol", "fob1", "--fs", "2000", "--channels", "2", "--seconds", "6")
    try:
        found = discover_serial(str(ports.host), protocol="text")
    finally:
        board.stop()
    assert found.protocol == "fob1" and found.channel_names == ("ch1", "ch2")
    assert found.rate_source == "device counter"
    assert found.rate_hz == pytest.approx(2000, rel=0.1)
    assert found.suggested_roles() == {"glute_l": "ch1", "lumbar_l": "ch2"}


def test_labelled_text_names_and_roles_by_name(ports: VirtualPorts) -> None:
    # the writer labels its fields glute_l, glute_r, lumbar_l, lumbar_r (Serial Plotter)
    board = Board(ports, "--protocol", "text", "--labels", "--seq", "--fs", "500", "--seconds", "6")
    try:
        found = discover_serial(str(ports.host), seq=True)
    finally:
        board.stop()
    assert found.channel_names == ("glute_l", "glute_r", "lumbar_l", "lumbar_r")
    assert found.labelled and found.rate_source == "device counter"
    assert found.suggested_roles() == {n: n for n in found.channel_names}
    assert found.rate_hz == pytest.approx(500, rel=0.1)


def test_silent_port_is_one_line_about_no_data(ports: VirtualPorts) -> None:
    with pytest.raises(DeviceError, match=r"^no data from serial port .* in 0.5 s") as exc:
        discover_serial(str(ports.host), timeout_s=0.5)
    assert "\n" not in str(exc.value)
    assert _port_is_free(ports.host)


def test_garbage_is_one_line_about_baud_and_sketch(ports: VirtualPorts) -> None:
    stop = threading.Event()
    fd = os.open(str(ports.board), os.O_RDWR | os.O_NOCTTY)

    def noise() -> None:  # what a wrong baud rate looks like: bytes, never a line or frame
        while not stop.wait(0.01):
            os.write(fd, bytes([0x80 | (i % 0x7F) for i in range(64)]))

    writer = threading.Thread(target=noise, daemon=True)
    writer.start()
    try:
        with pytest.raises(DeviceError) as exc:
            discover_serial(str(ports.host), timeout_s=0.6, baud=9600)
    finally:
        stop.set()
        writer.join(timeout=2)
        os.close(fd)
    msg = str(exc.value)
    assert "no valid text or fob1 sample" in msg and "baud rate (9600)" in msg
    assert "\n" not in msg


def test_missing_port_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="not found"):
        discover_serial(str(tmp_path / "ttyNOPE"))


# -- BrainFlow --------------------------------------------------------------------------------


def test_brainflow_synthetic_descriptor_matches_what_the_driver_opens() -> None:
    found = discover_brainflow("SYNTHETIC_BOARD")
    assert found.n_channels == 16 and found.rows == tuple(range(1, 17))
    assert found.channel_names[:2] == ("EMG1", "EMG2")
    assert found.rate_hz == 250 and found.rate_text() == "250 Hz"
    dev = BrainFlowDevice("SYNTHETIC_BOARD")
    try:
        info = dev.open()
    finally:
        dev.close()
    assert info.channel_names == found.channel_names and info.fs == found.rate_hz


def test_brainflow_board_missing_its_parameters_is_one_line() -> None:
    with pytest.raises(DeviceError, match=r"needs file .* master_board"):
        discover_brainflow("PLAYBACK_FILE_BOARD")


# -- suggestions ------------------------------------------------------------------------------


def test_suggested_roles() -> None:
    four = ["ch1", "ch2", "ch3", "ch4", "ch5"]
    assert suggest_roles(four) == {
        "glute_l": "ch1", "glute_r": "ch2", "lumbar_l": "ch3", "lumbar_r": "ch4",
    }  # fmt: skip
    assert suggest_roles(["a", "b"]) == {"glute_l": "a", "lumbar_l": "b"}
    assert suggest_roles(["a"]) == {}
    stored = {"glute_r": "ch4", "lumbar_r": "ch5"}
    assert suggest_roles(four, stored) == stored  # the device's stored mapping wins
    assert suggest_roles(["ch1", "ch2"], stored) == {"glute_l": "ch1", "lumbar_l": "ch2"}
    assert suggest_roles(four, {"glute_l": "ch1"}) == suggest_roles(four)  # no lumbar: a guess
    assert nominal_rate(1012.0) == 1000 and nominal_rate(730.4) == 730
    assert nominal_rate(None) is None


# -- the CLI ------------------------------------------------------------------------------------


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout)


@pytest.mark.parametrize("command", ["live", "record"])
def test_cli_without_channels_lists_what_the_board_sends(
    command: str, ports: VirtualPorts, tmp_path: Path
) -> None:
    board = Board(ports, "--protocol", "text", "--fs", "1000", "--channels", "4", "--seconds", "20")
    try:
        extra = ["--folder", str(tmp_path)] if command == "record" else []
        proc = _cli(command, "--source", "serial", "--port", str(ports.host), *extra)
        assert proc.returncode == 2, proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0] == (
            "fireorder: error: give --fs and --channels; the board sends ch1,ch2,ch3,ch4 "
            f"(~1000 Hz): e.g. --fs 1000 --channels {FOUR}"
        )
        if command == "live":  # the suggestion runs as given
            ok = _cli(
                "live", "--source", "serial", "--port", str(ports.host),
                "--fs", "1000", "--channels", FOUR, "--duration", "1", "--jsonl",
            )  # fmt: skip
            assert ok.returncode == 0, ok.stderr
            assert json.loads(ok.stdout.splitlines()[-1])["samples"] >= 1000
    finally:
        board.stop()


def test_cli_names_the_protocol_the_board_speaks(ports: VirtualPorts) -> None:
    board = Board(ports, "--protocol", "fob1", "--fs", "1000", "--channels", "2", "--seconds", "10")
    try:
        proc = _cli("live", "--source", "serial", "--port", str(ports.host), "--fs", "1000")
    finally:
        board.stop()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "fireorder: error: give --channels; the board sends ch1,ch2 (fob1, ~1000 Hz): "
        "e.g. --protocol fob1 --channels glute_l=ch1,lumbar_l=ch2"
    )


def test_cli_silent_port_is_one_line(ports: VirtualPorts) -> None:
    proc = _cli("live", "--source", "serial", "--port", str(ports.host))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("fireorder: error: no data from serial port")


def test_cli_adc_scale_is_the_one_the_window_presets_build() -> None:
    args = build_parser().parse_args(
        [
            *("live", "--source", "serial", "--port", "/dev/null", "--fs", "1000"),
            *("--channels", FOUR, "--adc-bits", "10", "--vref", "5", "--amp-gain", "200"),
        ]
    )
    _, options = source_options(args)
    assert options["scale"] == Scale.from_adc(bits=10, vref=5.0, amp_gain=200.0)


def test_a_backlog_from_before_the_port_opened_does_not_inflate_the_rate(
    ports: VirtualPorts,
) -> None:
    board = Board(ports, "--protocol", "text", "--fs", "1000", "--channels", "4", "--seconds", "10")
    try:
        # nobody reads for 4 s: the writer blocks on the full pty and then catches up at once,
        # as a board or adapter with a buffer would
        time.sleep(4.0)
        found = discover_serial(str(ports.host))
    finally:
        board.stop()
    assert (
        found.samples > 2000
    )  # a backlog did arrive (a look alone sees ~1100), faster than the board sends
    assert found.rate_hz is None or found.rate_hz == pytest.approx(1000, rel=0.1)
    assert found.nominal_hz in (None, 1000)


def test_cli_brainflow_board_of_two_channels_says_how_to_map_them() -> None:
    # GFORCE_DUAL_BOARD: two EMG rows in its descriptor; nothing is opened to learn that
    proc = _cli("live", "--source", "brainflow", "--board", "GFORCE_DUAL_BOARD")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "fireorder: error: give --channels; the board sends EMG1,EMG2 (500 Hz): "
        "e.g. --channels glute_l=EMG1,lumbar_l=EMG2"
    )
