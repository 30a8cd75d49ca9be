"""Soak benchmark: hours of simulated stream in a child process, its memory sampled.

* **live**: ``fireorder live --source simulator --fast --duration 14400 --jsonl`` (quick:
  1200 s) in a child process. Its simulated time is the newest rep start it printed; its
  resident set size (psutil if installed, else ``/proc/PID/status`` VmRSS) is sampled every
  0.2 s of wall time and kept every ``every_s`` simulated seconds.
* **record**: the same session recorded, ``fireorder record --source simulator --fast
  --duration 14400 --out TMP.bdf`` (the recorder is part of a real session). Its simulated
  time is read from the file's size (fixed-size data records after a fixed header), the file
  is deleted afterwards.
* **window**: the real window (``app.main_window.MainWindow``, offscreen Qt) on the
  simulator (8 channels, 2 kHz) for ``window_min`` simulated minutes (quick: 10), in a
  child process, stepped as fast as possible: one simulated second pumped, then the GUI
  timer's slot (``refresh``: drain, draw) and Qt's events, as ``bench.gui``'s soak does.

For each: RSS at 5 simulated minutes and at the end, the growth between them, the slope of a
least-squares line through the samples after 5 minutes (MB per simulated hour) and pass/fail
against growth <= 5 MB (issue 11). Run ``python -m bench.soak [--quick] [--only live,...]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

log = logging.getLogger(__name__)

TARGET_GROWTH_MB = 5.0
SETTLE_S = 300.0  # growth is counted after the first 5 simulated minutes
POLL_S = 0.2
PARTS = ("live", "record", "window")


@dataclass(frozen=True)
class Config:
    duration_s: float = 14400.0
    window_min: float = 40.0
    every_s: float = 120.0
    seed: int = 7

    @classmethod
    def quick(cls) -> Config:
        return cls(duration_s=1200.0, window_min=10.0, every_s=60.0)


# ------------------------------------------------------------------------------ sampling


def rss_mb(pid: int) -> float | None:
    """Resident set size of process ``pid`` now (MB), None once it is gone."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return float(psutil.Process(pid).memory_info().rss) / 1e6
        except psutil.Error:
            return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def _sample(
    proc: subprocess.Popen[str], sim_time: Callable[[], float | None], every_s: float
) -> list[tuple[float, float]]:
    """(simulated s, RSS MB) each time the child's simulated time passes a multiple of
    ``every_s``, and when it last moved on: readings while the child shuts down (its
    session closed, buffers freed) are not the session's."""
    series: list[tuple[float, float]] = []
    newest: tuple[float, float] | None = None
    next_at = every_s
    while proc.poll() is None:
        t = sim_time()
        mb = rss_mb(proc.pid)
        if t is not None and mb is not None and (newest is None or t > newest[0]):
            newest = (t, mb)
            if t >= next_at:
                series.append(newest)
                next_at = (t // every_s + 1) * every_s
        time.sleep(POLL_S)
    if newest is not None and (not series or series[-1] != newest):
        series.append(newest)
    return series


def summarize(series: Sequence[tuple[float, float]], settle_s: float = SETTLE_S) -> dict[str, Any]:
    """RSS at ``settle_s`` and at the end, growth, slope after ``settle_s``."""
    res: dict[str, Any] = {"series": [[round(t, 1), round(m, 2)] for t, m in series]}
    if not series:
        return {**res, "pass": False}
    first = next(((t, m) for t, m in series if t >= settle_s), series[-1])
    end = series[-1]
    after = [(t, m) for t, m in series if t >= first[0]]
    slope = None
    if len(after) >= 3 and after[-1][0] > after[0][0]:
        ts = np.array([t for t, _ in after]) / 3600
        ms = np.array([m for _, m in after])
        slope = float(np.polyfit(ts, ms, 1)[0])
    growth = end[1] - first[1]
    # the peak too: the last reading can fall in the shutdown (a recording's last records
    # reach the disk after its session has closed and freed its buffers)
    peak = max(m for _, m in after) - first[1]
    res.update(
        settle_s=first[0],
        rss_settled_mb=first[1],
        end_s=end[0],
        rss_end_mb=end[1],
        rss_max_mb=max(m for _, m in after),
        growth_mb=growth,
        peak_growth_mb=peak,
        slope_mb_per_h=slope,
        target_mb=TARGET_GROWTH_MB,
        # a run too short to reach the settling time cannot pass
        **{"pass": bool(end[0] > first[0] and max(growth, peak) <= TARGET_GROWTH_MB)},
    )
    return res


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(common.REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def _run_child(
    cmd: list[str], sim_time: Callable[[], float | None], every_s: float, lines: list[str]
) -> tuple[list[tuple[float, float]], subprocess.Popen[str], float]:
    """Start ``cmd``, sample it until it exits; (series, process, wall s). Its stdout lines
    are appended to ``lines`` as they come (``sim_time`` may read them)."""
    log.info("soak: %s", " ".join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=common.REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err: list[str] = []
    out_thread = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    err_thread = threading.Thread(target=lambda: err.extend(proc.stderr or ()), daemon=True)
    out_thread.start()
    err_thread.start()
    series = _sample(proc, sim_time, every_s)
    out_thread.join(10)
    err_thread.join(10)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        log.error("soak child exited %s: %s", proc.returncode, "".join(err[-5:]).strip())
    return series, proc, wall


def _rep_clock(lines: list[str]) -> Callable[[], float | None]:
    """Simulated seconds: the start of the newest rep the child printed (``--jsonl``)."""

    def clock() -> float | None:
        for line in reversed(lines[-5:]):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            t = doc.get("t_s") if isinstance(doc, dict) else None
            if isinstance(t, int | float):
                return float(t)
        return None

    return clock


def soak_live(config: Config) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "app",
        "live",
        "--source",
        "simulator",
        "--fast",
        "--duration",
        f"{config.duration_s:g}",
        "--seed",
        str(config.seed),
        "--jsonl",
    ]
    lines: list[str] = []
    series, proc, wall = _run_child(cmd, _rep_clock(lines), config.every_s, lines)
    stats: dict[str, Any] = {}
    if lines:
        try:
            stats = json.loads(lines[-1])
        except ValueError:
            stats = {}
    return {
        "command": "fireorder " + " ".join(cmd[3:]),
        "exit": proc.returncode,
        "wall_s": wall,
        "realtime_factor": config.duration_s / wall,
        "reps": stats.get("reps"),
        "samples": stats.get("samples"),
        **summarize(series),
    }


def _bdf_clock(path: Path) -> Callable[[], float | None]:
    """Simulated seconds on disk, from the file's size: after a fixed header, the BDF holds
    fixed-size data records of a fixed duration (both read from the header once written)."""
    layout: dict[str, float] = {}

    def read_layout() -> bool:
        try:
            with open(path, "rb") as fh:
                head = fh.read(256)
                n_signals = int(head[252:256].decode("ascii"))
                fh.seek(256 + n_signals * 216)  # samples per record: 8 characters a signal
                spr = fh.read(8 * n_signals).decode("ascii").split()
        except (OSError, ValueError):
            return False
        if len(spr) != n_signals:
            return False
        layout.update(
            header=int(head[184:192].decode("ascii")),
            record_s=float(head[244:252].decode("ascii")),
            record_bytes=3 * sum(int(n) for n in spr),  # 3 bytes a sample in BDF
        )
        return True

    def clock() -> float | None:
        if not layout and not read_layout():
            return None
        try:
            size = path.stat().st_size
        except OSError:
            return None
        records = max(0.0, size - layout["header"]) // layout["record_bytes"]
        return records * layout["record_s"]

    return clock


def soak_record(config: Config) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="fireorder-soak-"))
    path = folder / "soak.bdf"
    cmd = [
        sys.executable,
        "-m",
        "app",
        "record",
        "--source",
        "simulator",
        "--fast",
        "--duration",
        f"{config.duration_s:g}",
        "--seed",
        str(config.seed),
        "--out",
        str(path),
        "--folder",
        str(folder),
    ]
    try:
        lines: list[str] = []
        series, proc, wall = _run_child(cmd, _bdf_clock(path), config.every_s, lines)
        size = path.stat().st_size if path.exists() else 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "command": "fireorder " + " ".join(cmd[3:]).replace(str(folder), "TMP"),
        "exit": proc.returncode,
        "wall_s": wall,
        "realtime_factor": config.duration_s / wall,
        "file_mb": size / 1e6,
        "summary_line": lines[-1].strip() if lines else None,
        **summarize(series),
    }


# ------------------------------------------------------------------------------ window


def window_child(minutes: float, every_s: float) -> None:
    """In the child: the real window on the simulator, stepped; one JSON line per sample."""
    from PyQt6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from app.settings_store import SettingsStore
    from app.source_panel import SourceChoice

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    ini = Path(tempfile.mkdtemp(prefix="fireorder-soak-window-")) / "settings.ini"
    store = SettingsStore(QtCore.QSettings(str(ini), QtCore.QSettings.Format.IniFormat))
    choice = SourceChoice(
        "simulator",
        {"fs": 2000.0, "preset": "clean", "channels": ",".join(common.CHANNELS_8), "seed": 22},
    )
    win = MainWindow(store, source=choice, threaded=False)
    win.resize(1600, 1000)
    win.show()
    session = win.session
    assert session is not None
    me = os.getpid()
    t0 = time.perf_counter()
    every = max(1, round(every_s))
    for second in range(1, int(minutes * 60) + 1):
        session.pump(1.0)
        win.refresh()
        app.processEvents()
        if second % every == 0:
            doc = {
                "t_s": second,
                "rss_mb": rss_mb(me),
                "wall_s": round(time.perf_counter() - t0, 1),
                "reps": win.tally.count,
                "table_rows": win.rep_table.rowCount(),
            }
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()
    win.close()
    shutil.rmtree(ini.parent, ignore_errors=True)


def soak_window(config: Config) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.soak",
        "--window-child",
        f"{config.window_min:g}",
        "--every",
        f"{min(config.every_s, 60):g}",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=common.REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=max(600.0, config.window_min * 60),
        check=False,
    )
    wall = time.perf_counter() - t0
    docs = []
    for line in proc.stdout.splitlines():
        try:
            docs.append(json.loads(line))
        except ValueError:
            continue
    if proc.returncode != 0:
        log.error("window soak exited %s: %s", proc.returncode, proc.stderr[-500:].strip())
    series = [(float(d["t_s"]), float(d["rss_mb"])) for d in docs if d.get("rss_mb")]
    last = docs[-1] if docs else {}
    return {
        "command": "python -m bench.soak " + " ".join(cmd[3:]),
        "exit": proc.returncode,
        "wall_s": wall,
        "simulated_min": config.window_min,
        "realtime_factor": config.window_min * 60 / wall,
        "reps": last.get("reps"),
        "table_rows": last.get("table_rows"),
        **summarize(series),
    }


# ------------------------------------------------------------------------------ report


def run(config: Config, parts: Sequence[str] = PARTS, parallel: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {
        "machine": common.machine(),
        "code": common.code_version(),
        "config": {
            "duration_s": config.duration_s,
            "window_min": config.window_min,
            "every_s": config.every_s,
            "settle_s": SETTLE_S,
            "target_growth_mb": TARGET_GROWTH_MB,
            "seed": config.seed,
        },
    }
    runners = {"live": soak_live, "record": soak_record, "window": soak_window}
    if parallel:  # each part is its own child process; memory is per process
        threads = [
            threading.Thread(target=lambda p=p: res.update({p: runners[p](config)}))
            for p in parts
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    for part in parts:
        t0 = time.perf_counter()
        if part not in res:
            res[part] = runners[part](config)
        r = res[part]
        log.info(
            "soak %s: %s MB growth after 5 min (%s -> %s MB), %s MB/h, %.0f s wall",
            part,
            common.fmt(r.get("growth_mb")),
            common.fmt(r.get("rss_settled_mb")),
            common.fmt(r.get("rss_end_mb")),
            common.fmt(r.get("slope_mb_per_h"), 2),
            r.get("wall_s", time.perf_counter() - t0),
        )
    return res


def _row(name: str, r: dict[str, Any]) -> list[str]:
    fmt = common.fmt
    hours = (r.get("end_s") or 0) / 3600
    ok = "✓" if r.get("pass") else f"✗ (target ≤ {TARGET_GROWTH_MB:g} MB)"
    if r.get("exit"):
        ok += f" (exit {r['exit']})"
    return [
        name,
        f"{hours:.2f} h" if hours >= 1 else f"{hours * 60:.0f} min",
        f"{r.get('wall_s', 0):.0f} s",
        fmt(r.get("rss_settled_mb")),
        fmt(r.get("rss_end_mb")),
        f"{fmt(r.get('growth_mb'))} MB (peak {fmt(r.get('peak_growth_mb'))}) {ok}",
        fmt(r.get("slope_mb_per_h"), 2),
    ]


def markdown(res: dict[str, Any]) -> str:
    m, cfg = res["machine"], res["config"]
    lines = [
        "## Soak (memory over hours)",
        "",
        f"CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs); Python {m['python']}; "
        f"fireorder at {common.code_version_text(res.get('code', {}))}. Each session runs in "
        "a child process as fast as it can (simulator, preset clean); its resident set size "
        f"is sampled every {cfg['every_s']:g} simulated seconds. Growth is counted from the "
        f"first sample after {cfg['settle_s'] / 60:g} simulated minutes to the end; the slope "
        "is a least-squares line through those samples."
        + (" The sessions ran at the same time (wall times overlap)." * bool(cfg.get("parallel"))),
        "",
    ]
    rows = []
    names = {
        "live": "`fireorder live --source simulator --fast` (4 ch, 2 kHz)",
        "record": "`fireorder record --source simulator --fast` (4 ch, 2 kHz, to BDF)",
        "window": "window (offscreen), simulator 8 ch, 2 kHz, stepped",
    }
    for part in PARTS:
        if part in res:
            rows.append(_row(names[part], res[part]))
    lines.append(
        common.md_table(
            [
                "session",
                "simulated",
                "wall",
                "RSS at 5 min (MB)",
                "RSS at end (MB)",
                "growth after 5 min",
                "slope (MB/h)",
            ],
            rows,
        )
    )
    extra = []
    for part in ("live", "record", "window"):
        r = res.get(part)
        if r and r.get("reps") is not None:
            extra.append(f"{part}: {r['reps']} reps")
    if extra:
        lines += ["", "; ".join(extra) + "."]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="fireorder soak benchmark")
    p.add_argument("--quick", action="store_true", help="20 simulated minutes (window: 10)")
    p.add_argument("--only", help=f"comma-separated parts of {','.join(PARTS)}")
    p.add_argument("--hours", type=float, help="simulated hours of the live/record soaks")
    p.add_argument("--window-minutes", type=float, help="simulated minutes of the window soak")
    p.add_argument(
        "--parallel",
        action="store_true",
        help="run the parts at the same time (shorter; each one's wall time is longer)",
    )
    p.add_argument("--window-child", type=float, help=argparse.SUPPRESS)
    p.add_argument("--every", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.window_child is not None:
        window_child(args.window_child, args.every)
        return {}
    common.setup_logging(args.verbose)
    config = Config.quick() if args.quick else Config()
    if args.hours is not None:
        config = Config(args.hours * 3600, config.window_min, config.every_s, config.seed)
    if args.window_minutes is not None:
        config = Config(config.duration_s, args.window_minutes, config.every_s, config.seed)
    parts = PARTS if not args.only else tuple(p.strip() for p in args.only.split(","))
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"soak: unknown part(s) {', '.join(unknown)} (of {', '.join(PARTS)})")
    t0 = time.perf_counter()
    res = run(config, parts, parallel=args.parallel)
    res["config"]["parallel"] = args.parallel
    res["seconds"] = time.perf_counter() - t0
    out = common.out_dir(args.quick)
    common.write_json(out / "soak.json", res)
    text = markdown(res)
    common.write_text(out / "soak.md", text + "\n")
    print(text)
    return res


if __name__ == "__main__":
    main()
