"""The result of reading a file, and the one error type readers raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from dsp.contract import MAX_FS


class ReaderError(ValueError):
    """A file that cannot be read, as one clear user-facing line."""


class FormatError(ReaderError):
    """Raised inside a parser with the reason only; ``read_recording`` adds the file name."""


@dataclass(frozen=True)
class Annotation:
    """A timed event from the file (EDF+ annotation, trigger, ...)."""

    onset_s: float
    duration_s: float
    text: str


@dataclass(frozen=True)
class Recording:
    """A whole recording in memory.

    ``data`` is float64 ``(n_samples, n_channels)`` in microvolts for every channel whose
    unit was a voltage (or a BITalino EMG sensor); other channels (a trigger ``Status`` word,
    raw ``counts``, unknown units) are kept as found. Rows of NaN stand for samples the source
    lost, so that row index == sample index. The array is read-only.
    """

    path: str
    format: str
    fs: float
    channel_names: tuple[str, ...]
    data: NDArray[np.float64]
    units: tuple[str, ...]
    annotations: tuple[Annotation, ...] = ()
    roles: dict[str, str] = field(default_factory=dict)
    start_time: datetime | None = None

    def __post_init__(self) -> None:
        arr = np.ascontiguousarray(self.data, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(self.channel_names):
            raise ValueError(
                f"data shape {arr.shape} does not match {len(self.channel_names)} channels"
            )
        if len(self.units) != len(self.channel_names):
            raise ValueError("one unit per channel")
        if not 0 < self.fs <= MAX_FS:  # (false for nan) a lying header or time column
            raise FormatError(
                f"sampling rate {self.fs:.4g} Hz is not plausible (at most {MAX_FS:g} Hz): "
                "the file's header or time column is wrong"
            )
        arr.flags.writeable = False
        object.__setattr__(self, "data", arr)
        object.__setattr__(self, "channel_names", tuple(self.channel_names))
        object.__setattr__(self, "units", tuple(self.units))
        object.__setattr__(self, "annotations", tuple(self.annotations))

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def index_of(self, name: str) -> int:
        """Column of channel ``name`` (exact match); ``ReaderError`` if absent."""
        try:
            return self.channel_names.index(name)
        except ValueError:
            raise ReaderError(
                f"unknown channel {name!r} (available: {', '.join(self.channel_names)})"
            ) from None
