"""Persistent settings: DSP tunables, GUI preferences, channel mappings and calibrations.

Everything lives in one :class:`QtCore.QSettings` (organization and application "fireorder").
Each value is stored as a JSON string: QSettings round-trips native types differently per
platform (ini files give strings back, the Windows registry ints, plist bools), JSON does not.
Loading never raises: a missing or unreadable value falls back to its default on its own, so
one corrupted key costs that key, not the whole configuration.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, fields, replace
from typing import Any, get_args
from urllib.parse import quote

from PyQt6 import QtCore

from dsp.contract import Role
from dsp.settings import DetectorSignal, DspSettings
from dsp.templates import TEMPLATES

log = logging.getLogger(__name__)

ORGANIZATION = "fireorder"
APPLICATION = "fireorder"

CUE_MODES: tuple[str, ...] = ("every", "lumbar_only", "faded")
WINDOW_S_RANGE = (1.0, 30.0)  # (1 s: 0.1 ms per pixel of a wide screen, for correcting)

_REPORT_DIR = "reports/last_dir"
_DSP = "dsp"
_PREFS = "prefs"
_MAPPINGS = "mappings"
_CALIBRATIONS = "calibrations"


#: the source panel's placeholder athlete id: never a name calibrations are stored under
DEFAULT_ATHLETE = "athlete"


def is_athlete_name(name: str) -> bool:
    """True for a name a user entered (not empty, not the placeholder)."""
    text = name.strip()
    return bool(text) and text.casefold() != DEFAULT_ATHLETE


@dataclass(frozen=True)
class GuiPrefs:
    """GUI preferences (not DSP): what the screens show and how the cues sound."""

    window_s: float = 10.0  # trace window, 2-30 s
    cue_mode: str = "every"  # "every" rep | "lumbar_only" (only bad reps) | "faded" feedback
    cue_every_n: int = 3  # cue every n-th rep in "faded" mode (as app.cues.CueRules)
    cue_mute: bool = False
    cue_volume: float = 1.0  # 0..1
    athlete_screen: bool = False
    show_raw: bool = False
    recent_window_n: int = 10  # reps in the "recent" tally
    recordings_dir: str = ""  # "" = the user's data folder (devices.files.locations)
    lsl_out: bool = False  # send verdicts as an LSL marker stream (off: no socket is opened)
    lsl_out_name: str = "fireorder-verdicts"  # that stream's name (two stations: two names)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def with_(self, **changes: Any) -> GuiPrefs:
        return replace(self, **changes)


def _check_pref(name: str, value: Any) -> Any:
    """The value if it is valid for GUI preference ``name``; raise ValueError otherwise."""
    if name in ("cue_mute", "athlete_screen", "show_raw", "lsl_out"):
        if not isinstance(value, bool):
            raise ValueError("expected true/false")
        return value
    if name == "lsl_out_name":
        if not isinstance(value, str) or not value.strip() or "\0" in value or len(value) > 200:
            raise ValueError("expected a stream name")
        return value.strip()
    if name == "recordings_dir":
        if not isinstance(value, str) or "\0" in value:
            raise ValueError("expected a folder path")
        return value
    if name == "cue_mode":
        if value not in CUE_MODES:
            raise ValueError(f"expected one of {', '.join(CUE_MODES)}")
        return value
    if name in ("cue_every_n", "recent_window_n"):
        n = _as_int(value)
        if n < 1:
            raise ValueError("must be at least 1")
        return n
    x = _as_float(value)
    if name == "window_s":
        lo, hi = WINDOW_S_RANGE
        if not lo <= x <= hi:
            raise ValueError(f"must be within {lo:g}-{hi:g} s")
    elif name == "cue_volume" and not 0.0 <= x <= 1.0:
        raise ValueError("must be within 0-1")
    return x


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError("expected a finite number")
    return x


def _as_int(value: Any) -> int:
    x = _as_float(value)
    if not x.is_integer():
        raise ValueError("expected a whole number")
    return int(x)


def _check_dsp(name: str, default: Any, value: Any) -> Any:
    """The value if it suits DSP field ``name``; ValueError (with the range) if not. Numbers
    are checked against the field's own limit (DspSettings.LIMITS), as the CLI and the
    dialog check them."""
    if name == "detector":
        if value not in get_args(DetectorSignal):
            raise ValueError(f"expected one of {', '.join(get_args(DetectorSignal))}")
        return value
    if name == "exercise":
        if value not in TEMPLATES:
            raise ValueError("unknown exercise")
        return value
    if name in DspSettings.LIMITS:
        if isinstance(value, str):  # a number is stored as a number, never as its text
            raise ValueError("expected a number")
        return DspSettings.check(name, value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError("expected true/false")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError("expected text")
        return value
    raise ValueError("not a stored setting")


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` accepts strictly: NaN/inf become null."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    try:
        x = float(value)  # numpy scalars and friends
    except (TypeError, ValueError):
        return str(value)
    return x if math.isfinite(x) else None


class SettingsStore:
    """Typed access to the application's QSettings."""

    def __init__(self, qsettings: QtCore.QSettings | None = None) -> None:
        self.qs = (
            qsettings if qsettings is not None else QtCore.QSettings(ORGANIZATION, APPLICATION)
        )

    # -- raw JSON values --------------------------------------------------------------------
    _MISSING = object()

    def _get(self, key: str) -> Any:
        """The decoded JSON at ``key``; ``_MISSING`` if absent; ValueError if unreadable."""
        if not self.qs.contains(key):
            return self._MISSING
        raw = self.qs.value(key)
        if isinstance(raw, list):  # an ini value edited by hand with unquoted commas
            raw = ",".join(str(r) for r in raw)
        if not isinstance(raw, str):
            raise ValueError(f"expected a JSON string, found {type(raw).__name__}")
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg})") from None

    def _set(self, key: str, value: Any) -> None:
        self.qs.setValue(key, json.dumps(json_safe(value), allow_nan=False))

    def _sync(self) -> None:
        self.qs.sync()
        if self.qs.status() != QtCore.QSettings.Status.NoError:
            log.warning(
                "settings could not be written to %s: %s", self.qs.fileName(), self.qs.status().name
            )

    @staticmethod
    def _key(group: str, name: str) -> str:
        # Device ids and athlete names may hold "/" (a QSettings group separator) or ":".
        return f"{group}/{quote(name, safe='')}"

    # -- DSP settings ---------------------------------------------------------------------
    def load_dsp(self) -> DspSettings:
        defaults = DspSettings()
        values: dict[str, Any] = {}
        for f in fields(DspSettings):
            key = f"{_DSP}/{f.name}"
            default = getattr(defaults, f.name)
            try:
                value = self._get(key)
                if value is self._MISSING:
                    continue
                values[f.name] = _check_dsp(f.name, default, value)
            except ValueError as exc:
                log.warning("setting %s is invalid (%s); using the default %r", key, exc, default)
        low = values.get("bandpass_low_hz", defaults.bandpass_low_hz)
        high = values.get("bandpass_high_hz", defaults.bandpass_high_hz)
        if low >= high:
            log.warning(
                "stored band-pass %g-%g Hz is empty; using the default %g-%g Hz",
                low,
                high,
                defaults.bandpass_low_hz,
                defaults.bandpass_high_hz,
            )
            values.pop("bandpass_low_hz", None)
            values.pop("bandpass_high_hz", None)
        try:
            return defaults.with_(**values)
        except ValueError as exc:  # a combination no single check refused
            log.warning("stored settings do not go together (%s); using the defaults", exc)
            return defaults

    def save_dsp(self, s: DspSettings) -> None:
        for name, value in s.to_dict().items():
            self._set(f"{_DSP}/{name}", value)
        self._sync()

    def restore_defaults(self) -> DspSettings:
        """Forget stored DSP settings and GUI prefs (mappings and calibrations stay)."""
        self.qs.remove(_DSP)
        self.qs.remove(_PREFS)
        self._sync()
        return DspSettings()

    # -- GUI preferences --------------------------------------------------------------------
    def load_prefs(self) -> GuiPrefs:
        defaults = GuiPrefs()
        values: dict[str, Any] = {}
        for f in fields(GuiPrefs):
            key = f"{_PREFS}/{f.name}"
            try:
                value = self._get(key)
                if value is self._MISSING:
                    continue
                values[f.name] = _check_pref(f.name, value)
            except ValueError as exc:
                log.warning(
                    "preference %s is invalid (%s); using the default %r",
                    key,
                    exc,
                    getattr(defaults, f.name),
                )
        return defaults.with_(**values)

    def save_prefs(self, p: GuiPrefs) -> None:
        for name, value in p.to_dict().items():
            self._set(f"{_PREFS}/{name}", value)
        self._sync()

    # -- channel mappings -------------------------------------------------------------------
    def load_report_dir(self) -> str | None:
        """The folder the last report was saved to (the next one is offered there)."""
        try:
            value = self._get(_REPORT_DIR)
        except ValueError:
            return None
        return value if isinstance(value, str) and value else None

    def save_report_dir(self, folder: str) -> None:
        self._set(_REPORT_DIR, folder)
        self._sync()

    def load_mapping(self, device_id: str) -> dict[str, str] | None:
        """Role value -> channel name remembered for ``device_id``; None if none usable."""
        key = self._key(_MAPPINGS, device_id)
        try:
            data = self._get(key)
        except ValueError as exc:
            log.warning("channel mapping %s is invalid (%s); ignoring it", key, exc)
            return None
        if data is self._MISSING:
            return None
        if not isinstance(data, dict):
            log.warning("channel mapping %s is not a mapping; ignoring it", key)
            return None
        roles = {r.value for r in Role}
        out: dict[str, str] = {}
        for role, channel in data.items():
            if role in roles and isinstance(channel, str) and channel:
                out[role] = channel
            else:
                log.warning("channel mapping %s: dropping %r -> %r", key, role, channel)
        if len(set(out.values())) != len(out):
            log.warning("channel mapping %s maps two roles to one channel; ignoring it", key)
            return None
        return out or None

    def save_mapping(self, device_id: str, mapping: dict[str, str]) -> None:
        self._set(self._key(_MAPPINGS, device_id), {str(k): str(v) for k, v in mapping.items()})
        self._sync()

    # -- calibrations -----------------------------------------------------------------------
    # Stored per athlete, and only under a name somebody typed: a calibration saved under the
    # source panel's placeholder "athlete" would be reused for whoever trains next.
    def load_calibration(self, athlete: str) -> dict[str, Any] | None:
        if not is_athlete_name(athlete):
            return None
        key = self._key(_CALIBRATIONS, athlete)
        try:
            data = self._get(key)
        except ValueError as exc:
            log.warning("calibration %s is invalid (%s); ignoring it", key, exc)
            return None
        if data is self._MISSING:
            return None
        if not isinstance(data, dict):
            log.warning("calibration %s is not a mapping; ignoring it", key)
            return None
        return data

    def save_calibration(self, athlete: str, cal: dict[str, Any]) -> None:
        """Store ``cal`` for ``athlete``; ValueError for an empty or placeholder name."""
        if not is_athlete_name(athlete):
            raise ValueError(f"not an athlete name: {athlete!r} (enter the athlete's name)")
        self._set(self._key(_CALIBRATIONS, athlete), cal)
        self._sync()
