"""What `fireorder analyze` imports: nothing it does not use (issue 8's start time).

Each import named here cost 5-30 ms of every start on this machine: numpy.random (the quality
monitor's gain calibration, now a table), numpy.ma (``np.median`` imports it: the CSV time
step and the summary's median lag), scipy's package ``__init__`` (subprocess, sysconfig, its
test helpers: the SOS kernel is loaded without it), the readers of the other formats (xml and
gzip for XDF) and tempfile (writing sidecars only). The CLI runs in a fresh interpreter, as a
user starts it; the output is checked too, so a run that skipped the work cannot pass.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from devices.simulation.model import preset, simulate
from dsp.stats import median

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_glute_first.bdf"

#: imported by no `fireorder analyze` of a CSV or a BDF
NEVER = (
    "numpy.ma",
    "numpy.random",
    "scipy",
    "scipy.signal",
    "xml.etree.ElementTree",
    "gzip",
    "tempfile",
    "devices.files.xdf_reader",
    "devices.files.bitalino_reader",
    "devices.files.brainflow_reader",
    "PyQt6",
)

# The harness imports nothing the command does not (json would hide the command's own).
_RUN = (
    "import sys, runpy\n"
    "names = sys.argv[1].split(',')\n"
    "sys.argv = ['fireorder', 'analyze', *sys.argv[2:]]\n"
    "try:\n    runpy.run_module('app', run_name='__main__')\n"
    "except SystemExit as e:\n    assert not e.code, e.code\n"
    "print('\\npresent:' + ','.join(m for m in names if m in sys.modules))\n"
)


def _analyze(
    *args: str, watch: tuple[str, ...] = NEVER, installed: bool = False
) -> tuple[str, list[str]]:
    """``fireorder analyze ARGS`` in a fresh interpreter: its output and which of ``watch``
    it imported. ``installed``: without ``site`` (the packages on PYTHONPATH instead), as
    from a wheel: an editable install's path finder imports pathlib before fireorder runs."""
    env = dict(os.environ)
    flags = []
    if installed:
        flags = ["-S"]
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *site.getsitepackages()])
    out = subprocess.run(
        [sys.executable, *flags, "-c", _RUN, ",".join(watch), *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    doc, _, present = out.stdout.rpartition("\npresent:")
    return doc, [m for m in present.strip().split(",") if m]


def test_median_equals_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 5, 10, 11, 1000, 1001):
        for _ in range(20):
            x = rng.standard_normal(n) * 1e-3 + 5e-4
            assert median(x) == float(np.median(x))
            lags = [float(v) for v in np.round(rng.normal(40, 30, n), 1)]  # as reps give them
            assert median(lags) == float(np.median(lags))
    with_nan = [1.0, float("nan"), 3.0]
    assert np.isnan(median(with_nan)) and np.isnan(np.median(with_nan))
    with pytest.raises(ValueError):
        median([])


def test_analyze_of_a_csv_with_a_time_column_imports_none_of_the_heavy_modules(
    tmp_path: Path,
) -> None:
    t = np.arange(4000) / 2000.0  # a time column: 2000.0000000000002 Hz as estimated
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 5, (2, t.size))
    rows = "\n".join(f"{ti:.6f},{x:.3f},{y:.3f}" for ti, x, y in zip(t, a, b, strict=True))
    path = tmp_path / "t.csv"
    path.write_text("time,glute_l,lumbar_l\n" + rows + "\n")
    doc, present = _analyze(str(path), "--json")
    assert json.loads(doc)["source"]["format"] == "csv"
    assert present == []


def test_analyze_of_a_csv_with_reps_takes_the_median_lag_without_numpy_ma(
    tmp_path: Path,
) -> None:
    rec = simulate(preset("clean", fs=2000.0, seed=3), 12.0)
    t = np.arange(rec.data.shape[0]) / rec.info.fs
    cols = ",".join(["time", *rec.info.channel_names])
    body = np.column_stack([t, rec.data])
    path = tmp_path / "reps.csv"
    np.savetxt(path, body, delimiter=",", header=cols, comments="", fmt="%.6f")
    doc, present = _analyze(str(path), "--json", watch=(*NEVER, "pyedflib"))
    summary = json.loads(doc)["summary"]
    assert summary["reps"] >= 2 and summary["median_lag_ms"] is not None
    assert present == []


def test_analyze_of_a_csv_as_a_table_imports_no_pathlib_shutil_or_json(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rng = np.random.default_rng(5)
    rows = "\n".join(f"{x:.3f},{y:.3f}" for x, y in rng.normal(0, 5, (4000, 2)))
    path.write_text("glute_l,lumbar_l\n" + rows + "\n")
    watch = (*NEVER, "pathlib", "shutil", "json")
    doc, present = _analyze(str(path), "--fs", "2000", watch=watch, installed=True)
    assert "signal quality" in doc  # the table was written
    assert present == []
    doc, present = _analyze(str(path), "--fs", "2000", "--json", watch=watch, installed=True)
    assert json.loads(doc)["source"]["fs"] == 2000.0


def test_analyze_of_a_fireorder_bdf_imports_none_of_the_heavy_modules() -> None:
    doc, present = _analyze(str(DEMO))
    assert "reps " in doc and "median lag" in doc  # the table was written
    assert present == []


def test_sos_kernel_without_scipy_package_then_scipy_signal_works_alike() -> None:
    code = (
        "import sys, numpy as np\n"
        "from dsp import filters\n"
        "assert filters._sosfilt_kernel is not None\n"
        "assert 'scipy' not in sys.modules, 'the package ran'\n"
        "kernel_module = sys.modules['scipy.signal._sosfilt']\n"
        "from scipy import signal\n"  # the real package now, after the stand-in
        "assert sys.modules['scipy'].__file__, 'the stand-in stayed'\n"
        "assert sys.modules['scipy.signal._sosfilt'] is kernel_module\n"
        "sos = filters.design_bandpass(2000.0, 20.0, 450.0)\n"
        "x = np.random.default_rng(4).normal(size=(3, 5000))\n"
        "mine = filters.sosfilt(sos, x)\n"
        "theirs = signal.sosfilt(sos, x, axis=-1)\n"
        "assert np.array_equal(mine, theirs)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
