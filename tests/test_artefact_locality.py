"""Artefacts stay local: one changes at most the rep it falls into, never a rep far from it.

A spike, an electrode pop, a dropout, a clipped run or a motion transient is injected at a
seeded random time into a copy of a clean simulated recording, on a glute or a lumbar channel,
with both sides or one side mapped. Against the run on the clean copy:

* the number of reps is unchanged (an artefact at rest makes no rep);
* every rep whose span (start - 0.5 s .. end + 0.5 s) does not contain the artefact has the
  clean run's verdict, lag and onsets -- all of them, so a bug that spoils every later rep (one
  30 mV glute sample making all later reps lumbar-first) fails;
* the rep the artefact falls into is unchanged, or undetermined with a reason naming it, or
  (decided before the artefact) keeps its verdict with the onsets that fell into it unknown.

(A pop's artefact is its step and three time constants of its decay.)

``test_locality_offline`` applies these rules to ``dsp.analysis.analyze`` as it is used (2 s
chunks, the pipeline's own scanner, the baseline estimated from the data). That estimate has a
memory of a minute: the samples an artefact makes unusable change its block, so later reps may
keep their verdict with onsets moved by up to 10 ms, or within their own interval.
``test_locality_live`` runs the pipeline the way a live session does (40-sample chunks) with a
rest baseline calibrated once and held: that isolates the artefact handling from the baseline
estimate, and onsets must not move (but for the filters' ringing just after a big transient).
Scanner tests: each kind is found where it is,
nothing is flagged on simulated data but true motion, clip detection survives a huge spike, the
rails forget, and the spans do not depend on how the stream is chunked.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest

from devices.simulation.model import preset, simulate
from dsp.analysis import analyze
from dsp.artefacts import ArtefactScanner, merge_spans
from dsp.contract import Chunk, Role, StreamInfo
from dsp.pipeline import Pipeline
from dsp.reps import ARTEFACT_REASONS, UNDETERMINED, RepEnded, RepResult
from dsp.settings import DspSettings

FS = 2000.0
GLUTE, LUMBAR = 0, 2  # glute_l, lumbar_l in the simulator's channel order
SEEDS = (11, 12)
MAPPINGS = ("both", "one side")
KINDS = ("spike", "pop", "dropout", "clip", "motion")
#: the reason an undetermined verdict must give for each injected artefact
REASON = {
    "spike": ARTEFACT_REASONS["spike"],
    "pop": ARTEFACT_REASONS["pop"],
    "dropout": ARTEFACT_REASONS["gap"],
    "clip": ARTEFACT_REASONS["clip"],
    "motion": ARTEFACT_REASONS["motion"],
}
PAD_S = 0.5


# -- recordings and runs --------------------------------------------------------------------
@cache
def recording(seed: int, duration_s: float) -> tuple[np.ndarray, StreamInfo]:
    rec = simulate(preset("clean", fs=FS, seed=seed), duration_s)
    data = np.array(rec.data)
    data.flags.writeable = False
    return data, rec.info


def mapped(info: StreamInfo, mapping: str) -> StreamInfo:
    if mapping == "both":
        return info
    return StreamInfo(info.fs, info.channel_names, {Role.GLUTE_L: GLUTE, Role.LUMBAR_L: LUMBAR})


def run_offline(data: np.ndarray, info: StreamInfo) -> list[RepResult]:
    return analyze(data, info, DspSettings()).reps


LIVE_SETTINGS = DspSettings(baseline_adapt_tau_s=1e12)  # calibrated once, then held


def live_pipeline(info: StreamInfo, settings: DspSettings = LIVE_SETTINGS) -> Pipeline:
    """The pipeline with its artefact scanner reporting transients (spike, pop, motion)."""
    pipe = Pipeline(info, settings, display=False)
    a = pipe.artefacts
    pipe.artefacts = ArtefactScanner(
        a.n_channels, a.flat_len, a.clip_len, a.warmup, fs=info.fs, transients=True
    )
    return pipe


def run_live(data: np.ndarray, info: StreamInfo) -> list[RepResult]:
    pipe = live_pipeline(info)
    pipe.calibrate_rest(data[: round(0.9 * FS)])  # the simulator starts with 1 s of rest
    events: list[Any] = []
    for i in range(0, len(data), 40):
        events += pipe.process(Chunk(data[i : i + 40], i)).events
    events += pipe.finish()
    final = {e.index: e.result for e in events if isinstance(e, RepEnded)}
    return [final.get(e.index, e) for e in events if isinstance(e, RepResult)]


Runner = Callable[[np.ndarray, StreamInfo], list[RepResult]]
_clean_runs: dict[tuple[str, int, float, str], list[RepResult]] = {}


def clean_run(runner: Runner, seed: int, duration_s: float, mapping: str) -> list[RepResult]:
    key = (runner.__name__, seed, duration_s, mapping)
    if key not in _clean_runs:
        data, info = recording(seed, duration_s)
        _clean_runs[key] = runner(data, mapped(info, mapping))
    return _clean_runs[key]


# -- artefacts ------------------------------------------------------------------------------
def inject(
    data: np.ndarray, kind: str, channel: int, rng: np.random.Generator, duration_s: float
) -> tuple[np.ndarray, tuple[int, int], str]:
    """A copy of ``data`` with one artefact; its sample interval and a description."""
    x = np.array(data)
    i = round(rng.uniform(3.0, duration_s - 5.0) * FS)
    sign = float(rng.choice([-1.0, 1.0]))
    if kind == "spike":  # one sample, 3-30 mV
        amp = sign * rng.uniform(3000.0, 30000.0)
        x[i, channel] += amp
        return x, (i, i + 1), f"spike {amp:+.0f} uV at {i / FS:.3f} s"
    if kind == "pop":  # a step that decays back slowly
        amp, tau = sign * rng.uniform(500.0, 5000.0), rng.uniform(0.1, 2.0)
        x[i:, channel] += amp * np.exp(-np.arange(len(x) - i) / FS / tau)
        return (
            x,
            (i, i + round(3 * tau * FS)),
            f"pop {amp:+.0f} uV, tau {tau:.2f} s at {i / FS:.3f} s",
        )
    if kind == "dropout":  # NaN rows: the pipeline makes them a gap
        n = round(rng.uniform(0.05, 0.5) * FS)
        x[i : i + n] = np.nan
        return x, (i, i + n), f"dropout {n / FS:.3f} s at {i / FS:.3f} s"
    if kind == "clip":  # pinned at a rail well beyond the signal
        n = round(rng.uniform(0.02, 0.2) * FS)
        x[i : i + n, channel] = sign * max(1.5 * float(np.abs(x[:, channel]).max()), 2000.0)
        return x, (i, i + n), f"clip {n / FS:.3f} s at {sign:+.0f} rail at {i / FS:.3f} s"
    if kind == "motion":  # the simulator's motion transient: a biphasic low-frequency wave
        amp, width = sign * rng.uniform(300.0, 1000.0), rng.uniform(0.01, 0.04)
        u = (np.arange(round(6 * width * FS)) / FS - 3 * width) / width
        wave = -u * np.exp(0.5 * (1 - u * u)) * amp
        x[i : i + len(wave), channel] += wave
        return (
            x,
            (i, i + len(wave)),
            f"motion {amp:+.0f} uV, {width * 1e3:.0f} ms at {i / FS:.3f} s",
        )
    raise ValueError(kind)


def locality_problems(
    ref: list[RepResult],
    new: list[RepResult],
    artefact: tuple[int, int],
    reason: str,
    ringing_s: float = 0.0,
    drift: int = 0,
    far_drift: int = 0,
) -> list[str]:
    """What breaks the rules of the module docstring. ``ringing_s`` widens a rep's span
    before its start and ``drift`` lets the onsets of a rep within it move by that many
    samples, verdict unchanged (the filters' ringing after a big transient, see
    test_locality_live)."""
    if len(new) != len(ref):
        return [f"{len(ref)} reps became {len(new)}"]
    a, b = artefact
    pad, ring = round(PAD_S * FS), round(ringing_s * FS)
    problems = []
    for r0, r1 in zip(ref, new, strict=True):
        if (r0.order, r0.lag_ms, r0.onsets) == (r1.order, r1.lag_ms, r1.onsets):
            continue
        end = r0.end if r0.end is not None else r0.start
        near = r0.start - pad - ring < b and a < end + pad
        if near and r1.order == UNDETERMINED and r1.reason == reason:
            continue
        if near and r1.order == r0.order and r1.decided_at == r0.decided_at:
            # decided before the artefact (a verdict is never taken back); an onset that
            # fell into it is unknown in the final record, and so is the lag
            lost = [r for r, v in r1.onsets.items() if v is None and r0.onsets.get(r) is not None]
            kept = all(r1.onsets[r] == v for r, v in r0.onsets.items() if r not in lost)
            if lost and kept and r1.lag_ms is None and all(
                a <= r0.onsets[r] < b + round(0.5 * FS) for r in lost  # type: ignore[operator]
            ):
                continue
        allowed = drift if near else far_drift
        if allowed and r1.order == r0.order and r0.onsets.keys() == r1.onsets.keys():
            # far away an onset may move within its own interval (the fit is as unsure)
            slack = {
                r: max(allowed, 0 if near else hi - lo) for r, (lo, hi) in r0.onset_ci.items()
            }
            moved = [
                abs(v1 - v0) - slack.get(r, allowed)
                for r, v0 in r0.onsets.items()
                if v0 is not None and (v1 := r1.onsets[r]) is not None
            ]
            same_known = all((v is None) == (r1.onsets[r] is None) for r, v in r0.onsets.items())
            if same_known and max(moved, default=0) <= 0:
                continue
        onsets = {r.value: (v0, r1.onsets.get(r)) for r, v0 in r0.onsets.items()}
        problems.append(
            f"{'near' if near else 'far'} rep {r0.index} at {r0.start / FS:.2f}-{end / FS:.2f} s:"
            f" {r0.order} {r0.lag_ms} -> {r1.order} {r1.lag_ms} {r1.reason!r}; onsets {onsets}"
        )
    return problems


def trials(kind: str, where: int, mapping: str, n: int, duration_s: float):
    """``n`` seeded trials per clean seed: (seed, artefact data, interval, description)."""
    for seed in SEEDS:
        data, _ = recording(seed, duration_s)
        rng = np.random.default_rng(zlib.crc32(f"{kind}/{where}/{mapping}/{seed}".encode()))
        for _ in range(n):
            yield seed, *inject(data, kind, where, rng, duration_s)


def check_all(
    runner: Runner,
    kind: str,
    n: int,
    duration_s: float,
    ringing_s: float = 0.0,
    drift: int = 0,
    fail_fast: bool = False,
    far_drift: int = 0,
) -> None:
    failures = []
    for where in (GLUTE, LUMBAR):
        for mapping in MAPPINGS:
            for seed, x, interval, desc in trials(kind, where, mapping, n, duration_s):
                info = mapped(recording(seed, duration_s)[1], mapping)
                ref = clean_run(runner, seed, duration_s, mapping)
                problems = locality_problems(
                    ref, runner(x, info), interval, REASON[kind], ringing_s, drift, far_drift
                )
                if problems:
                    channel = "glute" if where == GLUTE else "lumbar"
                    failures.append(f"{desc} on {channel}, {mapping}, seed {seed}: {problems}")
                    assert not fail_fast, failures[0]
    assert not failures, "\n".join(failures)


# -- locality, offline analysis as used -----------------------------------------------------
#: The auto baseline is re-estimated from the quietest half-second blocks of the last minute;
#: the samples an artefact makes unusable change its block's mean or drop the block, so for up
#: to a minute (the estimate's stated memory) the thresholds of later reps move a little and
#: their onsets by a few milliseconds -- never their verdicts. Offline, far reps may move by
#: this much with the same verdict.
BASELINE_DRIFT = round(0.010 * FS)
OFFLINE_XFAIL: dict[str, str] = {}


def _cases(xfail: dict[str, str]) -> list[Any]:
    return [
        pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=xfail[k])) if k in xfail else k
        for k in KINDS
    ]


@pytest.mark.parametrize("kind", _cases(OFFLINE_XFAIL))
def test_locality_offline(kind: str) -> None:
    """The rules of the module docstring for dsp.analysis.analyze as used."""
    check_all(
        run_offline,
        kind,
        n=1,
        duration_s=120.0,
        ringing_s=RINGING_S[kind],
        drift=BASELINE_DRIFT,
        far_drift=BASELINE_DRIFT,
    )


# -- locality, live chunks, held baseline ---------------------------------------------------
LIVE_XFAIL: dict[str, str] = {}
#: A spike or a step of 5-30 mV makes the 50 Hz notch ring for up to ~0.9 s (measured): its
#: span covers the part above the onset threshold, so a rep starting that soon after it may be
#: undetermined, and the faint rest may still move an onset by a sample -- never the verdict.
RINGING_S = {"spike": 1.0, "pop": 1.0, "clip": 1.0, "dropout": 0.0, "motion": 0.0}


@pytest.mark.parametrize("kind", _cases(LIVE_XFAIL))
def test_locality_live(kind: str) -> None:
    """The rules for the live pipeline (40-sample chunks, transients reported) with its rest
    baseline calibrated once and held; within ``RINGING_S`` after a big transient a rep may
    also keep its verdict with onsets moved by up to 2 samples (1 ms)."""
    check_all(
        run_live,
        kind,
        n=1,
        duration_s=40.0,
        ringing_s=RINGING_S[kind],
        drift=2,
        fail_fast=kind in LIVE_XFAIL,
    )


# -- the scanner itself ---------------------------------------------------------------------
def scanner(n_channels: int = 4, fs: float = FS, transients: bool = True) -> ArtefactScanner:
    return ArtefactScanner(
        n_channels, round(0.05 * fs), 3, warmup=round(fs), fs=fs, transients=transients
    )


def scan(
    data: np.ndarray,
    sizes: Callable[[], int] | int = 40,
    fs: float = FS,
    transients: bool = True,
) -> dict[tuple[int, str], list[tuple[int, int]]]:
    """Merged spans per (channel, kind); NaN rows are gaps (the scanner restarts after one,
    as in the pipeline)."""
    sc = scanner(data.shape[1], fs, transients)
    raw: dict[tuple[int, str], list[tuple[int, int]]] = {}
    bad = ~np.isfinite(data).all(axis=1)
    i = 0
    while i < len(data):
        if bad[i]:
            while i < len(data) and bad[i]:
                i += 1
            sc.restart()
            continue
        n = sizes() if callable(sizes) else sizes
        stop = min(i + n, len(data))
        if bad[i:stop].any():
            stop = i + int(np.argmax(bad[i:stop]))
        for c, a, b, kind in sc.scan(i, data[i:stop]):
            raw.setdefault((c, kind), []).append((a, b))
        i = stop
    return merge_spans(raw)


@cache
def truth_times(seed: int, duration_s: float) -> tuple[tuple[float, float], ...]:
    """(start, end) in seconds of the true reps of ``recording(seed, duration_s)``."""
    rec = simulate(preset("clean", fs=FS, seed=seed), duration_s)
    return tuple((r.start_s, r.end_s) for r in rec.truth.reps if r.onsets)


def at_rest(seed: int, duration_s: float, k: int) -> float:
    reps = truth_times(seed, duration_s)
    return 0.5 * (reps[k][1] + reps[k + 1][0])


def in_burst(seed: int, duration_s: float, k: int) -> float:
    start, end = truth_times(seed, duration_s)[k]
    return start + 0.4 * (end - start)


def motion_wave(amp: float, width_s: float) -> np.ndarray:
    u = (np.arange(round(6 * width_s * FS)) / FS - 3 * width_s) / width_s
    return -u * np.exp(0.5 * (1 - u * u)) * amp


# one artefact each: the kind to find, the channel, at rest or in a burst, and what is done there
FINDS: dict[str, tuple[str, int, str, tuple[str, Any]]] = {
    "spike 3 mV at rest": ("spike", GLUTE, "rest", ("add", [3000.0])),
    "spike -30 mV in a burst": ("spike", LUMBAR, "burst", ("add", [-30000.0])),
    "two-sample spike 5 mV at rest": ("spike", LUMBAR, "rest", ("add", [5000.0, 4000.0])),
    "pop 500 uV at rest": ("pop", GLUTE, "rest", ("pop", (500.0, 0.3))),
    "pop -5 mV in a burst": ("pop", LUMBAR, "burst", ("pop", (-5000.0, 1.5))),
    "clip 100 ms": ("clip", GLUTE, "burst", ("rail", 200)),
    "flat 400 ms": ("flat", LUMBAR, "rest", ("hold", 800)),
    "motion 600 uV at rest": ("motion", GLUTE, "rest", ("add", motion_wave(600.0, 0.02))),
}


def place(seed: int, duration_s: float, where: str, k: int) -> int:
    """Sample index at rest after true rep ``k``, or 40 % into it."""
    t = at_rest(seed, duration_s, k) if where == "rest" else in_burst(seed, duration_s, k)
    return round(t * FS)


def make(x: np.ndarray, i: int, c: int, how: tuple[str, Any]) -> int:
    """Do ``how`` to channel ``c`` of ``x`` at sample ``i``; returns where it ends."""
    op, arg = how
    if op == "add":
        wave = np.asarray(arg, dtype=float)
        x[i : i + len(wave), c] += wave
        return i + len(wave)
    if op == "pop":
        amp, tau = arg
        x[i:, c] += amp * np.exp(-np.arange(len(x) - i) / FS / tau)
        return i + 1
    value = 1.5 * float(np.abs(x[:, c]).max()) if op == "rail" else float(x[i, c])
    x[i : i + arg, c] = value
    return i + arg


@pytest.mark.parametrize("case", list(FINDS))
def test_each_artefact_is_found_where_it_is(case: str) -> None:
    kind, channel, where, how = FINDS[case]
    data, _ = recording(11, 40.0)
    x = np.array(data)
    i = place(11, 40.0, where, 4)
    stop = make(x, i, channel, how)
    spans = scan(x)
    found = {key: v for key, v in spans.items() if v}
    assert set(found) == {(channel, kind)}, found
    (a, b), *more = found[(channel, kind)]
    assert not more and a - round(0.06 * FS) <= i < b and stop <= b <= stop + round(2.1 * FS)


@pytest.mark.parametrize("fs", [1000.0, 2000.0, 2048.0])
def test_no_false_flags_on_simulated_recordings(fs: float) -> None:
    for seed in (41, 42):
        clean = simulate(preset("clean", fs=fs, seed=seed), 30.0)
        assert scan(clean.data, fs=fs) == {}
        hard = simulate(preset("hard", fs=fs, seed=seed), 30.0)
        spans = scan(hard.data, fs=fs)
        assert {kind for _, kind in spans} <= {"motion"}
        names = hard.info.channel_names
        near = round(0.1 * fs)
        truth = [
            (names.index(ch), t["start"], t["start"] + t["length"])
            for t in hard.truth.transients
            for ch in t["channels"]
        ]
        for (c, _), found in spans.items():
            for a, b in found:
                assert any(cc == c and a < e + near and b > s - near for cc, s, e in truth)


def test_one_huge_sample_does_not_disable_clip_detection() -> None:
    data, _ = recording(11, 40.0)
    x = np.array(data)
    x[round(at_rest(11, 40.0, 1) * FS), GLUTE] += 30000.0  # raised the rail estimate for good
    rail = 1.5 * float(np.abs(data[:, GLUTE]).max())
    i = round(in_burst(11, 40.0, 6) * FS)
    x[i : i + 60, GLUTE] = rail  # 30 ms pinned at the rail
    spans = scan(x)
    assert spans[(GLUTE, "clip")] and spans[(GLUTE, "clip")][0][0] == i
    assert len(spans[(GLUTE, "spike")]) == 1


def test_the_rails_forget_a_strong_contraction() -> None:
    data, _ = recording(12, 60.0)
    x = np.array(data)
    a, b = (round(t * FS) for t in truth_times(12, 60.0)[1])
    x[a:b, GLUTE] *= 8.0  # a much stronger contraction: it sets the rails
    rail = 0.5 * float(np.abs(x[a:b, GLUTE]).max())  # beyond the usual, within that one
    soon, late = round(in_burst(12, 60.0, 3) * FS), round(in_burst(12, 60.0, 14) * FS)
    assert late > b + round(31 * FS)  # more than the rails' 30 s memory later
    for i in (soon, late):
        x[i : i + 160, GLUTE] = rail  # 80 ms pinned
    spans = scan(x)
    assert [s[0] for s in spans.get((GLUTE, "flat"), [])] == [soon]  # inside the rails then
    assert [s[0] for s in spans.get((GLUTE, "clip"), [])] == [late]  # at the rail later


def test_spans_do_not_depend_on_chunking() -> None:
    data, _ = recording(12, 40.0)
    x = np.array(data)
    for k, (_, channel, where, how) in enumerate(FINDS.values()):
        make(x, place(12, 40.0, where, 2 + k), (channel + k) % 4, how)
    gap = round(at_rest(12, 40.0, 11) * FS)
    x[gap : gap + 300] = np.nan
    rng = np.random.default_rng(5)
    for transients in (True, False):
        whole = scan(x, sizes=len(x), transients=transients)
        assert {k for _, k in whole} == (
            {"spike", "pop", "clip", "flat", "motion"} if transients else {"clip", "flat"}
        )
        assert scan(x, sizes=lambda: int(rng.integers(1, 400)), transients=transients) == whole
        assert scan(x, sizes=40, transients=transients) == whole
        assert scan(x, sizes=7, transients=transients) == whole


def test_pipeline_with_transients_does_not_depend_on_chunking() -> None:
    rec = simulate(preset("hard", fs=FS, seed=702), 30.0)
    runs = []
    for step in (round(2.0 * FS), 26):
        pipe = live_pipeline(rec.info, DspSettings())
        events: list[Any] = []
        for i in range(0, len(rec.data), step):
            events += pipe.process(Chunk(rec.data[i : i + step], i)).events
        runs.append([e for e in events + pipe.finish() if isinstance(e, RepResult)])
    assert runs[0] == runs[1]
