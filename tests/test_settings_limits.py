"""Every numeric setting has one range, declared on its dataclass, and the CLI, the settings
dialog and stored settings all use it: NaN, inf and absurd values are refused by name."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dsp.limits import Limit, SettingError
from dsp.settings import DspSettings

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_glute_first.bdf"


def test_every_numeric_field_has_a_limit_that_holds_its_default() -> None:
    d = DspSettings()
    for f in dataclasses.fields(DspSettings):
        value = getattr(d, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        assert f.name in DspSettings.LIMITS, f"{f.name} has no limit"
        assert DspSettings.LIMITS[f.name].contains(value), f.name


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e308, -1.0])
@pytest.mark.parametrize("name", ["k_on", "min_on_ms", "tolerance_ms", "baseline_block_s"])
def test_the_dataclass_refuses_with_name_and_range(name: str, bad: float) -> None:
    with pytest.raises(SettingError) as err:
        DspSettings(**{name: bad})
    text = str(err.value)
    assert name in text and " to " in text and "\n" not in text


def test_integers_and_off_values() -> None:
    assert DspSettings(notch_hz=0.0).notch_hz == 0.0  # 0 is "off", outside 40-70 Hz
    assert DspSettings(notch_hz=60).notch_hz == 60.0
    with pytest.raises(SettingError, match=r"notch_hz = 10 .*40 to 70 Hz, or 0 for off"):
        DspSettings(notch_hz=10.0)
    with pytest.raises(SettingError, match="whole number"):
        DspSettings(bandpass_order=2.5)  # type: ignore[arg-type]
    assert isinstance(DspSettings(bandpass_order=2.0).bandpass_order, int)  # type: ignore[arg-type]
    with pytest.raises(SettingError, match="band-pass 300-100 Hz is empty"):
        DspSettings(bandpass_low_hz=300.0, bandpass_high_hz=100.0)
    with pytest.raises(SettingError, match="detector"):
        DspSettings(detector="rms")  # type: ignore[arg-type]


def test_limit_parses_text_as_the_cli_gives_it() -> None:
    lim = Limit(0.0, 10.0, "V", low_open=True)
    assert lim.parse("vref", " 3.3 ") == 3.3
    for text in ("0", "nan", "inf", "abc", "", "1e400"):
        with pytest.raises(SettingError, match="vref"):
            lim.parse("vref", text)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--k-on", "nan"], "k_on"),
        (["--k-on", "1e-300"], "k_on"),
        (["--min-on-ms", "1e308"], "min_on_ms"),
        (["--tolerance-ms", "inf"], "tolerance_ms"),
    ],
)
def test_cli_refuses_with_the_settings_range(args: list[str], name: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "app", "analyze", str(DEMO), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert lines[-1].count(name) == 1 and DspSettings.LIMITS[name].span() in lines[-1]
    assert "Traceback" not in run.stderr


def test_scale_limits_are_the_serial_options_limits() -> None:
    from devices.drivers.serial_protocol import Scale

    with pytest.raises(SettingError, match=r"adc_bits = 99 .*8 to 24 bits"):
        Scale.from_adc(bits=99, vref=5.0)
    with pytest.raises(SettingError, match="gain = 0"):
        Scale(gain=0.0)
    with pytest.raises(SettingError, match="offset"):
        Scale(offset=(1.0, math.nan))
    assert Scale.from_adc(bits=10, vref=5.0).offset == 512.0


def test_stored_settings_out_of_range_fall_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from PyQt6 import QtCore

    from app.settings_store import SettingsStore

    path = tmp_path / "fireorder.ini"
    qs = QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat)
    store = SettingsStore(qs)
    store._set("dsp/k_on", 1e308)
    store._set("dsp/min_on_ms", 0.0)  # an open lower end: refused
    store._set("dsp/tolerance_ms", 35.0)
    store._sync()
    loaded = SettingsStore(QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat))
    dsp = loaded.load_dsp()
    assert dsp.k_on == DspSettings().k_on and dsp.min_on_ms == DspSettings().min_on_ms
    assert dsp.tolerance_ms == 35.0
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "k_on" in warned and "0.5 to 50 SD" in warned


def test_dialog_offers_exactly_the_settings_range(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.settings_dialog import SettingsDialog
    from app.settings_store import GuiPrefs

    dlg = SettingsDialog(DspSettings(), GuiPrefs())
    qtbot.addWidget(dlg)
    for name in ("k_on", "tolerance_ms", "bandpass_high_hz", "min_off_ms", "notch_harmonics"):
        spin = getattr(dlg, name)
        lim = DspSettings.LIMITS[name]
        assert (spin.minimum(), spin.maximum()) == (lim.lo, lim.hi), name
    spin = dlg.min_on_ms
    assert spin.minimum() > 0 and DspSettings.LIMITS["min_on_ms"].contains(spin.minimum())
    # typing the top of every range gives settings the dataclass accepts (no hidden clash)
    for name in DspSettings.LIMITS:
        w = getattr(dlg, name, None)
        if w is not None and hasattr(w, "setValue"):
            w.setValue(w.maximum())
    dlg.k_off.setValue(1.0)  # (offset k below onset k, as the form requires)
    dlg.ecg_highpass_enabled.setChecked(False)
    assert dlg.validate() is None
    dsp, _ = dlg.result_settings()
    assert dsp.k_on == DspSettings.LIMITS["k_on"].hi
