"""``fireorder devices``: serial ports (with USB descriptions) and BrainFlow boards; with
``--lsl`` also the Lab Streaming Layer streams that answer (opt-in: a resolve sends stream
queries to the network liblsl is configured for)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "devices",
        help="list serial ports and BrainFlow boards",
        description="List serial ports (pyserial does not list ptys or /dev/serial/by-id "
        "links: give those to --port directly) and the boards BrainFlow supports.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--lsl",
        action="store_true",
        help="also list LSL streams (name, type, channels, rate, host, source_id); this "
        "sends LSL stream queries to the network, so it is off unless asked",
    )
    p.set_defaults(func=run)


def _serial() -> list[dict[str, Any]]:
    try:
        from devices.drivers.serial_board import list_serial_ports
    except ImportError as exc:  # a build without the serial driver
        log.warning("serial discovery unavailable: %s", exc)
        return []
    return list_serial_ports()


def _boards() -> list[dict[str, Any]]:
    try:
        from devices.drivers.brainflow_board import list_boards
    except ImportError as exc:
        log.warning("BrainFlow discovery unavailable: %s", exc)
        return []
    return list_boards()


def _lsl() -> list[dict[str, Any]]:
    from app.cli import CliError
    from devices.drivers.base import DeviceError
    from devices.drivers.discovery import list_lsl_streams

    try:
        return [s.to_dict() for s in list_lsl_streams()]
    except DeviceError as exc:  # pylsl/liblsl missing: one line, not a traceback
        raise CliError(str(exc)) from None


def _lsl_line(s: dict[str, Any]) -> str:
    if s["format"] == "string":
        what = "markers"
    elif s["rate_hz"] > 0:
        what = f"{s['channels']} ch @ {s['rate_hz']:g} Hz"
    else:
        what = f"{s['channels']} ch, irregular rate"
    labels = ", ".join(s["labels"])
    extra = f"  [{labels}]" if labels else ""
    return (
        f"  {s['name']!r}  type {s['type'] or '-'}  {what}  {s['format']}  host {s['host']}  "
        f"source_id {s['source_id'] or '-'}{extra}\n"
    )


def run(args: argparse.Namespace) -> int:
    ports, boards = _serial(), _boards()
    streams = _lsl() if args.lsl else None
    if args.json:
        doc: dict[str, Any] = {"serial_ports": ports, "brainflow_boards": boards}
        if streams is not None:
            doc["lsl_streams"] = streams
        json.dump(doc, sys.stdout, default=str)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    out.write("serial ports:\n")
    if not ports:
        out.write(
            "  none found (ptys and /dev/serial/by-id/... links are not listed; "
            "pass them to --port)\n"
        )
    for p in ports:
        desc = " · ".join(
            str(p[k])
            for k in ("description", "manufacturer", "hwid")
            if p.get(k) and p.get(k) != "n/a"
        )
        out.write(f"  {p.get('device')}  {desc}\n")
    out.write(f"\nBrainFlow boards ({len(boards)}):\n")
    for b in boards:
        extra = ", ".join(f"{k}={v}" for k, v in b.items() if k not in ("name",))
        out.write(f"  {b.get('name')}  {extra}\n")
    if streams is None:
        out.write("\nLSL streams: not looked for (add --lsl)\n")
        return 0
    out.write(f"\nLSL streams ({len(streams)}):\n")
    if not streams:
        out.write("  none answered (is the amplifier's LSL app streaming?)\n")
    for s in streams:
        out.write(_lsl_line(s))
    return 0
