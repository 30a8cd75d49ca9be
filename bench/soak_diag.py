"""What grows in a long session: tracemalloc snapshots diffed between two simulated times.

Diagnostic only (not part of ``make bench``'s figures): the same objects ``fireorder live``
(or ``record``, with ``--record``) runs — a :class:`SessionController` on the simulator, not
paced — with tracemalloc on, a snapshot at ``--first`` and ``--second`` simulated minutes,
and the allocation sites whose retained memory grew most in between, grouped by traceback.
Tracing (from half the first snapshot's time on) slows the session down about 25-fold.

Run ``python -m bench.soak_diag [--first 10] [--second 60] [--record] [--top 25]``.
"""

from __future__ import annotations

import argparse
import gc
import linecache
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import common
from devices.drivers.simulator import SimulatorDevice
from devices.session.controller import SessionController
from devices.session.states import MarkKind
from dsp.settings import DspSettings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="tracemalloc diff of a long simulated session")
    p.add_argument("--first", type=float, default=10.0, help="first snapshot, simulated min")
    p.add_argument("--second", type=float, default=60.0, help="second snapshot, simulated min")
    p.add_argument(
        "--trace-from",
        type=float,
        help="start tracing here, simulated min (default: half the first snapshot's time)",
    )
    p.add_argument("--record", action="store_true", help="also record to a temp BDF")
    p.add_argument("--top", type=int, default=25, help="how many growing sites to show")
    p.add_argument("--frames", type=int, default=6, help="traceback depth kept per allocation")
    p.add_argument("--seed", type=int, default=5)
    return p.parse_args(argv)


def _where(tb: tracemalloc.Traceback) -> str:
    lines = []
    for fr in tb:  # oldest call last in format(); show the innermost project frames first
        name = fr.filename
        short = name.split("/wt_soak/")[-1].split("site-packages/")[-1]
        code = linecache.getline(name, fr.lineno).strip()
        lines.append(f"    {short}:{fr.lineno}  {code[:90]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    common.setup_logging(False)
    duration = args.second * 60 + 1
    dev = SimulatorDevice(realtime=False, preset="clean", seed=args.seed, duration_s=duration)
    ctl = SessionController(dev, DspSettings(), device_marks=MarkKind.TRUTH)
    info = ctl.open()
    folder: Path | None = None
    snaps: dict[float, tracemalloc.Snapshot] = {}
    wanted = [args.first, args.second]
    trace_from = args.first / 2 if args.trace_from is None else min(args.trace_from, args.first)
    t0 = time.perf_counter()

    def maybe_snapshot(_ev: object = None) -> None:
        minutes = ctl.position / info.fs / 60
        if minutes >= trace_from and not tracemalloc.is_tracing():
            # Growth is what is allocated after the first snapshot and still held at the
            # second, so tracing need not start earlier (it slows the session 25-fold). Not
            # at the first snapshot itself: a bounded structure whose items were allocated
            # untraced would look like growth as they turn over; from half-way, its items
            # are traced at both snapshots and cancel.
            tracemalloc.start(args.frames)
        if wanted and minutes >= wanted[0]:
            gc.collect()
            snaps[wanted.pop(0)] = tracemalloc.take_snapshot()
            print(
                f"snapshot at {minutes:.1f} simulated min ({time.perf_counter() - t0:.0f} s wall),"
                f" traced {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB",
                flush=True,
            )
            if not wanted:
                ctl.session.stop()

    ctl.on_rep = maybe_snapshot
    ctl.on_mark = lambda _m: None  # the CLI observes truth marks too
    try:
        if args.record:
            folder = Path(tempfile.mkdtemp(prefix="fireorder-soakdiag-"))
            ctl.start_recording(folder / "soak.bdf")
        ctl.run(duration, until_exhausted=True)
    finally:
        ctl.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    tracemalloc.stop()
    if len(snaps) < 2:
        raise SystemExit("the session ended before the second snapshot")
    a, b = snaps[args.first], snaps[args.second]
    filt = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<*>")]
    diff = b.filter_traces(filt).compare_to(a.filter_traces(filt), "traceback")
    total = sum(d.size_diff for d in diff)
    minutes = args.second - args.first
    print(
        f"\nretained growth {args.first:g} -> {args.second:g} simulated min: "
        f"{total / 1e6:+.2f} MB ({total / 1e6 * 60 / minutes:+.2f} MB per hour), "
        f"{len(ctl.tally.reps)} reps in the tally\n"
    )
    rows = []
    for d in diff[: args.top]:
        if d.size_diff <= 0:
            break
        print(f"{d.size_diff / 1e3:+9.1f} kB  {d.count_diff:+7d} blocks\n{_where(d.traceback)}")
        rows.append({"kb": d.size_diff / 1e3, "blocks": d.count_diff, "at": str(d.traceback)})
    return {"growth_mb": total / 1e6, "minutes": minutes, "top": rows}


if __name__ == "__main__":
    main()
