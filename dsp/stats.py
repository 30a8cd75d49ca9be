"""Small statistics that numpy would give at a start-up cost.

``np.median`` checks its result for NaN through ``np.ma.isMaskedArray``, and the first call
imports numpy.ma (15-20 ms of every ``fireorder analyze`` on this machine, issue 8);
:func:`median` gives the same value to the bit without it (tests/test_start_imports.py).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def median(values: ArrayLike) -> float:
    """``float(np.median(values))`` of a non-empty 1-D sequence, to the bit: the middle
    value, or the mean of the two middle values computed as numpy does, ``(a + b) / 2``;
    NaN if any value is NaN (as numpy)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("median of an empty sequence")
    k = x.size // 2
    if x.size % 2:
        part = np.partition(x, k)
        mid = float(part[k])
    else:
        part = np.partition(x, (k - 1, k))
        mid = float((part[k - 1] + part[k]) / 2)
    # np.partition puts NaN last, so the middle would be a number; numpy says NaN
    return math.nan if math.isnan(float(part[-1])) else mid
