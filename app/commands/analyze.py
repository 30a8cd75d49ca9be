"""``fireorder analyze FILE``: firing order per rep from a recorded file."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.commands.common import (
    add_dsp_arguments,
    dsp_settings_from_args,
    load_mapped,
    sampling_rate,
    source_of,
)
from dsp.reps import ORDERS, glute_first_pct


def register(sub: Any) -> None:
    p = sub.add_parser(
        "analyze",
        help="firing order per rep from a file (CSV, EDF/BDF, BITalino/OpenSignals)",
        description="Run the live pipeline over a recorded file and report each rep.",
    )
    p.add_argument("file", help="CSV, EDF/EDF+/BDF/BDF+ or BITalino/OpenSignals text file")
    p.add_argument(
        "--channels",
        help="role=COLUMN mapping, e.g. glute_l=EXG1-EXG2,lumbar_l=EXG3-EXG4 (A-B = bipolar)",
    )
    p.add_argument(
        "--fs", type=sampling_rate, help="sampling rate in Hz (CSV without a time column)"
    )
    p.add_argument("--units", choices=["uV", "mV", "V"], help="units of CSV values (default uV)")
    p.add_argument("--board", help="BrainFlow CSV files: the board that wrote it, e.g. CYTON_BOARD")
    p.add_argument("--stream", help="XDF files: the name of the EMG stream")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    add_dsp_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dsp.analysis import analyze

    settings = dsp_settings_from_args(args)
    rec, data, info = load_mapped(
        args.file, args.channels, args.fs, args.units, board=args.board, stream=args.stream
    )
    result = analyze(data, info, settings)
    source = source_of(rec, args.file)
    doc = result.to_dict(source)
    if args.json:
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(doc))
    return 0


def _fmt(v: float | None, unit: str = "") -> str:
    return "—" if v is None else f"{v:.0f}{unit}" if unit == " ms" else f"{v:.3f}{unit}"


def format_table(doc: dict[str, Any]) -> str:
    src = doc["source"]
    roles = list(doc["roles"])
    lines = [
        f"{src['path']}  ({src['format']}, {src['fs']:g} Hz, {src['duration_s']:.1f} s)",
        "roles: " + ", ".join(f"{r}={c}" for r, c in doc["roles"].items()),
        f"exercise: {doc['exercise']}",
        "",
    ]
    head = ["rep", "start s"] + [f"{r} s" for r in roles] + ["lag ms", "verdict", "left", "right"]
    rows = [head]
    for rep in doc["reps"]:
        rows.append(
            [str(rep["index"] + 1), _fmt(rep["start_s"])]
            + [_fmt(rep["onsets"].get(r)) for r in roles]
            + [
                _fmt(rep["lag_ms"], " ms").replace(" ms", ""),
                rep["order"].replace("_", " "),
                rep["left"]["order"].replace("_", " ") if rep["left"] else "",
                rep["right"]["order"].replace("_", " ") if rep["right"] else "",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    s = doc["summary"]
    pct = glute_first_pct({o: s[o] for o in ORDERS})
    lines += [
        "",
        f"reps {s['reps']}: glute first {s['glute_first']} "
        f"({'—' if pct is None else f'{pct:.0f}%'} of reps with a verdict), "
        f"simultaneous {s['simultaneous']}, lumbar first {s['lumbar_first']}, "
        f"undetermined {s['undetermined']}; median lag "
        + ("—" if s["median_lag_ms"] is None else f"{s['median_lag_ms']:.0f} ms"),
    ]
    gaps = doc.get("gaps") or []
    if gaps:
        lost = sum(int(g.get("samples", 0)) for g in gaps)
        lines.append(f"gaps: {len(gaps)} ({lost} samples missing; reps they touch undetermined)")
    bad = [
        f"{r}: {q.get('status')} ({', '.join(q.get('issues', []))})"
        for r, q in doc["quality"].items()
        if q and q.get("status") != "ok"
    ]
    if bad:
        lines.append("signal quality: " + "; ".join(bad))
    return "\n".join(lines) + "\n"
