"""The built-in EMG simulator: signal statistics, ground truth, device and CLI."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from app import cli
from devices.drivers.base import DeviceError, create, registered
from devices.drivers.simulator import SimulatorDevice
from devices.simulation.model import (
    BLOCK,
    PRESETS,
    EmgSimulator,
    SimConfig,
    SimConfigError,
    Truth,
    order_label,
    preset,
    sample_after,
    simulate,
    write_csv,
    write_truth,
)
from dsp.contract import Role

ROLE_NAMES = ("glute_l", "glute_r", "lumbar_l", "lumbar_r")


# ----------------------------------------------------------------------------- helpers


def plateau_mask(truth: Truth, channel: str, n: int) -> np.ndarray:
    """Samples well inside each complete rep's plateau for one channel."""
    role = Role(channel)
    mask = np.zeros(n, dtype=bool)
    for rep in truth.complete_reps:
        a = sample_after(rep.onsets[role] + 0.11, truth.fs)  # after the longest rise
        b = sample_after(rep.offsets[role] - 0.25, truth.fs)  # before the longest decay
        mask[a:b] = True
    return mask


def rest_mask(truth: Truth, n: int) -> np.ndarray:
    """Samples between reps, away from every onset and offset."""
    mask = np.zeros(n, dtype=bool)
    reps = truth.complete_reps
    for prev, nxt in itertools.pairwise(reps):
        mask[
            sample_after(prev.end_s + 0.05, truth.fs) : sample_after(nxt.start_s - 0.05, truth.fs)
        ] = True
    return mask


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    # only this command: the other subcommands are not under test here
    monkeypatch.setattr(cli, "COMMANDS", ("simulate",))
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse errors
        return int(exc.code or 0)


# ----------------------------------------------------------------------------- signal


def test_spectrum_peaks_in_emg_band() -> None:
    rec = simulate(preset("ideal", snr_db=(20.0, 20.0), seed=1), 30.0)
    for c, name in enumerate(ROLE_NAMES):
        x = rec.data[plateau_mask(rec.truth, name, len(rec.data)), c]
        f, p = signal.welch(x, rec.info.fs, nperseg=256)
        assert 50 <= f[np.argmax(p)] <= 150, name
        assert p[(f >= 20) & (f <= 450)].sum() / p.sum() > 0.9, name


def test_default_config_glute_power_mostly_in_band() -> None:
    # with hum, wander, ECG and transients on, an active glute is still mostly 20-450 Hz
    rec = simulate(SimConfig(seed=2), 30.0)
    for c in (0, 1):
        x = rec.data[plateau_mask(rec.truth, ROLE_NAMES[c], len(rec.data)), c]
        f, p = signal.welch(x - x.mean(), rec.info.fs, nperseg=512)
        assert p[(f >= 20) & (f <= 450)].sum() / p.sum() > 0.9


def test_measured_snr_matches_configured() -> None:
    rec = simulate(preset("ideal", snr_db=(8.0, 24.0), seed=3), 60.0)
    n = len(rec.data)
    rest = rest_mask(rec.truth, n)
    for c, name in enumerate(ROLE_NAMES):
        drawn = rec.truth.channel_params[name]["snr_db"]
        assert 8.0 <= drawn <= 24.0
        x = rec.data[:, c]
        p_rest = np.mean(x[rest] ** 2)
        p_plateau = np.mean(x[plateau_mask(rec.truth, name, n)] ** 2)
        measured = 10 * math.log10((p_plateau - p_rest) / p_rest)
        assert measured == pytest.approx(drawn, abs=2.0), name


@pytest.mark.parametrize("continuous", [False, True])
def test_truth_onsets_are_where_activation_starts(continuous: bool) -> None:
    # noise- and artefact-free: the signal is exactly zero wherever the activation is at rest
    channels = (*ROLE_NAMES, "hamstring_l")
    cfg = preset("ideal", channels=channels, continuous=continuous, seed=4, fs=1000.0)
    rec = simulate(cfg, 40.0)
    fs, data = rec.info.fs, rec.data
    reps = rec.truth.complete_reps
    assert len(reps) >= 10
    for c, name in enumerate(channels):
        active = np.flatnonzero(data[:, c] != 0)
        # split the nonzero samples into bursts at gaps
        edges = np.flatnonzero(np.diff(active) > 1)
        starts = active[np.r_[0, edges + 1]]
        stops = active[np.r_[edges, len(active) - 1]]
        if name in ROLE_NAMES:
            onsets = [r.onsets[Role(name)] for r in reps]
            offsets = [r.offsets[Role(name)] for r in reps]
        else:
            onsets = [r.extra_onsets[name] for r in reps]
            offsets = [r.extra_offsets[name] for r in reps]
        assert len(starts) >= len(reps)
        for on, off, s, e in zip(onsets, offsets, starts, stops, strict=False):
            assert s == sample_after(on, fs)  # the first sample that is not at rest
            assert abs(e - off * fs) <= 1  # the last one before rest


def test_continuous_set_has_no_rest_and_tonic_level() -> None:
    cfg = preset("ideal", continuous=True, tonic=0.1, seed=5, continuous_gap_s=(0.05, 0.2))
    rec = simulate(cfg, 30.0)
    reps = rec.truth.complete_reps
    gaps = [b.start_s - a.end_s for a, b in itertools.pairwise(reps)]
    assert min(gaps) >= 0.05 - 1e-9
    assert max(gaps) <= 0.2 + 1e-9
    # between reps the muscles are not silent but at ~10 % of the plateau RMS
    n = len(rec.data)
    between = np.zeros(n, dtype=bool)
    for a, b in itertools.pairwise(reps):
        between[sample_after(a.end_s, rec.info.fs) : sample_after(b.start_s, rec.info.fs) - 1] = (
            True
        )
    plateau = rec.truth.channel_params["glute_l"]["plateau_rms_uv"]
    tonic_rms = np.sqrt(np.mean(rec.data[between, 0] ** 2))
    assert tonic_rms == pytest.approx(0.1 * plateau, rel=0.25)


def test_lag_distribution_matches_config() -> None:
    cfg = SimConfig(
        p_glute_first=0.5,
        p_lumbar_first=0.3,
        glute_first_ms=(40.0, 150.0),
        lumbar_first_ms=(60.0, 120.0),
        rep_period_s=1.5,
        burst_s=0.5,
        seed=6,
    )
    sim = EmgSimulator(cfg)
    truth = sim.truth(round(900 * cfg.fs))  # the rep schedule needs no samples
    reps = truth.complete_reps
    assert len(reps) > 500
    lags = np.array([r.lag_ms for r in reps])
    orders = [r.order for r in reps]
    assert orders == [order_label(x) for x in lags]
    for label, p in (("glute_first", 0.5), ("lumbar_first", 0.3), ("simultaneous", 0.2)):
        assert orders.count(label) / len(reps) == pytest.approx(p, abs=0.07)
    assert np.all((lags[lags > 20] >= 40) & (lags[lags > 20] <= 150))
    assert np.all((lags[lags < -20] <= -60) & (lags[lags < -20] >= -120))
    assert np.all(np.abs(lags[np.abs(lags) < 20]) < 10)
    # left/right onset difference within a muscle: SD ~ sqrt(2) * 8 ms
    lr = [1000 * (r.onsets[Role.GLUTE_L] - r.onsets[Role.GLUTE_R]) for r in reps]
    assert 7 < np.std(lr) < 16
    assert all(set(r.side_lags_ms) == {"left", "right"} for r in reps)


def test_seed_reproducible_and_split_independent() -> None:
    cfg = SimConfig(seed=11, rail_uv=150.0, transient_rate_per_min=30.0)
    n = 3 * BLOCK + 123
    whole = EmgSimulator(cfg).generate(n)
    sim = EmgSimulator(cfg)
    parts = [sim.generate(k) for k in (1, 7, BLOCK - 8, BLOCK + 1, 500)]
    parts.append(sim.generate(n - sum(len(p) for p in parts)))
    assert np.array_equal(whole, np.vstack(parts))
    assert not np.array_equal(whole, EmgSimulator(SimConfig(seed=12)).generate(n))
    a, b = simulate(cfg, 5.0), simulate(cfg, 5.0)
    assert np.array_equal(a.data, b.data)
    assert a.truth.to_dict() == b.truth.to_dict()


@pytest.mark.parametrize("fs", [500.0, 1000.0, 2048.0])
def test_other_sample_rates(fs: float) -> None:
    rec = simulate(preset("ideal", snr_db=(20.0, 20.0), fs=fs, seed=8), 12.0)
    assert rec.info.fs == fs
    assert rec.data.shape == (round(12 * fs), 4)
    x = rec.data[plateau_mask(rec.truth, "glute_l", len(rec.data)), 0]
    f, p = signal.welch(x, fs, nperseg=round(fs / 8))
    assert 50 <= f[np.argmax(p)] <= 150
    # rep timing is drawn in seconds: the truth does not depend on the sampling rate
    ref = simulate(preset("ideal", snr_db=(20.0, 20.0), seed=8), 12.0).truth
    assert [r.onsets for r in rec.truth.reps] == [r.onsets for r in ref.reps]


def test_channel_layouts_and_counter() -> None:
    cfg = SimConfig(channels=("glute_l", "lumbar_l", "hamstring_l"), counter=True, seed=9)
    rec = simulate(cfg, 8.0)
    info = rec.info
    assert info.channel_names == ("glute_l", "lumbar_l", "hamstring_l", "counter")
    assert info.roles == {Role.GLUTE_L: 0, Role.LUMBAR_L: 1}
    assert info.units[-1] == "count"
    assert np.array_equal(rec.data[:, 3], np.arange(len(rec.data), dtype=float))
    rep = rec.truth.reps[0]
    assert set(rep.onsets) == {Role.GLUTE_L, Role.LUMBAR_L}
    assert set(rep.side_lags_ms) == {"left"}
    assert rep.lag_ms == pytest.approx(rep.side_lags_ms["left"])
    # the hamstring fires with the glute (within 3 SD of the side jitter)
    assert 0 <= rep.extra_onsets["hamstring_l"] - rep.onsets[Role.GLUTE_L] <= 0.025
    eight = SimConfig(channels=(*ROLE_NAMES, "a_l", "b_r", "c", "d"), fs=1000.0)
    assert EmgSimulator(eight).generate(100).shape == (100, 8)


def test_hum_and_ecg_where_configured() -> None:
    cfg = preset(
        "ideal", hum_hz=60.0, hum_uv=5.0, ecg_rel=4.0, heart_rate_bpm=(72.0, 72.0), seed=10
    )
    rec = simulate(cfg, 30.0)
    fs = rec.info.fs
    rest = rest_mask(rec.truth, len(rec.data))
    f, p = signal.welch(rec.data[rest, 0], fs, nperseg=2048)
    assert abs(f[np.argmax(p)] - 60) <= 1  # hum dominates a resting glute
    near = (np.abs(f - 180) > 3) & (np.abs(f - 180) < 30)
    assert p[np.argmin(np.abs(f - 180))] > 100 * p[near].max()  # and its 3rd harmonic
    # ECG only on lumbar channels: strong R waves, as large as the EMG peaks
    lumbar = rec.data[:, 2]
    plateau = rec.truth.channel_params["lumbar_l"]["plateau_rms_uv"]
    peaks, _ = signal.find_peaks(lumbar * rest, height=2.5 * plateau, distance=0.4 * fs)
    intervals = np.diff(peaks) / fs
    assert len(intervals) > 10
    # beat-to-beat intervals within a rest period (the longer ones span a rep)
    assert np.median(intervals[intervals < 1.2]) == pytest.approx(60 / 72, rel=0.05)
    assert rec.truth.channel_params["glute_l"]["ecg_r_uv"] == 0
    assert np.abs(rec.data[rest, 0]).max() <= 1.5 * 5.0 * (1 + 0.3)  # glute: hum only


def test_transients_where_the_truth_says() -> None:
    rec = simulate(preset("ideal", transient_rate_per_min=20.0, seed=19), 30.0)
    assert 5 <= len(rec.truth.transients) <= 20
    expected = rest_mask(rec.truth, len(rec.data))
    inside = np.zeros(len(rec.data), dtype=bool)
    for tr in rec.truth.transients:
        inside[tr["start"] : tr["start"] + tr["length"]] = True
        assert tr["kind"] in ("spike", "step")
    # at rest, the ideal signal is nonzero exactly where a transient is
    moving = np.any(rec.data != 0, axis=1)
    assert np.array_equal(moving & expected, inside & expected)
    assert np.abs(rec.data[inside & expected]).max() > 100


def test_saturation_spans_match_clipped_samples() -> None:
    cfg = SimConfig(rail_uv=180.0, seed=13)
    rec = simulate(cfg, 10.0)
    clipped = np.zeros_like(rec.data, dtype=bool)
    for name, start, length in rec.truth.saturation:
        c = rec.info.channel_names.index(name)
        clipped[start : start + length, c] = True
    assert clipped.any()
    assert np.array_equal(clipped, np.abs(rec.data) >= 180.0)
    assert np.abs(rec.data).max() == 180.0


# ----------------------------------------------------------------------------- device


def test_device_is_registered_and_validates() -> None:
    assert "simulator" in registered()
    dev = create("simulator", realtime=False, duration_s=0.1, fs=1000.0, preset="hard")
    assert dev.open().fs == 1000.0
    with pytest.raises(DeviceError, match="unknown simulator setting"):
        SimulatorDevice(bogus=1)
    with pytest.raises(DeviceError, match="sampling rate"):
        SimulatorDevice(fs=100.0)


def test_device_dropouts_are_start_jumps() -> None:
    cfg = SimConfig(counter=True, dropout_rate_per_min=20.0, seed=15)
    dev = SimulatorDevice(cfg, realtime=False, duration_s=30.0)
    info = dev.open()
    dev.start()
    chunks = []
    while (chunk := dev.read()) is not None:
        chunks.append(chunk)
    assert dev.read() is None
    truth = dev.truth()
    assert len(truth.dropouts) >= 4
    gaps = []
    for prev, nxt in itertools.pairwise(chunks):
        if nxt.start != prev.stop:
            gaps.append((prev.stop, nxt.start - prev.stop))
    assert gaps == list(truth.dropouts)
    for chunk in chunks:  # the counter proves every delivered index is the true one
        assert np.array_equal(chunk.data[:, -1], np.arange(chunk.start, chunk.stop))
        assert chunk.n_samples <= 40
    assert chunks[-1].stop == 30 * 2000
    # the device delivers exactly what simulate() keeps
    rec = simulate(cfg, 30.0)
    assert np.array_equal(np.vstack([c.data for c in chunks]), rec.data)
    assert info.channel_names[-1] == "counter"


def test_device_realtime_is_paced_by_the_clock() -> None:
    now = [100.0]
    dev = SimulatorDevice(SimConfig(seed=16), realtime=True, packet_ms=10.0, clock=lambda: now[0])
    dev.open()
    assert dev.read() is None  # not started
    dev.start()
    assert dev.read() is None  # nothing due yet
    pos = 0
    for _ in range(50):
        now[0] += 0.015
        chunk = dev.read()
        due = int((now[0] - 100.0) * 2000) // 20 * 20
        if chunk is None:
            assert pos == due
            continue
        assert chunk.start == pos
        assert chunk.n_samples % 20 == 0
        assert chunk.stop == due
        pos = chunk.stop
    assert pos == 1500
    dev.stop()
    now[0] += 1.0
    assert dev.read() is None


def test_markers_follow_the_truth() -> None:
    dev = SimulatorDevice(SimConfig(seed=17), realtime=False, duration_s=20.0, chunk_ms=50.0)
    dev.open()
    dev.start()
    markers = []
    while (chunk := dev.read()) is not None:
        drained = dev.drain_markers()
        assert all(m.index < chunk.stop for m in drained)  # only once due
        markers += drained
    truth = dev.truth()
    fs = truth.fs
    expected = set()
    for rep in truth.reps:
        expected.add((sample_after(rep.start_s, fs), f"rep:{rep.index}"))
        for role, t in rep.onsets.items():
            expected.add((sample_after(t, fs), f"onset:{role.value}"))
        for role, t in rep.offsets.items():
            if sample_after(t, fs) < truth.n_samples:
                expected.add((sample_after(t, fs), f"offset:{role.value}"))
    assert {(m.index, m.label) for m in markers} == expected
    assert [m.index for m in markers] == sorted(m.index for m in markers)


# ----------------------------------------------------------------------------- files and CLI


def test_csv_and_truth_files(tmp_path: Path) -> None:
    rec = simulate(SimConfig(dropout_rate_per_min=30.0, counter=True, seed=18), 10.0)
    write_csv(tmp_path / "x.csv", rec)
    write_truth(tmp_path / "x.json", rec)
    with open(tmp_path / "x.csv", encoding="utf-8") as fh:
        assert fh.readline().strip() == "time,glute_l,glute_r,lumbar_l,lumbar_r,counter"
    table = np.loadtxt(tmp_path / "x.csv", delimiter=",", skiprows=1)
    assert table.shape == (len(rec.data), 6)
    assert np.allclose(table[:, 1:], rec.data, atol=6e-5)
    index = np.round(table[:, 0] * 2000).astype(int)
    jumps = np.flatnonzero(np.diff(index) != 1)
    assert [(index[j] + 1, index[j + 1] - index[j] - 1) for j in jumps] == list(rec.truth.dropouts)
    doc = json.loads((tmp_path / "x.json").read_text())
    assert doc["schema"] == "fireorder.truth/1"
    assert doc["roles"] == {r: r for r in ROLE_NAMES}
    assert doc["dropouts"] == [{"start": s, "length": n} for s, n in rec.truth.dropouts]
    assert SimConfig.from_dict(doc["config"]) == rec.config
    first = doc["reps"][0]
    assert set(first["onsets"]) == set(ROLE_NAMES)
    assert first["order"] == order_label(first["lag_ms"])


def test_cli_writes_csv_and_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out, truth = tmp_path / "sim.csv", tmp_path / "sim.json"
    argv = ["simulate", "--duration", "8", "--fs", "1000", "--seed", "7", "--out", str(out)]
    argv += ["--truth", str(truth), "--preset", "hard", "--channels", "glute_l,lumbar_l"]
    argv += ["--counter", "--dropouts", "--dropout-rate", "20", "--glute-first", "0.9"]
    argv += ["--hum", "60", "--snr", "5", "10"]
    assert run_cli(argv, monkeypatch) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert str(out) in captured.out
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == "time,glute_l,lumbar_l,counter"
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    doc = json.loads(truth.read_text())
    cfg = doc["config"]
    assert (doc["fs"], cfg["seed"], cfg["hum_hz"], cfg["snr_db"]) == (1000.0, 7, 60.0, [5, 10])
    assert cfg["ecg_rel"] == PRESETS["hard"]["ecg_rel"]
    lost = sum(d["length"] for d in doc["dropouts"])
    assert len(table) == 8000 - lost
    assert np.array_equal(table[:, -1], np.round(table[:, 0] * 1000))
    # the config in the truth file reproduces the run
    rec = simulate(SimConfig.from_dict(cfg), 8.0)
    assert np.allclose(table[:, 1:], rec.data, atol=6e-5)


@pytest.mark.parametrize(
    "extra",
    [
        ["--snr", "30", "10"],
        ["--fs", "100"],
        ["--glute-first", "1.5"],
        ["--glute-first", "0.8", "--lumbar-first", "0.5"],
        ["--hum", "55"],
        ["--channels", "glute_l,glute_l"],
        ["--channels", "glute_l,counter"],
        ["--duration", "0"],
        ["--rise", "100", "20"],
        ["--preset", "nope"],
        ["--fs", "abc"],
    ],
)
def test_cli_bad_arguments(
    extra: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["simulate", "--duration", "1", "--out", str(tmp_path / "x.csv"), *extra]
    assert run_cli(argv, monkeypatch) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "error" in err
    assert not (tmp_path / "x.csv").exists()


def test_cli_unwritable_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--duration", "1", "--out", str(tmp_path / "missing" / "x.csv")]
    assert run_cli(argv, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fireorder: error:") and "does not exist" in err
    assert "\n" not in err
    argv = ["simulate", "--duration", "1", "--out", str(tmp_path)]
    assert run_cli(argv, monkeypatch) == 2
    assert "is a directory" in capsys.readouterr().err


def test_config_validation_messages() -> None:
    with pytest.raises(SimConfigError, match="probabilities exceed 1"):
        SimConfig(p_glute_first=0.7, p_lumbar_first=0.4)
    with pytest.raises(SimConfigError, match="unknown preset"):
        preset("medium")
    hard = preset("hard")
    assert hard.snr_db == (6.0, 14.0)
    assert hard.ecg_rel >= 3.5
    assert hard.transient_rate_per_min > 0
    assert preset("clean").snr_db == (14.0, 26.0)
