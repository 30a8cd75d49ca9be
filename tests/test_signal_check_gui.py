"""The window's signal-check panel in real Qt (offscreen), on the real simulator.

Clean electrodes show green rows that say "good"; a fault shows the right colour, the reason
and the fix, on the channel that has it. The session is pumped synchronously, as in
tests/test_gui_window.py; the window refreshes its signal check at most once a second, so the
test lets one second pass before the last refresh (no timing is asserted).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import pytest
from PyQt6 import QtGui

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.signal_check import COLUMNS, LIGHT
from app.source_panel import SourceChoice

NAMES = ("glute_l", "glute_r", "lumbar_l", "lumbar_r")


def window_after(qtbot, store: SettingsStore, preset: str, seconds: float = 14.0) -> MainWindow:
    source = SourceChoice("simulator", {"fs": 2000.0, "preset": preset, "seed": 4})
    win = MainWindow(store, source=source, threaded=False)
    qtbot.addWidget(win)
    win.show()
    assert win.session is not None
    for _ in range(round(seconds / 0.25)):
        win.session.pump(0.25)
        win.refresh()
    qtbot.wait(1100)  # the window's once-a-second signal-check refresh
    win.refresh()
    return win


def rows(win: MainWindow) -> dict[str, dict[str, object]]:
    """What the panel shows, per channel: light colour and the text of every column."""
    t = win.signal_check.table
    out = {}
    for r in range(t.rowCount()):
        cells = {COLUMNS[c] or "light": t.item(r, c) for c in range(t.columnCount())}
        light = cells.pop("light")
        assert light is not None
        name = cells["channel"].text().split(" ")[0]  # type: ignore[union-attr]
        out[name] = {
            "color": light.foreground().color().name(),
            **{k: v.text() for k, v in cells.items() if v is not None},
        }
    return out


def test_clean_electrodes_show_green_good_rows(qtbot, store: SettingsStore) -> None:
    win = window_after(qtbot, store, "clean")
    shown = rows(win)
    assert set(shown) == set(NAMES)
    for name, row in shown.items():
        assert row["color"] == QtGui.QColor(LIGHT["ok"]).name(), (name, row)
        assert row["status"] == "good"
        assert row["advice"] == "good"
        assert 2.0 < float(str(row["noise µV RMS"])) < 4.0  # a measured floor, in µV
        assert str(row["hum"]).endswith("dB") or "µV" in str(row["hum"])
    assert "noise µV RMS" in COLUMNS and not any("uV" in c for c in COLUMNS)


@pytest.mark.parametrize(
    ("preset", "faulty", "status", "reason", "advice"),
    [
        ("lead_off", {"glute_l"}, "bad", "flat / lead-off", "snap lead"),
        ("hum", set(NAMES), "bad", "mains hum", "50 Hz hum"),
        ("noisy", set(NAMES), None, "noisy (skin contact)", "re-prepare the skin"),
        ("ecg", {"lumbar_l", "lumbar_r"}, "warn", "heartbeat (ECG)", "further from the heart"),
    ],
)
def test_a_fault_shows_its_colour_reason_and_fix(
    qtbot,
    store: SettingsStore,
    preset: str,
    faulty: set[str],
    status: str | None,
    reason: str,
    advice: str,
) -> None:
    win = window_after(qtbot, store, preset)
    shown = rows(win)
    for name, row in shown.items():
        if name not in faulty:
            assert row["color"] == QtGui.QColor(LIGHT["ok"]).name(), (name, row)
            assert row["status"] == "good"
            continue
        colors = {QtGui.QColor(LIGHT[s]).name(): s for s in (status,) if s} or {
            QtGui.QColor(LIGHT[s]).name(): s for s in ("warn", "bad")
        }
        assert row["color"] in colors, (name, row)
        assert row["status"] in (f"check: {reason}", f"fix: {reason}"), row
        assert advice in str(row["advice"])
        assert "uV" not in str(row["advice"])


def test_choosing_another_source_clears_the_stopped_sources_rows(
    qtbot, store: SettingsStore
) -> None:
    """A newcomer stopped the simulator, picked "serial" and read the simulator's green rows
    as the board's electrodes: the rows go when another source is chosen with nothing
    streaming, and stay while a source streams."""
    win = window_after(qtbot, store, "clean", seconds=3.0)
    assert set(rows(win)) == set(NAMES)
    win.source_panel.kind.setCurrentText("serial")  # chosen while streaming: rows stay
    assert set(rows(win)) == set(NAMES)
    win.source_panel.kind.setCurrentText("simulator")
    win.source_panel.stop_btn.click()
    assert set(rows(win)) == set(NAMES)  # stopped: still the last quality of that source
    win.source_panel.kind.setCurrentText("serial")
    assert rows(win) == {} and win.signal_check.statuses == []
