"""Running the command line as a user does, ``python -m app ...``, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str,
    timeout: float = 120,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    headless: bool = False,
    **kw: Any,
) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` in a child process, its output captured as text; a non-zero exit
    is the test's to judge (no exception). ``headless``: without a display or a Qt platform
    in its environment, as on a server with no screen."""
    if headless:
        env = {
            k: v
            for k, v in (env or os.environ).items()
            if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
        }
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kw,
    )
