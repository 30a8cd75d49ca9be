"""Progress across sessions (issue 12): per athlete, per session date and exercise, the reps,
glute-first % and median lag from the reviewed reps; ``fireorder report --athlete NAME``
writes it as one HTML file, and the Sessions tab's progress view plots it."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from app.cli import main
from devices.files.sidecar import Correction, ReviewStore
from devices.session.progress import athletes, progress

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "recordings" / "demo_glute_first.bdf"  # 18 glute first, 1 simultaneous, 1 lumbar
BAD = ROOT / "recordings" / "demo_lumbar_first.bdf"  # 4 glute first of 20 with a verdict


def _put(folder: Path, src: Path, name: str, athlete: str, when: str, exercise: str = "hinge"):
    folder.mkdir(parents=True, exist_ok=True)
    bdf = folder / f"{name}.bdf"
    shutil.copy(src, bdf)
    doc = json.loads(src.with_name(src.name + ".json").read_text())
    doc["meta"].update(athlete=athlete, session=name, exercise=exercise)
    doc["created"] = when
    bdf.with_name(bdf.name + ".json").write_text(json.dumps(doc))
    return bdf


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Ana: a poor first week, two sets on 8 March (pooled), a good third session; Ben: one."""
    f = tmp_path / "recordings"
    _put(f, BAD, "w1", "Ana", "2026-03-01T10:00:00+00:00")
    _put(f, BAD, "w2a", "Ana", "2026-03-08T10:00:00+00:00")
    _put(f, GOOD, "w2b", "ana ", "2026-03-08T11:00:00+00:00")  # same athlete, other spelling
    _put(f, GOOD, "w3", "Ana", "2026-03-15T10:00:00+00:00")
    _put(f, GOOD, "b1", "Ben", "2026-03-02T10:00:00+00:00")
    return f


def test_progress_per_session_day_from_the_reviewed_reps(history: Path) -> None:
    assert athletes(history) == ["Ana", "Ben"]
    prog = progress(history, "ANA")
    assert [str(s.day) for s in prog.sessions] == ["2026-03-01", "2026-03-08", "2026-03-15"]
    first, pooled, last = prog.sessions
    assert (first.glute_first, first.decided) == (4, 19)  # one rep undetermined
    assert (pooled.reps, pooled.glute_first, pooled.decided) == (40, 22, 39)
    assert len(pooled.files) == 2 and pooled.sessions == ("w2a", "w2b")
    assert last.glute_first_pct == pytest.approx(90.0)
    assert last.median_lag_ms is not None and last.median_lag_ms > 20
    assert first.median_lag_ms is not None and first.median_lag_ms < -20
    assert prog.tolerance_ms == 20.0
    slope = prog.trend("hinge")
    assert slope is not None and slope[0] > 0  # three sessions: a line may be drawn
    # a correction made in review moves the session's point
    w3 = history / "w3.bdf"
    rep = next(r for r in _reps(w3) if r["order"] == "glute_first")
    ReviewStore(w3).add_correction(
        Correction(
            rep["start_s"],
            "lumbar_l",
            rep["onsets"]["lumbar_l"],
            rep["onsets"]["glute_l"] - 0.08,
            -80.0,
            "lumbar_first",
            "glute_first",
        )
    )
    again = progress(history, "Ana").sessions[-1]
    assert (again.glute_first, again.corrected) == (17, 1)


def _reps(bdf: Path) -> list[dict]:
    from devices.session.progress import analysis_of

    return analysis_of(bdf)[0]["reps"]


def test_one_session_draws_no_trend(history: Path) -> None:
    prog = progress(history, "Ben")
    assert len(prog.sessions) == 1 and prog.trend("hinge") is None


def test_cli_progress_report_is_one_self_contained_file(history: Path, tmp_path: Path, capsys):
    out = tmp_path / "progress.html"
    code = main(["report", "--athlete", "Ana", "--folder", str(history), "--out", str(out)])
    assert code == 0
    assert "3 session(s)" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    srcs = re.findall(r'<img[^>]* src="([^"]+)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1])[:4] == b"\x89PNG"
    assert "http" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', text))
    for day in ("2026-03-01", "2026-03-08", "2026-03-15"):
        assert day in text
    assert "22 of 39" in text and "percentage points a week" in text


def test_cli_progress_of_an_unknown_athlete_is_one_line(history: Path, tmp_path, capsys):
    out = tmp_path / "p.html"
    code = main(["report", "--athlete", "Zed", "--folder", str(history), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    (line,) = err.strip().splitlines()
    assert line.startswith("fireorder: error: no recordings of athlete 'Zed'")
    assert "Ana, Ben" in line and "Traceback" not in err


def test_progress_view_plots_the_picked_athlete(history: Path, qtbot) -> None:
    from app.progress_view import ProgressView, _x

    view = ProgressView([history])
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    assert [view.athlete.itemText(i) for i in range(view.athlete.count())] == ["Ana", "Ben"]
    view.athlete.setCurrentText("Ben")
    qtbot.waitUntil(lambda: not view.busy and view.progress.athlete == "Ben", timeout=60000)
    assert len(view.pct_scatter.getData()[0]) == 1
    assert view.trend_line.getData()[0] is None or len(view.trend_line.getData()[0]) == 0
    assert "no trend line" in view.status.text()
    assert len(view.pct_line.getData()[0] or []) == 0  # one session: nothing joined
    view.athlete.setCurrentText("Ana")
    qtbot.waitUntil(lambda: not view.busy and view.progress.athlete == "Ana", timeout=60000)
    xs, ys = view.pct_scatter.getData()
    days = [s.day for s in view.progress.sessions]
    assert list(xs) == [_x(d) for d in days]
    assert list(ys) == pytest.approx([400 / 19, 2200 / 39, 90.0])  # % of the reps decided
    assert [lbl.textItem.toPlainText() for lbl in view.labels] == ["n=19", "n=39", "n=20"]
    lx, ly = view.lag_scatter.getData()
    assert len(lx) == 3 and ly[0] < -20 < 20 < ly[2]
    assert view.band.getRegion() == pytest.approx((-20.0, 20.0))
    assert len(view.trend_line.getData()[0]) == 2  # three sessions: a trend line
    assert "3 session(s), 80 reps" in view.status.text()


def test_sessions_tab_has_the_progress_view(history: Path, qtbot) -> None:
    from app.session_browser import SessionBrowser

    browser = SessionBrowser(history, examples=None)
    qtbot.addWidget(browser)
    assert browser.tabs.tabText(1) == "Progress"
    assert browser.progress.athlete.count() == 2
    assert browser.progress.progress is None  # nothing analysed until the tab is looked at
