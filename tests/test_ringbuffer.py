from __future__ import annotations

import threading

import numpy as np

from dsp.ringbuffer import RingBuffer


def test_wraps_and_snapshots_newest() -> None:
    rb = RingBuffer(10, 2)
    data = np.arange(46, dtype=float).reshape(23, 2)
    rb.write(0, data[:7])
    rb.write(7, data[7:23])
    start, snap = rb.snapshot(10)
    assert start == 13 and rb.end == 23
    np.testing.assert_array_equal(snap, data[13:23])


def test_snapshot_before_start_is_nan_and_gap_is_blank() -> None:
    rb = RingBuffer(8, 1)
    rb.write(0, np.ones((3, 1)))
    start, snap = rb.snapshot(5)
    assert start == -2 and np.isnan(snap[:2]).all() and (snap[2:] == 1).all()
    rb.write(5, np.full((2, 1), 2.0))  # samples 3 and 4 never came
    _, snap = rb.snapshot(5)
    assert snap[0, 0] == 1 and np.isnan(snap[1:3]).all() and (snap[3:] == 2).all()


def test_chunk_larger_than_capacity_keeps_the_tail() -> None:
    rb = RingBuffer(4, 1)
    rb.write(0, np.arange(10.0)[:, None])
    assert rb.end == 10
    np.testing.assert_array_equal(rb.snapshot(4)[1][:, 0], [6, 7, 8, 9])


def test_concurrent_writer_and_reader_see_consistent_rows() -> None:
    rb = RingBuffer(1000, 3)
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 200_000:
            block = np.repeat(np.arange(i, i + 37, dtype=float)[:, None], 3, axis=1)
            rb.write(i, block)
            i += 37

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(300):
            start, snap = rb.snapshot(500)
            ok = ~np.isnan(snap[:, 0])
            # every row holds its own index in all channels: no torn or stale rows
            idx = np.arange(start, start + 500)[ok]
            assert (snap[ok] == idx[:, None]).all()
    finally:
        stop.set()
        t.join()


def test_display_ring_matches_direct_minmax_for_any_chunking() -> None:
    from devices.session.display import DisplayRing

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5000, 3))
    env = np.abs(x)
    k = 16
    ring = DisplayRing(k, 1000, 3)
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 90))
        ring.write(i, x[i : i + n] * 2, x[i : i + n], env[i : i + n])
        i += n
    first, filt, raw, e = ring.snapshot(100, raw=True)
    assert first == 5000 // k - 100
    bins = x[first * k : (first + 100) * k].reshape(100, k, 3)
    np.testing.assert_array_equal(filt[0::2], bins.min(axis=1))
    np.testing.assert_array_equal(filt[1::2], bins.max(axis=1))
    np.testing.assert_array_equal(raw[1::2], 2 * bins.max(axis=1))
    np.testing.assert_array_equal(e, env[first * k + k - 1 : (first + 100) * k : k])


def test_display_ring_blanks_gaps() -> None:
    from devices.session.display import DisplayRing

    ring = DisplayRing(4, 50, 1)
    ones = np.ones((40, 1))
    ring.write(0, ones, ones, ones)
    ring.write(80, ones, ones, ones)  # samples 40..79 never came
    first, filt, _, _ = ring.snapshot(30, raw=False)
    assert first == 0 and np.isnan(filt[20:40]).all() and (filt[:20] == 1).all()
    assert (filt[40:60] == 1).all()
