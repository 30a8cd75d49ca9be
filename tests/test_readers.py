"""File readers: CSV, EDF(+)/BDF(+), BITalino/OpenSignals, channel derivation, robustness."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pyedflib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.files import (
    Annotation,
    ReaderError,
    Recording,
    derive_channels,
    numeric,
    read_recording,
    resolve_channel,
)
from devices.files.bitalino_reader import emg_adc_to_microvolts

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_myonset = pytest.mark.skipif(
    not (DATA / "myonset" / "example_data.bdf").exists(), reason="shared/data/myonset absent"
)
needs_biosppy = pytest.mark.skipif(
    not (DATA / "biosppy" / "emg_1.txt").exists(), reason="shared/data/biosppy absent"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | str, **kwargs: object) -> str:
    with pytest.raises(ReaderError) as info:
        read_recording(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert "internal error" not in message
    return message


# --------------------------------------------------------------------------------------- CSV


def test_csv_with_time_column(tmp_path: Path) -> None:
    p = write(tmp_path, "a.csv", "time,EMG1,EMG2\n0.000,1.5,-2\n0.001,2.5,3\n0.002,3.5,4e1\n")
    rec = read_recording(p)
    assert rec.format == "csv"
    assert rec.fs == pytest.approx(1000.0)
    assert rec.channel_names == ("EMG1", "EMG2")
    assert rec.units == ("uV", "uV")
    np.testing.assert_array_equal(rec.data, [[1.5, -2], [2.5, 3], [3.5, 40]])
    assert rec.duration_s == pytest.approx(0.003)
    assert rec.annotations == () and rec.roles == {} and rec.start_time is None
    assert not rec.data.flags.writeable


def test_csv_semicolon_with_decimal_comma(tmp_path: Path) -> None:
    p = write(tmp_path, "a.csv", "Time;EMG 1;EMG 2\n0,0005;1,5;-2,25\n0,0010;2;3,75\n")
    rec = read_recording(p)
    assert rec.fs == pytest.approx(2000.0)
    assert rec.channel_names == ("EMG 1", "EMG 2")
    np.testing.assert_array_equal(rec.data, [[1.5, -2.25], [2.0, 3.75]])


def test_tsv_without_time_needs_fs(tmp_path: Path) -> None:
    p = write(tmp_path, "a.tsv", "glute_l\tlumbar_l\n1\t2\n3\t4\n")
    assert "no time column: set fs" in error_of(p)
    rec = read_recording(p, fs=500)
    assert rec.fs == 500.0
    np.testing.assert_array_equal(rec.data, [[1, 2], [3, 4]])
    assert rec.roles == {"glute_l": "glute_l", "lumbar_l": "lumbar_l"}


def test_csv_gap_becomes_nan_rows(tmp_path: Path) -> None:
    fs = 100.0
    kept = [0, 1, 2, 5, 6, 7, 8, 12]  # samples 3-4 and 9-11 lost
    rows = "".join(f"{k / fs:.4f},{10 * k},{-k}\n" for k in kept)
    rec = read_recording(write(tmp_path, "g.csv", "t,a,b\n" + rows))
    assert rec.fs == pytest.approx(fs)
    assert rec.n_samples == 13
    nan_rows = np.flatnonzero(np.isnan(rec.data).all(axis=1)).tolist()
    assert nan_rows == [3, 4, 9, 10, 11]
    np.testing.assert_array_equal(rec.data[kept, 0], [10.0 * k for k in kept])
    np.testing.assert_array_equal(rec.data[kept, 1], [-float(k) for k in kept])


def test_csv_gap_across_parse_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numeric, "BLOCK_CHARS", 50)  # force many small blocks
    idx = [k for k in range(300) if not 100 <= k < 110]
    rows = "".join(f"{k * 0.002:.3f},{k}\n" for k in idx)
    rec = read_recording(write(tmp_path, "g.csv", "time,x\n" + rows))
    assert rec.n_samples == 300 and rec.fs == pytest.approx(500.0)
    assert np.flatnonzero(np.isnan(rec.data[:, 0])).tolist() == list(range(100, 110))
    np.testing.assert_array_equal(rec.data[idx, 0], idx)
    # Row numbers in messages stay right across blocks (header is row 1, data k at row k+2).
    bad = "time,x\n" + "".join(f"{k * 0.002:.3f},{'oops' if k == 250 else k}\n" for k in range(300))
    assert "row 252, column 'x': 'oops' is not a number" in error_of(write(tmp_path, "b.csv", bad))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("0.0,1\n0.01,2\n0.01,3\n", "row 4: time does not increase"),
        ("0.0,1\n0.01,2\n0.005,3\n", "row 4: time does not increase"),
        ("0.0,1\n0.01,2\n0.012,3\n0.022,4\n0.032,5\n", "row 4: irregular time step"),
        ("0.0,1\n,2\n", "row 3: time is empty"),
        ("0.0,1\n", "one sample only"),
        ("0.0,1\n0.01,2\n0.02,3\n5000,4\n", "too large a gap"),
    ],
)
def test_csv_bad_time_column(tmp_path: Path, rows: str, message: str) -> None:
    assert message in error_of(write(tmp_path, "t.csv", "time,EMG1\n" + rows))


def test_csv_time_in_ms_and_epoch_timestamp(tmp_path: Path) -> None:
    rec = read_recording(write(tmp_path, "ms.csv", "time [ms],x\n0,1\n0.5,2\n1.0,3\n"))
    assert rec.fs == pytest.approx(2000.0) and rec.channel_names == ("x",)
    t0 = 1_700_000_000.0
    rows = "".join(f"{t0 + k / 1000:.4f},{k}\n" for k in range(5))
    rec = read_recording(write(tmp_path, "ts.csv", "timestamp,x\n" + rows))
    assert rec.fs == pytest.approx(1000.0, rel=1e-3)
    assert rec.start_time is not None and rec.start_time.timestamp() == pytest.approx(t0)


def test_csv_fs_given_and_time_column(tmp_path: Path) -> None:
    p = write(tmp_path, "a.csv", "time,x\n0,1\n0.001,2\n0.002,3\n")
    assert read_recording(p, fs=1005).fs == pytest.approx(1000.0)  # within 1%: file wins
    assert "disagrees with the time column" in error_of(p, fs=1100)
    assert "sampling rate must be positive" in error_of(p, fs=-1)


@pytest.mark.parametrize(("units", "factor"), [(None, 1.0), ("uV", 1.0), ("mV", 1e3), ("V", 1e6)])
def test_csv_units_scale_to_microvolts(tmp_path: Path, units: str | None, factor: float) -> None:
    p = write(tmp_path, "a.csv", "EMG1,EMG2\n1.5,-2\n0.25,4\n")
    rec = read_recording(p, fs=1000, units=units)
    np.testing.assert_allclose(rec.data, np.array([[1.5, -2], [0.25, 4]]) * factor)
    assert rec.units == (units or "uV",) * 2


def test_csv_units_in_header(tmp_path: Path) -> None:
    text = "time (s),EMG1 [mV],EMG2 (µV),EMG3 (left glute),acc [g]\n0,1,2,3,4\n0.5,5,6,7,8\n"
    rec = read_recording(write(tmp_path, "u.csv", text))
    assert rec.channel_names == ("EMG1", "EMG2", "EMG3 (left glute)", "acc")
    assert rec.units == ("mV", "µV", "uV", "g")
    np.testing.assert_allclose(rec.data[1], [5000, 6, 7, 8])
    assert "says mV but units is set to V" in error_of(write(tmp_path, "u.csv", text), units="V")
    assert "unknown units 'furlongs'" in error_of(write(tmp_path, "u.csv", text), units="furlongs")


def test_csv_empty_cells_are_nan_and_bad_cells_named(tmp_path: Path) -> None:
    rec = read_recording(write(tmp_path, "e.csv", "EMG1,EMG2\n1,\n,4\n5,6\n"), fs=10)
    np.testing.assert_array_equal(np.isnan(rec.data), [[False, True], [True, False], [0, 0]])
    msg = error_of(write(tmp_path, "b.csv", "EMG1,EMG2\n1,2\n3,4\n5,abc\n"), fs=10)
    assert msg == f"cannot read '{tmp_path / 'b.csv'}': row 4, column 'EMG2': 'abc' is not a number"


def test_csv_roles_comment_and_unnamed_trailing_column(tmp_path: Path) -> None:
    text = (
        "# recorded by fireorder\n# roles: glute_l=EMG1, lumbar_l = EMG2\nEMG1,EMG2,\n1,2,\n3,4,\n"
    )
    rec = read_recording(write(tmp_path, "r.csv", text), fs=100)
    assert rec.channel_names == ("EMG1", "EMG2")
    assert rec.roles == {"glute_l": "EMG1", "lumbar_l": "EMG2"}


def test_csv_bom_crlf_quotes_and_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b'\xef\xbb\xbf"time","a","a"\r\n0,"1",2\r\n0.5,3,4\r\n\r\n')
    rec = read_recording(path)
    assert rec.channel_names == ("a", "a#2")
    np.testing.assert_array_equal(rec.data, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("   \n\n", "the file is empty"),
        ("time,EMG1\n", "no data rows after the header"),
        ("# only a comment\n", "no header row"),
        ("1,2\n3,4\n", "a header row with channel names is required"),
        ("a,b\n1,2\n3\n", "row 3 has 1 field, expected 2"),
        ("a,b\n1,2,3\n", "row 2 has 3 fields, expected 2"),
        ("time\n0\n0.1\n", "no channel columns besides the time column"),
    ],
)
def test_csv_malformed(tmp_path: Path, content: str, message: str) -> None:
    assert message in error_of(write(tmp_path, "m.csv", content), fs=100)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.csv") == f"no such file: {tmp_path / 'nope.csv'}"
    assert "directory" in error_of(tmp_path)
    assert "unknown format 'xls'" in error_of(tmp_path / "x.csv", format="xls")


def test_csv_large_file_round_trip(tmp_path: Path) -> None:
    # Speed is measured in bench/, not asserted here.
    n, k = 100_000, 8
    rng = np.random.default_rng(1)
    table = np.column_stack([np.arange(n) / 2000.0, rng.normal(0, 50, (n, k))])
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("time," + ",".join(f"EMG{i}" for i in range(k)) + "\n")
        np.savetxt(f, table, fmt=["%.6f"] + ["%.3f"] * k, delimiter=",")
    rec = read_recording(path)
    assert rec.data.shape == (n, k) and rec.fs == pytest.approx(2000.0)
    np.testing.assert_allclose(rec.data, table[:, 1:], atol=5e-4)


# --------------------------------------------------------------------------------------- EDF


def write_edf(
    path: Path,
    signals: Sequence[np.ndarray],
    headers: Sequence[dict[str, object]],
    *,
    file_type: int = pyedflib.FILETYPE_EDFPLUS,
    annotations: Sequence[tuple[float, float, str]] = (),
) -> Path:
    writer = pyedflib.EdfWriter(str(path), len(signals), file_type=file_type)
    try:
        writer.setSignalHeaders([dict(h) for h in headers])  # type: ignore[arg-type]
        writer.setStartdatetime(datetime(2024, 5, 17, 10, 30, 0))
        for onset, duration, text in annotations:
            writer.writeAnnotation(onset, duration, text)
        writer.writeSamples([np.asarray(s, dtype=np.float64) for s in signals])
    finally:
        writer.close()
    return path


def emg_header(label: str, dim: str, fs: float, phys: float, **extra: object) -> dict[str, object]:
    return {
        "label": label,
        "dimension": dim,
        "sample_frequency": fs,
        "physical_max": phys,
        "physical_min": -phys,
        "digital_max": 32767,
        "digital_min": -32768,
        "transducer": "",
        "prefilter": "",
        **extra,
    }


def test_edf_plus_round_trip_units_annotations_roles(tmp_path: Path) -> None:
    fs, n = 1000, 3000
    t = np.arange(n) / fs
    x_mv = 1.5 * np.sin(2 * np.pi * 7 * t)  # mV
    y_uv = 800 * np.cos(2 * np.pi * 3 * t)  # uV
    z_v = 0.002 * np.sin(2 * np.pi * 5 * t)  # V
    path = write_edf(
        tmp_path / "r.edf",
        [x_mv, y_uv, z_v],
        [
            emg_header("glute_l", "mV", fs, 5.0),
            emg_header("EXG2", "uV", fs, 5000.0, transducer="AgCl role=lumbar_r"),
            emg_header("EXG3", "V", fs, 0.005),
        ],
        annotations=[(0.5, -1, "rep 1"), (1.25, 0.75, "rep 2")],
    )
    rec = read_recording(path)
    assert rec.format == "edf+"
    assert rec.fs == 1000.0 and rec.n_samples == n
    assert rec.channel_names == ("glute_l", "EXG2", "EXG3")
    assert rec.units == ("mV", "uV", "V")
    np.testing.assert_allclose(rec.data[:, 0], x_mv * 1e3, atol=0.2)  # 16-bit steps ~0.15 uV
    np.testing.assert_allclose(rec.data[:, 1], y_uv, atol=0.2)
    np.testing.assert_allclose(rec.data[:, 2], z_v * 1e6, atol=0.2)
    assert rec.annotations == (Annotation(0.5, 0.0, "rep 1"), Annotation(1.25, 0.75, "rep 2"))
    assert rec.roles == {"glute_l": "glute_l", "lumbar_r": "EXG2"}
    assert rec.start_time == datetime(2024, 5, 17, 10, 30, 0)


def test_bdf_plus_status_channel_is_trigger_word(tmp_path: Path) -> None:
    fs, n = 512, 1024
    codes = np.zeros(n)
    codes[100:110], codes[600:605] = 20, 57
    status = -6815744 + codes  # BioSemi: status bits above the 16 trigger bits
    emg = 100 * np.sin(np.arange(n) / 10)
    status_header = {
        "label": "Status",
        "dimension": "Boolean",
        "sample_frequency": fs,
        "physical_max": 8388607,
        "physical_min": -8388608,
        "digital_max": 8388607,
        "digital_min": -8388608,
        "transducer": "Triggers and Status",
        "prefilter": "No filtering",
    }
    emg_h = emg_header("EXG1", "uV", fs, 262143, digital_max=8388607, digital_min=-8388608)
    path = write_edf(
        tmp_path / "s.bdf",
        [emg, status],
        [emg_h, status_header],
        file_type=pyedflib.FILETYPE_BDFPLUS,
        annotations=[(1.0, 0.0, "start")],
    )
    rec = read_recording(path)
    assert rec.format == "bdf+"
    assert rec.units == ("uV", "")
    np.testing.assert_array_equal(rec.data[:, 1], codes)
    np.testing.assert_allclose(rec.data[:, 0], emg, atol=0.05)
    assert rec.annotations == (Annotation(1.0, 0.0, "start"),)


def test_edf_rates(tmp_path: Path) -> None:
    n = 2  # seconds
    ok = write_edf(
        tmp_path / "ok.edf",
        [np.zeros(1000 * n), np.zeros(1000 * n), np.zeros(50 * n)],
        [
            emg_header("EMG1", "uV", 1000, 100.0),
            emg_header("EMG2", "uV", 1000, 100.0),
            emg_header("ACC", "g", 50, 8.0),
        ],
    )
    rec = read_recording(ok)
    assert rec.channel_names == ("EMG1", "EMG2") and rec.fs == 1000.0
    assert "disagrees with the file header" in error_of(ok, fs=900)
    bad = write_edf(
        tmp_path / "bad.edf",
        [np.zeros(1000 * n), np.zeros(500 * n)],
        [emg_header("EMG1", "uV", 1000, 100.0), emg_header("EMG2", "mV", 500, 1.0)],
    )
    assert "EMG channels have different sampling rates: EMG1 1000 Hz, EMG2 500 Hz" in error_of(bad)


def test_edf_unknown_dimension_kept(tmp_path: Path) -> None:
    path = write_edf(
        tmp_path / "u.edf",
        [np.full(200, 3.0), np.full(200, 2.0)],
        [emg_header("force", "N", 100, 10.0), emg_header("EMG", "", 100, 10.0)],
        file_type=pyedflib.FILETYPE_EDF,
    )
    rec = read_recording(path)
    assert rec.format == "edf" and rec.units == ("N", "")
    np.testing.assert_allclose(rec.data[0], [3.0, 2.0], atol=1e-3)
    # --units applies to the channel that has no unit, not to the one labelled "N".
    np.testing.assert_allclose(read_recording(path, units="mV").data[0], [3.0, 2000], atol=0.1)


@pytest.fixture
def small_edf(tmp_path: Path) -> bytes:
    path = write_edf(
        tmp_path / "src.edf",
        [np.sin(np.arange(400) / 5)],
        [emg_header("EMG", "mV", 200, 2.0)],
        annotations=[(0.1, 0.0, "x")],
    )
    return path.read_bytes()


def test_edf_corrupt(tmp_path: Path, small_edf: bytes) -> None:
    def put(name: str, data: bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(data)
        return p

    assert "truncated: the header promises 2 data records" in error_of(
        put("t.edf", small_edf[:-10])
    )
    assert "an EDF/BDF header alone needs 256" in error_of(put("h.edf", small_edf[:100]))
    assert "truncated inside the header" in error_of(put("h2.edf", small_edf[:600]))
    assert "does not match the header" in error_of(put("l.edf", small_edf + b"\0" * 7))
    wrong_size = small_edf[:184] + b"999     " + small_edf[192:]
    assert "header size 999 does not fit 2 signals" in error_of(put("w.edf", wrong_size))
    bad_ns = small_edf[:252] + b"x   " + small_edf[256:]
    assert "number of signals is 'x'" in error_of(put("n.edf", bad_ns))
    disc = small_edf[:192] + b"EDF+D" + small_edf[197:]
    assert "discontinuous EDF+D is not supported" in error_of(put("d.edf", disc))
    assert "not an EDF or BDF file" in error_of(put("v.edf", b"1" + small_edf[1:]))
    # A corrupt value inside a signal header: pyedflib's own reason, on one line.
    bad_dig = bytearray(small_edf)
    offset = 256 + 2 * (16 + 80 + 8 + 8 + 8)  # digital minimum of signal 0
    bad_dig[offset : offset + 8] = b"40000   "
    assert "EDF reader:" in error_of(put("g.edf", bytes(bad_dig)))


@needs_myonset
@pytest.mark.parametrize("name", ["example_data.bdf", "example_data.edf"])
def test_real_biosemi_files(name: str) -> None:
    rec = read_recording(DATA / "myonset" / name)
    assert rec.format == name[-3:]
    assert rec.fs == 2048.0
    assert rec.channel_names == ("EXG1", "EXG2", "EXG3", "EXG4", "Status")
    assert rec.units == ("uV", "uV", "uV", "uV", "")
    assert rec.n_samples == 118784 and rec.duration_s == pytest.approx(58.0)
    assert rec.annotations == ()
    assert rec.start_time == datetime(2018, 2, 26, 8, 24, 27)
    assert np.isfinite(rec.data).all()
    # The Status trigger word matches the session's event list (sample, code).
    with (DATA / "myonset" / "example_events.csv").open() as f:
        events = [(int(r["sample"]), int(r["code"])) for r in csv.DictReader(f)]
    status = rec.data[:, 4]
    rises = np.flatnonzero((np.diff(status) != 0) & (status[1:] != 0)) + 1
    assert [(int(i), int(status[i])) for i in rises] == events
    # Bipolar EXG1-EXG2 is a hand-muscle EMG of plausible size (tens to hundreds of uV).
    bip = resolve_channel(rec, "EXG1-EXG2")
    np.testing.assert_array_equal(bip, rec.data[:, 0] - rec.data[:, 1])
    centred = bip - np.median(bip)
    assert 1.0 < np.percentile(np.abs(centred), 50) < 1000.0


# ---------------------------------------------------------------------------------- BITalino


@needs_biosppy
def test_real_bitalino_simple_text() -> None:
    path = DATA / "biosppy" / "emg_1.txt"
    rec = read_recording(path)
    assert rec.format == "bitalino-simple"
    assert rec.fs == 1000.0 and rec.channel_names == ("EMG",)
    assert rec.units == ("ADC 12-bit (EMG)",)
    counts = np.loadtxt(path, comments="#")
    assert rec.n_samples == counts.size == 63880
    np.testing.assert_allclose(rec.data[:, 0], (counts / 4096 - 0.5) * 3.3 / 1009 * 1e6)
    assert np.abs(rec.data).max() < 1640  # within the +-1.64 mV sensor range


def test_bitalino_transfer_function() -> None:
    adc = np.array([0.0, 512.0, 1023.0])
    np.testing.assert_allclose(emg_adc_to_microvolts(adc, 10), [-1635.28, 0.0, 1632.09], atol=0.01)


def test_simple_text_non_emg_stays_counts(tmp_path: Path) -> None:
    text = "# Simple Text Format\n# Sampling Rate (Hz):= 100.00\n# Resolution:= 10\n"
    text += "# Labels:= ECG\tEMG\n512\t0\n513\t1023\n"
    rec = read_recording(write(tmp_path, "s.txt", text))
    assert rec.channel_names == ("ECG", "EMG") and rec.units == ("counts", "ADC 10-bit (EMG)")
    np.testing.assert_allclose(rec.data[:, 0], [512, 513])
    np.testing.assert_allclose(rec.data[:, 1], [-1635.28, 1632.09], atol=0.01)
    bad = text.replace("100.00", "fast")
    assert "'sampling rate (hz)' is 'fast', not a number" in error_of(write(tmp_path, "b.txt", bad))


def opensignals_text(
    rows: Sequence[Sequence[int]], header: Mapping[str, object] | None = None
) -> str:
    meta = header or {
        "00:07:80:3B:46:61": {
            "sensor": ["EMG", "ECG"],
            "device name": "00:07:80:3B:46:61",
            "column": ["nSeq", "I1", "I2", "O1", "O2", "A1", "A2"],
            "sync interval": 2,
            "time": "14:20:29.617",
            "date": "2024-3-9",
            "channels": [1, 2],
            "device": "bitalino_rev",
            "sampling rate": 1000,
            "label": ["A1", "A2"],
            "resolution": [4, 1, 1, 1, 1, 10, 10],
        }
    }
    lines = ["# OpenSignals Text File Format. Version 1", "# " + json.dumps(meta), "# EndOfHeader"]
    lines += [
        "\t".join(str(v) for v in row) + "\t" for row in rows
    ]  # OpenSignals ends rows with a tab
    return "\n".join(lines) + "\n"


def test_opensignals_with_lost_samples(tmp_path: Path) -> None:
    samples = [k for k in range(40) if k not in (7, 8, 20)]  # 3 samples lost
    rows = [(k % 16, 0, 0, 0, 0, 512 + k, 100 + k) for k in samples]
    rec = read_recording(write(tmp_path, "o.txt", opensignals_text(rows)))
    assert rec.format == "opensignals"
    assert rec.fs == 1000.0
    assert rec.channel_names == ("A1", "A2")
    assert rec.units == ("ADC 10-bit (EMG)", "counts")
    assert rec.n_samples == 40
    assert np.flatnonzero(np.isnan(rec.data[:, 0])).tolist() == [7, 8, 20]
    np.testing.assert_allclose(rec.data[samples, 1], [100 + k for k in samples])
    np.testing.assert_allclose(
        rec.data[samples, 0], emg_adc_to_microvolts(np.array([512.0 + k for k in samples]), 10)
    )
    assert rec.start_time == datetime(2024, 3, 9, 14, 20, 29, 617000)


def test_opensignals_python_repr_header_and_errors(tmp_path: Path) -> None:
    meta = {"AA:BB": {"column": ["nSeq", "A1"], "sampling rate": 100, "sensor": ["EMG"]}}
    text = opensignals_text([(0, 2048), (1, 2049)], meta).replace(json.dumps(meta), str(meta))
    rec = read_recording(write(tmp_path, "p.txt", text))
    # No resolution in the header and not a BITalino: EMG stays in counts.
    assert rec.units == ("counts",) and rec.data[:, 0].tolist() == [2048, 2049]
    broken = opensignals_text([(0, 1)], meta).replace('"column"', "column")
    assert "not valid JSON" in error_of(write(tmp_path, "b.txt", broken))
    header_only = opensignals_text([], meta)
    assert "no data rows after the header" in error_of(write(tmp_path, "h.txt", header_only))
    ragged = opensignals_text([(0, 1), (1,)], meta)
    assert "row 5 has 1 field, expected 2" in error_of(write(tmp_path, "r.txt", ragged))


# ----------------------------------------------------------------------------- derivations


def make_rec(names: Sequence[str], data: np.ndarray) -> Recording:
    return Recording(
        path="mem",
        format="csv",
        fs=100.0,
        channel_names=tuple(names),
        data=data,
        units=("uV",) * len(names),
    )


def test_resolve_channel_plain_bipolar_and_dash_names() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(50, 4))
    rec = make_rec(["EMG-L", "EMG", "L", "ref"], data)
    np.testing.assert_array_equal(resolve_channel(rec, "EMG-L"), data[:, 0])  # exact name wins
    np.testing.assert_array_equal(resolve_channel(rec, "EMG - ref"), data[:, 1] - data[:, 3])
    np.testing.assert_array_equal(resolve_channel(rec, "emg-l-ref"), data[:, 0] - data[:, 3])
    np.testing.assert_array_equal(resolve_channel(rec, "l"), data[:, 2])  # case-insensitive
    out = resolve_channel(rec, "ref")
    out[:] = 0  # a copy: the recording is untouched
    assert rec.data[0, 3] == data[0, 3]
    with pytest.raises(ReaderError, match=r"unknown channel 'X' \(available: EMG-L, EMG, L, ref"):
        resolve_channel(rec, "X")
    with pytest.raises(ReaderError, match="from itself"):
        resolve_channel(rec, "ref-ref")


def test_resolve_channel_ambiguous() -> None:
    rec = make_rec(["a", "a-b", "b-c", "c"], np.zeros((3, 4)))
    with pytest.raises(ReaderError, match="ambiguous"):
        resolve_channel(rec, "a-b-c")


def test_derive_channels() -> None:
    data = np.arange(40, dtype=float).reshape(10, 4) ** 2
    rec = make_rec(["EXG1", "EXG2", "EXG3", "EXG4"], data)
    out, names = derive_channels(rec, {"glute_l": "EXG1-EXG2", "lumbar_l": "EXG3 - EXG4"})
    assert names == ["EXG1-EXG2", "EXG3-EXG4"]
    np.testing.assert_array_equal(
        out, np.column_stack([data[:, 0] - data[:, 1], data[:, 2] - data[:, 3]])
    )
    with pytest.raises(ReaderError, match="role glute_l is mapped twice"):
        derive_channels(rec, {"glute_l": "EXG1", "GLUTE_L": "EXG2"})
    with pytest.raises(ReaderError, match="'EXG1 -EXG2' is used for both glute_l and lumbar_l"):
        derive_channels(rec, {"glute_l": "EXG1-EXG2", "lumbar_l": "EXG1 -EXG2"})
    with pytest.raises(ReaderError, match="unknown role 'hamstring'"):
        derive_channels(rec, {"hamstring": "EXG1"})
    with pytest.raises(ReaderError, match="unknown channel 'EXG9'"):
        derive_channels(rec, {"glute_r": "EXG9"})


# ------------------------------------------------------------------------------ robustness


def _only_reader_errors(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        try:  # a hang is caught by the suite's timeout
            rec = read_recording(path, fs=250.0)
        except ReaderError as exc:
            msg = str(exc)
            assert "\n" not in msg and msg.startswith("cannot read")
            assert "internal error" not in msg, msg
        else:
            assert rec.data.shape == (rec.n_samples, len(rec.channel_names))


robust = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@robust
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".csv", ".txt", ".edf", ".bdf", ""]))
def test_random_bytes_raise_only_reader_error(data: bytes, suffix: str) -> None:
    _only_reader_errors(data, suffix)


@robust
@given(
    prefix=st.sampled_from(
        [b"0       ", b"\xffBIOSEMI", b"# OpenSignals Text File Format\n# {", b"time,a\n"]
    ),
    data=st.binary(max_size=1024),
)
def test_magic_then_garbage_raise_only_reader_error(prefix: bytes, data: bytes) -> None:
    _only_reader_errors(prefix + data, ".edf" if prefix[:1] in b"0\xff" else ".txt")


def _valid_files() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        edf = write_edf(
            Path(tmp) / "v.edf",
            [np.sin(np.arange(600) / 3), np.cos(np.arange(600) / 7)],
            [emg_header("glute_l", "uV", 300, 5.0), emg_header("lumbar_l", "mV", 300, 5.0)],
            annotations=[(0.5, 0.2, "rep")],
        ).read_bytes()
        bdf = write_edf(
            Path(tmp) / "v.bdf",
            [np.sin(np.arange(256) / 3)],
            [emg_header("EXG1", "uV", 128, 100.0, digital_max=8388607, digital_min=-8388608)],
            file_type=pyedflib.FILETYPE_BDFPLUS,
        ).read_bytes()
    csv_text = "time,EMG1,EMG2\n" + "".join(f"{k / 250:.4f},{k},{-k}\n" for k in range(60))
    rows = [(k % 16, 0, 0, 0, 0, 500 + k, 7) for k in range(40)]
    simple = "# Simple Text Format\n# Sampling Rate (Hz):= 250.00\n# Resolution:= 12\n"
    simple += "# Labels:= EMG\n" + "".join(f"{2000 + k}\n" for k in range(50))
    return {
        ".edf": edf,
        ".bdf": bdf,
        ".csv": csv_text.encode(),
        ".txt": opensignals_text(rows).encode(),
        ".dat": simple.encode(),
    }


VALID = _valid_files()


@robust
@given(kind=st.sampled_from(sorted(VALID)), cut=st.floats(0.0, 1.0))
def test_truncated_valid_files_raise_only_reader_error(kind: str, cut: float) -> None:
    data = VALID[kind]
    _only_reader_errors(data[: int(cut * len(data))], kind)


@robust
@given(
    kind=st.sampled_from(sorted(VALID)),
    pos=st.floats(0.0, 1.0),
    byte=st.integers(0, 255),
)
def test_one_corrupt_byte_raises_only_reader_error(kind: str, pos: float, byte: int) -> None:
    data = bytearray(VALID[kind])
    # Aim at the header half of the time: that is where a bad byte hurts most.
    i = int(pos * (min(len(data), 1024) if byte % 2 else len(data) - 1))
    data[min(i, len(data) - 1)] = byte
    _only_reader_errors(bytes(data), kind)


def test_valid_fixtures_read() -> None:
    for kind, data in VALID.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"v{kind}"
            path.write_bytes(data)
            rec = read_recording(path, fs=250.0 if kind == ".csv" else None)
            assert rec.n_samples > 0, kind
