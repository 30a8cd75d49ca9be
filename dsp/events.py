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


@dataclass(frozen=True)
class RepRejudged:
    """Rep ``index`` judged again once a sound rest baseline was known (the stream began
    mid-activity). ``result`` is its new final record (``rejudged`` set), or None when the
    rep does not stand (it was a product of the provisional baseline). An index the stream
    has not used before is a rep found only now."""

    index: int
    result: RepResult | None
    upto: int  # the reps starting before this sample index were judged again


Event = (
    OnsetEvent | OffsetEvent | RepResult | RepEnded | RepRejudged | GapEvent | ArtefactEvent
)

__all__ = [
    "ArtefactEvent",
    "Event",
    "GapEvent",
    "OffsetEvent",
    "OnsetEvent",
    "RepEnded",
    "RepRejudged",
    "RepResult",
]
