"""The ``fireorder`` command line. Headless commands never import Qt.

Each subcommand lives in ``app/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``. Expected failures raise
:class:`CliError` (or a domain error listed in ``_EXPECTED``) and become one line on stderr
with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

log = logging.getLogger("fireorder")

COMMANDS = ("simulate", "analyze", "live", "record", "report", "devices")


class CliError(Exception):
    """An expected, user-facing failure: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage + message and exits 2; keep that but on one line.
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fireorder",
        description="Glute-vs-lumbar firing order from surface EMG.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"app.commands.{name}")
        module.register(sub)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    from devices.drivers.base import DeviceError
    from dsp.contract import ContractError

    errors: list[type[BaseException]] = [CliError, ContractError, DeviceError, OSError]
    try:
        from devices.files import ReaderError

        errors.append(ReaderError)
    except ImportError:  # readers not installed in this build
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command is None:
        # No subcommand: the desktop app; without a display, the headless live view.
        if any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
            from app.gui_main import run_gui

            return int(run_gui())
        log.warning("no display found: showing the headless live view (fireorder live)")
        args = parser.parse_args(["live"])
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except _expected_errors() as exc:
        msg = str(exc) or exc.__class__.__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        print(f"fireorder: error: {msg}", file=sys.stderr)
        return 2
