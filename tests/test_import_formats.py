"""Importers for BrainFlow files (DataFilter.write_file) and XDF (LabRecorder) files."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from brainflow.board_shim import BoardIds, BoardShim
from brainflow.data_filter import DataFilter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.files import Annotation, ReaderError, read_recording
from devices.files.detect import detect_format


def error_of(path: Path | str, **kwargs: object) -> str:
    with pytest.raises(ReaderError) as info:
        read_recording(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert "internal error" not in message
    return message


# ------------------------------------------------------------------------------ BrainFlow


def brainflow_file(
    path: Path,
    board: BoardIds,
    data_uv: np.ndarray,
    *,
    sample_index: np.ndarray | None = None,
    markers: dict[int, float] | None = None,
    start: float = 1_700_000_000.0,
) -> Path:
    bid = board.value
    n, ch = data_uv.shape
    fs = BoardShim.get_sampling_rate(bid)
    idx = np.arange(n) if sample_index is None else sample_index
    out = np.zeros((BoardShim.get_num_rows(bid), n))
    out[BoardShim.get_emg_channels(bid)[:ch]] = data_uv.T
    out[BoardShim.get_package_num_channel(bid)] = idx % 256
    out[BoardShim.get_timestamp_channel(bid)] = start + idx / fs
    for row, value in (markers or {}).items():
        out[BoardShim.get_marker_channel(bid), row] = value
    DataFilter.write_file(out, str(path), "w")
    return path


def test_brainflow_synthetic_board(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = np.round(rng.normal(0, 50, (600, 16)), 3)
    p = brainflow_file(tmp_path / "s.csv", BoardIds.SYNTHETIC_BOARD, data, markers={100: 3})
    rec = read_recording(p, board="SYNTHETIC_BOARD")
    assert rec.format == "brainflow"
    assert rec.fs == 250
    rows = BoardShim.get_emg_channels(BoardIds.SYNTHETIC_BOARD.value)
    assert rec.channel_names == tuple(f"EMG{r}" for r in rows)
    assert rec.units == ("uV",) * 16
    np.testing.assert_allclose(rec.data, data, atol=1e-6)
    assert rec.annotations == (Annotation(100 / 250, 0.0, "marker 3"),)
    assert rec.start_time is not None and rec.start_time.timestamp() == pytest.approx(1.7e9)
    # also by id and by format + board; mV scaling via units
    again = read_recording(p, format="brainflow", board=-1, units="mV")
    np.testing.assert_allclose(again.data, data * 1000, atol=1e-3)


def test_brainflow_gap_with_wrap_becomes_nan_rows(tmp_path: Path) -> None:
    board = BoardIds.ANT_NEURO_EE_410_BOARD
    n = 1200
    full = np.arange(n, dtype=float)[:, None] * np.ones((1, 4))
    # lose samples 250..259 (10) across the 256 wrap of the package counter
    keep = np.r_[0:250, 260:n]
    p = brainflow_file(
        tmp_path / "ant.txt", board, full[keep], sample_index=keep, markers={300: 7.5}
    )
    rec = read_recording(p, board="ANT_NEURO_EE_410")
    assert rec.fs == 2000 and rec.n_samples == n
    assert rec.channel_names == tuple(f"EMG{r}" for r in range(1, 9))
    lost = np.isnan(rec.data[:, 0])
    np.testing.assert_array_equal(np.flatnonzero(lost), np.arange(250, 260))
    np.testing.assert_allclose(rec.data[~lost, :4], full[keep])
    assert rec.annotations == (Annotation(keep[300] / 2000, 0.0, "marker 7.5"),)


def test_brainflow_needs_a_board_and_is_not_detected(tmp_path: Path) -> None:
    data = np.zeros((50, 4))
    p = brainflow_file(tmp_path / "b.csv", BoardIds.SYNTHETIC_BOARD, data)
    assert "set board NAME" in error_of(p, format="brainflow")
    assert detect_format(str(p), p.read_bytes()[:256]) == "csv"
    assert "wrong board" in error_of(p, board="CYTON_BOARD")
    assert "unknown BrainFlow board" in error_of(p, board="NO_SUCH_THING")
    wrong_format = error_of(p, format="csv", board="CYTON_BOARD")
    assert "the board setting applies to BrainFlow" in wrong_format
    bad = tmp_path / "bad.csv"
    bad.write_text("\t".join(["1"] * 32) + "\n" + "\t".join(["x"] * 32) + "\n")
    assert "bad.csv" in error_of(bad, board="SYNTHETIC_BOARD")


# ------------------------------------------------------------------------------------ XDF


def _varlen(n: int) -> bytes:
    return b"\x01" + bytes([n]) if n < 256 else b"\x04" + struct.pack("<I", n)


def _chunk(tag: int, content: bytes, sid: int | None = None) -> bytes:
    body = struct.pack("<H", tag) + (b"" if sid is None else struct.pack("<I", sid)) + content
    return _varlen(len(body)) + body


def _stream_header(
    name: str, kind: str, n: int, fs: float, fmt: str, channels: Sequence[tuple[str, str]] = ()
) -> bytes:
    chans = "".join(f"<channel><label>{lb}</label><unit>{u}</unit></channel>" for lb, u in channels)
    desc = f"<desc><channels>{chans}</channels></desc>" if channels else "<desc/>"
    return (
        f'<?xml version="1.0"?><info><name>{name}</name><type>{kind}</type>'
        f"<channel_count>{n}</channel_count><nominal_srate>{fs}</nominal_srate>"
        f"<channel_format>{fmt}</channel_format><source_id>x</source_id>{desc}</info>"
    ).encode()


def _numeric_samples(stamps: np.ndarray, values: np.ndarray, dtype: str) -> bytes:
    out = [_varlen(len(stamps))]
    for t, row in zip(stamps, values, strict=True):
        out.append(b"\x08" + struct.pack("<d", t) + np.asarray(row, dtype=dtype).tobytes())
    return b"".join(out)


def _string_samples(stamps: Sequence[float], texts: Sequence[str]) -> bytes:
    out = [_varlen(len(stamps))]
    for t, text in zip(stamps, texts, strict=True):
        raw = text.encode()
        out.append(b"\x08" + struct.pack("<d", t) + _varlen(len(raw)) + raw)
    return b"".join(out)


def xdf_bytes(
    values: np.ndarray,
    stamps: np.ndarray,
    markers: Sequence[tuple[float, str]] = (),
    *,
    channels: Sequence[tuple[str, str]] = (),
    extra_signal: bool = False,
) -> bytes:
    """A minimal LabRecorder-like file: EMG stream (float32) + a string marker stream."""
    parts = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
    n_ch = values.shape[1]
    parts.append(_chunk(2, _stream_header("Amp", "EMG", n_ch, 2000, "float32", channels), 1))
    parts.append(_chunk(2, _stream_header("Markers", "Markers", 1, 0, "string"), 2))
    if extra_signal:
        parts.append(_chunk(2, _stream_header("Acc", "EMG", 3, 100, "float32"), 3))
    for a in range(0, len(stamps), 500):  # several Samples chunks, like LabRecorder
        body = _numeric_samples(stamps[a : a + 500], values[a : a + 500], "<f4")
        parts.append(_chunk(3, body, 1))
    if markers:
        parts.append(
            _chunk(3, _string_samples([m[0] for m in markers], [m[1] for m in markers]), 2)
        )
    for sid in (1, 2):
        parts.append(
            _chunk(6, b'<?xml version="1.0"?><info><sample_count>0</sample_count></info>', sid)
        )
    return b"".join(parts)


def emg_block(n: int = 4000, t0: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    values = rng.normal(0, 1, (n, 4)).astype(np.float32)
    return values, t0 + np.arange(n) / 2000.0


CHANNELS = [("glute_l", "millivolts"), ("glute_r", "mV"), ("lumbar_l", "volts"), ("lumbar_r", "")]


def test_xdf_emg_and_markers(tmp_path: Path) -> None:
    values, stamps = emg_block()
    markers = [(100.5, "squeeze"), (101.25, "relax"), (99.0, "before start")]
    p = tmp_path / "rec.xdf"
    p.write_bytes(xdf_bytes(values, stamps, markers, channels=CHANNELS))
    rec = read_recording(p)
    assert rec.format == "xdf" and rec.fs == 2000
    assert rec.channel_names == ("glute_l", "glute_r", "lumbar_l", "lumbar_r")
    assert rec.roles["glute_l"] == "glute_l" and len(rec.roles) == 4
    assert rec.units == ("uV",) * 4
    expect = values.astype(float) * [1e3, 1e3, 1e6, 1.0]
    np.testing.assert_allclose(rec.data, expect, rtol=1e-6)
    assert [a.text for a in rec.annotations] == ["squeeze", "relax"]
    assert [a.onset_s for a in rec.annotations] == pytest.approx([0.5, 1.25], abs=1e-6)


def test_xdf_default_labels_gap_and_gzip(tmp_path: Path) -> None:
    values, stamps = emg_block()
    keep = np.r_[0:1000, 1400:4000]  # 0.2 s dropout
    p = tmp_path / "gap.xdfz"
    with gzip.open(p, "wb") as f:
        f.write(xdf_bytes(values[keep], stamps[keep]))
    rec = read_recording(p)
    assert rec.channel_names == ("ch1", "ch2", "ch3", "ch4") and rec.units == ("uV",) * 4
    assert rec.n_samples == 4000 and rec.annotations == ()
    lost = np.isnan(rec.data[:, 0])
    np.testing.assert_array_equal(np.flatnonzero(lost), np.arange(1000, 1400))
    np.testing.assert_allclose(rec.data[~lost], values[keep], rtol=1e-6)


def test_xdf_stream_choice(tmp_path: Path) -> None:
    values, stamps = emg_block(1000)
    p = tmp_path / "two.xdf"
    p.write_bytes(xdf_bytes(values, stamps, extra_signal=True))
    msg = error_of(p)
    assert "set stream NAME" in msg and "Amp" in msg and "Acc" in msg
    assert read_recording(p, stream="Amp").n_samples == 1000
    assert "no stream named" in error_of(p, stream="Nope")
    assert "not a regularly sampled" in error_of(p, stream="Markers")
    assert "the stream setting applies to XDF" in error_of(p, format="csv", stream="Amp")


def test_xdf_truncated_keeps_sound_part(tmp_path: Path) -> None:
    values, stamps = emg_block()
    raw = xdf_bytes(values, stamps)
    p = tmp_path / "cut.xdf"
    p.write_bytes(raw[: len(raw) // 2])
    rec = read_recording(p)
    assert 0 < rec.n_samples < 4000 and rec.n_samples % 500 == 0
    np.testing.assert_allclose(rec.data, values[: rec.n_samples], rtol=1e-6)


def test_xdf_garbage(tmp_path: Path) -> None:
    p = tmp_path / "junk.xdf"
    p.write_bytes(b"XDF:" + bytes(range(256)) * 4)
    assert "damaged XDF" in error_of(p)
    p.write_bytes(b"not xdf at all\x00\x01")
    assert "not an XDF file" in error_of(p)
    q = tmp_path / "x.bin"
    q.write_bytes(b"XDF:\x01\x02\x01\x00")
    assert detect_format(str(q), q.read_bytes()) == "xdf"
    assert "XDF" in error_of(q)


_GOOD = xdf_bytes(*emg_block(600), [(100.1, "m")], channels=CHANNELS)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(0, len(_GOOD)),
    flips=st.lists(st.tuples(st.integers(0, len(_GOOD) - 1), st.integers(0, 255)), max_size=4),
)
def test_xdf_damage_only_raises_reader_error(
    tmp_path: Path, cut: int, flips: list[tuple[int, int]]
) -> None:
    raw = bytearray(_GOOD[:cut])
    for pos, value in flips:
        if pos < len(raw):
            raw[pos] = value
    p = tmp_path / "fuzz.xdf"
    p.write_bytes(bytes(raw))
    try:
        rec = read_recording(p)
    except ReaderError as exc:
        assert "\n" not in str(exc)
    else:
        assert rec.data.shape[1] >= 1


def test_a_multi_stream_xdf_replays_through_the_same_mapping(tmp_path: Path) -> None:
    """Replay reads a file as analyze does (devices/files/mapping.py): the XDF's stream
    choice reaches the file source, from the CLI too."""
    from devices.drivers.base import DeviceError
    from devices.drivers.file_replay import FileSource

    values, stamps = emg_block(1000)
    p = tmp_path / "two.xdf"
    p.write_bytes(xdf_bytes(values, stamps, extra_signal=True, channels=CHANNELS))
    with pytest.raises(DeviceError, match="set stream NAME"):
        FileSource(str(p)).open()
    src = FileSource(str(p), stream="Amp", speed=None)
    info = src.open()
    assert info.fs == 2000 and src.n_samples == 1000 and len(info.roles) == 4
    from app.cli import main

    assert (
        main(
            [
                "live",
                "--source",
                "file",
                "--file",
                str(p),
                "--stream",
                "Amp",
                "--speed",
                "fast",
                "--jsonl",
            ]
        )
        == 0
    )
