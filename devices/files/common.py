"""Helpers shared by the readers: units, sampling-rate checks, channel names, roles."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence

from dsp.contract import Role

from .model import FormatError

log = logging.getLogger(__name__)

# Factor from a voltage unit to microvolts. Keys are lower-case; both micro signs appear in
# real files (U+00B5 MICRO SIGN from Latin-1 tools, U+03BC GREEK MU from Unicode ones).
_TO_MICROVOLTS: dict[str, float] = {
    "uv": 1.0,
    "\u00b5v": 1.0,
    "\u03bcv": 1.0,
    "microvolt": 1.0,
    "microvolts": 1.0,
    "nv": 1e-3,
    "mv": 1e3,
    "millivolt": 1e3,
    "millivolts": 1e3,
    "v": 1e6,
    "volt": 1e6,
    "volts": 1e6,
}

USER_UNITS = ("uV", "mV", "V")
FS_TOLERANCE = 0.01  # a given --fs may differ from the file's rate by this fraction


def microvolt_factor(unit: str) -> float | None:
    """Factor that turns values in ``unit`` into microvolts, or None if not a voltage."""
    return _TO_MICROVOLTS.get(unit.strip().lower())


def check_user_units(units: str | None) -> str | None:
    if units is None:
        return None
    if microvolt_factor(units) is None:
        raise FormatError(f"unknown units {units!r} (use one of: {', '.join(USER_UNITS)})")
    return units


def check_user_fs(fs: float | None) -> float | None:
    if fs is None:
        return None
    try:
        value = float(fs)
    except (TypeError, ValueError):
        raise FormatError(f"sampling rate {fs!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise FormatError(f"sampling rate must be positive, got {fs}")
    return value


def reconcile_fs(file_fs: float, user_fs: float | None, what: str) -> float:
    """The file's rate wins; a given rate that disagrees by more than 1% is an error."""
    if user_fs is not None and abs(user_fs - file_fs) > FS_TOLERANCE * file_fs:
        raise FormatError(f"the set fs ({user_fs:g} Hz) disagrees with the {what} ({file_fs:g} Hz)")
    return file_fs


def clip(text: object, limit: int = 40) -> str:
    """A short, single-line repr of a value for an error message."""
    s = repr(str(text))
    return s if len(s) <= limit else s[: limit - 4] + "...'"


def one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# Characters that break a line or move the cursor on a terminal (C0/C1 controls, Unicode line
# and paragraph separators): a channel name holding one would split the one-line error
# messages and the tables that print it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_name(name: str) -> str:
    """A channel name on one line: control characters and line breaks become a space."""
    return _CONTROL.sub(" ", name).strip()


def unique_names(names: Iterable[str], fallback: str = "ch") -> tuple[str, ...]:
    """Non-empty, unique, single-line channel names (StreamInfo requires the first two)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(names, start=1):
        name = clean_name(raw) or f"{fallback}{i}"
        base, k = name, 2
        while name in seen:
            name = f"{base}#{k}"
            k += 1
        if name != raw.strip():
            log.warning("channel %d named %r renamed to %r", i, raw, name)
        seen.add(name)
        out.append(name)
    return tuple(out)


_ROLE_VALUES = {r.value: r for r in Role}
# "glute_l=EMG1, lumbar_l = EMG 3" or "glute_l:EMG1; ..." (after a "roles" keyword).
_ROLES_LINE = re.compile(r"^\s*#?\s*(?:fireorder[\s_-]*)?roles?\s*[:=]\s*(?P<body>.+)$", re.I)
_ROLE_ENTRY = re.compile(r"^\s*([A-Za-z_]+)\s*[=:]\s*(\S.*?)\s*$")


def role_of_label(label: str) -> str | None:
    """The role a channel label names outright (``"glute_l"``, ``"GLUTE_L"``), else None."""
    role = _ROLE_VALUES.get(label.strip().lower())
    return role.value if role else None


def parse_roles_line(line: str) -> dict[str, str] | None:
    """Parse ``# roles: glute_l=EMG1, lumbar_l=EMG3`` (None if the line is not one)."""
    m = _ROLES_LINE.match(line)
    if not m:
        return None
    roles: dict[str, str] = {}
    for part in re.split(r"[,;]", m.group("body")):
        entry = _ROLE_ENTRY.match(part)
        role = role_of_label(entry.group(1)) if entry else None
        if entry is None or role is None:
            if part.strip():
                log.warning("ignoring unreadable role entry %r", part.strip())
            continue
        roles[role] = entry.group(2).strip()
    return roles


def roles_from_labels(
    names: Sequence[str], declared: dict[str, str] | None = None
) -> dict[str, str]:
    """Roles the file states: declared ``role -> channel`` pairs, then labels named as roles."""
    roles: dict[str, str] = {}
    for role, channel in (declared or {}).items():
        if channel in names:
            roles[role] = channel
        else:
            log.warning("file maps role %s to unknown channel %r; ignored", role, channel)
    for name in names:
        named = role_of_label(name)
        if named and named not in roles:
            roles[named] = name
    return roles


#: reading a file holds its samples as float64, then the mapped (role) copy and the analysis'
#: own arrays: about three times the decoded size at the peak
WORKING_COPIES = 3


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux MemAvailable), if known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def check_memory(n_values: int, what: str) -> None:
    """Refuse, in one line, a file whose samples would not fit in memory (a sparse file or a
    header promising billions of samples), before anything is allocated."""
    need = n_values * 8 * WORKING_COPIES
    free = available_memory()
    if free is not None and need > free:
        raise FormatError(
            f"{what} holds {n_values / 1e6:.0f} M samples: reading them needs about "
            f"{need / 2**30:.1f} GiB, more than the {free / 2**30:.1f} GiB of memory free"
        )
