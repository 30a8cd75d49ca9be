"""A file as a source: replay through the live pipeline equals `analyze` on the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.drivers.base import DeviceError, create
from devices.drivers.file_replay import FileSource
from devices.session.live import LiveSession
from devices.simulation.model import preset, simulate, write_csv
from dsp.analysis import analyze
from dsp.reps import RepEnded

ROLES = {"glute_l": "glute_l", "glute_r": "glute_r", "lumbar_l": "lumbar_l", "lumbar_r": "lumbar_r"}


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    rec = simulate(preset("clean", seed=31, fs=2000, channels=(*ROLES, "hamstring_l")), 90)
    path = tmp_path_factory.mktemp("replay") / "sim.csv"
    write_csv(path, rec)
    return path, rec


def final_reps(session: LiveSession) -> list:
    return [t.event.result for t in session.drain_events() if isinstance(t.event, RepEnded)]


def test_replay_verdicts_equal_analyze(sim_file) -> None:
    path, rec = sim_file
    src = create("file", path=str(path), channels=ROLES, speed=None)
    session = LiveSession(src)
    info = session.open()
    assert info.n_channels == 5 and "hamstring_l" in info.channel_names  # extras kept
    session.run(until_exhausted=True)
    replayed = final_reps(session)
    expected = analyze(
        rec.data[:, :4],
        rec.info.__class__(
            rec.info.fs, tuple(ROLES), dict(zip(rec.info.roles, range(4), strict=True))
        ),
    )
    assert len(replayed) == len(expected.reps) >= 20
    for a, b in zip(replayed, expected.reps, strict=True):
        assert (a.order, a.lag_ms, a.start) == (b.order, b.lag_ms, b.start)


def test_seek_settles_the_pipeline_and_matches_a_full_pass(sim_file) -> None:
    path, _ = sim_file
    full = LiveSession(FileSource(str(path), channels=ROLES, speed=None))
    full.run(until_exhausted=True)
    everything = final_reps(full)
    src = FileSource(str(path), channels=ROLES, speed=None)
    session = LiveSession(src)
    session.open()
    session.start(threaded=False)
    target = 70 * 2000
    session.seek(target)  # 60 s of pre-roll, no events from it
    assert session.drain_events() == [] and src.position == target
    session.pump(20.0)
    session._finish()
    after = final_reps(session)
    want = [r for r in everything if r.start >= target + 2000]
    got = [r for r in after if r.start >= target + 2000]
    assert want and [(r.order, r.lag_ms) for r in got] == [(r.order, r.lag_ms) for r in want]


def test_paced_replay_follows_the_clock(sim_file) -> None:
    path, _ = sim_file
    now = [0.0]
    src = FileSource(str(path), channels=ROLES, speed=4.0, clock=lambda: now[0])
    src.open()
    src.start()
    assert src.read() is None  # no time has passed
    now[0] = 0.5
    chunk = src.read()
    assert chunk is not None and chunk.n_samples == 4000  # 0.5 s x 4 at 2 kHz
    src.pause()
    now[0] = 2.0
    assert src.read() is None


def test_nan_rows_become_gaps(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    t = np.arange(4000) / 1000
    keep = (t < 1.0) | (t >= 1.1)  # 100 samples missing: the time column jumps
    rows = "".join(f"{ti:.3f},{np.sin(ti)},{np.cos(ti)}\n" for ti in t[keep])
    path.write_text("time,a,b\n" + rows)
    src = FileSource(str(path), channels={"glute_l": "a", "lumbar_l": "b"}, speed=None)
    src.open()
    src.start()
    starts = []
    while (c := src.read()) is not None:
        starts.append((c.start, c.n_samples))
    assert starts[0] == (0, 1000) and starts[1][0] == 1100
    assert sum(n for _, n in starts) == 3900


def test_file_without_roles_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("time,a,b\n0,1,2\n0.001,1,2\n")
    with pytest.raises(DeviceError, match="does not name its roles"):
        FileSource(str(path)).open()


@pytest.mark.parametrize(
    ("name", "majority"),
    [("demo_glute_first", "glute_first"), ("demo_lumbar_first", "lumbar_first")],
)
def test_demo_recordings_replay_to_the_analyze_verdicts(name: str, majority: str) -> None:
    from devices.files import read_recording

    path = Path(__file__).resolve().parents[1] / "recordings" / f"{name}.bdf"
    rec = read_recording(str(path))
    assert set(rec.roles) == {"glute_l", "glute_r", "lumbar_l", "lumbar_r"}
    from dsp.contract import StreamInfo

    names = list(rec.roles.values())
    idx = [rec.channel_names.index(n) for n in names]
    info = StreamInfo.from_role_names(rec.fs, names, rec.roles)
    expected = analyze(np.ascontiguousarray(rec.data[:, idx]), info)
    session = LiveSession(FileSource(str(path), speed=None))
    session.run(until_exhausted=True)
    replayed = final_reps(session)
    assert [(r.order, r.lag_ms) for r in replayed] == [(r.order, r.lag_ms) for r in expected.reps]
    orders = [r.order for r in replayed]
    assert orders.count(majority) > len(orders) / 2
