"""Replay benchmark: a one-hour recording opened, overviewed, seeked and replayed from the file.

* **the file**: a fireorder BDF+ written by :class:`devices.files.recorder.Recorder` into a
  temporary folder (deleted afterwards): the simulator (preset ``clean``) for 300 s, written
  twelve times over with continuous sample indices (3600 s). Two layouts: 1 kHz x 4 EMG
  channels (the issue's target) and 2 kHz x 8 channels (quick: 300 s each).
* **measured in a child process** per file (so that RSS is the replay's own):
  ``SessionController(FileSource(path)).open()`` wall time (target <= 1.5 s); the overview
  (``FileSource.overview(3000)``, target <= 0.5 s); 20 random seeks (fixed seed, anywhere in
  the file): ``controller.seek(target)``, then the worker step that delivers the first chunk
  at the target, then ``session.snapshot(10, max_points=2000)`` (the first frame), timed from
  the seek call (target p95 <= 100 ms); then the whole file replayed flat out through a new
  controller (``run(until_exhausted=True)``): RSS (``/proc/self/statm``) sampled every
  simulated minute, the peak (``VmHWM`` reset before the replay through
  ``/proc/self/clear_refs``) and at the end (target <= 300 MB).
* **before**: the whole-file path this replaced (``load_mapped``) opened in a child of its
  own, for the 1 kHz x 4 ch file only: its wall time and peak RSS.

Run ``python -m bench.replay_bench [--quick] [--layout 4|8]``; ``main(argv)`` returns the
result dict and writes ``replay.json`` / ``replay.md`` to the bench output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

log = logging.getLogger(__name__)

TARGET_OPEN_S = 1.5
TARGET_SEEK_P95_MS = 100.0
TARGET_OVERVIEW_S = 0.5
TARGET_RSS_MB = 300.0
PIECE_S = 300.0
LAYOUTS = {"4": (1000.0, 4), "8": (2000.0, 8)}
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ------------------------------------------------------------------------------ the file


def build(path: Path, fs: float, n_channels: int, duration_s: float, seed: int = 7) -> float:
    """Write the recording; returns the wall time it took."""
    from devices.files.recorder import Recorder, SessionMeta
    from devices.simulation.model import preset, simulate
    from dsp.contract import Chunk

    names = common.CHANNELS_8[:n_channels] if n_channels > 4 else common.CHANNELS_8[:4]
    t0 = time.perf_counter()
    piece_s = min(PIECE_S, duration_s)
    sim = simulate(preset("clean", seed=seed, fs=fs, channels=tuple(names)), piece_s)
    data = np.ascontiguousarray(sim.data)
    rec = Recorder(path, sim.info, SessionMeta(session="replay-bench", device="simulator"))
    if not rec.start():
        raise RuntimeError(f"recorder did not start: {rec.error}")
    total = round(duration_s * fs)
    step = round(fs)
    at = 0
    while at < total:
        for a in range(0, data.shape[0], step):
            if at >= total:
                break
            part = data[a : a + min(step, total - at)]
            rec.write(Chunk(part, at))
            at += part.shape[0]
    summary = rec.stop(timeout=300)
    if summary.error or summary.samples != total:
        raise RuntimeError(f"recording incomplete: {summary}")
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------ child side


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE / 1e6


def _hwm_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _stats(seconds: Sequence[float]) -> dict[str, Any]:
    ms = np.asarray(seconds) * 1e3
    return {
        "n": int(ms.size),
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "times_ms": ms.round(1).tolist(),
    }


def measure(path: str, seeks: int, seed: int) -> dict[str, Any]:
    """Everything about one file, in this (fresh) process."""
    from devices.drivers.file_replay import FileSource
    from devices.session.controller import SessionController

    res: dict[str, Any] = {"rss_start_mb": _rss_mb()}
    src = FileSource(path, speed=None)
    ctl = SessionController(src)
    t0, c0 = time.perf_counter(), time.process_time()
    info = ctl.open()
    res["open_s"] = time.perf_counter() - t0
    res["open_cpu_s"] = time.process_time() - c0
    res["n_samples"] = src.n_samples
    res["fs"] = info.fs
    res["channels"] = info.n_channels
    res["buffer_rows"] = src.buffer_rows

    t0, c0 = time.perf_counter(), time.process_time()
    ov = src.overview(3000)
    res["overview_s"] = time.perf_counter() - t0
    res["overview_cpu_s"] = time.process_time() - c0
    res["overview_columns"] = ov.columns
    res["overview_gaps"] = len(ov.gaps)

    session = ctl.session
    ctl.start(threaded=False)
    src.pause()
    rng = np.random.default_rng(seed)
    n = src.n_samples
    targets = [int(x) for x in rng.integers(0, max(1, n - round(info.fs)), size=seeks)]
    times, cpu = [], []
    for target in targets:
        t0, c0 = time.perf_counter(), time.process_time()
        ctl.seek(target)
        src.play()
        while not session.pump_once():  # the worker's step that delivers the target
            pass
        snap = session.snapshot(10.0, max_points=2000)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        src.pause()
        first = round(snap.t[-1] * info.fs) if snap.t.size else -1
        if first < target:
            log.warning("seek to %d: the frame ends at %d", target, first)
    res["seek"] = {"targets": targets, **_stats(times), "cpu": _stats(cpu)}
    ctl.close()

    # the whole hour, flat out, through a controller of its own
    src = FileSource(path, speed=None)
    ctl = SessionController(src)
    ctl.open()
    reps = [0]
    ctl.on_rep = lambda _r: reps.__setitem__(0, reps[0] + 1)
    res["rss_before_replay_mb"] = _rss_mb()
    res["hwm_reset"] = _reset_hwm()
    samples: list[float] = []
    minute = round(60 * info.fs)
    next_sample = [minute]

    def watch(chunk: Any) -> None:
        if chunk.start >= next_sample[0]:
            samples.append(_rss_mb())
            next_sample[0] += minute

    t0 = time.perf_counter()
    ctl.session.on_raw = watch
    ctl.session.run(until_exhausted=True)
    ctl.drain()
    res["replay_s"] = time.perf_counter() - t0
    res["replay_realtime_factor"] = n / info.fs / res["replay_s"]
    res["replay_reps"] = reps[0]
    res["rss_samples_mb"] = [round(x, 1) for x in samples]
    res["rss_end_mb"] = _rss_mb()
    hwm = _hwm_mb()
    res["rss_peak_mb"] = max([*samples, res["rss_end_mb"], *([hwm] if hwm else [])])
    ctl.close()
    return res


def measure_legacy(path: str) -> dict[str, Any]:
    """The whole-file read this replaced: ``load_mapped`` (the old ``FileSource.open``)."""
    from devices.files.mapping import load_mapped

    t0 = time.perf_counter()
    mapped = load_mapped(path, keep_unmapped=True)
    wall = time.perf_counter() - t0
    return {"open_s": wall, "rss_mb": _rss_mb(), "rss_peak_mb": _hwm_mb(), "rows": len(mapped.data)}


def _load() -> float:
    """The 1-minute load average (the machine may be shared: wall times say less then)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _child(mode: str, path: Path, seeks: int, seed: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.replay_bench", "--child", mode, str(path)]
    cmd += ["--seeks", str(seeks), "--seed", str(seed)]
    env = {**os.environ, "PYTHONPATH": str(common.REPO_ROOT)}
    out = subprocess.run(
        cmd, cwd=common.REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {mode} failed: {out.stderr.strip()[-800:]}")
    res = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    res["load_avg_1min"] = _load()
    return res


# ------------------------------------------------------------------------------ run


def run(duration_s: float, layouts: Sequence[str], seeks: int = 20, seed: int = 2024) -> dict:
    res: dict[str, Any] = {
        "machine": common.machine(),
        "code": common.code_version(),
        "config": {"duration_s": duration_s, "layouts": list(layouts), "seeks": seeks},
        "layouts": {},
    }
    folder = Path(tempfile.mkdtemp(prefix="fireorder-replaybench-"))
    try:
        for key in layouts:
            fs, ch = LAYOUTS[key]
            path = folder / f"replay_{ch}ch_{fs:g}hz.bdf"
            log.info("writing %g s of %d ch @ %g Hz", duration_s, ch, fs)
            built = build(path, fs, ch, duration_s)
            entry: dict[str, Any] = {
                "fs": fs,
                "channels": ch,
                "build_s": built,
                "file_mb": path.stat().st_size / 1e6,
            }
            log.info("measuring %s (%.0f MB)", path.name, entry["file_mb"])
            entry["new"] = _child("measure", path, seeks, seed)
            if key == "4":
                entry["legacy"] = _child("legacy", path, seeks, seed)
            res["layouts"][key] = entry
            path.unlink(missing_ok=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return res


# ------------------------------------------------------------------------------ report


def _mark(ok: bool, target: str) -> str:
    return "✓" if ok else f"✗ (target {target})"


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        "## Replay from the file",
        "",
        f"CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs); Python {m['python']}, numpy "
        f"{m['numpy']}; fireorder at {common.code_version_text(res.get('code', {}))}. "
        f"A {res['config']['duration_s']:g} s fireorder BDF+ (simulator, preset clean), "
        "measured in a fresh child process: `SessionController(FileSource(path)).open()`, "
        "`FileSource.overview(3000)`, random seeks to the first frame, then the whole file "
        "replayed flat out.",
        "",
    ]
    rows = []
    for entry in res["layouts"].values():
        new = entry["new"]
        tag = f"{entry['fs'] / 1000:g} kHz × {entry['channels']} ch ({entry['file_mb']:.0f} MB)"
        seek = new["seek"]
        rows += [
            [
                f"{tag}: open",
                f"{new['open_s'] * 1e3:.0f} ms (CPU {new['open_cpu_s'] * 1e3:.0f} ms) "
                + _mark(new["open_s"] <= TARGET_OPEN_S, "≤ 1.5 s"),
            ],
            [
                f"{tag}: overview strip (3000 columns)",
                f"{new['overview_s'] * 1e3:.0f} ms (CPU {new['overview_cpu_s'] * 1e3:.0f} ms) "
                + _mark(new["overview_s"] <= TARGET_OVERVIEW_S, "≤ 0.5 s"),
            ],
            [
                f"{tag}: seek → first frame ({seek['n']} random seeks) median / p95 / max",
                f"{seek['median_ms']:.0f} / {seek['p95_ms']:.0f} / {seek['max_ms']:.0f} ms "
                f"(CPU p95 {seek['cpu']['p95_ms']:.0f} ms) "
                + _mark(seek["p95_ms"] <= TARGET_SEEK_P95_MS, "p95 ≤ 100 ms"),
            ],
            [
                f"{tag}: RSS replaying the whole file flat out: peak / end",
                f"{new['rss_peak_mb']:.0f} / {new['rss_end_mb']:.0f} MB "
                + _mark(new["rss_peak_mb"] <= TARGET_RSS_MB, "≤ 300 MB"),
            ],
            [
                f"{tag}: replay wall time (× real time), reps",
                f"{new['replay_s']:.1f} s ({new['replay_realtime_factor']:.0f}×), "
                f"{new['replay_reps']} reps",
            ],
        ]
        if "legacy" in entry:
            leg = entry["legacy"]
            rows.append(
                [
                    f"{tag}: before (whole-file `load_mapped`): open / peak RSS",
                    f"{leg['open_s'] * 1e3:.0f} ms / {common.fmt(leg['rss_peak_mb'], 0)} MB",
                ]
            )
    lines.append(common.md_table(["measure", "result"], rows))
    layouts = list(res["layouts"].values())
    lines += [
        "",
        "Seek: `controller.seek(target)`, the worker step that delivers the first chunk at "
        "the target, and `session.snapshot(10, max_points=2000)`, timed together. The minute "
        "before the target primes the baseline (filters only); the last 3 s run the full "
        "pipeline. RSS peak: `VmHWM` after a reset before the replay, and `/proc/self/statm` "
        "every simulated minute. CPU: the child's process time for the same step (on a "
        "shared machine the wall time includes waiting for a core; 1-minute load average "
        + ", ".join(f"{e['new'].get('load_avg_1min', math.nan):.1f}" for e in layouts)
        + ").",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fireorder replay benchmark")
    parser.add_argument("--quick", action="store_true", help="300 s files instead of 3600 s")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), action="append", help="4 or 8 ch")
    parser.add_argument("--seeks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        mode, path = args.child
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        out = measure(path, args.seeks, args.seed) if mode == "measure" else measure_legacy(path)
        print(json.dumps(out))  # the parent reads the last line
        return out
    common.setup_logging(args.verbose)
    duration = PIECE_S if args.quick else 3600.0
    t0 = time.perf_counter()
    res = run(duration, args.layout or list(LAYOUTS), args.seeks, args.seed)
    res["seconds"] = time.perf_counter() - t0
    out_dir = common.out_dir(args.quick)
    common.write_json(out_dir / "replay.json", res)
    text = markdown(res)
    common.write_text(out_dir / "replay.md", text + "\n")
    print(text)
    return res


if __name__ == "__main__":
    main()
