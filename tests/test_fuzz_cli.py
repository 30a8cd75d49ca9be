"""Hostile values for every numeric option of every command (issue 11).

The options are found by walking the real parser (every option with a ``type``, and
``--speed``, which is parsed later), so an option added tomorrow is fuzzed too. Each value --
nan, inf, 0, -1, 1e308, 1e-300, "", "abc", huge integers, Unicode digits, any float -- goes
through the in-process entry ``app.cli.main(argv)`` with a fast base command line: it must end
with exit 0 (the value was sane and used) or exit 2 with one ``fireorder: error:`` line
(argparse's own messages name the command: ``fireorder: error: COMMAND: ...``), within a
time bound, never a traceback. A few go through a real subprocess as well.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.cli import build_parser, main
from tests.fuzz_strategies import HOSTILE_ARGS, hostile_value, seed_named
from tests.test_fuzz_files import TookTooLong, examples, memory_bound, time_bound

TIME_BOUND_S = 30.0
_ERROR = re.compile(r"^fireorder: error: \S")
# a log line: the CLI's own form ("fireorder: warning: ..."; an error is the one line the
# checks count) or, with -v, the developer's ("WARNING module: ...")
_LOG_LINE = re.compile(
    r"^(fireorder: (debug|info|warning)|(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+): "
)
# options that read a number from a string themselves, after parsing
_LATE_NUMBERS = {"--speed"}


def numeric_options() -> list[tuple[str, str, int]]:
    """(command, option, nargs) of every option of every command that takes a number."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for command, p in sorted(sub.choices.items()):
        for action in p._actions:
            if not action.option_strings:
                continue
            opt = max(action.option_strings, key=len)
            if action.type is None and opt not in _LATE_NUMBERS:
                continue
            if action.type is str:
                continue
            nargs = action.nargs if isinstance(action.nargs, int) else 1
            out.append((command, opt, nargs))
    return out


OPTIONS = numeric_options()
# A valid value of these makes the command work longer (a week of recording is valid): above
# this it is only parsed, not run.
_WORK = {"--duration": 3.0}
_WORK_LIMIT = 7 * 86400.0
# serial scale options are only used with a serial source
_SERIAL = {"--baud", "--gain", "--offset", "--adc-bits", "--vref", "--amp-gain"}


def base_argv(command: str, option: str, folder: Path) -> list[str]:
    """A command line for ``command`` that finishes in about a second on its own."""
    csv = folder / "emg.csv"
    if not csv.exists():
        csv.write_bytes(seed_named("emg.csv").data)
    if command == "analyze":
        return ["analyze", str(csv)]
    if command == "report":
        return ["report", str(csv), "--out", str(folder / "r.html")]
    if command == "simulate":
        return ["simulate", "--duration", "2", "--out", str(folder / "sim.csv")]
    stream = [command, "--duration", "1"]
    if command == "record":
        stream += ["--out", str(folder / "rec.bdf"), "--overwrite", "--folder", str(folder)]
    if option == "--speed":  # (0.25 s of the file: at the slowest speed, 2.5 s)
        return [command, "--duration", "0.25", "--source", "file", "--file", str(csv)]
    if option in _SERIAL:
        # a port that opens and never sends: the scale is checked before any reading
        return [*stream, "--source", "serial", "--port", str(folder / "no-such-port"),
                "--fs", "1000", "--channels", "glute_l=ch1,lumbar_l=ch2"]
    return [*stream, "--fast"]


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """``main`` calls ``logging.basicConfig``: give the root logger a handler first, so that
    it does not attach one to the StringIO that stands for stderr."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with quiet_logging(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            with time_bound(TIME_BOUND_S), memory_bound(500 * 2**20):
                code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except TookTooLong as exc:
            pytest.fail(f"fireorder {' '.join(argv)}: {exc}")
    return code, out.getvalue(), err.getvalue()


def check_outcome(argv: list[str], code: int, stderr: str) -> None:
    shown = f"fireorder {' '.join(map(repr, argv))}"
    assert code in (0, 2), f"{shown}: exit {code}: {stderr[-3000:]}"
    assert "Traceback" not in stderr and "internal error" not in stderr, f"{shown}: {stderr}"
    others = [ln for ln in stderr.split("\n")[:-1] if not _LOG_LINE.match(ln)]
    if code == 2:
        assert stderr.endswith("\n") and len(others) == 1, f"{shown}: {stderr!r}"
        assert _ERROR.match(others[0]) and "\r" not in others[0], f"{shown}: {stderr!r}"


def option_value_argv(command: str, option: str, nargs: int, values: list[str],
                      folder: Path) -> list[str]:
    argv = base_argv(command, option, folder)
    if nargs == 1 and values[0].startswith("-"):
        return [*argv, f"{option}={values[0]}"]  # (else argparse takes "-1" for an option)
    return [*argv, option, *values[:nargs]]


fuzz = settings(
    max_examples=examples(80),  # in process: 0.05-1.5 s each
    deadline=None,
    derandomize=not os.environ.get("FIREORDER_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_every_command_has_numeric_options_found() -> None:
    found = {(c, o) for c, o, _ in OPTIONS}
    for expected in [("analyze", "--fs"), ("report", "--k-on"), ("simulate", "--snr"),
                     ("live", "--duration"), ("record", "--duration"), ("live", "--speed"),
                     ("record", "--baud"), ("simulate", "--seed")]:
        assert expected in found


@fuzz
@given(
    target=st.sampled_from(OPTIONS),
    values=st.lists(hostile_value(), min_size=2, max_size=2),
)
@example(target=("live", "--duration", 1), values=["1e308", "1"])
@example(target=("record", "--duration", 1), values=["1e308", "1"])
@example(target=("analyze", "--k-on", 1), values=["--", "1"])  # --k-on=-- gave k_on = []
@example(target=("simulate", "--wander", 1), values=["1e308", "1"])  # overflowed
@example(target=("simulate", "--glute-lag", 2), values=["1e308", "1e308"])
def test_hostile_option_values(target: tuple[str, str, int], values: list[str]) -> None:
    command, option, nargs = target
    with tempfile.TemporaryDirectory() as tmp:
        argv = option_value_argv(command, option, nargs, values, Path(tmp))
        if option in _WORK and _WORK[option] < _number(values[0]) <= _WORK_LIMIT:
            build_parser().parse_args(argv)  # valid, and long to run: accepted is enough
            return
        code, _, stderr = run_main(argv)
    check_outcome(argv, code, stderr)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [("analyze", "--fs", "nan"), ("simulate", "--glute-lag", "1e308"),
     ("live", "--duration", "1e308"), ("record", "--seed", "-1"), ("report", "--k-on", "١٢")],
)
def test_hostile_values_through_a_real_process(command: str, option: str, value: str) -> None:
    nargs = {(c, o): n for c, o, n in OPTIONS}[(command, option)]
    with tempfile.TemporaryDirectory() as tmp:
        argv = option_value_argv(command, option, nargs, [value, value], Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = subprocess.run([sys.executable, "-m", "app", *argv], capture_output=True,
                              text=True, timeout=120, check=False, env=env,
                              stdin=subprocess.DEVNULL)
    check_outcome(argv, proc.returncode, proc.stderr)


def test_hostile_values_are_all_strings() -> None:
    assert all(isinstance(v, str) for v in HOSTILE_ARGS)
