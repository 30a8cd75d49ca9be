"""Video beside the EMG: recorded with a session, or a phone clip attached to a recording.

Qt-free (the window's camera and dock live in ``app``):

* :mod:`devices.video.writer` -- H.264 MP4 writer on its own thread; each frame's time on the
  session clock (EMG file seconds) is its pts and a line of the frame-times file.
* :mod:`devices.video.reader` -- exact frame decoding by index or time, with a small cache.
* :mod:`devices.video.sync` -- the offset model (video time = EMG time + offset) and the
  mapping of a host time to the EMG stream index.
* :mod:`devices.video.barcode` -- a generated clip whose frames carry their own number
  (tests and the benchmark measure sync against it).

Why PyAV (FFmpeg's libraries, bundled in its wheel) for files: it gives every frame's pts and
exact seeks to a keyframe followed by decoding to the wanted frame, so "the frame shown at EMG
time t" is a frame index, not a guess. Qt's QMediaPlayer seeks approximately and reports no
frame index; it is used only as a frame source (the camera path) in ``app``.
"""
