"""The report's ECG advice takes the settings in force into account: it told the coach to
"enable ECG removal / a 30 Hz high-pass" for lumbar_r with the 30 Hz ECG high-pass already on
in Settings (the ECG figure is measured before the filter, so it stands out with it on)."""

from __future__ import annotations

import re
from pathlib import Path

from app.cli import main


def _ecg_advice(html: str) -> list[str]:
    return re.findall(r"<li>(heartbeat \(ECG\)[^<]*)</li>", html)


def test_ecg_advice_follows_the_ecg_highpass_setting(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "ecg.csv"
    assert main(["simulate", "--preset", "ecg", "--duration", "15", "--out", str(csv)]) == 0
    on, off = tmp_path / "on.html", tmp_path / "off.html"
    assert main(["report", str(csv), "--out", str(on)]) == 0  # the default: high-pass on
    assert main(["report", str(csv), "--no-ecg-filter", "--out", str(off)]) == 0
    capsys.readouterr()
    with_filter = _ecg_advice(on.read_text(encoding="utf-8"))
    without = _ecg_advice(off.read_text(encoding="utf-8"))
    assert with_filter and without  # (the preset's heartbeat is found either way)
    for advice in with_filter:
        assert "enable" not in advice and "30 Hz ECG high-pass is already on" in advice, advice
    for advice in without:
        assert "enable the ECG high-pass" in advice, advice


def test_ecg_advice_says_whether_heartbeats_are_skipped(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "ecg.csv"
    assert main(["simulate", "--preset", "ecg", "--duration", "15", "--out", str(csv)]) == 0
    on, off = tmp_path / "on.html", tmp_path / "off.html"
    assert main(["report", str(csv), "--out", str(on)]) == 0  # the default: the gate on
    assert main(["report", str(csv), "--no-ecg-gate", "--out", str(off)]) == 0
    capsys.readouterr()
    gated = _ecg_advice(on.read_text(encoding="utf-8"))
    ungated = _ecg_advice(off.read_text(encoding="utf-8"))
    assert gated and ungated
    assert all("heartbeats are skipped" in a for a in gated), gated
    assert not any("heartbeats are skipped" in a for a in ungated), ungated
