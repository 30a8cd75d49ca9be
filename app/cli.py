"""The ``fireorder`` command line. Headless commands never import Qt.

Each subcommand lives in ``app/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``. Expected failures raise
:class:`CliError` (or a domain error listed in ``_EXPECTED``) and become one line on stderr
with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

# numpy's BLAS starts a thread per CPU when it is imported (about 0.1 s of CPU at every start,
# on a machine the acquisition shares); fireorder's matrix products are small (the changepoint
# fit), so one thread does them as fast. Set before anything imports numpy; a user's own
# setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

log = logging.getLogger("fireorder")

COMMANDS = ("simulate", "analyze", "live", "record", "report", "video", "devices")


# The libraries name their settings ("no time column: set fs"); the CLI says its flags.
_SETTINGS = "fs|stream|units|board|channels"
_FLAG_WORDING = (
    (re.compile(rf"\bthe set ({_SETTINGS})\b"), r"--\1"),
    (re.compile(rf"\bthe ({_SETTINGS}) setting\b"), r"--\1"),
    (re.compile(rf"\b({_SETTINGS}) is set to\b"), r"--\1"),
    (re.compile(rf"\bset ({_SETTINGS})\b"), r"give --\1"),
)


def flag_wording(message: str) -> str:
    """A library message in the CLI's words: ``set fs`` becomes ``give --fs``."""
    for pattern, repl in _FLAG_WORDING:
        message = pattern.sub(repl, message)
    return message


class CliError(Exception):
    """An expected, user-facing failure: printed as one line, exit code 2."""


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (with bz2 and lzma,
    ~3 ms of every start: argparse builds a help formatter for each option it adds)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24) -> None:
        # argparse's own default width: the terminal's, less 2
        super().__init__(prog, indent_increment, max_help_position, _terminal_columns() - 2)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage + message and exits 2; keep that but on one line, and begin
        # it as every other error does ("fireorder: error:"), naming the command it is about.
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        self.exit(2, f"fireorder: error: {command + ': ' if command else ''}{message}\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        for word in words:
            if word == "--":
                break
            # argparse (3.11) strips the "--" of "--k-on=--" and gives the option [] without
            # calling its type: every check is skipped and a traceback follows
            option, eq, value = word.partition("=")
            if eq and option.startswith("--") and value == "--":
                self.error(f"argument {option}: expected one argument")
        return super().parse_known_args(words, namespace)


def _only_command(argv: Sequence[str] | None) -> str | None:
    """The command ``argv`` names before any other word, if help of every command is not
    wanted: then only its module is imported (each costs start-up time, issue 8)."""
    if argv is None:
        return None
    for word in argv:
        if word in ("-h", "--help", "--"):
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``argv`` naming a command, a parser of that command alone
    (it parses that ``argv`` the same way)."""
    parser = _Parser(
        prog="fireorder",
        description="Glute-vs-lumbar firing order from surface EMG.",
        epilog=(
            "Without a command the window opens on the built-in simulator; "
            "`fireorder FILE` opens it reviewing a recording."
        ),
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    only = _only_command(argv)
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"app.commands.{name}")
        module.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fireorder")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked (importlib.metadata costs every start)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        sys.stdout.write(f"{parser.prog} {_version()}\n")
        parser.exit()


class _CliFormatter(logging.Formatter):
    """Log lines as the CLI's own messages (``fireorder: warning: ...``), one line each; with
    ``-v`` the level and the module that logged it, for a developer."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self.verbose:
            return text
        return f"fireorder: {record.levelname.lower()}: {' '.join(text.split())}"


def _log_to_stderr(verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_CliFormatter(verbose > 0))
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), handlers=[handler])


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


def _review_target(argv: Sequence[str]) -> str | None:
    """``fireorder FILE``: the file to open in the window (as EDFbrowser or Audacity do)."""
    words = [a for a in argv if not a.startswith("-")]
    if len(words) != 1 or words[0] in COMMANDS or not os.path.isfile(words[0]):
        return None
    return words[0]


def _has_display() -> bool:
    return any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`fireorder live --jsonl | head -3`): stop quietly. Point
        # stdout at /dev/null so the interpreter's final flush does not complain again.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    review = _review_target(argv)
    if review is not None:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        if not _has_display():
            print(
                f"fireorder: error: no display to open {review} in the window "
                f"(try `fireorder analyze {review}` or `fireorder report {review}`)",
                file=sys.stderr,
            )
            return 2
        from app.gui_main import run_gui

        return int(run_gui(review=review))
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    _log_to_stderr(args.verbose)
    if args.command is None:
        # No subcommand: the desktop app; without a display, the headless live view.
        if _has_display():
            from app.gui_main import run_gui

            return int(run_gui())
        log.warning("no display found: showing the headless live view (fireorder live)")
        args = parser.parse_args(["live"])
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # the reader went away: quiet, see main()
    except _expected_errors() as exc:
        msg = str(exc) or exc.__class__.__name__
        if not isinstance(exc, CliError):
            msg = flag_wording(msg)
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        # One line whatever the message quotes (a file's channel name, a path with a line
        # break): a second line would read as a separate message, or be overwritten (\r).
        print(f"fireorder: error: {' '.join(msg.split())}", file=sys.stderr)
        return 2
