"""``fireorder report FILE --still REP``: the frame at the rep's onset is in the HTML (a JPEG,
base64), the one the offset says, with the rep's verdict as its caption; a missing video is
one warning line and the report is still written; a rep the file lacks is one error line.
Also: the sidecar's video entry survives hostile values and round-trips.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from devices.files.sidecar import ReviewStore, VideoEntry
from devices.video.barcode import read_number, write_clip

DEMO = Path(__file__).resolve().parents[1] / "recordings" / "demo_lumbar_first.bdf"
FPS = 30


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    bdf = tmp_path / DEMO.name
    shutil.copy(DEMO, bdf)
    shutil.copy(DEMO.with_name(DEMO.name + ".json"), bdf.with_name(bdf.name + ".json"))
    return bdf


def report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIREORDER_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "app", "report", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_still_of_a_rep_is_the_frame_at_its_onset(recording: Path, tmp_path: Path, capsys) -> None:
    clip = tmp_path / "phone.mp4"
    write_clip(clip, 64.0, FPS)
    offset = 1.7
    ReviewStore(recording).set_video(VideoEntry("phone.mp4", "attached", offset))
    assert main(["analyze", str(recording), "--json"]) == 0
    reps = json.loads(capsys.readouterr().out)["reps"]
    rep = reps[2]
    onset = min(v for v in rep["onsets"].values() if v is not None)
    out = tmp_path / "r.html"
    proc = report(tmp_path, str(recording), "--out", str(out), "--still", "3")
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    found = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', html)
    assert len(found) == 1
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(found[0]))).convert("RGB"))
    assert img.shape[0] >= 200
    want = math.floor((onset + offset) * FPS + 1e-6)
    assert abs(read_number(img) - want) <= 1
    assert f"Rep 3: {rep['order'].replace('_', ' ')}" in html


def test_missing_video_is_one_warning_and_the_report_is_written(
    recording: Path, tmp_path: Path
) -> None:
    ReviewStore(recording).set_video(VideoEntry("nowhere.mp4", "attached", 0.0))
    out = tmp_path / "r.html"
    proc = report(tmp_path, str(recording), "--out", str(out), "--still", "1", "--still", "2")
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("fireorder: warning: --still 1: video")
    assert "not found" in lines[0]
    html = out.read_text(encoding="utf-8")
    assert "no still" in html and "Rep by rep" in html


def test_a_rep_the_file_lacks_is_one_error_line(recording: Path, tmp_path: Path) -> None:
    proc = report(tmp_path, str(recording), "--out", str(tmp_path / "r.html"), "--still", "999")
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--still 999: the file has" in lines[0], proc.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    "value",
    [
        "a string",
        [1, 2],
        {"path": 5},
        {"path": ""},
        {"path": "v.mp4", "offset_s": "1.5", "kind": {"x": 1}, "frames": True},
        {"path": "v.mp4", "offset_s": float("1e300")},
        {"path": "a\x00b"},
    ],
)
def test_hostile_video_entries_are_skipped_or_tamed(recording: Path, value: object) -> None:
    side = recording.with_name(recording.name + ".json")
    doc = json.loads(side.read_text())
    doc["video"] = value
    side.write_text(json.dumps(doc))
    entry = ReviewStore(recording).video()
    if entry is not None:  # a usable path: the rest made sane
        assert entry.path == "v.mp4" and entry.kind in ("recorded", "attached")
        assert entry.offset_s == 0.0 and (entry.frames is None or entry.frames == 1)


def test_video_entry_round_trip(recording: Path, tmp_path: Path) -> None:
    clip = tmp_path / "sub" / "c.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"")
    entry = VideoEntry(VideoEntry.relative(clip, recording), "attached", -3.25)
    assert entry.path == "sub/c.mp4"  # beside the recording: relative, so it travels
    store = ReviewStore(recording)
    assert store.in_sidecar
    store.set_video(entry)
    back = ReviewStore(recording).video()
    assert back is not None and back.offset_s == -3.25 and back.resolve(recording) == clip
    # the recording's other sidecar parts are untouched
    doc = json.loads(recording.with_name(recording.name + ".json").read_text())
    assert doc["schema"] == "fireorder.recording/1" and "stream" in doc
    store.set_video(None)
    assert ReviewStore(recording).video() is None


def video_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIREORDER_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "app", "video", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_video_attached_from_the_cli_aligns_the_reports_still(
    recording: Path, tmp_path: Path, capsys
) -> None:
    """`fireorder video REC --attach CLIP --offset S` keeps what the window's Attach video…
    keeps: the report's still is then the frame at the rep's onset shifted by S."""
    clip = tmp_path / "phone.mp4"
    write_clip(clip, 64.0, FPS)
    proc = video_cli(tmp_path, str(recording))
    assert (proc.returncode, proc.stdout.strip()) == (0, f"{recording}: no video"), proc.stderr
    proc = video_cli(tmp_path, str(recording), "--attach", str(clip), "--offset", "0.9")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "offset +0.900 s, 1920 frames" in proc.stdout
    proc = video_cli(tmp_path, str(recording), "--offset", "2.2")  # moved later, as Sync here
    assert proc.returncode == 0, proc.stderr
    entry = ReviewStore(recording).video()
    assert entry is not None and entry.offset_s == pytest.approx(2.2)
    assert entry.resolve(recording) == clip.resolve()

    assert main(["analyze", str(recording), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["reps"][4]
    onset = min(v for v in rep["onsets"].values() if v is not None)
    out = tmp_path / "r.html"
    proc = report(tmp_path, str(recording), "--out", str(out), "--still", "5")
    assert proc.returncode == 0, proc.stderr
    (found,) = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', out.read_text("utf-8"))
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(found))).convert("RGB"))
    assert abs(read_number(img) - math.floor((onset + 2.2) * FPS + 1e-6)) <= 1

    proc = video_cli(tmp_path, str(recording), "--detach")
    assert proc.returncode == 0 and "no video (detached)" in proc.stdout
    assert ReviewStore(recording).video() is None
    assert clip.is_file()  # the clip itself is never touched


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--attach", "MISSING"], "no such video file"),
        (["--attach", "NOTVIDEO"], "not a readable video: notes.txt: "),
        (["--offset", "nan"], "out of range"),
        (["--offset", "1"], "has no video attached"),
        (["--detach"], "has no video attached"),
    ],
)
def test_video_cli_bad_input_is_one_line(
    recording: Path, tmp_path: Path, args: list[str], says: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a video\n")
    args = [
        {"MISSING": str(tmp_path / "nowhere.mp4"), "NOTVIDEO": str(tmp_path / "notes.txt")}.get(
            a, a
        )
        for a in args
    ]
    before = recording.with_name(recording.name + ".json").read_bytes()
    proc = video_cli(tmp_path, str(recording), *args)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and says in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert recording.with_name(recording.name + ".json").read_bytes() == before  # nothing kept
