"""The real window on a 1366x768 X screen (Xvfb): it fits, and the state strip shows REC,
PAUSED and RAW in their colours on the screen the user sees (issue 10)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pixels(image: object) -> np.ndarray:
    """RGB pixels copied out of a QImage."""
    from PyQt6 import QtGui

    assert isinstance(image, QtGui.QImage)
    rgb = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    ptr = rgb.constBits()
    assert ptr is not None
    ptr.setsize(h * stride)
    rows = np.frombuffer(ptr, np.uint8).reshape(h, stride)
    return rows[:, : w * 3].reshape(h, w, 3).copy()


def _xvfb_run() -> list[str]:
    # FIREORDER_XVFB_SERVERNUM pins the display number (machines shared by several users);
    # otherwise xvfb-run picks a free one.
    num = os.environ.get("FIREORDER_XVFB_SERVERNUM")
    return ["xvfb-run", "-n", num] if num else ["xvfb-run", "-a"]


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed")
def test_window_and_state_strip_on_a_1366x768_screen(tmp_path: Path) -> None:
    out = tmp_path / "state.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    cmd = [
        *_xvfb_run(),
        "-s",
        "-screen 0 1366x768x24",
        sys.executable,
        str(ROOT / "scripts" / "screenshot.py"),
        "--seconds",
        "8",
        "--size",
        "auto",  # the size the window takes by itself: it must fit the screen
        "--record",
        "--raw",
        "--pause",
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r"window (\d+)x(\d+)", proc.stderr)
    assert m is not None, proc.stderr[-2000:]
    assert int(m[1]) <= 1366 and int(m[2]) <= 768  # the window fits the screen
    from PyQt6 import QtGui

    from app.state_strip import PAUSED_COLOR, RAW_COLOR, REC_COLOR

    px = _pixels(QtGui.QImage(str(out))).astype(int)
    assert px.shape[:2] == (768, 1366)
    top = px[:120]  # the strip is near the top of the window
    for name, color in (("REC", REC_COLOR), ("PAUSED", PAUSED_COLOR), ("RAW", RAW_COLOR)):
        c = QtGui.QColor(color)
        want = np.array([c.red(), c.green(), c.blue()])
        hits = (np.abs(top - want).max(axis=2) <= 10).sum()
        assert hits > 300, (name, hits)  # a badge's worth of its colour is on the screen
