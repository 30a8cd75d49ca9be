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


def _pixels(image: object) -> np.ndarray:
    """RGB pixels copied out of a QImage (the converted image must outlive the view)."""
    from PyQt6 import QtGui

    assert isinstance(image, QtGui.QImage)
    rgb = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    ptr = rgb.constBits()
    ptr.setsize(h * stride)
    rows = np.frombuffer(ptr, np.uint8).reshape(h, stride)
    return rows[:, : w * 3].reshape(h, w, 3).copy()


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
    px = _pixels(img)
    assert px.std() > 20  # a drawn window, not a blank screen
    # the athlete view fills the screen with a verdict colour
    a = QtGui.QImage(str(athlete))
    apx = _pixels(a)
    from app.athlete_view import FLASH_LIGHTER

    base = [(0x1B, 0x9E, 0x4B), (0xE0, 0xA0, 0x00), (0xD7, 0x26, 0x3D), (0x7F, 0x8C, 0x8D)]
    # a verdict that arrives just before the shot paints its colour lighter for a moment
    flash = [QtGui.QColor(*c).lighter(FLASH_LIGHTER).getRgb()[:3] for c in base]
    colours = np.array(base + flash)
    h, w, _ = apx.shape
    middle = apx[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].reshape(-1, 1, 3).astype(int)
    near = (np.abs(middle - colours[None, :, :]).max(axis=2) <= 40).any(axis=1)
    assert near.mean() > 0.25, near.mean()  # the verdict colour fills the athlete view
