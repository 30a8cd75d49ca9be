"""Quantised recordings repeat a sample now and then (a BDF at 0.03 µV a step, a 16-bit EDF at
0.1 µV): the artefact scanner lets an isolated pair of equal samples take its fast path, since
only three equal samples in a row can begin a run it holds or reports. Its spans, and every
event and result of the pipeline, are those of the full run bookkeeping
(``ArtefactScanner.skip_pairs = False``), with flat lines, clipping, short held runs and spikes
among the pairs, in live chunks and in ``analyze``'s."""

from __future__ import annotations

import numpy as np
import pytest

from devices.simulation.model import preset, simulate
from dsp.analysis import analyze
from dsp.artefacts import ArtefactScanner
from dsp.settings import DspSettings

FS = 2000.0


def quantised(seed: int, step: float) -> tuple[np.ndarray, object]:
    rec = simulate(preset("clean", fs=FS, seed=seed), 30.0)
    x = np.round(np.array(rec.data) / step) * step
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    for _ in range(12):  # flat lines (lead off) 60-300 ms
        c, i = int(rng.integers(0, x.shape[1])), int(rng.integers(FS, n - FS))
        x[i : i + int(rng.integers(120, 600)), c] = x[i, c]
    for _ in range(8):  # clipping at the channel's extreme, 2-20 samples
        c, i = int(rng.integers(0, x.shape[1])), int(rng.integers(FS, n - FS))
        x[i : i + int(rng.integers(2, 20)), c] = 3000.0 * rng.choice([-1.0, 1.0])
    for _ in range(40):  # short stuck runs of 3-6 samples (held, not reported)
        c, i = int(rng.integers(0, x.shape[1])), int(rng.integers(FS, n - FS))
        x[i : i + int(rng.integers(3, 7)), c] = x[i, c]
    for _ in range(6):  # spikes
        c, i = int(rng.integers(0, x.shape[1])), int(rng.integers(FS, n - FS))
        x[i, c] += 2500.0
    return x, rec.info


def scan(x: np.ndarray, chunk: int, skip: bool) -> list[tuple[int, int, int, str]]:
    s = ArtefactScanner(x.shape[1], flat_len=100, clip_len=3, warmup=2000, fs=FS, transients=True)
    s.skip_pairs = skip
    spans = []
    for i in range(0, x.shape[0], chunk):
        spans += s.scan(i, x[i : i + chunk])
    return spans


@pytest.mark.parametrize(("seed", "step"), [(11, 0.25), (12, 1.0)])
def test_isolated_pairs_change_no_span(seed: int, step: float) -> None:
    x, _ = quantised(seed, step)
    d = np.diff(x, axis=0) == 0
    assert np.count_nonzero(d) > 1000  # the pairs the fast path skips are there
    for chunk in (40, 4000):
        fast, full = scan(x, chunk, True), scan(x, chunk, False)
        assert fast == full
        kinds = {k for *_, k in full}
        assert {"flat", "clip"} <= kinds


@pytest.mark.parametrize("chunk_s", [0.02, 2.0])
def test_pipeline_results_are_those_of_the_full_bookkeeping(
    chunk_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, info = quantised(13, 0.5)
    fast = analyze(x, info, DspSettings(), chunk_s=chunk_s).to_dict({})
    monkeypatch.setattr(ArtefactScanner, "skip_pairs", False)
    full = analyze(x, info, DspSettings(), chunk_s=chunk_s).to_dict({})
    assert fast == full
    assert fast["reps"]
