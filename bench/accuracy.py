"""Accuracy benchmark: onsets and firing order on simulated recordings with known truth.

Six sets of recordings from two independent generators, fixed seeds, at 1000/2000/2048 Hz in
turn:

* from the built-in simulator (:mod:`devices.simulation.model`: shaped noise times a raised-cosine
  activation, the generator fireorder was developed on):

  * **clean** -- preset ``clean`` (SNR 14-26 dB, rise 20-100 ms, no motion transients);
  * **hard** -- preset ``hard`` (SNR 6-14 dB, motion transients, ECG on the lumbar channels as
    large as the EMG peaks, more hum and wander);
  * **ecg** -- preset ``ecg`` (clean, the lumbar pair picking up an R wave of 4x the plateau
    RMS: placed high, near the spine), for the heartbeat gate (:mod:`dsp.ecg_gate`);
  * **slow** -- preset ``clean`` with slow rises (``rise_ms=(80, 350)``);

* from the motor-unit pool model (:mod:`bench.mupool`, after Fuglevand et al. 1993: units
  recruited one by one by a ramping excitation; the true onset is the first motor-unit
  discharge; rise 100-500 ms), which fireorder was not tuned on:

  * **mu-clean** -- preset ``clean`` (SNR 20-80 dB, files start at rest, no artefacts);
  * **mu-hard** -- preset ``hard`` (SNR 5-20 dB, files that start mid-burst or after only
    0.2-0.6 s, fatigue-like drift, mains hum, ECG on the lumbar channels).

On every file: fireorder's offline runner ``dsp.analysis.analyze`` (default settings, the same
causal pipeline as live use), an ablation with the previous onset estimator
(``DspSettings(onset_method="backdate")``; if that ever becomes the default, the ablation is
``"changepoint"``), one without the heartbeat gate on lumbar channels
(``DspSettings(ecg_gate_ratio=0)``), and the peers of :mod:`bench.peers` (offline,
non-causal). See
:mod:`bench.metrics` for the scoring rules, including fireorder's decision latency. The real
recordings of ``../shared/data`` are run through fireorder as a plausibility check
(:mod:`bench.realdata`).

Run ``python -m bench.accuracy [--quick]``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench import common, mupool, peers, realdata
from bench.metrics import (
    ORDER_MIN_LAG_MS,
    WINDOW_S,
    Detection,
    GroundTruth,
    RecordingScore,
    TrueRep,
    Verdict,
    aggregate,
    onset_breakdown,
    score_recording,
)
from devices.simulation.model import SimulatedRecording, preset, simulate
from dsp.analysis import Analysis, analyze
from dsp.contract import Role, StreamInfo
from dsp.settings import DspSettings, OnsetMethod

log = logging.getLogger(__name__)

SIMULATOR = "devices.simulation.model"
MUPOOL = "bench.mupool"


@dataclass(frozen=True)
class SetDef:
    """How the recordings of a benchmark set are made."""

    generator: str  # SIMULATOR or MUPOOL
    preset: str
    seed_base: int
    overrides: tuple[tuple[str, Any], ...] = ()
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator,
            "preset": self.preset,
            "overrides": dict(self.overrides),
            "seed_base": self.seed_base,
            "description": self.description,
        }


SET_DEFS: dict[str, SetDef] = {
    "clean": SetDef(SIMULATOR, "clean", 1000, (), "simulator, SNR 14-26 dB, rise 20-100 ms"),
    "hard": SetDef(
        SIMULATOR, "hard", 2000, (), "simulator, SNR 6-14 dB, transients, strong ECG, hum"
    ),
    "ecg": SetDef(
        SIMULATOR, "ecg", 6000, (), "simulator clean with the R wave at 4x the lumbar plateau RMS"
    ),
    "slow": SetDef(
        SIMULATOR,
        "clean",
        3000,
        (("rise_ms", (80.0, 350.0)),),
        "simulator clean with rise 80-350 ms",
    ),
    "mu-clean": SetDef(
        MUPOOL, "clean", 4000, (), "motor-unit pool, SNR 20-80 dB, rise 100-500 ms, rest first"
    ),
    "mu-hard": SetDef(
        MUPOOL,
        "hard",
        5000,
        (),
        "motor-unit pool, SNR 5-20 dB, mid-burst starts, drift, hum, ECG",
    ),
}
SETS: tuple[str, ...] = tuple(SET_DEFS)
RATES: tuple[float, ...] = (1000.0, 2000.0, 2048.0)
SEED_BASE = {name: d.seed_base for name, d in SET_DEFS.items()}
#: onsets in the last this many seconds of a file are not scored
END_MARGIN_S = 0.5

#: the ablation runs fireorder with the previous onset estimator ("backdate")
DEFAULT_ONSET = DspSettings().onset_method
ABLATION_ONSET: OnsetMethod = "backdate" if DEFAULT_ONSET != "backdate" else "changepoint"
ABLATION_SETTINGS = DspSettings(onset_method=ABLATION_ONSET)
FIREORDER = f"fireorder ({DEFAULT_ONSET}, default)"
FIREORDER_ABLATION = f"fireorder ({ABLATION_ONSET}, ablation)"
#: and without the heartbeat gate on lumbar channels (dsp.ecg_gate)
NO_GATE_SETTINGS = DspSettings(ecg_gate_ratio=0.0)
FIREORDER_NO_GATE = "fireorder (no ECG gate, ablation)"

#: targets for the default fireorder: metric, comparison (">=", "<=", or "abs<=" for |value|),
#: value. Sets without an entry have no targets.
TARGETS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "clean": (
        ("onset_recall", ">=", 0.98),
        ("onset_precision", ">=", 0.98),
        ("median_abs_err_ms", "<=", 15.0),
        ("lag_err_ms", "<=", 10.0),
        ("order_accuracy", ">=", 0.97),
        ("decision_p95_ms", "<=", 60.0),
    ),
    "hard": (
        ("rep_recall", ">=", 0.9),
        ("order_accuracy", ">=", 0.9),
        ("given_order_accuracy", ">=", 0.97),
        ("lag_err_ms", "<=", 20.0),
    ),
    "ecg": (
        ("onset_precision", ">=", 0.97),
        ("order_accuracy", ">=", 0.95),
        ("spurious_verdicts", "<=", 5.0),
    ),
    "mu-clean": (
        ("onset_recall", ">=", 0.98),
        ("onset_precision", ">=", 0.98),
        ("median_abs_err_ms", "<=", 15.0),
        ("bias_ms", "abs<=", 5.0),
    ),
}


def passes(value: float | None, op: str, target: float) -> bool:
    if value is None:
        return False
    if op == ">=":
        return value >= target
    if op == "<=":
        return value <= target
    if op == "abs<=":
        return abs(value) <= target
    raise ValueError(f"unknown comparison {op!r}")


def _op_text(op: str) -> str:
    return "|x| <=" if op == "abs<=" else op


@dataclass(frozen=True)
class Spec:
    """One simulated recording of a benchmark set."""

    set: str
    number: int
    fs: float
    seed: int
    duration_s: float

    @property
    def label(self) -> str:
        return f"{self.set}-{self.number:02d} ({self.fs:g} Hz, seed {self.seed})"


@dataclass(frozen=True)
class Config:
    recordings: int = 20
    duration_s: float = 40.0
    peers: bool = True
    ablation: bool = True
    sets: tuple[str, ...] = SETS
    real: bool = True  # also run the real recordings of ../shared/data

    @classmethod
    def quick(cls) -> Config:
        return cls(recordings=3, duration_s=30.0)


def specs(set_name: str, n: int, duration_s: float) -> list[Spec]:
    base = SEED_BASE[set_name]
    return [Spec(set_name, i, RATES[i % len(RATES)], base + i, duration_s) for i in range(n)]


# --------------------------------------------------------------------------------------
# Simulated recordings and their truth
# --------------------------------------------------------------------------------------

#: what either generator returns: ``.data`` (rows received), ``.index`` (their stream sample
#: indices), ``.info`` and ``.truth``
Recording = SimulatedRecording | mupool.MuRecording


def make_recording(spec: Spec) -> Recording:
    d = SET_DEFS[spec.set]
    overrides = {**dict(d.overrides), "fs": spec.fs, "seed": spec.seed}
    if d.generator == MUPOOL:
        return mupool.generate(mupool.preset(d.preset, **overrides), spec.duration_s)
    return simulate(preset(d.preset, **overrides), spec.duration_s)


def full_array(rec: Recording) -> NDArray[np.float64]:
    """Rows indexed by stream sample index; samples the source lost are NaN rows (gaps)."""
    n = rec.truth.n_samples
    if len(rec.index) == n:
        return rec.data
    out = np.full((n, rec.data.shape[1]), np.nan)
    out[rec.index] = rec.data
    return out


def truth_of(rec: Recording, label: str = "") -> GroundTruth:
    if isinstance(rec, mupool.MuRecording):
        return rec.truth.to_ground_truth(label, END_MARGIN_S)
    t = rec.truth
    fs = t.fs
    duration = t.n_samples / fs
    roles = dict(t.roles)
    name_role = {t.channels[i]: r for r, i in roles.items()}
    reps = tuple(
        TrueRep(r.index, dict(r.onsets), r.lag_ms, dict(r.rise_ms)) for r in t.reps if r.onsets
    )
    spans: dict[Role, list[tuple[float, float]]] = {}
    for r in t.reps:
        for role, on in r.onsets.items():
            spans.setdefault(role, []).append((on, r.offsets.get(role, on)))
    transients: dict[Role, list[float]] = {}
    for tr in t.transients:
        for ch in tr.get("channels", []):
            if ch in name_role:
                transients.setdefault(name_role[ch], []).append(float(tr["time_s"]))
    snr = {
        name_role[name]: float(p["snr_db"])
        for name, p in t.channel_params.items()
        if name in name_role and p.get("snr_db") is not None
    }
    return GroundTruth(
        fs=fs,
        duration_s=duration,
        reps=reps,
        score_until_s=duration - END_MARGIN_S,
        spans=spans,
        transients=transients,
        snr_db=snr,
        label=label,
    )


#: the shortest rest window the Hodges-Bui peer is given
MIN_REST_S = 0.3


def rest_window(truth: GroundTruth) -> tuple[int, int]:
    """Rest samples (what the Hodges-Bui peer is given), ``(start, stop)`` indices.

    If the file starts at rest for long enough: from 0.1 s to 50 ms before the first true
    onset (what the simulator's sets always had). A file may instead start mid-burst or only
    0.2-0.6 s before its first onset (the ``mu-hard`` set); then the peer gets the *earliest
    interval the truth says is at rest on every channel* -- from 0.3 s after a burst's end
    (the decay) to 50 ms before the next onset -- that is at least 0.3 s long, all of it.
    If there is none, the window of the first rule is returned (it then holds activity).
    """
    fs = truth.fs
    starts = [t for rep in truth.reps for t in rep.onsets.values()]
    starts += [on for spans in truth.spans.values() for on, _ in spans]
    first = min(starts, default=1.0)
    a = round(0.1 * fs)
    if first - 0.05 - 0.1 >= MIN_REST_S:
        return a, round((first - 0.05) * fs)
    busy = sorted((on - 0.05, off + 0.3) for spans in truth.spans.values() for on, off in spans)
    t = 0.1
    for on, off in busy:
        if on - t >= MIN_REST_S:
            return round(t * fs), round(on * fs)
        t = max(t, off)
    if truth.score_until_s - t >= MIN_REST_S:
        return round(t * fs), round(truth.score_until_s * fs)
    return a, max(a + round(0.2 * fs), round((first - 0.05) * fs))


# --------------------------------------------------------------------------------------
# Detectors
# --------------------------------------------------------------------------------------


def detection_of(analysis: Analysis) -> Detection:
    """fireorder's onsets and rep verdicts, in seconds."""
    info = analysis.info
    fs = info.fs
    onsets = {
        role: [i / fs for i in analysis.onsets.get(ch, [])] for role, ch in info.roles.items()
    }
    verdicts = [
        Verdict(
            onsets={r: (None if i is None else i / fs) for r, i in rep.onsets.items()},
            lag_ms=rep.lag_ms,
            order=rep.order,
            # a re-judged rep was decided again after the fact: no live decision to time; a
            # revised one was told (its final record) when it ended
            decided_s=None
            if rep.rejudged
            else (rep.end if rep.cued is not None and rep.end is not None else rep.decided_at)
            / fs,
            lag_ci_ms=rep.lag_ci_ms,
        )
        for rep in analysis.reps
    ]
    return Detection(onsets=onsets, verdicts=verdicts)


def run_fireorder(
    data: NDArray[np.float64], info: StreamInfo, settings: DspSettings | None = None
) -> Detection:
    return detection_of(analyze(data, info, settings or DspSettings()))


def run_peer(
    detect: Callable[[NDArray[np.float64], float, tuple[int, int]], NDArray[np.int64]],
    rec: Recording,
    rest: tuple[int, int],
) -> Detection:
    """Run a per-channel peer detector on every role channel of ``rec``."""
    fs = rec.info.fs
    onsets: dict[Role, list[float]] = {}
    errors: list[str] = []
    for role, ch in rec.info.roles.items():
        try:
            rows = detect(np.ascontiguousarray(rec.data[:, ch]), fs, rest)
        except Exception as exc:  # a peer failing on a file scores as finding nothing
            log.warning("peer failed on channel %s: %s: %s", role.value, type(exc).__name__, exc)
            errors.append(f"{role.value}: {type(exc).__name__}: {exc}")
            rows = np.empty(0, dtype=np.int64)
        onsets[role] = [float(rec.index[r]) / fs for r in rows if 0 <= r < len(rec.index)]
    return Detection(onsets=onsets, error="; ".join(errors) or None)


@dataclass
class SetResult:
    scores: dict[str, list[RecordingScore]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, score: RecordingScore, seconds: float) -> None:
        self.scores.setdefault(name, []).append(score)
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


def detectors(config: Config) -> tuple[list[tuple[str, str]], dict[str, str | None]]:
    """(name, description) of every detector to run, and peer availability."""
    names = [(FIREORDER, "dsp.analysis.analyze, DspSettings() defaults (causal)")]
    if config.ablation:
        names.append(
            (FIREORDER_ABLATION, f'analyze with DspSettings(onset_method="{ABLATION_ONSET}")')
        )
        names.append((FIREORDER_NO_GATE, "analyze with DspSettings(ecg_gate_ratio=0)"))
    avail: dict[str, str | None] = {}
    if config.peers:
        avail = peers.available()
        for p in peers.PEERS:
            if avail.get(p.package) is None:
                names.append((p.name, p.description))
            else:
                log.warning("peer %s unavailable: %s", p.name, avail[p.package])
    return names, avail


def run_set(set_name: str, config: Config, names: Sequence[str]) -> SetResult:
    peer_by_name = {p.name: p for p in peers.PEERS}
    result = SetResult()
    for spec in specs(set_name, config.recordings, config.duration_s):
        t0 = time.perf_counter()
        rec = make_recording(spec)
        truth = truth_of(rec, spec.label)
        data = full_array(rec)
        rest = rest_window(truth)
        for name in names:
            start = time.perf_counter()
            if name == FIREORDER:
                det = run_fireorder(data, rec.info)
            elif name == FIREORDER_ABLATION:
                det = run_fireorder(data, rec.info, ABLATION_SETTINGS)
            elif name == FIREORDER_NO_GATE:
                det = run_fireorder(data, rec.info, NO_GATE_SETTINGS)
            else:
                det = run_peer(peer_by_name[name].detect, rec, rest)
            result.add(name, score_recording(truth, det), time.perf_counter() - start)
        log.info(
            "%s: %d reps, %.1f s",
            spec.label,
            sum(truth.scored(r) for r in truth.reps),
            time.perf_counter() - t0,
        )
    return result


# --------------------------------------------------------------------------------------
# Diagnosis of fireorder's errors
# --------------------------------------------------------------------------------------


def _snr_band(snr: float | None) -> str:
    if snr is None:
        return "n/a"
    for lo, hi in ((0, 10), (10, 14), (14, 20), (20, 30), (30, 50), (50, 99)):
        if lo <= snr < hi:
            return f"{lo:02d}-{hi} dB"
    return "other"


def _rise_band(rise: float | None) -> str:
    if rise is None:
        return "n/a"
    for lo, hi in ((20, 50), (50, 100), (100, 200), (200, 350), (350, 501)):
        if lo <= rise < hi:
            return f"{lo:03d}-{min(hi, 500)} ms"
    return "other"


def order_errors(scores: Sequence[RecordingScore]) -> list[dict[str, Any]]:
    """Reps with |true lag| >= 40 ms whose order came out wrong, for inspection."""
    out = []
    for s in scores:
        for r in s.reps:
            if r.true_lag_ms is None or abs(r.true_lag_ms) < ORDER_MIN_LAG_MS:
                continue
            if not r.order_correct:
                out.append(
                    {
                        "recording": s.label,
                        "rep": r.index,
                        "true_lag_ms": round(r.true_lag_ms, 1),
                        "found": r.found,
                        "onset_lag_ms": None
                        if r.onset_lag_ms is None
                        else round(r.onset_lag_ms, 1),
                        "verdict_lag_ms": r.verdict_lag_ms,
                        "verdict": r.verdict_order,
                    }
                )
    return out


def diagnose(scores: Sequence[RecordingScore]) -> dict[str, Any]:
    by_fs: dict[str, dict[str, Any]] = {}
    for fs in sorted({s.fs for s in scores}):
        by_fs[f"{fs:g} Hz"] = aggregate([s for s in scores if s.fs == fs])
    return {
        "order_errors": order_errors(scores),
        "glute": aggregate(scores, lambda r: r.is_glute),
        "lumbar": aggregate(scores, lambda r: r.is_lumbar),
        "by_fs": by_fs,
        "by_snr": onset_breakdown(scores, lambda o: _snr_band(o.snr_db)),
        "by_rise": onset_breakdown(scores, lambda o: _rise_band(o.rise_ms)),
    }


# --------------------------------------------------------------------------------------
# Runner and report
# --------------------------------------------------------------------------------------


def run(config: Config) -> dict[str, Any]:
    names, avail = detectors(config)
    out: dict[str, Any] = {
        "config": {
            "recordings_per_set": config.recordings,
            "duration_s": config.duration_s,
            "rates_hz": list(RATES),
            "seeds": {s: [SEED_BASE[s], SEED_BASE[s] + config.recordings - 1] for s in config.sets},
            "match_window_ms": WINDOW_S * 1000,
            "order_min_true_lag_ms": ORDER_MIN_LAG_MS,
            "end_margin_s": END_MARGIN_S,
            "generators": {name: SET_DEFS[name].to_dict() for name in config.sets},
        },
        "code": common.code_version(),
        "dsp_settings": DspSettings().to_dict(),
        "detectors": dict(names),
        "peer_availability": avail,
        "versions": {
            "neurokit2": common.package_version("neurokit2"),
            "biosppy": common.package_version("biosppy"),
        },
        "sets": {},
    }
    detector_names = [n for n, _ in names]
    if config.peers and avail.get("neurokit2") is None:
        rec = make_recording(specs("clean", 1, config.duration_s)[0])
        check = peers.check_nk_fast_path(np.ascontiguousarray(rec.data[:, 0]), rec.info.fs)
        out["neurokit2_fast_path_equals_emg_process"] = check
        if not all(check.values()):
            log.error("NeuroKit2 fast path differs from emg_process: %s", check)
    for set_name in config.sets:
        log.info("set %s: %d recordings x %g s", set_name, config.recordings, config.duration_s)
        res = run_set(set_name, config, detector_names)
        set_out: dict[str, Any] = {
            "generator": SET_DEFS[set_name].to_dict(),
            "metrics": {},
            "seconds": res.seconds,
        }
        for name in detector_names:
            set_out["metrics"][name] = aggregate(res.scores[name])
        set_out["targets"] = check_targets(set_name, set_out["metrics"][FIREORDER])
        set_out["diagnosis"] = {
            name: diagnose(res.scores[name])
            for name in (FIREORDER, FIREORDER_ABLATION)
            if name in res.scores
        }
        set_out["per_recording"] = {
            name: [{"label": s.label, **aggregate([s])} for s in res.scores[name]]
            for name in (FIREORDER,)
        }
        out["sets"][set_name] = set_out
    out["biosppy_peakutils_stub"] = peers.peakutils_stubbed()
    out["real"] = realdata.run() if config.real else {"skipped": "not requested", "data_dir": ""}
    return out


def check_targets(set_name: str, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for key, op, value in TARGETS.get(set_name, ()):
        got = metrics.get(key)
        ok = passes(got, op, value)
        checks.append({"metric": key, "op": op, "target": value, "value": got, "pass": ok})
    return checks


_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("onset_recall", "onset recall", 3),
    ("onset_precision", "precision", 3),
    ("median_abs_err_ms", "median abs err (ms)", 1),
    ("p95_abs_err_ms", "p95 abs err (ms)", 1),
    ("bias_ms", "bias (ms)", 1),
    ("rep_recall", "rep recall", 3),
    ("lag_err_ms", "lag err (ms)", 1),
    ("order_accuracy", "order acc.", 3),
    ("undetermined_rate", "undetermined", 3),
    ("given_order_accuracy", "acc. of verdicts given", 3),
    ("lag_ci_coverage", "lag CI coverage", 2),
    ("decision_p50_ms", "decided p50 (ms)", 0),
    ("decision_p95_ms", "decided p95 (ms)", 0),
)


def _cell(set_name: str, key: str, value: float | None, digits: int, mark: bool) -> str:
    text = common.fmt(value, digits)
    if not mark:
        return text
    for k, op, target in TARGETS.get(set_name, ()):
        if k == key:
            ok = passes(value, op, target)
            return f"{text} ✓" if ok else f"{text} ✗ (target {_op_text(op)} {target:g})"
    return text


def metrics_table(set_name: str, metrics: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, m in metrics.items():
        mark = name in (FIREORDER, FIREORDER_ABLATION, FIREORDER_NO_GATE)
        rows.append([name] + [_cell(set_name, k, m.get(k), d, mark) for k, _, d in _COLUMNS])
    return common.md_table(["detector"] + [title for _, title, _ in _COLUMNS], rows)


def overview_table(results: dict[str, Any]) -> str:
    """fireorder (default and the ablations) on every set, side by side."""
    rows = []
    for set_name, set_out in results["sets"].items():
        for name, label in (
            (FIREORDER, "default"),
            (FIREORDER_ABLATION, "ablation"),
            (FIREORDER_NO_GATE, "no ECG gate"),
        ):
            m = set_out["metrics"].get(name)
            if m is None:
                continue
            rows.append(
                [set_name, label] + [_cell(set_name, k, m.get(k), d, True) for k, _, d in _COLUMNS]
            )
    return common.md_table(["set", "fireorder"] + [title for _, title, _ in _COLUMNS], rows)


def _fa_text(m: dict[str, Any]) -> str:
    kinds = m.get("false_alarms_by_kind") or {}
    if not kinds:
        return "none"
    return ", ".join(f"{n} {k}" for k, n in kinds.items())


def diagnosis_md(set_name: str, set_out: dict[str, Any]) -> str:
    m = set_out["metrics"][FIREORDER]
    d = set_out["diagnosis"][FIREORDER]
    lines = [f"fireorder (default) on **{set_name}**, where the errors are:", ""]
    rows = []
    for label, part in (("glute", d["glute"]), ("lumbar", d["lumbar"])):
        rows.append(
            [
                label,
                common.fmt(part["onset_recall"], 3),
                common.fmt(part["onset_precision"], 3),
                common.fmt(part["median_abs_err_ms"]),
                common.fmt(part["bias_ms"]),
                str(part["n_detected"] - part["n_matched"]),
            ]
        )
    for label, part in d["by_fs"].items():
        rows.append(
            [
                label,
                common.fmt(part["onset_recall"], 3),
                common.fmt(part["onset_precision"], 3),
                common.fmt(part["median_abs_err_ms"]),
                common.fmt(part["bias_ms"]),
                str(part["n_detected"] - part["n_matched"]),
            ]
        )
    lines.append(
        common.md_table(
            ["subset", "recall", "precision", "median abs err (ms)", "bias (ms)", "false alarms"],
            rows,
        )
    )
    lines.append("")
    lines.append(f"- false alarms: {_fa_text(m)}")

    def breakdown(part: dict[str, dict[str, Any]]) -> str:
        return "; ".join(
            f"{k}: recall {common.fmt(v['recall'], 3)}, "
            f"median abs err {common.fmt(v['median_abs_err_ms'])} ms, "
            f"bias {common.fmt(v['bias_ms'])} ms (n={v['n_true']})"
            for k, v in part.items()
        )

    lines.append(f"- by channel SNR: {breakdown(d['by_snr'])}")
    lines.append(f"- by true rise time: {breakdown(d['by_rise'])}")
    verdicts = ", ".join(f"{n} {k}" for k, n in (m.get("verdicts_on_ordered_reps") or {}).items())
    lines.append(
        f"- verdicts on the {m['n_order']} reps with |true lag| >= {ORDER_MIN_LAG_MS:g} ms: "
        f"{verdicts}; verdicts not matching any true rep: {m.get('spurious_verdicts', 0)}"
    )
    lines.append(
        f"- lag: median signed error {common.fmt(m.get('lag_bias_ms'))} ms (+ = glute-first "
        f"lag overestimated), p95 |error| {common.fmt(m.get('lag_err_p95_ms'))} ms; from "
        f"fireorder's matched onsets instead of its verdicts: "
        f"{common.fmt(m.get('onset_lag_err_ms'))} ms"
    )
    errs = d.get("order_errors") or []
    if errs:
        shown = "; ".join(
            f"{e['recording']} rep {e['rep']}: true {e['true_lag_ms']:g} ms, "
            f"verdict {e['verdict'] or 'none'} ({common.fmt(e['verdict_lag_ms'])} ms)"
            for e in errs[:6]
        )
        more = f" (+{len(errs) - 6} more in the JSON)" if len(errs) > 6 else ""
        lines.append(f"- wrong orders: {shown}{more}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    seeds = ", ".join(f"{k} {a}-{b}" for k, (a, b) in cfg["seeds"].items())
    st = results.get("dsp_settings", {})
    parts = [
        "## Accuracy on simulated recordings",
        "",
        f"{cfg['recordings_per_set']} recordings per set, {cfg['duration_s']:g} s each, at "
        f"{'/'.join(f'{r:g}' for r in cfg['rates_hz'])} Hz in turn, fixed seeds "
        f"({seeds}). Onsets matched to the truth per "
        f"channel, greedy nearest within ±{cfg['match_window_ms']:g} ms, one to one. Order "
        f"accuracy on reps with |true lag| ≥ {cfg['order_min_true_lag_ms']:g} ms; fireorder's "
        "order and lag are its rep verdicts (simultaneous/undetermined count as wrong), the "
        "peers' come from their matched onsets. ✓/✗ mark fireorder's targets. The peers are "
        "offline and non-causal (zero-phase filters, whole-file statistics); fireorder is causal. "
        "Decided p50/p95: when fireorder's verdict (other than undetermined) was decided, after "
        "the rep's true earliest lumbar onset.",
        "",
        "Generators: `devices.simulation.model` (shaped noise times a raised-cosine activation; "
        "the "
        "truth onset is where the activation starts) and `bench.mupool` (a motor-unit pool "
        "after Fuglevand et al. 1993; the truth onset is the first motor-unit discharge, "
        "which comes from the smallest unit and is usually below the noise floor).",
        "",
        f"fireorder at {common.code_version_text(results.get('code', {}))}, default settings "
        f"(detector {st.get('detector')}, onset method {st.get('onset_method')}, "
        f"k_on {st.get('k_on')}, min_on {st.get('min_on_ms')} ms, "
        f"baseline blocks {st.get('baseline_block_s')} s).",
        "",
        overview_table(results),
        "",
    ]
    for set_name, set_out in results["sets"].items():
        n_true = set_out["metrics"][FIREORDER]["n_true_onsets"]
        n_reps = set_out["metrics"][FIREORDER]["n_reps"]
        gen = set_out.get("generator") or {}
        parts += [
            f"### {set_name} ({n_true} true onsets, {n_reps} reps)",
            "",
            f"`{gen.get('generator')}` preset `{gen.get('preset')}`"
            + (f" with {gen['overrides']}" if gen.get("overrides") else "")
            + f": {gen.get('description', '')}.",
            "",
            metrics_table(set_name, set_out["metrics"]),
            "",
            diagnosis_md(set_name, set_out),
            "",
        ]
    check = results.get("neurokit2_fast_path_equals_emg_process")
    notes = ["Peers as run:"]
    notes += [f"- {name}: {desc}" for name, desc in results["detectors"].items()]
    if check is not None:
        notes.append(f"- NeuroKit2 fast path equals `emg_process` onsets: {check}")
    if results.get("biosppy_peakutils_stub"):
        notes.append(
            "- biosppy 2.2.4 imports `peakutils` without declaring it; an empty stand-in "
            "module was used (EMG functions do not call it)."
        )
    unavailable = {k: v for k, v in results.get("peer_availability", {}).items() if v}
    for k, v in unavailable.items():
        notes.append(f"- {k} not run: {v}")
    parts += ["\n".join(notes), ""]
    parts.append(realdata.markdown(results["real"]))
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse_args("fireorder accuracy benchmark", argv)
    common.setup_logging(args.verbose)
    config = Config.quick() if args.quick else Config()
    t0 = time.perf_counter()
    results = run(config)
    results["seconds"] = time.perf_counter() - t0
    results["machine"] = common.machine()
    out = common.out_dir(args.quick)
    common.write_json(out / "accuracy.json", results)
    text = markdown(results)
    common.write_text(out / "accuracy.md", text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    main()
