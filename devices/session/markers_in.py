"""An LSL marker stream as a feed of timed labels, for the session's timeline. No Qt.

A lab's trigger box, force plate or stimulus program publishes markers over Lab Streaming
Layer: irregular-rate samples, usually one string each ("rep start", "stim 3"), sometimes
numbers. :class:`MarkerFeed` subscribes to one such stream by name on its own thread and hands
each marker over with its time on *this* host's clock (the outlet's timestamp plus the
inlet's clock offset, ``time_correction``); the session controller turns that time into a
sample index of the EMG stream and a mark on the timeline.

Everything that can wait on the network (resolving the stream, the first clock offset) runs
on the feed's thread, each wait bounded; the caller only polls. An outlet that goes away is
one notice ("lost; waiting for it"), then the feed looks for it again and goes on when it
comes back.

Importing this module does not load liblsl; pylsl is imported when a feed starts or streams
are listed (the process must have ``LSLAPICFG`` set by then where the network is not wanted).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: the clock offset is measured again this often (s): it drifts with the two clocks
CLOCK_CHECK_S = 5.0


@dataclass(frozen=True)
class MarkerStream:
    """An LSL stream that can carry markers, as the picker lists it."""

    name: str
    type: str
    channels: int
    format: str  # "string", "float32", "int32", ...
    host: str
    source_id: str

    def describe(self) -> str:
        kind = self.type or "no type"
        return f"{self.name} ({kind}, {self.format}, {self.channels} ch) on {self.host}"


@dataclass(frozen=True)
class ExternalMarker:
    """A marker received: its label and the host time (``time.monotonic``) it stands for."""

    t: float
    label: str


_FORMATS = {
    1: "float32",
    2: "double64",
    3: "string",
    4: "int32",
    5: "int16",
    6: "int8",
    7: "int64",
}


def _stream_of(info: Any) -> MarkerStream:
    return MarkerStream(
        name=info.name(),
        type=info.type(),
        channels=info.channel_count(),
        format=_FORMATS.get(info.channel_format(), "unknown"),
        host=info.hostname(),
        source_id=info.source_id(),
    )


def is_marker_stream(stream: MarkerStream, nominal_srate: float) -> bool:
    """String streams, and numeric streams of irregular rate (event codes), are markers."""
    return stream.format == "string" or nominal_srate == 0


def list_marker_streams(wait_s: float = 1.0) -> list[MarkerStream]:
    """The marker streams visible now (blocks ``wait_s``: call it off the GUI thread)."""
    import pylsl

    from devices.drivers.lsl_source import resolve

    found = []
    for info in resolve(pylsl, None, wait_s, first=False):
        stream = _stream_of(info)
        if is_marker_stream(stream, info.nominal_srate()):
            found.append(stream)
    return sorted(set(found), key=lambda s: (s.name.lower(), s.host, s.source_id))


def _label(sample: Sequence[Any]) -> str:
    """A sample as one label: the string (channels joined by '/'), or the number(s)."""
    parts = [v if isinstance(v, str) else f"{v:g}" for v in sample]
    return "/".join(p.strip() for p in parts if str(p).strip())


class MarkerFeed:
    """Subscribes to the LSL marker stream called ``name`` (see the module docstring).

    :meth:`poll` returns the markers received since the last call, :meth:`notices` the
    status lines to show once (found, lost, back). ``received`` counts every marker.
    """

    def __init__(
        self,
        name: str,
        *,
        resolve_s: float = 1.0,
        pull_s: float = 0.02,
        clock_timeout_s: float = 1.0,
        source_id: str | None = None,
    ) -> None:
        if not name.strip():
            raise ValueError("a marker stream needs a name")
        self.name = name.strip()
        #: the outlet this feed belongs to: given (a stream picked in the window), or that of
        #: the first one it connects to. After an outage only that outlet is taken back -- a
        #: second stream of the same name (another station's trigger box) never is.
        self.source_id = (source_id or "").strip() or None
        self.resolve_s = resolve_s
        self.pull_s = pull_s  # the longest a marker waits in the inlet before it is handed on
        self.clock_timeout_s = clock_timeout_s
        self.received = 0
        self.state = "idle"  # idle | searching | connected | lost | stopped
        self.offset = 0.0  # outlet clock -> this host's clock (s), as last measured
        self.connected = threading.Event()  # set while an inlet is open (tests wait on it)
        self._markers: collections.deque[ExternalMarker] = collections.deque(maxlen=100_000)
        self._notices: collections.deque[str] = collections.deque(maxlen=100)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_connected = False  # a connection after a loss is "back"
        self._dead: set[str] = set()  # uids of outlets that went away

    # -- the caller's side -----------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self.state = "searching"
        self._thread = threading.Thread(target=self._run, name=f"lsl-markers-{self.name}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Close the inlet and end the thread (each of its waits ends within ~1 s)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=timeout)
            if thread.is_alive():
                # (it ends by itself within liblsl's timeout; nothing for the user to do)
                log.debug("marker feed %s: thread still waiting on liblsl", self.name)
        self.state = "stopped"
        self.connected.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll(self) -> list[ExternalMarker]:
        out = []
        while self._markers:
            out.append(self._markers.popleft())
        return out

    def notices(self) -> list[str]:
        out = []
        while self._notices:
            out.append(self._notices.popleft())
        return out

    def status(self) -> str:
        """One line for a status bar or the picker."""
        n = self.received
        count = f"{n} marker{'s' if n != 1 else ''} received"
        if self.state == "connected":
            return f"{self.name}: {count}"
        if self.state == "lost":
            return f"{self.name}: lost, waiting for it to come back ({count})"
        if self.state == "searching":
            return f"{self.name}: looking for the stream ({count})"
        return f"{self.name}: {self.state} ({count})"

    # -- the feed's thread -------------------------------------------------------------------
    def _tell(self, text: str) -> None:
        log.info("%s", text)
        self._notices.append(text)

    def _run(self) -> None:
        try:
            import pylsl
            from pylsl.util import LostError

            from devices.drivers.lsl_source import predicate, resolve
        except Exception as exc:  # a broken liblsl: one line, the session goes on
            self.state = "stopped"
            self._tell(f"marker stream {self.name}: LSL unavailable ({exc})")
            return
        told_missing = False
        self._was_connected = False
        while not self._stop.is_set():
            try:
                # the whole wait, not the first answer: a second stream of this name is
                # seen, not hidden behind the first (and the LSL source's resolver keeps to
                # its timeout, where liblsl's one-shot resolves overran it by seconds)
                found = resolve(pylsl, predicate(self.name, None, None), self.resolve_s, False)
            except Exception as exc:
                self._tell(f"marker stream {self.name}: cannot look for it ({exc})")
                self._stop.wait(self.resolve_s)
                continue
            # liblsl's resolver may still answer for an outlet that is gone; a restarted
            # outlet has a new uid, so the dead one is skipped (connecting to it gives nothing)
            found = [f for f in found if f.uid() not in self._dead]
            if self.source_id is not None:
                found = [f for f in found if f.source_id() == self.source_id]
            if not found:
                if not told_missing and not self._was_connected:
                    told_missing = True
                    self._tell(f"marker stream {self.name} not found yet; still looking")
                self._stop.wait(min(0.1, self.resolve_s))
                continue
            if self.source_id is None:
                chosen = found[0]
                sid = chosen.source_id()
                if len(found) > 1:
                    self._tell(
                        f"{len(found)} marker streams are called {self.name}; using the one "
                        f"on {chosen.hostname()}" + (f" (source_id {sid})" if sid else "")
                    )
                self.source_id = sid or None  # (an outlet without one: matched by name only)
                found = [chosen]
            try:
                self._stream(pylsl, found[0])
            except LostError:  # gone while connecting: as lost while streaming
                self._lost(found[0])
            except Exception as exc:  # not liblsl's "lost": say it, look again
                log.debug("marker feed %s", self.name, exc_info=exc)
                self.connected.clear()
                self.state = "lost"
                self._tell(f"marker stream {self.name} failed ({exc}); looking for it again")
                self._stop.wait(self.resolve_s)
        self.connected.clear()

    def _lost(self, info: Any) -> None:
        self._dead.add(info.uid())
        self.connected.clear()
        if self.state != "lost":
            self.state = "lost"
            self._tell(f"marker stream {self.name} lost; waiting for it to come back")

    def _stream(self, pylsl: Any, info: Any) -> None:
        from pylsl.util import LostError

        # recover=False: a vanished outlet raises LostError (one notice), instead of liblsl
        # reconnecting behind our back without a word
        inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False)
        try:
            inlet.open_stream(timeout=self.resolve_s)
            self._measure_offset(inlet)
            checked = time.monotonic()
            self.state = "connected"
            self.connected.set()
            again, self._was_connected = self._was_connected, True
            self._tell(f"marker stream {self.name} {'back' if again else 'connected'}")
            while not self._stop.is_set():
                try:
                    samples, stamps = inlet.pull_chunk(timeout=self.pull_s)
                except LostError:
                    self._lost(info)
                    return
                for sample, stamp in zip(samples, stamps, strict=False):
                    label = _label(sample)
                    if label:
                        self._markers.append(ExternalMarker(float(stamp) + self.offset, label))
                        self.received += 1
                if time.monotonic() - checked >= CLOCK_CHECK_S:
                    checked = time.monotonic()
                    self._measure_offset(inlet)
        finally:
            self.connected.clear()
            try:
                inlet.close_stream()
            except Exception as exc:
                log.debug("marker inlet close: %s", exc)

    def _measure_offset(self, inlet: Any) -> None:
        """The outlet's clock against ours; the last value is kept when the outlet does not
        answer in time (the same machine: about 0)."""
        try:
            self.offset = float(inlet.time_correction(timeout=self.clock_timeout_s))
        except Exception as exc:  # TimeoutError or a lost outlet (the pull will notice)
            log.debug("marker feed %s: no clock offset (%s)", self.name, exc)


__all__ = ["ExternalMarker", "MarkerFeed", "MarkerStream", "list_marker_streams"]
