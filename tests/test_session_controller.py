"""The Qt-free session controller that the window and ``fireorder live``/``record`` share,
and the command-line behaviour built on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devices.drivers.file_replay import FileSource
from devices.drivers.simulator import SimulatorDevice
from devices.files import read_recording
from devices.files.sidecar import ReviewStore, browse
from devices.session.controller import RecordingError, SessionController
from devices.session.states import MarkKind, SessionState
from dsp.analysis import analyze
from dsp.contract import Role
from dsp.reps import GLUTE_FIRST, UNDETERMINED, glute_first_pct
from dsp.settings import DspSettings
from tests.cli_run import run_cli

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_glute_first.bdf"


def sim(**kw: object) -> SimulatorDevice:
    return SimulatorDevice(preset="clean", realtime=False, seed=4, **kw)  # type: ignore[arg-type]


def test_events_route_to_tally_callbacks_and_recording(tmp_path: Path) -> None:
    ctl = SessionController(sim(), recordings_dir=tmp_path, device_marks=MarkKind.TRUTH)
    seen: dict[str, int] = {"rep": 0, "final": 0, "onset": 0, "mark": 0}
    states: list[SessionState] = []
    ctl.on_rep = lambda r: seen.__setitem__("rep", seen["rep"] + 1)
    ctl.on_rep_final = lambda e: seen.__setitem__("final", seen["final"] + 1)
    ctl.on_onset = lambda e: seen.__setitem__("onset", seen["onset"] + 1)
    ctl.on_mark = lambda m: seen.__setitem__("mark", seen["mark"] + 1)
    ctl.on_state = states.append
    ctl.open()
    path = ctl.start_recording()
    ctl.start(threaded=False)
    ctl.pump(5.0)
    ctl.apply_settings(ctl.settings.with_(k_on=ctl.settings.k_on + 1.0))
    ctl.calibration_changed({"note": "test calibration"})
    mark = ctl.mark()
    ctl.pump(15.0)
    summary = ctl.close()
    assert summary is not None and summary.path == path and path.exists()
    # (a verdict seen again after re-judging replaces the first in the tally)
    assert seen["rep"] >= len(ctl.tally.reps) >= 3 and seen["final"] >= 2 and seen["onset"] > 0
    assert seen["mark"] > 1  # the simulator's truth markers and the user's mark
    assert states[:2] == [SessionState.OPEN, SessionState.STREAMING]
    assert states[-1] == SessionState.CLOSED
    side = json.loads(path.with_name(path.name + ".json").read_text())
    assert side["settings_changes"] and side["calibration"] == {"note": "test calibration"}
    texts = [a.text for a in read_recording(path).annotations]
    assert "mark: mark 1" in texts and "calibration changed" in texts
    assert any(t.startswith("truth ") for t in texts)
    assert mark.index > 0 and mark.kind == MarkKind.MARK


def test_a_new_controller_starts_empty(tmp_path: Path) -> None:
    first = SessionController(sim())
    first.open()
    first.start(threaded=False)
    first.pump(12.0)
    first.mark()
    assert first.tally.reps and first.marks
    first.close()
    second = SessionController(sim())
    second.open()
    assert second.tally.reps == [] and second.marks == [] and second.corrections == []


def test_recording_into_an_existing_file_is_refused(tmp_path: Path) -> None:
    ctl = SessionController(sim())
    ctl.open()
    taken = tmp_path / "taken.bdf"
    taken.write_bytes(b"x")
    with pytest.raises(RecordingError, match="exists"):
        ctl.start_recording(taken)
    ctl.close()
    assert taken.read_bytes() == b"x"


def test_replay_notes_and_corrections_of_an_example_go_to_the_data_folder(tmp_path) -> None:
    before = DEMO.with_name(DEMO.name + ".json").read_bytes()
    ctl = SessionController(FileSource(str(DEMO), speed=None))
    ctl.open()
    ctl.start(threaded=False)
    ctl.pump(20.0)
    rep = next(r for r in ctl.tally.reps if r.order == GLUTE_FIRST)
    first = min(i for r, i in rep.onsets.items() if r.is_glute and i is not None)
    fixed, where = ctl.correct(rep, Role.LUMBAR_L, first - 100)
    _, note_at = ctl.note("hips first")
    ctl.close()
    assert where is not None and where == note_at
    assert where.is_relative_to(Path(os.environ["FIREORDER_DATA_DIR"]))
    assert DEMO.with_name(DEMO.name + ".json").read_bytes() == before
    review = ReviewStore(DEMO)
    (c,) = review.corrections()
    assert c.detected_order == GLUTE_FIRST and c.order == fixed.order == "lumbar_first"
    # the browser's figures follow the correction
    (row,) = [r for r in browse(DEMO.parent) if r.path.name == DEMO.name]
    assert row.corrected == 1
    # the next replay of the file shows its notes again, in file time
    again = SessionController(FileSource(str(DEMO), speed=None))
    again.open()
    assert [m.label for m in again.marks if m.kind == MarkKind.NOTE] == ["note: hips first"]
    again.close()


def test_a_user_recording_keeps_its_review_in_its_sidecar(tmp_path: Path) -> None:
    bdf = tmp_path / DEMO.name
    shutil.copy(DEMO, bdf)
    shutil.copy(DEMO.with_name(DEMO.name + ".json"), bdf.with_name(bdf.name + ".json"))
    ctl = SessionController(FileSource(str(bdf), speed=None))
    ctl.open()
    _, where = ctl.note("good set")
    ctl.close()
    assert where == bdf.with_name(bdf.name + ".json")
    assert json.loads(where.read_text())["notes"][-1]["text"] == "good set"


def _until(ctl: SessionController, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"still {ctl.state}"
        ctl.drain()
        time.sleep(0.02)
    # The worker queues its last events (the file's final rep) before it turns FINISHED, so
    # one more drain routes what arrived between the last drain and the state change.
    ctl.drain()


def test_seek_after_the_end_replays_again() -> None:
    src = FileSource(str(DEMO), speed=None)
    ctl = SessionController(src)
    ctl.open()
    ctl.start(threaded=True)  # the worker ends at the file's end, as in the window
    _until(ctl, lambda: ctl.state == SessionState.FINISHED)
    n = len(ctl.tally.reps)
    assert n > 0 and ctl.seek(round(10 * ctl.fs))
    assert ctl.state == SessionState.STREAMING
    _until(ctl, lambda: ctl.state == SessionState.FINISHED)
    assert src.at_end and len(ctl.tally.reps) == n  # the same reps again, none added
    ctl.close()


def test_hostile_sidecars_never_stop_the_browser(tmp_path: Path) -> None:
    good = tmp_path / "good.bdf"
    shutil.copy(DEMO, good)
    shutil.copy(DEMO.with_name(DEMO.name + ".json"), good.with_name(good.name + ".json"))
    doc = json.loads(good.with_name(good.name + ".json").read_text())
    for name, change in {
        "list": {"summary": [1, 2]},
        "str": {"stream": "xyz", "meta": "nobody"},
        "nested": {"meta": {"athlete": {"a": [[[[1]]]]}}},
        "nan": {"summary": {"verdicts": {"glute_first": "many"}, "duration_s": "long"}},
    }.items():
        bdf = tmp_path / f"{name}.bdf"
        shutil.copy(DEMO, bdf)
        bdf.with_name(bdf.name + ".json").write_text(json.dumps({**doc, **change}))
    deep = tmp_path / "deep.bdf"
    shutil.copy(DEMO, deep)
    deep.with_name(deep.name + ".json").write_text("[" * 100_000 + "]" * 100_000)
    rows = {r.path.name: r for r in browse(tmp_path)}
    assert "good.bdf" in rows and rows["good.bdf"].reps
    assert rows["deep.bdf"].state == "sidecar unreadable" and rows["deep.bdf"].reps is None
    assert rows["list.bdf"].reps is None and rows["str.bdf"].athlete == ""


def test_replay_bar_rep_index_uses_the_session_settings() -> None:
    """Previous/next rep follow the reps the replay shows (its settings), not defaults."""
    src = FileSource(str(DEMO), speed=None)
    info = src.open()
    data = src.samples()
    strict = DspSettings().with_(k_on=9.0, min_on_ms=80.0)
    a = [r.start for r in analyze(data, info, strict).reps]
    b = [r.start for r in analyze(data, info, DspSettings()).reps]
    assert a != b  # the settings matter, so using the wrong ones would show


def _cli(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=ROOT, headless=True, **kw)


def test_live_glute_first_share_leaves_undetermined_reps_out() -> None:
    proc = _cli("live", "--fast", "--duration", "60", "--preset", "hard", "--seed", "5", "--jsonl")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    reps, summary = [r for r in lines[:-1] if not r["final"]], lines[-1]  # as decided
    counts = {o: sum(r["order"] == o for r in reps) for o in {r["order"] for r in reps}}
    assert summary["reps"] == len(reps) and summary["undetermined"] == counts.get(UNDETERMINED, 0)
    want = glute_first_pct(counts)
    assert summary["glute_first_pct"] == (None if want is None else round(want, 1))
    assert reps[-1]["glute_first_pct"] == summary["glute_first_pct"]


def test_fireorder_file_without_a_display_is_one_line() -> None:
    proc = _cli(str(DEMO))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no display" in proc.stderr
    assert str(DEMO) in proc.stderr


def test_a_closed_pipe_ends_quietly() -> None:
    cmd = (
        f"{sys.executable} -m app live --fast --duration 120 --jsonl | head -2; "
        "echo rc=${PIPESTATUS[0]} >&2"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run(
        ["bash", "-c", cmd],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert len(proc.stdout.splitlines()) == 2
    assert proc.stderr.strip() == "rc=0", proc.stderr[-2000:]


def test_a_source_failure_is_one_line_without_traceback(tmp_path: Path) -> None:
    proc = _cli("live", "--source", "serial", "--port", str(tmp_path / "ttyNONE"), "--fs", "1000")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_settings_changed_mid_session_keep_one_rep_numbering() -> None:
    """Settings ▸ OK (or a re-mapping) mid-set: the reps after it go on being numbered after
    those before (it restarted at rep 1, so the banner, the table, the lag plot and the LSL
    verdicts disagreed about which rep was which)."""
    ctl = SessionController(sim())
    numbers: list[int] = []
    ctl.on_rep_final = lambda e: numbers.append(e.result.index)
    ctl.open()
    ctl.start(threaded=False)
    ctl.pump(12.0)
    before = len(numbers)
    assert before >= 2
    ctl.apply_settings(ctl.settings.with_(k_on=ctl.settings.k_on + 0.5))
    ctl.pump(12.0)
    assert ctl.info is not None
    ctl.apply_roles(dict(ctl.info.roles))  # the same mapping given again: a new pipeline too
    ctl.pump(12.0)
    ctl.close()
    assert len(numbers) >= before + 4
    assert numbers == sorted(set(numbers)), numbers  # rising, never a number twice
