"""The built-in simulator as a source of chunks.

The signal model and its truth are :mod:`devices.simulation.model`.

``realtime=True`` paces by the clock; ``realtime=False`` delivers as fast as it is read, which
is what tests, ``--fast`` and the benchmarks use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from devices.drivers.base import Device, DeviceError, Marker, register
from devices.simulation.model import (
    EmgSimulator,
    SimConfig,
    SimConfigError,
    Truth,
    _n_samples,
)
from devices.simulation.model import preset as _preset
from dsp.contract import Chunk, StreamInfo

log = logging.getLogger(__name__)

LIVE_TRUTH_HORIZON_S = 600.0  # SimulatorDevice.truth() covers the last ten minutes


class SimulatorDevice(Device):
    """The simulator as a :class:`~devices.drivers.base.Device`.

    ``realtime=True`` paces by ``clock`` (monotonic): each ``read`` returns every sample due,
    in whole packets of ``packet_ms``. ``realtime=False`` returns ``chunk_ms`` per call as
    fast as possible (shorter when a dropout cuts the chunk) and ``None`` once
    ``duration_s`` is reached. Dropped samples are never delivered: ``Chunk.start`` jumps.
    Extra keyword arguments override :class:`SimConfig` fields (e.g. ``fs=1000, seed=3``).
    """

    name = "simulator"

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        preset: str | None = None,
        realtime: bool = True,
        chunk_ms: float = 20.0,
        packet_ms: float = 10.0,
        max_chunk_s: float = 1.0,
        duration_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> None:
        try:
            if config is not None and preset is not None:
                raise SimConfigError("give either a config or a preset, not both")
            base = config or (_preset(preset) if preset else SimConfig())
            self.config = base.replace(**overrides) if overrides else base
            if duration_s is not None:
                _n_samples(self.config, duration_s)
            if not chunk_ms > 0 or not packet_ms > 0 or not max_chunk_s > 0:
                raise SimConfigError("chunk, packet and max chunk sizes must be > 0")
        except (SimConfigError, TypeError) as exc:
            raise DeviceError(f"simulator: {exc}") from None
        self.realtime = realtime
        self.duration_s = duration_s
        self._clock = clock
        fs = self.config.fs
        self._chunk_n = max(1, round(chunk_ms / 1000 * fs))
        self._packet_n = max(1, round(packet_ms / 1000 * fs))
        self._max_n = max(self._packet_n, round(max_chunk_s * fs))
        self._total = _n_samples(self.config, duration_s) if duration_s is not None else None
        self._sim: EmgSimulator | None = None
        self._running = False
        self._t0 = 0.0
        self._pos = 0
        self._markers: list[Marker] = []
        self._rest_wanted = False  # set by any thread, applied by read() between chunks

    def open(self) -> StreamInfo:
        self._sim = EmgSimulator(self.config)
        # A live source's truth is checked over the last seconds, never hours back: its reps
        # are kept ten minutes, not an hour (1 MB of them in a 4-hour session, issue 11).
        self._sim.truth_horizon_s = min(self._sim.truth_horizon_s, LIVE_TRUTH_HORIZON_S)
        self._pos = 0
        self._markers = []
        log.info("simulator open: %s", self._sim.info.channel_names)
        return self._sim.info

    @property
    def info(self) -> StreamInfo:
        return self._require().info

    def start(self) -> None:
        self._require()
        self._t0 = self._clock()
        self._running = True

    def stop(self) -> None:
        self._running = False

    def close(self) -> None:
        self._running = False
        self._sim = None

    @property
    def finished(self) -> bool:
        return self._total is not None and self._pos >= self._total

    def _require(self) -> EmgSimulator:
        if self._sim is None:
            raise DeviceError("simulator is not open")
        return self._sim

    def _target(self) -> int:
        if self.realtime:
            due = int((self._clock() - self._t0) * self.config.fs)
            target = min(due // self._packet_n * self._packet_n, self._pos + self._max_n)
        else:
            target = self._pos + self._chunk_n
        return min(target, self._total) if self._total is not None else target

    def request_rest(self, on: bool) -> bool:
        """The simulated athlete relaxes: no bursts from the next chunk on (see
        :meth:`EmgSimulator.set_rest`); ``False`` goes back to the reps."""
        self._rest_wanted = bool(on)
        return True

    def read(self) -> Chunk | None:
        if not self._running or self._sim is None:
            return None
        sim = self._sim
        if sim.resting != self._rest_wanted:
            sim.set_rest(self._rest_wanted)
        target = self._target()
        while self._pos < target:
            drops = sim.dropouts(self._pos, target)
            if drops and drops[0][0] <= self._pos:  # inside a run of lost samples
                skip_to = min(drops[0][0] + drops[0][1], target)
                sim.skip(skip_to - self._pos)
                self._advance(skip_to)
                if not self.realtime:  # a fresh fixed-size chunk after the gap
                    target = self._target()
                continue
            stop = min(target, drops[0][0]) if drops else target
            data = sim.generate(stop - self._pos)
            data.flags.writeable = False  # a fresh array: spare Chunk its defensive copy
            chunk = Chunk(
                data=data,
                start=self._pos,
                timestamp=self._clock() if self.realtime else stop / self.config.fs,
            )
            self._advance(stop)
            return chunk
        return None

    def _advance(self, stop: int) -> None:
        assert self._sim is not None
        self._markers.extend(self._sim.markers(self._pos, stop))
        self._pos = stop

    def drain_markers(self) -> list[Marker]:
        out, self._markers = self._markers, []
        return out

    def truth(self) -> Truth:
        """Ground truth for everything delivered (or skipped) so far."""
        return self._require().truth(self._pos)


register("simulator", SimulatorDevice)
