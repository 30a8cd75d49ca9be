"""Argument groups shared by several commands."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from app.cli import CliError
from dsp.contract import FS_LIMIT, ContractError, Role, parse_role
from dsp.limits import Limit, SettingError
from dsp.settings import DspSettings, SettingsSchedule

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    from numpy.typing import NDArray

    from devices.files import Recording
    from dsp.contract import StreamInfo


def limited(name: str, limit: Limit) -> Any:
    """argparse type for a setting with ``limit`` (the one its dataclass checks itself
    against): NaN, inf and absurd magnitudes are refused with the range, before any work."""

    def parse(text: str) -> float | int:
        try:
            return limit.parse(name, text)
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def dsp_setting(name: str) -> Any:
    """argparse type of the DspSettings field ``name``, with that field's range."""
    return limited(name, DspSettings.LIMITS[name])


#: argparse type of ``--fs``: a finite number of Hz in the range fireorder accepts.
sampling_rate = limited("sampling rate", FS_LIMIT)


#: a live session or a recording longer than a week is a typo; 1e308 s overflows the sample
#: count (a traceback, not a message)
MAX_SESSION_S = 7 * 86400.0

#: argparse type of ``live``/``record`` ``--duration``: seconds in (0, a week]
session_duration = limited("duration", Limit(0.0, MAX_SESSION_S, "s", low_open=True))


def bounded(lo: float, hi: float, unit: str = "", *, low_open: bool = False) -> Any:
    """argparse type: a finite number in [lo, hi] (``(lo, hi]`` with ``low_open``), for
    options that are not a setting of a dataclass (the simulator's signal options)."""
    return limited("value", Limit(lo, hi, unit.strip(), low_open=low_open))


def nonzero_finite(text: str) -> float:
    """argparse type: a finite number other than 0 (a scale factor; negative inverts)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value == 0 or abs(value) > 1e9:
        raise argparse.ArgumentTypeError(f"{text} is not usable: give a finite number, not 0")
    return value


def parse_role_map(text: str) -> dict[Role, str]:
    """``glute_l=EXG1-EXG2,lumbar_l=C3`` -> ordered {Role: column spec}."""
    mapping: dict[Role, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in item:
            raise CliError(f"--channels item {item!r} is not ROLE=COLUMN")
        role_text, column = (s.strip() for s in item.split("=", 1))
        try:
            role = parse_role(role_text)
        except ContractError as exc:
            raise CliError(str(exc)) from None
        if role in mapping:
            raise CliError(f"role {role.value} is mapped twice in --channels")
        if not column:
            raise CliError(f"role {role.value} has an empty column in --channels")
        mapping[role] = column
    if len(set(mapping.values())) != len(mapping):
        raise CliError("the same column is mapped to two roles in --channels")
    return mapping


def add_dsp_arguments(p: argparse.ArgumentParser, recorded: bool = False) -> None:
    """The signal-processing options. ``recorded``: a command that reads a recording, which
    is judged with the settings it was recorded with unless an option here changes one
    (their defaults are then None: given or not is told apart; see
    :func:`recorded_schedule`)."""
    d = DspSettings()
    if recorded:
        g = p.add_argument_group(
            "signal processing",
            "A fireorder recording is judged with the settings it was recorded with (and each "
            "change made while recording): the verdicts the live session gave. An option here "
            "changes that one setting for the whole file; other files start from the "
            "defaults.",
        )
        g.add_argument(
            "--default-settings",
            action="store_true",
            help="judge with the defaults (and the options given), not the recorded settings",
        )
    else:
        g = p.add_argument_group("signal processing")
    g.add_argument(
        "--exercise",
        default=None if recorded else d.exercise,
        help="exercise template (default hinge)",
    )
    g.add_argument(
        "--tolerance-ms",
        type=dsp_setting("tolerance_ms"),
        default=None if recorded else d.tolerance_ms,
        help="neutral zone +-ms for 'simultaneous' (default 20)",
    )
    g.add_argument(
        "--notch",
        type=float,
        default=None if recorded else d.notch_hz,
        choices=[0.0, 50.0, 60.0],
        help="line frequency to notch: 50, 60 or 0 for off (default 50)",
    )
    g.add_argument(
        "--detector",
        choices=["power", "tkeo"],
        default=None if recorded else d.detector,
        help="onset statistic (default tkeo)",
    )
    g.add_argument(
        "--k-on",
        type=dsp_setting("k_on"),
        default=None if recorded else d.k_on,
        help="onset threshold in baseline SDs (default 4)",
    )
    g.add_argument(
        "--min-on-ms",
        type=dsp_setting("min_on_ms"),
        default=None if recorded else d.min_on_ms,
        help="minimum time above threshold (default 30)",
    )
    g.add_argument(
        "--no-ecg-filter", action="store_true", help="no 30 Hz high-pass on lumbar channels"
    )
    g.add_argument(
        "--no-ecg-gate",
        action="store_true",
        help="do not skip heartbeats on lumbar channels (the QRS gate of Settings)",
    )


def dsp_settings_from_args(
    args: argparse.Namespace, base: DspSettings | None = None, **extra: Any
) -> DspSettings:
    """``base`` (default: the defaults) with the options given on the command line."""
    from dsp.templates import get_template

    if args.exercise is not None:
        try:
            get_template(args.exercise)
        except ContractError as exc:
            raise CliError(str(exc)) from None
    given: dict[str, Any] = {
        "exercise": args.exercise,
        "tolerance_ms": args.tolerance_ms,
        "notch_hz": args.notch,
        "detector": args.detector,
        "k_on": args.k_on,
        "min_on_ms": args.min_on_ms,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    changes.update(extra)
    if args.no_ecg_filter:
        changes["ecg_highpass_hz"] = 0.0
    if args.no_ecg_gate:
        changes["ecg_gate_ratio"] = 0.0
    return (base or DspSettings()).with_(**changes)


def recorded_schedule(args: argparse.Namespace, path: str) -> SettingsSchedule:
    """What a command that reads recording ``path`` judges it with: the settings it was
    recorded with and their changes (a fireorder recording's sidecar), with the options
    given on top; an option that changes a setting applies to the whole file (the recorded
    changes are left out). ``--default-settings`` or a file without recorded settings: the
    defaults and the options."""
    own = None
    # (only a BDF has a fireorder sidecar: a CSV's start imports none of the sidecar's code)
    if not args.default_settings and str(path).lower().endswith(".bdf"):
        from devices.files.sidecar import recorded_settings

        own = recorded_settings(path)
    settings = dsp_settings_from_args(args, own.start if own is not None else None)
    if own is not None and settings == own.start:
        return own
    return SettingsSchedule(settings)


@contextlib.contextmanager
def atomic_outputs(*paths: Path | None) -> Iterator[list[Path | None]]:
    """Temporary names beside ``paths`` to write to; renamed over them only when the block
    succeeds. A full disk or an error halfway leaves no empty or partial file, and an
    existing file is replaced whole or not at all."""
    temps = [
        None if p is None else p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in paths
    ]
    try:
        yield temps
    except BaseException as exc:
        if isinstance(exc, OSError) and exc.filename is not None:
            # the user named the final file: say that one, not the temporary name
            by_temp = {str(t): p for t, p in zip(temps, paths, strict=True) if t is not None}
            exc.filename = by_temp.get(str(exc.filename), exc.filename)
        for t in temps:
            if t is not None:
                with contextlib.suppress(OSError):
                    t.unlink()
        raise
    for t, p in zip(temps, paths, strict=True):
        if t is not None and p is not None and t.exists():
            os.replace(t, p)


def check_writable(path: Path, option: str) -> None:
    """Fail early (before long work) when an output cannot be written."""
    if path.is_dir():
        raise CliError(f"{option} {path} is a directory")
    parent = path.parent if str(path.parent) else type(path)(".")
    if not parent.is_dir():
        raise CliError(f"{option} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CliError(f"{option} {path} is not writable")


def load_mapped(
    path: str,
    channels: str | None,
    fs: float | None = None,
    units: str | None = None,
    *,
    board: str | None = None,
    stream: str | None = None,
) -> tuple[Recording, NDArray[np.float64], StreamInfo]:
    """Read ``path`` and map roles from ``channels`` (``role=COLUMN,...``) or from the file
    (the mapping of :mod:`devices.files.mapping`, in the CLI's words).

    Returns the recording, the (n, roles) microvolt array of the mapped channels and the
    stream description the pipeline needs.
    """
    from devices.files.mapping import MappingError
    from devices.files.mapping import load_mapped as load

    roles = {r.value: c for r, c in parse_role_map(channels).items()} if channels else None
    try:
        mapped = load(path, roles, fs=fs, units=units, board=board, stream=stream)
    except MappingError as exc:
        if roles:
            raise CliError(f"--channels: {exc}") from None
        rec_names = str(exc).split("channels are: ", 1)[-1].rstrip(")")
        raise CliError(
            f"no --channels given and {path} does not name its roles; channels are: {rec_names}"
        ) from None
    return mapped.recording, mapped.data, mapped.info


def source_of(rec: Recording, path: str) -> dict[str, Any]:
    """The ``source`` block of the analysis document, as ``analyze --json`` writes it."""
    from devices.files.mapping import source_block

    return source_block(rec, path)
