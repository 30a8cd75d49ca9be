"""The calibration wizard: a rest baseline, then optional reference contractions.

Rest fixes the onset detector's baseline (mean and SD of the detection statistic at rest); a
reference contraction per muscle group gives the peak 250 ms RMS that scales the display
(100 % of the reference). Both are recorded by the :class:`LiveSession` between chunks, which
calls back when enough samples have arrived -- from the acquisition thread when the session is
threaded, so results are relayed to the GUI thread through a queued signal. Progress follows
the samples the session has processed, so a stalled device stalls the countdown instead of
faking it, and the wizard works the same whether a worker thread or a test pumps the session.

On Finish the calibration is saved per athlete (:meth:`SettingsStore.save_calibration`) and
can be put back on a later session with :func:`apply_calibration`.
"""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

from app.settings_store import SettingsStore
from devices.session.calibration import (
    BASELINE_KEYS,
    CALIBRATION_VERSION,
    HIGH_REST_NOISE_UV,
    WEAK_REFERENCE_RATIO,
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


def _group_of(role: Role) -> str:
    return "glute" if role.is_glute else "lumbar"


def _big(label: QtWidgets.QLabel, points: int) -> QtWidgets.QLabel:
    font = QtGui.QFont(label.font())
    font.setPointSize(points)
    font.setBold(True)
    label.setFont(font)
    return label


class _CapturePage(QtWidgets.QWizardPage):
    """One timed recording: get-ready countdown, recording with progress, then the result."""

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
        self.phase = "idle"  # idle | ready | recording | done | failed
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
        _big(self.instructions, 13)
        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.setObjectName(f"{prefix}_start")
        self.start_button.clicked.connect(self.start)
        self.countdown_label = _big(QtWidgets.QLabel(""), 28)
        self.countdown_label.setObjectName(f"{prefix}_countdown")
        self.countdown_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setObjectName(f"{prefix}_progress")
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.result_label = QtWidgets.QLabel("")
        self.result_label.setObjectName(f"{prefix}_result")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
        )

        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.instructions)
        layout.addWidget(self.start_button, 0, QtCore.Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.countdown_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label)
        layout.addStretch(1)

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

    # -- flow -----------------------------------------------------------------------------
    def isComplete(self) -> bool:  # noqa: N802 (Qt API)
        return self.phase == "done"

    def start(self) -> None:
        session = self.wiz.session
        if session.state != "streaming":
            why = f" ({session.error})" if session.error else ""
            self._fail(f"The device is not streaming{why}. Start the stream, then try again.")
            return
        self._run += 1
        self.result, self.extra = None, {}
        self.result_label.setText("")
        self.progress.setValue(0)
        self.start_button.setEnabled(False)
        self.completeChanged.emit()
        self._remaining = int(self.wiz.countdown_s)
        self._timer.setInterval(int(self.wiz.tick_ms))
        if self._remaining > 0:
            self.phase = "ready"
            self.countdown_label.setText(f"Get ready… {self._remaining}")
            self._timer.start()
        else:
            self._record()

    def _record(self) -> None:
        session = self.wiz.session
        assert session.info is not None
        self.phase = "recording"
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
        if self.phase == "ready":
            self._remaining -= 1
            if self._remaining > 0:
                self.countdown_label.setText(f"Get ready… {self._remaining}")
            else:
                self._record()
        elif self.phase == "recording":
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
        if run != self._run or self.phase != "recording":
            return  # a cancelled or superseded recording
        result, extra = payload
        self._timer.stop()
        self.result, self.extra = result, extra
        self.phase = "done"
        self.progress.setValue(100)
        self.countdown_label.setText("Done")
        self.start_button.setText("Record again")
        self.start_button.setEnabled(True)
        self.result_label.setText(self.describe())
        log.info("calibration %s: %s", self.prefix, self.result_label.text().replace("\n", "; "))
        self.completeChanged.emit()

    def _fail(self, message: str) -> None:
        self._timer.stop()
        self._run += 1  # ignore a late result of the failed attempt
        self.phase = "failed"
        self.countdown_label.setText("")
        self.result_label.setText(message)
        self.start_button.setText("Try again")
        self.start_button.setEnabled(True)
        log.warning("calibration %s: %s", self.prefix, message)
        self.completeChanged.emit()

    def cancel(self) -> None:
        """Stop a countdown or recording in progress (its result will be ignored)."""
        self._timer.stop()
        if self.phase in ("ready", "recording"):
            self._run += 1
            self.phase = "idle"
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

    def seconds(self) -> float:
        return self.wiz.rest_s

    def request(self, done: Callable[[CalibrationResult], None]) -> None:
        self.wiz.touched = True
        self.wiz.session.calibrate_rest(self.seconds(), done)

    def worker_extra(self, result: CalibrationResult) -> dict[str, Any]:
        # The rest window is the newest stretch of the filtered buffer when the callback
        # runs (the session writes its buffers before it collects): its RMS is the noise.
        session = self.wiz.session
        assert session.info is not None
        _, filt = session.filtered.snapshot(round(self.seconds() * session.info.fs))
        with np.errstate(all="ignore"):
            rms = np.sqrt(np.nanmean(filt**2, axis=0))
        return {"noise_rms_uv": [float(v) for v in rms]}

    def noise(self) -> dict[int, float]:
        values = self.extra.get("noise_rms_uv", [])
        return {ch: values[ch] for ch in self.channels if ch < len(values)}

    def describe(self) -> str:
        lines = ["Rest noise (filtered signal, RMS):"]
        for ch, uv in self.noise().items():
            note = ""
            if not math.isfinite(uv):
                note = " — no data"
            elif uv > HIGH_REST_NOISE_UV:
                note = " — high for rest: check electrode contact, or relax"
            lines.append(f"  {self.channel_label(ch)}: {uv:.1f} µV{note}")
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

    def describe(self) -> str:
        noise = self.wiz.rest_page.noise()
        lines = ["Peak RMS (250 ms):"]
        for ch, uv in self.peaks().items():
            note = ""
            rest = noise.get(ch)
            if rest and math.isfinite(rest) and uv < WEAK_REFERENCE_RATIO * rest:
                note = " — weak, barely above rest: check the electrode or contract harder"
            lines.append(f"  {self.channel_label(ch)}: {uv:.0f} µV{note}")
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

    def _skip_toggled(self, on: bool) -> None:
        self.mvc.setEnabled(not on)
        self.submax.setEnabled(not on)

    @property
    def kind(self) -> str:
        return "mvc" if self.mvc.isChecked() else "submax"

    def nextId(self) -> int:  # noqa: N802 (Qt API)
        return ID_SUMMARY if self.skip.isChecked() else self.wiz.next_reference_id(None)


class SummaryPage(QtWidgets.QWizardPage):
    def __init__(self, wiz: CalibrationWizard) -> None:
        super().__init__()
        self.wiz = wiz
        self.setTitle("Summary")
        self.setFinalPage(True)
        self.text = QtWidgets.QLabel("")
        self.text.setObjectName("summary")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addStretch(1)

    def initializePage(self) -> None:  # noqa: N802 (Qt API)
        self.text.setText(self.wiz.summary_text())

    def nextId(self) -> int:  # noqa: N802 (Qt API)
        return -1


class IntroPage(QtWidgets.QWizardPage):
    def __init__(self, wiz: CalibrationWizard) -> None:
        super().__init__()
        self.setTitle(f"Calibration for {wiz.athlete}")
        text = QtWidgets.QLabel(
            "<p>This takes about a minute:</p><ol>"
            f"<li><b>Rest</b> ({wiz.rest_s:g} s): the athlete relaxes so the app learns "
            "the resting noise of each channel. Onsets are detected against it.</li>"
            f"<li><b>Reference contractions</b> (optional, {wiz.contraction_s:g} s per muscle "
            "group): a strong hold that scales the traces.</li></ol>"
            "<p><b>Before you start:</b> check the electrodes — skin prepared, pads firmly "
            "stuck along the muscle fibres, cables taped so they do not swing, and the live "
            "traces quiet when the athlete is relaxed.</p>"
        )
        text.setWordWrap(True)
        text.setObjectName("intro_text")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(text)
        layout.addStretch(1)


class CalibrationWizard(QtWidgets.QWizard):
    """Calibrate ``session`` for ``athlete``; emits :attr:`calibration_done` on Finish.

    Timing attributes (set before the pages run; tests shorten them): ``rest_s`` (rest
    recording, 5 s), ``countdown_s`` (get-ready countdown before each recording, 3 s; 0 starts
    at once), ``contraction_s`` (each reference contraction, 5 s), ``tick_ms`` (countdown tick,
    1000) and ``timeout_margin_s`` (how long beyond the recording to wait for data).
    """

    calibration_done = QtCore.pyqtSignal(dict)

    def __init__(
        self,
        session: LiveSession,
        athlete: str,
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
        self.athlete = athlete
        self.store = store if store is not None else SettingsStore()
        self.rest_s = rest_s
        self.countdown_s = countdown_s
        self.contraction_s = contraction_s
        self.tick_ms = 1000
        self.timeout_margin_s = 10.0
        self.touched = False  # a recording changed the session's calibration
        self.saved: dict[str, Any] | None = None
        # What to put back if the wizard is cancelled after changing the session.
        pipeline = session.pipeline
        self._prev_baseline = pipeline.baseline.calibrated if pipeline is not None else None
        self._prev_reference = None if session.reference is None else session.reference.copy()

        self.setWindowTitle("Calibration")
        self.setObjectName("calibration_wizard")
        self.setOption(QtWidgets.QWizard.WizardOption.NoBackButtonOnStartPage, True)
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
        return [p for p in self.ref_pages.values() if p.channels and p.phase == "done"]

    def calibration(self) -> dict[str, Any]:
        """The calibration as stored: JSON-friendly, channels keyed by name."""
        info = self.session.info
        assert info is not None
        names = info.channel_names
        rest = self.rest_page
        cal: dict[str, Any] = {
            "version": CALIBRATION_VERSION,
            "athlete": self.athlete,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "source": info.source,
            "fs": info.fs,
            "channel_names": list(names),
            "roles": {role.value: names[ch] for role, ch in info.roles.items()},
            "dsp": {k: getattr(self.session.settings, k) for k in BASELINE_KEYS},
            "rest": None,
            "reference": None,
        }
        if rest.result is not None:
            cal["rest"] = {
                "seconds": self.rest_s,
                "baseline": dict(rest.result.values),
                "noise_rms_uv": {names[ch]: uv for ch, uv in rest.noise().items()},
            }
        refs = self.references_used()
        if refs:
            peaks: dict[str, float] = {}
            for page in refs:
                peaks.update({names[ch]: uv for ch, uv in page.peaks().items()})
            cal["reference"] = {
                "kind": self.ref_setup_page.kind,
                "seconds": self.contraction_s,
                "peak_rms_uv": peaks,
            }
        return cal

    def summary_text(self) -> str:
        cal = self.calibration()
        lines = [f"Athlete: {self.athlete}", ""]
        rest = cal["rest"] or {}
        noise: dict[str, float] = rest.get("noise_rms_uv", {})
        ref = cal["reference"]
        peaks: dict[str, float] = ref["peak_rms_uv"] if ref else {}
        info = self.session.info
        assert info is not None
        for role, ch in info.roles.items():
            name = info.channel_names[ch]
            parts = []
            if name in noise:
                parts.append(f"rest {noise[name]:.1f} µV")
            if name in peaks:
                parts.append(f"reference {peaks[name]:.0f} µV")
                if noise.get(name, 0) > 0 and peaks[name] > 0:
                    parts.append(f"SNR {20 * math.log10(peaks[name] / noise[name]):.0f} dB")
            lines.append(f"{role.label} ({name}): " + (", ".join(parts) or "—"))
        lines.append("")
        if ref:
            kind = "MVC" if ref["kind"] == "mvc" else "sub-maximal"
            lines.append(f"Reference: {kind}.")
        else:
            lines.append("No reference contraction: traces scale to the recent signal.")
        lines.append("Press Finish to save this calibration for the athlete.")
        return "\n".join(lines)

    # -- finish / cancel ------------------------------------------------------------------
    def accept(self) -> None:
        cal = self.calibration()
        try:
            self.store.save_calibration(self.athlete, cal)
        except Exception:  # saving must not lose the session's calibration
            log.exception("could not save the calibration for %s", self.athlete)
        self.saved = cal
        for page in self.capture_pages():
            page.cancel()
        self.calibration_done.emit(cal)
        super().accept()

    def reject(self) -> None:
        for page in self.capture_pages():
            page.cancel()
        if self.touched:
            # Put the session back as it was before the wizard.
            self.session.set_baseline(self._prev_baseline)
            prev = self._prev_reference

            def restore_reference(s: LiveSession) -> None:
                s.reference = prev

            self.session.post(restore_reference)
            log.info("calibration cancelled: previous calibration restored")
        super().reject()
