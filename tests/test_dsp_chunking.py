"""Two transient artefacts on one channel in one chunk both block it: how a stream is cut into
chunks does not change what the pipeline finds.

The pipeline blocks a channel's onsets and offsets while the filters ring after a transient
(a spike, a pop, a motion transient). It used to keep one blocked stretch per channel: when a
second transient was reported in the same chunk, the first one's ringing went unblocked for the
rest of that chunk. In 40-sample live chunks that almost never happens; in the 2 s chunks of
``analyze`` (and more in longer ones) the ringing of the first of two pops made onsets, so an
analysed file had reps its live session did not (here 18-23 reps offline against 14-19 live and
after the fix; with 8 s chunks up to 36). Live and offline still differ in details where the
scanner reports a span a chunk later (a sample of onset, a rep's end), so chunk lengths of
``analyze`` are compared here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.simulation.model import preset, simulate
from dsp.analysis import analyze
from dsp.contract import StreamInfo
from dsp.settings import DspSettings

FS = 2000.0
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MYONSET = DATA / "myonset" / "example_data.bdf"


def with_pop_pairs(seed: int) -> tuple[np.ndarray, StreamInfo]:
    """A clean recording with pairs of electrode pops 0.6 s apart on a glute and a lumbar
    channel every ~3 s (800 µV steps decaying with 50 ms)."""
    rec = simulate(preset("clean", fs=FS, seed=seed), 40.0)
    x = np.array(rec.data)
    rng = np.random.default_rng(seed)
    for t in np.arange(3.0, 38.0, 3.1):
        for c in (0, 2):
            i = round((t + rng.uniform(0, 0.5)) * FS)
            for k in (i, i + round(0.6 * FS)):
                x[k:, c] += 800.0 * np.exp(-np.arange(len(x) - k) / FS / 0.05)
    return x, rec.info


@pytest.mark.parametrize("seed", [701, 703])
def test_pop_pairs_give_the_same_reps_however_the_stream_is_chunked(seed: int) -> None:
    x, info = with_pop_pairs(seed)
    offline = analyze(x, info, DspSettings(), chunk_s=2.0).reps
    assert analyze(x, info, DspSettings(), chunk_s=8.0).reps == offline
    assert analyze(x, info, DspSettings(), chunk_s=3.0).reps == offline


@pytest.mark.skipif(not MYONSET.exists(), reason="shared/data/myonset absent")
def test_a_real_recording_gives_the_same_reps_in_any_chunk_length() -> None:
    from devices.files import derive_channels, read_recording
    from dsp.contract import Role

    rec = read_recording(MYONSET)
    data, names = derive_channels(rec, {"glute_l": "EXG1-EXG2", "lumbar_l": "EXG3-EXG4"})
    info = StreamInfo(rec.fs, tuple(names), {Role.GLUTE_L: 0, Role.LUMBAR_L: 1})
    runs = [analyze(data, info, DspSettings(), chunk_s=s).reps for s in (2.0, 4.0, 10.0)]
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0]) == 25
