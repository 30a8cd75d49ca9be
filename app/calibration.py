"""The calibration wizard: a rest baseline, then optional reference contractions.

Rest fixes the onset detector's baseline (mean and SD of the detection statistic at rest); a
reference contraction per muscle group gives the peak 250 ms RMS that scales the display
(100 % of the reference). Both are recorded by the :class:`LiveSession` between chunks, which
calls back when enough samples have arrived -- from the acquisition thread when the session is
threaded, so results are relayed to the GUI thread through a queued signal. Progress follows
the samples the session has processed, so a stalled device stalls the countdown instead of
faking it, and the wizard works the same whether a worker thread or a test pumps the session.

Nothing recorded is trusted blindly: the rest window and each reference contraction are
judged by :mod:`devices.session.calibration` (bursts, movement, clipping, a reference that does
not clear rest by 20 dB). A rejected recording shows its reasons and a Retry, and is taken off
the session again. During the rest step the source is asked to rest
(:meth:`Device.request_rest`: the simulator obeys, a person is told on screen). The summary
page lists every channel's numbers and verdict; Finish stays disabled until every check passes
and the athlete's name is entered. On Finish the calibration is saved under that name
(:meth:`SettingsStore.save_calibration`) and can be put back on a later session with
:func:`apply_calibration`.
"""

from __future__ import annotations

import datetime
import html
import logging
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

from app.settings_store import SettingsStore, is_athlete_name
from devices.session.calibration import (
    BASELINE_KEYS,
    CALIBRATION_VERSION,
    MIN_REFERENCE_SNR_DB,
    MIN_SUBMAX_SNR_DB,
    ReferenceCheck,
    RestCheck,
    Verdict,
    check_reference,
    check_rest,
    created_at,
    min_reference_snr_db,
    setup_of,
)
from devices.session.live import CalibrationResult, LiveSession
from dsp.contract import Role

log = logging.getLogger(__name__)


GROUP_TEXT: dict[str, tuple[str, str]] = {
    "glute": (
        "Reference contraction: glutes",
        "Lie prone. Squeeze the glutes and lift the legs against resistance (a partner "
        "or a strap holds them down) — hold until the countdown ends.",
    ),
    "lumbar": (
        "Reference contraction: lower back",
        "Lie prone. Back extension against resistance (a partner holds the shoulders or "
        "use a bench) — hold until the countdown ends.",
    ),
}

ID_INTRO, ID_REST, ID_REF_SETUP, ID_REF_GLUTE, ID_REF_LUMBAR, ID_SUMMARY = range(6)


# -- offering a stored calibration ------------------------------------------------------------
def offer_question(cal: dict[str, Any]) -> str:
    """``"Use Sam's calibration of 02 Dec 04:26?"`` (local time): what the window asks."""
    who = str(cal.get("athlete") or "the athlete")
    when = created_at(cal)
    stamp = f"of {when.astimezone():%d %b %H:%M}" if when is not None else "(date unknown)"
    return f"Use {who}'s calibration {stamp}?"


class Phase(StrEnum):
    IDLE = "idle"
    READY = "ready"  # get-ready countdown
    RECORDING = "recording"
    DONE = "done"  # recorded and every check passed
    REJECTED = "rejected"  # recorded, but a check failed: Retry
    FAILED = "failed"  # nothing recorded (not streaming, stream stopped, no data)


def _group_of(role: Role) -> str:
    return "glute" if role.is_glute else "lumbar"


def _scrolled(label: QtWidgets.QLabel) -> QtWidgets.QScrollArea:
    """``label`` in a frameless scroll area: long text wraps to the page's width and scrolls
    instead of being clipped (or of growing the dialog past a 768 px screen)."""
    area = QtWidgets.QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    label.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
    area.setWidget(label)
    return area


def _big(label: QtWidgets.QLabel, points: int) -> QtWidgets.QLabel:
    font = QtGui.QFont(label.font())
    font.setPointSize(points)
    font.setBold(True)
    label.setFont(font)
    return label


class _CapturePage(QtWidgets.QWizardPage):
    """One timed recording: get-ready countdown, recording with progress, then the result
    and its checks. A recording that fails a check is rejected (Retry); Next needs a pass."""

    # run id, (CalibrationResult, extra): emitted on whatever thread the session calls back
    _finished = QtCore.pyqtSignal(int, object)

    def __init__(
        self,
        wiz: CalibrationWizard,
        prefix: str,
        title: str,
        instructions: str,
        channels: list[int],
        action: str,
    ) -> None:
        super().__init__()
        self.wiz = wiz
        self.prefix = prefix
        self.channels = channels
        self.action = action  # shown while recording, e.g. "Relax" / "CONTRACT"
        self.setTitle(title)
        self.phase = Phase.IDLE
        self.result: CalibrationResult | None = None
        self.extra: dict[str, Any] = {}
        self._run = 0
        self._remaining = 0
        self._ticks = 0
        self._start_count = 0
        self._need = 0

        self.instructions = QtWidgets.QLabel(instructions)
        self.instructions.setObjectName(f"{prefix}_instructions")
        self.instructions.setWordWrap(True)
        _big(self.instructions, 12)
        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.setObjectName(f"{prefix}_start")
        self.start_button.clicked.connect(self.start)
        self.countdown_label = _big(QtWidgets.QLabel(""), 24)
        self.countdown_label.setObjectName(f"{prefix}_countdown")
        self.countdown_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName(f"{prefix}_progress")
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.result_label = QtWidgets.QLabel("")
        self.result_label.setObjectName(f"{prefix}_result")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.result_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
        )

        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.instructions)
        layout.addWidget(self.start_button, 0, QtCore.Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.countdown_label)
        layout.addWidget(self.progress)
        layout.addWidget(_scrolled(self.result_label), 1)

        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self._tick)
        # Queued even when emitted on the GUI thread (unthreaded session): the result is
        # handled from the event loop, never inside the session's pump. (PyQt6's QtCore.pyi
        # declares pyqtBoundSignal.connect(slot) only; the runtime also takes the connection
        # type, hence the ignore.)
        self._finished.connect(
            self._on_finished,
            QtCore.Qt.ConnectionType.QueuedConnection,  # type: ignore[call-arg]
        )

    # -- to override ----------------------------------------------------------------------
    def seconds(self) -> float:
        raise NotImplementedError

    def request(self, done: Callable[[CalibrationResult], None]) -> None:
        """Ask the session for the recording; ``done`` may be called on the worker thread."""
        raise NotImplementedError

    def worker_extra(self, result: CalibrationResult) -> dict[str, Any]:
        """Numbers to compute where the callback runs (no widgets: maybe the worker)."""
        return {}

    def describe(self) -> str:
        raise NotImplementedError

    def failures(self) -> list[str]:
        """Why the recording is refused, one line per channel that failed; [] = accepted."""
        return []

    def undo(self) -> None:
        """Take a refused recording off the session again."""

    def before_start(self) -> None:
        """Called when Start is pressed, before the countdown."""

    # -- flow -----------------------------------------------------------------------------
    def isComplete(self) -> bool:  # noqa: N802 (Qt API)
        return self.phase == Phase.DONE

    def start(self) -> None:
        session = self.wiz.session
        if session.state != "streaming":
            why = f" ({session.error})" if session.error else ""
            # (the wizard is modal: the window's Start cannot be pressed while it is open)
            self._fail(
                f"The device is not streaming{why}. Cancel the calibration, press Start in "
                "the window, then open the calibration again (Ctrl+K)."
            )
            return
        self._run += 1
        self.result, self.extra = None, {}
        self.result_label.setText("")
        self.progress.setValue(0)
        self.start_button.setEnabled(False)
        self.completeChanged.emit()
        self.before_start()
        self._remaining = int(self.wiz.countdown_s)
        self._timer.setInterval(int(self.wiz.tick_ms))
        if self._remaining > 0:
            self.phase = Phase.READY
            self.countdown_label.setText(f"Get ready… {self._remaining}")
            self._timer.start()
        else:
            self._record()

    def _record(self) -> None:
        session = self.wiz.session
        assert session.info is not None
        self.phase = Phase.RECORDING
        self._ticks = 0
        self._start_count = self._count()
        self._need = max(1, round(self.seconds() * session.info.fs))
        run = self._run

        def done(result: CalibrationResult) -> None:
            # Possibly the acquisition thread: compute numbers, touch no widget, and never
            # raise (an exception here would stop the stream).
            try:
                extra = self.worker_extra(result)
            except Exception:
                log.exception("calibration: summarising the %s recording failed", self.prefix)
                extra = {}
            try:
                self._finished.emit(run, (result, extra))
            except RuntimeError:  # the wizard was destroyed meanwhile
                log.debug("calibration result after the wizard closed: dropped")

        self.request(done)
        self._show_recording()
        self._timer.start()

    def _count(self) -> int:
        st = self.wiz.session.stats
        return st.samples + st.lost_samples

    def _show_recording(self) -> None:
        assert self.wiz.session.info is not None
        got = min(self._need, max(0, self._count() - self._start_count))
        self.progress.setValue(min(99, int(100 * got / self._need)))
        left = math.ceil((self._need - got) / self.wiz.session.info.fs - 1e-9)
        self.countdown_label.setText(f"{self.action}… {left} s" if left > 0 else "Finishing…")

    def _tick(self) -> None:
        if self.phase == Phase.READY:
            self._remaining -= 1
            if self._remaining > 0:
                self.countdown_label.setText(f"Get ready… {self._remaining}")
            else:
                self._record()
        elif self.phase == Phase.RECORDING:
            self._ticks += 1
            session = self.wiz.session
            arrived = self._count() - self._start_count >= self._need  # result under way
            if session.state != "streaming" and not arrived:
                why = f": {session.error}" if session.error else ""
                self._fail(f"The stream stopped{why}.")
                return
            limit = self.seconds() + self.wiz.timeout_margin_s
            if self._ticks * self.wiz.tick_ms / 1000.0 > limit:
                self._fail("No data arrived from the device in time. Check the connection.")
                return
            self._show_recording()
        else:
            self._timer.stop()

    def _on_finished(self, run: int, payload: tuple[CalibrationResult, dict[str, Any]]) -> None:
        if run != self._run or self.phase != Phase.RECORDING:
            return  # a cancelled or superseded recording
        result, extra = payload
        self._timer.stop()
        self.result, self.extra = result, extra
        self.progress.setValue(100)
        self.start_button.setEnabled(True)
        failures = self.failures()
        if failures:
            self.phase = Phase.REJECTED
            self.undo()
            self.countdown_label.setText("Not usable — retry")
            self.start_button.setText("Retry")
            text = "REJECTED:\n" + "\n".join(f"  • {line}" for line in failures)
            self.result_label.setText(text + "\n\n" + self.describe())
            log.warning("calibration %s rejected: %s", self.prefix, "; ".join(failures))
        else:
            self.phase = Phase.DONE
            self.countdown_label.setText("Done")
            self.start_button.setText("Record again")
            self.result_label.setText(self.describe())
            log.info("calibration %s: %s", self.prefix, self.describe().replace("\n", "; "))
        self.completeChanged.emit()

    def _fail(self, message: str) -> None:
        self._timer.stop()
        self._run += 1  # ignore a late result of the failed attempt
        self.phase = Phase.FAILED
        self.countdown_label.setText("")
        self.result_label.setText(message)
        self.start_button.setText("Try again")
        self.start_button.setEnabled(True)
        log.warning("calibration %s: %s", self.prefix, message)
        self.completeChanged.emit()

    def cancel(self) -> None:
        """Stop a countdown or recording in progress (its result will be ignored)."""
        self._timer.stop()
        if self.phase in (Phase.READY, Phase.RECORDING):
            self._run += 1
            self.phase = Phase.IDLE
            self.countdown_label.setText("")
            self.progress.setValue(0)
            self.start_button.setText("Start")
            self.start_button.setEnabled(True)
            self.completeChanged.emit()

    def cleanupPage(self) -> None:  # noqa: N802 (Qt API)
        self.cancel()  # Back pressed: do not leave a recording running

    def channel_label(self, ch: int) -> str:
        info = self.wiz.session.info
        assert info is not None
        role = info.role_of(ch)
        name = info.channel_names[ch]
        return f"{role.label} ({name})" if role is not None else name


class RestPage(_CapturePage):
    def __init__(self, wiz: CalibrationWizard, channels: list[int]) -> None:
        super().__init__(
            wiz,
            "rest",
            "Rest baseline",
            "Lie or stand relaxed in the exercise's start position. Do not move, breathe "
            "normally. Press Start; recording begins after the countdown.",
            channels,
            "Relax",
        )
        self.source_note = QtWidgets.QLabel("")
        self.source_note.setObjectName("rest_source_note")
        self.source_note.setWordWrap(True)
        lay = self.layout()
        assert isinstance(lay, QtWidgets.QVBoxLayout)
        lay.insertWidget(1, self.source_note)

    def seconds(self) -> float:
        return self.wiz.rest_s

    def initializePage(self) -> None:  # noqa: N802 (Qt API)
        # Ask for rest as soon as the step is shown, so that the source has relaxed by the
        # time Start is pressed (a simulated rep in progress takes its decay to fade).
        self.wiz.request_rest(True)

    def before_start(self) -> None:
        self.wiz.request_rest(True)

    def cleanupPage(self) -> None:  # noqa: N802 (Qt API)
        super().cleanupPage()
        self.wiz.request_rest(False)  # Back to the intro: the rest step is over

    def request(self, done: Callable[[CalibrationResult], None]) -> None:
        self.wiz.touched = True
        self.wiz.session.calibrate_rest(self.seconds(), done)

    def worker_extra(self, result: CalibrationResult) -> dict[str, Any]:
        # The rest window is the newest stretch of the buffers when the callback runs (the
        # session writes its buffers before it collects): judge it there, on the worker.
        session = self.wiz.session
        assert session.info is not None
        n = round(self.seconds() * session.info.fs)
        _, raw = session.raw.snapshot(n)
        _, filt = session.filtered.snapshot(n)
        checks = check_rest(raw, filt, session.info.fs, self.channels)
        return {"checks": {c.channel: c for c in checks}}

    def checks(self) -> dict[int, RestCheck]:
        checks: dict[int, RestCheck] = self.extra.get("checks", {})
        return checks

    def noise(self) -> dict[int, float]:
        return {ch: c.rms_uv for ch, c in self.checks().items()}

    def failures(self) -> list[str]:
        return [
            f"{self.channel_label(ch)}: {'; '.join(c.reasons)}"
            for ch, c in self.checks().items()
            if c.verdict is Verdict.FAIL
        ]

    def undo(self) -> None:
        # The session fixed its baseline from the window already: put back what was before.
        self.wiz.session.set_baseline(self.wiz._prev_baseline)

    def describe(self) -> str:
        lines = ["Rest level (filtered signal, RMS):"]
        for ch, c in self.checks().items():
            mark = "ok" if c.verdict is Verdict.PASS else "FAIL"
            lines.append(
                f"  {self.channel_label(ch)}: {c.rms_uv:.1f} µV, loudest "
                f"{c.peak_ratio:.1f}× the quiet level — {mark}"
            )
        if self.phase == Phase.DONE:
            lines.append("The onset detector now uses this baseline.")
        return "\n".join(lines)


class ReferencePage(_CapturePage):
    def __init__(self, wiz: CalibrationWizard, group: str, channels: list[int]) -> None:
        title, text = GROUP_TEXT[group]
        super().__init__(
            wiz,
            f"ref_{group}",
            title,
            text + " Press Start: get ready 3-2-1, then contract.",
            channels,
            "CONTRACT",
        )
        self.group = group

    def seconds(self) -> float:
        return self.wiz.contraction_s

    def request(self, done: Callable[[CalibrationResult], None]) -> None:
        self.wiz.touched = True
        self.wiz.session.calibrate_reference(list(self.channels), self.seconds(), done)

    def nextId(self) -> int:  # noqa: N802 (Qt API)
        here = ID_REF_GLUTE if self.group == "glute" else ID_REF_LUMBAR
        return self.wiz.next_reference_id(here)

    def peaks(self) -> dict[int, float]:
        if self.result is None:
            return {}
        values = self.result.values.get("peak_rms_uv", [])
        return dict(zip(self.result.channels, values, strict=False))

    def checks(self) -> dict[int, ReferenceCheck]:
        kind = self.wiz.ref_setup_page.kind
        found = check_reference(self.peaks(), self.wiz.rest_page.noise(), kind)
        return {c.channel: c for c in found}

    def failures(self) -> list[str]:
        return [
            f"{self.channel_label(ch)}: {'; '.join(c.reasons)}"
            for ch, c in self.checks().items()
            if c.verdict is Verdict.FAIL
        ]

    def undo(self) -> None:
        prev = self.wiz._prev_reference
        channels = list(self.channels)

        def restore(s: LiveSession) -> None:
            if s.reference is None:
                return
            for ch in channels:
                s.reference[ch] = prev[ch] if prev is not None else np.nan
            if not np.isfinite(s.reference).any():
                s.reference = None

        self.wiz.session.post(restore)

    def describe(self) -> str:
        need = min_reference_snr_db(self.wiz.ref_setup_page.kind)
        lines = [f"Peak RMS (250 ms); it must clear rest by {need:g} dB:"]
        for ch, c in self.checks().items():
            snr = f"{c.snr_db:.0f} dB" if math.isfinite(c.snr_db) else "SNR —"
            mark = "ok" if c.verdict is Verdict.PASS else "FAIL"
            lines.append(f"  {self.channel_label(ch)}: {c.peak_uv:.0f} µV, {snr} — {mark}")
        return "\n".join(lines)


class ReferenceSetupPage(QtWidgets.QWizardPage):
    def __init__(self, wiz: CalibrationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Reference contractions (optional)")
        text = QtWidgets.QLabel(
            "A reference contraction per muscle group lets the traces show activity as a "
            "percentage of it. A maximal voluntary contraction (MVC) is the classic "
            "reference; a sub-maximal one (e.g. a fixed test position) is gentler and "
            "repeatable between sessions."
        )
        text.setWordWrap(True)
        self.mvc = QtWidgets.QRadioButton("Maximal voluntary contraction (MVC)")
        self.mvc.setObjectName("reference_mvc")
        self.submax = QtWidgets.QRadioButton("Sub-maximal reference")
        self.submax.setObjectName("reference_submax")
        self.mvc.setChecked(True)
        self.skip = QtWidgets.QCheckBox("Skip the reference contractions")
        self.skip.setObjectName("reference_skip")
        self.skip.toggled.connect(self._skip_toggled)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(self.mvc)
        layout.addWidget(self.submax)
        layout.addSpacing(12)
        layout.addWidget(self.skip)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 (Qt API)
        self.wiz.request_rest(False)  # the rest step is over: the source may carry on

    def _skip_toggled(self, on: bool) -> None:
        self.mvc.setEnabled(not on)
        self.submax.setEnabled(not on)

    @property
    def kind(self) -> str:
        return "mvc" if self.mvc.isChecked() else "submax"

    def nextId(self) -> int:  # noqa: N802 (Qt API)
        return ID_SUMMARY if self.skip.isChecked() else self.wiz.next_reference_id(None)


class SummaryPage(QtWidgets.QWizardPage):
    """Every channel's numbers and verdict, and the athlete's name: Finish needs both."""

    def __init__(self, wiz: CalibrationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Summary — check, name, accept")
        self.setFinalPage(True)
        self.text = QtWidgets.QLabel("")
        self.text.setObjectName("summary")
        self.text.setWordWrap(True)
        self.text.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.name = QtWidgets.QLineEdit(wiz.athlete if is_athlete_name(wiz.athlete) else "")
        self.name.setObjectName("athlete_name")
        self.name.setPlaceholderText("athlete's name (required)")
        self.name.textChanged.connect(lambda _text: self._update())
        self.verdict = QtWidgets.QLabel("")
        self.verdict.setObjectName("summary_verdict")
        self.verdict.setWordWrap(True)
        form = QtWidgets.QFormLayout()
        form.addRow("Save for athlete:", self.name)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(_scrolled(self.text), 3)
        layout.addLayout(form)
        layout.addWidget(self.verdict)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 (Qt API)
        self.wiz.request_rest(False)
        self.text.setText(self.wiz.summary_html())
        self._update()

    def athlete(self) -> str:
        return self.name.text().strip()

    def problems(self) -> list[str]:
        """Why Finish is refused: failed checks, then a missing name."""
        out = list(self.wiz.failures())
        if not is_athlete_name(self.athlete()):
            out.append("enter the athlete's name: calibrations are stored per athlete")
        return out

    def _update(self) -> None:
        problems = self.problems()
        if problems:
            self.verdict.setText("Finish is disabled: " + "; ".join(problems) + ".")
            self.verdict.setStyleSheet("color: #b00020; font-weight: bold;")
        else:
            self.verdict.setText(f"All checks passed. Finish saves this for {self.athlete()}.")
            self.verdict.setStyleSheet("color: #1b5e20; font-weight: bold;")
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 (Qt API)
        return not self.problems()

    def nextId(self) -> int:  # noqa: N802 (Qt API)
        return -1


class IntroPage(QtWidgets.QWizardPage):
    def __init__(self, wiz: CalibrationWizard) -> None:
        super().__init__()
        who = f" for {wiz.athlete}" if is_athlete_name(wiz.athlete) else ""
        self.setTitle(f"Calibration{who}")
        text = QtWidgets.QLabel(
            "<p>This takes about a minute:</p><ol>"
            f"<li><b>Rest</b> ({wiz.rest_s:g} s): the athlete relaxes so the app learns "
            "the resting noise of each channel. Onsets are detected against it; a rest "
            "with bursts, movement or clipping is refused.</li>"
            f"<li><b>Reference contractions</b> (optional, {wiz.contraction_s:g} s per muscle "
            f"group): a strong hold that scales the traces; it must clear rest by "
            f"{MIN_REFERENCE_SNR_DB:g} dB (MVC) or {MIN_SUBMAX_SNR_DB:g} dB (sub-maximal).</li>"
            "<li><b>Summary</b>: check every channel, enter the athlete's name, Finish.</li>"
            "</ol>"
            "<p>Bursts detected during these steps are not exercise reps: they are left out "
            "of the session's tally when the calibration closes.</p>"
            "<p><b>Before you start:</b> check the electrodes — skin prepared, pads firmly "
            "stuck along the muscle fibres, cables taped so they do not swing, and the live "
            "traces quiet when the athlete is relaxed.</p>"
        )
        text.setWordWrap(True)
        text.setObjectName("intro_text")
        self.note = QtWidgets.QLabel("")  # e.g. that the stream was started for this
        self.note.setObjectName("intro_note")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("font-weight: bold;")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(_scrolled(text), 1)


class CalibrationWizard(QtWidgets.QWizard):
    """Calibrate ``session``; emits :attr:`calibration_done` on Finish.

    ``athlete`` pre-fills the name asked for on the summary page (an empty or placeholder
    name leaves it empty: Finish then waits for one). Timing attributes (set before the pages
    run; tests shorten them): ``rest_s`` (rest recording, 5 s), ``countdown_s`` (get-ready
    countdown before each recording, 3 s; 0 starts at once), ``contraction_s`` (each
    reference contraction, 5 s), ``tick_ms`` (countdown tick, 1000) and ``timeout_margin_s``
    (how long beyond the recording to wait for data).
    """

    calibration_done = QtCore.pyqtSignal(dict)

    def __init__(
        self,
        session: LiveSession,
        athlete: str = "",
        store: SettingsStore | None = None,
        parent: QtWidgets.QWidget | None = None,
        *,
        rest_s: float = 5.0,
        countdown_s: int = 3,
        contraction_s: float = 5.0,
    ) -> None:
        super().__init__(parent)
        if session.info is None:
            raise ValueError("open the session before calibrating")
        self.session = session
        self.athlete = athlete.strip()
        self.store = store if store is not None else SettingsStore()
        self.rest_s = rest_s
        self.countdown_s = countdown_s
        self.contraction_s = contraction_s
        self.tick_ms = 1000
        self.timeout_margin_s = 10.0
        self.touched = False  # a recording changed the session's calibration
        self.saved: dict[str, Any] | None = None
        self._resting = False
        # What to put back if the wizard is cancelled after changing the session.
        pipeline = session.pipeline
        self._prev_baseline = pipeline.baseline.calibrated if pipeline is not None else None
        self._prev_reference = None if session.reference is None else session.reference.copy()

        self.setWindowTitle("Calibration")
        self.setObjectName("calibration_wizard")
        self.setOption(QtWidgets.QWizard.WizardOption.NoBackButtonOnStartPage, True)
        # One look on every platform (the native macOS/Windows styles size pages differently).
        self.setWizardStyle(QtWidgets.QWizard.WizardStyle.ModernStyle)
        info = session.info
        mapped = sorted(info.roles.items(), key=lambda kv: kv[1])
        self.groups: dict[str, list[int]] = {"glute": [], "lumbar": []}
        for role, ch in mapped:
            self.groups[_group_of(role)].append(ch)

        self.intro_page = IntroPage(self)
        self.rest_page = RestPage(self, [ch for _, ch in mapped])
        self.ref_setup_page = ReferenceSetupPage(self)
        self.ref_pages = {g: ReferencePage(self, g, chans) for g, chans in self.groups.items()}
        self.summary_page = SummaryPage(self)
        self.setPage(ID_INTRO, self.intro_page)
        self.setPage(ID_REST, self.rest_page)
        self.setPage(ID_REF_SETUP, self.ref_setup_page)
        self.setPage(ID_REF_GLUTE, self.ref_pages["glute"])
        self.setPage(ID_REF_LUMBAR, self.ref_pages["lumbar"])
        self.setPage(ID_SUMMARY, self.summary_page)
        self.setStartId(ID_INTRO)
        self._fit_screen()

    def _fit_screen(self) -> None:
        # Wide enough that the word-wrapped texts take few lines, never beyond the screen:
        # the pages scroll their long texts, so 1366x768 shows everything.
        screen = self.screen()
        avail = screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1366, 768)
        width = min(760, avail.width() - 40)
        height = min(max(self.sizeHint().height(), 600), avail.height() - 60)
        self.setMinimumSize(min(560, width), min(460, height))
        self.resize(width, height)

    # -- the source ---------------------------------------------------------------------------
    def request_rest(self, on: bool) -> None:
        """Ask the source to rest (the rest step) or to carry on; tells the rest page
        whether the source obeys or the athlete must be told."""
        if on == self._resting:
            return
        self._resting = on
        try:
            obeys = self.session.device.request_rest(on)
        except Exception as exc:  # a driver's cue must never break the calibration
            log.warning("the source did not take the rest request: %s", exc)
            obeys = False
        if on:
            note = (
                "The source was asked to rest: it stops its bursts for this step."
                if obeys
                else "Tell the athlete to relax now and stay still until the end."
            )
            self.rest_page.source_note.setText(note)
        log.info("rest requested from the source: %s (obeyed: %s)", on, obeys)

    # -- navigation -------------------------------------------------------------------------
    def next_reference_id(self, after: int | None) -> int:
        """The first reference page with mapped channels after page id ``after``."""
        for pid, group in ((ID_REF_GLUTE, "glute"), (ID_REF_LUMBAR, "lumbar")):
            if (after is None or pid > after) and self.groups[group]:
                return pid
        return ID_SUMMARY

    def capture_pages(self) -> list[_CapturePage]:
        return [self.rest_page, *self.ref_pages.values()]

    # -- result -----------------------------------------------------------------------------
    def references_used(self) -> list[ReferencePage]:
        if self.ref_setup_page.skip.isChecked():
            return []
        return [p for p in self.ref_pages.values() if p.channels and p.phase == Phase.DONE]

    def failures(self) -> list[str]:
        """Why this calibration must not be saved ([] = it may)."""
        if self.rest_page.phase != Phase.DONE:
            return ["no accepted rest recording"]
        out = self.rest_page.failures()
        if not self.ref_setup_page.skip.isChecked():
            for page in self.ref_pages.values():
                if page.channels and page.phase != Phase.DONE:
                    out.append(f"{page.title().lower()} not accepted")
                out.extend(page.failures() if page.phase == Phase.DONE else [])
        return out

    def calibration(self) -> dict[str, Any]:
        """The calibration as stored: JSON-friendly, channels keyed by name."""
        info = self.session.info
        assert info is not None
        names = info.channel_names
        rest = self.rest_page
        cal: dict[str, Any] = {
            "version": CALIBRATION_VERSION,
            "athlete": self.summary_page.athlete(),
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **setup_of(info),
            "fs": info.fs,
            "dsp": {k: getattr(self.session.settings, k) for k in BASELINE_KEYS},
            "rest": None,
            "reference": None,
        }
        if rest.result is not None and rest.phase == Phase.DONE:
            cal["rest"] = {
                "seconds": self.rest_s,
                "baseline": dict(rest.result.values),
                "noise_rms_uv": {names[ch]: uv for ch, uv in rest.noise().items()},
                "checks": {
                    names[ch]: {
                        "verdict": c.verdict.value,
                        "quiet_uv": c.quiet_uv,
                        "peak_ratio": c.peak_ratio,
                        "motion_uv": c.motion_uv,
                    }
                    for ch, c in rest.checks().items()
                },
            }
        refs = self.references_used()
        if refs:
            peaks: dict[str, float] = {}
            snr: dict[str, float] = {}
            for page in refs:
                peaks.update({names[ch]: uv for ch, uv in page.peaks().items()})
                snr.update({names[ch]: c.snr_db for ch, c in page.checks().items()})
            cal["reference"] = {
                "kind": self.ref_setup_page.kind,
                "seconds": self.contraction_s,
                "peak_rms_uv": peaks,
                "snr_db": snr,
                "min_snr_db": min_reference_snr_db(self.ref_setup_page.kind),
            }
        return cal

    def summary_html(self) -> str:
        """The per-channel table of the summary page."""
        info = self.session.info
        assert info is not None
        rest = self.rest_page.checks()
        refs: dict[int, ReferenceCheck] = {}
        for page in self.references_used():
            refs.update(page.checks())
        rows = []
        for role, ch in sorted(info.roles.items(), key=lambda kv: kv[1]):
            r = rest.get(ch)
            ref = refs.get(ch)
            reasons = [*(r.reasons if r else ("no rest recording",)), *(ref.reasons if ref else ())]
            ok = not reasons
            verdict = (
                '<span style="color:#1b5e20"><b>pass</b></span>'
                if ok
                else '<span style="color:#b00020"><b>FAIL</b></span>: '
                + html.escape("; ".join(reasons))
            )
            cells = [
                html.escape(f"{role.label} ({info.channel_names[ch]})"),
                f"{r.rms_uv:.1f}" if r else "—",
                f"{ref.peak_uv:.0f}" if ref else "—",
                f"{ref.snr_db:.0f}" if ref and math.isfinite(ref.snr_db) else "—",
                verdict,
            ]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        head = "".join(
            f"<th align='left'>{h}</th>"
            for h in ("Channel", "Rest µV RMS", "Reference µV", "SNR dB", "Result")
        )
        ref_pages = self.references_used()
        if ref_pages:
            kind = "MVC" if self.ref_setup_page.kind == "mvc" else "sub-maximal"
            need = min_reference_snr_db(self.ref_setup_page.kind)
            ref_note = f"Reference: {kind}; it must clear rest by {need:g} dB."
        else:
            ref_note = "No reference contraction: traces scale to the recent signal."
        return (
            f"<table cellspacing='0' cellpadding='4' border='1'><tr>{head}</tr>"
            + "".join(rows)
            + f"</table><p>Rest: {self.rest_s:g} s. {html.escape(ref_note)}</p>"
        )

    def summary_text(self) -> str:
        """The summary as plain text (the log; what the page shows as a table)."""
        doc = QtGui.QTextDocument()
        doc.setHtml(self.summary_html())
        return doc.toPlainText()

    # -- finish / cancel ------------------------------------------------------------------
    def accept(self) -> None:
        problems = self.summary_page.problems()
        if problems:  # Finish is disabled then; this guards a programmatic accept()
            log.warning("calibration not saved: %s", "; ".join(problems))
            self.summary_page._update()
            return
        cal = self.calibration()
        try:
            self.store.save_calibration(cal["athlete"], cal)
        except Exception:  # saving must not lose the session's calibration
            log.exception("could not save the calibration for %s", cal["athlete"])
        self.saved = cal
        for page in self.capture_pages():
            page.cancel()
        self.request_rest(False)
        self.calibration_done.emit(cal)
        super().accept()

    def reject(self) -> None:
        for page in self.capture_pages():
            page.cancel()
        self.request_rest(False)
        if self.touched:
            # Put the session back as it was before the wizard.
            self.session.set_baseline(self._prev_baseline)
            prev = self._prev_reference

            def restore_reference(s: LiveSession) -> None:
                s.reference = prev

            self.session.post(restore_reference)
            log.info("calibration cancelled: previous calibration restored")
        super().reject()
