"""Shared plumbing of the benchmarks: output folder, machine description, JSON, markdown."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import scipy

log = logging.getLogger(__name__)

OUT_DIR = Path(__file__).resolve().parent / "out"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
#: the 8-channel layout every throughput benchmark uses (4 roles + 4 role-less channels)
CHANNELS_8 = (
    "glute_l",
    "glute_r",
    "lumbar_l",
    "lumbar_r",
    "hamstring_l",
    "hamstring_r",
    "oblique_l",
    "oblique_r",
)


def out_dir(quick: bool) -> Path:
    """``bench/out`` for full runs, ``bench/out/quick`` for smoke runs (never mixed)."""
    path = OUT_DIR / "quick" if quick else OUT_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
    }


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.rstrip() if proc.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """The commit the benchmark ran on, and uncommitted changes to the measured code."""
    status = _git("status", "--porcelain", "--", "dsp", "devices")
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted": [line[3:] for line in status.splitlines() if line.strip()] if status else [],
    }


def code_version_text(version: dict[str, Any]) -> str:
    commit = version.get("commit") or "unknown commit"
    dirty = version.get("uncommitted") or []
    if not dirty:
        return f"commit `{commit}`"
    return f"commit `{commit}` + uncommitted changes in {', '.join(dirty)}"


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        value = float(obj)
        return value if np.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(_jsonable(data), indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", path)


def write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    log.info("wrote %s", path)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small smoke run (< 60 s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
