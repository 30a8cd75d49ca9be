"""The display ring's snapshot (copied as slices of the ring, every frame) gives the newest bins
in order wherever the ring wraps, and NaN before the session's first sample."""

from __future__ import annotations

import numpy as np

from devices.session.display import DisplayRing


def test_snapshot_across_the_ring_wrap_and_at_the_start() -> None:
    rng = np.random.default_rng(11)
    k, n_bins, ch = 4, 37, 2  # a small ring: it wraps many times
    x = rng.standard_normal((4000, ch))
    env = np.abs(x) + 1.0
    ring = DisplayRing(k, n_bins, ch)
    i = checked = 0
    while i < len(x):
        n = min(int(rng.integers(1, 30)), len(x) - i)
        ring.write(i, x[i : i + n] * 3, x[i : i + n], env[i : i + n])
        i += n
        for want in (1, 10, n_bins, n_bins + 5):
            first, filt, raw, e = ring.snapshot(want, raw=True)
            got = min(want, n_bins)
            end = i // k  # complete bins so far
            assert first == end - got
            assert filt.shape == (2 * got, ch) and raw.shape == (2 * got, ch)
            for b in range(got):
                absolute = first + b
                if absolute < 0:  # before the first sample
                    assert np.isnan(filt[2 * b : 2 * b + 2]).all() and np.isnan(e[b]).all()
                    assert np.isnan(raw[2 * b : 2 * b + 2]).all()
                    continue
                block = x[absolute * k : (absolute + 1) * k]
                np.testing.assert_array_equal(filt[2 * b], block.min(axis=0))
                np.testing.assert_array_equal(filt[2 * b + 1], block.max(axis=0))
                np.testing.assert_array_equal(raw[2 * b + 1], 3 * block.max(axis=0))
                np.testing.assert_array_equal(e[b], env[(absolute + 1) * k - 1])
            checked += 1
    assert checked > 100
    _, filt, raw, _ = ring.snapshot(5, raw=False)
    assert raw.shape == (0, ch) and filt.shape == (10, ch)
