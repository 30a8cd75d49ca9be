"""Session export: the rep table CSV, the HTML report and ``fireorder report`` end to end."""

from __future__ import annotations

import argparse
import base64
import csv
import json
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import app.cli
from app.cli import CliError, _Parser, main
from app.commands import report as report_cmd
from app.report import INTERPRETATION, rep_table_csv, write_report
from dsp.analysis import analyze
from dsp.settings import DspSettings

ATHLETE = "Jo <script>alert('x')</script> & co"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
FIXED = [
    "lag_ms",
    "lag_ci_low_ms",
    "lag_ci_high_ms",
    "order",
    "corrected",
    "detected_lag_ms",
    "detected_order",
    "left_lag_ms",
    "left_order",
    "right_lag_ms",
    "right_order",
    "reason",
    "rejudged",
    "cued",
]


class StrictHtml(HTMLParser):
    """Collects tags, text and images and records every unbalanced or misnested tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.rows: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.ids: dict[str, str] = {}
        self._id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if tag == "tr" and a.get("class") == "rep":
            self.rows.append(a)
        self._id = a.get("id")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._id is not None:
            self.ids[self._id] = self.ids.get(self._id, "") + data

    @classmethod
    def check(cls, text: str) -> StrictHtml:
        p = cls()
        p.feed(text)
        p.close()
        assert not p.errors, p.errors[:5]
        assert p.stack == [], p.stack
        assert text.startswith("<!DOCTYPE html>")
        return p


@pytest.fixture(scope="module")
def sim_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "sim.csv"
    args = ["simulate", "--duration", "30", "--fs", "2000", "--seed", "7", "--out", str(path)]
    assert main(args) == 0
    return path


@pytest.fixture(scope="module")
def session(sim_csv: Path) -> tuple[dict[str, Any], np.ndarray, Any]:
    rec, data, info = report_cmd.load_mapped(str(sim_csv), None)
    doc = analyze(data, info, DspSettings()).to_dict(report_cmd.source_of(rec, str(sim_csv)))
    assert len(doc["reps"]) >= 6
    return doc, data, info


@pytest.fixture(scope="module")
def noise_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rest only: one glute and one lumbar channel of white noise, no bursts, no reps."""
    path = tmp_path_factory.mktemp("noise") / "rest.csv"
    fs, n = 1000, 8000
    x = np.random.default_rng(1).normal(0.0, 5.0, (n, 2))
    table = np.column_stack([np.arange(n) / fs, x])
    np.savetxt(path, table, delimiter=",", header="time,glute_l,lumbar_l", comments="", fmt="%.4f")
    return path


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fireorder")
    report_cmd.register(p.add_subparsers(dest="command", parser_class=_Parser))
    return p


def run_report(*argv: str) -> int:
    args = parser().parse_args(["report", *argv])
    return int(args.func(args))


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def assert_csv_matches(path: Path, doc: dict[str, Any]) -> None:
    cols, rows = read_csv(path)
    roles = [
        r for r in ("glute_l", "glute_r", "lumbar_l", "lumbar_r") if r in doc["reps"][0]["onsets"]
    ]
    assert cols == ["rep", "start_s", "end_s", *(f"onset_{r}_s" for r in roles), *FIXED]
    assert len(rows) == len(doc["reps"])

    def num(cell: str) -> float | None:
        return None if cell == "" else float(cell)

    for row, rep in zip(rows, doc["reps"], strict=True):
        assert int(row["rep"]) == rep["index"] + 1
        assert num(row["start_s"]) == pytest.approx(rep["start_s"], abs=1e-9)
        assert num(row["end_s"]) == pytest.approx(rep["end_s"], abs=1e-9)
        for r in roles:
            assert num(row[f"onset_{r}_s"]) == pytest.approx(rep["onsets"][r], abs=1e-9)
        assert num(row["lag_ms"]) == pytest.approx(rep["lag_ms"], abs=0.005)
        assert row["order"] == rep["order"]
        for side in ("left", "right"):
            s = rep[side]
            assert num(row[f"{side}_lag_ms"]) == (
                None if s is None else pytest.approx(s["lag_ms"], abs=0.005)
            )
            assert row[f"{side}_order"] == ("" if s is None else s["order"])
        assert row["reason"] == rep["reason"]
        assert row["cued"] == (rep.get("cued") or "")


# ------------------------------------------------------------------------------------------


def test_csv_one_row_per_rep_equal_to_the_analysis(session, tmp_path: Path) -> None:
    doc, _, _ = session
    path = tmp_path / "reps.csv"
    rep_table_csv(doc, path)
    assert_csv_matches(path, doc)
    assert not path.read_text(encoding="utf-8").startswith("#")  # plain header row
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(path)
    assert frame.shape[0] == len(doc["reps"])
    assert frame["lag_ms"].dtype.kind == "f"


def test_html_report_contents(session, tmp_path: Path) -> None:
    doc, data, info = session
    path = tmp_path / "report.html"
    seen: list[float] = []
    write_report(
        doc,
        data,
        info,
        path,
        meta={"athlete": ATHLETE, "session": "week 3 <b>", "date": "2025-01-02"},
        progress=seen.append,
    )
    text = path.read_text(encoding="utf-8")
    page = StrictHtml.check(text)
    # metadata is escaped: shown as text, never as markup
    assert "script" not in page.tags and "b" not in page.tags
    assert "&lt;script&gt;" in text and ATHLETE in "".join(page.text)
    # summary numbers
    s = doc["summary"]
    assert page.ids["sum-reps"] == str(s["reps"])
    decided = s["glute_first"] + s["simultaneous"] + s["lumbar_first"]
    assert page.ids["sum-glute-first-pct"] == f"{100 * s['glute_first'] / decided:.0f} %"
    assert page.ids["sum-median-lag"] == f"{s['median_lag_ms']:+.0f} ms"
    for order in ("glute_first", "simultaneous", "lumbar_first", "undetermined"):
        assert page.ids[f"sum-{order}"] == str(s[order])
    assert "half" in page.ids["trend"]
    # one table row per rep, numbered from 1
    assert [r["data-rep"] for r in page.rows] == [str(r["index"] + 1) for r in doc["reps"]]
    # embedded plots: lags, counts, left/right, overview, at least one example
    srcs = [i.get("src") or "" for i in page.imgs]
    pngs = [s for s in srcs if s.startswith("data:image/png;base64,")]
    assert len(pngs) >= 5 and len(pngs) == len(srcs)
    for src in pngs:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(img.get("alt") for img in page.imgs)
    body = " ".join(" ".join(page.text).split())
    assert INTERPRETATION in body and "training goal, not a diagnosis" in body
    for section in ("Signal quality", "Signal-processing settings", "Left and right"):
        assert section in body
    assert "Hip hinge" in body and "2000 Hz" in body and "sim.csv" in body
    # progress: 0..1, never backwards, finished
    assert seen and seen[-1] == 1.0 and all(0 <= a <= b <= 1 for a, b in pairwise(seen))


def test_report_without_signal(session, tmp_path: Path) -> None:
    doc, _, _ = session
    path = tmp_path / "nosignal.html"
    write_report(doc, None, None, path, title="Set 1 & 2")
    page = StrictHtml.check(path.read_text(encoding="utf-8"))
    assert len(page.imgs) == 3  # lags, counts, left/right: no traces without samples
    assert "Set 1 & 2" in "".join(page.text)


def test_zero_reps(noise_csv: Path, tmp_path: Path, capsys) -> None:
    out, reps = tmp_path / "rest.html", tmp_path / "rest.csv"
    assert run_report(str(noise_csv), "--out", str(out), "--csv", str(reps)) == 0
    page = StrictHtml.check(out.read_text(encoding="utf-8"))
    assert page.ids["sum-reps"] == "0" and page.ids["sum-glute-first-pct"] == "—"
    assert "No reps were detected" in page.ids["no-reps"]
    assert page.rows == []
    cols, rows = read_csv(reps)
    assert rows == [] and cols[:5] == [
        "rep",
        "start_s",
        "end_s",
        "onset_glute_l_s",
        "onset_lumbar_l_s",
    ]
    assert "0 reps" in capsys.readouterr().out


def test_one_side_only(sim_csv: Path, tmp_path: Path, capsys) -> None:
    out, reps = tmp_path / "left.html", tmp_path / "left.csv"
    mapping = "glute_l=glute_l,lumbar_l=lumbar_l"
    assert (
        run_report(str(sim_csv), "--channels", mapping, "--out", str(out), "--csv", str(reps)) == 0
    )
    page = StrictHtml.check(out.read_text(encoding="utf-8"))
    assert "Only the left side" in page.ids["one-side"]
    assert len(page.imgs) >= 3  # lags, counts, overview (+ examples); no left/right plot
    _, rows = read_csv(reps)
    assert rows and all(r["right_order"] == "" and r["right_lag_ms"] == "" for r in rows)
    assert all(r["left_order"] for r in rows)


def test_cli_end_to_end_matches_analyze(sim_csv: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    if "report" not in app.cli.COMMANDS:  # until the command is listed in app/cli.py
        monkeypatch.setattr(app.cli, "COMMANDS", (*app.cli.COMMANDS, "report"))
    out, reps = tmp_path / "r.html", tmp_path / "r.csv"
    argv = ["report", str(sim_csv), "--out", str(out), "--csv", str(reps), "--athlete", ATHLETE]
    assert main([*argv, "--no-progress", "--tolerance-ms", "25"]) == 0
    io = capsys.readouterr()
    assert io.err == "" and f"wrote {out}" in io.out
    assert main(["analyze", str(sim_csv), "--json", "--tolerance-ms", "25"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert_csv_matches(reps, doc)
    text = out.read_text(encoding="utf-8")
    page = StrictHtml.check(text)
    assert page.ids["sum-reps"] == str(doc["summary"]["reps"])
    assert "±25 ms" in " ".join(page.text)
    # a forced bar is one line redrawn with \r, cleared at the end
    assert main([*argv, "--progress"]) == 0
    err = capsys.readouterr().err
    assert "\r" in err and "100%" in err and "\n" not in err


def test_bad_output_paths(sim_csv: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    missing_dir = tmp_path / "nope" / "report.html"
    with pytest.raises(CliError, match="does not exist"):
        run_report(str(sim_csv), "--out", str(missing_dir))
    with pytest.raises(CliError, match="is a directory"):
        run_report(str(sim_csv), "--out", str(tmp_path))
    same = str(tmp_path / "x.html")
    with pytest.raises(CliError, match="different files"):
        run_report(str(sim_csv), "--out", same, "--csv", same)
    with pytest.raises(CliError, match="--csv"):
        run_report(str(sim_csv), "--out", same, "--csv", str(tmp_path / "nope" / "r.csv"))
    assert not Path(same).exists()  # nothing analysed or written before the check failed
    if "report" not in app.cli.COMMANDS:
        monkeypatch.setattr(app.cli, "COMMANDS", (*app.cli.COMMANDS, "report"))
    assert main(["report", str(sim_csv), "--out", str(missing_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fireorder: error: --out") and err.count("\n") == 1
