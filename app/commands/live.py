"""``fireorder live``: stream from a source and print one line per rep as it is decided."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli import CliError
from app.commands.common import add_dsp_arguments, dsp_settings_from_args, session_duration
from app.commands.lsl_options import add_lsl_arguments, attach_lsl, check_lsl_arguments
from app.commands.sources import add_source_arguments, open_source
from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS, UNDETERMINED


def register(sub: Any) -> None:
    p = sub.add_parser(
        "live",
        help="stream from a source and print each rep's verdict as it is decided",
        description="Stream from a source through the live pipeline; Ctrl-C stops.",
    )
    p.add_argument(
        "--duration", type=session_duration, help="stop after this many seconds of data"
    )
    add_source_arguments(p)
    p.add_argument(
        "--jsonl",
        action="store_true",
        help="one JSON object per rep as decided (final: false) and at its end (final: true), "
        "then stats",
    )
    add_dsp_arguments(p)
    add_lsl_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from devices.session.controller import SessionController
    from dsp.events import RepsRejudged
    from dsp.reps import RepEnded, RepResult

    settings = dsp_settings_from_args(args)
    check_lsl_arguments(args)
    from devices.session.states import MarkKind

    # The simulator's markers are its ground truth (not kept: hours of them); a device's are
    # triggers or user marks.
    kind = MarkKind.TRUTH if args.source == "simulator" else MarkKind.DEVICE
    ctl = SessionController(open_source(args), settings, device_marks=kind)
    info = ctl.open()
    out = sys.stdout
    if not args.jsonl:
        roles = ", ".join(f"{r.value}={info.channel_names[i]}" for r, i in info.roles.items())
        out.write(f"{info.source or 'source'}: {info.fs:g} Hz, {roles}; Ctrl-C stops\n")
        out.flush()

    def record(ev: RepResult, final: bool) -> dict[str, Any]:
        counts = ctl.tally.session  # the window's definition: undetermined reps left out
        pct = ctl.tally.percent(counts)
        ci = {
            r.value: [round(a / info.fs, 4), round(b / info.fs, 4)]
            for r, (a, b) in ev.onset_ci.items()
        }
        return {
            "rep": ev.index + 1,
            # the verdict as decided (false) or the rep's record at its end (true): a rep
            # decided lumbar-first while the glutes were at rest gets its lag only then
            "final": final,
            "t_s": round(ev.start / info.fs, 4),
            "end_s": None if ev.end is None else round(ev.end / info.fs, 4),
            "lag_ms": ev.lag_ms,
            "lag_below_ms": ev.lag_below_ms,
            "lag_ci_ms": None if ev.lag_ci_ms is None else list(ev.lag_ci_ms),
            "onset_ci_s": ci,
            "order": ev.order,
            "reason": ev.reason,
            "rejudged": ev.rejudged,
            "cued": ev.cued,
            "left": ev.left.to_dict() if ev.left else None,
            "right": ev.right.to_dict() if ev.right else None,
            "glute_first_pct": None if pct is None else round(pct, 1),
        }

    def line(ev: RepResult, note: str = "") -> None:
        counts = ctl.tally.session
        reps, glute = ctl.tally.count, counts[GLUTE_FIRST]
        pct = ctl.tally.percent(counts)
        if ev.lag_ms is not None:
            lag = f"{ev.lag_ms:+6.0f} ms"
        elif ev.lag_below_ms is not None:
            lag = f"< {ev.lag_below_ms:+.0f} ms"
        else:
            lag = "   —   "
        if ev.lag_ci_ms is not None:
            lag += f" ({ev.lag_ci_ms[0]:+.0f}…{ev.lag_ci_ms[1]:+.0f})"
        verdict = ev.order.replace("_", " ") + (" (re-judged)" if ev.rejudged else "")
        share = "  —" if pct is None else f"{pct:3.0f}%"
        out.write(
            f"rep {ev.index + 1:3d}  {ev.start / info.fs:8.2f} s  lag {lag}  "
            f"{verdict:<13s} glute first {share} ({glute}/{reps}){note}\n"
        )

    def show(ev: RepResult) -> None:
        if args.jsonl:
            out.write(json.dumps(record(ev, final=False)) + "\n")
        else:
            line(ev)
        out.flush()

    def ended(ev: RepEnded) -> None:
        if args.jsonl:
            out.write(json.dumps(record(ev.result, final=True)) + "\n")
        elif ev.result.cued is not None:
            cued = ev.result.cued.replace("_", " ")
            line(ev.result, f"  (revised at the rep's end; the cue said {cued})")
        elif ev.result.lag_below_ms is not None and ev.result.lag_ms is not None:
            line(ev.result, "  (lag measured at the rep's end)")
        else:
            return
        out.flush()

    def rejudged(ev: RepsRejudged) -> None:
        for rep in ev.reps:  # the rep's record again: final if the rep has ended
            if args.jsonl:
                out.write(json.dumps(record(rep, final=rep.end is not None)) + "\n")
            else:
                line(rep)
        out.flush()

    ctl.on_rep = show
    ctl.on_rep_final = ended
    ctl.on_rejudged = rejudged
    attach_lsl(args, ctl)
    fast = args.fast or (args.source == "file" and args.speed == "fast")
    try:
        ctl.run(args.duration, until_exhausted=fast)
    except KeyboardInterrupt:
        pass
    except Exception:
        if ctl.error is None:  # not a stream failure the session caught: a bug, show it
            raise
    finally:
        ctl.close()
    stats = ctl.stats
    counts = ctl.tally.session
    summary: dict[str, Any] = {
        "samples": stats.samples,
        "gaps": stats.gaps,
        "lost_samples": stats.lost_samples,
        "crc_errors": 0,
        "resyncs": 0,
        "reconnects": 0,
    }
    # what the driver counted on the wire; gaps and losses as the pipeline saw them
    summary.update({k: v for k, v in ctl.device.counters.items() if k != "samples"})
    summary.update(gaps=stats.gaps, lost_samples=stats.lost_samples)
    summary.update(
        reps=ctl.tally.count,
        glute_first=counts[GLUTE_FIRST],
        simultaneous=counts[SIMULTANEOUS],
        lumbar_first=counts[LUMBAR_FIRST],
        undetermined=counts[UNDETERMINED],
        glute_first_pct=_round(ctl.tally.percent(counts)),
    )
    if args.jsonl:
        out.write(json.dumps(summary) + "\n")
    else:
        out.write(
            f"{stats.samples} samples, {stats.gaps} gaps ({stats.lost_samples} lost), "
            f"{summary['reps']} rep{'' if summary['reps'] == 1 else 's'}, "
            f"{summary['glute_first']} glute first\n"
        )
    if ctl.error:
        raise CliError(f"source stopped: {ctl.error}")
    return 0


def _round(pct: float | None) -> float | None:
    return None if pct is None else round(pct, 1)
