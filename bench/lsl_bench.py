"""LSL end to end: ``python -m bench.lsl_bench [--quick] [--seconds S]``.

A child process is the amplifier: an LSL outlet (loopback-only liblsl config) pushing 2 kHz x
16 channels of simulated sEMG (float32, µV) in real time, in chunks of 10-20 samples, each
stamped with ``pylsl.local_clock()`` at its push (liblsl dates the chunk's earlier samples
back at the nominal rate). Its last channel carries a sample counter (mod 100000) and it logs
every push (first sample, count, push time). This process runs the LSL source through the real
session (``SessionController.run``, the CLI's path: DSP pipeline, rep detection) and measures:

* sample loss: samples pushed vs delivered, and every delivered sample's counter against its
  stream index (a misplaced or repeated sample counts as lost);
* added latency: host time when the session receives the chunk holding a push's last sample,
  minus that push's time (``time.monotonic`` == ``local_clock``; one machine, one clock):
  median, p95, max;
* push -> verdict: per rep, the time its verdict reached the session's consumer (``on_rep``)
  minus the push time of the sample it was decided at (``RepResult.decided_at``);
* CPU of the consumer process (user + system, % of one core, liblsl's threads included).

Default 600 s (the issue's 10 minutes), ``--quick`` 30 s. Results: ``bench/out/lsl.json`` and
``lsl.md`` (``bench/out/quick/`` with --quick).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

log = logging.getLogger(__name__)

FS = 2000.0
N_CH = 16
COUNTER_MOD = 100_000  # exact in float32 (< 2**24)
TARGET_P95_MS = 30.0
LOOPBACK_CFG = common.REPO_ROOT.parent / "shared" / "lsl" / "lsl_loopback.cfg"


def labels() -> list[str]:
    names = [*common.CHANNELS_8, *(f"aux{i + 1}" for i in range(N_CH - 9))]
    return [*names, "counter"]


# --------------------------------------------------------------------------------------
# the outlet (child process)
# --------------------------------------------------------------------------------------


def outlet_main(name: str, seconds: float, log_path: str, seed: int = 7) -> None:
    import pylsl

    from devices.simulation.model import preset, simulate

    rec = simulate(preset("clean", seed=seed, fs=FS, channels=tuple(labels()[:-1])), 60.0)
    loop = np.zeros((rec.data.shape[0], N_CH), dtype=np.float32)  # 60 s, replayed round
    loop[:, :-1] = rec.data
    info = pylsl.StreamInfo(name, "EMG", N_CH, FS, "float32", f"{name}-sid")
    chans = info.desc().append_child("channels")
    for label in labels():
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "uV")
    outlet = pylsl.StreamOutlet(info, 20)
    if not outlet.wait_for_consumers(30.0):
        raise SystemExit("no consumer connected within 30 s")
    time.sleep(0.5)  # the consumer flushes its inlet when it starts: push after that
    rng = np.random.default_rng(seed)
    total = round(seconds * FS)
    pushes = np.zeros((total // 10 + 2, 3))
    n_push, k = 0, 0
    t0 = pylsl.local_clock()
    while k < total:
        due = min(total, int((pylsl.local_clock() - t0) * FS))
        while due - k >= 10 or (due == total and k < total):
            n = min(int(rng.integers(10, 21)), due - k)
            rows = np.arange(k, k + n)
            x = loop[rows % loop.shape[0]].copy()
            x[:, -1] = rows % COUNTER_MOD
            t = pylsl.local_clock()
            outlet.push_chunk(x, t)
            pushes[n_push] = (k, n, t)
            n_push += 1
            k += n
        time.sleep(0.002)
    np.save(log_path, pushes[:n_push])
    time.sleep(1.0)  # the consumer drains before the outlet goes


# --------------------------------------------------------------------------------------
# the consumer (this process)
# --------------------------------------------------------------------------------------


def measure(seconds: float) -> dict[str, Any]:
    from devices.drivers.lsl_source import LslSource
    from devices.session.controller import SessionController

    class Timed(LslSource):
        """Notes when each chunk reaches the session, and its counters."""

        def read(self) -> Any:
            chunk = super().read()
            if chunk is not None:
                arrivals.append((chunk.start, chunk.n_samples, time.monotonic()))
                counters.append(chunk.data[:, -1].copy())
            return chunk

    arrivals: list[tuple[int, int, float]] = []
    counters: list[np.ndarray] = []
    verdicts: list[tuple[int, int, float]] = []  # (rep, decided_at, time)
    name = f"fireorder-bench-{os.getpid()}"
    roles = {r: r for r in ("glute_l", "glute_r", "lumbar_l", "lumbar_r")}
    with tempfile.TemporaryDirectory() as tmp:
        log_path = str(Path(tmp) / "pushes.npy")
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.lsl_bench", "--outlet", name, str(seconds + 2), log_path],
            cwd=common.REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(common.REPO_ROOT)},
        )
        try:
            dev = Timed(name, roles=roles, timeout_s=20.0)
            ctl = SessionController(dev)
            ctl.on_rep = lambda rep: verdicts.append((rep.index, rep.decided_at, time.monotonic()))
            ctl.open()

            def watch() -> None:  # an outlet that dies ends the run (a live source never does)
                while child.poll() is None and not done.is_set():
                    time.sleep(0.2)
                if not done.is_set():
                    log.error("the outlet process ended early (exit %s)", child.returncode)
                    ctl.stop()

            done = threading.Event()
            threading.Thread(target=watch, daemon=True).start()
            ru0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            ctl.run(seconds)
            done.set()
            ru1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            stats, dev_counters = ctl.stats, dev.counters
            ctl.close()
            child.wait(timeout=60)
            pushes = np.load(log_path)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    starts = np.array([a[0] for a in arrivals])
    ends = starts + np.array([a[1] for a in arrivals])
    t_recv = np.array([a[2] for a in arrivals])
    got = np.concatenate(counters) if counters else np.zeros(0)
    index = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
    misplaced = int(np.count_nonzero(got != index % COUNTER_MOD))
    delivered = int(got.size)
    wanted = round(seconds * FS)
    pushed = int(pushes[:, 1].sum())
    # the pushes the run covered: each push's last sample -> the chunk that delivered it
    last = (pushes[:, 0] + pushes[:, 1] - 1).astype(np.int64)
    covered = last < ends[-1] if ends.size else np.zeros(0, bool)
    at = np.searchsorted(ends, last[covered], side="right")
    latency_ms = (t_recv[at] - pushes[covered, 2]) * 1000.0
    since = pushes[covered, 2] - pushes[0, 2] if len(pushes) else np.zeros(0)
    windows = [
        {"from_s": a, **_summary(latency_ms[(since >= a) & (since < a + 10)])}
        for a in range(0, int(seconds), 10)
    ]
    verdict_ms = []
    for _, decided, t in verdicts:
        p = int(np.searchsorted(pushes[:, 0], decided, side="right")) - 1
        if 0 <= p < len(pushes):
            verdict_ms.append((t - pushes[p, 2]) * 1000.0)
    v = np.array(verdict_ms)
    return {
        "seconds": seconds,
        "fs": FS,
        "channels": N_CH,
        "wanted_samples": wanted,
        "pushed_samples": pushed,
        "delivered_samples": delivered,
        "lost_samples": max(0, min(wanted, pushed) - delivered) + misplaced,
        "misplaced_samples": misplaced,
        "session_gaps": stats.gaps,
        "session_lost": stats.lost_samples,
        "driver": dev_counters,
        "chunks": len(arrivals),
        "latency_ms": _summary(latency_ms),
        "latency_ms_per_10s": windows,
        "verdicts": len(verdicts),
        "push_to_verdict_ms": _summary(v),
        "cpu_pct": 100.0 * cpu_s / max(w1 - w0, 1e-9),
    }


def _summary(x: np.ndarray) -> dict[str, float | None]:
    if x.size == 0:
        return {"median": None, "p95": None, "max": None, "n": 0}
    return {
        "median": float(np.median(x)),
        "p95": float(np.percentile(x, 95)),
        "max": float(np.max(x)),
        "n": int(x.size),
    }


def markdown(res: dict[str, Any]) -> str:
    m, lat, ver = res["machine"], res["latency_ms"], res["push_to_verdict_ms"]
    ok = lat["p95"] is not None and lat["p95"] <= TARGET_P95_MS
    rows = [
        ["samples lost", f"{res['lost_samples']} of {res['wanted_samples']} "
         f"({res['session_gaps']} gaps) {'✓' if res['lost_samples'] == 0 else '✗'} (goal 0)"],
        ["added latency, push → session (median / p95 / max)",
         f"{common.fmt(lat['median'])} / {common.fmt(lat['p95'])} / {common.fmt(lat['max'])} ms "
         f"{'✓' if ok else '✗'} (goal p95 ≤ {TARGET_P95_MS:g} ms)"],
        [f"push → verdict, {res['verdicts']} reps (median / p95 / max)",
         f"{common.fmt(ver['median'])} / {common.fmt(ver['p95'])} / {common.fmt(ver['max'])} ms"],
        ["consumer CPU (one core)", f"{res['cpu_pct']:.1f} %"],
    ]  # fmt: skip
    return "\n".join(
        [
            "## LSL in, end to end",
            "",
            f"CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs); pylsl {res.get('pylsl')}; "
            f"fireorder at {common.code_version_text(res.get('code', {}))}. An outlet in a child "
            f"process pushes {res['fs'] / 1000:g} kHz × {res['channels']} ch float32 in real "
            f"time for {res['seconds']:g} s, 10-20 samples per push stamped at the push; "
            "`SessionController.run` on the LSL source (loopback liblsl config). Verdict time: "
            "the rep's `on_rep` minus the push time of its `decided_at` sample.",
            "",
            common.md_table(["measure", "result"], rows),
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="LSL in, end to end")
    p.add_argument("--quick", action="store_true", help="30 s instead of 600 s")
    p.add_argument("--seconds", type=float, help="stream this long (overrides --quick)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--outlet", nargs=3, metavar=("NAME", "SECONDS", "LOG"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    # network safety: liblsl reads its config once, when pylsl is first imported
    if LOOPBACK_CFG.is_file():
        os.environ.setdefault("LSLAPICFG", str(LOOPBACK_CFG))
    if os.environ.get("LSLAPICFG") != str(LOOPBACK_CFG):
        raise SystemExit(f"the LSL benchmark runs only on the loopback config {LOOPBACK_CFG}")
    args = parse_args(argv)
    if args.outlet:
        name, secs, path = args.outlet
        outlet_main(name, float(secs), path)
        return {}
    common.setup_logging(args.verbose)
    seconds = args.seconds or (30.0 if args.quick else 600.0)
    res = measure(seconds)
    res["machine"] = common.machine()
    res["code"] = common.code_version()
    res["pylsl"] = common.package_version("pylsl")
    out_dir = common.out_dir(args.quick)
    common.write_json(out_dir / "lsl.json", res)
    text = markdown(res)
    common.write_text(out_dir / "lsl.md", text + "\n")
    print(text)
    return res


if __name__ == "__main__":
    main()
