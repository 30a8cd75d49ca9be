"""``fireorder analyze FILE``: firing order per rep from a recorded file."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from app.commands.common import (
    add_dsp_arguments,
    load_mapped,
    recorded_schedule,
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
    add_dsp_arguments(p, recorded=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dsp.analysis import analyze

    with _ReaderWarnings() as read_warnings:
        # (recorded settings it cannot use are a warning of the result too)
        schedule = recorded_schedule(args, args.file)
        rec, data, info = load_mapped(
            args.file, args.channels, args.fs, args.units, board=args.board, stream=args.stream
        )
    result = analyze(data, info, schedule.start, changes=schedule.changes)
    source = source_of(rec, args.file)
    doc = result.to_dict(source)
    # What the reader warned of (a truncated file, a recording never closed, a unit taken on
    # trust) is part of the result: a script reading --json never sees stderr.
    doc["source"]["warnings"] = read_warnings.messages
    if args.json:
        import json  # only here: the table needs none of it

        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(doc))
    return 0


class _ReaderWarnings(logging.Handler):
    """Collects the warnings logged while a file is read (they still go to stderr too)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))

    def __enter__(self) -> _ReaderWarnings:
        logging.getLogger("devices").addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger("devices").removeHandler(self)


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
    said = settings_line(doc)
    if said:
        lines.append(said)
    lines.append(quality_line(doc.get("quality") or {}))
    return "\n".join(lines) + "\n"


def settings_line(doc: dict[str, Any]) -> str:
    """Which settings judged the file, where they are not the defaults (a recording's own,
    or the options given; "" for the defaults): a verdict read without them may not be
    reproduced."""
    from dsp.settings import DspSettings

    used = doc.get("settings") or {}
    default = DspSettings().to_dict()
    differ = [
        f"{k}={used[k]:g}" if isinstance(used[k], float) else f"{k}={used[k]}"
        for k in default
        if k in used and used[k] != default[k]
    ]
    changes = doc.get("settings_changes") or []
    if not differ and not changes:
        return ""  # (the defaults: nothing to say)
    text = "settings: " + (", ".join(differ) if differ else "the defaults")
    if changes:
        at = ", ".join(f"{c['start_s']:.1f} s" for c in changes)
        text += f"; changed during the recording at {at}"
    return text


def quality_line(quality: dict[str, Any]) -> str:
    """One line on the signal quality of the mapped channels, with the figures behind it.

    "good" is said only with the measured rest noise floor next to it; an issue names what is
    wrong and the figure that made it an issue (in µV where it has a unit).
    """
    from dsp.quality import ISSUE_LABELS

    measured = {r: q for r, q in quality.items() if q}
    if not measured:
        return "signal quality: not measured (recording too short)"
    problems = []
    for role, q in measured.items():
        if q.get("status") == "ok":
            continue
        parts = [_issue_figure(code, q, ISSUE_LABELS) for code in q.get("issues", [])]
        problems.append(f"{role} {q.get('status')}: {', '.join(parts)}")
    floors = [q["noise_rms_uv"] for q in measured.values() if q.get("noise_rms_uv") is not None]
    floor = f"{min(floors):.1f}-{max(floors):.1f} µV RMS" if floors else "not measured"
    if not problems:
        return f"signal quality: good on all {len(measured)} channels (rest noise floor {floor})"
    return "signal quality: " + "; ".join(problems)


def _issue_figure(code: str, q: dict[str, Any], labels: dict[str, str]) -> str:
    label = labels.get(code, code)
    if code == "noisy" and q.get("noise_rms_uv") is not None:
        return f"{label}, rest noise floor {q['noise_rms_uv']:.1f} µV RMS"
    if code == "hum" and q.get("hum_db") is not None:
        rms = q.get("hum_rms_uv")
        rms_txt = f"{rms:.1f} µV RMS, " if rms is not None else ""
        return f"{label} {q.get('hum_freq', 0):g} Hz, {rms_txt}{q['hum_db']:+.0f} dB over the floor"
    if code == "saturation" and q.get("saturation_fraction") is not None:
        return f"{label} {100 * q['saturation_fraction']:.2f} % of samples"
    if code == "flat" and q.get("flat_fraction") is not None:
        return f"{label} {100 * q['flat_fraction']:.0f} % of the time"
    if code == "ecg" and q.get("ecg_db") is not None:
        return f"{label} {q['ecg_db']:+.0f} dB over the rest EMG band"
    return label
