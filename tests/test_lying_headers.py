"""A header or time column that lies about the sampling rate is one clear line and exit 2,
before any rate-sized buffer is allocated (issue 11: tracebacks, GiB allocations)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pyedflib
import pytest

from tests.cli_run import run_cli

FS = 2000


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=120)


def _edf(path: Path, kind: int) -> bytes:
    x = np.random.default_rng(0).standard_normal((2, FS * 4)) * 20
    bdf = kind == pyedflib.FILETYPE_BDF
    w = pyedflib.EdfWriter(str(path), 2, file_type=kind)
    w.setSignalHeaders([{
        "label": f"ch{i}", "dimension": "uV", "sample_frequency": FS, "physical_max": 500,
        "physical_min": -500, "digital_max": 8388607 if bdf else 32767,
        "digital_min": -8388608 if bdf else -32768,
    } for i in range(2)])
    w.writeSamples(list(x))
    w.close()
    return path.read_bytes()


@pytest.mark.parametrize("kind", [pyedflib.FILETYPE_EDF, pyedflib.FILETYPE_BDF])
@pytest.mark.parametrize("duration", ["1e-300", "1e300", "1e-6", "0.001", "1000"])
def test_lying_record_duration(tmp_path: Path, kind: int, duration: str) -> None:
    good = tmp_path / "good.edf"
    raw = bytearray(_edf(good, kind))
    ok = _cli("analyze", str(good), "--channels", "glute_l=ch0,lumbar_l=ch1")
    assert ok.returncode == 0, ok.stderr
    raw[244:252] = duration.ljust(8).encode()
    bad = tmp_path / "lie.edf"
    bad.write_bytes(bytes(raw))
    proc = _cli("analyze", str(bad), "--channels", "glute_l=ch0,lumbar_l=ch1")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "Hz" in proc.stderr or "duration" in proc.stderr or "compliant" in proc.stderr


@pytest.mark.parametrize("step", ["1e-300", "1e-9", "0.5"])
def test_lying_time_column(tmp_path: Path, step: str) -> None:
    rows = "\n".join(f"{i * float(step)!r},{(i * 7) % 13 - 6},{(i * 5) % 11 - 5}"
                     for i in range(3000))
    path = tmp_path / "t.csv"
    path.write_text("time,a,b\n" + rows + "\n")
    proc = _cli("analyze", str(path), "--channels", "glute_l=a,lumbar_l=b")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "Hz" in proc.stderr


def test_sparse_file_beyond_memory_is_refused_before_reading(tmp_path: Path) -> None:
    good = tmp_path / "good.edf"
    raw = bytearray(_edf(good, pyedflib.FILETYPE_EDF))
    header = int(raw[184:192])
    per_record = 2 * FS * 2  # two signals, 2000 samples per 1 s record, 2 bytes each
    records = int(64e9 // per_record)  # 64 GB of (sparse, unwritten) samples
    raw[236:244] = str(records).ljust(8).encode()
    sparse = tmp_path / "sparse.edf"
    with open(sparse, "wb") as f:
        f.write(raw[:header])
        f.truncate(header + records * per_record)
    proc = _cli("analyze", str(sparse), "--channels", "glute_l=ch0,lumbar_l=ch1")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "GiB" in proc.stderr and "memory" in proc.stderr


@pytest.mark.parametrize(
    "cmd",
    [["analyze", "{f}"], ["report", "{f}", "--out", "{d}/r.html"],
     ["live", "--source", "file", "--file", "{f}"]],
)
def test_a_fifo_is_refused_not_waited_on(tmp_path: Path, cmd: list[str]) -> None:
    import os

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    proc = _cli(*(c.replace("{f}", str(fifo)).replace("{d}", str(tmp_path)) for c in cmd))
    assert proc.returncode == 2, proc.stderr
    assert "not a regular file" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("shape", ["deep", "huge"])
def test_hostile_opensignals_header(tmp_path: Path, shape: str) -> None:
    body = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}" if shape == "deep" else (
        '{"AA": {"column": ["nSeq", "A1"], "pad": "' + "x" * (3 << 20) + '"}}')
    text = "# OpenSignals Text File Format. Version 1\n# " + body + "\n# EndOfHeader\n0\t1\t\n"
    path = tmp_path / "o.txt"
    path.write_text(text)
    proc = _cli("analyze", str(path), "--fs", "1000", "--channels", "glute_l=A1,lumbar_l=A2")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr and "OpenSignals header" in proc.stderr, proc.stderr
