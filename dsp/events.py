"""Events the pipeline emits, in the order of the sample at which they became known."""

from __future__ import annotations

from dataclasses import dataclass

from dsp.onset import OffsetEvent, OnsetEvent
from dsp.reps import RepEnded, RepResult


@dataclass(frozen=True)
class GapEvent:
    """Samples ``[start, start + length)`` never arrived (or were NaN in a file)."""

    start: int
    length: int


@dataclass(frozen=True)
class ArtefactEvent:
    channel: int
    start: int
    stop: int
    kind: str  # "flat" | "clip"


Event = OnsetEvent | OffsetEvent | RepResult | RepEnded | GapEvent | ArtefactEvent

__all__ = [
    "ArtefactEvent",
    "Event",
    "GapEvent",
    "OffsetEvent",
    "OnsetEvent",
    "RepEnded",
    "RepResult",
]
