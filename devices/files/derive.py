"""Pick channels from a recording by name, or derive bipolar ones ("A-B" = A minus B)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from dsp.contract import Role

from .model import ReaderError, Recording


def _lookup(rec: Recording, name: str) -> str | None:
    """Exact name, else a unique case-insensitive match."""
    if name in rec.channel_names:
        return name
    folded = [c for c in rec.channel_names if c.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def parse_spec(rec: Recording, spec: str) -> tuple[str, str | None]:
    """``(channel, None)`` for a plain channel, ``(a, b)`` for a bipolar pair.

    A whole-name match wins over splitting at '-', since names like ``EMG-L`` exist. If more
    than one split names two existing channels the spec is ambiguous.
    """
    text = spec.strip()
    if not text:
        raise ReaderError("empty channel name")
    whole = _lookup(rec, text)
    if whole is not None:
        return whole, None
    pairs: list[tuple[str, str]] = []
    for pos in (i for i, ch in enumerate(text) if ch == "-"):
        a, b = _lookup(rec, text[:pos].strip()), _lookup(rec, text[pos + 1 :].strip())
        if a is not None and b is not None:
            pairs.append((a, b))
    if len(pairs) > 1:
        options = " or ".join(f"'{a}' minus '{b}'" for a, b in pairs)
        raise ReaderError(f"channel {spec!r} is ambiguous: {options}")
    if not pairs:
        raise ReaderError(
            f"unknown channel {spec!r} (available: {', '.join(rec.channel_names)}; bipolar: A-B)"
        )
    a, b = pairs[0]
    if a == b:
        raise ReaderError(f"bipolar {spec!r} subtracts a channel from itself")
    return a, b


def resolve_channel(rec: Recording, spec: str) -> NDArray[np.float64]:
    """The samples of channel ``spec``, or of the bipolar derivation ``A-B``, as a new array."""
    a, b = parse_spec(rec, spec)
    col_a = rec.data[:, rec.channel_names.index(a)]
    if b is None:
        return col_a.copy()
    return col_a - rec.data[:, rec.channel_names.index(b)]


def spec_name(rec: Recording, spec: str) -> str:
    """Canonical name of a spec: the channel name, or ``"A-B"``."""
    a, b = parse_spec(rec, spec)
    return a if b is None else f"{a}-{b}"


def derive_channels(
    rec: Recording, specs: Mapping[str, str]
) -> tuple[NDArray[np.float64], list[str]]:
    """``{role: spec}`` to an ``(n_samples, k)`` array and the k canonical channel names.

    Columns follow the mapping's order. A role given twice (``glute_l`` and ``GLUTE_L``) or one
    signal used for two roles is an error: it is almost always a typo on the command line.
    """
    if not specs:
        raise ReaderError("no channels selected")
    seen_roles: dict[str, str] = {}
    seen_specs: dict[tuple[str, str | None], str] = {}
    keys: list[tuple[str, str | None]] = []
    names: list[str] = []
    for role_text, spec in specs.items():
        role = role_text.strip().lower()
        if role not in {r.value for r in Role}:
            valid = ", ".join(r.value for r in Role)
            raise ReaderError(f"unknown role {role_text!r} (expected one of: {valid})")
        if role in seen_roles:
            raise ReaderError(f"role {role} is mapped twice ({seen_roles[role]!r}, {spec!r})")
        key = parse_spec(rec, spec)
        if key in seen_specs:
            raise ReaderError(f"{spec!r} is used for both {seen_specs[key]} and {role}")
        seen_roles[role] = spec
        seen_specs[key] = role
        keys.append(key)
        names.append(key[0] if key[1] is None else f"{key[0]}-{key[1]}")
    # One pass over the (samples, channels) array rather than a copy per column and a stack.
    index = rec.channel_names.index
    if all(b is None for _, b in keys):
        return np.take(rec.data, [index(a) for a, _ in keys], axis=1), names
    out = np.empty((rec.data.shape[0], len(keys)))
    for j, (a, b) in enumerate(keys):
        if b is None:
            out[:, j] = rec.data[:, index(a)]
        else:
            np.subtract(rec.data[:, index(a)], rec.data[:, index(b)], out=out[:, j])
    return out, names
