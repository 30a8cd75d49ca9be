"""The lab together over LSL: EMG from an LSL outlet, a trigger box's markers from another,
fireorder's verdicts out to a third party -- all on one clock.

The other LSL tests take one part at a time (a simulator under the markers, a file under the
verdict outlet); here the marker placement has to go through the LSL source's own sample
times (``Device.index_at``) and the verdicts' ``*_lsl`` times back through them, so an error
in either mapping shows as milliseconds off.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices.drivers.lsl_source import LslSource
from devices.files import read_recording
from devices.session.controller import SessionController
from dsp.contract import Role
from tests.lsl_env import lsl_loopback  # noqa: F401 (the fixture, used by pytestmark)

pytestmark = pytest.mark.usefixtures("lsl_loopback")

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_lumbar_first.bdf"
SECONDS = 9.0  # three reps of the demo (at 1.1, 3.8 and 6.9 s), decided by 8.5 s
#: stream indices of the trigger box's events, and how late the box sends each one
TRIGGERS = {5000: 0.30, 10_400: 0.05, 16_200: 0.60}


def unique(stem: str) -> str:
    return f"fireorder-test-{stem}-{uuid.uuid4().hex[:8]}"


def test_emg_markers_and_verdicts_over_lsl_share_one_clock(tmp_path: Path) -> None:
    import pylsl

    rec = read_recording(str(DEMO))
    fs = rec.fs
    labels = [f"EMG {i + 1}" for i in range(rec.data.shape[1])]
    emg_name, box_name, out_name = unique("emg"), unique("box"), unique("verdicts")
    info = pylsl.StreamInfo(emg_name, "EMG", len(labels), fs, "float32", emg_name)
    chans = info.desc().append_child("channels")
    for label in labels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "microvolts")
    emg = pylsl.StreamOutlet(info, 20)
    box = pylsl.StreamOutlet(
        pylsl.StreamInfo(box_name, "Markers", 1, pylsl.IRREGULAR_RATE, "string", box_name)
    )

    roles = {name: labels[i] for i, name in enumerate(rec.channel_names)}
    ctl = SessionController(LslSource(emg_name, roles=roles), recordings_dir=tmp_path)
    ctl.open()
    assert ctl.info is not None and ctl.info.roles[Role.GLUTE_L] == 0
    assert ctl.set_lsl_out(True, out_name) is None
    ctl.attach_markers(box_name)
    path = ctl.start_recording()
    ctl.start(threaded=True)
    verdicts: list[dict[str, Any]] = []
    try:
        (found,) = pylsl.resolve_byprop("name", out_name, timeout=5)
        listener = pylsl.StreamInlet(found)
        listener.open_stream(timeout=5)
        assert emg.wait_for_consumers(10) and box.wait_for_consumers(10)
        time.sleep(0.3)  # (the source's start flushes what came before it: push after that)
        n = round(SECONDS * fs)
        data = np.ascontiguousarray(rec.data[:n], dtype=np.float32)
        t0 = pylsl.local_clock()
        pending = dict(TRIGGERS)
        pushed = 0
        while pushed < n:  # real time, in 10 ms packets stamped with their last sample's time
            due = min(n, int((pylsl.local_clock() - t0) * fs))
            while pushed + 20 <= due:
                emg.push_chunk(data[pushed : pushed + 20], t0 + (pushed + 19) / fs)
                pushed += 20
            for k, late in list(pending.items()):
                if pylsl.local_clock() >= t0 + k / fs + late:  # the box reports late
                    box.push_sample([f"stim {k}"], t0 + k / fs)
                    del pending[k]
            ctl.drain()
            time.sleep(0.005)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ctl.markers_placed < len(TRIGGERS):
            ctl.drain()
            time.sleep(0.01)
        ctl.drain()
        time.sleep(0.3)
        while True:
            sample, _ = listener.pull_sample(timeout=0.5)
            if sample is None:
                break
            verdicts.append(json.loads(sample[0]))
        reps = list(ctl.tally.reps)
    finally:
        ctl.close()

    # every trigger at its stream sample, however late the box sent it (± one sample)
    got = {a.text: a.onset_s for a in read_recording(str(path)).annotations}
    for k in TRIGGERS:
        assert got[f"marker stim {k}"] == pytest.approx(k / fs, abs=1.5 / fs)

    # one verdict per finished rep; its onsets in LSL time are the outlet's own sample times
    finals = [v for v in verdicts if v["final"]]
    assert len(finals) >= 3
    assert [v["rep"] for v in finals] == sorted({v["rep"] for v in finals})
    by_rep = {r.index + 1: r for r in reps}
    for v in finals:
        rep = by_rep[v["rep"]]
        assert v["order"] == rep.order and v["lag_ms"] == pytest.approx(rep.lag_ms, abs=0.05)
        for role, t_lsl in v["onsets_lsl"].items():
            onset = rep.onsets[Role(role)]
            assert onset is not None
            assert t_lsl == pytest.approx(t0 + onset / fs, abs=1.5 / fs), role
