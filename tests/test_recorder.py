"""Recording: BDF+ round trip (pyedflib, MNE), sample continuity, gaps, kill -9 and repair,
full disk, read-only folder, safe names, and a fuzzed reader."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyedflib
import pytest

from devices.drivers.simulator import SimulatorDevice
from devices.files import ReaderError, read_recording
from devices.files.bdf_format import (
    END_TEXT,
    RECORD_COUNT_OFFSET,
    inspect_file,
    is_fireorder_recording,
    read_fireorder_bdf,
    read_sidecar,
    sidecar_path,
)
from devices.files.recorder import (
    Recorder,
    SessionMeta,
    find_unfinished,
    recording_path,
    repair,
)
from devices.session.live import LiveSession
from dsp.contract import Chunk, Role, StreamInfo
from dsp.settings import DspSettings

ROOT = Path(__file__).resolve().parents[1]
RES = 0.01  # uV per digit of the EMG channels
TOL = RES / 2 + 1e-6


def sim(duration_s: float | None = 20.0, **kw: Any) -> SimulatorDevice:
    kw.setdefault("seed", 4)
    return SimulatorDevice(preset="clean", realtime=False, duration_s=duration_s, **kw)


def record_device(
    path: Path, device: SimulatorDevice, **kw: object
) -> tuple[Recorder, list[Chunk]]:
    """Record a finite non-realtime source through a LiveSession; return the chunks."""
    chunks: list[Chunk] = []
    session = LiveSession(device)
    info = session.open()
    rec = Recorder(path, info, SessionMeta(athlete="t"), session.settings, **kw)  # type: ignore[arg-type]
    assert rec.start(), rec.error

    def on_raw(chunk: Chunk) -> None:
        chunks.append(chunk)
        rec.write(chunk)
        for timed in session.drain_events():
            rec.add_dsp_event(timed.event)

    session.on_raw = on_raw
    session.run(until_exhausted=True)
    session.close()
    for timed in session.drain_events():
        rec.add_dsp_event(timed.event)
    rec.stop()
    return rec, chunks


def stitched(chunks: list[Chunk], n_channels: int) -> np.ndarray:
    """Chunks on the index line, NaN rows where samples were lost."""
    end = chunks[-1].stop
    first = chunks[0].start
    out = np.full((end - first, n_channels), np.nan)
    for c in chunks:
        out[c.start - first : c.stop - first] = c.data
    return out


def read_mne(path: Path):  # type: ignore[no-untyped-def]
    mne = pytest.importorskip("mne")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "unknown unit" for the counter channel
        return mne.io.read_raw_bdf(path, preload=True, verbose="error")


# ------------------------------------------------------------------------- round trip


def test_round_trip_pyedflib_mne_and_own_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    names = ("left glute maximus", "lumbar_l", "Erector spinae R", "counter")
    info = StreamInfo(
        fs=2000.0,
        channel_names=names,
        roles={Role.GLUTE_L: 0, Role.LUMBAR_L: 1, Role.LUMBAR_R: 2},
        units=("uV", "uV", "uV", "count"),
        source="test",
    )
    n = 2000 * 7 + 123
    data = np.column_stack(
        [rng.normal(0, 300, (n, 3)) + np.array([0.0, 5000.0, -20000.0]), np.arange(n, dtype=float)]
    )
    data[10, 0], data[11, 0] = 83885.99, -83885.99  # extremes of the range survive
    settings = DspSettings().with_(k_on=5.5, exercise="hinge")
    meta = SessionMeta("Zoë Ærø", "pre/post #1", "hinge", "notes\nline 2", "Dr. Who", "test rig")
    path = tmp_path / "rt.bdf"
    rec = Recorder(path, info, meta, settings, calibration={"rest": {"mean": [1.0, 2.0]}})
    assert rec.start()
    events = [
        (0, "cue glute_first", 0.0),
        (777, "mark: Jürgen's note", 0.0),
        (4000, "rep 1 glute_first lag=+85ms", 1.25),
    ]
    events += [(5000, f"burst {k} " + "x" * 40, 0.0) for k in range(40)]  # carry-over
    events.append((6001, "long " + "y" * 2000, 0.0))  # longer than a record: shortened
    pos = 0
    for k, size in enumerate(rng.integers(1, 700, 200)):
        if pos >= n:
            break
        rec.write(Chunk(data[pos : pos + size], pos))
        pos += int(size)
        if k == 5:
            for idx, text, dur in events:
                rec.add_event(idx, text, dur)
    summary = rec.stop()
    assert summary.state == "stopped" and summary.error is None
    assert summary.samples == n and summary.lost_samples == 0 and summary.duplicates == 0
    assert is_fireorder_recording(path)

    # pyedflib: labels (truncated to 16 characters), rate, samples to the resolution.
    r = pyedflib.EdfReader(str(path))
    try:
        labels = ["left glute maxim", "lumbar_l", "Erector spinae R", "counter"]
        assert r.getSignalLabels() == labels
        assert list(r.getSampleFrequencies()) == [2000.0] * 4
        got = np.column_stack([r.readSignal(i) for i in range(4)])
        onsets, durations, texts = r.readAnnotations()
        assert r.getEquipment() == "fireorder"
    finally:
        r.close()
    assert got.shape[0] == 14_500  # the last record is padded to 500 samples
    assert np.abs(got[:n, :3] - data[:, :3]).max() <= TOL
    assert np.array_equal(got[:n, 3], data[:, 3])
    assert (got[n:, :3] == -83886.0).all()  # padding = lost samples = digital minimum
    by_text = {
        str(t): (float(o), float(d)) for o, d, t in zip(onsets, durations, texts, strict=True)
    }
    for idx, text, dur in events[:-1]:
        assert by_text[text][0] == pytest.approx(idx / 2000, abs=1e-7)
        assert max(by_text[text][1], 0.0) == pytest.approx(dur)
    assert len([t for t in by_text if t.startswith("long ")]) == 1  # pyedflib cuts at 512
    assert by_text[END_TEXT][0] == pytest.approx(n / 2000)

    # MNE: the lab-world reader.
    raw = read_mne(path)
    assert raw.info["sfreq"] == 2000.0
    assert len(raw.ch_names) == 4
    mdata = raw.get_data()
    assert np.abs(mdata[:3, :n].T * 1e6 - data[:, :3]).max() <= TOL
    mtexts = list(raw.annotations.description)
    for idx, text, _ in events[:3]:
        k = mtexts.index(text)
        assert raw.annotations.onset[k] == pytest.approx(idx / 2000, abs=1e-6)

    # Our reader: full names, roles, NaN-free, trimmed at the true end, sidecar.
    own = read_fireorder_bdf(path)
    assert own.channel_names == names
    assert own.n_samples == n
    assert np.abs(own.data[:, :3] - data[:, :3]).max() <= TOL
    assert np.array_equal(own.data[:, 3], data[:, 3])
    assert own.roles == {"glute_l": names[0], "lumbar_l": names[1], "lumbar_r": names[2]}
    assert [a.text for a in own.annotations if a.text.startswith("burst")] == [
        f"burst {k} " + "x" * 40 for k in range(40)
    ]
    (long_text,) = [a.text for a in own.annotations if a.text.startswith("long ")]
    assert long_text.endswith("...") and 400 < len(long_text) < 600
    side = read_sidecar(path)
    assert side is not None and side["state"] == "complete"
    assert DspSettings.from_dict(side["settings"]) == settings
    assert side["calibration"] == {"rest": {"mean": [1.0, 2.0]}}
    assert SessionMeta.from_dict(side["meta"]) == meta
    assert side["summary"]["samples"] == n

    # devices.files (what `fireorder analyze` uses) finds the roles without --channels.
    generic = read_recording(path)
    assert set(generic.roles) == {"glute_l", "lumbar_l", "lumbar_r"}


def test_simulator_counter_proves_no_sample_dropped_or_duplicated(tmp_path: Path) -> None:
    path = tmp_path / "c.bdf"
    rec, chunks = record_device(path, sim(30.0, counter=True))
    delivered = sum(c.n_samples for c in chunks)
    assert delivered == 60_000
    got = read_fireorder_bdf(path)
    assert got.n_samples == delivered == rec.samples_written
    counter = got.data[:, got.channel_names.index("counter")]
    assert np.array_equal(counter, np.arange(delivered))
    assert np.isfinite(got.data).all()
    texts = [a.text for a in got.annotations]
    assert any(t.startswith("onset glute") for t in texts)
    assert any(t.startswith("rep 1 ") for t in texts)
    # The same file through pyedflib: the counter is exact there too.
    r = pyedflib.EdfReader(str(path))
    try:
        assert np.array_equal(r.readSignal(4)[:delivered], np.arange(delivered))
    finally:
        r.close()


def test_gaps_become_sentinels_then_nan_with_annotations(tmp_path: Path) -> None:
    path = tmp_path / "g.bdf"
    device = sim(30.0, counter=True, dropout_rate_per_min=20.0, dropout_ms=(5.0, 80.0))
    rec, chunks = record_device(path, device)
    expected = stitched(chunks, 5)
    lost = np.isnan(expected[:, 0])
    assert rec.gaps >= 3 and rec.lost_samples == int(lost.sum())
    got = read_fireorder_bdf(path)
    assert got.n_samples == expected.shape[0]
    assert np.array_equal(np.isnan(got.data[:, 0]), lost)
    assert np.isnan(got.data[lost]).all()  # every channel, the counter too
    assert np.array_equal(got.data[~lost, 4], np.flatnonzero(~lost))
    gaps = [a for a in got.annotations if a.text.startswith("gap ")]
    starts = np.flatnonzero(np.diff(np.r_[0, lost.astype(int)]) == 1)
    assert [round(a.onset_s * 2000) for a in gaps] == list(starts)
    for a, s in zip(gaps, starts, strict=True):
        run = int(np.argmin(lost[s:])) if not lost[s:].all() else len(lost) - s
        assert a.text == f"gap {run} samples"
        assert a.duration_s == pytest.approx(run / 2000)
    # A replay source turns the NaN rows back into index jumps.
    from devices.drivers.file_replay import FileSource

    src = FileSource(str(path), speed=None)
    if is_fireorder_recording(path):
        src_info = src.open() if _devices_files_reads_fireorder() else None
        if src_info is not None:
            src.start()
            seen = 0
            while (c := src.read()) is not None:
                seen += c.n_samples
            assert seen == int((~lost).sum())


def _devices_files_reads_fireorder() -> bool:
    """Whether devices.files routes fireorder recordings to read_fireorder_bdf (the hook)."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "probe.bdf"
        info = StreamInfo(fs=1000.0, channel_names=("a",), units=("uV",))
        rec = Recorder(p, info)
        rec.start()
        rec.write(Chunk(np.zeros((100, 1)), 0))
        rec.write(Chunk(np.zeros((100, 1)), 150))
        rec.stop()
        try:
            return bool(np.isnan(read_recording(p).data).any())
        except ReaderError:
            return False


def test_padding_and_end_mark(tmp_path: Path) -> None:
    info = StreamInfo(fs=1000.0, channel_names=("glute_l", "lumbar_l"))
    path = tmp_path / "p.bdf"
    rec = Recorder(path, info)
    rec.start()
    rec.write(Chunk(np.ones((1100, 2)), 0))
    assert rec.stop().samples == 1100
    layout = inspect_file(path)
    assert layout.finalised and layout.complete_records == 5
    got = read_fireorder_bdf(path)
    assert got.n_samples == 1100 and (got.data == 1.0).all()
    assert got.roles == {"glute_l": "glute_l", "lumbar_l": "lumbar_l"}


def test_clipping_is_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    info = StreamInfo(fs=1000.0, channel_names=("x",))
    rec = Recorder(tmp_path / "clip.bdf", info)
    rec.start()
    block = np.zeros((250, 1))
    block[:3, 0] = [1e6, -1e6, 90000.0]
    rec.write(Chunk(block, 0))
    assert rec.stop().clipped == 3
    got = read_fireorder_bdf(tmp_path / "clip.bdf").data[:3, 0]
    assert list(got) == [83886.0, -83885.99, 83886.0]
    assert "clipped" in caplog.text


# ------------------------------------------------------------------------- kill -9

KILL_SCRIPT = """
import sys, time
from devices.drivers.simulator import SimulatorDevice
from devices.files.recorder import Recorder, SessionMeta
dev = SimulatorDevice(preset="clean", realtime=True, counter=True, seed=3)
info = dev.open()
rec = Recorder(sys.argv[1], info, SessionMeta(athlete="kill"))
assert rec.start(), rec.error
dev.start()
print("ready", flush=True)
while True:
    chunk = dev.read()
    if chunk is None:
        time.sleep(0.002)
        continue
    rec.write(chunk)
    rec.add_event(chunk.start, "chunk")
    print(chunk.stop, flush=True)
"""


def _lines(proc: subprocess.Popen[str], stream: str) -> tuple[list[str], threading.Thread]:
    out: list[str] = []

    def pump() -> None:
        for line in getattr(proc, stream):
            out.append(line.strip())

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return out, thread


def _wait_for(pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.mark.timeout(60)
def test_kill_9_keeps_all_but_the_last_second_and_repairs(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "killed.bdf"
    with subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            lines, reader = _lines(proc, "stdout")
            _wait_for(lambda: "ready" in lines, 30)
            time.sleep(2.3)  # mid-record, mid-fsync interval: whatever the moment is
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            reader.join(5)  # every line the child printed before it died
        finally:
            if proc.poll() is None:
                proc.kill()
    delivered = int(lines[-1])
    assert delivered > 2 * 2000

    # Straight after the kill: the header still says -1, readers cope.
    layout = inspect_file(path)
    assert layout.header.n_records == -1
    got = read_fireorder_bdf(path)
    n = got.n_samples
    assert delivered - 2000 <= n <= delivered  # within 1 s of what was delivered
    assert np.array_equal(got.data[:, 4], np.arange(n))  # nothing dropped or duplicated
    chunk_marks = [a for a in got.annotations if a.text == "chunk"]
    assert len(chunk_marks) > 10
    assert read_sidecar(path)["state"] == "recording"  # type: ignore[index]
    raw = read_mne(path)  # MNE infers the record count from the size
    assert raw.n_times == n

    # Next start: found and finalised.
    assert find_unfinished(path.parent) == [path]
    report = repair(path)
    assert report.records == n // 500 and report.samples == n
    assert report.header_patched and report.sidecar_updated
    assert find_unfinished(path.parent) == []
    assert read_sidecar(path)["state"] == "repaired"  # type: ignore[index]
    r = pyedflib.EdfReader(str(path))
    try:
        assert r.getNSamples()[0] == n
        assert np.array_equal(r.readSignal(4), np.arange(n))
    finally:
        r.close()
    assert repair(path).header_patched is False  # idempotent


def _record_cli(args: list[str]) -> list[str]:
    """argv that runs `fireorder record ...`, registered in app.cli or not (yet)."""
    from app.cli import COMMANDS

    if "record" in COMMANDS:
        return [sys.executable, "-m", "app", "record", *args]
    shim = (  # what registering the command in app.cli does
        "import sys, app.cli as c; c.COMMANDS = (*c.COMMANDS, 'record'); sys.exit(c.main())"
    )
    return [sys.executable, "-c", shim, "record", *args]


@pytest.mark.timeout(60)
def test_kill_9_of_fireorder_record(tmp_path: Path) -> None:
    path = tmp_path / "cli.bdf"
    with subprocess.Popen(
        _record_cli(
            ["--counter", "--seed", "5", "--out", str(path), "--folder", str(tmp_path / "r")]
        ),
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            err, reader = _lines(proc, "stderr")
            _wait_for(lambda: any(line.startswith("recording ") for line in err), 30)
            ready = time.monotonic()
            time.sleep(2.6)
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            proc.wait(10)
            reader.join(5)
        finally:
            if proc.poll() is None:
                proc.kill()
    got = read_fireorder_bdf(path)
    # The simulator streamed from before "ready" until the kill and at most 1 s may be lost;
    # what it delivered is not known exactly here (see the test above), so allow for load.
    assert got.n_samples >= (killed - ready - 1.5) * 2000
    assert np.array_equal(got.data[:, 4], np.arange(got.n_samples))
    assert set(got.roles) == {"glute_l", "glute_r", "lumbar_l", "lumbar_r"}
    texts = [a.text for a in got.annotations]
    assert any(t.startswith("truth onset:") for t in texts)
    assert find_unfinished(tmp_path) == [path]
    # The next start finds and finalises it.
    again = [*_record_cli(["--fast", "--duration", "1", "--folder", str(tmp_path)])]
    done = subprocess.run(again, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"repaired unfinished recording {path}" in done.stderr
    assert inspect_file(path).finalised and find_unfinished(tmp_path) == []


@pytest.mark.timeout(60)
def test_sigterm_finalises_the_file(tmp_path: Path) -> None:
    path = tmp_path / "term.bdf"
    argv = _record_cli(["--out", str(path), "--folder", str(tmp_path)])
    with subprocess.Popen(
        argv, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        err, reader = _lines(proc, "stderr")
        _wait_for(lambda: any(line.startswith("recording ") for line in err), 30)
        time.sleep(1.0)
        proc.terminate()
        out = proc.stdout.read() if proc.stdout else ""
        assert proc.wait(10) == 0
        reader.join(5)
    assert "samples" in out
    assert inspect_file(path).finalised
    assert read_sidecar(path)["state"] == "complete"  # type: ignore[index]


def test_analyze_on_a_killed_file_path(tmp_path: Path) -> None:
    """`fireorder analyze` goes through devices.files.read_recording: once the lead routes
    fireorder recordings to read_fireorder_bdf, it reads an unrepaired file too."""
    if not _devices_files_reads_fireorder():
        pytest.skip("devices.files does not route fireorder recordings yet (lead: hook)")
    path = tmp_path / "k.bdf"
    record_device(path, sim(12.0))
    with open(path, "r+b") as f:  # what a kill leaves: count -1, a partial record
        f.seek(RECORD_COUNT_OFFSET)
        f.write(b"-1      ")
        f.seek(0, 2)
        f.write(b"\x01" * 1000)
    from app.cli import main

    assert main(["analyze", str(path), "--json"]) == 0


# ------------------------------------------------------------------ disk full, read-only


def _run(cmd: list[str]) -> bool:
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


@contextlib.contextmanager
def small_fs(tmp_path: Path, size_kb: int, read_only: bool = False) -> Iterator[Path]:
    """A size-limited (or read-only) file system: tmpfs, else a loop-mounted ext2 image."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to mount a small file system")
    opts = f"size={size_kb}k" + (",ro" if read_only else "")
    if not _run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)]):
        image = tmp_path / "fs.img"
        if not (
            shutil.which("mkfs.ext2")
            and _run(["dd", "if=/dev/zero", f"of={image}", "bs=1k", f"count={size_kb}"])
            and _run(["mkfs.ext2", "-q", "-F", str(image)])
            and _run(["mount", "-o", "loop" + (",ro" if read_only else ""), str(image), str(mnt)])
        ):
            pytest.skip("cannot mount tmpfs or a loop ext2 image here")
    try:
        yield mnt
    finally:
        _run(["umount", "-l", str(mnt)])


@pytest.mark.timeout(60)
def test_full_disk_stops_recording_keeps_samples_stream_goes_on(tmp_path: Path) -> None:
    with small_fs(tmp_path, 2048) as mnt:
        filler = mnt / "filler"
        free = shutil.disk_usage(mnt).free
        filler.write_bytes(b"\0" * max(0, free - 300_000))  # ~10 s of recording left
        device = SimulatorDevice(preset="clean", realtime=False, counter=True, seed=2)
        session = LiveSession(device)
        info = session.open()
        chunks: list[Chunk] = []
        rec = Recorder(mnt / "full.bdf", info, SessionMeta(athlete="disk"))
        assert rec.start()

        def on_raw(chunk: Chunk) -> None:
            chunks.append(chunk)
            rec.write(chunk)  # must never raise or block

        session.on_raw = on_raw
        session.start(threaded=False)
        for _ in range(60):
            session.pump(1.0)
            if rec.error:
                break
            time.sleep(0.02)  # let the writer keep up
        _wait_for(lambda: rec.state == "error", 10)
        assert rec.error is not None and "disk full" in rec.error
        assert "\n" not in rec.error
        samples_at_error = session.stats.samples
        session.pump(2.0)  # streaming and feedback go on
        assert session.stats.samples > samples_at_error and session.state == "streaming"
        summary = rec.stop()
        session.close()
        assert summary.error == rec.error and summary.samples > 5 * 2000
        # Everything written before the error is intact and the header is final.
        layout = inspect_file(mnt / "full.bdf")
        assert layout.finalised
        r = pyedflib.EdfReader(str(mnt / "full.bdf"))
        try:
            n = int(r.getNSamples()[0])
            assert n == summary.samples
            assert np.array_equal(r.readSignal(4), np.arange(n))
            sent = np.concatenate([c.data for c in chunks])[:n, 0]
            assert np.abs(r.readSignal(0) - sent).max() <= TOL
        finally:
            r.close()


def test_read_only_folder_is_a_clear_error(tmp_path: Path) -> None:
    with small_fs(tmp_path, 64, read_only=True) as mnt:
        info = StreamInfo(fs=1000.0, channel_names=("glute_l", "lumbar_l"))
        for target in (mnt / "x.bdf", mnt / "sub" / "x.bdf"):
            rec = Recorder(target, info)
            assert rec.start() is False
            assert rec.state == "error" and rec.error is not None
            assert "not writable" in rec.error and "\n" not in rec.error
            rec.write(Chunk(np.zeros((10, 2)), 0))  # no-ops, no exception
            rec.add_event(0, "x")
            assert rec.stop().error == rec.error
        # The command line says it in one line with exit code 2.
        done = subprocess.run(
            _record_cli(["--fast", "--duration", "1", "--folder", str(mnt / "rec")]),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert "not writable" in done.stderr.strip().splitlines()[-1]


# ------------------------------------------------------------------- names, recovery


def test_recording_path_is_safe_and_unique(tmp_path: Path) -> None:
    from datetime import datetime

    when = datetime(2026, 3, 1, 14, 5, 9)
    meta = SessionMeta(athlete="../../etc/passwd", session="CON", exercise="hip thrust?*")
    p = recording_path(tmp_path, meta, when)
    assert p.parent == tmp_path
    assert p.name == "2026-03-01_140509_etc-passwd_CON_hip-thrust.bdf"  # never a bare CON
    p.write_bytes(b"")
    assert recording_path(tmp_path, meta, when).name.endswith("_2.bdf")
    odd = recording_path(tmp_path, SessionMeta(athlete="Zoë / Ærø", session="\x00\n"), when)
    assert odd.name == "2026-03-01_140509_Zoe-AEro.bdf"
    plain = recording_path(None, SessionMeta(), when)
    assert plain == Path("recordings") / "2026-03-01_140509.bdf"


def test_find_unfinished_skips_live_and_foreign_files(tmp_path: Path) -> None:
    info = StreamInfo(fs=1000.0, channel_names=("glute_l", "lumbar_l"))
    live = Recorder(tmp_path / "live.bdf", info)
    assert live.start()
    live.write(Chunk(np.zeros((600, 2)), 0))
    _wait_for(lambda: live.records_written >= 2, 5)
    # a copy is what a killed writer leaves: count -1, nobody holds it
    shutil.copy(tmp_path / "live.bdf", tmp_path / "dead.bdf")
    shutil.copy(sidecar_path(tmp_path / "live.bdf"), sidecar_path(tmp_path / "dead.bdf"))
    (tmp_path / "other.bdf").write_bytes(b"\xffBIOSEMI" + b" " * 300)
    assert find_unfinished(tmp_path) == [tmp_path / "dead.bdf"]
    with pytest.raises(OSError):
        repair(tmp_path / "live.bdf")  # held by the live recorder
    live.stop()
    assert find_unfinished(tmp_path) == [tmp_path / "dead.bdf"]
    assert repair(tmp_path / "dead.bdf").samples == 500
    assert find_unfinished(tmp_path) == []


def test_sidecar_follows_calibration_and_settings(tmp_path: Path) -> None:
    info = StreamInfo(fs=1000.0, channel_names=("glute_l", "lumbar_l"))
    path = tmp_path / "s.bdf"
    rec = Recorder(path, info, settings=DspSettings())
    rec.start()
    rec.write(Chunk(np.zeros((300, 2)), 1000))  # recording began mid-stream
    rec.set_calibration({"rest": {"sd": [1.5, 2.5]}})
    rec.update_settings(DspSettings().with_(k_on=6.0))
    rec.add_event(1100, "mark: here")
    rec.stop()
    side = read_sidecar(path)
    assert side is not None
    assert side["stream"]["first_index"] == 1000
    assert side["calibration"] == {"rest": {"sd": [1.5, 2.5]}}
    assert side["settings_changes"][0]["index"] == 1300
    assert side["settings_changes"][0]["settings"]["k_on"] == 6.0
    marks = {a.text: a.onset_s for a in read_fireorder_bdf(path).annotations}
    assert marks["mark: here"] == pytest.approx(0.1)
    assert marks["settings changed"] == pytest.approx(0.3)
    assert json.loads(sidecar_path(path).read_text())["state"] == "complete"


def test_record_command_then_analyze_without_channels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _record_cli(
        ["--fast", "--duration", "12", "--seed", "9", "--folder", str(tmp_path), "--athlete", "A B"]
    )
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.strip().splitlines()
    assert "12.00 s (24000 samples)" in line and "reps" in line
    (path,) = tmp_path.glob("*_A-B_hinge.bdf")
    from app.cli import main

    assert main(["analyze", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["reps"] >= 3


# ------------------------------------------------------------------------- fuzzing


@pytest.fixture(scope="module")
def small_recording(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("fuzz")
    info = StreamInfo(fs=1000.0, channel_names=("glute_l", "lumbar_l"))
    rec = Recorder(d / "f.bdf", info)
    rec.start()
    rec.write(Chunk(np.random.default_rng(0).normal(0, 50, (1000, 2)), 0))
    rec.add_event(10, "mark: a")
    rec.stop()
    return (d / "f.bdf").read_bytes()


def _header_edit(raw: bytes, offset: int, text: str) -> bytes:
    b = bytearray(raw)
    b[offset : offset + len(text)] = text.encode("latin-1")
    return bytes(b)


@pytest.mark.timeout(60)
def test_fuzzed_files_give_clear_errors(tmp_path: Path, small_recording: bytes) -> None:
    raw = small_recording
    hdr = 256 * 4
    cases: list[bytes] = [raw[:k] for k in (0, 1, 100, 255, 256, 300, hdr - 1, hdr, hdr + 7)]
    cases += [
        _header_edit(raw, 252, "0   "),  # no signals
        _header_edit(raw, 252, "9999"),  # more than the file holds
        _header_edit(raw, 184, "12      "),  # header size
        _header_edit(raw, 236, "-7      "),  # record count
        _header_edit(raw, 236, "abc     "),
        _header_edit(raw, 244, "0       "),  # record duration
        _header_edit(raw, 244, "nan     "),
        _header_edit(raw, 256 + 16 * 3 + 80 * 3 + 8 * 3 + 8 * 3 + 8 * 3 * 2 + 80 * 3, "0       "),
        _header_edit(raw, 256 + 16 * 3 + 80 * 3 + 8 * 3 + 8 * 3 + 8 * 3 * 2 + 80 * 3, "99999999"),
        b"0       " + raw[8:],  # EDF magic on BDF data
        b"garbage" * 500,
    ]
    rng = np.random.default_rng(7)
    for _ in range(150):
        b = bytearray(raw)
        for pos in rng.integers(0, hdr + 600, rng.integers(1, 6)):
            b[pos] = int(rng.integers(0, 256))
        cases.append(bytes(b[: int(rng.integers(hdr - 10, len(b) + 1))]))
    for k, data in enumerate(cases):
        p = tmp_path / f"case{k}.bdf"
        p.write_bytes(data)
        t0 = time.monotonic()
        try:
            rec = read_fireorder_bdf(p)
        except ReaderError as exc:
            assert "\n" not in str(exc) and str(p) in str(exc)
        else:
            assert rec.data.shape[1] == len(rec.channel_names)
        with contextlib.suppress(OSError, ValueError):
            inspect_file(p)
        with contextlib.suppress(OSError, ValueError):
            repair(p)  # never anything but a clear error
        assert time.monotonic() - t0 < 5


def test_export_any_file_to_bdf_with_annotations(tmp_path) -> None:
    """`fireorder record --source file --speed fast` converts an imported file to BDF+ with
    the analysis as EDF+ annotations; analyzing the BDF gives the same verdicts."""
    import json

    from app.cli import main
    from devices.simulation.model import preset, simulate, write_csv

    rec = simulate(preset("clean", seed=21, fs=2000), 30)
    csv = tmp_path / "in.csv"
    write_csv(csv, rec)
    out = tmp_path / "out.bdf"
    roles = "glute_l=glute_l,glute_r=glute_r,lumbar_l=lumbar_l,lumbar_r=lumbar_r"
    assert (
        main(
            [
                "record",
                "--source",
                "file",
                "--file",
                str(csv),
                "--speed",
                "fast",
                "--channels",
                roles,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    import contextlib
    import io

    def verdicts(path: str, *extra: str) -> list:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["analyze", path, "--json", *extra]) == 0
        return [(r["order"], r["lag_ms"]) for r in json.loads(buf.getvalue())["reps"]]

    assert verdicts(str(out)) == verdicts(str(csv), "--channels", roles)
    from devices.files import read_recording

    texts = [a.text for a in read_recording(str(out)).annotations]
    assert sum(t.startswith("rep ") and "lag=" in t for t in texts) >= 8
