"""Connect that discovers, in the real window (Qt offscreen): a board on a socat pty (or
BrainFlow's synthetic board), the Connect and Start buttons clicked as a user clicks them.
Waits are bounded (qtbot.waitUntil); nothing asserts a speed."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import pytest
from PyQt6 import QtCore, QtWidgets
from PyQt6.QtTest import QTest

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.source_panel import NO_ROLE, SourceChoice
from devices.drivers.brainflow_board import BrainFlowDevice
from devices.drivers.serial_board import SerialDevice
from devices.drivers.serial_protocol import Scale
from devices.session.states import SessionState
from dsp.contract import Role
from tests.test_serial_device import Board, VirtualPorts

SIM = SourceChoice("simulator", {"fs": 2000.0, "preset": "clean", "seed": 11})
LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture
def board(ports: VirtualPorts) -> Iterator[Board]:
    b = Board(ports, "--protocol", "text", "--fs", "1000", "--channels", "4", "--seconds", "30")
    yield b
    b.stop()


def window(qtbot, store: SettingsStore) -> MainWindow:
    """The window as a user finds it: streaming the simulator (its four named channels)."""
    win = MainWindow(store, source=SIM, threaded=True, recordings_dir=None)
    qtbot.addWidget(win)
    win.show()
    return win


def names_and_roles(win: MainWindow) -> list[tuple[str, str]]:
    table = win.source_panel.mapping
    out = []
    for row in range(table.rowCount()):
        item = table.item(row, 0)
        combo = table.cellWidget(row, 1)
        assert item is not None and isinstance(combo, QtWidgets.QComboBox)
        out.append((item.text(), combo.currentText()))
    return out


def pick_serial(win: MainWindow, port: Path, preset: str | None = None) -> None:
    panel = win.source_panel
    panel.kind.setCurrentText("serial")
    panel.serial_port.setCurrentText(str(port))
    panel.serial_fs.setValue(1000)
    if preset is not None:
        panel.scale_preset.setCurrentIndex(panel.scale_preset.findText(preset))


def click_connect(qtbot, win: MainWindow) -> None:
    QTest.mouseClick(win.source_panel.connect_btn, LEFT)
    qtbot.waitUntil(lambda: not win.source_panel.discovering, timeout=10_000)


def test_connect_lists_the_board_channels_and_start_runs(
    qtbot, store: SettingsStore, ports: VirtualPorts, board: Board
) -> None:
    win = window(qtbot, store)
    assert names_and_roles(win)[0][0] == "glute_l"  # the simulator's channels
    pick_serial(win, ports.host, "MyoWare 2.0 RAW, Uno (gain 200)")
    panel = win.source_panel
    QTest.mouseClick(panel.connect_btn, LEFT)
    assert not panel.connect_btn.isEnabled()  # looking: no second Connect, no Start
    assert names_and_roles(win) == []  # nothing of the previous source stays mappable
    qtbot.waitUntil(lambda: not panel.discovering, timeout=10_000)
    assert win.ctl is None  # the simulator is gone, the board not opened yet
    assert names_and_roles(win) == [
        ("ch1", "glute_l"),
        ("ch2", "glute_r"),
        ("ch3", "lumbar_l"),
        ("ch4", "lumbar_r"),
    ]
    assert panel.state.text().startswith("4 channels ch1, ch2, ch3, ch4 (text, ~1000 Hz)")
    assert panel.connect_btn.isEnabled() and panel.start_btn.isEnabled()
    QTest.mouseClick(panel.start_btn, LEFT)
    assert win.ctl is not None and win.ctl.state == SessionState.STREAMING
    qtbot.waitUntil(lambda: win.session is not None and win.session.stats.samples > 300)
    device = win.ctl.device
    assert isinstance(device, SerialDevice)
    # the preset reached the driver exactly as the CLI's --adc-bits 10 --vref 5 --amp-gain 200
    assert device.scale == Scale.from_adc(bits=10, vref=5.0, amp_gain=200.0)
    info = win.ctl.info
    assert info is not None and info.units == ("counts",) * 4
    assert info.roles == {Role.GLUTE_L: 0, Role.GLUTE_R: 1, Role.LUMBAR_L: 2, Role.LUMBAR_R: 3}
    assert store.load_mapping(f"serial:{ports.host}") == {
        "glute_l": "ch1",
        "glute_r": "ch2",
        "lumbar_l": "ch3",
        "lumbar_r": "ch4",
    }
    win.close()


def test_start_without_a_glute_and_a_lumbar_is_one_message(
    qtbot, store: SettingsStore, ports: VirtualPorts, board: Board, caplog
) -> None:
    win = window(qtbot, store)
    pick_serial(win, ports.host)
    click_connect(qtbot, win)
    table = win.source_panel.mapping
    for row in (1, 2, 3):  # only ch1 (glute_l) stays mapped
        combo = table.cellWidget(row, 1)
        assert isinstance(combo, QtWidgets.QComboBox)
        combo.setCurrentText(NO_ROLE)
    with caplog.at_level(logging.INFO):
        QTest.mouseClick(win.source_panel.start_btn, LEFT)
    assert win.ctl is None
    message = win.statusBar().currentMessage()
    assert message == (
        "Start needs a glute and a lumbar channel: pick their muscles in the "
        "channel → muscle table (mapped: glute_l)"
    )
    assert all(r.exc_info is None for r in caplog.records)  # no traceback anywhere
    # mapping a lumbar channel is all it takes
    combo = table.cellWidget(3, 1)
    assert isinstance(combo, QtWidgets.QComboBox)
    combo.setCurrentText("lumbar_r")
    QTest.mouseClick(win.source_panel.start_btn, LEFT)
    assert win.ctl is not None and win.ctl.state == SessionState.STREAMING
    assert win.ctl.info is not None
    assert win.ctl.info.roles == {Role.GLUTE_L: 0, Role.LUMBAR_R: 3}
    win.close()


def test_the_stored_mapping_of_the_port_wins(
    qtbot, store: SettingsStore, ports: VirtualPorts, board: Board
) -> None:
    store.save_mapping(f"serial:{ports.host}", {"glute_r": "ch3", "lumbar_r": "ch4"})
    win = window(qtbot, store)
    pick_serial(win, ports.host)
    click_connect(qtbot, win)
    assert names_and_roles(win) == [
        ("ch1", NO_ROLE),
        ("ch2", NO_ROLE),
        ("ch3", "glute_r"),
        ("ch4", "lumbar_r"),
    ]
    win.close()


def test_space_without_connect_looks_at_the_board_then_starts(
    qtbot, store: SettingsStore, ports: VirtualPorts, board: Board
) -> None:
    win = MainWindow(store, autostart=False, threaded=True)
    qtbot.addWidget(win)
    win.show()
    pick_serial(win, ports.host)
    win.act_start.trigger()  # the Space shortcut's action
    qtbot.waitUntil(lambda: win.ctl is not None, timeout=10_000)
    assert [n for n, _ in names_and_roles(win)] == ["ch1", "ch2", "ch3", "ch4"]
    assert win.ctl is not None and win.ctl.state == SessionState.STREAMING
    win.close()


def test_a_missing_port_is_a_message_and_the_panel_stays_usable(
    qtbot, store: SettingsStore, tmp_path: Path
) -> None:
    win = window(qtbot, store)
    pick_serial(win, tmp_path / "ttyGONE")
    click_connect(qtbot, win)
    panel = win.source_panel
    assert "not found" in panel.state.text() and "not found" in win.statusBar().currentMessage()
    assert panel.connect_btn.isEnabled() and names_and_roles(win) == []
    panel.kind.setCurrentText("simulator")
    QTest.mouseClick(panel.start_btn, LEFT)
    assert win.ctl is not None and win.ctl.state == SessionState.STREAMING
    win.close()


def test_scale_presets_fill_the_fields_and_editing_makes_it_custom(
    qtbot, store: SettingsStore
) -> None:
    win = MainWindow(store, autostart=False, threaded=False)
    qtbot.addWidget(win)
    panel = win.source_panel
    panel.kind.setCurrentText("serial")
    assert panel.serial_scale() is None and not panel.adc_bits.isEnabled()
    panel.scale_preset.setCurrentText("ESP32 12-bit 3.3 V")
    assert (panel.adc_bits.value(), panel.vref.value(), panel.amp_gain.value()) == (12, 3.3, 1.0)
    assert panel.adc_bits.suffix() == " bits" and panel.vref.suffix() == " V"
    assert panel.serial_scale() == Scale.from_adc(bits=12, vref=3.3, amp_gain=1.0)
    assert "µV" in panel.scale_text.text()
    panel.amp_gain.setValue(1000.0)  # a front end of gain 1000
    assert panel.scale_preset.currentText() == "custom"
    choice = panel.choice()
    assert choice.options["scale"] == Scale.from_adc(bits=12, vref=3.3, amp_gain=1000.0)
    panel.scale_preset.setCurrentText("MyoWare 2.0 RAW, Uno (gain 200)")
    assert (panel.adc_bits.value(), panel.vref.value(), panel.amp_gain.value()) == (10, 5.0, 200)
    win.close()


def test_brainflow_connect_lists_the_descriptor_channels_and_start_runs(
    qtbot, store: SettingsStore
) -> None:
    win = window(qtbot, store)
    panel = win.source_panel
    panel.kind.setCurrentText("brainflow")
    panel.bf_board.setCurrentText("SYNTHETIC_BOARD")
    click_connect(qtbot, win)
    rows = names_and_roles(win)
    assert [n for n, _ in rows] == [f"EMG{i}" for i in range(1, 17)]
    assert [r for _, r in rows[:5]] == ["glute_l", "glute_r", "lumbar_l", "lumbar_r", NO_ROLE]
    assert panel.state.text().startswith("16 channels EMG1, EMG2")
    assert "(brainflow, 250 Hz)" in panel.state.text()
    QTest.mouseClick(panel.start_btn, LEFT)
    assert win.ctl is not None and isinstance(win.ctl.device, BrainFlowDevice)
    qtbot.waitUntil(lambda: win.session is not None and win.session.stats.samples > 50)
    win.close()


def test_opening_another_source_while_looking_drops_the_look(
    qtbot, store: SettingsStore, ports: VirtualPorts, board: Board
) -> None:
    win = MainWindow(store, autostart=False, threaded=True)
    qtbot.addWidget(win)
    win.show()
    pick_serial(win, ports.host)
    panel = win.source_panel
    QTest.mouseClick(panel.connect_btn, LEFT)
    assert panel.discovering
    panel.kind.setCurrentText("simulator")
    win.act_start.trigger()  # Space: the simulator, while the board is still being read
    assert not panel.discovering and panel.connect_btn.isEnabled()
    qtbot.wait(1500)  # (longer than a look: a late result must change nothing)
    assert win.ctl is not None and win.ctl.info is not None
    assert win.ctl.info.source.startswith("simulator")
    assert names_and_roles(win)[0] == ("glute_l", "glute_l")
    assert win.traces.info is not None and win.traces.info.channel_names[0] == "glute_l"
    win.close()


def test_a_window_opened_on_a_serial_board_looks_then_starts(
    qtbot, store: SettingsStore, ports: VirtualPorts, board: Board
) -> None:
    src = SourceChoice("serial", {"port": str(ports.host), "fs": 1000.0, "protocol": "fob1"})
    win = MainWindow(store, source=src, threaded=True)  # autostart
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.ctl is not None, timeout=10_000)
    assert win.ctl is not None and win.ctl.state == SessionState.STREAMING
    assert isinstance(win.ctl.device, SerialDevice)
    assert win.ctl.device.protocol == "text"  # what the board speaks, not what was asked
    assert win.ctl.info is not None and len(win.ctl.info.roles) == 4
    qtbot.waitUntil(lambda: win.session is not None and win.session.stats.samples > 300)
    win.close()


def test_nothing_of_the_previous_source_stays_on_show(
    qtbot, store: SettingsStore, ports: VirtualPorts, board: Board
) -> None:
    """Reps of the simulator on show, then Connect a board: the banner, timing bars, lag
    history, counts, clock and the athlete view start empty (they showed the old verdict)."""
    win = MainWindow(store, source=SIM, threaded=False, recordings_dir=None)
    qtbot.addWidget(win)
    win.show()
    win.act_athlete.trigger()
    assert win.ctl is not None and win.athlete_view is not None
    for _ in range(40):
        win.ctl.session.pump(0.25)
        win.refresh()
    assert win.tally.reps and win.order_panel.verdict.order is not None
    assert win.state_strip.clock.text() and win.athlete_view.order is not None
    pick_serial(win, ports.host)
    click_connect(qtbot, win)
    panel = win.order_panel
    assert panel.verdict.order is None and panel.verdict.text() == "waiting for a rep…"
    assert panel.detail.text() == "" and panel.timing.roles == []
    assert "0" in panel.counts.text() or panel.counts.text() == ""
    assert win.state_strip.clock.text() == ""
    assert win.athlete_view.order is None
