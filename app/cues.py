"""When to cue the athlete after a rep (pure rules) and the audible cue itself.

Sound is optional: without QtMultimedia, without a sound device or without the WAV files the
player reports ``available = False`` and keeps emitting ``cue_played`` so visual cues and tests
work the same way.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from PyQt6 import QtCore
from PyQt6.QtCore import pyqtSignal

from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST, ORDERS, SIMULTANEOUS, UNDETERMINED, RepResult

if TYPE_CHECKING:  # at run time QtMultimedia is imported lazily: it may fail to load
    from PyQt6.QtMultimedia import QMediaDevices, QSoundEffect

log = logging.getLogger(__name__)

MODES = ("every", "lumbar_only", "faded")
SOUND_DIR = Path(__file__).resolve().parents[1] / "resources" / "sounds"
# Undetermined reps have no sound on purpose: the data could not decide, so there is nothing to
# reward or correct, and a noise would only teach the athlete to ignore the cues.
SOUND_FILES = {o: f"{o}.wav" for o in (GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS)}


@dataclass(frozen=True)
class CueRules:
    """Which reps get a cue.

    ``rep_number`` is the 1-based rep number in the set (``rep.index + 1``).

    - ``every``: every rep with a verdict is cued.
    - ``lumbar_only``: only lumbar-first reps (corrective feedback only).
    - ``faded``: a coach fades feedback as the athlete learns, so only every ``every_n``-th rep
      (``rep_number % every_n == 0``) is cued. Lumbar-first reps are cued in between too when
      ``always_cue_lumbar`` is True, so a relapse is never missed.

    Undetermined reps are cued only when ``cue_undetermined`` is True (and, in ``faded`` mode,
    only on an every-n-th rep; never in ``lumbar_only``). Their cue is silent: it matters only to
    listeners of :attr:`CuePlayer.cue_played`.
    """

    mode: str = "every"
    every_n: int = 3
    always_cue_lumbar: bool = True
    cue_undetermined: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown cue mode {self.mode!r}; expected one of {MODES}")
        if self.every_n < 1:
            raise ValueError(f"every_n must be >= 1, got {self.every_n}")

    def should_cue(self, rep: RepResult, rep_number: int) -> bool:
        order = rep.order
        if self.mode == "lumbar_only":
            return order == LUMBAR_FIRST
        if order == UNDETERMINED and not self.cue_undetermined:
            return False
        if self.mode == "every":
            return True
        # faded
        if order == LUMBAR_FIRST and self.always_cue_lumbar:
            return True
        return rep_number % self.every_n == 0


class CuePlayer(QtCore.QObject):
    """Plays one short sound per cued rep; degrades to "visual cues only" without raising."""

    cue_played = pyqtSignal(str)  # order; emitted for every cue, also when muted or silent
    status_changed = pyqtSignal(str)  # status_text, e.g. for the main window's status bar

    def __init__(self, parent: QtCore.QObject | None = None, sound_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.sound_dir = Path(sound_dir) if sound_dir is not None else SOUND_DIR
        self._muted = False
        self._volume = 1.0
        self._effects: dict[str, QSoundEffect] = {}  # order -> its sound
        self._mm: ModuleType | None = None  # the QtMultimedia module, once imported
        self._devices: QMediaDevices | None = None
        self._available = False
        self._reason = "not initialised"
        self._logged_unavailable = False
        try:
            # Lazy import: QtMultimedia needs libpulse0 just to load, and a missing system
            # library must cost the athlete the sound, not the app.
            from PyQt6 import QtMultimedia

            self._mm = QtMultimedia
            self._devices = devices = QtMultimedia.QMediaDevices(self)
            # A speaker plugged in (or a Bluetooth one connected) after start-up gets used.
            devices.audioOutputsChanged.connect(self._load)
        except (ImportError, OSError, RuntimeError) as exc:
            self._set_unavailable(f"QtMultimedia not available: {exc}", "audio unavailable")
            return
        self._load()

    # --- state -----------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self._available

    @property
    def status_text(self) -> str:
        if not self._available:
            return f"audio: {self._reason} (visual cues only)"
        return "audio: muted" if self._muted else "audio: ok"

    @property
    def muted(self) -> bool:
        return self._muted

    def set_muted(self, muted: bool) -> None:
        if bool(muted) != self._muted:
            self._muted = bool(muted)
            if self._muted:
                self._stop_all()
            self.status_changed.emit(self.status_text)

    @property
    def volume(self) -> float:
        return self._volume

    def set_volume(self, v: float) -> None:
        """Set the level, 0..1 (clamped), on a perceptual scale as a slider would give it."""
        if not math.isfinite(v):
            return
        self._volume = min(1.0, max(0.0, float(v)))
        self._apply_volume()

    # --- playing ---------------------------------------------------------------------------

    def play(self, order: str) -> None:
        if order not in ORDERS:
            log.warning("no cue for unknown order %r", order)
            return
        effect = self._effects.get(order)
        if self._available and not self._muted and effect is not None:
            # A new rep's cue replaces a previous one still sounding: overlapping cues blur.
            self._stop_all()
            effect.play()
        self.cue_played.emit(order)

    # --- internals -------------------------------------------------------------------------

    def _load(self) -> None:
        mm = self._mm
        assert mm is not None  # connected only once QtMultimedia is imported
        for effect in self._effects.values():
            effect.stop()
            effect.deleteLater()
        self._effects.clear()
        if not mm.QMediaDevices.audioOutputs():
            self._set_unavailable("no sound device", "no sound device")
            return
        missing = []
        for order, name in SOUND_FILES.items():
            path = self.sound_dir / name
            if not path.is_file():
                missing.append(name)
                continue
            effect = mm.QSoundEffect(self)
            effect.statusChanged.connect(self._on_status)
            effect.setSource(QtCore.QUrl.fromLocalFile(str(path)))
            self._effects[order] = effect
        if not self._effects:
            self._set_unavailable(f"sound files missing in {self.sound_dir}", "no sound files")
            return
        if missing:
            log.info("cue sounds missing (those cues stay silent): %s", ", ".join(missing))
        self._available = True
        self._logged_unavailable = False
        self._apply_volume()
        self.status_changed.emit(self.status_text)
        self._on_status()  # a status may already be final

    def _on_status(self) -> None:
        if not self._available:
            return
        assert self._mm is not None  # available: QtMultimedia is imported
        error = self._mm.QSoundEffect.Status.Error
        if any(e.status() == error for e in self._effects.values()):
            # Typical without a sound server: the device cannot take the format. Not an error
            # for the user: the visual feedback carries on alone.
            self._set_unavailable("no sound device", "cannot play")

    def _set_unavailable(self, detail: str, reason: str) -> None:
        self._available = False
        self._reason = reason
        if not self._logged_unavailable:
            log.info("audio cues unavailable (%s); visual cues only", detail)
            self._logged_unavailable = True
        self.status_changed.emit(self.status_text)

    def _apply_volume(self) -> None:
        if not self._effects:
            return
        assert self._mm is not None  # sounds are loaded: QtMultimedia is imported
        audio = getattr(self._mm, "QtAudio", None) or self._mm.QAudio
        scale = audio.VolumeScale
        linear = audio.convertVolume(
            self._volume, scale.LogarithmicVolumeScale, scale.LinearVolumeScale
        )
        for effect in self._effects.values():
            effect.setVolume(linear)

    def _stop_all(self) -> None:
        for effect in self._effects.values():
            if effect.isPlaying():
                effect.stop()
