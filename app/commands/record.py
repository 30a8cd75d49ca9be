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
from typing import Any

from app.cli import CliError
from app.commands.common import add_dsp_arguments, dsp_settings_from_args
from app.commands.sources import add_source_arguments, open_source

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
    p.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C)")
    p.add_argument(
        "--out", help="output .bdf file (default: a name from the session and time in --folder)"
    )
    p.add_argument(
        "--folder", default="recordings", help="folder for recordings (default recordings/)"
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
    p.set_defaults(func=run)


def _device(args: argparse.Namespace) -> Any:
    device = open_source(args)
    if args.counter:
        if args.source != "simulator":
            raise CliError("--counter is a simulator option")
        device.config = device.config.replace(counter=True)  # read again in open()
    return device


def _description(args: argparse.Namespace, device: Any) -> tuple[str, dict[str, Any]]:
    if args.source == "simulator":
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
    from devices.files.recorder import Recorder, SessionMeta, recording_path, recover_folder
    from devices.session.live import LiveSession
    from dsp.reps import GLUTE_FIRST

    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be > 0")
    settings = dsp_settings_from_args(args)
    folder = Path(args.folder)
    # What the app does on start: finalise recordings whose writer was killed.
    folders = {folder, Path(args.out).parent} if args.out else {folder}
    for report in (r for f in sorted(folders) for r in recover_folder(f)):
        sys.stderr.write(f"repaired unfinished recording {report.line()}\n")

    device = _device(args)
    session = LiveSession(device, settings)
    info = session.open()
    description, device_info = _description(args, device)
    meta = SessionMeta(
        athlete=args.athlete,
        session=args.session,
        exercise=settings.exercise,
        notes=args.notes,
        operator=args.operator,
        device=description,
    )
    path = Path(args.out) if args.out else recording_path(folder, meta)
    if path.exists() and not args.overwrite:
        session.close()
        raise CliError(f"{path} exists (use --overwrite to replace it)")
    recorder = Recorder(
        path, info, meta, settings, overwrite=args.overwrite, device_info=device_info
    )
    if not recorder.start():
        session.close()
        raise CliError(recorder.error or f"cannot record to {path}")

    # The simulator's markers are its ground truth; a device's are triggers or user marks.
    marker_kind = "truth" if args.source == "simulator" else "marker"

    def drain() -> None:
        for timed in session.drain_events():
            recorder.add_dsp_event(timed.event)

    def on_raw(chunk: Any) -> None:
        # Runs on this thread (session.run is synchronous): raw samples, then the events
        # the chunk produced, then device markers; nothing here touches the disk.
        recorder.write(chunk)
        drain()
        while session.markers:
            marker = session.markers.popleft()
            recorder.add_event(marker.index, f"{marker_kind} {marker.label}")
        if recorder.error:
            session.stop()  # a headless recorder has nothing left to do

    session.on_raw = on_raw
    roles = ", ".join(f"{r.value}={info.channel_names[i]}" for r, i in info.roles.items())
    sys.stderr.write(f"recording {info.fs:g} Hz ({roles}) to {path}; Ctrl-C stops\n")
    sys.stderr.flush()
    try:
        with _sigterm_stops():
            fast = args.fast or (args.source == "file" and args.speed == "fast")
            session.run(args.duration, until_exhausted=fast)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
        drain()  # the rep the end of the stream settled
        summary = recorder.stop()
    line = dataclasses.replace(summary, error=None).line()  # the error goes to stderr
    verdicts = recorder.verdicts  # as finally judged (early reps may have been re-judged)
    reps, glute = sum(verdicts.values()), verdicts.get(GLUTE_FIRST, 0)
    sys.stdout.write(f"{line}, {reps} reps ({glute} glute first)\n")
    sys.stdout.flush()
    if summary.error:
        raise CliError(summary.error)
    if session.error:
        raise CliError(f"source stopped: {session.error} (recording kept: {path})")
    return 0
