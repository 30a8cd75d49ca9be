"""Ensemble of reps (issue 12): envelopes aligned at the first glute onset, mean and 25-75 %
band per verdict and muscle; in the review widget and in the report."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from devices.files.mapping import load_mapped
from devices.files.sidecar import Correction, ReviewStore
from devices.session.ensemble import ensemble
from devices.session.review_model import reviewed_document
from dsp.analysis import analyze
from dsp.contract import Role, StreamInfo

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "recordings" / "demo_lumbar_first.bdf"


def _bursts(fs: float = 1000.0) -> tuple[np.ndarray, StreamInfo, dict]:
    """Two channels, a constant envelope except a step at known times: the ensemble of a
    step aligned at it is the step, whatever the rep."""
    n = int(20 * fs)
    rng = np.random.default_rng(1)
    data = rng.normal(0, 1.0, (n, 2))
    starts = [2.0, 6.0, 10.0, 14.0]
    for s in starts:
        a = int(s * fs)
        data[a : a + int(1.0 * fs), 0] += rng.normal(0, 80.0, int(1.0 * fs))  # glute burst
        b = a + int(0.1 * fs)
        data[b : b + int(1.0 * fs), 1] += rng.normal(0, 40.0, int(1.0 * fs))  # lumbar later
    info = StreamInfo(fs, ("g", "l"), {Role.GLUTE_L: 0, Role.LUMBAR_L: 1})
    doc = {
        "settings": {},
        "reps": [
            {
                "index": k,
                "start_s": s - 0.2,
                "end_s": s + 1.2,
                "order": "glute_first",
                "onsets": {"glute_l": s, "lumbar_l": s + 0.1},
            }
            for k, s in enumerate(starts)
        ]
        + [{"index": 4, "start_s": 19.9, "order": "glute_first", "onsets": {"glute_l": 19.95}}],
    }
    return data, info, doc


def test_aligned_average_shows_the_burst_after_zero_and_rest_before() -> None:
    data, info, doc = _bursts()
    ens = ensemble(doc, data, info)
    assert ens.reps == {"glute_first": 4} and ens.skipped == 1  # the last runs off the file
    glute, lumbar = ens.of("glute_first")
    assert glute.role == Role.GLUTE_L and glute.n == 4
    t = ens.t_ms
    assert t[0] == pytest.approx(-300) and t[-1] == pytest.approx(700)
    rest, burst = (t > -250) & (t < -80), (t > 150) & (t < 600)
    assert glute.mean[burst].mean() > 10 * glute.mean[rest].mean()
    # the lumbar burst starts 100 ms later: still at rest just after the glute onset
    early = (t > 30) & (t < 70)
    assert lumbar.mean[early].mean() < 0.3 * lumbar.mean[burst].mean()
    assert np.all(glute.lo[burst] <= glute.mean[burst] + 1e-9)
    assert np.all(glute.hi[burst] >= glute.lo[burst])


def test_a_single_rep_of_a_verdict_is_not_averaged() -> None:
    data, info, doc = _bursts()
    doc["reps"][0]["order"] = "lumbar_first"
    ens = ensemble(doc, data, info)
    assert ens.reps["lumbar_first"] == 1 and ens.of("lumbar_first") == []


def test_corrected_reps_count_under_their_corrected_verdict(tmp_path: Path) -> None:
    bdf = tmp_path / BAD.name
    shutil.copy(BAD, bdf)
    shutil.copy(BAD.with_name(BAD.name + ".json"), bdf.with_name(bdf.name + ".json"))
    m = load_mapped(str(bdf))
    doc = analyze(m.data, m.info).to_dict(m.source(str(bdf)))
    before = ensemble(doc, m.data, m.info).reps
    rep = next(r for r in doc["reps"] if r["order"] == "glute_first")
    lumbar = min(v for k, v in rep["onsets"].items() if k.startswith("lumbar") and v is not None)
    ReviewStore(bdf).add_correction(
        Correction(
            rep["start_s"],
            "glute_l",
            rep["onsets"]["glute_l"],
            lumbar + 0.06,
            -60.0,
            "lumbar_first",
            "glute_first",
        )
    )
    rep_r = next(r for r in doc["reps"] if r["index"] == rep["index"])
    ReviewStore(bdf).add_correction(
        Correction(
            rep_r["start_s"],
            "glute_r",
            rep_r["onsets"]["glute_r"],
            lumbar + 0.06,
            -60.0,
            "lumbar_first",
            "glute_first",
        )
    )
    after = ensemble(reviewed_document(doc, str(bdf)), m.data, m.info).reps
    assert after["glute_first"] == before["glute_first"] - 1
    assert after["lumbar_first"] == before["lumbar_first"] + 1


def test_ensemble_view_draws_a_panel_per_verdict(qtbot) -> None:
    from app.ensemble_view import EnsembleView
    from app.theme import CHANNEL_COLORS

    view = EnsembleView()
    qtbot.addWidget(view)
    view.resize(1000, 400)
    view.show()
    view.load(str(BAD))
    qtbot.waitUntil(lambda: view.ensemble is not None, timeout=90000)
    # the file's one undetermined rep is named, not averaged (its lag interval crosses the
    # neutral zone)
    assert list(view.plots) == ["glute_first", "lumbar_first"]
    assert "lumbar first (15 reps)" in view.plots["lumbar_first"].titleLabel.text
    mean = view.curves[("lumbar_first", "lumbar_l")]
    x, y = mean.getData()
    ens = view.ensemble
    assert list(x) == list(ens.t_ms)
    (curve,) = [c for c in ens.of("lumbar_first") if c.role == Role.LUMBAR_L]
    np.testing.assert_allclose(y, curve.mean)
    # the window's lane colour of the file's third channel (lumbar_l)
    assert mean.opts["pen"].color().name() == CHANNEL_COLORS[2].lower()
    assert "not averaged (a single rep): undetermined" in view.status.text()


def test_the_hook_adds_an_ensemble_dock_that_averages_the_replayed_file(qtbot, tmp_path) -> None:
    from PyQt6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from app.settings_store import SettingsStore

    store = SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )
    win = MainWindow(store, threaded=False, recordings_dir=str(tmp_path))
    qtbot.addWidget(win)
    win.show()
    view = win.ensemble_view  # the window adds it (View ▸ Panels lists it)
    dock = win.findChild(QtWidgets.QDockWidget, "dock_ensemble")
    assert dock is not None and dock.widget() is view and dock in win.docks
    assert "Ensemble" in win.dock_actions
    view.button.click()  # nothing open yet: says so
    assert "Nothing to average" in view.status.text()
    win.open_recording(str(BAD))
    view.button.click()
    qtbot.waitUntil(lambda: view.ensemble is not None, timeout=90000)
    assert view.path == str(BAD) and set(view.plots) == {"glute_first", "lumbar_first"}
