"""The stored filter designs (dsp/filter_table.py) are what the design code gives, to the bit.

The table saves ~9 ms of every start (issue 8); a stale entry would silently filter with other
coefficients, so every one is designed again here. When a default setting or the design code
changes, these tests fail until ``python -m bench.filter_table`` writes the table again.
"""

from __future__ import annotations

import numpy as np

from bench import filter_table
from dsp import filters


def _stored() -> dict[str, list[float]]:
    from dsp.filter_table import TABLE

    rows = (line.split(": ", 1) for line in TABLE.splitlines() if line)
    return {key: [float(v) for v in values.split()] for key, values in rows}


def _bits(rows: object) -> bytes:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6).tobytes()


def test_every_stored_design_is_designed_again_to_the_bit_and_none_is_missing() -> None:
    fresh = filter_table.designs()  # every filter designed, nothing read from the table
    stored = _stored()
    assert set(fresh) == set(stored), "run `python -m bench.filter_table` to write the table again"
    for key, rows in fresh.items():
        assert _bits(stored[key]) == _bits(rows), key
        assert _bits(filters._stored(key)) == _bits(rows), key  # as the designs read it


def test_a_start_at_each_stored_rate_designs_nothing() -> None:
    misses: list[object] = []
    butter, notch = filters._design_butter, filters._design_notch

    def count_butter(*args: object) -> object:
        misses.append(args)
        return butter(*args)  # type: ignore[arg-type]

    def count_notch(*args: object) -> object:
        misses.append(args)
        return notch(*args)  # type: ignore[arg-type]

    filters._design_butter, filters._design_notch = count_butter, count_notch  # type: ignore[assignment]
    try:
        for fs in filter_table.RATES:
            for line in filter_table.LINES:
                filter_table.start(fs, line)
    finally:
        filters._design_butter, filters._design_notch = butter, notch  # type: ignore[assignment]
    assert misses == []
    # the rate a 2 kHz CSV's time column gives, which missed the quality table once
    assert filters.butter_key(4, [20.0, 450.0], "bandpass", 2000.0000000000002) in _stored()


def test_a_design_the_table_does_not_hold_is_designed() -> None:
    key_fs = 1500.0
    assert filters.butter_key(4, [20.0, 450.0], "bandpass", key_fs) not in _stored()
    got = filters.design_bandpass(key_fs, 20.0, 450.0)
    filters.USE_STORED = False
    try:
        want = filters.design_bandpass(key_fs, 20.0, 450.0)
        stored_rate = filters.design_notch(2000.0, 50.0)
    finally:
        filters.USE_STORED = True
    assert _bits(got) == _bits(want)
    assert _bits(filters.design_notch(2000.0, 50.0)) == _bits(stored_rate)
