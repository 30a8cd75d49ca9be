"""GUI benchmark: frame rate and GUI-thread load while streaming, cue latency, detection delay,
and memory over a long (accelerated) session.

Runs the real window. Under a real X server (Xvfb when no display is set: the module re-runs
itself with ``xvfb-run``) for the frame rate; the memory soak runs offscreen and steps the
session synchronously, as fast as possible. Run ``python -m bench.gui [--quick]``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench import common

log = logging.getLogger(__name__)

FPS = int(os.environ.get("FIREORDER_BENCH_FPS", "60"))  # the window's default
CHANNELS = ",".join(common.CHANNELS_8)


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _store(tag: str) -> Any:
    from PyQt6 import QtCore

    from app.settings_store import SettingsStore

    path = common.out_dir(True).parent / f"gui-bench-{tag}.ini"
    path.unlink(missing_ok=True)
    return SettingsStore(QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat))


def live_run(seconds: float) -> dict[str, Any]:
    """Real-time simulator (8 ch, 2 kHz, worker thread) in the real window for ``seconds``."""
    from PyQt6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from app.source_panel import SourceChoice
    from app.traces import TracesView

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    choice = SourceChoice(
        "simulator", {"fs": 2000.0, "preset": "clean", "channels": CHANNELS, "seed": 21}
    )
    # GUI-thread CPU time spent painting the traces (the view's paintEvent: every item in it).
    paint_s: list[float] = []
    paint_event = TracesView.paintEvent

    def timed_paint(view: Any, ev: Any) -> None:
        t = time.thread_time()
        paint_event(view, ev)
        paint_s.append(time.thread_time() - t)

    TracesView.paintEvent = timed_paint  # type: ignore[method-assign]
    win = MainWindow(_store("live"), source=choice, threaded=True, fps=FPS)
    win.resize(1600, 1000)
    win.show()

    paints: list[float] = []
    drawn: list[tuple[Any, float]] = []

    class PaintCounter(QtCore.QObject):
        def eventFilter(  # noqa: N802
            self, obj: QtCore.QObject | None, ev: QtCore.QEvent | None
        ) -> bool:
            if ev is not None and ev.type() == QtCore.QEvent.Type.Paint:
                paints.append(time.monotonic())
            return False

    refresh_s: list[float] = []
    inner = win.refresh

    def timed_refresh() -> None:
        t = time.thread_time()
        inner()
        refresh_s.append(time.thread_time() - t)

    win.timer.timeout.disconnect()
    win.timer.timeout.connect(timed_refresh)
    counter = PaintCounter()
    win.traces.viewport().installEventFilter(counter)
    win.rep_shown.connect(lambda rep: drawn.append((rep, time.monotonic())))
    warmup = 3.0
    # A local event loop: QApplication.quit() would close the window (Qt 6) and its session.
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int((warmup + seconds) * 1000), loop.quit)
    marks: dict[str, float] = {}

    def start_measuring() -> None:
        marks["wall"] = time.monotonic()
        marks["cpu"] = time.thread_time()  # CPU time of the GUI thread only
        paints.clear()
        refresh_s.clear()
        paint_s.clear()

    QtCore.QTimer.singleShot(int(warmup * 1000), start_measuring)
    loop.exec()
    app.processEvents()  # (keeps the application object alive and referenced)
    wall = time.monotonic() - marks["wall"]
    gui_cpu = time.thread_time() - marks["cpu"]
    session = win.session
    assert session is not None and session.info is not None, session and (
        session.state,
        session.error,
    )
    device = session.device
    truth = device.truth()  # type: ignore[attr-defined]
    t0 = getattr(device, "_t0", session.stats.started)
    fs = session.info.fs
    delays = []
    for rep, t_drawn in drawn:
        match = [rt for rt in truth.reps if abs(rt.start_s - rep.start / fs) < 0.15]
        if not match:
            continue
        lumbar = [t for r, t in match[0].onsets.items() if r.is_lumbar]
        delays.append(t_drawn - (t0 + min(lumbar)))
    lat = np.array(win.latencies) * 1000
    stats = session.stats
    win.close()
    TracesView.paintEvent = paint_event  # type: ignore[method-assign]
    return {
        "platform": QtWidgets.QApplication.platformName(),
        "seconds": round(wall, 1),
        "fps": round(len(paints) / wall, 1),
        "gui_thread_busy": round(gui_cpu / wall, 3),
        "timer_slot_busy": round(sum(refresh_s) / wall, 3),
        "timer_slot_ms": {
            "median": _r(1000 * np.median(refresh_s)),
            "p95": _r(1000 * np.percentile(refresh_s, 95)),
        }
        if refresh_s
        else None,
        "traces_paint_busy": round(sum(paint_s) / wall, 3),
        "traces_paint_ms": {
            "median": _r(1000 * np.median(paint_s)),
            "p95": _r(1000 * np.percentile(paint_s, 95)),
        }
        if paint_s
        else None,
        "samples": stats.samples,
        "lost_samples": stats.lost_samples,
        "reps": len(drawn),
        "cue_latency_ms": {"median": _r(np.median(lat)), "p95": _r(np.percentile(lat, 95))}
        if len(lat)
        else None,
        "detection_delay_ms": {
            "median": _r(1000 * np.median(delays)),
            "p95": _r(1000 * np.percentile(delays, 95)),
        }
        if delays
        else None,
        "worker_busy": round(stats.busy_s / wall, 3),
        # (the machine may be shared: the 1-minute load average at the end says how busy)
        "load_average": round(os.getloadavg()[0], 2),
    }


def soak(minutes: float) -> dict[str, Any]:
    """A long session stepped as fast as possible (refresh every simulated second)."""
    from PyQt6 import QtWidgets

    from app.main_window import MainWindow
    from app.source_panel import SourceChoice

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    choice = SourceChoice(
        "simulator", {"fs": 2000.0, "preset": "clean", "channels": CHANNELS, "seed": 22}
    )
    win = MainWindow(_store("soak"), source=choice, threaded=False)
    win.show()
    session = win.session
    assert session is not None
    rss: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    total = int(minutes * 60)
    for second in range(total):
        session.pump(1.0)
        win.refresh()
        app.processEvents()
        if second % 60 == 59:
            rss.append(((second + 1) / 60, _rss_mb()))
    elapsed = time.perf_counter() - t0
    win.close()
    first = next((m for t, m in rss if t >= min(5.0, rss[-1][0])), rss[0][1])
    return {
        "simulated_minutes": minutes,
        "wall_s": round(elapsed, 1),
        "rss_mb_after_5_min": round(first, 1),
        "rss_mb_end": round(rss[-1][1], 1),
        "growth_mb": round(rss[-1][1] - first, 1),
        "reps": len(win.tally.reps),
    }


def _r(x: float) -> float:
    return round(float(x), 1)


def run(quick: bool) -> dict[str, Any]:
    return {
        "machine": common.machine(),
        "live": live_run(8.0 if quick else 30.0),
        "soak": soak(3.0 if quick else 30.0),
    }


def markdown(res: dict[str, Any]) -> str:
    live, soak_ = res["live"], res["soak"]
    cue, det = live["cue_latency_ms"] or {}, live["detection_delay_ms"] or {}
    return "\n".join(
        [
            "## Live window",
            "",
            f"Real window ({live['platform']}), simulator 8 channels at 2 kHz in real time, 10 s "
            f"trace window, {live['seconds']} s measured after 3 s warm-up, "
            f"{res['machine']['logical_cpus']} logical CPUs ({res['machine']['cpu']}), "
            f"load average {live.get('load_average', '?')} at the end.",
            "",
            "| measure | value | target |",
            "|---|---|---|",
            f"| frame rate | {live['fps']} fps | ≥ 60 |",
            f"| GUI thread busy (CPU time / wall time) | {100 * live['gui_thread_busy']:.0f}%"
            " | ≤ 25% |",
            f"| of it painting the traces / in the timer slot | "
            f"{100 * live['traces_paint_busy']:.0f}% / {100 * live['timer_slot_busy']:.0f}% | |",
            f"| acquisition + DSP thread busy | {100 * live['worker_busy']:.1f}% | |",
            f"| cue latency, deciding chunk → verdict drawn, median / p95 | "
            f"{cue.get('median')} / {cue.get('p95')} ms | p95 ≤ 40 ms |",
            f"| detection delay, true lumbar onset → verdict drawn, median / p95 | "
            f"{det.get('median')} / {det.get('p95')} ms | p95 ≤ 100 ms |",
            f"| samples lost | {live['lost_samples']} of {live['samples']} | 0 |",
            f"| memory growth over {soak_['simulated_minutes']:.0f} simulated minutes "
            f"(RSS after 5 min → end) | {soak_['growth_mb']} MB "
            f"({soak_['rss_mb_after_5_min']} → {soak_['rss_mb_end']}) | ≤ 20 MB |",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse_args("GUI benchmark", argv)
    common.setup_logging(args.verbose)
    if not os.environ.get("DISPLAY") and not os.environ.get("FIREORDER_BENCH_NO_XVFB"):
        xvfb = shutil.which("xvfb-run")
        if xvfb:
            # A real X server: the frame rate of what a user sees, not of offscreen rendering.
            env = {**os.environ, "FIREORDER_BENCH_NO_XVFB": "1"}
            cmd = [
                xvfb,
                "-a",
                "-s",
                "-screen 0 1600x1000x24",
                sys.executable,
                "-m",
                "bench.gui",
                *(argv if argv is not None else sys.argv[1:]),
            ]
            subprocess.run(cmd, env=env, check=True)
            path = common.out_dir(args.quick) / "gui.json"
            return dict(json.loads(path.read_text()))
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    res = run(args.quick)
    out = common.out_dir(args.quick)
    common.write_json(out / "gui.json", res)
    md = markdown(res)
    common.write_text(out / "gui.md", md + "\n")
    print(md)
    return res


if __name__ == "__main__":
    main()
