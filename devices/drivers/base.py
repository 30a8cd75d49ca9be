"""The one small interface every source implements, and the registry of drivers.

A device is opened (which fixes its :class:`~dsp.contract.StreamInfo`), started, polled with
:meth:`Device.read` from one acquisition thread, stopped and closed. ``read`` never blocks for
long: it returns the samples that have arrived, or ``None``. A gap (samples the device lost)
shows as a jump in ``Chunk.start``; a consumer never sees the same index twice.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from dsp.contract import Chunk, StreamInfo


class DeviceError(RuntimeError):
    """A device problem worth one clear line to the user (wrong port, unplugged, ...)."""


@dataclass(frozen=True)
class Marker:
    """An event tied to a sample: a user mark, a trigger, or a simulator's ground truth."""

    index: int
    label: str


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

    def __enter__(self) -> Device:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.close()


_REGISTRY: dict[str, Callable[..., Device]] = {}
# Built-in drivers register themselves when imported; import them on first use of the registry
# so that a source is known however the program started.
_BUILTIN = (
    "devices.drivers.simulator",
    "devices.drivers.file_replay",
    "devices.drivers.serial_board",
    "devices.drivers.brainflow_board",
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
