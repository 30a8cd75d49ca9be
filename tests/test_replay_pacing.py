"""A replay at the speed of life keeps moving: the window's traces and clock never stand
still for long, also where a recording that began mid-burst has its first reps judged again.

Found in the window: a motor-unit recording replayed at 1x froze for 2.2 s at 0:08. The
replay handed the pipeline the one or two samples due at each poll of the worker; a stream
that began mid-burst keeps its first chunks to judge them again once rest is known, and
re-running 5,000 one-sample chunks took the worker 2.2 s. A paced replay now delivers whole
packets, as a device does.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from devices.drivers.file_replay import FileSource

#: the longest the picture may stand still while a replay plays (s): a frame is 16 ms and
#: the status housekeeping runs at 4 Hz; anything near a second reads as a hang
MAX_STILL_S = 0.5


@pytest.fixture(scope="module")
def mid_burst_bdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 11 s of the motor-unit recording that begins inside a burst (the re-judge
    comes at 8 s)."""
    from types import SimpleNamespace

    from bench import accuracy
    from bench.speed import write_bdf

    spec = next(s for s in accuracy.specs("mu-hard", 20, 40.0) if "seed 5005" in s.label)
    rec = accuracy.make_recording(spec)
    data = accuracy.full_array(rec)[: round(11 * rec.info.fs)]
    bdf = tmp_path_factory.mktemp("pacing") / "mid_burst.bdf"
    write_bdf(bdf, SimpleNamespace(data=data, info=rec.info))
    return bdf


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_paced_replay_delivers_whole_packets(mid_burst_bdf: Path) -> None:
    clock = Clock()
    src = FileSource(str(mid_burst_bdf), speed=1.0, chunk_ms=20.0, clock=clock)
    info = src.open()
    packet = round(0.02 * info.fs)
    src.start()
    sizes = []
    for _ in range(400):  # polls 1 ms apart, as the worker polls
        clock.t += 0.001
        chunk = src.read()
        if chunk is not None:
            sizes.append(chunk.n_samples)
    assert sizes and set(sizes) == {packet}, sizes[:20]
    assert sum(sizes) == pytest.approx(0.4 * info.fs, abs=packet)
    # the file's last samples come as they are, not held back for a packet that never fills
    src.seek(src.n_samples - 7)
    src.play()
    clock.t += 0.01
    last = src.read()
    assert last is not None and last.n_samples == 7 and src.at_end
    src.close()
    with pytest.raises(ValueError, match="chunk"):
        FileSource(str(mid_burst_bdf), chunk_ms=0.0)


def test_the_picture_keeps_moving_through_the_rejudge(
    qtbot, tmp_path: Path, mid_burst_bdf: Path
) -> None:
    """The file typed into the source panel, Start pressed, played at 1x on the window's own
    worker thread and timer: while it plays, the traces' time never stands still for more
    than MAX_STILL_S, also across the re-judge of its first reps."""
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    win = MainWindow(store, autostart=False, recordings_dir=str(tmp_path / "rec"))
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    panel = win.source_panel
    panel.kind.setCurrentText("file")
    panel.file_path.clear()
    qtbot.keyClicks(panel.file_path, str(mid_burst_bdf))
    panel.file_speed.setCurrentText("1")
    seen: list[tuple[float, float]] = []  # (wall time, traces' newest time) per frame
    win.timer.timeout.connect(lambda: seen.append((time.monotonic(), win.traces.t_end)))
    panel.start_btn.click()
    assert win.ctl is not None and win.ctl.replay is not None
    qtbot.waitUntil(lambda: win.traces.t_end >= 10.0, timeout=40_000)
    assert any(r.rejudged for r in win.tally.reps)  # the case at hand: 8 s in
    moved = [(w, t) for k, (w, t) in enumerate(seen) if k == 0 or t > seen[k - 1][1]]
    first = next(k for k, (_, t) in enumerate(moved) if t > 0.5)  # (start-up is not play)
    still = np.diff([w for w, _ in moved[first:]])
    worst = int(np.argmax(still))
    assert still[worst] < MAX_STILL_S, (
        f"the picture stood still {still[worst]:.2f} s at file time {moved[first + worst][1]:.1f} s"
    )


def test_rejudge_joins_consecutive_chunks_only() -> None:
    """The re-judge replays a stream's first chunks as runs (one call per run, not per
    read), never across a gap: the gap must still be seen as one."""
    from dsp.contract import Chunk
    from dsp.pipeline import joined

    x = np.arange(40.0).reshape(20, 2)
    parts = [Chunk(x[0:1], 0), Chunk(x[1:3], 1), Chunk(x[3:5], 3), Chunk(x[7:9], 7)]
    parts += [Chunk(x[9:20], 9)]
    runs = joined(parts, most=8)
    assert [(c.start, c.n_samples) for c in runs] == [(0, 5), (7, 2), (9, 11)]
    assert np.array_equal(runs[0].data, x[0:5])
