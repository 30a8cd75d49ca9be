"""Reports carry the review (issue 12): a rep corrected in review reads corrected in
``fireorder report`` (HTML and CSV, the detected values beside), notes are on the report's
timeline, and a sidecar that cannot be trusted is never written."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.cli import main
from devices.drivers.file_replay import FileSource
from devices.files.sidecar import Note, ReviewStore
from devices.session.controller import SessionController
from devices.session.review_model import reviewed
from dsp.contract import Role
from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_glute_first.bdf"


def _copy(folder: Path, name: str = "ana.bdf") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    bdf = folder / name
    shutil.copy(DEMO, bdf)
    shutil.copy(DEMO.with_name(DEMO.name + ".json"), bdf.with_name(bdf.name + ".json"))
    return bdf


def _review(bdf: Path) -> tuple[float, float, str]:
    """Replay ``bdf``, move the lumbar onset of its first glute-first rep 100 samples before
    the glutes (the rep turns lumbar-first), and note something inside that rep.
    Returns (rep start s, detected lag, note text)."""
    ctl = SessionController(FileSource(str(bdf), speed=None))
    ctl.open()
    ctl.start(threaded=False)
    ctl.pump(20.0)
    rep = next(r for r in ctl.tally.reps if r.order == GLUTE_FIRST and r.lag_ms is not None)
    first = min(i for r, i in rep.onsets.items() if r.is_glute and i is not None)
    fixed, where = ctl.correct(rep, Role.LUMBAR_L, first - 100)
    assert fixed.order == LUMBAR_FIRST and where is not None
    _, kept = ctl.note("hips shot up", index=first + 50)
    assert kept == where == bdf.with_name(bdf.name + ".json")  # travels with the recording
    ctl.close()
    assert rep.lag_ms is not None
    return rep.start / ctl.fs, rep.lag_ms, "hips shot up"


class Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.ids: dict[str, str] = {}
        self._id: str | None = None
        self.sections: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("class") == "rep":
            self.rows.append(a)
        if tag == "section" and a.get("id"):
            self.sections.append(str(a["id"]))
        self._id = a.get("id")

    def handle_data(self, data: str) -> None:
        if self._id:
            self.ids[self._id] = self.ids.get(self._id, "") + data


def test_cli_report_uses_the_corrections_and_notes(tmp_path: Path, capsys) -> None:
    bdf = _copy(tmp_path / "rec")
    start_s, detected_lag, text = _review(bdf)
    side_before = bdf.with_name(bdf.name + ".json").read_bytes()
    out, table = tmp_path / "r.html", tmp_path / "r.csv"
    assert main(["report", str(bdf), "--out", str(out), "--csv", str(table)]) == 0
    said = capsys.readouterr().out
    assert "1 corrected in review" in said
    with table.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    fixed = [r for r in rows if r["corrected"] == "yes"]
    assert len(fixed) == 1
    (row,) = fixed
    assert abs(float(row["start_s"]) - start_s) < 0.002
    assert row["order"] == LUMBAR_FIRST and float(row["lag_ms"]) < -20
    assert row["detected_order"] == GLUTE_FIRST
    assert float(row["detected_lag_ms"]) == pytest.approx(detected_lag, abs=0.5)
    # not corrected: the detected columns repeat the values (a spreadsheet needs no blanks)
    other = next(r for r in rows if r["corrected"] == "")
    assert other["detected_lag_ms"] == other["lag_ms"] and other["detected_order"] == other["order"]
    page = Rows()
    page.feed(out.read_text(encoding="utf-8"))
    # the tallies count the corrected verdict: 18 glute-first detected, 17 after review
    assert page.ids["sum-glute_first"] == "17" and page.ids["sum-lumbar_first"] == "2"
    assert [r.get("data-corrected") for r in page.rows].count("yes") == 1
    assert "notes" in page.sections and "ensemble" in page.sections
    html = out.read_text(encoding="utf-8")
    assert text in html and "made in review" in html and "corrected by hand" in html
    # the rep the note fell in is named beside it, and the note is in that rep's row
    rep_no = int(row["rep"])
    assert f"rep {rep_no}</td><td>{text}" in html
    assert bdf.with_name(bdf.name + ".json").read_bytes() == side_before  # report reads only


def test_cli_subprocess_report_of_the_example_reads_its_data_folder_review(tmp_path) -> None:
    """The shipped example's review lives in the data folder; the real CLI finds it."""
    store = ReviewStore(DEMO)
    assert not store.in_sidecar
    store.add_note(Note(10.0, "warm-up set"))
    out = tmp_path / "demo.html"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "report", str(DEMO), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warm-up set" in out.read_text(encoding="utf-8")


def test_a_correction_of_a_rep_the_analysis_did_not_find_is_said_not_applied() -> None:
    from devices.files.sidecar import Correction

    doc = {
        "settings": {"tolerance_ms": 20.0},
        "reps": [
            {
                "index": 0,
                "start_s": 1.0,
                "end_s": 2.0,
                "lag_ms": 50.0,
                "order": "glute_first",
                "onsets": {"glute_l": 1.1, "lumbar_l": 1.15},
            }
        ],
        "summary": {"reps": 1},
    }
    far = Correction(30.0, "lumbar_l", 30.1, 30.0, -100.0, "lumbar_first", "glute_first")
    near = Correction(1.0, "lumbar_l", 1.15, 1.05, -50.0, "lumbar_first", "glute_first")
    out = reviewed(doc, [far, near], [Note(1.5, "in rep 1"), Note(9.0, "between reps")])
    assert out["review"]["unmatched_corrections"] == 1 and out["review"]["corrected_reps"] == 1
    (rep,) = out["reps"]
    assert rep["order"] == "lumbar_first" and rep["lag_ms"] == pytest.approx(-50.0)
    assert rep["detected"]["order"] == "glute_first" and rep["detected"]["lag_ms"] == 50.0
    assert [(n["text"], n["rep"]) for n in out["notes"]] == [
        ("in rep 1", 1),
        ("between reps", None),
    ]
    assert doc["reps"][0]["order"] == "glute_first"  # the analysis itself is untouched


def test_an_onset_moved_back_where_it_was_detected_is_no_correction() -> None:
    """The report, the counts and the window agree: a role whose last correction put the
    onset back at the detected time is as detected; the rep's other role still counts."""
    from devices.files.sidecar import Correction, corrected_counts, standing_corrections

    doc = {
        "settings": {"tolerance_ms": 20.0},
        "reps": [
            {
                "index": 0,
                "start_s": 1.0,
                "end_s": 2.0,
                "lag_ms": 50.0,
                "order": "glute_first",
                "onsets": {"glute_l": 1.1, "lumbar_l": 1.15},
            },
            {
                "index": 1,
                "start_s": 4.0,
                "end_s": 5.0,
                "lag_ms": 40.0,
                "order": "glute_first",
                "onsets": {"glute_l": 4.1, "lumbar_l": 4.14},
            },
        ],
        "summary": {"reps": 2},
    }
    moved = Correction(1.0, "lumbar_l", 1.15, 1.05, -50.0, "lumbar_first", "glute_first")
    back = Correction(1.0, "lumbar_l", 1.15, 1.15, 50.0, "glute_first", "glute_first")
    other = Correction(4.0, "glute_l", 4.1, 4.2, -60.0, "lumbar_first", "glute_first")
    out = reviewed(doc, [moved, other, back])
    first, second = out["reps"]
    assert not first["corrected"] and first["lag_ms"] == 50.0 and first["order"] == "glute_first"
    assert second["corrected"] and second["order"] == "lumbar_first"
    assert out["review"]["corrected_reps"] == 1
    assert standing_corrections([moved, other, back]) == [other]
    counts = corrected_counts({"glute_first": 2}, [moved, other, back])
    assert counts["glute_first"] == 1 and counts["lumbar_first"] == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(
            lambda raw: json.dumps({**json.loads(raw), "schema": 99}).encode(), id="schema-99"
        ),
        pytest.param(
            lambda raw: json.dumps({**json.loads(raw), "schema": "fireorder.recording/7"}).encode(),
            id="newer",
        ),
    ],
)
def test_a_sidecar_that_cannot_be_trusted_is_never_written(tmp_path: Path, damage) -> None:
    bdf = _copy(tmp_path / "rec")
    side = bdf.with_name(bdf.name + ".json")
    side.write_bytes(damage(side.read_bytes()))
    before = side.read_bytes()
    store = ReviewStore(bdf)
    assert store.notice is not None and "read-only" in store.notice
    assert len(store.notice.splitlines()) == 1
    # through the real replay: the note goes to the data-folder copy
    ctl = SessionController(FileSource(str(bdf), speed=None))
    ctl.open()
    _, where = ctl.note("left knee caved")
    ctl.close()
    assert where is not None and where != side and not where.is_relative_to(bdf.parent)
    assert side.read_bytes() == before
    assert [n.text for n in ReviewStore(bdf).notes()] == ["left knee caved"]


def test_a_missing_sidecar_gives_a_notice_and_the_review_goes_to_the_data_folder(tmp_path):
    bdf = _copy(tmp_path / "rec")
    bdf.with_name(bdf.name + ".json").unlink()
    store = ReviewStore(bdf)
    assert store.notice is not None and "has no sidecar" in store.notice
    store.add_note(Note(3.0, "x"))
    assert not bdf.with_name(bdf.name + ".json").exists()


def test_a_sidecar_that_goes_bad_after_opening_is_left_alone(tmp_path: Path) -> None:
    bdf = _copy(tmp_path / "rec")
    side = bdf.with_name(bdf.name + ".json")
    store = ReviewStore(bdf)
    assert store.in_sidecar and store.notice is None
    side.write_bytes(side.read_bytes()[:100])  # cut short by another program meanwhile
    cut = side.read_bytes()
    where = store.add_note(Note(1.0, "still kept"))
    assert side.read_bytes() == cut and where != side
    assert [n.text for n in ReviewStore(bdf).notes()] == ["still kept"]


def test_a_damaged_data_folder_review_is_kept_aside_not_overwritten(tmp_path: Path) -> None:
    store = ReviewStore(DEMO)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text('{"schema": "fireorder.review/1", "notes": [{"t_s": 1')
    store.add_note(Note(2.0, "new"))
    aside = list(store.path.parent.glob(store.path.name + ".damaged-*"))
    assert len(aside) == 1 and aside[0].read_text().endswith('"t_s": 1')
    assert [n.text for n in store.notes()] == ["new"]


def test_the_windows_export_uses_the_review_too(tmp_path: Path, qtbot) -> None:
    """Ctrl+E's worker (the exporter the window starts) writes the same reviewed CSV."""
    from app.export_dialog import ReportExporter
    from dsp.settings import DspSettings

    bdf = _copy(tmp_path / "rec")
    _review(bdf)
    out = tmp_path / "win.html"
    job = ReportExporter(str(bdf), str(out), None, DspSettings(), {"athlete": "Ana"})
    with qtbot.waitSignal(job.finished, timeout=120000) as done:
        job.start()
    assert done.args == [""]
    with out.with_suffix(".csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    (fixed,) = [r for r in rows if r["corrected"] == "yes"]
    assert fixed["order"] == LUMBAR_FIRST and fixed["detected_order"] == GLUTE_FIRST
    assert "hips shot up" in out.read_text(encoding="utf-8")
