"""An already full disk: `record`, `report` and `simulate` say so in one line, exit 2, and leave
no empty or partial file; the window tells the user and keeps streaming (issue 11)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from tests.cli_run import run_cli
from tests.test_recorder import small_fs

DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo_glute_first.bdf"


def _fill(mnt: Path) -> None:
    fd = os.open(mnt / "fill", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=120)


@pytest.mark.parametrize(
    "cmd",
    [
        ["record", "--fast", "--duration", "3", "--out", "{m}/r.bdf"],
        ["simulate", "--duration", "5", "--out", "{m}/s.csv", "--truth", "{m}/s.json"],
        ["report", str(DEMO), "--out", "{m}/r.html", "--csv", "{m}/r.csv"],
    ],
)
def test_cli_on_a_full_disk(tmp_path: Path, cmd: list[str]) -> None:
    with small_fs(tmp_path, 256) as mnt:
        _fill(mnt)
        proc = _cli(*(c.replace("{m}", str(mnt)) for c in cmd))
        left = sorted(p.name for p in mnt.iterdir())
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "space" in proc.stderr or "disk full" in proc.stderr
    assert left == ["fill"]  # no 0-byte or partial output, no temporary file


def test_existing_output_survives_a_failed_rewrite(tmp_path: Path) -> None:
    with small_fs(tmp_path, 256) as mnt:
        old = mnt / "s.csv"
        old.write_text("time,a\n0,1\n")
        _fill(mnt)
        proc = _cli("simulate", "--duration", "5", "--out", str(old))
        kept = old.read_text()
    assert proc.returncode == 2
    assert kept == "time,a\n0,1\n"  # replaced whole or not at all


def test_window_recording_onto_a_full_disk(qtbot, tmp_path: Path) -> None:
    from PyQt6 import QtCore

    from app.main_window import MainWindow
    from app.settings_store import SettingsStore
    from app.source_panel import SourceChoice

    with small_fs(tmp_path, 256) as mnt:
        _fill(mnt)
        ini = QtCore.QSettings.Format.IniFormat
        store = SettingsStore(QtCore.QSettings(str(tmp_path / "s.ini"), ini))
        win = MainWindow(store, source=SourceChoice("simulator", {"seed": 2}), threaded=False,
                         recordings_dir=str(mnt))
        qtbot.addWidget(win)
        win.show()
        errors: list[str] = []
        win.show_error = errors.append  # type: ignore[method-assign]  # the message shown
        assert win.ctl is not None
        win.ctl.session.pump(0.5)
        win.refresh()
        win.act_record.trigger()  # what the user clicks
        win.ctl.session.pump(0.5)
        win.refresh()
        assert win.recorder is None
        assert errors and ("space" in errors[0] or "disk full" in errors[0]), errors
        before = win.ctl.stats.samples
        win.ctl.session.pump(0.5)
        win.refresh()
        assert win.ctl.stats.samples > before  # streaming goes on
        left = sorted(p.name for p in mnt.iterdir())
    assert left == ["fill"]
