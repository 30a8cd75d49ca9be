"""The faster code paths of the live pipeline compute exactly what the plain ones did."""

from __future__ import annotations

import numpy as np

from dsp.contract import Role, StreamInfo
from dsp.envelope import MovingRms, Tkeo
from dsp.filters import SosFilter, cascade, design_highpass, design_lowpass
from dsp.onset import first_run
from dsp.pipeline import Pipeline
from dsp.settings import DspSettings


def _first_run_reference(mask: np.ndarray, carry: int, need: int) -> tuple[int | None, int]:
    n = mask.shape[0]
    if n == 0:
        return None, carry
    falses = np.flatnonzero(~mask)
    starts = np.concatenate(([0], falses + 1))
    ends = np.concatenate((falses, [n]))
    lengths = ends - starts
    lengths[0] += carry
    hit = np.flatnonzero(lengths >= need)
    if hit.size:
        k = int(hit[0])
        return int(starts[k]) - (carry if k == 0 else 0), 0
    return None, int(lengths[-1])


def test_first_run_matches_the_run_table() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20000):
        n = int(rng.integers(0, 40))
        mask = rng.random(n) < rng.random()
        carry, need = int(rng.integers(0, 12)), int(rng.integers(1, 14))
        assert first_run(mask, carry, need) == _first_run_reference(mask, carry, need)


def test_front_end_is_bit_identical_to_per_group_cascades() -> None:
    """One band-pass+notch pass over all channels, then the ECG high-pass over the lumbar rows,
    gives the very samples of one cascade per channel group (chunked, from a DC offset)."""
    fs = 2000.0
    names = ("gl", "gr", "ll", "lr", "x1", "x2")
    roles = {Role.GLUTE_L: 0, Role.GLUTE_R: 1, Role.LUMBAR_L: 2, Role.LUMBAR_R: 3}
    info = StreamInfo(fs, names, roles)
    s = DspSettings()
    pipe = Pipeline(info, s, display=True)
    rng = np.random.default_rng(5)
    x = 30.0 * rng.standard_normal((4000, len(names))) + 250.0
    base = pipe._base_sos
    ecg = cascade(base, design_highpass(fs, s.ecg_highpass_hz, s.ecg_highpass_order))
    lumbar = [2, 3]
    other = [0, 1, 4, 5]
    f_other, f_lumbar = SosFilter(base, len(other)), SosFilter(ecg, len(lumbar))
    tkeo = Tkeo()
    lp = SosFilter(design_lowpass(fs, s.detector_lowpass_hz, 2), len(names), initial="zero")
    off = SosFilter(design_lowpass(fs, s.offset_lowpass_hz, 2), len(names), initial="zero")
    rms = MovingRms(pipe._rms_window, len(names))
    pos = 0
    for size in [40, 1, 7, 400, 40, 13] * 30:
        part = x[pos : pos + size]
        if not len(part):
            break
        pos += size
        y = np.empty_like(part)
        y[:, other] = f_other.process(part[:, other])
        y[:, lumbar] = f_lumbar.process(part[:, lumbar])
        stat = lp.process(np.abs(tkeo.process(y)))
        rows, stat_rows, off_rows = pipe._front(part)
        assert np.array_equal(rows.T, y)
        assert np.array_equal(stat_rows.T, stat)
        assert np.array_equal(off_rows.T, off.process(stat))
        assert np.array_equal(pipe._envelope(rows).T, rms.process(y))
