"""Video in review, through the real window: a clip generated here with libx264 (30 fps, each
frame's number drawn as a bar code) is attached to a copy of a demo recording by Replay ▸
Attach video… (the file dialog answered), given an offset in the dock's field, and at
several EMG times (a seek, a rep jump, playing) the picture the dock shows -- its pixels,
read back -- is the frame whose number matches within one frame.
"""

from __future__ import annotations

import functools
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore, QtGui
from PyQt6.QtTest import QTest

from app.main_window import MainWindow
from app.settings_store import SettingsStore
from app.source_panel import SourceChoice
from devices.files.sidecar import ReviewStore, VideoEntry
from devices.video.barcode import read_number, write_clip
from tests.window_helpers import DEMO, answer_file_dialog, demo_copy
from tests.window_helpers import pump as _pump

pump = functools.partial(_pump, step=0.5, housekeeping=True)  # a review: 0.5 s steps, 4 Hz upkeep
FS = 2000
FPS = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "phone.mp4"
    assert write_clip(path, 66.0, FPS) == 66 * FPS
    return path


def open_window(qtbot, store: SettingsStore, bdf: Path) -> MainWindow:
    win = MainWindow(store, source=SourceChoice("file", {"path": str(bdf)}), threaded=False)
    qtbot.addWidget(win)
    win.resize(1366, 740)
    win.show()
    qtbot.waitUntil(lambda: win.review.index is not None, timeout=60_000)
    return win


def shown_number(qtbot, win: MainWindow) -> int:
    """Let the decoder deliver the frame asked for, then read the number off its pixels."""
    dock = win.video
    qtbot.waitUntil(
        lambda: dock.wanted is not None and dock.view.index == dock.wanted, timeout=10_000
    )
    image = dock.view.image
    assert image is not None
    assert not dock.view.stale  # the right frame is never drawn dimmed as "finding the frame"
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    bits = image.constBits()
    bits.setsize(h * stride)
    rgb = np.frombuffer(bits, np.uint8).reshape(h, stride)[:, : 3 * w].reshape(h, w, 3)
    return read_number(rgb)


def expected(win: MainWindow, offset: float) -> int:
    """The frame on screen at the traces' newest sample: frame k shows from k/30 s."""
    return math.floor((win.traces.t_end + offset) * FPS + 1e-6)


def type_offset(win: MainWindow, seconds: float) -> None:
    field = win.video.offset
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, f"{seconds:.3f}")
    QTest.keyClick(field, QtCore.Qt.Key.Key_Return)


def test_attached_clip_follows_seek_rep_jump_and_playback(qtbot, store, tmp_path, clip) -> None:
    bdf = demo_copy(tmp_path)
    win = open_window(qtbot, store, bdf)
    pump(win, 4.0)
    seen = answer_file_dialog(clip)
    win.video.act_attach.trigger()
    assert seen == ["Attach video"]
    assert win.video.timeline is not None and win.video.dock.isVisible()
    offset = 2.5  # the phone started 2.5 s before the EMG
    type_offset(win, offset)
    assert win.video.timeline.offset_s == pytest.approx(offset)
    # kept with the recording (a copy in a writable folder: its own sidecar)
    entry = ReviewStore(bdf).video()
    assert entry is not None and entry.offset_s == pytest.approx(offset)
    assert entry.kind == "attached" and entry.resolve(bdf) == clip.resolve()

    checks = []
    win.refresh()  # playing
    checks.append(("playing", expected(win, offset), shown_number(qtbot, win)))
    win.replay_bar.seek_requested.emit(37 * FS)  # a seek (the slider's signal)
    pump(win, 0.5)
    checks.append(("seek", expected(win, offset), shown_number(qtbot, win)))
    win.act_pause.trigger()
    win.activateWindow()  # (the file dialog had it)
    assert QTest.qWaitForWindowActive(win, 5000)
    for _ in range(6):  # paused: reps back, each shown and selected (beyond the window: a jump)
        QTest.keyClick(win, QtCore.Qt.Key.Key_Left)
    assert win.review.selected is not None and win.traces.t_end < 30
    win.refresh()
    # a selected rep shows its own first onset (the hinge its verdict is about), not the
    # traces' edge, which lies seconds later
    rep = win.review.rep(win.review.selected)
    first_s = min(i for i in rep.onsets.values() if i is not None) / FS
    assert win.traces.t_end - first_s > 1.0
    want = math.floor((first_s + offset) * FPS + 1e-6)
    checks.append(("rep jump", want, shown_number(qtbot, win)))
    assert win.video.view.verdict == win.review.rep(win.review.selected).order  # over it
    # still paused, a seek far from the selected rep (a click on the overview strip): the
    # picture follows the traces there, it does not stay on the rep
    win.replay_bar.seek_requested.emit(50 * FS)
    pump(win, 0.3)
    win.refresh()
    assert win.traces.t_end > 45
    checks.append(("paused seek", expected(win, offset), shown_number(qtbot, win)))
    win.act_pause.trigger()
    pump(win, 3.0)
    checks.append(("playing on", expected(win, offset), shown_number(qtbot, win)))
    for what, want, got in checks:
        assert abs(got - want) <= 1, (what, want, got)
    assert len({want for _, want, _ in checks}) == len(checks)  # five different places


def test_sync_here_keeps_the_offset_and_it_comes_back(qtbot, store, tmp_path, clip) -> None:
    bdf = demo_copy(tmp_path)
    win = open_window(qtbot, store, bdf)
    pump(win, 10.0)
    assert win.video.attach_video(str(clip))
    win.act_pause.trigger()
    win.refresh()
    start = shown_number(qtbot, win)
    assert abs(start - expected(win, 0.0)) <= 1
    # the reviewer steps the video 45 frames on (the event is seen there) ...
    win.activateWindow()
    assert QTest.qWaitForWindowActive(win, 5000)
    for _ in range(45):
        QTest.keyClick(win, QtCore.Qt.Key.Key_Period)  # "." : the next frame
    win.refresh()  # paused: the video stays where it was scrubbed
    got = shown_number(qtbot, win)
    assert got == win.video.wanted
    # ... and syncs: that frame is the traces' edge from now on
    QTest.mouseClick(win.video.sync_button, QtCore.Qt.MouseButton.LeftButton)
    t_edge = win.traces.t_end
    assert win.video.timeline.offset_s == pytest.approx(got / FPS - t_edge, abs=1e-3)
    side = json.loads(bdf.with_name(bdf.name + ".json").read_text())
    assert side["video"]["offset_s"] == pytest.approx(got / FPS - t_edge, abs=1e-3)
    win.close()
    # the offset comes back with the recording
    again = open_window(qtbot, store, bdf)
    assert again.video.timeline is not None
    assert again.video.timeline.offset_s == pytest.approx(got / FPS - t_edge, abs=1e-3)
    pump(again, 20.0)
    assert abs(shown_number(qtbot, again) - expected(again, again.video.timeline.offset_s)) <= 1
    # Detach: gone from the sidecar, the dock empty
    QTest.mouseClick(again.video.detach_button, QtCore.Qt.MouseButton.LeftButton)
    assert again.video.timeline is None and ReviewStore(bdf).video() is None


def test_missing_video_is_one_message_and_the_replay_goes_on(qtbot, store, tmp_path) -> None:
    bdf = demo_copy(tmp_path)
    ReviewStore(bdf).set_video(VideoEntry("gone.mp4", "attached", 1.0))
    win = open_window(qtbot, store, bdf)
    message = win.statusBar().currentMessage()
    assert "gone.mp4 not found" in message and "EMG review goes on" in message
    assert win.video.timeline is None
    pump(win, 20.0)
    assert len(win.tally.reps) >= 3  # the EMG replay went on


def test_unreadable_video_is_one_message(qtbot, store, tmp_path) -> None:
    bdf = demo_copy(tmp_path)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    win = open_window(qtbot, store, bdf)
    assert not win.video.attach_video(str(bad))
    assert "unreadable" in win.statusBar().currentMessage()
    pump(win, 10.0)
    assert win.tally.reps


def test_shipped_recording_keeps_its_video_in_the_data_folder(
    qtbot, store, tmp_path, clip, monkeypatch
) -> None:
    monkeypatch.setenv("FIREORDER_DATA_DIR", str(tmp_path / "data"))
    side = DEMO.with_name(DEMO.name + ".json")
    before = side.read_bytes()
    win = open_window(qtbot, store, DEMO)
    assert win.video.attach_video(str(clip), 0.75)
    assert side.read_bytes() == before  # the tracked file is never changed
    kept = ReviewStore(DEMO)
    assert not kept.in_sidecar and kept.path.is_relative_to(tmp_path / "data")
    entry = kept.video()
    assert entry is not None and entry.offset_s == pytest.approx(0.75)
    win.video.detach_video()


def test_the_next_recording_shows_nothing_of_the_last_ones_video(
    qtbot, store, tmp_path, clip
) -> None:
    first = demo_copy(tmp_path)
    ReviewStore(first).set_video(VideoEntry(str(clip), "attached", 1.5))
    win = open_window(qtbot, store, first)
    assert win.video.timeline is not None and win.video.offset.value() == pytest.approx(1.5)
    other = tmp_path / "other" / "plain.bdf"
    other.parent.mkdir()
    shutil.copy(DEMO, other)  # (no sidecar, no video)
    win.connect_source(SourceChoice("file", {"path": str(other)}))
    qtbot.waitUntil(lambda: win.review.index is not None, timeout=60_000)
    dock = win.video
    assert dock.timeline is None and dock.entry is None and dock.view.image is None
    assert dock.offset.value() == 0.0 and not dock.offset.isEnabled()
    assert dock.view.verdict is None and dock.label.text() == ""
