"""A deliberately simple burst generator for unit tests, independent of the app's simulator
(so the detector is checked against a second generator with its own ramp shape)."""

from __future__ import annotations

import numpy as np
from scipy import signal

from dsp.contract import Chunk, Role, StreamInfo
from dsp.pipeline import Pipeline

ROLES4 = {Role.GLUTE_L: 0, Role.GLUTE_R: 1, Role.LUMBAR_L: 2, Role.LUMBAR_R: 3}


def bursts(
    fs: float,
    duration: float,
    onsets_s: list[list[float]],
    *,
    amp_uv: float = 50.0,
    noise_uv: float = 5.0,
    rise_s: float = 0.05,
    burst_s: float = 0.8,
    offset_uv: float = 0.0,
    seed: int = 0,
    smooth: bool = False,
) -> np.ndarray:
    """Channels of band-limited noise bursts with linear ramps starting at ``onsets_s[c]``
    (``smooth``: raised-cosine ramps, whose first part stays close to zero)."""
    rng = np.random.default_rng(seed)
    n = round(fs * duration)
    sos = signal.butter(2, [40, min(200, 0.4 * fs)], "bandpass", fs=fs, output="sos")
    out = np.zeros((n, len(onsets_s)))
    t = np.arange(n) / fs
    for c, ons in enumerate(onsets_s):
        carrier = signal.sosfilt(sos, rng.standard_normal(n))
        carrier /= carrier.std()
        env = np.zeros(n)
        for t0 in ons:
            up = np.clip((t - t0) / rise_s, 0, 1)
            if smooth:
                up = 0.5 - 0.5 * np.cos(np.pi * up)
            down = np.clip((t0 + burst_s + rise_s - t) / rise_s, 0, 1)
            env = np.maximum(env, np.minimum(up, down))
        out[:, c] = amp_uv * env * carrier + noise_uv * rng.standard_normal(n) + offset_uv
    return out


def info4(fs: float, roles: dict[Role, int] | None = None) -> StreamInfo:
    return StreamInfo(fs, ("gl", "gr", "ll", "lr"), roles or ROLES4)


def run(pipe: Pipeline, x: np.ndarray, sizes: list[int] | None = None) -> list:
    """All events of ``pipe`` over ``x``, in chunks of ``sizes`` in turn (default: one)."""
    events, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)] if sizes else len(x)
        events += pipe.process(Chunk(x[i : i + n], i)).events
        i, k = i + n, k + 1
    return events + pipe.finish()
