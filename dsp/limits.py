"""The allowed range of every numeric setting, checked in one place: the settings' dataclass.

A ``Limit`` is declared once next to the field it bounds (``DspSettings.LIMITS``,
``Scale.LIMITS``, ...). The dataclass checks itself on construction, the CLI's argparse types
and the settings dialog's spin boxes take their ranges from the same ``Limit``, and stored
settings are read through it, so ``nan``, ``inf`` and absurd values are refused everywhere
with the setting's name and its range, and the three can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SettingError(ValueError):
    """A setting outside its range; the message names the setting and the range."""


@dataclass(frozen=True)
class Limit:
    """A finite closed range ``[lo, hi]`` (``(lo, hi]`` with ``low_open``), in ``unit``.

    ``integer`` settings take whole numbers only; ``off`` is a value outside the range that
    means "disabled" (e.g. a notch of 0 Hz).
    """

    lo: float
    hi: float
    unit: str = ""
    low_open: bool = False
    integer: bool = False
    off: float | None = None

    def span(self) -> str:
        """The range as a user reads it: ``0.5 to 50 SD`` (``, or 0 for off``)."""
        unit = f" {self.unit}" if self.unit else ""
        text = f"{'more than ' if self.low_open else ''}{self.lo:g} to {self.hi:g}{unit}"
        return text if self.off is None else f"{text}, or {self.off:g} for off"

    def contains(self, value: float) -> bool:
        if self.off is not None and value == self.off:
            return True
        above = self.lo < value if self.low_open else self.lo <= value
        return above and value <= self.hi  # (false for nan: every comparison with it is)

    def parse(self, name: str, value: Any) -> float | int:
        """``value`` (a number or its text) as this setting's type, or SettingError."""
        if isinstance(value, bool):  # a stored true/false is not a number of anything
            raise SettingError(f"{name} = {value!r} is not a number: give {self.span()}")
        try:
            x = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            kind = "a whole number" if self.integer else "a number"
            raise SettingError(f"{name} = {value!r} is not {kind}: give {self.span()}") from None
        if not self.contains(x):
            shown = value.strip() if isinstance(value, str) else f"{x:g}"
            raise SettingError(f"{name} = {shown} is out of range: give {self.span()}")
        if self.integer:
            if not math.isfinite(x) or x != int(x):
                raise SettingError(f"{name} = {value!r} is not a whole number: give {self.span()}")
            return int(x)
        return x


def check_fields(obj: object, limits: Mapping[str, Limit]) -> None:
    """SettingError for the first field of ``obj`` outside its limit (others pass)."""
    for name, limit in limits.items():
        value = getattr(obj, name)
        if isinstance(value, tuple | list):  # per-channel values: each one
            for v in value:
                limit.parse(name, v)
        else:
            limit.parse(name, value)
