"""The Video dock: a recording's video in sync with the traces, the rep's verdict over it,
and the controls to align an attached clip (scrub, step frames, "Sync here", an offset).

It follows the replay every frame (:meth:`VideoDock.follow`, from the review's frame slot):
the EMG time is the newest sample the traces show (``traces.t_end``, the replay's "now"),
so seeks, rep jumps, pause and speed need nothing of their own. The frame wanted is decoded
on a worker thread (PyAV, :class:`devices.video.reader.VideoReader` with its small cache);
only the newest request counts, and the GUI thread only paints the QImage it gets back.

Live, the dock offers "Record video" (a camera from ``QMediaDevices.videoInputs()``; with
none the action is disabled and says so); while the EMG records, the camera goes to
``NAME.mp4`` beside ``NAME.bdf`` (see :mod:`app.video_capture`), listed in its sidecar.

A missing, unreadable or unsupported video never stops EMG work: one status-bar message,
the dock says why, the replay or recording goes on.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PyQt6 import QtCore, QtGui, QtWidgets

from app.theme import VERDICT_COLOR, VERDICT_TEXT
from devices.files.sidecar import ReviewStore, VideoEntry
from devices.video.sync import Timeline, stream_index_at, sync_offset, timeline_for
from dsp.reps import Verdict

if TYPE_CHECKING:
    from app.video_capture import VideoCapture
    from devices.files.recorder import RecordingSummary
    from dsp.reps import RepResult

log = logging.getLogger(__name__)

VIDEO_FILTER = "Video (*.mp4 *.mov *.m4v *.mkv *.avi *.webm *.3gp);;All files (*)"


def _verdict(order: str) -> Verdict | None:
    try:
        return Verdict(order)
    except ValueError:
        return None


#: frames between the picture shown and the one due beyond which the picture is dimmed
#: while the right one decodes (a third of a second at 30 fps: playback never gets there)
_STALE_FRAMES = 10


class FrameView(QtWidgets.QWidget):
    """The picture, scaled to fit, with the current rep's verdict in big coloured text."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("video_view")
        self.image: QtGui.QImage | None = None
        self.index: int | None = None  # frame number of the picture shown
        self.verdict: str | None = None
        self.caption = ""
        self.message = "no video"
        #: the picture is far from the frame due (just after a seek): drawn dimmed until the
        #: right frame is decoded, so a stale hinge is never read as the rep's
        self.stale = False
        self.setMinimumSize(160, 120)
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding
        )

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        return QtCore.QSize(320, 240)

    def show_image(self, index: int | None, image: QtGui.QImage | None) -> None:
        self.index, self.image = index, image
        self.stale = False
        self.update()

    def set_stale(self, stale: bool) -> None:
        if stale != self.stale:
            self.stale = stale
            self.update()

    def set_verdict(self, order: str | None, caption: str = "") -> None:
        if (order, caption) != (self.verdict, self.caption):
            self.verdict, self.caption = order, caption
            self.update()

    def paintEvent(self, _event: QtGui.QPaintEvent | None) -> None:  # noqa: N802 (Qt API)
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor("#111"))
        if self.image is None or self.image.isNull():
            p.setPen(QtGui.QColor("#bbb"))
            p.drawText(self.rect(), QtCore.Qt.AlignmentFlag.AlignCenter, self.message)
            p.end()
            return
        size = self.image.size().scaled(self.size(), QtCore.Qt.AspectRatioMode.KeepAspectRatio)
        x, y = (self.width() - size.width()) // 2, (self.height() - size.height()) // 2
        target = QtCore.QRect(x, y, size.width(), size.height())
        p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(target, self.image)
        if self.stale:
            p.fillRect(target, QtGui.QColor(0, 0, 0, 170))
            p.setPen(QtGui.QColor("#ddd"))
            p.drawText(target, QtCore.Qt.AlignmentFlag.AlignCenter, "finding the frame...")
            p.end()
            return
        if self.verdict is not None:
            verdict = _verdict(self.verdict)
            text = self.verdict.upper() if verdict is None else VERDICT_TEXT[verdict]
            font = QtGui.QFont(self.font())
            font.setBold(True)
            # big (a seventh of the picture's height, narrowed to fit its width), and the
            # rest of the picture -- the hinge -- stays in view
            font.setPixelSize(max(12, min(target.height() // 7, 40)))
            while font.pixelSize() > 12 and (
                QtGui.QFontMetrics(font).horizontalAdvance(text) > target.width() - 16
            ):
                font.setPixelSize(font.pixelSize() - 2)
            p.setFont(font)
            fm = QtGui.QFontMetrics(font)
            band = QtCore.QRect(target.left(), target.top(), target.width(), fm.height() + 10)
            colour = QtGui.QColor(VERDICT_COLOR[verdict] if verdict is not None else "#7f8c8d")
            colour.setAlpha(220)
            p.fillRect(band, colour)
            p.setPen(QtGui.QColor("white"))
            p.drawText(band, QtCore.Qt.AlignmentFlag.AlignCenter, text)
            if self.caption:
                small = QtGui.QFont(self.font())
                small.setPixelSize(max(11, font.pixelSize() // 2))
                p.setFont(small)
                sub = QtCore.QRect(
                    band.left(), band.bottom(), band.width(), QtGui.QFontMetrics(small).height() + 4
                )
                p.fillRect(sub, QtGui.QColor(0, 0, 0, 160))
                p.drawText(sub, QtCore.Qt.AlignmentFlag.AlignCenter, self.caption)
        p.end()


class Decoder(QtCore.QObject):
    """A worker thread that decodes the newest frame asked for and emits it as a QImage;
    while the replay plays it decodes the next frames ahead into a small cache of QImages,
    which the GUI thread shows at once (no round trip to the worker)."""

    decoded = QtCore.pyqtSignal(int, QtGui.QImage)
    failed = QtCore.pyqtSignal(str)
    CACHE = 40  # QImages (at 640x480 about 37 MB): 1.3 s of playback, a few steps back

    def __init__(self, path: Path, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self._wanted: int | None = None
        self._stop = False
        self._cond = threading.Condition()
        self._images: OrderedDict[int, QtGui.QImage] = OrderedDict()
        self.ahead = 0  # frames to decode past the one asked for (0 = paused: none)
        self.reader: Any = None
        self.ready = threading.Event()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="video-decode", daemon=True)
        self._thread.start()

    def cached(self, index: int) -> QtGui.QImage | None:
        with self._cond:
            image = self._images.get(index)
            if image is not None:
                self._images.move_to_end(index)
            return image

    def want(self, index: int) -> None:
        with self._cond:
            self._wanted = index
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5.0)

    def _image(self, index: int) -> QtGui.QImage:
        rgb = self.reader.frame(index)
        h, w = rgb.shape[:2]
        image = QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
        with self._cond:  # (a copy above: rgb may leave the reader's cache)
            self._images[index] = image
            self._images.move_to_end(index)
            while len(self._images) > self.CACHE:
                self._images.popitem(last=False)
        return image

    def _run(self) -> None:
        from devices.video.reader import VideoError, VideoReader

        try:
            self.reader = VideoReader(self.path, cache_frames=8)
        except VideoError as exc:
            self.error = str(exc)
            self.ready.set()
            self.failed.emit(self.error)
            return
        self.ready.set()
        last = -1
        try:
            while True:
                with self._cond:
                    while self._wanted is None and not self._stop:
                        # nothing asked: decode ahead of the last frame while playing
                        nxt = (
                            next(
                                (
                                    i
                                    for i in range(last + 1, last + 1 + self.ahead)
                                    if i < self.reader.n_frames and i not in self._images
                                ),
                                None,
                            )
                            if last >= 0
                            else None
                        )
                        if nxt is not None:
                            break
                        self._cond.wait()
                    if self._stop:
                        return
                    index, self._wanted = self._wanted, None
                try:
                    if index is None:  # ahead
                        self._image(nxt)  # type: ignore[arg-type]
                        continue
                    hit = self.cached(index)
                    image = hit if hit is not None else self._image(index)
                except VideoError as exc:
                    self.failed.emit(str(exc))
                    continue
                last = index
                self.decoded.emit(index, image)
        finally:
            self.reader.close()


class VideoDock(QtWidgets.QWidget):
    """See the module docstring. ``window``: the MainWindow."""

    def __init__(self, window: Any) -> None:
        super().__init__()
        self.win = window
        self.setObjectName("video_dock")
        self.view = FrameView()
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setObjectName("video_slider")
        self.slider.setEnabled(False)
        self.slider.sliderMoved.connect(self.scrub_to)
        self.slider.setToolTip("scrub the video (, and . step one frame)")
        self.back = QtWidgets.QToolButton()
        self.fwd = QtWidgets.QToolButton()
        self.back.setText("◀")
        self.fwd.setText("▶")
        self.back.setToolTip("previous frame (,)")
        self.fwd.setToolTip("next frame (.)")
        self.back.clicked.connect(lambda: self.step(-1))
        self.fwd.clicked.connect(lambda: self.step(+1))
        self.sync_button = QtWidgets.QPushButton("Sync here")
        self.sync_button.setObjectName("video_sync")
        self.sync_button.setToolTip(
            "the video frame shown is the moment at the traces' right edge: keep that offset"
        )
        self.sync_button.clicked.connect(self.sync_here)
        self.offset = QtWidgets.QDoubleSpinBox()
        self.offset.setObjectName("video_offset")
        self.offset.setRange(-36000.0, 36000.0)  # (10 h either way)
        self.offset.setDecimals(3)
        self.offset.setSingleStep(1 / 30)
        self.offset.setSuffix(" s")
        self.offset.setToolTip("offset: video time = EMG time + offset (type it, or Sync here)")
        self.offset.editingFinished.connect(self._offset_typed)
        self.detach_button = QtWidgets.QPushButton("Detach")
        self.detach_button.clicked.connect(self.detach_video)
        self.label = QtWidgets.QLabel("")
        self.label.setObjectName("video_label")
        self.label.setWordWrap(True)  # (its text must never widen the dock, nor the window)
        # live: the camera to record (QMediaDevices.videoInputs()) and the Record video toggle
        self.camera_row = QtWidgets.QWidget()
        self.camera_box = QtWidgets.QComboBox()
        self.camera_box.setObjectName("video_camera")
        self.camera_box.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.camera_box.setMinimumContentsLength(6)
        self.camera_box.setToolTip("the camera to record")
        self.record_button = QtWidgets.QToolButton()
        row0 = QtWidgets.QHBoxLayout(self.camera_row)
        row0.setContentsMargins(0, 0, 0, 0)
        row0.addWidget(self.camera_box, 1)
        row0.addWidget(self.record_button)
        # review: the controls to scrub and align (hidden live, where they mean nothing)
        self.align_box = QtWidgets.QWidget()
        rows = QtWidgets.QVBoxLayout(self.align_box)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.setSpacing(2)
        row1 = QtWidgets.QHBoxLayout()
        row1.setContentsMargins(0, 0, 0, 0)
        row1.addWidget(self.back)
        row1.addWidget(self.slider, 1)
        row1.addWidget(self.fwd)
        row2 = QtWidgets.QHBoxLayout()
        row2.setContentsMargins(0, 0, 0, 0)
        row2.addWidget(self.sync_button)
        row2.addWidget(self.offset, 1)
        row2.addWidget(self.detach_button)
        box = QtWidgets.QVBoxLayout(self)
        box.setContentsMargins(2, 2, 2, 2)
        box.setSpacing(2)
        box.addWidget(self.camera_row)
        box.addWidget(self.view, 1)
        rows.addLayout(row1)
        rows.addLayout(row2)
        box.addWidget(self.align_box)
        box.addWidget(self.label)
        self.recording: Path | None = None  # the replayed file the video belongs to
        self.entry: VideoEntry | None = None
        self.timeline: Timeline | None = None
        self.decoder: Decoder | None = None
        self.wanted: int | None = None
        self.scrubbing = False  # the user moves the video by hand: it stops following
        self.capture: VideoCapture | None = None
        self.last_capture: VideoCapture | None = None
        self._capture_first: float | None = None
        self._set_controls(False)

    # -- the dock widget and the menu actions (built by the window) -------------------------------
    def build(self) -> QtWidgets.QDockWidget:
        win = self.win
        dock = win._dock("Video", self, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        source = next((d for d in win.docks if d.windowTitle() == "Source"), None)
        if source is not None:
            win.tabifyDockWidget(source, dock)  # the source panel is the technician's, live
            source.raise_()
        self.dock = dock
        return dock

    def build_replay_actions(self, menu: QtWidgets.QMenu) -> list[QtGui.QAction]:
        act = self.win._action
        menu.addSeparator()
        self.act_attach = act(menu, "Attach video…", self.ask_attach)
        self.act_detach = act(menu, "Detach video", self.detach_video)
        self.act_prev_frame = act(menu, "Video: previous frame", lambda *_: self.step(-1), ",")
        self.act_next_frame = act(menu, "Video: next frame", lambda *_: self.step(+1), ".")
        self.act_sync = act(menu, "Video: sync here", self.sync_here, "Ctrl+Shift+S")
        return [
            self.act_attach,
            self.act_detach,
            self.act_prev_frame,
            self.act_next_frame,
            self.act_sync,
        ]

    def build_session_action(self, menu: QtWidgets.QMenu) -> QtGui.QAction:
        from app.video_capture import cameras

        self.act_record_video = self.win._action(
            menu, "Record video", self.set_record_video, checkable=True
        )
        found = cameras()
        for cam in found:
            self.camera_box.addItem(cam.description(), cam)  # type: ignore[attr-defined]
        if not found:
            self.camera_box.addItem("no camera found")
        self.camera_box.setEnabled(bool(found))
        self.act_record_video.setEnabled(bool(found))
        self.act_record_video.setToolTip(
            "record the camera beside the EMG" if found else "no camera found"
        )
        self.record_button.setDefaultAction(self.act_record_video)
        menu.setToolTipsVisible(True)
        return self.act_record_video

    def _say(self, text: str, ms: int = 8000) -> None:
        self.win._say(text, ms)

    def _set_controls(self, on: bool) -> None:
        for w in (
            self.slider,
            self.back,
            self.fwd,
            self.sync_button,
            self.offset,
            self.detach_button,
        ):
            w.setEnabled(on)

    # -- the replayed file's video ----------------------------------------------------------------
    def attach(self, ctl: Any) -> None:
        """A new session: a replay shows its video if it has one; anything else none."""
        self._close_video()
        replay = ctl.replay if ctl is not None else None
        self.recording = Path(replay.path) if replay is not None else None
        self.camera_row.setVisible(ctl is not None and replay is None)
        self.align_box.setVisible(replay is not None)
        if ctl is not None and replay is None:
            self.view.message = "live: Record video records the camera with the EMG"
            self.view.update()
        for a in getattr(self, "act_attach", None), getattr(self, "act_detach", None):
            if a is not None:
                a.setEnabled(replay is not None)
        if self.recording is None:
            return
        entry = ReviewStore(self.recording).video()
        if entry is not None:
            self._open(entry)

    def shutdown(self) -> None:
        """The window closes: the decoding thread ends, a camera recording is finished."""
        self.recording_stopped(None)
        self._close_video()

    def _close_video(self) -> None:
        if self.decoder is not None:
            self.decoder.decoded.disconnect(self._decoded)
            self.decoder.failed.disconnect(self._failed)
            self.decoder.close()
        self.decoder = None
        self.entry = self.timeline = None
        self.wanted = None
        self.scrubbing = False
        self.view.message = "no video: Replay ▸ Attach video…"
        self.offset.blockSignals(True)
        self.offset.setValue(0.0)  # (the next recording's own offset, not the last one's)
        self.offset.blockSignals(False)
        self.view.show_image(None, None)
        self.view.set_verdict(None)
        self.label.setText("")
        self._set_controls(False)

    def _open(self, entry: VideoEntry) -> bool:
        """Open the video of ``entry``; on failure one message, the EMG goes on."""
        assert self.recording is not None
        path = entry.resolve(self.recording)
        self._close_video()
        self.entry = entry
        if not path.is_file():
            self.label.setToolTip(str(path))  # (where it was looked for)
            return self._trouble(f"video {path.name} not found; EMG review goes on")
        decoder = Decoder(path, self)
        decoder.ready.wait(30.0)
        if decoder.error is not None or decoder.reader is None:
            decoder.close()
            return self._trouble(f"video unreadable: {decoder.error}; EMG review goes on")
        self.decoder = decoder
        decoder.decoded.connect(self._decoded)
        decoder.failed.connect(self._failed)
        self.timeline = timeline_for(entry, self.recording, decoder.reader)
        times = self.timeline.frame_times
        self.slider.setRange(0, len(times) - 1)
        self.offset.blockSignals(True)
        self.offset.setValue(entry.offset_s)
        self.offset.blockSignals(False)
        self._set_controls(True)
        self.view.message = "video: before its first frame"
        self._label()
        if hasattr(self, "dock"):
            self.dock.show()
            self.dock.raise_()
        return True

    def _trouble(self, message: str) -> bool:
        log.warning("%s", message)
        self.view.message = message.split(":", 1)[0]
        self.view.update()
        self.label.setText(message)
        self.label.setWordWrap(True)
        self._say(message, 10000)
        if self.entry is not None:
            self.detach_button.setEnabled(True)  # a lost file can still be detached
        return False

    def _label(self) -> None:
        tl = self.timeline
        if tl is None or self.entry is None:
            return
        i = self.view.index
        at = f"frame {i + 1}/{len(tl.frame_times)}" if i is not None else "no frame"
        kind = "recorded" if self.entry.kind == "recorded" else "attached"
        self.label.setText(f"{kind} · {at} · offset {tl.offset_s:+.3f} s")

    # -- following the traces ---------------------------------------------------------------------
    def follow(self, emg_s: float) -> None:
        """Every frame: show the frame at EMG time ``emg_s`` (unless the user scrubs)."""
        tl = self.timeline
        if tl is None or self.decoder is None or not self.isVisible():
            return  # (behind the Source tab, or closed: nothing decoded for no one)
        ctl = self.win.ctl
        replay = ctl.replay if ctl is not None else None
        if self.scrubbing:
            if replay is None or replay.paused:
                self._update_verdict()
                return
            self.scrubbing = False  # playback took over again
        selected = self.win.review.selected
        if selected is not None and (replay is None or replay.paused):
            # a rep picked for review (←/→, a click in the Reps table): the picture is that
            # rep's first onset -- the hinge the verdict over it belongs to -- not whatever
            # the traces' edge happens to be at
            rep = self.win.review.rep(selected)
            if rep is not None and ctl is not None and ctl.fs:
                first = min((i for i in rep.onsets.values() if i is not None), default=rep.start)
                window = self.win.traces.window_s
                if emg_s - window <= first / ctl.fs <= emg_s:  # (a seek elsewhere: follow it)
                    emg_s = first / ctl.fs
        index = tl.index_at(emg_s)
        if index is None:
            if self.view.image is not None:
                self.view.show_image(None, None)
            self.wanted = None
        else:
            self._want(index)
        self._update_verdict()

    def _want(self, index: int) -> None:
        if index == self.wanted:
            return
        self.wanted = index
        decoder = self.decoder
        assert decoder is not None
        ctl = self.win.ctl
        replay = ctl.replay if ctl is not None else None
        playing = replay is not None and not replay.paused and not self.scrubbing
        speed = (replay.speed or 4.0) if replay is not None else 1.0
        decoder.ahead = max(4, round(12 * speed)) if playing else 0
        image = decoder.cached(index)
        if image is not None:  # decoded ahead: shown in this very frame
            self._decoded(index, image)
        elif self.view.index is not None and abs(index - self.view.index) > _STALE_FRAMES:
            self.view.set_stale(True)  # a seek: the old picture is not this moment's
        decoder.want(index)  # (also when cached: the worker then decodes on from it)

    def _decoded(self, index: int, image: QtGui.QImage) -> None:
        wanted, shown = self.wanted, self.view.index
        if wanted is None or index > wanted:
            return  # overtaken (the user stepped back, a seek): the right one is on its way
        if index != wanted and shown is not None and abs(wanted - shown) <= abs(wanted - index):
            return  # an older frame no nearer than the picture shown
        self.view.show_image(index, image)
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        self._label()

    def _failed(self, message: str) -> None:
        self._trouble(f"video: {message}; EMG review goes on")

    def _update_verdict(self) -> None:
        """The verdict of the rep at the traces' edge (the selected rep when there is one)."""
        rep = self._current_rep()
        if rep is None:
            self.view.set_verdict(None)
            return
        lag = "" if rep.lag_ms is None else f"lag {rep.lag_ms:+.0f} ms"
        self.view.set_verdict(rep.order, f"rep {rep.index + 1}" + (f" · {lag}" if lag else ""))

    def _current_rep(self) -> RepResult | None:
        ctl = self.win.ctl
        review = self.win.review
        if ctl is None or not ctl.fs:
            return None
        if review.selected is not None:
            return review.rep(review.selected)  # type: ignore[no-any-return]
        now = round(self.win.traces.t_end * ctl.fs)
        best = None
        for rep in review.reps():
            if rep.start > now:
                break
            if rep.end is None or now <= rep.end + round(1.0 * ctl.fs):
                best = rep  # the rep under way (its verdict stays a second after its end)
        return best

    # -- aligning an attached clip --------------------------------------------------------------
    def scrub_to(self, index: int) -> None:
        if self.timeline is None:
            return
        self.scrubbing = True
        self._want(max(0, min(int(index), len(self.timeline.frame_times) - 1)))

    def step(self, frames: int) -> None:
        """,/.: one frame back / on (the video stops following the traces until Sync here)."""
        if self.timeline is None:
            return
        here = self.wanted if self.wanted is not None else self.slider.value()
        self.scrub_to(here + frames)

    def sync_here(self) -> None:
        """The frame shown is the moment at the traces' right edge: keep that offset."""
        tl, entry = self.timeline, self.entry
        if tl is None or entry is None or self.wanted is None:
            self._say("no video frame shown to sync", 4000)
            return
        emg = float(self.win.traces.t_end)
        offset = sync_offset(tl.frame_times[self.wanted], emg)
        self.set_offset(offset)
        from app.time_axis import clock_text

        self._say(
            f"video synced: frame {self.wanted + 1} at EMG {clock_text(emg)} "
            f"(offset {offset:+.3f} s)",
            8000,
        )

    def _offset_typed(self) -> None:
        if self.timeline is not None and abs(self.offset.value() - self.timeline.offset_s) > 1e-6:
            self.set_offset(self.offset.value())
        if self.offset.hasFocus():  # the review's keys (←/→, Space) work again at once
            self.win.traces.setFocus()

    def set_offset(self, offset: float) -> None:
        """Use and keep ``offset`` (video time = EMG time + offset)."""
        if self.timeline is None or self.entry is None or self.recording is None:
            return
        from dataclasses import replace

        self.timeline = replace(self.timeline, offset_s=float(offset))
        self.entry = replace(self.entry, offset_s=float(offset), when="")
        self.scrubbing = False
        self.offset.blockSignals(True)
        self.offset.setValue(offset)
        self.offset.blockSignals(False)
        self._store(self.entry)
        self._label()

    def _store(self, entry: VideoEntry | None) -> None:
        assert self.recording is not None
        try:
            where = ReviewStore(self.recording).set_video(entry)
            log.info("video entry kept in %s", where)
        except OSError as exc:
            self._say(f"video setting not saved: {exc}", 10000)

    def ask_attach(self) -> None:
        if self.recording is None:
            self._say("open a recording to attach a video to", 4000)
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self.win, "Attach video", str(self.recording.parent), VIDEO_FILTER
        )
        if path:
            self.attach_video(path)

    def attach_video(self, path: str, offset_s: float = 0.0) -> bool:
        """Attach the clip at ``path`` to the replayed recording (kept in its review)."""
        if self.recording is None:
            return False
        entry = VideoEntry(VideoEntry.relative(path, self.recording), "attached", offset_s)
        ok = self._open(entry)
        if ok:
            self._store(entry)
            self._say(
                f"video {Path(path).name} attached; to align it: pause at an event, Sync here",
                10000,
            )
        return ok

    def detach_video(self) -> None:
        if self.recording is None or self.entry is None:
            return
        self._close_video()
        self._store(None)
        self._say("video detached", 4000)

    # -- recording a camera beside the EMG ------------------------------------------------------
    def set_record_video(self, on: bool) -> None:
        """The Record video toggle: the camera records whenever the EMG records."""
        ctl = self.win.ctl
        if on and ctl is not None and ctl.recorder is not None and self.capture is None:
            self.recording_started(ctl.recorder.path)
        elif not on and self.capture is not None:
            self.recording_stopped(None)

    def clock(self, t: float) -> float | None:
        """Host time -> EMG file seconds of the recording (the frame's session time)."""
        ctl = self.win.ctl
        rec = ctl.recorder if ctl is not None else None
        if ctl is None or rec is None or not ctl.fs:
            return None
        index = stream_index_at(ctl.session, t)
        if index is None:
            return None
        # the recording's first stream index (known once its first chunk is written; until
        # then the position at its start)
        first = getattr(rec, "_first", None)
        if first is None:
            first = self._capture_first
        return None if first is None else (index - first) / ctl.fs

    def recording_started(self, bdf: str | Path, source: object | None = None) -> None:
        """The EMG records: record the camera (or ``source``, a clip as stand-in) too."""
        act = getattr(self, "act_record_video", None)
        if source is None and (act is None or not act.isChecked()):
            return
        from app.video_capture import VideoCapture

        ctl = self.win.ctl
        self._capture_first = float(ctl.position) if ctl is not None else None
        out = Path(bdf).with_suffix(".mp4")
        self.capture = VideoCapture(out, self.clock, self)
        self.capture.failed.connect(
            lambda why: self._say(f"video recording stopped ({why}); the EMG records on", 10000)
        )
        try:
            if source is not None:
                self.capture.start_player(source)  # type: ignore[arg-type]
            else:
                self.capture.start_camera(self.camera_box.currentData())
        except Exception as exc:
            self.capture = None
            self._say(f"video not recorded: {exc}; the EMG records", 10000)

    def recording_stopped(self, summary: RecordingSummary | None) -> VideoEntry | None:
        """The EMG recording ended: finish the video and list it in the sidecar."""
        cap, self.capture = self.capture, None
        if cap is None:
            return None
        self.last_capture = cap  # (its stamps: for the benchmark)
        stats = cap.stop()
        if stats.error:
            self._say(stats.error + "; the EMG recording is complete", 10000)
        if stats.written == 0 or summary is None:
            return None
        bdf = Path(summary.path)
        entry = VideoEntry(
            VideoEntry.relative(cap.path, bdf),
            "recorded",
            0.0,
            VideoEntry.relative(cap.writer.times_path, bdf),
            stats.written,
            stats.dropped,
        )
        try:
            ReviewStore(bdf).set_video(entry)
        except OSError as exc:
            self._say(f"video saved as {cap.path} but not listed: {exc}", 10000)
        if stats.dropped:
            log.info("video %s: %d frames, %d dropped", cap.path, stats.written, stats.dropped)
        return entry
