"""What `fireorder analyze` of a CSV imports: nothing it does not use (issue 8's start time).

Each import named here cost 15-30 ms of every start on this machine: numpy.random (the
quality monitor's gain calibration, now a table) and numpy.ma (``np.median`` imports it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from devices.files.csv_reader import _median


def test_median_equals_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 5, 10, 11, 1000, 1001):
        for _ in range(20):
            x = rng.standard_normal(n) * 1e-3 + 5e-4
            assert _median(x) == float(np.median(x))


def test_analyze_of_a_csv_with_a_time_column_imports_no_numpy_ma_or_random(
    tmp_path: Path,
) -> None:
    t = np.arange(4000) / 2000.0  # a time column: 2000.0000000000002 Hz as estimated
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 5, (2, t.size))
    rows = "\n".join(f"{ti:.6f},{x:.3f},{y:.3f}" for ti, x, y in zip(t, a, b, strict=True))
    path = tmp_path / "t.csv"
    path.write_text("time,glute_l,lumbar_l\n" + rows + "\n")
    code = (
        "import sys, runpy; sys.argv = ['fireorder', 'analyze', sys.argv[1]]\n"
        "try:\n    runpy.run_module('app', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('numpy.ma', 'numpy.random') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
