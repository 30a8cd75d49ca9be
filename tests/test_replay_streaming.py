"""Replay streams from the file: the same samples as the whole-file read, a bounded buffer,
any speed in 0.1-8x, fast seeks whose verdicts equal a full pass, and an overview strip."""

from __future__ import annotations

import copy
import gc
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from devices.drivers.base import DeviceError
from devices.drivers.file_replay import BUFFER_S, SPEEDS, FileSource
from devices.files import ReaderError
from devices.files.blocks import open_blocks
from devices.files.mapping import load_mapped
from devices.files.overview import compute_overview
from devices.files.recorder import Recorder, SessionMeta
from devices.session.live import LiveSession
from devices.simulation.model import preset, simulate, write_csv
from dsp.baseline import BaselineTracker
from dsp.contract import Chunk
from dsp.reps import RepEnded

ROOT = Path(__file__).resolve().parents[1]
DEMOS = [ROOT / "recordings" / f"demo_{n}.bdf" for n in ("glute_first", "lumbar_first")]
DATA = ROOT.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
MYONSET = DATA / "myonset"
PAIRS = {"glute_l": "EXG1-EXG2", "lumbar_l": "EXG3-EXG4"}
FS = 1000.0
GAP = (70_000, 70_800)  # samples the long recording lost


def _record(path: Path, seconds: float, seed: int, gap: tuple[int, int] | None = None) -> Path:
    sim = simulate(
        preset("clean", seed=seed, fs=FS, channels=("glute_l", "glute_r", "lumbar_l", "lumbar_r")),
        seconds,
    )
    rec = Recorder(path, sim.info, SessionMeta(session="t"))
    assert rec.start()
    step = round(FS)
    for a in range(0, sim.data.shape[0], step):
        part = sim.data[a : a + step]
        if gap is not None:
            idx_all = np.arange(a, a + len(part))
            keep = ~((idx_all >= gap[0]) & (idx_all < gap[1]))
            if not keep.all():  # the device lost these: the next chunk comes later
                idx = np.flatnonzero(keep)
                if idx.size and idx[0] == 0:
                    first_bad = int(np.flatnonzero(~keep)[0])
                    rec.write(Chunk(part[:first_bad], a))
                if idx.size and idx[-1] == len(part) - 1:
                    resume = int(np.flatnonzero(~keep)[-1]) + 1
                    rec.write(Chunk(part[resume:], a + resume))
                continue
        rec.write(Chunk(part, a))
    assert rec.stop().error is None
    return path


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 s of simulated reps at 1 kHz x 4 ch with 0.8 s lost at 70 s: a fireorder BDF+."""
    return _record(tmp_path_factory.mktemp("stream") / "long.bdf", 150.0, seed=11, gap=GAP)


def _read_in_pieces(path: str, channels: dict[str, str] | None, piece: int) -> np.ndarray:
    with open_blocks(path, channels) as blocks:
        return np.concatenate(
            [blocks.read(a, a + piece) for a in range(0, blocks.n_samples, piece)]
        )


# ------------------------------------------------------------------------ the same samples


@pytest.mark.parametrize("path", DEMOS, ids=lambda p: p.stem)
def test_demo_recordings_read_by_range_are_bit_identical(path: Path) -> None:
    whole = load_mapped(str(path), keep_unmapped=True)
    with open_blocks(str(path)) as blocks:
        assert not blocks.decoded_copy  # read in place, by records
        assert blocks.info == whole.info and blocks.n_samples == whole.data.shape[0]
        assert blocks.annotations == whole.recording.annotations
    got = _read_in_pieces(str(path), None, 777)  # pieces that cut records anywhere
    assert np.array_equal(got, whole.data)


def test_a_recording_with_lost_samples_reads_them_as_nan(long_file: Path) -> None:
    whole = load_mapped(str(long_file), keep_unmapped=True)
    got = _read_in_pieces(str(long_file), None, 4096)
    assert np.array_equal(got, whole.data, equal_nan=True)
    lost = ~np.isfinite(got).all(axis=1)
    assert np.array_equal(np.flatnonzero(lost), np.arange(*GAP))


@pytest.mark.skipif(not MYONSET.exists(), reason="shared data absent")
@pytest.mark.parametrize("name", ["example_data.bdf", "example_data.edf"])
def test_real_edf_and_bdf_with_bipolar_roles_are_bit_identical(name: str) -> None:
    path = str(MYONSET / name)
    whole = load_mapped(path, PAIRS, keep_unmapped=True)
    with open_blocks(path, PAIRS) as blocks:
        assert not blocks.decoded_copy
        assert blocks.info == whole.info
        assert blocks.info.channel_names[:2] == ("EXG1-EXG2", "EXG3-EXG4")
    assert np.array_equal(_read_in_pieces(path, PAIRS, 1000), whole.data)


@pytest.mark.skipif(not (DATA / "biosppy").exists(), reason="shared data absent")
def test_text_formats_go_through_a_float32_copy_that_close_releases() -> None:
    path = str(DATA / "biosppy" / "emg_1.txt")
    ch = {"glute_l": load_mapped(path, {"glute_l": "EMG"}).info.channel_names[0]}
    whole = load_mapped(path, ch, keep_unmapped=True)
    before = _open_fds(), _named_copies()
    blocks = open_blocks(path, ch)
    assert blocks.decoded_copy and _open_fds() == before[0] + 1
    assert _named_copies() == before[1]  # the copy has no name: nothing can be left behind
    got = blocks.read(0, blocks.n_samples)
    assert np.allclose(got, whole.data, rtol=1e-6, atol=1e-6)
    assert np.array_equal(np.isnan(got), np.isnan(whole.data))
    blocks.close()
    assert _open_fds() == before[0]


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="no such file"):
        open_blocks(str(tmp_path / "nope.bdf"))
    with pytest.raises(DeviceError, match="no such file"):
        FileSource(str(tmp_path / "nope.bdf")).open()


# ------------------------------------------------------------------------ bounded memory


def test_the_buffer_is_a_few_seconds_whatever_the_file_length(long_file: Path) -> None:
    sizes = []
    for path in (DEMOS[0], long_file):
        src = FileSource(str(path), speed=None)
        info = src.open()
        assert src.buffer_rows == round(BUFFER_S * info.fs)
        src.start()
        total, biggest = 0, 0
        while (chunk := src.read()) is not None:
            total += chunk.n_samples
            biggest = max(biggest, src._buf.shape[0])  # what the source holds
        assert src.at_end and total > 0
        sizes.append(biggest)
        src.close()
    assert sizes[0] <= round(BUFFER_S * 2000) and sizes[1] <= round(BUFFER_S * FS)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _named_copies() -> int:
    return sum(n.startswith("fireorder-replay-") for n in os.listdir(tempfile.gettempdir()))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
def test_a_csv_replay_releases_its_decoded_copy_closed_or_forgotten(tmp_path: Path) -> None:
    rec = simulate(preset("clean", seed=3, fs=1000, channels=("glute_l", "lumbar_l")), 5)
    path = tmp_path / "s.csv"
    write_csv(path, rec)
    fds = _open_fds()
    src = FileSource(str(path), speed=None)
    src.open()
    assert src.decoded_copy and _open_fds() == fds + 1
    src.start()
    got = np.concatenate([c.data for c in iter(src.read, None)])
    assert np.allclose(got, rec.data, atol=1e-3)
    src.close()
    assert _open_fds() == fds
    for kept in (path, DEMOS[0]):  # never closed: released when dropped
        forgotten = FileSource(str(kept), speed=None)
        forgotten.open()
        assert _open_fds() == fds + 1
        del forgotten
        gc.collect()
        assert _open_fds() == fds, kept


# ------------------------------------------------------------------------ speed


def test_any_speed_from_a_tenth_to_eight_times() -> None:
    assert SPEEDS[0] == 0.1 and SPEEDS[-1] == 8.0
    now = [0.0]
    src = FileSource(str(DEMOS[0]), speed=0.1, clock=lambda: now[0])
    src.open()
    src.start()
    now[0] = 1.0
    chunk = src.read()
    assert chunk is not None and chunk.n_samples == 200  # 1 s x 0.1 at 2 kHz
    for ok in (3.3, 8, 0.1, None):
        src.set_speed(ok)
        assert src.speed == ok
    for bad in (0.09, 8.5, 0.0, -1.0, math.nan, math.inf, "fast"):
        with pytest.raises(ValueError, match=r"between 0\.1x and 8x"):
            src.set_speed(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"between 0\.1x and 8x"):
            FileSource(str(DEMOS[0]), speed=bad)  # type: ignore[arg-type]


def test_cli_refuses_a_speed_the_replay_cannot_play_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    args = ["live", "--source", "file", "--file", str(DEMOS[0]), "--speed", "9"]
    out = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "fireorder: error: --speed must be between 0.1 and 8 (or 'fast')"
    ]


# ------------------------------------------------------------------------ seek


def _final(session: LiveSession) -> list:
    return [t.event.result for t in session.drain_events() if isinstance(t.event, RepEnded)]


@pytest.fixture(scope="module")
def full_pass(long_file: Path) -> list:
    session = LiveSession(FileSource(str(long_file), speed=None))
    session.run(until_exhausted=True)
    return _final(session)


@pytest.mark.parametrize("target_s", [30.0, 48.0, 64.5, 97.3, 121.0])
def test_verdicts_after_a_seek_equal_a_full_pass(long_file: Path, full_pass: list, target_s):
    """Seeks to before the gap (48 s: primed from the file's start), just after the file's
    first minute, and past the gap (its pre-roll primes the baseline across it); 30 s re-runs
    the full pipeline from the start."""
    src = FileSource(str(long_file), speed=None)
    session = LiveSession(src)
    session.open()
    session.start(threaded=False)
    src.pause()
    target = round(target_s * FS)
    session.seek(target)
    assert session.drain_events() == []  # nothing from the pre-roll
    src.play()
    assert session.pump_once() and src.position > target
    snap = session.snapshot(10.0, max_points=2000)
    assert np.isfinite(snap.filtered[-50:]).all()  # the first frame ends at the target
    session.pump(25.0)
    session._finish()

    def key(reps: list) -> list:
        window = [r for r in reps if target + 2 * FS <= r.start < target + 24 * FS]
        return [(r.start, r.order, r.lag_ms) for r in window]

    want = key(full_pass)
    assert len(want) >= 5 and key(_final(session)) == want


def test_a_primed_baseline_equals_one_updated_block_by_block() -> None:
    rng = np.random.default_rng(4)
    n, block = 114 * 500, 500
    s = np.abs(rng.normal(size=(n, 4))) * (1 + 6 * (np.sin(np.arange(n) / 2500.0)[:, None] > 0.5))
    usable = np.ones_like(s, dtype=bool)
    usable[:200] = False  # the filters' start-up
    usable[30_000:31_000, 1] = False  # a gap's rows on one channel
    fresh = BaselineTracker(4, block, 120, min_blocks=2, rise_per_block=math.exp(0.5 / 60))
    stepwise, primed = copy.deepcopy(fresh), copy.deepcopy(fresh)
    quiet = np.ones(4, dtype=bool)
    for a in range(0, n, block):
        stepwise.update(a, s[a : a + block], usable[a : a + block], quiet)
    primed.prime(0, s, usable)
    assert np.allclose(primed.mean, stepwise.mean, rtol=1e-12)
    assert np.allclose(primed.sd, stepwise.sd, rtol=1e-12)
    assert np.allclose(primed._means, stepwise._means, rtol=1e-12, equal_nan=True)
    assert primed.version == stepwise.version and primed._n_blocks == stepwise._n_blocks
    more = s[:5000] * 3  # and they go on alike (the rise cap included)
    for a in range(0, 5000, block):
        stepwise.update(n + a, more[a : a + block], None, quiet)
        primed.update(n + a, more[a : a + block], None, quiet)
    assert np.allclose(primed.mean, stepwise.mean, rtol=1e-12)


# ------------------------------------------------------------------------ overview


def test_overview_of_a_recording_with_a_gap(long_file: Path) -> None:
    src = FileSource(str(long_file), speed=None)
    info = src.open()
    ov = src.overview(3000)
    assert ov.rms.shape == (3000, 4) and ov.columns == 3000
    assert ov.edges[0] == 0 and ov.edges[-1] == src.n_samples == 150_000
    assert ov.gaps == (GAP,)
    empty = np.flatnonzero(np.isnan(ov.rms).all(axis=1))
    assert empty.size and (ov.edges[empty] >= GAP[0]).all()
    assert (ov.edges[empty + 1] <= GAP[1]).all()
    assert np.isfinite(ov.rms[: empty[0]]).all()
    # reps show: the loudest columns are far above the quietest (rest between reps)
    assert (np.nanpercentile(ov.rms, 95, axis=0) > 4 * np.nanpercentile(ov.rms, 5, axis=0)).all()
    # block by block: the block size changes nothing
    small = compute_overview(src.read_range, src.n_samples, info, 3000, block_rows=7777)
    assert np.allclose(small.rms, ov.rms, rtol=1e-9, equal_nan=True) and small.gaps == ov.gaps
    src.close()
