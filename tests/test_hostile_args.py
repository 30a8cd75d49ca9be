"""Hostile numbers on the command line are refused with the accepted range in one line, exit
2, before any work: NaN, inf, absurd magnitudes (issue 11). A sane value still works."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli_run import run_cli


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=300)


BAD = [
    ("--tolerance-ms", "nan"), ("--tolerance-ms", "inf"), ("--tolerance-ms", "-1"),
    ("--tolerance-ms", "1e9"), ("--min-on-ms", "nan"), ("--min-on-ms", "1e308"),
    ("--min-on-ms", "0"), ("--k-on", "nan"), ("--k-on", "inf"), ("--k-on", "1e-300"),
    ("--k-on", "x"),
]


@pytest.mark.parametrize(("flag", "value"), BAD)
@pytest.mark.parametrize("cmd", ["analyze", "live", "report"])
def test_out_of_range_dsp_arguments(cmd: str, flag: str, value: str, tmp_path: Path) -> None:
    target = [str(tmp_path / "x.csv")] if cmd != "live" else ["--fast", "--duration", "1"]
    proc = _cli(cmd, *target, flag, value)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and flag in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_values_in_range_are_used(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    assert _cli("simulate", "--duration", "12", "--seed", "3", "--out", str(csv)).returncode == 0
    proc = _cli("analyze", str(csv), "--json", "--k-on", "3.5", "--min-on-ms", "25",
                "--tolerance-ms", "0")
    assert proc.returncode == 0, proc.stderr
    import json

    settings = json.loads(proc.stdout)["settings"]
    assert (settings["k_on"], settings["min_on_ms"], settings["tolerance_ms"]) == (3.5, 25.0, 0.0)


SCALE_BAD = [("--adc-bits", "99"), ("--adc-bits", "nan"), ("--gain", "0"), ("--gain", "nan"),
             ("--gain", "inf"), ("--vref", "0"), ("--vref", "1e308"), ("--amp-gain", "0"),
             ("--amp-gain", "-3"), ("--offset", "inf")]


@pytest.mark.parametrize(("flag", "value"), SCALE_BAD)
def test_out_of_range_serial_scale(flag: str, value: str) -> None:
    extra = ["--vref", "5"] if flag == "--adc-bits" else []
    extra = ["--adc-bits", "10"] if flag == "--vref" else extra
    proc = _cli("live", "--source", "serial", "--port", "/dev/null", "--fs", "1000",
                "--channels", "glute_l=ch1,lumbar_l=ch2", flag, value, *extra)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and flag in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
