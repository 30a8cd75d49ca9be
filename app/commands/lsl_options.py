"""``--markers`` and ``--lsl-out`` of ``fireorder live`` and ``record`` (Lab Streaming Layer).

Both are off unless given: without them liblsl is not even loaded, so nothing listens on a
socket. Status lines of the marker feed and the outlet (found, lost, back) go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from app.cli import CliError

if TYPE_CHECKING:
    from devices.session.controller import SessionController

#: the verdict stream's name when ``--lsl-out`` is given without one
DEFAULT_OUT_NAME = "fireorder-verdicts"  # = devices.session.lsl_out.DEFAULT_NAME
DEFAULT_EMG_NAME = "fireorder-emg"  # = devices.session.lsl_out.DEFAULT_EMG_NAME


def add_lsl_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("lab streaming layer (off unless given)")
    g.add_argument(
        "--markers",
        metavar="NAME",
        help="put the markers of the LSL marker stream NAME on the timeline at their LSL "
        "time (and in the recording's annotations)",
    )
    g.add_argument(
        "--lsl-out",
        nargs="?",
        const=DEFAULT_OUT_NAME,
        default=None,
        metavar="NAME",
        help="send each finished rep's verdict as one JSON string on an LSL marker stream "
        f"(default name {DEFAULT_OUT_NAME})",
    )
    g.add_argument(
        "--lsl-out-emg",
        nargs="?",
        const=DEFAULT_EMG_NAME,
        default=None,
        metavar="NAME",
        help="send the filtered EMG and the envelopes as an LSL float stream "
        f"(default name {DEFAULT_EMG_NAME})",
    )


def check_lsl_arguments(args: argparse.Namespace) -> None:
    """Refuse unusable names before any work (one line)."""
    if args.markers is not None and not args.markers.strip():
        raise CliError("--markers needs the name of an LSL marker stream")
    if args.lsl_out is not None and not args.lsl_out.strip():
        raise CliError("--lsl-out needs a stream name (or none, for the default)")
    if args.lsl_out_emg is not None and not args.lsl_out_emg.strip():
        raise CliError("--lsl-out-emg needs a stream name (or none, for the default)")
    if args.lsl_out is not None and args.lsl_out.strip() == (args.lsl_out_emg or "").strip():
        raise CliError("--lsl-out and --lsl-out-emg need two different stream names")


def attach_lsl(args: argparse.Namespace, ctl: SessionController) -> None:
    """Start what was asked for on ``ctl`` (after it is open)."""
    if args.markers is None and args.lsl_out is None and args.lsl_out_emg is None:
        return

    def say(text: str) -> None:
        sys.stderr.write(f"{text}\n")
        sys.stderr.flush()

    ctl.on_notice = say
    if args.lsl_out is not None:
        why = ctl.set_lsl_out(True, args.lsl_out.strip())
        if why is not None:
            ctl.close()
            raise CliError(why)
        say(f"sending verdicts on LSL stream {args.lsl_out.strip()}")
    if args.lsl_out_emg is not None:
        why = ctl.set_lsl_out_emg(True, args.lsl_out_emg.strip())
        if why is not None:
            ctl.close()
            raise CliError(why)
        say(f"sending filtered EMG and envelopes on LSL stream {args.lsl_out_emg.strip()}")
    if args.markers is not None:
        ctl.attach_markers(args.markers.strip())


__all__ = ["add_lsl_arguments", "attach_lsl", "check_lsl_arguments"]
