"""``fireorder live``: stream from a source and print one line per rep as it is decided."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.commands.common import add_dsp_arguments, dsp_settings_from_args
from app.commands.sources import add_source_arguments, open_source


def register(sub: Any) -> None:
    p = sub.add_parser(
        "live",
        help="stream from a source and print each rep's verdict as it is decided",
        description="Stream from a source through the live pipeline; Ctrl-C stops.",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds of data")
    add_source_arguments(p)
    p.add_argument("--jsonl", action="store_true", help="one JSON object per rep, then stats")
    add_dsp_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from devices.session.live import LiveSession
    from dsp.events import RepsRejudged
    from dsp.reps import GLUTE_FIRST, RepResult

    settings = dsp_settings_from_args(args)
    session = LiveSession(open_source(args), settings)
    info = session.open()
    counts = {"reps": 0, "glute_first": 0}
    out = sys.stdout
    if not args.jsonl:
        roles = ", ".join(f"{r.value}={info.channel_names[i]}" for r, i in info.roles.items())
        out.write(f"{info.source or 'source'}: {info.fs:g} Hz, {roles}; Ctrl-C stops\n")
        out.flush()

    orders: dict[int, tuple[int, str]] = {}  # rep index -> (start, verdict)

    def show(ev: RepResult) -> None:
        reps = len(orders)
        glute = sum(o == GLUTE_FIRST for _, o in orders.values())
        counts["reps"], counts["glute_first"] = reps, glute
        pct = 100.0 * glute / reps if reps else 0.0
        if args.jsonl:
            ci = {
                r.value: [round(a / info.fs, 4), round(b / info.fs, 4)]
                for r, (a, b) in ev.onset_ci.items()
            }
            doc = {
                "rep": ev.index + 1,
                "t_s": round(ev.start / info.fs, 4),
                "lag_ms": ev.lag_ms,
                "lag_ci_ms": None if ev.lag_ci_ms is None else list(ev.lag_ci_ms),
                "onset_ci_s": ci,
                "order": ev.order,
                "reason": ev.reason,
                "rejudged": ev.rejudged,
                "left": ev.left.to_dict() if ev.left else None,
                "right": ev.right.to_dict() if ev.right else None,
                "glute_first_pct": round(pct, 1),
            }
            out.write(json.dumps(doc) + "\n")
        else:
            lag = "   —   " if ev.lag_ms is None else f"{ev.lag_ms:+6.0f} ms"
            if ev.lag_ci_ms is not None:
                lag += f" ({ev.lag_ci_ms[0]:+.0f}…{ev.lag_ci_ms[1]:+.0f})"
            verdict = ev.order.replace("_", " ") + (" (re-judged)" if ev.rejudged else "")
            out.write(
                f"rep {ev.index + 1:3d}  {ev.start / info.fs:8.2f} s  lag {lag}  "
                f"{verdict:<13s} glute first {pct:3.0f}% ({glute}/{reps})\n"
            )

    def print_reps() -> None:
        for timed in session.drain_events():
            ev = timed.event
            if isinstance(ev, RepsRejudged):
                kept = {i: v for i, v in orders.items() if v[0] >= ev.upto}
                orders.clear()
                orders.update(kept)
                for rep in ev.reps:
                    orders[rep.index] = (rep.start, rep.order)
                    show(rep)
            elif isinstance(ev, RepResult):
                orders[ev.index] = (ev.start, ev.order)
                show(ev)
            out.flush()

    session.on_verdict = print_reps  # called on this thread: it runs the loop
    try:
        fast = args.fast or (args.source == "file" and args.speed == "fast")
        session.run(args.duration, until_exhausted=fast)
    except KeyboardInterrupt:
        pass
    finally:
        print_reps()
        session.close()
    stats = session.stats
    summary: dict[str, Any] = {
        "samples": stats.samples,
        "gaps": stats.gaps,
        "lost_samples": stats.lost_samples,
        "crc_errors": 0,
        "resyncs": 0,
        "reconnects": 0,
    }
    device_stats = getattr(session.device, "stats", None)
    if isinstance(device_stats, dict):  # what the driver counted on the wire
        summary.update({k: v for k, v in device_stats.items() if k not in ("samples",)})
        summary["gaps"] = stats.gaps
        summary["lost_samples"] = stats.lost_samples
    summary.update(reps=counts["reps"], glute_first=counts["glute_first"])
    if args.jsonl:
        out.write(json.dumps(summary) + "\n")
    else:
        out.write(
            f"{stats.samples} samples, {stats.gaps} gaps ({stats.lost_samples} lost), "
            f"{counts['reps']} reps, {counts['glute_first']} glute first\n"
        )
    return 0
