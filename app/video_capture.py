"""Camera frames into the video writer, each stamped on arrival with the EMG file time.

Qt Multimedia gives the camera (``QCamera`` -> ``QMediaCaptureSession`` -> ``QVideoSink``):
it is part of the Qt the window already uses (no second capture library, the same FFmpeg
backend on Linux, Windows and macOS), lists the cameras (``QMediaDevices.videoInputs``) and
hands each frame to a slot on the GUI thread. The slot stamps the frame at once
(``time.monotonic``), turns it into RGB and queues it to :class:`devices.video.writer.VideoWriter`
(never blocking: a full queue drops the frame and counts it).

The same sink also takes a ``QMediaPlayer`` (:meth:`VideoCapture.start_player`): a clip played
in real time stands in for a camera where there is none (tests, the benchmark).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PyQt6 import QtCore, QtGui

from devices.video.writer import VideoWriter, WriterStats

log = logging.getLogger(__name__)

#: host time (time.monotonic) -> EMG file seconds of the sample taken then (None: not yet)
Clock = Callable[[float], float | None]


def cameras() -> list[object]:
    """The cameras Qt sees (``QCameraDevice``); empty when there are none or Qt Multimedia
    cannot load (a missing system library must not stop the window)."""
    try:
        from PyQt6.QtMultimedia import QMediaDevices

        return list(QMediaDevices.videoInputs())
    except Exception as exc:  # ImportError, a backend that fails to load
        log.info("no camera support: %s", exc)
        return []


def image_to_rgb(image: QtGui.QImage, max_width: int = 640) -> NDArray[np.uint8]:
    """RGB array (H x W x 3) of ``image``, scaled down to at most ``max_width``."""
    if image.width() > max_width:
        image = image.scaledToWidth(max_width, QtCore.Qt.TransformationMode.FastTransformation)
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    bits = image.constBits()
    assert bits is not None
    rows = np.frombuffer(bits.asstring(h * stride), np.uint8).reshape(h, stride)
    return rows[:, : 3 * w].reshape(h, w, 3).copy()


class VideoCapture(QtCore.QObject):
    """Frames of a camera (or a stand-in player) to ``out`` (an MP4), stamped by ``clock``.
    ``failed(message)`` once when the camera or the writer gives up (the EMG goes on)."""

    failed = QtCore.pyqtSignal(str)

    def __init__(self, out: str | Path, clock: Clock, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        from PyQt6.QtMultimedia import QVideoSink

        self.writer = VideoWriter(out)
        self.clock = clock
        self.sink = QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._frame)
        self.arrivals = 0
        self.early = 0  # frames before the EMG's first sample (nothing to put them beside)
        # (arrival host time, session time) of the newest frames: the benchmark's and the
        # tests' view of the stamping
        self.stamps: deque[tuple[float, float]] = deque(maxlen=20_000)
        self._camera: object | None = None
        self._session: object | None = None
        self._player: object | None = None
        self._told = False

    @property
    def path(self) -> Path:
        return self.writer.path

    def start_camera(self, device: object) -> None:
        from PyQt6.QtMultimedia import QCamera, QMediaCaptureSession

        self.writer.start()
        session = QMediaCaptureSession(self)
        camera = QCamera(device, self)  # type: ignore[call-overload]
        session.setCamera(camera)
        session.setVideoSink(self.sink)
        self._camera, self._session = camera, session
        camera.errorOccurred.connect(lambda _e, text: self._fail(f"camera: {text}"))
        camera.start()

    def start_player(self, clip: str | Path) -> object:
        """A clip played in real time as the camera; the player (for its state)."""
        from PyQt6.QtMultimedia import QMediaPlayer

        self.writer.start()
        player = QMediaPlayer(self)
        player.setVideoSink(self.sink)
        player.setSource(QtCore.QUrl.fromLocalFile(str(Path(clip).resolve())))
        self._player = player
        player.play()
        return player

    def _fail(self, message: str) -> None:
        if not self._told:
            self._told = True
            log.warning("video recording: %s", message)
            self.failed.emit(message)

    def _frame(self, frame: object) -> None:
        arrived = time.monotonic()  # first: the stamp is the arrival, not after converting
        self.arrivals += 1
        t = self.clock(arrived)
        if t is None or t < 0:
            self.early += 1
            return
        image = frame.toImage()  # type: ignore[attr-defined]
        if image.isNull():
            return
        self.stamps.append((arrived, t))
        self.writer.put(image_to_rgb(image), t)
        if self.writer.stats.error is not None:
            self._fail(self.writer.stats.error)

    def stop(self) -> WriterStats:
        """Stop the camera (or player) and finish the file; the counts."""
        self.sink.videoFrameChanged.disconnect(self._frame)
        for thing in (self._camera, self._player):
            if thing is not None:
                thing.stop()  # type: ignore[attr-defined]
        return self.writer.close()
