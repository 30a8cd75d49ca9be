"""The one small interface every source implements, and the registry of drivers.

A device is opened (which fixes its :class:`~dsp.contract.StreamInfo`), started, polled with
:meth:`Device.read` from one acquisition thread, stopped and closed. ``read`` never blocks for
long: it returns the samples that have arrived, or ``None``. A gap (samples the device lost)
shows as a jump in ``Chunk.start``; a consumer never sees the same index twice.

What a caller may ask of any device is declared here (``link_state``, ``finished``,
``counters``, ``replay``, ``request_rest``), so the session and the window never probe a driver with
``hasattr``. A source that replays a file also implements :class:`Replay`, its transport.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from dsp.contract import Chunk, Marker, StreamInfo


class DeviceError(RuntimeError):
    """A device problem worth one clear line to the user (wrong port, unplugged, ...)."""


class Device(abc.ABC):
    """Abstract source of chunks."""

    name: str = "device"

    @abc.abstractmethod
    def open(self) -> StreamInfo:
        """Acquire the resource and return the stream description."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def read(self) -> Chunk | None:
        """Return the samples available now (or ``None``); never blocks for long."""

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def drain_markers(self) -> list[Marker]:
        """Markers produced since the last call (default: none)."""
        return []

    @property
    def link_state(self) -> str | None:
        """The driver's own view of its link when it knows more than the session does
        (e.g. ``"disconnected"`` while a serial board reconnects); ``None`` if nothing to add."""
        return None

    @property
    def finished(self) -> bool:
        """True once a finite source (a file, a fixed-length simulation) has delivered all."""
        return False

    @property
    def counters(self) -> dict[str, int]:
        """What the driver counted on the wire (CRC errors, resyncs, reconnects...)."""
        return {}

    def replay(self) -> Replay | None:
        """The transport of a source that replays a recording; ``None`` for live devices."""
        return None

    def index_at(self, t: float) -> int | None:
        """The stream index of the sample taken at host time ``t`` (``time.monotonic``, which
        is ``pylsl.local_clock`` on Linux), for a source that knows its own sample times (an
        LSL stream's timestamps); ``None`` (the default) means the session maps times from
        chunk arrivals instead. Used to place external markers on the EMG timeline."""
        return None

    def request_rest(self, on: bool) -> bool:
        """Ask the source's athlete to relax (``on``) or to carry on; True if the source
        obeys it. A hardware amplifier cannot (the default: False, nothing happens) -- the
        person is told on screen instead; a simulated athlete can. Safe to call from any
        thread: a driver applies it between reads."""
        return False

    def __enter__(self) -> Device:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.close()


class Replay(abc.ABC):
    """Transport of a recording being replayed: the window's replay bar and the review use
    only this. Positions are sample indices of the file."""

    path: str
    #: the file's own annotations: (onset s, duration s, text)
    annotations: list[tuple[float, float, str]]

    @property
    @abc.abstractmethod
    def n_samples(self) -> int:
        """Length of the recording in samples."""

    @property
    @abc.abstractmethod
    def position(self) -> int:
        """Index of the next sample to be delivered."""

    @property
    @abc.abstractmethod
    def speed(self) -> float | None:
        """Replay speed (1 = real time); ``None`` replays as fast as it is read."""

    @property
    @abc.abstractmethod
    def paused(self) -> bool: ...

    @property
    @abc.abstractmethod
    def at_end(self) -> bool:
        """True when every sample has been delivered (a seek makes it False again)."""

    @abc.abstractmethod
    def play(self) -> None: ...

    @abc.abstractmethod
    def pause(self) -> None: ...

    @abc.abstractmethod
    def seek(self, index: int) -> None:
        """Continue from ``index``; consumers re-settle (see ``LiveSession.seek``)."""

    @abc.abstractmethod
    def set_speed(self, speed: float | None) -> None: ...

    @abc.abstractmethod
    def samples(self) -> NDArray[np.float64]:
        """The whole recording (rows = samples, columns as in the stream's info), for the
        offline passes of review (rep index, overview); read-only."""


_REGISTRY: dict[str, Callable[..., Device]] = {}
# Built-in drivers register themselves when imported; import them on first use of the registry
# so that a source is known however the program started.
_BUILTIN = (
    "devices.drivers.simulator",
    "devices.drivers.file_replay",
    "devices.drivers.serial_board",
    "devices.drivers.brainflow_board",
    "devices.drivers.lsl_source",  # (pylsl is loaded when a stream is opened, not here)
)


def _load_builtin() -> None:
    for module in _BUILTIN:
        importlib.import_module(module)  # cached by Python after the first time


def register(name: str, factory: Callable[..., Device]) -> None:
    _REGISTRY[name] = factory


def create(name: str, **kwargs: object) -> Device:
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise DeviceError(
            f"unknown source {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None
    return factory(**kwargs)


def registered() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


__all__ = ["Device", "DeviceError", "Marker", "Replay", "create", "register", "registered"]
