"""A real X window under Xvfb: the app starts, streams, and the screen shows its verdicts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed")
def test_real_window_screenshot(tmp_path: Path) -> None:
    out, athlete = tmp_path / "shot.png", tmp_path / "athlete.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)  # settings of this run stay here
    cmd = [
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 1600x1000x24",
        sys.executable,
        str(ROOT / "scripts" / "screenshot.py"),
        "--seconds",
        "9",
        "--out",
        str(out),
        "--athlete",
        str(athlete),
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "reps shown" in proc.stderr
    from PyQt6 import QtGui

    img = QtGui.QImage(str(out))
    assert (img.width(), img.height()) == (1600, 1000)
    ptr = img.convertToFormat(QtGui.QImage.Format.Format_RGB888).constBits()
    ptr.setsize(img.width() * img.height() * 3)
    px = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.width(), 3)
    assert px.std() > 20  # a drawn window, not a blank screen
    # the athlete view fills the screen with a verdict colour
    a = QtGui.QImage(str(athlete)).convertToFormat(QtGui.QImage.Format.Format_RGB888)
    aptr = a.constBits()
    aptr.setsize(a.width() * a.height() * 3)
    apx = np.frombuffer(aptr, np.uint8).reshape(a.height(), a.width(), 3)
    colours = {(0x1B, 0x9E, 0x4B), (0xE0, 0xA0, 0x00), (0xD7, 0x26, 0x3D), (0x7F, 0x8C, 0x8D)}
    centre = tuple(int(v) for v in apx[a.height() // 8, a.width() // 2])
    assert any(np.abs(np.subtract(centre, c)).max() <= 60 for c in colours), centre
