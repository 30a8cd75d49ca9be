"""The headless CLI end to end: simulate -> analyze against the truth, live, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from tests.cli_run import ROOT, run_cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROLES = "glute_l=glute_l,glute_r=glute_r,lumbar_l=lumbar_l,lumbar_r=lumbar_r"


@pytest.fixture(scope="module")
def sim_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("sim")
    csv, truth = d / "sim.csv", d / "truth.json"
    assert (
        main(
            [
                "simulate",
                "--duration",
                "40",
                "--fs",
                "2000",
                "--seed",
                "7",
                "--out",
                str(csv),
                "--truth",
                str(truth),
            ]
        )
        == 0
    )
    return csv, json.loads(truth.read_text())


def analyze_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["analyze", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_analyze_json_matches_truth(sim_files: tuple[Path, dict], capsys) -> None:
    csv, truth = sim_files
    doc = analyze_json(capsys, str(csv), "--channels", ROLES)
    assert doc["schema"] == "fireorder.analysis/1"
    assert doc["source"]["format"] == "csv" and doc["source"]["fs"] == pytest.approx(2000)
    assert doc["source"]["duration_s"] == pytest.approx(40, abs=0.01)
    assert set(doc["roles"]) == {"glute_l", "glute_r", "lumbar_l", "lumbar_r"}
    assert set(doc["summary"]) >= {
        "reps",
        "glute_first",
        "lumbar_first",
        "simultaneous",
        "undetermined",
        "median_lag_ms",
    }
    # Every rep that starts in the file, complete or cut by its end, is found once.
    true_reps = [r for r in truth["reps"] if r["start_s"] < 39.5]
    assert len(doc["reps"]) == len(true_reps)
    lag_errors, agree = [], []
    for got, want in zip(doc["reps"], true_reps, strict=True):
        assert got["start_s"] == pytest.approx(want["start_s"], abs=0.05)
        if abs(want["lag_ms"]) >= 40:  # unambiguous reps
            agree.append(got["order"] == want["order"])
            lag_errors.append(abs(got["lag_ms"] - want["lag_ms"]))
            if abs(want["lag_ms"]) >= 60:  # far outside the neutral zone: never wrong
                assert got["order"] == want["order"]
    assert np.mean(agree) >= 0.9
    assert np.median(lag_errors) <= 15 and max(lag_errors) <= 50
    n_onsets = sum(len(v) for v in doc["onsets"].values())
    assert n_onsets >= 4 * len(true_reps)
    assert set(doc["quality"]) == set(doc["roles"])


def test_analyze_table_output(sim_files: tuple[Path, dict], capsys) -> None:
    csv, _ = sim_files
    assert main(["analyze", str(csv), "--channels", ROLES]) == 0
    out = capsys.readouterr().out
    assert "glute first" in out and "lag ms" in out and "median lag" in out


def test_analyze_single_leg_template(sim_files: tuple[Path, dict], capsys) -> None:
    csv, _ = sim_files
    doc = analyze_json(capsys, str(csv), "--channels", ROLES, "--exercise", "split_squat_left")
    assert doc["exercise"] == "split_squat_left"
    assert all(set(r["onsets"]) == {"glute_l", "lumbar_l", "lumbar_r"} for r in doc["reps"])
    assert all(r["right"] is None for r in doc["reps"])


def test_analyze_edf_with_roles_in_labels(tmp_path: Path, capsys) -> None:
    pyedflib = pytest.importorskip("pyedflib")
    from devices.simulation.model import preset, simulate

    rec = simulate(preset("clean", seed=3, fs=2000), 20)
    path = tmp_path / "rec.bdf"
    w = pyedflib.EdfWriter(str(path), rec.data.shape[1], file_type=pyedflib.FILETYPE_BDFPLUS)
    heads = []
    for name in rec.info.channel_names:
        heads.append(
            {
                "label": name,
                "dimension": "uV",
                "sample_frequency": 2000,
                "physical_min": -20000,
                "physical_max": 20000,
                "digital_min": -8388608,
                "digital_max": 8388607,
            }
        )
    w.setSignalHeaders(heads)
    w.writeSamples([np.ascontiguousarray(rec.data[:, i]) for i in range(rec.data.shape[1])])
    w.close()
    doc = analyze_json(capsys, str(path))  # roles come from the labels
    assert doc["source"]["format"].startswith("bdf")
    truth = [r for r in rec.truth.reps if r.start_s < 19.5]
    assert len(doc["reps"]) == len(truth)


@pytest.mark.skipif(not (DATA / "myonset" / "example_data.bdf").exists(), reason="no shared data")
def test_analyze_real_biosemi_bipolar(capsys) -> None:
    doc = analyze_json(
        capsys,
        str(DATA / "myonset" / "example_data.bdf"),
        "--channels",
        "glute_l=EXG1-EXG2,lumbar_l=EXG3-EXG4",
    )
    assert doc["source"]["fs"] == 2048 and doc["roles"]["glute_l"] == "EXG1-EXG2"
    # A choice reaction task: response code 100 is given by the hand under EXG1-EXG2, 200 by
    # the hand under EXG3-EXG4. Each response must follow an EMG onset of that hand by an
    # electromechanical delay plus key travel (motor time, 50-300 ms; one press at 19.54 s
    # follows a brief discharge 270 ms before it and the main burst 120 ms before it). Nobody
    # on this project made the file.
    import csv

    with open(DATA / "myonset" / "example_events.csv") as f:
        events = [(float(r["time"]), int(r["code"])) for r in csv.DictReader(f)]
    hand = {100: "glute_l", 200: "lumbar_l"}
    responses = [(t, hand[c]) for t, c in events if c in hand]
    assert len(responses) == 16
    for t, role in responses:
        delays = [t - o for o in doc["onsets"][role] if 0 <= t - o < 0.6]
        assert delays and 0.05 <= min(delays) <= 0.30, (t, role, delays)


def test_live_jsonl_fast(capsys) -> None:
    assert main(["live", "--fast", "--duration", "20", "--seed", "2", "--jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    reps, stats = lines[:-1], lines[-1]
    assert len(reps) >= 4 and all({"rep", "lag_ms", "order"} <= set(r) for r in reps)
    assert stats["samples"] == 40_000 and stats["gaps"] == 0


# -- bad input: one line on stderr, exit code 2, no traceback ---------------------------------
def _bad(tmp_path: Path) -> dict[str, list[str]]:
    csv = tmp_path / "ok.csv"
    csv.write_text("time,a,b\n" + "".join(f"{i / 1000},{i % 7},{i % 5}\n" for i in range(3000)))
    text = tmp_path / "text.csv"
    text.write_text("time,a,b\n0,1,2\n0.001,x,3\n")
    notime = tmp_path / "notime.csv"
    notime.write_text("a,b\n1,2\n3,4\n")
    trunc = tmp_path / "trunc.edf"
    trunc.write_bytes(b"0       " + b"X" * 100)
    return {
        "missing file": [
            "analyze",
            str(tmp_path / "nope.csv"),
            "--channels",
            "glute_l=a,lumbar_l=b",
        ],
        "unknown column": ["analyze", str(csv), "--channels", "glute_l=a,lumbar_l=zz"],
        "role twice": ["analyze", str(csv), "--channels", "glute_l=a,glute_l=b"],
        "bad role": ["analyze", str(csv), "--channels", "gluteus=a,lumbar_l=b"],
        "no lumbar": ["analyze", str(csv), "--channels", "glute_l=a"],
        "non-numeric": ["analyze", str(text), "--channels", "glute_l=a,lumbar_l=b"],
        "fs missing": ["analyze", str(notime), "--channels", "glute_l=a,lumbar_l=b"],
        "truncated": ["analyze", str(trunc), "--channels", "glute_l=a,lumbar_l=b"],
        "bad exercise": [
            "analyze",
            str(csv),
            "--channels",
            "glute_l=a,lumbar_l=b",
            "--exercise",
            "x",
        ],
        "bad simulate": ["simulate", "--duration", "-1", "--out", str(tmp_path / "o.csv")],
        "unwritable": ["simulate", "--duration", "1", "--out", "/proc/nope/o.csv"],
    }


@pytest.mark.parametrize("case", list(_bad(Path("/tmp")).keys()))
def test_bad_input_is_one_clear_line(case: str, tmp_path: Path) -> None:
    args = _bad(tmp_path)[case]
    proc = run_cli(*args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("fireorder")


def test_headless_commands_do_not_import_qt(sim_files: tuple[Path, dict]) -> None:
    csv, _ = sim_files
    code = (
        "import sys; from app.cli import main; "
        f"rc = main(['analyze', {str(csv)!r}, '--channels', {ROLES!r}, '--json']); "
        "bad = [m for m in sys.modules if m.startswith(('PyQt6', 'pyqtgraph'))]; "
        "sys.exit(3 if bad else rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_analyze_a_brainflow_csv_file(tmp_path: Path, capsys) -> None:
    from devices.drivers.brainflow_board import write_brainflow_file
    from devices.simulation.model import preset, simulate

    rec = simulate(preset("clean", seed=5, fs=2000), 20)
    path = tmp_path / "bf.csv"
    write_brainflow_file(str(path), rec.data, master_board="ANT_NEURO_EE_410_BOARD")
    roles = "glute_l=EMG1,glute_r=EMG2,lumbar_l=EMG3,lumbar_r=EMG4"
    doc = analyze_json(capsys, str(path), "--board", "ANT_NEURO_EE_410_BOARD", "--channels", roles)
    assert doc["source"]["format"] == "brainflow" and doc["source"]["fs"] == 2000
    assert len(doc["reps"]) == len([r for r in rec.truth.reps if r.start_s < 19.5])
    assert main(["analyze", str(path), "--channels", roles]) == 2  # which board? one line


def _fireorder(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=ROOT)


def test_a_truncated_bdf_is_one_warning_line_and_in_the_json(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[1] / "recordings" / "demo_lumbar_first.bdf"
    cut = tmp_path / "cut.bdf"
    cut.write_bytes(demo.read_bytes()[:100_000])  # the header and 14 of 240 records
    out = _fireorder("analyze", "--json", str(cut))
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines == [f"fireorder: warning: {cut}: truncated; reading 14 of 240 data records"]
    doc = json.loads(out.stdout)
    assert doc["source"]["warnings"] == [lines[0].removeprefix("fireorder: warning: ")]
    # a whole file: nothing to warn of
    whole = _fireorder("analyze", "--json", str(demo))
    assert whole.returncode == 0 and json.loads(whole.stdout)["source"]["warnings"] == []
    # -v: the developer's form, with the module that warned
    verbose = _fireorder("-v", "analyze", str(cut))
    assert "WARNING devices.files.bdf_format: " in verbose.stderr


def test_version_is_printed_on_stdout() -> None:
    out = _fireorder("--version")
    assert out.returncode == 0 and out.stderr == ""
    name, version = out.stdout.split()
    assert name == "fireorder" and version[0].isdigit()
