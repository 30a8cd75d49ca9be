"""Cue rules, the audible cue player and the athlete's window."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore, QtGui

from app.athlete_view import WAITING_CUE, WAITING_TEXT, AthleteView
from app.cues import SOUND_DIR, CuePlayer, CueRules
from app.theme import VERDICT_COLOR, VERDICT_CUE, VERDICT_TEXT
from devices.session.tally import RepTally
from dsp.contract import Role
from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST, ORDERS, SIMULTANEOUS, UNDETERMINED, RepResult

LAG = {GLUTE_FIRST: 42.0, LUMBAR_FIRST: -35.0, SIMULTANEOUS: 4.0, UNDETERMINED: None}


def rep(i: int, order: str) -> RepResult:
    return RepResult(
        i, i * 1000, {Role.GLUTE_L: i * 1000}, LAG[order], order, None, None, i * 1000 + 10
    )


# --- CueRules ---------------------------------------------------------------------------------


def cued(rules: CueRules, orders: list[str]) -> list[bool]:
    return [rules.should_cue(rep(i, o), i + 1) for i, o in enumerate(orders)]


ALL = [GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS, UNDETERMINED, GLUTE_FIRST, GLUTE_FIRST]


def test_rules_every() -> None:
    assert cued(CueRules(), ALL) == [True, True, True, False, True, True]
    assert cued(CueRules(cue_undetermined=True), ALL) == [True] * 6


def test_rules_lumbar_only() -> None:
    expected = [False, True, False, False, False, False]
    assert cued(CueRules(mode="lumbar_only"), ALL) == expected
    assert cued(CueRules(mode="lumbar_only", cue_undetermined=True), ALL) == expected


def test_rules_faded() -> None:
    orders = [GLUTE_FIRST] * 6
    assert cued(CueRules(mode="faded", every_n=3), orders) == [False, False, True] * 2
    # Lumbar-first reps in between: cued only when always_cue_lumbar.
    orders = [LUMBAR_FIRST, SIMULTANEOUS, LUMBAR_FIRST, GLUTE_FIRST]
    assert cued(CueRules(mode="faded", every_n=2), orders) == [True, True, True, True]
    assert cued(CueRules(mode="faded", every_n=2, always_cue_lumbar=False), orders) == [
        False,
        True,
        False,
        True,
    ]
    # Undetermined: on the n-th rep only when cue_undetermined.
    orders = [UNDETERMINED, UNDETERMINED]
    assert cued(CueRules(mode="faded", every_n=2), orders) == [False, False]
    assert cued(CueRules(mode="faded", every_n=2, cue_undetermined=True), orders) == [False, True]


def test_rules_validate() -> None:
    with pytest.raises(ValueError, match="mode"):
        CueRules(mode="sometimes")
    with pytest.raises(ValueError, match="every_n"):
        CueRules(mode="faded", every_n=0)


# --- CuePlayer ---------------------------------------------------------------------------------


def test_player_without_sound_never_raises_and_still_signals(qtbot, tmp_path: Path) -> None:
    player = CuePlayer()  # with or without a sound server: must not raise
    assert isinstance(player.available, bool)
    assert player.status_text.startswith("audio: ")
    for order in ORDERS:
        with qtbot.waitSignal(player.cue_played, timeout=1000) as blocker:
            player.play(order)
        assert blocker.args == [order]
    # No sound files at all: unavailable, says so, and cues still go out.
    silent = CuePlayer(sound_dir=tmp_path)
    assert not silent.available
    assert "visual cues only" in silent.status_text
    with qtbot.waitSignal(silent.cue_played, timeout=1000) as blocker:
        silent.play(LUMBAR_FIRST)
    assert blocker.args == [LUMBAR_FIRST]


def test_player_muted_and_volume(qtbot) -> None:
    player = CuePlayer()
    player.set_muted(True)
    assert player.muted
    with qtbot.waitSignal(player.cue_played, timeout=1000) as blocker:
        player.play(GLUTE_FIRST)
    assert blocker.args == [GLUTE_FIRST]
    player.set_muted(False)
    assert not player.muted
    for v, want in ((1.7, 1.0), (-0.2, 0.0), (0.4, 0.4)):
        player.set_volume(v)
        assert player.volume == pytest.approx(want)
    player.set_volume(float("nan"))  # ignored
    assert player.volume == pytest.approx(0.4)


def test_player_unknown_order_is_ignored(qtbot) -> None:
    player = CuePlayer()
    with qtbot.assertNotEmitted(player.cue_played):
        player.play("sideways")


def read_wav(name: str) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(SOUND_DIR / name), "rb") as w:
        params = w.getparams()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float) / 32768
    return params, data


def dominant_hz(x: np.ndarray, fs: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / fs)[np.argmax(spectrum)])


def test_sound_files() -> None:
    dom = {}
    for order in (GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS):
        params, x = read_wav(f"{order}.wav")
        assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 44100)
        assert 0.1 <= params.nframes / params.framerate <= 0.5
        assert 0.3 < np.max(np.abs(x)) < 0.99  # audible, not clipped
        assert abs(x[0]) < 0.01 and abs(x[-1]) < 0.01  # faded ends: no click
        dom[order] = dominant_hz(x, params.framerate)
    # Pleasant high chime vs low buzz: far apart in pitch.
    assert dom[GLUTE_FIRST] > 500
    assert dom[LUMBAR_FIRST] < 250


# --- AthleteView -------------------------------------------------------------------------------


@pytest.fixture
def view(qtbot) -> AthleteView:
    v = AthleteView(RepTally(window=4))
    qtbot.addWidget(v)
    v.resize(640, 480)
    v.show()
    qtbot.waitExposed(v)
    return v


def feed(view: AthleteView, order: str) -> RepResult:
    r = rep(len(view.tally.reps), order)
    view.tally.add(r)  # the caller adds to the tally first, as for the firing-order panel
    view.show_rep(r)
    return r


def dominant_color(view: AthleteView) -> QtGui.QColor:
    image = view.grab().toImage()
    assert not image.isNull()
    step = 7
    counts = Counter(
        image.pixel(x, y)
        for x in range(0, image.width(), step)
        for y in range(0, image.height(), step)
    )
    return QtGui.QColor.fromRgb(counts.most_common(1)[0][0])


def test_view_waiting_then_rep(qtbot, view: AthleteView) -> None:
    assert view.verdict_label.text() == WAITING_TEXT
    assert view.cue_label.text() == WAITING_CUE
    waiting = view.background_color.name()
    feed(view, GLUTE_FIRST)
    assert view.verdict_label.text() == VERDICT_TEXT[GLUTE_FIRST]
    assert view.lag_label.text() == "+42 ms"
    assert view.cue_label.text() == VERDICT_CUE[GLUTE_FIRST]
    assert view.rep_value.text() == "1"
    qtbot.waitUntil(lambda: not view.flashing, timeout=3000)
    assert view.background_color.name() != waiting
    assert view.background_color.name() == VERDICT_COLOR[GLUTE_FIRST]
    feed(view, LUMBAR_FIRST)
    assert view.verdict_label.text() == VERDICT_TEXT[LUMBAR_FIRST]
    assert view.lag_label.text() == "-35 ms"
    qtbot.waitUntil(lambda: not view.flashing, timeout=3000)
    assert view.background_color.name() == VERDICT_COLOR[LUMBAR_FIRST]
    feed(view, UNDETERMINED)
    assert view.lag_label.text() == "—"
    view.reset()
    assert view.verdict_label.text() == WAITING_TEXT
    assert view.background_color.name() == waiting


def test_view_flashes_on_every_rep(qtbot, view: AthleteView) -> None:
    feed(view, GLUTE_FIRST)
    assert view.flashing
    flash = view.background_color
    assert flash.lightness() > QtGui.QColor(VERDICT_COLOR[GLUTE_FIRST]).lightness()
    qtbot.waitUntil(lambda: not view.flashing, timeout=3000)
    feed(view, GLUTE_FIRST)  # same verdict again: still a flash
    assert view.flashing
    qtbot.waitUntil(lambda: not view.flashing, timeout=3000)


def test_view_stats_follow_tally(view: AthleteView) -> None:
    for order in (LUMBAR_FIRST, GLUTE_FIRST, GLUTE_FIRST, UNDETERMINED, GLUTE_FIRST):
        feed(view, order)
    # window 4: last 4 = G, G, U, G -> 3/3 decided; session 4/5 decided.
    assert view.streak_value.text() == "3"
    assert view.recent_value.text() == "100%"
    assert view.session_value.text() == "75%"
    assert view.rep_value.text() == "5"
    feed(view, SIMULTANEOUS)
    assert view.streak_value.text() == "0"
    assert view.recent_value.text() == "67%"  # G, U, G, S
    view.tally.reset()
    view.reset()
    assert view.streak_value.text() == "0"
    assert view.recent_value.text() == "—" and view.session_value.text() == "—"


def test_view_fonts_scale_with_window(qtbot, view: AthleteView) -> None:
    labels = [view.verdict_label, view.lag_label, view.cue_label, view.streak_value]
    view.resize(400, 300)
    qtbot.waitUntil(lambda: view.size() == QtCore.QSize(400, 300), timeout=2000)
    small = [lab.font().pointSizeF() for lab in labels]
    view.resize(1600, 1000)
    qtbot.waitUntil(lambda: view.size() == QtCore.QSize(1600, 1000), timeout=2000)
    large = [lab.font().pointSizeF() for lab in labels]
    for s, g in zip(small, large, strict=True):
        assert g > 1.8 * s
    # The longest verdict word still fits the width.
    metrics = QtGui.QFontMetrics(view.verdict_label.font())
    widest = max(metrics.horizontalAdvance(t) for t in VERDICT_TEXT.values())
    assert widest <= view.width()


def test_view_render_is_verdict_colour(qtbot, view: AthleteView) -> None:
    for order in (LUMBAR_FIRST, GLUTE_FIRST):
        feed(view, order)
        qtbot.waitUntil(lambda: not view.flashing, timeout=3000)
        assert dominant_color(view).name() == VERDICT_COLOR[order]


def test_view_fullscreen_keys_and_close(qtbot, view: AthleteView) -> None:
    view.show_on_screen(fullscreen=True)
    qtbot.waitUntil(view.isFullScreen, timeout=2000)
    qtbot.keyClick(view, QtCore.Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: not view.isFullScreen(), timeout=2000)
    qtbot.keyClick(view, QtCore.Qt.Key.Key_F11)
    qtbot.waitUntil(view.isFullScreen, timeout=2000)
    view.toggle_fullscreen()
    qtbot.waitUntil(lambda: not view.isFullScreen(), timeout=2000)
    view.show_on_screen(screen_index=99, fullscreen=False)  # no such screen: falls back
    assert view.isVisible() and not view.isFullScreen()
    # Esc closes the view, full screen or not (it used to leave full screen only)
    view.show_on_screen(fullscreen=True)
    qtbot.waitUntil(view.isFullScreen, timeout=2000)
    with qtbot.waitSignal(view.closed, timeout=1000):
        qtbot.keyClick(view, QtCore.Qt.Key.Key_Escape)
    assert not view.isVisible()
