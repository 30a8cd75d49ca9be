"""The camera path without a camera: a real QMediaPlayer plays a generated clip into the same
QVideoSink -> RGB -> writer thread -> MP4 + frame-times code a camera feeds. The frames
written are read back (their drawn numbers) and their times compared with the truth.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore
from PyQt6.QtTest import QTest

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from app.video_capture import VideoCapture, cameras
from devices.files.sidecar import ReviewStore
from devices.video.barcode import frame_image, read_number, write_clip
from devices.video.reader import VideoReader, read_frame_times
from devices.video.writer import VideoWriter

FPS = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "camera.mp4"
    write_clip(path, 4.0, FPS)
    return path


def test_player_into_the_sink_gives_frames_within_one_frame_of_the_truth(
    qtbot, tmp_path: Path, clip: Path
) -> None:
    first: list[float] = []

    def clock(t: float) -> float:
        # the session clock of this test: 10 s of EMG at the first frame's arrival
        if not first:
            first.append(t)
        return 10.0 + (t - first[0])

    out = tmp_path / "rec.mp4"
    cap = VideoCapture(out, clock)
    player = cap.start_player(clip)
    from PyQt6.QtMultimedia import QMediaPlayer

    qtbot.waitUntil(
        lambda: player.mediaStatus() == QMediaPlayer.MediaStatus.EndOfMedia,  # type: ignore[attr-defined]
        timeout=30_000,
    )
    stats = cap.stop()
    assert stats.error is None and stats.written >= 4 * FPS - 3
    times = read_frame_times(cap.writer.times_path)
    reader = VideoReader(out)
    assert times is not None and len(times) == reader.n_frames == stats.written
    # pts (ms) are the session times too
    pts_s = [p * reader.time_base for p in reader.pts]
    assert np.allclose(pts_s, times, atol=0.0011)
    numbers = [read_number(reader.frame(i)) for i in range(reader.n_frames)]
    assert numbers == sorted(numbers) and numbers[-1] >= 4 * FPS - 3
    # frame k of the clip is due k/30 s after the clip started (played in real time); the
    # start is the median (the player may show its first frame late under load, then catch up)
    err = np.array([t - k / FPS for t, k in zip(times, numbers, strict=True)])
    err -= np.median(err)
    assert np.percentile(np.abs(err), 95) < 1 / FPS and np.abs(err).max() < 3 / FPS, err


def test_writer_drops_rather_than_blocks(tmp_path: Path) -> None:
    w = VideoWriter(tmp_path / "v.mp4")
    w.start()
    t0 = time.perf_counter()
    accepted = sum(w.put(frame_image(k, 640, 480), k / FPS) for k in range(300))
    put_s = time.perf_counter() - t0
    stats = w.close()
    assert put_s < 1.0  # 300 frames offered in well under their 10 s: put never waited
    assert stats.written == accepted and stats.dropped == 300 - accepted
    assert VideoReader(tmp_path / "v.mp4").n_frames == stats.written


def test_record_video_without_a_camera_is_disabled_and_says_why(qtbot, tmp_path) -> None:
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    sim = SourceChoice("simulator", {"fs": 2000.0, "preset": "clean", "seed": 3})
    win = MainWindow(store, source=sim, threaded=False, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    if cameras():
        pytest.skip("this machine has a camera")  # (the machines here have none)
    assert not win.act_record_video.isEnabled()
    assert win.act_record_video.toolTip() == "no camera found"


def test_a_live_recording_keeps_the_stand_in_camera_beside_the_bdf(
    qtbot, tmp_path: Path, clip: Path
) -> None:
    """Threaded and in real time: the frames' EMG times come from the stream's own clock."""
    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    sim = SourceChoice("simulator", {"fs": 2000.0, "preset": "clean", "seed": 3})
    win = MainWindow(store, source=sim, threaded=True, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.ctl is not None and win.ctl.position > 2000, timeout=10_000)
    win.act_record.trigger()
    bdf = win.recorder.path  # type: ignore[union-attr]
    # the camera's place: the clip played into the same sink and writer
    win.video.recording_started(bdf, source=clip)
    QTest.qWait(3500)
    win.act_record.trigger()  # stop: the video is finished and listed
    assert not win.act_record.isChecked()
    mp4 = bdf.with_suffix(".mp4")
    assert mp4.exists()
    side = json.loads(bdf.with_name(bdf.name + ".json").read_text())
    entry = side["video"]
    assert entry["kind"] == "recorded" and entry["path"] == mp4.name
    assert entry["frame_times"] == mp4.name + ".times.csv" and entry["frames"] >= 60
    times = read_frame_times(tmp_path / entry["frame_times"])
    assert times is not None and 0.0 <= times[0] < times[-1]
    duration = side["summary"]["duration_s"]
    assert times[-1] <= duration + 0.1  # on the EMG's clock: within the recording
    reader = VideoReader(mp4)
    numbers = np.array([read_number(reader.frame(i)) for i in range(reader.n_frames)])
    # real-time play: frame k arrives k/30 s after frame 0, stamped on the EMG clock (the
    # stream index at arrival) within a chunk and a frame
    assert (np.diff(numbers) > 0).all()  # in order, none twice
    # each frame's EMG time is the stream's position at its arrival: against the host clock
    # of the arrivals the EMG clock runs true within a frame (a chunk is 20 ms)
    cap = win.video.last_capture
    assert cap is not None
    arrived, stamped = np.array(cap.stamps).T
    drift = (stamped - stamped[0]) - (arrived - arrived[0])
    assert np.abs(drift).max() < 1 / FPS, drift
    # what was written is what was stamped (a frame the writer dropped is only missing)
    nearest = np.abs(np.asarray(times)[:, None] - stamped[None, :]).min(axis=1)
    assert nearest.max() < 2e-6  # (the file keeps 6 decimals)
    win.close()
    # replayed, the recording shows its own video
    again = MainWindow(store, source=SourceChoice("file", {"path": str(bdf)}), threaded=False)
    qtbot.addWidget(again)
    assert again.video.timeline is not None and again.video.entry is not None
    assert again.video.entry.kind == "recorded"
    assert ReviewStore(bdf).video() == again.video.entry


_WRITE_UNTIL_KILLED = """
import sys, time
from devices.video.barcode import frame_image
from devices.video.writer import VideoWriter
w = VideoWriter(sys.argv[1])
w.start()
k = 0
while True:
    w.put(frame_image(k, 320, 240), k / 30)
    k += 1
    time.sleep(1 / 60)
"""


def test_a_camera_recording_cut_by_a_crash_is_playable_and_found_again(tmp_path: Path) -> None:
    """The app dies (SIGKILL) while the camera records: the MP4 (fragmented) plays up to its
    last fragment, its frame times are on disk, and the review finds the video beside the
    recording though no sidecar lists it."""
    import shutil
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    bdf = tmp_path / "crashed.bdf"
    shutil.copy(root / "recordings" / "demo_lumbar_first.bdf", bdf)
    video = bdf.with_suffix(".mp4")
    times = video.with_name(video.name + ".times.csv")
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", _WRITE_UNTIL_KILLED, str(video)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (times.is_file() and times.read_text().count("\n") > 200):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    written = times.read_text().count("\n") - 1  # (header)
    reader = VideoReader(video)
    try:
        # every frame up to the last keyframe fragment (keyframes every 2 s = 60 frames)
        assert written - 90 <= reader.n_frames <= written
        last = reader.n_frames - 1
        assert read_number(reader.frame(last)) == last
    finally:
        reader.close()
    entry = ReviewStore(bdf).video()
    assert entry is not None and entry.kind == "recorded"
    assert entry.resolve(bdf) == video.resolve() and entry.times_file(bdf) == times.resolve()
    stamped = read_frame_times(times)
    assert stamped is not None and len(stamped) >= reader.n_frames
