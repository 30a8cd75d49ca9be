"""``fireorder record``: stream a source through the live pipeline and record it.

The file is a BDF+ (24-bit) with EDF+ annotations for onsets, reps, verdicts, gaps and
markers, plus a ``FILE.bdf.json`` sidecar with settings, calibration and session metadata
(see docs/recording-format.md). Unfinished recordings in the folder (a killed writer) are
finalised first. stdout gets one summary line; progress and problems go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli import CliError
from app.commands.common import add_dsp_arguments, dsp_settings_from_args, session_duration
from app.commands.lsl_options import add_lsl_arguments, attach_lsl, check_lsl_arguments
from app.commands.sources import add_source_arguments, open_source
from devices.files.locations import default_recordings_dir

if TYPE_CHECKING:
    from devices.drivers.base import Device

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "record",
        help="record a source (raw samples, events, settings) to a BDF+ file",
        description=(
            "Stream from a source through the live pipeline and record raw samples, "
            "detected onsets, reps and verdicts to a BDF+ file with a JSON sidecar. "
            "Ctrl-C (or SIGTERM) stops and finalises the file."
        ),
    )
    p.add_argument(
        "--duration", type=session_duration, help="seconds to record (default: until Ctrl-C)"
    )
    p.add_argument(
        "--out", help="output .bdf file (default: a name from the session and time in --folder)"
    )
    p.add_argument(
        "--folder",
        "--recordings-dir",
        dest="folder",
        default=None,
        help=f"folder for recordings (default {default_recordings_dir()})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    g = p.add_argument_group("session")
    g.add_argument("--athlete", default="", help="athlete / subject id")
    g.add_argument("--session", default="", help="session name")
    g.add_argument("--notes", default="", help="free-text notes")
    g.add_argument("--operator", default="", help="who ran the session")
    add_source_arguments(p)
    p.add_argument(
        "--counter",
        action="store_true",
        help="simulator: add a 'counter' channel holding the sample index (loss checks)",
    )
    add_dsp_arguments(p)
    add_lsl_arguments(p)
    p.set_defaults(func=run)


def _description(args: argparse.Namespace, device: Device) -> tuple[str, dict[str, Any]]:
    from devices.drivers.simulator import SimulatorDevice

    if isinstance(device, SimulatorDevice):
        cfg = device.config
        mode = "fast" if args.fast else "real time"
        text = f"simulator (preset {args.preset}, seed {cfg.seed}, {cfg.fs:g} Hz, {mode})"
        return text, {"simulator": cfg.to_dict()}
    if args.source == "file":
        return f"replay of {args.file}", {}
    if args.source == "serial":
        return f"serial {args.port} ({args.protocol}, {args.baud} baud)", {}
    return f"brainflow {args.board}", {}


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM finalises the file like Ctrl-C (SIGKILL cannot: that is what repair is for)."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(args: argparse.Namespace) -> int:
    from devices.files.recorder import SessionMeta, recover_folder
    from devices.session.controller import RecordingError, SessionController
    from devices.session.states import MarkKind
    from dsp.reps import GLUTE_FIRST

    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be > 0")
    if args.counter and args.source != "simulator":
        raise CliError("--counter is a simulator option")
    settings = dsp_settings_from_args(args)
    check_lsl_arguments(args)
    folder = Path(args.folder) if args.folder else default_recordings_dir()
    # What the app does on start: finalise recordings whose writer was killed.
    folders = {folder, Path(args.out).parent} if args.out else {folder}
    for report in (r for f in sorted(folders) for r in recover_folder(f)):
        sys.stderr.write(f"repaired unfinished recording {report.line()}\n")

    device = open_source(args)
    description, device_info = _description(args, device)
    meta = SessionMeta(
        athlete=args.athlete,
        session=args.session,
        exercise=settings.exercise,
        notes=args.notes,
        operator=args.operator,
        device=description,
    )
    # The simulator's markers are its ground truth; a device's are triggers or user marks.
    kind = MarkKind.TRUTH if args.source == "simulator" else MarkKind.DEVICE
    ctl = SessionController(
        device, settings, meta=meta, recordings_dir=folder, device_marks=kind
    )
    info = ctl.open()
    try:
        path = ctl.start_recording(args.out, overwrite=args.overwrite, device_info=device_info)
    except RecordingError as exc:
        ctl.close()
        raise CliError(str(exc)) from None
    attach_lsl(args, ctl)
    roles = ", ".join(f"{r.value}={info.channel_names[i]}" for r, i in info.roles.items())
    sys.stderr.write(f"recording {info.fs:g} Hz ({roles}) to {path}; Ctrl-C stops\n")
    sys.stderr.flush()
    fast = args.fast or (args.source == "file" and args.speed == "fast")
    try:
        with _sigterm_stops():
            ctl.run(args.duration, until_exhausted=fast)
    except KeyboardInterrupt:
        pass
    except Exception:
        if ctl.error is None:  # not a stream failure the session caught: a bug, show it
            raise
    finally:
        summary = ctl.close()
    assert summary is not None
    line = dataclasses.replace(summary, error=None).line()  # the error goes to stderr
    counts = ctl.tally.session  # as finally judged (early reps may have been re-judged)
    reps, glute = ctl.tally.count, counts[GLUTE_FIRST]
    sys.stdout.write(f"{line}, {reps} reps ({glute} glute first)\n")
    sys.stdout.flush()
    if summary.error:
        raise CliError(summary.error)
    if ctl.error:
        raise CliError(f"source stopped: {ctl.error} (recording kept: {path})")
    return 0
