"""The traces' grid is painted by the signal layer (not blended from the axis's picture) and the
view fills its background only around that layer: the picture must stay as it was, grid lines
at the time axis's ticks, a white background around the plot, and no grid when it is off."""

from __future__ import annotations

import numpy as np
from PyQt6 import QtCore, QtWidgets

from app.traces import TracesView
from devices.session.live import Snapshot
from dsp.contract import StreamInfo
from tests.qt_pixels import pixels as _pixels

FS = 2000.0
N_CH = 2


def _flat_snapshot(t_end: float) -> Snapshot:
    """Two flat lanes (zero signal) ending at ``t_end``: the plot is white but for the
    baselines, so grid lines are easy to see."""
    n = 2 * 1100
    t = t_end - (n - 1 - np.arange(n)) * (10.0 / n)
    zeros = np.zeros((n, N_CH))
    return Snapshot(
        0, FS, t, np.empty((0, N_CH)), zeros, zeros, np.full(N_CH, np.nan), np.ones(N_CH)
    )


def _view(qtbot) -> TracesView:
    view = TracesView()
    qtbot.addWidget(view)
    view.resize(900, 400)
    view.show()
    view.configure(StreamInfo(FS, ("a", "b")))
    QtWidgets.QApplication.processEvents()
    return view


def _x_px(view: TracesView, x: float) -> int:
    vb = view.getPlotItem().getViewBox()
    return round(view.mapFromScene(vb.mapViewToScene(QtCore.QPointF(x, 0))).x())


def _y_px(view: TracesView, y: float) -> int:
    vb = view.getPlotItem().getViewBox()
    return round(view.mapFromScene(vb.mapViewToScene(QtCore.QPointF(0, y))).y())


def test_the_grid_is_pyqtgraphs_over_a_white_plot(qtbot) -> None:
    """The same pixels as pyqtgraph's own grid (drawn by the axis over the plot)."""
    ours, theirs = _view(qtbot), _view(qtbot)
    axis = theirs.time_axis
    axis.grid_by_view = False  # the axis draws the grid itself, as pyqtgraph does
    axis.setGrid(51)
    theirs._signal.axis = None
    pics = []
    for view in (ours, theirs):
        for k in range(5):  # a few frames: the cached columns scroll under the fixed grid
            view.draw(_flat_snapshot(20.0 + 0.05 * k))
            px = _pixels(view)
        pics.append(px)
    ours_px, theirs_px = pics
    row = _y_px(ours, 0.5)  # between the lanes' baselines (0 and -2): no trace there
    x0, x1 = _x_px(ours, -9.95), _x_px(ours, -0.05)
    line = ours_px[row, x0:x1, 0].astype(int)
    assert (line < 240).sum() >= 4  # the major ticks (every 2 s at this width): grey on white
    assert (line == 255).mean() > 0.5
    assert np.array_equal(ours_px, theirs_px)
    # around the plot, the view's own background (not left unpainted: it would be black)
    assert (ours_px[2, 2] == 255).all() and (ours_px[-2, -2] == 255).all()


def test_no_grid_when_the_plot_turns_it_off(qtbot) -> None:
    view = _view(qtbot)
    view.draw(_flat_snapshot(20.0))
    view.getPlotItem().showGrid(x=False)
    px = _pixels(view)
    row = _y_px(view, 0.5)
    x0, x1 = _x_px(view, -9.9), _x_px(view, -0.1)
    assert (px[row, x0:x1] == 255).all()
    view.getPlotItem().showGrid(x=True, alpha=0.2)  # and back
    px = _pixels(view)
    assert px[row, x0:x1, 0].min() < 245


def test_background_follows_a_resize(qtbot) -> None:
    """The plot's background is filled around the layer's rect as it is after a resize (the
    rect the fill leaves out is kept between frames)."""
    view = _view(qtbot)
    view.draw(_flat_snapshot(20.0))
    _pixels(view)
    view.resize(640, 300)
    QtWidgets.QApplication.processEvents()
    view.draw(_flat_snapshot(20.1))
    px = _pixels(view)
    assert px.shape[:2] == (300, 640)
    # left of the plot (the lane axis, clear of its labels) and below it: white, not unpainted
    row = _y_px(view, 0.5)
    assert (px[row, 2:8] == 255).all()
    assert (px[-3:, 2:20] == 255).all() and (px[2, -3] == 255).all()
    x0, x1 = _x_px(view, -9.9), _x_px(view, -0.1)
    assert (px[row, x0:x1, 0] < 245).sum() >= 3  # the grid at the new width
