"""Artefact scanner bench: false flags, detection of the simulator's transients, effect on the
hard set's false alarms, and the cost per live chunk, against the scanner before transients
(``BEFORE``, the last commit with flat lines and clipping only).

* ``counts`` -- spans per kind on the simulator's ``clean`` and ``hard`` presets (1000, 2000
  and 2048 Hz) and on the real recordings of ``../shared/data``; on ``hard``, how many of the
  truth's motion transients (per channel) got a span, and how many spans are not near one.
* ``alarms`` -- fireorder's false onsets by category on the hard set (``bench.accuracy``'s
  recordings and scoring), with the scanner of ``BEFORE`` and with the working tree's
  reporting transients (``transients=True``).
* ``cost`` -- CPU time of ``ArtefactScanner.scan`` per 8 x 40 chunk at 2 kHz, with and without
  the report of transients, interleaved with the scanner of ``BEFORE`` (the machine's load
  cancels out of the ratio).

Run ``python -m bench.artefact_bench [counts|alarms|cost ...] [--recordings N]``.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import dsp.pipeline
from dsp.artefacts import ArtefactScanner, merge_spans

Array = NDArray[np.float64]
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
BEFORE = "a97a301"


def head_scanner(rev: str = BEFORE) -> type:
    """``ArtefactScanner`` as committed at ``rev`` (the "before")."""
    src = subprocess.run(
        ["git", "show", f"{rev}:dsp/artefacts.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    spec = importlib.util.spec_from_loader("artefacts_head", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(src, "artefacts_head.py", "exec"), module.__dict__)
    return module.ArtefactScanner  # type: ignore[no-any-return]


def scan_all(data: Array, fs: float, chunk_s: float = 0.02) -> dict[tuple[int, str], list]:
    """Merged spans per (channel, kind) of ``data`` scanned in live-sized chunks."""
    sc = ArtefactScanner(
        data.shape[1],
        flat_len=max(1, round(0.05 * fs)),
        clip_len=3,
        warmup=round(fs),
        fs=fs,
        transients=True,
    )
    step = max(1, round(chunk_s * fs))
    raw: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for i in range(0, len(data), step):
        for c, a, b, kind in sc.scan(i, data[i : i + step]):
            raw.setdefault((c, kind), []).append((a, b))
    return merge_spans(raw)


def _kinds(spans: dict[tuple[int, str], list]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for (_, kind), iv in spans.items():
        counts[kind] += len(iv)
    return dict(sorted(counts.items()))


def real_recordings() -> dict[str, tuple[Array, float]]:
    from devices.files import derive_channels, read_recording

    out: dict[str, tuple[Array, float]] = {}
    for name in ("biosppy/emg_1.txt", "biosppy/emg.txt"):
        path = DATA / name
        if path.exists():
            rec = read_recording(path)
            out[name] = (np.asarray(rec.data[:, :1], dtype=float), rec.fs)
    path = DATA / "myonset" / "example_data.bdf"
    if path.exists():
        rec = read_recording(path)
        data, _ = derive_channels(rec, {"glute_l": "EXG1-EXG2", "lumbar_l": "EXG3-EXG4"})
        out["myonset/example_data.bdf"] = (np.asarray(data, dtype=float), rec.fs)
    return out


def counts(recordings: int, duration_s: float = 60.0) -> dict[str, Any]:
    from devices.simulation.model import preset, simulate

    result: dict[str, Any] = {}
    for name in ("clean", "hard"):
        total: Counter[str] = Counter()
        far: Counter[str] = Counter()
        n_true = hit = 0
        for k in range(recordings):
            for fs in (1000.0, 2000.0, 2048.0):
                rec = simulate(preset(name, fs=fs, seed=100 + k), duration_s)
                spans = scan_all(rec.data, fs)
                total.update(_kinds(spans))
                names = rec.info.channel_names
                margin = round(0.1 * fs)
                true = [
                    (names.index(ch), t["start"], t["start"] + t["length"])
                    for t in rec.truth.transients
                    for ch in t["channels"]
                ]
                n_true += len(true)
                for c, a, b in true:
                    found = [
                        s for kind in ("spike", "pop", "motion") for s in spans.get((c, kind), [])
                    ]
                    hit += any(s < b + margin and e > a for s, e in found)
                for (c, kind), iv in spans.items():
                    for s, e in iv:
                        if not any(
                            cc == c and s < b + margin and e > a - margin for cc, a, b in true
                        ):
                            far[kind] += 1
        result[name] = {
            "minutes": recordings * 3 * duration_s / 60,
            "spans": dict(total),
            "transients": n_true,
            "transients_flagged": hit,
            "spans_not_near_a_transient": dict(far),
        }
    for name, (data, fs) in real_recordings().items():
        spans = scan_all(data, fs)
        result[name] = {
            "seconds": round(len(data) / fs, 1),
            "channels": data.shape[1],
            "spans": _kinds(spans),
            "where (start s + length s)": {
                f"ch{c} {kind}": " ".join(f"{a / fs:.2f}+{(b - a) / fs:.2f}" for a, b in iv)
                for (c, kind), iv in sorted(spans.items())
            },
        }
    return result


def alarms(recordings: int, duration_s: float) -> dict[str, Any]:
    from bench import accuracy
    from bench.metrics import aggregate

    config = accuracy.Config(
        recordings=recordings, duration_s=duration_s, peers=False, ablation=False, real=False
    )
    out: dict[str, Any] = {}
    after = functools.partial(ArtefactScanner, transients=True)
    for label, scanner in ((f"before ({BEFORE})", head_scanner()), ("after", after)):
        saved = dsp.pipeline.ArtefactScanner
        dsp.pipeline.ArtefactScanner = scanner  # type: ignore[misc, assignment]
        try:
            res = accuracy.run_set("hard", config, [accuracy.FIREORDER])
        finally:
            dsp.pipeline.ArtefactScanner = saved  # type: ignore[misc]
        m = aggregate(res.scores[accuracy.FIREORDER])
        out[label] = {
            k: m.get(k)
            for k in (
                "false_alarms_by_kind",
                "onset_recall",
                "onset_precision",
                "rep_recall",
                "order_accuracy",
                "lag_err_ms",
                "spurious_verdicts",
                "verdicts_on_ordered_reps",
            )
        }
    return out


def _time_per_chunk(make: Callable[[], Any], chunks: Sequence[Array], warm: int = 200) -> float:
    sc = make()
    for k in range(warm):
        sc.scan(40 * k, chunks[k])
    t = time.process_time()
    for k in range(warm, len(chunks)):
        sc.scan(40 * k, chunks[k])
    return (time.process_time() - t) / (len(chunks) - warm) * 1e6


def cost(repeats: int = 7) -> dict[str, Any]:
    from devices.simulation.model import preset, simulate

    old = head_scanner()
    rec = simulate(preset("clean", fs=2000.0, seed=3), 60.0)
    signals = {
        "rest noise (white, 5 uV)": np.random.default_rng(0).standard_normal((120_000, 8)) * 5.0,
        "simulated clean set (reps)": np.concatenate([rec.data, rec.data[::-1]], axis=1),
    }
    out: dict[str, Any] = {}
    for name, signal in signals.items():
        x = np.ascontiguousarray(signal)
        chunks = [x[i : i + 40] for i in range(0, len(x) - 39, 40)][:2200]
        makers = {
            "before": lambda: old(8, flat_len=100, warmup=2000),
            "new, transients": lambda: ArtefactScanner(8, 100, warmup=2000, transients=True),
            "new, default": lambda: ArtefactScanner(8, 100, warmup=2000),
        }
        times: dict[str, list[float]] = {k: [] for k in makers}
        for _ in range(repeats):
            for k, make in makers.items():
                times[k].append(_time_per_chunk(make, chunks))
        res = {k: round(min(v), 1) for k, v in times.items()}
        res.update(
            {f"{k} / before": round(v / res["before"], 2) for k, v in res.items() if k != "before"}
        )
        out[name] = res
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", nargs="*", default=["counts", "alarms", "cost"])
    p.add_argument("--recordings", type=int, default=10)
    p.add_argument("--duration", type=float, default=40.0)
    args = p.parse_args(argv)
    import json
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)
    for what in args.what:
        if what == "counts":
            res = counts(args.recordings)
        elif what == "alarms":
            res = alarms(args.recordings, args.duration)
        elif what == "cost":
            res = cost()
        else:
            sys.exit(f"unknown: {what}")
        print(f"== {what}")
        print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
