"""A long session does not grow with its length: the simulator forgets reps past its truth
horizon and heartbeats once drawn, and the session keeps no copy of the simulator's truth
markers (issue 11: +3.5 MB per simulated hour). What stays is the session's own record: one
result per rep (its verdicts, counts and history)."""

from __future__ import annotations

import pytest

from devices.drivers.simulator import SimulatorDevice
from devices.session.controller import SessionController
from devices.session.states import MarkKind
from devices.simulation import model
from dsp.settings import DspSettings


def test_structures_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "TRUTH_HORIZON_S", 60.0)
    dev = SimulatorDevice(realtime=False, preset="clean", seed=4, duration_s=900)
    ctl = SessionController(dev, DspSettings(), device_marks=MarkKind.TRUTH)
    ctl.open()
    sizes: list[tuple[int, int, int]] = []
    seen_marks: list[object] = []
    ctl.on_mark = seen_marks.append

    def measure(_rep: object) -> None:  # after every rep, what the session holds
        sim = dev._sim
        assert sim is not None
        sizes.append((len(sim._reps.events), len(sim._beats.events), len(ctl.marks)))

    ctl.on_rep = measure
    ctl.run(900, until_exhausted=True)
    reps_kept = [s[0] for s in sizes]
    assert len(sizes) > 250
    assert max(reps_kept) <= 2 * (60 / 3 + 64)  # ~a horizon of reps (period ~3 s) + slack
    assert max(reps_kept[-50:]) <= max(reps_kept[100:150]) + 5  # no longer growing
    assert all(s[1] <= 300 for s in sizes)  # beats: only those not yet past
    assert all(s[2] == 0 for s in sizes) and seen_marks  # truth marks passed on, not kept
    assert len(ctl.tally.reps) > 250  # the session's own record is whole
    # the truth still names every rep of the last horizon, numbered on from the first
    truth = dev.truth()
    ctl.close()
    assert truth.reps and truth.reps[-1].index > 250
