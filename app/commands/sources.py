"""Source options shared by the streaming commands (``live``, ``record``)."""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any

from app.cli import CliError
from app.commands.common import (
    limited,
    nonzero_finite,
    parse_role_map,
    sampling_rate,
)
from devices.simulation.presets import PRESETS
from dsp.limits import Limit

if TYPE_CHECKING:
    from devices.drivers.base import Device
    from devices.drivers.discovery import Discovery

SOURCES = ("simulator", "file", "serial", "brainflow", "lsl")
#: what --stream may name an LSL stream by (a bare name is its name)
LSL_KEYS = ("name", "type", "source_id")
PROBABILITY = Limit(0.0, 1.0)


def _scale_limit(name: str) -> Any:
    from devices.drivers.serial_protocol import Scale

    return limited(name, Scale.LIMITS[name])


def _adc_limit(name: str) -> Any:
    from devices.drivers.serial_protocol import Scale

    return limited(name, Scale.ADC_LIMITS[name])


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="simulator", choices=SOURCES, help="data source")
    p.add_argument(
        "--fs",
        type=sampling_rate,
        help="sampling rate in Hz (simulator: default 2000; serial: required)",
    )
    p.add_argument("--channels", help="role=CHANNEL mapping, e.g. glute_l=ch1,lumbar_l=ch2")
    g = p.add_argument_group("simulator")
    g.add_argument(
        "--fast",
        action="store_true",
        help="run as fast as possible instead of in real time (needs --duration)",
    )
    g.add_argument("--seed", type=int, default=None, help="random seed")
    g.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="clean",
        help="signal preset (hum, lead_off, clipping, ecg, noisy: clean with one fault)",
    )
    g.add_argument(
        "--glute-first",
        type=limited("glute-first probability", PROBABILITY),
        metavar="P",
        help="probability of a glute-first rep (default 0.7)",
    )
    g.add_argument(
        "--lumbar-first",
        type=limited("lumbar-first probability", PROBABILITY),
        metavar="P",
        help="probability of a lumbar-first rep (default 0.15)",
    )
    g = p.add_argument_group("file (replay a recording)")
    g.add_argument(
        "--speed",
        default="1",
        help="replay speed 0.1-8 (any factor), or 'fast' for as fast as possible (default 1)",
    )
    g.add_argument(
        "--stream",
        help="XDF: the EMG stream to replay (by name or type); --source lsl: the LSL stream's "
        "name, or type=EMG / source_id=ID (see `fireorder devices --lsl`)",
    )
    g = p.add_argument_group("serial")
    g.add_argument("--port", help="serial port, e.g. /dev/ttyACM0, /dev/serial/by-id/..., COM3")
    g.add_argument("--protocol", choices=["text", "fob1"], default="text", help="wire protocol")
    g.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    g.add_argument("--seq", action="store_true", help="text: first field is a sample counter")
    # (the window's scale fields take the same ranges: 8-24 bits, a reference up to 10 V)
    g.add_argument(
        "--gain", type=nonzero_finite, help="scale: microvolts per ADC count (not 0)"
    )
    g.add_argument(
        "--offset", type=_scale_limit("offset"), help="scale: ADC count of 0 V (subtracted first)"
    )
    g.add_argument(
        "--adc-bits", type=_adc_limit("adc_bits"), help="scale: ADC resolution in bits (8-24)"
    )
    g.add_argument(
        "--vref", type=_adc_limit("vref"), help="scale: ADC reference (V)"
    )
    g.add_argument(
        "--amp-gain",
        type=_adc_limit("amp_gain"),
        help="scale: analogue front-end gain",
    )
    g = p.add_argument_group("brainflow")
    g.add_argument("--board", help="BrainFlow board name or id, e.g. CYTON_BOARD, SYNTHETIC_BOARD")
    g.add_argument("--serial-port", default="", help="BrainFlow serial port")
    g.add_argument("--mac", default="", help="BrainFlow MAC address")
    g.add_argument("--ip", default="", help="BrainFlow IP address")
    g.add_argument("--ip-port", type=int, default=0, help="BrainFlow IP port")
    g.add_argument(
        "--file", default="", help="file to replay (--source file), or BrainFlow playback file"
    )
    g.add_argument("--master-board", help="BrainFlow master board for playback")
    g.add_argument("--other-info", default="", help="BrainFlow other_info parameter")


def _roles(args: argparse.Namespace) -> dict[str, str] | None:
    if not args.channels:
        return None
    return {role.value: name for role, name in parse_role_map(args.channels).items()}


def _scale(args: argparse.Namespace) -> Any:
    from devices.drivers.serial_protocol import Scale

    if args.adc_bits or args.vref or args.amp_gain:
        if not (args.adc_bits and args.vref):
            raise CliError("--adc-bits and --vref go together (and optionally --amp-gain)")
        return Scale.from_adc(bits=args.adc_bits, vref=args.vref, amp_gain=args.amp_gain or 1.0)
    return Scale(
        gain=args.gain if args.gain is not None else 1.0,
        offset=args.offset if args.offset is not None else 0.0,
    )


def source_options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The registered source kind and its options, from the command line (not opened)."""
    if args.source == "simulator":
        if args.fast and args.duration is None:
            raise CliError("--fast needs --duration")
        sim: dict[str, Any] = {
            "preset": args.preset,
            "realtime": not args.fast,
            "duration_s": args.duration if args.fast else None,
            "fs": 2000.0 if args.fs is None else args.fs,
        }
        if args.seed is not None:
            sim["seed"] = args.seed
        if args.glute_first is not None:
            sim["p_glute_first"] = args.glute_first
        if args.lumbar_first is not None:
            sim["p_lumbar_first"] = args.lumbar_first
        if getattr(args, "counter", False):
            sim["counter"] = True
        return "simulator", sim
    if args.source == "file":
        if not args.file:
            raise CliError("--source file needs --file")
        try:
            speed = None if args.speed == "fast" else float(args.speed)
        except ValueError:
            raise CliError(f"--speed must be a number or 'fast', not {args.speed!r}") from None
        if speed is not None and not 0.1 <= speed <= 8:  # what FileSource replays
            raise CliError("--speed must be between 0.1 and 8 (or 'fast')")
        return "file", {
            "path": args.file,
            "channels": _roles(args),
            "fs": args.fs,
            "speed": speed,
            "board": args.board,  # a BrainFlow CSV: the board that wrote it
            "stream": args.stream,  # a multi-stream XDF: the EMG stream
        }
    if args.source == "serial":
        if not args.port:
            raise CliError("--source serial needs --port (see `fireorder devices`)")
        if not args.channels:
            # the wire names no muscles: look at what the board sends and say how to map it
            from devices.drivers.discovery import discover_serial

            found = discover_serial(args.port, protocol=args.protocol, baud=args.baud, seq=args.seq)
            raise CliError(mapping_hint(found, args))
        if not args.fs:
            raise CliError("--source serial needs --fs (the board's sampling rate)")
        return "serial", {
            "port": args.port,
            "protocol": args.protocol,
            "fs": args.fs,
            "baud": args.baud,
            "seq": args.seq,
            "roles": _roles(args),
            "scale": _scale(args),
        }
    if args.source == "lsl":
        return "lsl", lsl_options(args)
    if not args.board:
        raise CliError("--source brainflow needs --board (see `fireorder devices`)")
    if not args.channels:
        from devices.drivers.discovery import ROLE_ORDER, discover_brainflow

        found = discover_brainflow(
            args.board,
            serial_port=args.serial_port,
            mac_address=args.mac,
            ip_address=args.ip,
            ip_port=args.ip_port,
            file=args.file,
            master_board=args.master_board,
        )
        # four or more channels get the driver's default order (glute_l, glute_r, ...);
        # fewer cannot be guessed: say which there are
        if found.n_channels < len(ROLE_ORDER):
            raise CliError(mapping_hint(found, args))
    return "brainflow", {
        "board": args.board,
        "serial_port": args.serial_port,
        "mac_address": args.mac,
        "ip_address": args.ip,
        "ip_port": args.ip_port,
        "file": args.file,
        "master_board": args.master_board,
        "other_info": args.other_info,
        "roles": _roles(args),
    }


def lsl_selector(text: str) -> dict[str, str]:
    """``--stream``: a name, or ``type=EMG`` / ``source_id=ID`` (``name=X`` too), comma
    separated to combine them."""
    if "=" not in text:
        return {"stream": text.strip()}
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in LSL_KEYS or not value.strip():
            keys = ", ".join(f"{k}=..." for k in LSL_KEYS)
            raise CliError(f"--stream {text!r}: give a stream name or {keys}")
        out["stream" if key == "name" else key] = value.strip()
    return out


def lsl_options(args: argparse.Namespace) -> dict[str, Any]:
    if not (args.stream or "").strip():
        raise CliError("--source lsl needs --stream NAME (see `fireorder devices --lsl`)")
    selector = lsl_selector(args.stream)
    if not args.channels:
        # an LSL stream names its channels, not its muscles: say which there are
        from devices.drivers.discovery import discover_lsl

        found = discover_lsl(
            selector.get("stream"), type=selector.get("type"), source_id=selector.get("source_id")
        )
        raise CliError(mapping_hint(found, args))
    return {**selector, "roles": _roles(args)}


def mapping_hint(found: Discovery, args: argparse.Namespace) -> str:
    """One line: the channels the board sends and a ``--channels`` that maps them."""
    names = ",".join(found.channel_names)
    flags = []
    described = found.protocol in ("brainflow", "lsl")  # rate and names from a descriptor
    wrong_protocol = not described and found.protocol != args.protocol
    if wrong_protocol:
        flags.append(f"--protocol {found.protocol}")
    if not args.fs and found.nominal_hz and not described:
        flags.append(f"--fs {found.nominal_hz:g}")
    what = "--fs and --channels" if any(f.startswith("--fs") for f in flags) else "--channels"
    who = "the stream" if found.protocol == "lsl" else "the board"
    sent = f"{who} sends {names} ({found.protocol + ', ' if wrong_protocol else ''}"
    sent += f"{found.rate_text()})"
    option = found.channels_option()
    if not option:  # one channel: nothing to compare it with
        return f"{sent[:-1]}, one channel): fireorder needs a glute and a lumbar channel"
    # quoted for the shell where a label has spaces ("EMG 1"): the example pastes as is
    example = " ".join([*flags, f"--channels {shlex.quote(option)}"])
    return f"give {what}; {sent}: e.g. {example}"


def open_source(args: argparse.Namespace) -> Device:
    """The device the options describe, built by the registry the window uses too (not
    opened yet)."""
    from devices.drivers.base import create

    kind, options = source_options(args)
    return create(kind, **options)
