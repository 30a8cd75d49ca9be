"""A long session does not grow with its length: the simulator forgets reps past its truth
horizon and heartbeats once drawn, the session keeps no copy of the simulator's truth
markers, the tally keeps the newest records only (each older rep is counted, in a few bytes),
the recorder counts old verdicts instead of keeping them, and the window keeps a bounded rep
table and lag plot (issue 11: +3.5 MB per simulated hour). Each test runs the real object
over many reps and asserts what it retains stops growing; the counts stay exact."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dataclasses
from pathlib import Path

import pytest

from devices.drivers.simulator import SimulatorDevice
from devices.files import recorder as recorder_module
from devices.files.bdf_format import read_sidecar
from devices.session.controller import SessionController
from devices.session.states import MarkKind
from devices.session.tally import RepTally
from devices.simulation import model
from dsp.contract import Role
from dsp.events import RepsRejudged
from dsp.reps import ORDERS, RepEnded, RepResult, SideResult
from dsp.settings import DspSettings


def test_structures_stay_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(model, "TRUTH_HORIZON_S", 60.0)
    monkeypatch.setattr(recorder_module, "VERDICTS_KEPT", 40)
    dev = SimulatorDevice(realtime=False, preset="clean", seed=4, duration_s=900)
    ctl = SessionController(dev, DspSettings(), device_marks=MarkKind.TRUTH)
    ctl.tally.keep = 30
    ctl.open()
    ctl.start_recording(tmp_path / "long.bdf")
    rec = ctl.recorder
    assert rec is not None
    sizes: list[tuple[int, ...]] = []
    seen_marks: list[object] = []
    final: dict[int, RepResult] = {}  # every rep's latest record, as the consumers saw it
    ctl.on_mark = seen_marks.append

    def measure(rep: RepResult) -> None:  # after every rep, what the session holds
        final[rep.start] = rep
        sim = dev._sim
        assert sim is not None
        sizes.append(
            (
                len(sim._reps.events),
                len(sim._beats.events),
                len(ctl.marks),
                len(ctl.tally.reps),
                len(rec._verdicts),
                len(ctl.latencies),
            )
        )

    def ended(ev: RepEnded) -> None:
        final[ev.result.start] = ev.result

    def rejudged(ev: RepsRejudged) -> None:
        for start in [s for s in final if s < ev.upto]:
            del final[start]
        final.update({r.start: r for r in ev.reps})

    ctl.on_rep, ctl.on_rep_final, ctl.on_rejudged = measure, ended, rejudged
    ctl.run(900, until_exhausted=True)
    truth = dev.truth()
    summary = ctl.close()
    reps_kept = [s[0] for s in sizes]
    assert len(sizes) > 250
    # a horizon of reps (period >= 2.7 s) and the 64 past it dropped at a time, no more
    assert max(reps_kept) <= 60 / 2.7 + 64 + 2
    assert max(reps_kept[-50:]) <= max(reps_kept[100:150]) + 5  # no longer growing
    assert all(s[1] <= 300 for s in sizes)  # beats: only those not yet past
    assert all(s[2] == 0 for s in sizes) and seen_marks  # truth marks passed on, not kept
    assert max(s[3] for s in sizes) == 30  # tally: the newest records only
    assert max(s[4] for s in sizes) == 40  # recorder: the newest verdicts only
    assert max(s[5] for s in sizes) <= 1000
    # ... and the counts are still the whole session's
    assert ctl.tally.count == len(final) > 250
    whole = {o: sum(r.order == o for r in final.values()) for o in ORDERS}
    assert ctl.tally.session == whole
    assert [r.start for r in ctl.tally.reps] == sorted(final)[-30:]
    assert summary is not None and summary.error is None
    assert (read_sidecar(tmp_path / "long.bdf") or {})["summary"]["verdicts"] == {
        o: n for o, n in whole.items() if n
    }
    # the truth still names every rep of the last horizon, numbered on from the first
    assert truth.reps and truth.reps[-1].index > 250


def test_a_live_simulator_keeps_ten_minutes_of_truth() -> None:
    from devices.drivers.simulator import LIVE_TRUTH_HORIZON_S

    dev = SimulatorDevice(realtime=False, preset="clean", seed=4, duration_s=10)
    dev.open()
    sim = dev._sim
    assert sim is not None and sim.truth_horizon_s == LIVE_TRUTH_HORIZON_S == 600.0
    assert model.EmgSimulator(dev.config).truth_horizon_s == model.TRUTH_HORIZON_S  # files
    dev.close()


def test_device_marks_keep_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    """A device marking every rep for hours (a trigger box): the session keeps the newest
    marks (the window draws 50; the recording has them all), and numbers the user's on."""
    from devices.session import controller

    monkeypatch.setattr(controller, "MARKS_KEPT", 20)
    dev = SimulatorDevice(realtime=False, preset="clean", seed=5, duration_s=120)
    ctl = SessionController(dev, DspSettings(), device_marks=MarkKind.DEVICE)
    ctl.open()
    seen: list[object] = []
    kept: list[int] = []
    ctl.on_mark = lambda m: (seen.append(m), kept.append(len(ctl.marks)))
    ctl.start(threaded=False)
    first = ctl.mark()
    for _ in range(120):
        ctl.pump(1.0)
    last = ctl.mark()
    ctl.close()
    assert len(seen) > 100 and max(kept) == 20 and len(ctl.marks) == 20
    assert (first.label, last.label) == ("mark 1", "mark 2") and ctl.marks[-1] == last


def _rep(i: int, order: str, side: str | None = None, end: int | None = 1) -> RepResult:
    start = 1000 * i
    return RepResult(
        i,
        start,
        {Role.GLUTE_L: start, Role.LUMBAR_L: start + 50},
        25.0,
        order,
        SideResult(25.0, side or order),
        None,
        start + 60,
        end=None if end is None else start + 800,
    )


def test_tally_keeps_the_newest_records_and_counts_every_rep() -> None:
    t = RepTally(window=5, keep=20)
    orders = [ORDERS[(i * 7) % 4] for i in range(3000)]
    retained = []
    for i, o in enumerate(orders):
        t.add(_rep(i, o))
        retained.append(len(t.reps))
    assert max(retained) == 20 and retained[-1000:] == [20] * 1000
    assert t.count == 3000 and [r.index for r in t.reps] == list(range(2980, 3000))
    assert t.session == {o: orders.count(o) for o in ORDERS}
    assert t.recent == {o: orders[-5:].count(o) for o in ORDERS}
    assert t.side_counts("left") == t.session and t.side_counts("right") == dict.fromkeys(
        ORDERS, 0
    )
    # a replay after a seek back sees an early rep again: it replaces, never adds
    before = t.session
    t.add(_rep(3, "glute_first"))
    assert t.count == 3000 and len(t.reps) == 20 and all(r.index >= 2980 for r in t.reps)
    assert t.session[orders[3]] == before[orders[3]] - (orders[3] != "glute_first")
    # its final record replaces the verdict of the newest too (a side pending at the decision
    # is counted only once it is known)
    pending = dataclasses.replace(
        _rep(3000, "glute_first"), end=None, left=SideResult(None, "undetermined")
    )
    t.add(pending)
    left = t.side_counts("left")
    done = dataclasses.replace(pending, end=3_000_900, left=SideResult(30.0, "simultaneous"))
    t.add(done)
    assert t.side_counts("left")["simultaneous"] == left["simultaneous"] + 1
    assert t.count == 3001 and t.reps[-1].end is not None
    t.rejudge(10 * 1000, (_rep(0, "lumbar_first"),))  # the first ten, judged again as one
    assert t.count == 3001 - 9 and len(t.reps) == 20
    t.reset()
    assert t.count == 0 and t.reps == [] and t.streak == 0


def test_window_tables_and_plots_stay_bounded(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real window on the simulator, 40+ reps: the rep table, the tally's records, the
    lag plot, the trace overlays stop growing at their caps (set small here)."""
    from PyQt6 import QtCore

    from app.main_window import MainWindow
    from app.order_panel import LagHistory
    from app.review import RepTable
    from app.settings_store import SettingsStore
    from app.source_panel import SourceChoice

    monkeypatch.setattr(RepTable, "MAX_ROWS", 12)
    monkeypatch.setattr(LagHistory, "POINTS", 8)
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    win = MainWindow(
        store, source=SourceChoice("simulator", {"fs": 1000.0, "seed": 3}), threaded=False
    )
    qtbot.addWidget(win)
    win.show()
    win.tally.keep = 15
    session = win.session
    assert session is not None
    sizes = []
    for _ in range(150):  # simulated seconds
        session.pump(1.0)
        win.refresh()
        sizes.append(
            (
                win.rep_table.rowCount(),
                len(win.rep_table._starts),
                len(win.tally.reps),
                len(win.order_panel.history._points.data),
                len(win.traces._spans),
                len(win.traces._onsets),
            )
        )
    assert win.tally.count >= 40
    assert max(s[0] for s in sizes) == 12 and sizes[-1][0] == sizes[-1][1] == 12
    assert max(s[2] for s in sizes) == 15 and max(s[3] for s in sizes) <= 8
    assert max(s[4] for s in sizes) <= 60 and max(s[5] for s in sizes) <= 400
    # rows go on numbering the session's reps, and show its newest
    last = win.tally.reps[-1]
    assert win.rep_table.item(11, 0).text() == str(win.tally.count)
    assert win.rep_table._starts[-1] == last.start
    # the counts shown are the whole session's
    assert sum(win.tally.session.values()) == win.tally.count
    win.close()
