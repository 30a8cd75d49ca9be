"""The live traces paint only their newest columns each frame and scroll the rest from a cached
image: the picture must be the one a full repaint gives, spikes at their full height."""

from __future__ import annotations

import numpy as np
from PyQt6 import QtCore, QtWidgets

from app.traces import TracesView
from devices.session.live import Snapshot
from dsp.contract import StreamInfo
from tests.qt_pixels import pixels as _pixels

FS = 2000.0
K = 18  # samples per min/max bin (about what a 10 s window over ~1100 px asks for)
N_CH = 4
SCALE = 100.0  # µV per half lane


def _signal(n_bins: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin min, max and envelope: noise, bursts, and single-bin spikes to full scale."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 5.0, (n_bins, N_CH))
    burst = (np.arange(n_bins) // 300) % 3 == 1
    base[burst] *= 6  # (to about half the half lane: lanes never overlap)
    fmin = base - np.abs(rng.normal(0, 8, base.shape))
    fmax = base + np.abs(rng.normal(0, 8, base.shape))
    for b in range(150, n_bins, 410):  # a spike: one bin reaching the lane's edge
        fmax[b, b % N_CH] = 0.95 * SCALE
        fmin[b, b % N_CH] = -0.95 * SCALE
    env = np.abs(base) + 3.0
    return fmin, fmax, env


def _snap(fmin: np.ndarray, fmax: np.ndarray, env: np.ndarray, end: int, n_bins: int) -> Snapshot:
    first = end - n_bins
    idx = np.arange(first, end)
    valid = idx >= 0
    filt = np.full((2 * n_bins, N_CH), np.nan)
    filt[0::2][valid], filt[1::2][valid] = fmin[idx[valid]], fmax[idx[valid]]
    e = np.full((n_bins, N_CH), np.nan)
    e[valid] = env[idx[valid]]
    t = (first * K + np.arange(2 * n_bins) * (K // 2)) / FS
    return Snapshot(
        first * K,
        FS,
        t,
        np.empty((0, N_CH)),
        filt,
        np.repeat(e, 2, axis=0),
        np.full(N_CH, 20.0),
        np.full(N_CH, SCALE),
    )


def _view(qtbot) -> TracesView:
    view = TracesView()
    qtbot.addWidget(view)
    view.resize(1000, 520)
    view.show()
    view.configure(StreamInfo(FS, tuple(f"ch{c}" for c in range(N_CH))))
    QtWidgets.QApplication.processEvents()
    return view


def test_scrolled_frames_equal_a_full_repaint(qtbot) -> None:
    view = _view(qtbot)
    n_bins = int(np.ceil(view.window_s * FS / K))
    fmin, fmax, env = _signal(6 * n_bins)
    end = n_bins // 3  # the window not yet full: the start of a session
    compared = 0
    for frame in range(260):
        end += 1 + frame % 4  # 1-4 new bins per frame, as the GUI timer sees them
        t_end = (end * K) / FS
        if frame == 40:
            view.add_rep(t_end - 0.5, None, "glute_first", 1)  # a rep begins: its span lasts
        if frame == 70:
            view.add_rep(t_end - 1.9, t_end - 0.3, "glute_first", 1)  # ...ends, judged
        if frame == 120:
            view.add_rep(t_end - 1.0, t_end - 0.2, "lumbar_first", 2)
        view.draw(_snap(fmin, fmax, env, end, n_bins))
        if frame % 37 == 36 or frame in (41, 71, 121):
            cached = _pixels(view)
            assert view._signal.cache.done_col is not None  # the cache was used
            view._signal.cache.invalidate()
            full = _pixels(view)  # every column painted afresh from the same snapshot
            assert np.array_equal(cached, full), frame
            compared += 1
    assert compared >= 8


def _extents(px: np.ndarray, color: np.ndarray, rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel column, the top and bottom row of a lane's colour within ``rows``
    (inf / -inf where the column has none)."""
    hit = (np.abs(px[rows].astype(int) - color).max(axis=2) <= 10).T  # (x, y)
    idx = np.arange(hit.shape[1])
    top = np.where(hit, idx, np.inf).min(axis=1)
    bottom = np.where(hit, idx, -np.inf).max(axis=1)
    return top, bottom


def test_cached_columns_match_the_every_column_painting(qtbot) -> None:
    """A single-bin spike to 95 % of the half lane shows at that height, and each cached column
    spans no more and no less than the columns painted every frame (the old way) within one
    pixel either side: the cache's pixel grid is fixed to stream time, not to the frame."""
    view = _view(qtbot)
    n_bins = int(np.ceil(view.window_s * FS / K))
    fmin, fmax, env = _signal(3 * n_bins)
    env[:] = np.nan  # (no envelope drawn over the columns: their extents alone are compared)
    view.getPlotItem().showGrid(x=False)  # (nor grid lines)
    end = 2 * n_bins
    for _ in range(30):
        end += 3
        snap = _snap(fmin, fmax, env, end, n_bins)
        snap.thresholds[:] = np.nan
        view.draw(snap)
        _pixels(view)  # each frame painted: the cache grows column by column
    cached = _pixels(view)
    assert view._signal.cache.done_col is not None
    view._signal.use_cache = False
    direct = _pixels(view)
    vb = view.getPlotItem().getViewBox()
    left = view.mapFromScene(vb.mapViewToScene(_pt(-view.window_s + 0.05, 0))).x()
    right = view.mapFromScene(vb.mapViewToScene(_pt(-0.05, 0))).x()
    spikes = 0
    for lane in range(N_CH):
        color = np.array(view._signal.colors[lane].getRgb()[:3])
        y_top = view.mapFromScene(vb.mapViewToScene(_pt(0, view.lane_offset(lane) + 1.0))).y()
        y_bot = view.mapFromScene(vb.mapViewToScene(_pt(0, view.lane_offset(lane) - 1.0))).y()
        rows = slice(y_top - 3, y_bot + 4)
        ct, cb = _extents(cached, color, rows)
        dt, db = _extents(direct, color, rows)
        for t in (ct, dt):
            assert np.isfinite(t[left:right]).all()  # a column at every pixel
        for x in range(left + 1, right - 1):
            near = slice(x - 1, x + 2)
            assert ct[x] >= dt[near].min() - 1 and cb[x] <= db[near].max() + 1, (lane, x)
            assert dt[x] >= ct[near].min() - 1 and db[x] <= cb[near].max() + 1, (lane, x)
        for spike in range(150, end, 410):
            if spike % N_CH != lane or spike < end - n_bins + 10:
                continue
            x = view.mapFromScene(vb.mapViewToScene(_pt((spike - end) * K / FS, 0))).x()
            span = slice(x - 2, x + 3)
            high = y_top - rows.start + 0.05 * (y_bot - y_top) / 2
            low = y_bot - rows.start - 0.05 * (y_bot - y_top) / 2
            for t, b in ((ct, cb), (dt, db)):
                assert t[span].min() <= high + 2 and b[span].max() >= low - 2, (lane, spike)
            spikes += 1
    assert spikes >= 2


def _pt(x: float, y: float) -> QtCore.QPointF:
    return QtCore.QPointF(x, y)
