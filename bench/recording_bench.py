"""Recording benchmark: a long simulated session recorded as fast as possible, then opened
and seeked.

* **record**: ``LiveSession`` on ``SimulatorDevice(preset="clean", realtime=False,
  counter=True)``, 8 EMG channels + the sample counter at 2 kHz, 3600 s (quick: 120 s),
  pumped one simulated second at a time with ``session.on_raw = recorder.write`` and the
  pipeline's events drained into ``recorder.add_dsp_event`` every simulated second. Wall
  time, real-time factor, RSS (``/proc/self/statm``) after 5 simulated minutes (quick: 30 s)
  and at the end (target: growth <= 20 MB), CPU time of the recorder's writer thread
  (``/proc/self/task/<tid>/stat``), file size.
* **recording CPU cost**: the same 300 s (quick: 30 s) streamed with and without a recorder;
  the difference in process CPU time, per recorded hour.
* **verify**: ``read_fireorder_bdf`` of the file: the counter channel must be 0..N-1 exactly
  (0 samples lost, 0 duplicated) and N = duration x fs.
* **open and seek**: first ``LiveSession(FileSource(path, speed=None)).open()`` of the file,
  then 30 random seeks (fixed seed): ``session.seek(target)`` (60 s pre-roll) and
  ``session.snapshot(10, max_points=2000)``; the time to first frame is seek call to snapshot
  returned (target: p95 <= 200 ms). If 60 s pre-roll misses, 30 s and 15 s are measured too.

Temporary files go to a temp folder on the repo's disk (skipped with a message when less
than 1 GB is free); the recording is deleted afterwards unless ``--keep``.

Run ``python -m bench.recording_bench [--quick] [--keep]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import common
from devices.drivers.file_replay import FileSource
from devices.drivers.simulator import SimulatorDevice
from devices.files.bdf_format import read_fireorder_bdf
from devices.files.recorder import Recorder, SessionMeta, recording_path
from devices.session.live import LiveSession

log = logging.getLogger(__name__)

CHANNELS = common.CHANNELS_8
FS = 2000.0
MIN_FREE_BYTES = 1 << 30
TARGET_GROWTH_MB = 20.0
TARGET_P95_MS = 200.0
PREROLLS = (60.0, 30.0, 15.0)
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Config:
    duration_s: float = 3600.0
    rss_after_s: float = 300.0
    paired_s: float = 300.0
    pairs: int = 3
    seeks: int = 30
    seed: int = 12345
    snapshot_s: float = 10.0
    max_points: int = 2000

    @classmethod
    def quick(cls) -> Config:
        return cls(duration_s=120.0, rss_after_s=30.0, paired_s=30.0, pairs=1, seeks=10)


# ------------------------------------------------------------------------------ helpers


def rss_mb() -> float:
    """Resident set size now (``/proc/self/statm``), MB."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE / 1e6


def peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def thread_cpu_s(native_id: int | None) -> float | None:
    """utime + stime of one thread of this process (Linux), seconds."""
    if native_id is None:
        return None
    try:
        with open(f"/proc/self/task/{native_id}/stat", encoding="ascii") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)"
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat


def make_device(duration_s: float) -> SimulatorDevice:
    return SimulatorDevice(
        preset="clean",
        realtime=False,
        counter=True,
        channels=CHANNELS,
        fs=FS,
        duration_s=duration_s,
    )


def scratch_dir() -> Path:
    """A temp folder on the same disk as the repo."""
    repo_dev = os.stat(common.REPO_ROOT).st_dev
    tmp = Path(tempfile.gettempdir())
    base = tmp if tmp.exists() and os.stat(tmp).st_dev == repo_dev else common.REPO_ROOT.parent
    return Path(tempfile.mkdtemp(prefix="fireorder-recbench-", dir=base))


def stats_ms(seconds: Sequence[float]) -> dict[str, Any]:
    ms = np.asarray(seconds) * 1e3
    return {
        "n": int(ms.size),
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "times_ms": ms.round(2).tolist(),
        "pass": bool(np.percentile(ms, 95) <= TARGET_P95_MS),
    }


# ------------------------------------------------------------------------------ record


def stream(
    duration_s: float, recorder_path: Path | None, rss_after_s: float | None = None
) -> dict[str, Any]:
    """Stream ``duration_s`` of simulator through a LiveSession, optionally recording."""
    device = make_device(duration_s)
    session = LiveSession(device)
    info = session.open()
    recorder: Recorder | None = None
    if recorder_path is not None:
        recorder = Recorder(
            recorder_path, info, SessionMeta(session="bench", device="simulator (clean)")
        )
        if not recorder.start():
            raise RuntimeError(f"recorder did not start: {recorder.error}")
        session.on_raw = recorder.write
    session.start(threaded=False)
    writer = recorder._thread if recorder is not None else None  # private: CPU of the writer
    tid = writer.native_id if writer is not None else None
    writer_cpu: float | None = None
    rss_mid: float | None = None
    events = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    steps = round(duration_s)
    for sec in range(1, steps + 1):
        session.pump(1.0)
        drained = session.drain_events()
        events += len(drained)
        if recorder is not None:
            for te in drained:
                recorder.add_dsp_event(te.event)
            writer_cpu = thread_cpu_s(tid) or writer_cpu
        if rss_after_s is not None and sec == round(rss_after_s):
            rss_mid = rss_mb()
        if sec % 600 == 0:
            log.info("%d s streamed (%.1f s wall)", sec, time.perf_counter() - t0)
    stream_wall = time.perf_counter() - t0
    summary = None
    if recorder is not None:
        writer_cpu = thread_cpu_s(tid) or writer_cpu
        summary = recorder.stop()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    rss_end = rss_mb()
    session.close()
    res: dict[str, Any] = {
        "duration_s": duration_s,
        "samples": session.stats.samples,
        "session_lost_samples": session.stats.lost_samples,
        "events": events,
        "stream_wall_s": stream_wall,
        "wall_s": wall,
        "realtime_factor": duration_s / wall,
        "process_cpu_s": cpu,
    }
    if recorder is not None and summary is not None:
        res.update(
            writer_cpu_s=writer_cpu,
            writer_cpu_s_per_hour=None if writer_cpu is None else writer_cpu * 3600 / duration_s,
            stop_s=wall - stream_wall,
            recorder={
                "state": summary.state,
                "samples": summary.samples,
                "received": summary.received,
                "lost_samples": summary.lost_samples,
                "gaps": summary.gaps,
                "duplicates": summary.duplicates,
                "clipped": summary.clipped,
                "annotations": summary.annotations,
                "error": summary.error,
            },
        )
    if rss_after_s is not None:
        res.update(
            rss_after_s=rss_after_s,
            rss_mid_mb=rss_mid,
            rss_end_mb=rss_end,
            rss_growth_mb=None if rss_mid is None else rss_end - rss_mid,
            peak_rss_mb=peak_rss_mb(),
        )
    return res


def verify(path: Path, duration_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    rec = read_fireorder_bdf(path)
    read_s = time.perf_counter() - t0
    n = rec.data.shape[0]
    counter = rec.data[:, rec.channel_names.index("counter")]
    expected = np.arange(n, dtype=np.float64)
    diffs = np.diff(counter)
    res = {
        "read_s": read_s,
        "samples": n,
        "expected_samples": round(duration_s * FS),
        "channels": list(rec.channel_names),
        "annotations": len(rec.annotations),
        "counter_exact": bool(np.array_equal(counter, expected)),
        "lost": int(np.sum(np.clip(diffs - 1, 0, None))) + max(0, round(duration_s * FS) - n),
        "duplicated": int(np.sum(diffs <= 0)),
        "nan_rows": int((~np.isfinite(rec.data).all(axis=1)).sum()),
    }
    res["pass"] = res["counter_exact"] and n == res["expected_samples"] and not res["nan_rows"]
    return res


# ------------------------------------------------------------------------------ seek


def open_session(path: Path) -> tuple[LiveSession, float]:
    session = LiveSession(FileSource(str(path), speed=None))
    t0 = time.perf_counter()
    session.open()
    return session, time.perf_counter() - t0


def bench_seek(path: Path, config: Config) -> dict[str, Any]:
    session, open_s = open_session(path)
    device = session.device
    assert isinstance(device, FileSource)
    n = device.n_samples
    rng = np.random.default_rng(config.seed)
    lo = round(max(PREROLLS) * FS)
    hi = max(lo + 1, n - round(FS))
    targets = [int(x) for x in rng.integers(lo, hi, size=config.seeks)]
    session.start(threaded=False)
    device.pause()
    by_preroll: dict[str, Any] = {}
    for preroll in PREROLLS:
        times = []
        for target in targets:
            t0 = time.perf_counter()
            session.seek(target, preroll_s=preroll)
            snap = session.snapshot(config.snapshot_s, max_points=config.max_points)
            times.append(time.perf_counter() - t0)
            last = round(snap.t[-1] * FS) if snap.t.size else -1
            if not target - 100 <= last < target:  # the frame must end at the target
                log.warning("seek to %d: snapshot ends at %d", target, last)
        s = stats_ms(times)
        by_preroll[f"{preroll:g}"] = {"preroll_s": preroll, **s}
        log.info(
            "pre-roll %g s: median %.0f ms, p95 %.0f ms, max %.0f ms",
            preroll,
            s["median_ms"],
            s["p95_ms"],
            s["max_ms"],
        )
        if s["pass"]:
            break
    session.close()
    meets = [float(v["preroll_s"]) for v in by_preroll.values() if v["pass"]]
    return {
        "open_s": open_s,
        "n_samples": n,
        "targets": targets,
        "by_preroll": by_preroll,
        "preroll_meeting_target_s": max(meets) if meets else None,
    }


# ------------------------------------------------------------------------------ CPU cost


def cpu_cost(folder: Path, config: Config) -> dict[str, Any]:
    """Process CPU of the same stream with and without a recorder, alternating pairs."""
    without: list[float] = []
    with_rec: list[float] = []
    writer: list[float] = []
    for k in range(config.pairs):
        log.info("paired run %d: %g s without / with recorder", k + 1, config.paired_s)
        without.append(stream(config.paired_s, None)["process_cpu_s"])
        path = recording_path(folder, SessionMeta(session=f"paired{k}"))
        r = stream(config.paired_s, path)
        with_rec.append(r["process_cpu_s"])
        if r.get("writer_cpu_s") is not None:
            writer.append(r["writer_cpu_s"])
        path.unlink(missing_ok=True)
    extra = [w - o for w, o in zip(with_rec, without, strict=True)]
    med = float(np.median(extra))
    return {
        "seconds": config.paired_s,
        "pairs": config.pairs,
        "without_cpu_s": without,
        "with_cpu_s": with_rec,
        "extra_cpu_s": extra,
        "extra_cpu_s_per_hour": med * 3600 / config.paired_s,
        "writer_cpu_s_per_hour": float(np.median(writer)) * 3600 / config.paired_s
        if writer
        else None,
        "percent_of_one_core_live": 100 * med / config.paired_s,
    }


# ------------------------------------------------------------------------------ run


def run(config: Config, keep: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {
        "machine": common.machine(),
        "code": common.code_version(),
        "config": {
            "duration_s": config.duration_s,
            "channels": len(CHANNELS),
            "fs": FS,
            "rss_after_s": config.rss_after_s,
            "paired_s": config.paired_s,
            "seeks": config.seeks,
            "seed": config.seed,
        },
    }
    free = shutil.disk_usage(common.REPO_ROOT).free
    res["disk_free_gb"] = free / 1e9
    if free < MIN_FREE_BYTES:
        msg = f"skipped: only {free / 1e9:.2f} GB free on the repo's disk (need >= 1 GB)"
        log.error("%s", msg)
        res["skipped"] = msg
        return res
    folder = scratch_dir()
    log.info("scratch folder %s", folder)
    try:
        path = recording_path(folder, SessionMeta(session="bench"))
        log.info("recording %g s of 8 ch + counter @ %g Hz", config.duration_s, FS)
        rec = stream(config.duration_s, path, config.rss_after_s)
        rec["file_mb"] = path.stat().st_size / 1e6
        rec["path"] = str(path)
        res["record"] = rec
        log.info(
            "recorded in %.1f s (%.0fx real time), %.1f MB, RSS growth %.1f MB",
            rec["wall_s"],
            rec["realtime_factor"],
            rec["file_mb"],
            rec["rss_growth_mb"],
        )
        res["verify"] = verify(path, config.duration_s)
        log.info("verify: %s", {k: v for k, v in res["verify"].items() if k != "channels"})
        res["seek"] = bench_seek(path, config)

        res["cpu_cost"] = cpu_cost(folder, config)
    finally:
        if keep:
            log.info("kept %s", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("deleted %s", folder)
    res["kept"] = str(folder) if keep else None
    return res


# ------------------------------------------------------------------------------ report


def _mark(ok: bool, target: str) -> str:
    return "✓" if ok else f"✗ (target {target})"


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    cfg = res["config"]
    lines = ["## Recording", ""]
    if res.get("skipped"):
        return "\n".join([*lines, res["skipped"]])
    rec, ver, seek, cost = res["record"], res["verify"], res["seek"], res["cpu_cost"]
    lines += [
        f"CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs); Python {m['python']}, numpy "
        f"{m['numpy']}; fireorder at {common.code_version_text(res.get('code', {}))}. "
        f"`LiveSession` on the simulator (preset clean, {cfg['channels']} EMG channels + "
        f"sample counter @ {cfg['fs']:g} Hz, not paced) recording to BDF+ "
        f"({rec['duration_s']:g} s), then replayed with `FileSource(speed=None)`.",
        "",
    ]
    growth = rec["rss_growth_mb"]
    lost = ver["lost"] + rec["recorder"]["lost_samples"]
    fmt = common.fmt
    rows = [
        [
            "samples lost / duplicated (counter channel read back)",
            f"{lost} / {ver['duplicated']} of {ver['samples']:,} "
            + _mark(ver["pass"] and lost == 0, "0"),
        ],
        [
            f"memory growth (RSS at {rec['rss_after_s']:g} s → end)",
            f"{fmt(growth)} MB ({fmt(rec['rss_mid_mb'], 0)} → {fmt(rec['rss_end_mb'], 0)} MB) "
            + _mark(growth is not None and growth <= TARGET_GROWTH_MB, "≤ 20 MB"),
        ],
        [
            "recording wall time (× real time)",
            f"{rec['wall_s']:.1f} s ({rec['realtime_factor']:.0f}×)",
        ],
        ["file size", f"{rec['file_mb']:.1f} MB, {rec['recorder']['annotations']} annotations"],
        [
            "recorder writer-thread CPU",
            f"{fmt(rec.get('writer_cpu_s_per_hour'), 2)} s per recorded hour",
        ],
        [
            f"recording CPU cost (median of {cost['pairs']} paired {cost['seconds']:g} s "
            "runs, process CPU with − without)",
            f"{cost['extra_cpu_s_per_hour']:.1f} s per recorded hour "
            f"({cost['percent_of_one_core_live']:.2f} % of one core live)",
        ],
        [
            "first open (`FileSource.open`, read + decode)",
            f"{seek['open_s'] * 1e3:.0f} ms "
            f"(`read_fireorder_bdf` alone {ver['read_s'] * 1e3:.0f} ms)",
        ],
    ]
    for key, s in seek["by_preroll"].items():
        rows.append(
            [
                f"seek → first frame, {key} s pre-roll ({s['n']} random seeks), median / p95 / max",
                f"{s['median_ms']:.0f} / {s['p95_ms']:.0f} / {s['max_ms']:.0f} ms "
                + _mark(s["pass"], "p95 ≤ 200 ms"),
            ]
        )
    lines.append(common.md_table(["measure", "result"], rows))
    meets = seek["preroll_meeting_target_s"]
    lines += [
        "",
        "Seek: `session.seek(target)` then `session.snapshot(10, max_points=2000)`, timed "
        "from the seek call to the snapshot returned; the pre-roll re-runs the causal "
        "pipeline from that far before the target. "
        + (
            f"The p95 target is met with {meets:g} s of pre-roll."
            if meets is not None
            else "No measured pre-roll meets the p95 target."
        ),
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fireorder recording benchmark")
    parser.add_argument("--quick", action="store_true", help="small smoke run (120 s session)")
    parser.add_argument("--keep", action="store_true", help="keep the recording afterwards")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    common.setup_logging(args.verbose)
    config = Config.quick() if args.quick else Config()
    t0 = time.perf_counter()
    res = run(config, keep=args.keep)
    res["seconds"] = time.perf_counter() - t0
    out = common.out_dir(args.quick)
    common.write_json(out / "recording.json", res)
    text = markdown(res)
    common.write_text(out / "recording.md", text + "\n")
    print(text)
    return res


if __name__ == "__main__":
    main()
