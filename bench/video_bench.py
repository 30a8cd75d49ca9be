"""Video benchmark: sync error of a 30 fps clip replayed against a recording, decode time per
seek, and the capture path's frame-time error.

* **sync** (in a child process, real Qt offscreen): the window replays the demo recording
  ``recordings/demo_glute_first.bdf`` (60 s, 2 kHz) threaded, in real time, with a generated
  60 s clip (30 fps, 640x480, each frame's number drawn as a bar code) attached at an offset
  of 0.5 s; a random seek every 8 s (fixed seed). At every GUI frame (after the window's own
  refresh) the number drawn in the picture the dock shows is read off its pixels and
  compared with the frame due at the traces' newest sample: error = (shown - due) x 33.3 ms.
  Frames still being decoded after a seek count as errors (the picture lags). Also: seek to
  the right picture painted (ms).
* **decode per seek**: ``VideoReader.frame`` of 60 random frames of the same clip (each a
  seek to the keyframe before it and a decode forward; keyframes every 2 s).
* **capture**: a QMediaPlayer plays a 10 s clip into the QVideoSink -> writer path the camera
  uses; each written frame's time minus its due time (k/30 after the clip's start, the
  median) -- median/p95/max ms, and frames dropped.

``--quick``: a 20 s clip and replay, 4 s capture. Run ``python -m bench.video_bench
[--quick]``; ``main(argv)`` returns the results and writes ``video.json`` / ``video.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

log = logging.getLogger(__name__)

FPS = 30
OFFSET_S = 0.5
DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo_glute_first.bdf"
TARGET_P95_MS = 1000 / FPS  # within one frame


def _stats_ms(values: Sequence[float]) -> dict[str, float]:
    a = np.abs(np.asarray(values, dtype=float))
    if a.size == 0:
        return {"n": 0}
    return {
        "n": int(a.size),
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "max_ms": float(a.max()),
    }


def _number_of(image: Any) -> int:
    from PyQt6 import QtGui

    from devices.video.barcode import read_number

    img = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    bits = img.constBits()
    bits.setsize(h * stride)
    rgb = np.frombuffer(bits, np.uint8).reshape(h, stride)[:, : 3 * w].reshape(h, w, 3)
    return read_number(rgb)


def measure_sync(folder: Path, seconds: float, seed: int = 5) -> dict[str, Any]:
    import shutil

    from PyQt6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from app.settings_store import SettingsStore
    from app.source_panel import SourceChoice
    from devices.video.barcode import write_clip

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    clip = folder / "clip.mp4"
    t0 = time.perf_counter()
    write_clip(clip, seconds + 2, FPS, 640, 480)
    gen_s = time.perf_counter() - t0
    bdf = folder / DEMO.name
    shutil.copy(DEMO, bdf)
    shutil.copy(DEMO.with_name(DEMO.name + ".json"), bdf.with_name(bdf.name + ".json"))
    store = SettingsStore(
        QtCore.QSettings(str(folder / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    win = MainWindow(store, source=SourceChoice("file", {"path": str(bdf)}), threaded=True)
    win.resize(1366, 740)
    win.show()
    assert win.video.attach_video(str(clip), OFFSET_S)
    fs = win.ctl.fs if win.ctl is not None else 2000.0
    rng = random.Random(seed)
    errors: list[float] = []
    numbers: dict[int, int] = {}  # frame index -> number read off its pixels
    seek_started: list[float] = []
    seek_ms: list[float] = []
    jump_ms: list[float] = []
    steady: list[float] = []
    state: dict[str, Any] = {
        "next_seek": time.monotonic() + 8.0,
        "pending": None,
        "due": None,
        "jumped": None,
    }
    end = time.monotonic() + seconds

    ticks = [0]

    def tick() -> None:
        ticks[0] += 1
        dock = win.video
        tl, shown, image = dock.timeline, dock.view.index, dock.view.image
        if tl is None or image is None or shown is None or win.traces.t_end <= 0:
            return
        due = tl.index_at(win.traces.t_end)
        if due is None:
            return
        if shown not in numbers:
            numbers[shown] = _number_of(image)
        now = time.monotonic()
        if state["due"] is not None and abs(due - state["due"]) > FPS:
            state["jumped"] = now  # the traces jumped (a seek landed): the picture follows
        state["due"] = due
        errors.append((numbers[shown] - due) * 1000.0 / FPS)
        if state["jumped"] is None and now - state.get("landed", 0.0) > 1.0:
            steady.append(errors[-1])  # playing on, a second or more after any seek
        if state["jumped"] is not None and abs(numbers[shown] - due) <= 1:
            jump_ms.append((now - state["jumped"]) * 1000)
            state["jumped"] = None
            state["landed"] = now
        if state["pending"] is not None and numbers[shown] == due:
            seek_ms.append((time.monotonic() - float(state["pending"])) * 1000)
            state["pending"] = None
        if now > state["next_seek"] and win.ctl is not None and win.ctl.replay is not None:
            state["next_seek"] = now + 8.0
            target = rng.randrange(round(5 * fs), round(min(seconds, 55.0) * fs))
            win.replay_bar.seek_requested.emit(target)
            state["pending"] = time.monotonic()
            seek_started.append(now)

    win.timer.timeout.connect(tick)  # (after the window's own refresh: connected first)
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    reader_seeks = win.video.decoder.reader.seeks if win.video.decoder is not None else None
    win.close()
    app.processEvents()
    frames_off = np.abs(np.asarray(errors)) / (1000.0 / FPS)
    return {
        "clip": {"seconds": seconds + 2, "fps": FPS, "size": "640x480", "generate_s": gen_s},
        "offset_s": OFFSET_S,
        "gui_frames": len(errors),
        "gui_fps": ticks[0] / seconds,
        "error": _stats_ms(errors),
        "steady_error": _stats_ms(steady),
        "steady_within_one_frame_pct": float(
            100 * np.mean(np.abs(np.asarray(steady)) <= 1000.0 / FPS)
        )
        if steady
        else None,
        "within_one_frame_pct": float(100 * np.mean(frames_off <= 1)) if errors else None,
        "seeks": len(seek_started),
        "seek_to_right_picture": _stats_ms(seek_ms),
        "traces_jump_to_right_picture": _stats_ms(jump_ms),
        "decoder_seeks": reader_seeks,
        "wall_s": seconds,
        "ended_in_time": time.monotonic() >= end - 0.5,
    }


def measure_decode(folder: Path, n: int = 60, seed: int = 9) -> dict[str, Any]:
    from devices.video.reader import VideoReader

    clip = folder / "clip.mp4"
    t0 = time.perf_counter()
    reader = VideoReader(clip)
    open_s = time.perf_counter() - t0
    rng = random.Random(seed)
    seek: list[float] = []
    for i in rng.sample(range(reader.n_frames), min(n, reader.n_frames)):
        reader.cache.clear()
        t = time.perf_counter()
        reader.frame(i)
        seek.append((time.perf_counter() - t) * 1000)
    step: list[float] = []
    for i in range(100, min(400, reader.n_frames)):
        t = time.perf_counter()
        reader.frame(i)
        step.append((time.perf_counter() - t) * 1000)
    reader.close()
    return {
        "open_ms": open_s * 1000,
        "frames": reader.n_frames,
        "seek_decode": _stats_ms(seek),
        "next_frame_decode": _stats_ms(step),
    }


def measure_capture(folder: Path, seconds: float) -> dict[str, Any]:
    from PyQt6 import QtCore, QtWidgets
    from PyQt6.QtMultimedia import QMediaPlayer

    from app.video_capture import VideoCapture
    from devices.video.barcode import read_number, write_clip
    from devices.video.reader import VideoReader, read_frame_times

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    clip = folder / "camera.mp4"
    write_clip(clip, seconds, FPS)
    first: list[float] = []

    def clock(t: float) -> float:
        if not first:
            first.append(t)
        return t - first[0]

    cap = VideoCapture(folder / "captured.mp4", clock)
    player = cap.start_player(clip)
    deadline = time.monotonic() + seconds + 20
    while player.mediaStatus() != QMediaPlayer.MediaStatus.EndOfMedia:  # type: ignore[attr-defined]
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if time.monotonic() > deadline:
            break
    stats = cap.stop()
    times = read_frame_times(cap.writer.times_path) or []
    reader = VideoReader(cap.path)
    nums = [read_number(reader.frame(i)) for i in range(reader.n_frames)]
    reader.close()
    err = np.array([t - k / FPS for t, k in zip(times, nums, strict=False)])
    err = (err - np.median(err)) * 1000 if err.size else err
    return {
        "clip_frames": round(seconds * FPS),
        "written": stats.written,
        "dropped": stats.dropped,
        "arrivals": cap.arrivals,
        "frame_time_error": _stats_ms(err.tolist()),
    }


def child(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fireorder-video-bench-") as tmp:
        folder = Path(tmp)
        sync = measure_sync(folder, 20.0 if quick else 60.0)
        decode = measure_decode(folder)
        capture = measure_capture(folder, 4.0 if quick else 10.0)
    return {"sync": sync, "decode": decode, "capture": capture}


def run(quick: bool) -> dict[str, Any]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.setdefault("FIREORDER_DATA_DIR", tempfile.mkdtemp(prefix="fireorder-video-data-"))
    cmd = [sys.executable, "-m", "bench.video_bench", "--child", *(["--quick"] if quick else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        log.error("video benchmark failed: %s", proc.stderr[-2000:])
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    res: dict[str, Any] = json.loads(lines[-1])
    res["machine"] = common.machine()
    res["av"] = common.package_version("av")
    return res


def markdown(res: dict[str, Any]) -> str:
    if "error" in res:
        return f"## Video\n\nNot measured: {res['error']}\n"
    s, d, c = res["sync"], res["decode"], res["capture"]
    e = s["error"]
    f = common.fmt
    ok = e.get("p95_ms", 1e9) <= TARGET_P95_MS
    rows = [
        [
            "sync error, frame shown vs due (every GUI frame)",
            f(e.get("median_ms")),
            f(e.get("p95_ms")),
            f(e.get("max_ms")),
            f"{e.get('n')} frames, "
            f"{f(s.get('within_one_frame_pct'))} % within one frame"
            + (" ✅" if ok else " ❌")
            + f" (target p95 ≤ {TARGET_P95_MS:.1f} ms)",
        ],
        [
            "sync error while playing on (from 1 s after a seek)",
            f(s["steady_error"].get("median_ms")),
            f(s["steady_error"].get("p95_ms")),
            f(s["steady_error"].get("max_ms")),
            f"{s['steady_error'].get('n')} frames, "
            f"{f(s.get('steady_within_one_frame_pct'))} % within one frame",
        ],
        [
            "seek request to the right picture painted",
            f(s["seek_to_right_picture"].get("median_ms")),
            f(s["seek_to_right_picture"].get("p95_ms")),
            f(s["seek_to_right_picture"].get("max_ms")),
            f"{s['seeks']} random seeks (includes the EMG's seek and pre-roll)",
        ],
        [
            "traces landed to the right picture",
            f(s["traces_jump_to_right_picture"].get("median_ms")),
            f(s["traces_jump_to_right_picture"].get("p95_ms")),
            f(s["traces_jump_to_right_picture"].get("max_ms")),
            "the video's own lag after a seek",
        ],
        [
            "decode per seek (keyframe + decode forward)",
            f(d["seek_decode"].get("median_ms")),
            f(d["seek_decode"].get("p95_ms")),
            f(d["seek_decode"].get("max_ms")),
            f"{d['seek_decode'].get('n')} random frames, 640x480, keyframe every 2 s",
        ],
        [
            "decode of the next frame (playback)",
            f(d["next_frame_decode"].get("median_ms")),
            f(d["next_frame_decode"].get("p95_ms")),
            f(d["next_frame_decode"].get("max_ms")),
            "300 frames in a row",
        ],
        [
            "capture: frame time vs due",
            f(c["frame_time_error"].get("median_ms")),
            f(c["frame_time_error"].get("p95_ms")),
            f(c["frame_time_error"].get("max_ms")),
            f"QMediaPlayer → QVideoSink → writer; {c['written']} written, {c['dropped']} dropped",
        ],
    ]
    return "\n".join(
        [
            "## Video",
            "",
            f"A {s['clip']['seconds']:.0f} s clip at {FPS} fps ({s['clip']['size']}, frame numbers "
            f"drawn as a bar code) attached at offset {s['offset_s']} s to the demo recording, "
            f"replayed threaded in real time for {s['wall_s']:.0f} s with a random seek every 8 s "
            "(offscreen Qt). PyAV " + str(res.get("av")) + ".",
            "",
            common.md_table(["measure", "median ms", "p95 ms", "max ms", "notes"], rows),
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fireorder video benchmark")
    parser.add_argument("--quick", action="store_true", help="20 s instead of 60 s")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        out = child(args.quick)
        print(json.dumps(common._jsonable(out)))  # the parent reads the last line
        return out
    common.setup_logging(args.verbose)
    res = run(args.quick)
    out_dir = common.out_dir(args.quick)
    common.write_json(out_dir / "video.json", res)
    text = markdown(res)
    common.write_text(out_dir / "video.md", text + "\n")
    print(text)
    return res


if __name__ == "__main__":
    main()
