"""The signal check on the real simulator: clean passes every check, each fault fails the
matching one with its reason; figures are steady and the traffic light does not flicker.

Everything runs the real :class:`~devices.simulation.model.EmgSimulator` into the real
:class:`~dsp.quality.QualityMonitor` (live: ``recent()`` once per second of stream, as the
window does; offline: ``report()``, and the ``analyze`` command on a simulated file).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from devices.simulation.model import EmgSimulator, SimConfigError, preset
from devices.simulation.presets import PRESETS
from dsp.quality import ChannelQuality, QualityMonitor, QualitySettings

CHANNELS = ("glute_l", "glute_r", "lumbar_l", "lumbar_r")
WARMUP_S = 10  # the live figures need a few pauses between reps to settle


def run_live(name: str, seed: int, seconds: int = 60, **overrides: object):
    """(per-second live reports after the warm-up, final report, simulator)."""
    sim = EmgSimulator(preset(name, seed=seed, **overrides))
    mon = QualityMonitor(sim.fs, sim.n_channels, QualitySettings(line_freq=50.0))
    live: list[list[ChannelQuality]] = []
    for sec in range(seconds):
        mon.process(sim.generate(round(sim.fs)))
        if sec >= WARMUP_S:
            live.append(mon.recent())
    return live, mon.report(), sim


def assert_ok(q: ChannelQuality, where: str) -> None:
    assert q.status == "ok", f"{where}: {q.status} {q.issues} {q.advice}"
    assert q.issues == () and q.advice == ()


# --- clean ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_clean_simulator_passes_every_check_live_and_offline(seed: int) -> None:
    live, report, sim = run_live("clean", seed, seconds=45)
    for t, qs in enumerate(live):
        for name, q in zip(CHANNELS, qs, strict=True):
            assert_ok(q, f"seed {seed}, {name}, live at {WARMUP_S + t} s")
    for name, q in zip(CHANNELS, report, strict=True):
        assert_ok(q, f"seed {seed}, {name}, report")
        # good skin preparation: the floor the simulator draws (2.5-4 µV over 10-500 Hz) is
        # measured back as 2-4 µV in 20-450 Hz, well under the 5 µV limit
        assert 2.0 < q.noise_rms_uv < 4.0, (name, q.noise_rms_uv)
        truth = sim.truth().channel_params[name]["noise_rms_uv"]
        assert q.noise_rms_uv == pytest.approx(truth * math.sqrt(430 / 490), rel=0.15)
        assert q.hum_db < -2.0 and q.hum_rms_uv < 2.0  # mains residue below the floor


def test_clean_simulator_analyze_says_good(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for seed in (0, 3):
        csv = tmp_path / f"clean{seed}.csv"
        assert main(["simulate", "--preset", "clean", "--duration", "40", "--seed", str(seed),
                     "--out", str(csv)]) == 0  # fmt: skip
        capsys.readouterr()
        assert main(["analyze", str(csv), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert {r: q["status"] for r, q in doc["quality"].items()} == dict.fromkeys(CHANNELS, "ok")
        assert main(["analyze", str(csv)]) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert line.startswith("signal quality: good on all 4 channels (rest noise floor ")
        assert "µV RMS" in line and "uV" not in line


# --- faults --------------------------------------------------------------------------------

# preset -> (channels with the issue, issue, accepted statuses); the other channels stay ok
FAULTS = {
    "hum": (CHANNELS, "hum", {"bad"}),
    "lead_off": (("glute_l",), "flat", {"bad"}),
    "ecg": (("lumbar_l", "lumbar_r"), "ecg", {"warn"}),
    "noisy": (CHANNELS, "noisy", {"warn", "bad"}),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
@pytest.mark.parametrize("seed", [0, 1])
def test_each_fault_fails_its_check_with_its_reason(name: str, seed: int) -> None:
    hit, issue, statuses = FAULTS[name]
    live, report, _ = run_live(name, seed, seconds=40)
    for qs in (*live, report):
        for ch, q in zip(CHANNELS, qs, strict=True):
            if ch in hit:
                assert q.issues == (issue,), (name, ch, q.issues)
                assert q.status in statuses, (name, ch, q.status)
                assert "µV" in q.advice[0] or issue in ("flat", "ecg")
            else:
                assert_ok(q, f"{name}: {ch}")


def test_clipping_preset_matches_the_truth() -> None:
    """Clipping is flagged where the simulator clipped, at the clipped fraction it recorded."""
    live, report, sim = run_live("clipping", 0, seconds=40)
    truth = sim.truth()
    n = truth.n_samples
    clipped = dict.fromkeys(CHANNELS, 0)
    for ch, _start, length in truth.saturation:
        clipped[ch] += length
    for ch, q in zip(CHANNELS, report, strict=True):
        frac = clipped[ch] / n
        assert q.saturation_fraction == pytest.approx(frac, rel=0.1, abs=2e-4), ch
        if frac > 0.01:
            assert q.issues == ("saturation",) and q.status == "bad", ch
        elif frac > 0.002:
            assert q.issues == ("saturation",), ch
    for ch in ("glute_l", "glute_r"):  # 100 µV plateau, peaks ~350 µV: clipped every rep
        assert all("saturation" in qs[CHANNELS.index(ch)].issues for qs in live)


def band_noise(rng: np.random.Generator, seconds: float, rms: float, fs: float = 2000.0):
    from scipy import signal

    sos = signal.butter(4, [20, 450], btype="bandpass", fs=fs, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(round((seconds + 1) * fs)))[round(fs) :]
    return x * (rms / x.std())


def test_hum_below_the_floor_is_not_an_issue_however_it_compares() -> None:
    """An excellent 1 µV floor makes 1.5 µV of hum 'dominant' in dB; it is still fine, while
    6 µV of hum over a 3 µV floor is an issue (the baseline is then out of Konrad's 3-5 µV)."""
    rng = np.random.default_rng(3)
    n = 30 * 2000
    t = np.arange(n) / 2000.0
    for floor, hum_rms, status in ((1.0, 1.5, "ok"), (3.0, 6.0, "warn")):
        x = band_noise(rng, 30, floor) + hum_rms * math.sqrt(2) * np.sin(2 * np.pi * 50 * t)
        mon = QualityMonitor(2000.0, 1)
        mon.process(x[:, None])
        for q in (mon.report()[0], mon.recent()[0]):
            assert q.hum_db > 0
            assert q.hum_rms_uv == pytest.approx(hum_rms, rel=0.1)
            assert q.status == status, (floor, hum_rms, q.issues)
            assert q.issues == (() if status == "ok" else ("hum",))


# --- steadiness ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clean", "hum"])
def test_live_hum_figure_is_steady_over_a_minute(name: str) -> None:
    """A steady hum gives a steady figure, reps or not (the old one swung -60..-10 dB)."""
    live, _, _ = run_live(name, 2, seconds=70)
    hum = np.array([[q.hum_db for q in qs] for qs in live])  # (seconds, channels)
    assert np.isfinite(hum).all()
    spread = hum.max(axis=0) - hum.min(axis=0)
    steps = np.abs(np.diff(hum, axis=0)).max(axis=0)
    assert (spread < (8.0 if name == "clean" else 3.0)).all(), spread
    assert (steps < 4.0).all(), steps
    noise = np.array([[q.noise_rms_uv for q in qs] for qs in live])
    assert ((noise.max(axis=0) - noise.min(axis=0)) / noise.mean(axis=0) < 0.2).all()


@pytest.mark.parametrize("release", [0.8, 1.0])
def test_traffic_light_holds_at_the_limit(release: float) -> None:
    """A floor right at the 5 µV limit flips at most once, not every second (hysteresis);
    without the release margin (1.0) the same signal does flicker."""
    rng = np.random.default_rng(5)
    x = band_noise(rng, 60, 5.3)  # a minute at rest; the estimates scatter around 5 µV
    mon = QualityMonitor(2000.0, 1, QualitySettings(release_factor=release))
    statuses, figures = [], []
    for sec in range(60):
        mon.process(x[sec * 2000 : (sec + 1) * 2000, None])
        q = mon.recent()[0]
        statuses.append(q.status)
        figures.append(q.noise_rms_uv)
    assert 4.4 < min(figures[8:]) < 5.0 < max(figures[8:]) < 5.6  # it does straddle the limit
    flips = sum(a != b for a, b in itertools.pairwise(statuses[8:]))
    if release < 1.0:
        assert flips <= 1, statuses
    else:
        assert flips >= 2  # the test signal is one that needs the hysteresis


# --- the simulator's side ------------------------------------------------------------------


def test_fault_presets_exist_and_differ_from_clean_in_one_thing() -> None:
    clean = PRESETS["clean"]
    for name in ("hum", "lead_off", "clipping", "ecg", "noisy"):
        diff = {k for k in set(PRESETS[name]) | set(clean) if PRESETS[name].get(k) != clean.get(k)}
        assert len(diff) == 1, (name, diff)


def test_lead_off_channel_is_flat_and_named_channels_are_checked() -> None:
    sim = EmgSimulator(preset("lead_off", seed=1))
    x = sim.generate(4000)
    assert np.all(x[:, 0] == 0.0) and np.all(np.std(x[:, 1:], axis=0) > 1.0)
    with pytest.raises(SimConfigError, match="lead_off names unknown channel"):
        preset("lead_off", channels=("glute_r", "lumbar_r"))


def test_simulate_cli_lead_off_typo_is_one_line(tmp_path: Path, capsys) -> None:
    code = main(["simulate", "--duration", "2", "--lead-off", "glute_x", "--out",
                 str(tmp_path / "x.csv")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "glute_x" in err[0] and "Traceback" not in err[0]


def test_report_quality_section_tells_clean_from_hum(tmp_path: Path) -> None:
    """The HTML report: every clean muscle "ok" with its floor in µV; hum named with its RMS."""
    import html
    import re

    def quality_rows(name: str) -> list[str]:
        csv, out = tmp_path / f"{name}.csv", tmp_path / f"{name}.html"
        assert main(["simulate", "--preset", name, "--duration", "15", "--seed", "2",
                     "--out", str(csv)]) == 0  # fmt: skip
        assert main(["report", str(csv), "--out", str(out), "--no-progress"]) == 0
        page = out.read_text(encoding="utf-8")
        section = page[
            page.index('id="quality"') : page.index("</table>", page.index('id="quality"'))
        ]
        return [html.unescape(re.sub(r"<[^>]+>", " ", r)) for r in section.split("<tr")[2:]]

    clean = quality_rows("clean")
    assert len(clean) == 4
    for row in clean:
        assert " ok " in row and "none" in row and "µV RMS" in row and "uV" not in row
    hum = quality_rows("hum")
    for row in hum:
        assert " bad " in row and "mains hum" in row
        assert re.search(r"hum \+\d+ dB over the rest noise floor \(\d+\.\d µV RMS\)", row)


def test_simulate_snr_option_replaces_the_clean_floor() -> None:
    """`--preset clean --snr LO HI` means what it says: the floor follows the SNR again."""
    import argparse

    from app.commands.simulate import config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["simulate", "--preset", "clean", "--snr", "6", "8", "--out", "x"])
    cfg = config_from_args(args)
    assert cfg.noise_uv is None and cfg.snr_db == (6.0, 8.0)
    params = EmgSimulator(cfg).truth(0).channel_params
    assert all(6.0 <= p["snr_db"] <= 8.0 for p in params.values())
