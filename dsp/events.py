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
class RepsRejudged:
    """The reps that started before ``upto`` were judged again once a sound rest baseline was
    known (the stream began mid-activity): they replace every earlier record of those reps.
    A rep keeps its index where it is the same burst; one found only now gets a new index;
    one that does not stand (a product of the provisional baseline) is absent."""

    upto: int
    reps: tuple[RepResult, ...]
    #: the pipeline began here (settings changed mid-session): only the reps from ``since``
    #: to ``upto`` were judged again; the earlier ones are another pipeline's and stand
    since: int = 0


Event = (
    OnsetEvent | OffsetEvent | RepResult | RepEnded | RepsRejudged | GapEvent | ArtefactEvent
)

__all__ = [
    "ArtefactEvent",
    "Event",
    "GapEvent",
    "OffsetEvent",
    "OnsetEvent",
    "RepEnded",
    "RepResult",
    "RepsRejudged",
]
