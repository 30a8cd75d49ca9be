"""``fireorder report FILE --out report.html``: a session report a coach can hand over, with
the review of the file (corrections, notes) applied; ``fireorder report --athlete NAME --out
progress.html``: one athlete's progress over every recording in the recordings folder."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from app.cli import CliError
from app.commands.common import (
    add_dsp_arguments,
    atomic_outputs,
    check_writable,
    load_mapped,
    recorded_schedule,
    sampling_rate,
    source_of,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

LONG_FILE_S = 60.0  # a bar for shorter files would only flash
ANALYSIS_SHARE = 0.8  # of the bar: the analysis; the rest is the report's own filtering/plots


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="HTML session report (plots, rep table, signal quality) and optional CSV",
        description="Analyse a recorded file and write a self-contained HTML report "
        "(and the rep table as CSV), with the corrections and notes of its review. Without "
        "FILE, --athlete NAME writes that athlete's progress over every recording in the "
        "recordings folder (--folder).",
    )
    p.add_argument(
        "file",
        nargs="?",
        help="CSV, EDF/EDF+/BDF/BDF+ or BITalino/OpenSignals text file (omit with --athlete "
        "for a progress report)",
    )
    p.add_argument(
        "--folder",
        metavar="DIR",
        help="progress report: the recordings folder (default: the data folder's recordings)",
    )
    p.add_argument("--out", required=True, metavar="REPORT.html", help="HTML file to write")
    p.add_argument("--csv", metavar="REPS.csv", help="also write the rep table as CSV")
    p.add_argument(
        "--still",
        type=int,
        action="append",
        metavar="REP",
        help="embed the recording's video frame at rep REP's onset (1 = the first rep; "
        "repeat for more); the video is the one recorded or attached in review",
    )
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
    g = p.add_argument_group("report header")
    g.add_argument("--title", help="report title (default: Firing-order report — ATHLETE)")
    g.add_argument(
        "--athlete",
        help="athlete name or id (without FILE: the athlete of the progress report)",
    )
    g.add_argument("--session", help="session name, e.g. 'week 3, set 2'")
    g.add_argument("--date", help="session date (default: the recording's start, if known)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show a progress bar on stderr (default: for long files on a terminal)",
    )
    bar.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show progress"
    )
    add_dsp_arguments(p, recorded=True)
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------------
# Reading (the same steps as ``fireorder analyze``)


# ------------------------------------------------------------------------------------------
# Progress bar


class ProgressBar:
    """One stderr line redrawn with ``\\r``; a no-op when disabled."""

    def __init__(self, stream: TextIO, enabled: bool, width: int = 30) -> None:
        self.stream = stream
        self.enabled = enabled
        self.width = width
        self._label = ""
        self._last: tuple[str, int] | None = None
        self._t0 = time.monotonic()
        self._len = 0

    def stage(self, label: str, lo: float, hi: float) -> Callable[[float], None]:
        """A callback mapping 0..1 of one stage onto [lo, hi] of the bar."""

        def cb(f: float) -> None:
            self.update(lo + (hi - lo) * min(1.0, max(0.0, f)), label)

        return cb

    def update(self, fraction: float, label: str) -> None:
        if not self.enabled:
            return
        pct = int(100 * fraction)
        if (label, pct) == self._last:  # redraw only on change: analyze calls back per chunk
            return
        self._last = (label, pct)
        fill = round(self.width * fraction)
        line = (
            f"\r{label:<10} [{'#' * fill}{'.' * (self.width - fill)}] {pct:3d}%  "
            f"{time.monotonic() - self._t0:5.1f} s"
        )
        self._len = len(line) - 1
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        """Clear the line so what follows starts on a clean one."""
        if self.enabled and self._last is not None:
            self.stream.write("\r" + " " * self._len + "\r")
            self.stream.flush()


# ------------------------------------------------------------------------------------------


def run_progress(args: argparse.Namespace) -> int:
    """``fireorder report --athlete NAME [--folder DIR] --out progress.html``."""
    from app.report import write_progress_report
    from devices.files import locations
    from devices.session.progress import athletes, progress

    if not args.athlete:
        raise CliError("give a FILE to report on, or --athlete NAME for a progress report")
    if args.csv:
        raise CliError("--csv is for a FILE's rep table; a progress report is HTML only")
    if args.still:
        raise CliError("--still is for a FILE's report: a video frame of one of its reps")
    folder = Path(args.folder) if args.folder else locations.default_recordings_dir()
    if not folder.is_dir():
        raise CliError(f"--folder {folder}: not a folder")
    out = Path(args.out)
    check_writable(out, "--out")
    try:
        import matplotlib  # noqa: F401  (draws the plot; imported lazily by app.report)
    except ImportError as exc:
        raise CliError(f"the report needs matplotlib ({exc}); pip install matplotlib") from None
    # each recording is analysed with its own settings (as its session's feedback was)
    prog = progress(folder, args.athlete)
    if not prog.sessions:
        known = athletes(folder)
        raise CliError(
            f"no recordings of athlete {args.athlete!r} in {folder}; "
            + (f"athletes there: {', '.join(known)}" if known else "it has no fireorder recordings")
        )
    try:
        with atomic_outputs(out) as (html_tmp,):
            assert html_tmp is not None
            write_progress_report(prog, html_tmp, title=args.title)
    except OSError as exc:
        raise CliError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    reps = sum(s.reps for s in prog.sessions)
    sys.stdout.write(
        f"wrote {out}: {args.athlete}, {len(prog.sessions)} session(s) of "
        f"{', '.join(prog.exercises)}, {reps} reps\n"
    )
    return 0


def _stills(args: argparse.Namespace, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The video stills asked for with --still. A rep the file does not have is bad input
    (one error line); a missing or unreadable video is one warning line and the report is
    written without the still (the EMG report never depends on the video)."""
    if not args.still:
        return []
    from app.report import video_still

    reps = list(doc.get("reps") or [])
    out = []
    told: set[str] = set()
    for number in args.still:
        if not 1 <= number <= len(reps):
            raise CliError(
                f"--still {number}: the file has {len(reps)} rep(s)"
                + (f" (1..{len(reps)})" if reps else "")
            )
        still = video_still(args.file, reps[number - 1])
        if "error" in still and still["error"] not in told:  # one line per reason
            told.add(still["error"])
            sys.stderr.write(f"fireorder: warning: --still {number}: {still['error']}\n")
        out.append(still)
    return out


def run(args: argparse.Namespace) -> int:
    from app.report import rep_table_csv, write_report
    from devices.session.review_model import reviewed_document
    from dsp.analysis import analyze
    from dsp.reps import glute_first_pct

    if args.file is None:
        return run_progress(args)
    if args.folder:
        raise CliError("--folder is for a progress report (--athlete NAME without FILE)")
    schedule = recorded_schedule(args, args.file)
    out = Path(args.out)
    csv_path = Path(args.csv) if args.csv else None
    check_writable(out, "--out")
    if csv_path is not None:
        check_writable(csv_path, "--csv")
        if csv_path.resolve() == out.resolve():
            raise CliError("--out and --csv must be different files")
    try:
        import matplotlib  # noqa: F401  (draws the plots; imported lazily by app.report)
    except ImportError as exc:
        raise CliError(f"the report needs matplotlib ({exc}); pip install matplotlib") from None

    rec, data, info = load_mapped(
        args.file, args.channels, args.fs, args.units, board=args.board, stream=args.stream
    )
    show = args.progress
    if show is None:
        show = sys.stderr.isatty() and rec.duration_s >= LONG_FILE_S
    bar = ProgressBar(sys.stderr, bool(show))
    try:
        result = analyze(
            data,
            info,
            schedule.start,
            progress=bar.stage("analysing", 0, ANALYSIS_SHARE),
            changes=schedule.changes,
        )
        # the review of the file (its corrections and notes) and the notes it was recorded with
        doc = reviewed_document(
            result.to_dict(source_of(rec, args.file)), args.file, rec.annotations
        )
        from app.report import header_meta

        meta = header_meta(args.file, rec.start_time, args.athlete, args.session, args.date)
        stills = _stills(args, doc)
        try:
            with atomic_outputs(out, csv_path) as (html_tmp, csv_tmp):
                assert html_tmp is not None
                write_report(
                    doc,
                    data,
                    info,
                    html_tmp,
                    title=args.title,
                    meta=meta,
                    progress=bar.stage("report", ANALYSIS_SHARE, 1.0),
                    stills=stills,
                )
                if csv_tmp is not None:
                    rep_table_csv(doc, csv_tmp)
        except OSError as exc:
            raise CliError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    finally:
        bar.close()
    s = doc["summary"]
    pct = glute_first_pct(s)
    fixed = doc["review"]["corrected_reps"]
    sys.stdout.write(
        f"wrote {out}: {s['reps']} reps"
        + ("" if pct is None else f", glute first {pct:.0f} % of reps with a verdict")
        + (f", {fixed} corrected in review" if fixed else "")
        + (f"; rep table in {csv_path}" if csv_path is not None else "")
        + "\n"
    )
    return 0
