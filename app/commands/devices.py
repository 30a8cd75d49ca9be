"""``fireorder devices``: serial ports (with USB descriptions) and BrainFlow boards."""

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


def run(args: argparse.Namespace) -> int:
    ports, boards = _serial(), _boards()
    if args.json:
        json.dump({"serial_ports": ports, "brainflow_boards": boards}, sys.stdout, default=str)
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
    return 0
