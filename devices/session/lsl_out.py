"""fireorder's verdicts as an LSL marker stream, for LabRecorder or another lab tool. No Qt.

Off unless asked for (``--lsl-out``, the window's setting): while a :class:`VerdictOutlet`
exists, liblsl announces a string marker stream (default name ``fireorder-verdicts``, type
``Markers``, irregular rate, a stable ``source_id`` so LabRecorder picks it up again after
a restart) and sends one JSON object per rep when the rep is over (its final record):

``{"rep": 3, "final": true, "rejudged": false, "cued": null, "order": "glute_first", "lag_ms": 42.0,
"lag_ci_ms": [30.1, 55.2] | null, "lag_below_ms": null, "reason": "", "t_s": 12.34,
"start_lsl": ..., "end_lsl": ..., "onsets_lsl": {"glute_l": ..., ...},
"onset_ci_lsl": {"glute_l": [lo, hi]}, "left": {"lag_ms", "order", "lag_ci_ms"} | null,
"right": ... | null}``

``*_lsl`` are LSL times (this host's ``local_clock``) of the samples they name, so they
line up with every other stream LabRecorder writes; ``t_s`` is the rep's start in stream
time. The LSL timestamp of the marker itself is when it was sent. Reps re-judged once a sound
rest baseline is known (a stream that began mid-activity) are sent again with
``"rejudged": true``: they replace the earlier marker of the same ``rep``. ``cued`` is the
verdict given live where the final record differs from it (a rep cued lumbar-first while the
glutes seemed at rest whose glute onset, fitted later, came first or too near to tell).

:meth:`close` destroys the outlet (the stream disappears from the network).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from dsp.reps import RepResult

log = logging.getLogger(__name__)

DEFAULT_NAME = "fireorder-verdicts"
DEFAULT_EMG_NAME = "fireorder-emg"

#: the outlet is held open this long (s) after its last verdict, so that liblsl's sender
#: delivers the session's last reps to the inlets before the stream is withdrawn
LINGER_S = 0.2

#: stream index -> LSL time (s), or None while the stream's clock is not known yet
TimeOf = Callable[[int], float | None]


def verdict_message(rep: RepResult, fs: float, time_of: TimeOf, *, final: bool = True) -> str:
    """The JSON string sent for ``rep`` (see the module docstring)."""

    def lsl(index: int | None) -> float | None:
        if index is None:
            return None
        t = time_of(int(index))
        return None if t is None else round(t, 6)

    doc: dict[str, Any] = {
        "rep": rep.index + 1,
        "final": final,
        "rejudged": rep.rejudged,
        "cued": rep.cued,
        "order": rep.order,
        "lag_ms": rep.lag_ms,
        "lag_ci_ms": None if rep.lag_ci_ms is None else list(rep.lag_ci_ms),
        "lag_below_ms": rep.lag_below_ms,
        "reason": rep.reason,
        "t_s": round(rep.start / fs, 4),
        "start_lsl": lsl(rep.start),
        "end_lsl": lsl(rep.end),
        "onsets_lsl": {r.value: lsl(i) for r, i in rep.onsets.items()},
        "onset_ci_lsl": {r.value: [lsl(a), lsl(b)] for r, (a, b) in rep.onset_ci.items()},
        "left": rep.left.to_dict() if rep.left else None,
        "right": rep.right.to_dict() if rep.right else None,
    }
    return json.dumps(doc)


class VerdictOutlet:
    """The verdict marker stream (see the module docstring); exists until :meth:`close`."""

    def __init__(self, name: str = DEFAULT_NAME) -> None:
        import pylsl

        self.name = name
        self.sent = 0
        self._last_sent = 0.0
        info = pylsl.StreamInfo(
            name,
            "Markers",
            1,
            pylsl.IRREGULAR_RATE,
            pylsl.cf_string,
            # stable across restarts on this machine: LabRecorder re-links a known stream
            f"fireorder:{name}@{socket.gethostname()}",
        )
        info.desc().append_child_value("manufacturer", "fireorder")
        info.desc().append_child_value("content", "one JSON verdict per rep (see README)")
        self._outlet: Any = pylsl.StreamOutlet(info)
        log.info("LSL outlet %s open", name)

    @property
    def open(self) -> bool:
        return self._outlet is not None

    def send(self, message: str) -> None:
        outlet = self._outlet
        if outlet is None:
            return
        outlet.push_sample([message])
        self.sent += 1
        self._last_sent = time.monotonic()

    def close(self) -> None:
        outlet, self._outlet = self._outlet, None
        if outlet is not None:
            linger = self._last_sent + LINGER_S - time.monotonic()
            if linger > 0 and outlet.have_consumers():
                time.sleep(linger)
            del outlet  # liblsl withdraws the stream when its last reference goes
            log.info("LSL outlet %s closed after %d verdicts", self.name, self.sent)


class EmgOutlet:
    """The filtered EMG and the envelopes as one float stream (``--lsl-out-emg``): for each
    channel of the stream its band-passed signal (µV) then, after all of them, its envelope
    (µV RMS), at the stream's rate, each chunk stamped with the LSL time of its newest sample.
    Samples the source lost are NaN (the stream's index line has no holes)."""

    def __init__(self, name: str, channel_names: tuple[str, ...], fs: float) -> None:
        import pylsl

        self.name = name
        self.sent = 0
        n = len(channel_names)
        info = pylsl.StreamInfo(
            name, "EMG", 2 * n, fs, pylsl.cf_float32, f"fireorder:{name}@{socket.gethostname()}"
        )
        chans = info.desc().append_child("channels")
        for kind, unit in (("filtered", "microvolts"), ("envelope", "microvolts RMS")):
            for ch in channel_names:
                c = chans.append_child("channel")
                c.append_child_value("label", f"{ch} {kind}")
                c.append_child_value("unit", unit)
                c.append_child_value("type", "EMG" if kind == "filtered" else "envelope")
        info.desc().append_child_value("manufacturer", "fireorder")
        self._outlet: Any = pylsl.StreamOutlet(info)
        log.info("LSL outlet %s open (%d channels)", name, 2 * n)

    def send(self, filtered: Any, envelope: Any, t_last: float | None) -> None:
        import numpy as np

        outlet = self._outlet
        if outlet is None or not len(filtered):
            return
        rows = np.ascontiguousarray(np.hstack([filtered, envelope]), dtype=np.float32)
        if t_last is None:
            outlet.push_chunk(rows)
        else:
            outlet.push_chunk(rows, t_last)
        self.sent += len(rows)

    def close(self) -> None:
        outlet, self._outlet = self._outlet, None
        if outlet is not None:
            del outlet
            log.info("LSL outlet %s closed after %d samples", self.name, self.sent)


__all__ = ["DEFAULT_EMG_NAME", "DEFAULT_NAME", "EmgOutlet", "VerdictOutlet", "verdict_message"]
