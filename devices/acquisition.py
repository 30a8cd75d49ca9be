"""The acquisition loop: device -> pipeline -> consumers. No Qt.

One :class:`Acquisition` owns a device and the pipeline for its stream. ``step`` reads what the
device has and runs it through the pipeline; ``run`` loops until a duration, a stop request or
the end of the source. The GUI runs it on a worker thread; the CLI runs it inline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from devices.base import Device, Marker
from dsp.contract import Chunk, StreamInfo
from dsp.pipeline import Pipeline, Processed
from dsp.settings import DspSettings

log = logging.getLogger(__name__)

# Called with the raw chunk and what the pipeline made of it; the chunk is None for the
# events that settle the stream at its end.
Consumer = Callable[[Chunk | None, Processed], None]


@dataclass
class AcquisitionStats:
    chunks: int = 0
    samples: int = 0
    gaps: int = 0
    lost_samples: int = 0
    busy_s: float = 0.0  # time spent in the pipeline


class Acquisition:
    def __init__(
        self,
        device: Device,
        settings: DspSettings | None = None,
        *,
        display: bool = True,
        poll_s: float = 0.005,
    ) -> None:
        self.device = device
        self.settings = settings or DspSettings()
        self.display = display
        self.poll_s = poll_s
        self.consumers: list[Consumer] = []
        self.markers: list[Marker] = []
        self.stats = AcquisitionStats()
        self.info: StreamInfo | None = None
        self.pipeline: Pipeline | None = None
        self._stop = threading.Event()

    def open(self) -> StreamInfo:
        self.info = self.device.open()
        self.info.validate_roles()
        self.pipeline = Pipeline(self.info, self.settings, display=self.display)
        return self.info

    def stop(self) -> None:
        self._stop.set()

    def step(self) -> Processed | None:
        """Process whatever the device has now; ``None`` when it had nothing."""
        assert self.pipeline is not None, "open() first"
        chunk = self.device.read()
        self.markers.extend(self.device.drain_markers())
        if chunk is None:
            return None
        t0 = time.perf_counter()
        out = self.pipeline.process(chunk)
        self.stats.busy_s += time.perf_counter() - t0
        self.stats.chunks += 1
        self.stats.samples = self.pipeline.samples
        self.stats.gaps = self.pipeline.gaps
        self.stats.lost_samples = self.pipeline.lost_samples
        for consumer in self.consumers:
            consumer(chunk, out)
        return out

    def run(self, duration_s: float | None = None, *, until_exhausted: bool = False) -> None:
        """Loop until ``duration_s`` of stream time, ``stop()``, or (if ``until_exhausted``)
        the first empty read of a source that delivers as fast as possible."""
        if self.pipeline is None:
            self.open()
        assert self.info is not None and self.pipeline is not None
        limit = None if duration_s is None else round(duration_s * self.info.fs)
        self.device.start()
        try:
            while not self._stop.is_set():
                out = self.step()
                if out is None:
                    if until_exhausted:
                        break
                    time.sleep(self.poll_s)
                    continue
                if (
                    limit is not None
                    and self.pipeline.samples + self.pipeline.lost_samples >= limit
                ):
                    break
        finally:
            self.device.stop()
        tail = self.pipeline.finish()
        if tail:
            done = Processed(self.pipeline.next_index, None, None, tail)
            for consumer in self.consumers:
                consumer(None, done)

    def close(self) -> None:
        self.device.close()
