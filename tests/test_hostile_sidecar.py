"""A killed recording whose sidecar is hostile (``summary`` a list, ``stream`` a string or a
list, ``writer`` a number, deep nesting) is repaired or skipped with a warning, and never stops
`fireorder record`, `analyze` or the window from starting (issue 11)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PyQt6 import QtCore

from devices.files.bdf_format import RECORD_COUNT_OFFSET
from devices.files.recorder import recover_folder

DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo_glute_first.bdf"

HOSTILE = {
    "summary-list": lambda d: {**d, "summary": [1, 2], "state": "recording"},
    "stream-str": lambda d: {**d, "stream": "xyz", "state": "recording"},
    "stream-list": lambda d: {**d, "stream": [1, {"channel_names": 3}], "state": "recording"},
    "writer-int": lambda d: {**d, "writer": 7, "state": "recording"},
    "deep": lambda d: {**d, "stream": json.loads("[" * 50000 + "]" * 50000)},
}


def _killed(folder: Path, name: str, how: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.bdf"
    shutil.copy(DEMO, path)
    with open(path, "r+b") as f:  # what a kill leaves: count -1 and a partial record
        f.seek(RECORD_COUNT_OFFSET)
        f.write(b"-1      ")
        f.seek(0, 2)
        f.write(b"\x01" * 999)
    doc = json.loads(DEMO.with_name(DEMO.name + ".json").read_text())
    side = path.with_name(path.name + ".json")
    if how == "deep":  # deeper than json can load: written as text
        side.write_text(json.dumps(doc)[:-1] + ', "x": ' + "[" * 100000 + "]" * 100000 + "}")
    else:
        side.write_text(json.dumps(HOSTILE[how](doc)))
    return path


@pytest.mark.parametrize("how", sorted(HOSTILE))
def test_recover_folder_survives(tmp_path: Path, how: str) -> None:
    path = _killed(tmp_path / "rec", "k", how)
    reports = recover_folder(tmp_path / "rec")
    assert [r.path for r in reports] == [path]
    proc = subprocess.run([sys.executable, "-m", "app", "analyze", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_record_starts_beside_hostile_sidecars(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    for how in HOSTILE:
        _killed(folder, how, how)
    out = folder / "new.bdf"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "record", "--fast", "--duration", "3", "--folder",
         str(folder), "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and out.stat().st_size > 0


def test_window_starts_beside_hostile_sidecars(qtbot, tmp_path: Path, monkeypatch) -> None:
    from app.main_window import MainWindow
    from app.settings_store import SettingsStore
    from app.source_panel import SourceChoice

    folder = tmp_path / "data" / "recordings"
    for how in HOSTILE:
        _killed(folder, how, how)
    ini = QtCore.QSettings.Format.IniFormat
    store = SettingsStore(QtCore.QSettings(str(tmp_path / "s.ini"), ini))
    store.save_prefs(store.load_prefs().with_(recordings_dir=str(folder)))
    win = MainWindow(store, source=SourceChoice("simulator", {"seed": 1}), threaded=False)
    qtbot.addWidget(win)
    win.show()
    # the window repairs unfinished recordings once it is up (a zero-time timer)
    qtbot.waitUntil(lambda: "repaired unfinished" in win.statusBar().currentMessage(), timeout=5000)
    win.sessions.refresh()
    table = win.sessions.table
    names = {table.item(r, table.columnCount() - 1).text() for r in range(table.rowCount())}
    assert {f"{how}.bdf" for how in HOSTILE} <= names, names
