"""What the headless commands and the live pipeline import (not how long it takes).

``import scipy.signal`` costs about a second (it pulls in scipy.stats, interpolate, optimize,
...), more than the rest of ``fireorder analyze`` of a short file; the pipeline designs its
filters with numpy and runs scipy's compiled SOS kernel without that package. Each check runs
in a fresh interpreter so that nothing imported by the test session counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROLES = "glute_l=glute_l,glute_r=glute_r,lumbar_l=lumbar_l,lumbar_r=lumbar_r"
#: heavy scipy subpackages that only scipy.signal (or scipy.fft) would bring in
HEAVY = ("scipy.signal", "scipy.stats", "scipy.fft", "scipy.interpolate", "scipy.optimize")


def modules_after(code: str) -> set[str]:
    """Names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json as _json, sys as _sys
        _sys.__stdout__.write("\\nMODULES " + _json.dumps(sorted(_sys.modules)) + "\\n")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("MODULES "))
    return set(json.loads(line[len("MODULES ") :]))


def heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY)))


def test_pipeline_and_analysis_do_not_import_scipy_signal() -> None:
    mods = modules_after(
        """
        import dsp.pipeline, dsp.analysis, dsp.quality, dsp.filters
        import devices.drivers.simulator, devices.session.live
        """
    )
    assert "scipy.signal" not in mods
    # the compiled kernel alone, registered under its own name, is expected
    assert heavy(mods) == ["scipy.signal._sosfilt"]


def test_cli_parser_and_help_do_not_import_scipy() -> None:
    mods = modules_after(
        """
        import app.cli
        app.cli.build_parser()
        for argv in (["--help"], ["analyze", "--help"]):
            try:
                app.cli.main(argv)
            except SystemExit:
                pass
        """
    )
    assert not [m for m in mods if m == "scipy" or m.startswith("scipy.")]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from devices.simulation.model import preset, simulate, write_csv

    path = tmp_path_factory.mktemp("imports") / "s.csv"
    write_csv(path, simulate(preset("clean", fs=2000.0, seed=2), 6.0))
    return path


def test_analyze_of_a_csv_imports_neither_scipy_signal_nor_pyedflib(small_csv: Path) -> None:
    mods = modules_after(
        f"""
        import io, sys
        import app.cli
        sys.stdout = io.StringIO()
        assert app.cli.main(["analyze", {str(small_csv)!r}, "--channels", {ROLES!r}]) == 0
        assert app.cli.main(["analyze", {str(small_csv)!r}, "--channels", {ROLES!r}, "--json"]) == 0
        """
    )
    assert heavy(mods) == ["scipy.signal._sosfilt"]
    assert "pyedflib" not in mods  # read only for EDF/BDF files
    assert "matplotlib" not in mods


def test_analyze_of_a_bdf_does_not_import_scipy_signal(tmp_path: Path) -> None:
    pyedflib = pytest.importorskip("pyedflib")
    import numpy as np

    from devices.simulation.model import preset, simulate

    rec = simulate(preset("clean", fs=2000.0, seed=4), 6.0)
    path = tmp_path / "r.bdf"
    w = pyedflib.EdfWriter(str(path), rec.data.shape[1], file_type=pyedflib.FILETYPE_BDFPLUS)
    w.setSignalHeaders(
        [
            {
                "label": name,
                "dimension": "uV",
                "sample_frequency": 2000,
                "physical_min": -20000,
                "physical_max": 20000,
                "digital_min": -8388608,
                "digital_max": 8388607,
            }
            for name in rec.info.channel_names
        ]
    )
    w.writeSamples([np.ascontiguousarray(rec.data[:, i]) for i in range(rec.data.shape[1])])
    w.close()
    mods = modules_after(
        f"""
        import io, sys
        import app.cli
        sys.stdout = io.StringIO()
        assert app.cli.main(["analyze", {str(path)!r}]) == 0
        """
    )
    assert heavy(mods) == ["scipy.signal._sosfilt"]


def test_simulate_does_not_import_scipy_signal(tmp_path: Path) -> None:
    out = tmp_path / "sim.csv"
    mods = modules_after(
        f"""
        import app.cli
        assert app.cli.main(["simulate", "--duration", "3", "--out", {str(out)!r}]) == 0
        """
    )
    assert out.is_file()
    assert heavy(mods) == ["scipy.signal._sosfilt"]


def test_scipy_signal_still_works_after_the_kernel_was_loaded() -> None:
    """Loading the kernel first must not break a later ``import scipy.signal`` (tests and the
    benchmarks use it), and both must filter the same."""
    modules_after(
        """
        import numpy as np
        from dsp import filters
        assert filters._sosfilt_kernel is not None
        import scipy.signal
        from scipy.signal._sosfilt import _sosfilt
        assert _sosfilt is filters._sosfilt_kernel
        sos = filters.design_bandpass(2000.0, 20.0, 450.0)
        x = np.random.default_rng(0).standard_normal((2, 1000))
        assert np.array_equal(scipy.signal.sosfilt(sos, x, axis=-1), filters.sosfilt(sos, x))
        """
    )
    modules_after(  # and the other way round: scipy.signal first, the kernel reused
        """
        import scipy.signal
        from dsp import filters
        assert filters._sosfilt_kernel is scipy.signal._sosfilt._sosfilt
        """
    )
