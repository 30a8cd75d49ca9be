"""End to end, as a reviewer: ``fireorder FILE`` in a real X window (Xvfb + openbox), Ctrl+E,
type a file name into the save dialog, Enter: the report and its rep CSV appear.

Driven with xdotool (real X key events through the window manager), not Qt's test API.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("Xvfb", "openbox", "xdotool")

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS), reason="Xvfb, openbox and xdotool needed"
)


def _free_display() -> int:
    for n in range(140, 240):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@contextlib.contextmanager
def x_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    n = _free_display()
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=f":{n}", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    xvfb = subprocess.Popen(
        ["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wm = None
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.1)
        wm = subprocess.Popen(
            ["openbox"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        yield env
    finally:
        for proc in (wm, xvfb):
            if proc is not None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)


def _window(
    env: dict[str, str], name: str, timeout: float, app: subprocess.Popen[bytes] | None = None
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app is not None and app.poll() is not None:
            raise AssertionError(f"fireorder exited ({app.returncode}) before its window showed")
        out = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", name],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        ids = out.stdout.split()
        if ids:
            return ids[-1]
        time.sleep(0.3)
    raise AssertionError(f"no window named {name!r} within {timeout:g} s")


def _xdo(env: dict[str, str], *args: str) -> None:
    if args and args[0] == "windowactivate":
        # openbox announces _NET_ACTIVE_WINDOW a moment after it starts (on a loaded machine,
        # after the first window is up): until then xdotool refuses; try again for a while
        deadline = time.monotonic() + 20
        while True:
            done = subprocess.run(["xdotool", *args], env=env, check=False, timeout=30)
            if done.returncode == 0:
                return
            assert time.monotonic() < deadline, f"xdotool {' '.join(args)} kept failing"
            time.sleep(0.5)
    subprocess.run(["xdotool", *args], env=env, check=True, timeout=30)


def test_fireorder_file_then_ctrl_e_writes_the_report(tmp_path: Path) -> None:
    demo = ROOT / "recordings" / "demo_glute_first.bdf"
    bdf = tmp_path / "review" / demo.name
    bdf.parent.mkdir()
    shutil.copy(demo, bdf)
    shutil.copy(demo.with_name(demo.name + ".json"), bdf.with_name(bdf.name + ".json"))
    out = tmp_path / "reports" / "session-report.html"
    out.parent.mkdir()
    with x_server(tmp_path) as env:
        env["FIREORDER_DATA_DIR"] = str(tmp_path / "data")
        log = tmp_path / "stderr.txt"
        with log.open("w") as err_file:
            app = subprocess.Popen(
                [sys.executable, "-m", "app", str(bdf)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err_file,
            )
        try:
            try:  # (the first start of a fresh install compiles and caches: allow for it)
                main = _window(env, "glute vs lumbar firing order", 150, app)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; its stderr: {log.read_text()[-3000:]}") from None
            _xdo(env, "windowactivate", "--sync", main)
            time.sleep(2.0)  # the replay runs; the user decides to export
            _xdo(env, "key", "--clearmodifiers", "ctrl+e")
            dialog = _window(env, "Save report", 30)
            _xdo(env, "windowactivate", "--sync", dialog)
            # the file name box has the focus and holds the suggested name: replace it
            _xdo(env, "key", "--clearmodifiers", "ctrl+a")
            _xdo(env, "type", "--delay", "20", str(out))
            _xdo(env, "key", "--clearmodifiers", "Return")
            deadline = time.monotonic() + 90
            csv = out.with_suffix(".csv")
            while not (out.exists() and csv.exists()):
                assert app.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "no report after 90 s"
                time.sleep(0.5)
            assert "<html" in out.read_text(encoding="utf-8").lower()
            assert csv.read_text(encoding="utf-8").splitlines()[0].startswith("rep")
            main = _window(env, "glute vs lumbar firing order", 10)
            _xdo(env, "windowactivate", "--sync", main)
            _xdo(env, "key", "--clearmodifiers", "ctrl+q")
            app.wait(30)
        finally:
            if app.poll() is None:
                app.kill()
                app.wait(10)
    err = log.read_text()
    assert app.returncode == 0, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
