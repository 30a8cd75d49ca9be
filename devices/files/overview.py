"""The whole recording at a glance: per channel, the band-passed signal's RMS per column.

For an overview strip above the replay (the lead draws it): :func:`compute_overview` reads
the recording a block at a time (bounded memory, whatever its length), high-passes each
channel causally at 20 Hz (the sEMG band's lower edge: the electrodes' DC offset and movement
drift go; at an overview's resolution the band's upper edge changes nothing, and one filter
section keeps an hour well under 0.5 s), and sums squares per column; rows with a missing
value are left out and listed as gap spans. No Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dsp.contract import StreamInfo
from dsp.filters import design_highpass, sosfilt_rows, sosfilt_zi

Array = NDArray[np.float64]
Reader = Callable[[int, int], NDArray[np.float64]]

#: columns of an overview: a wide strip's pixels, or so
DEFAULT_COLUMNS = 3000
#: rows read and filtered at once (bounds the temporaries: 8 MB per channel at most)
BLOCK_ROWS = 1 << 18


@dataclass(frozen=True)
class Overview:
    """``rms[c, ch]`` is the RMS (µV) of channel ``ch``'s high-passed signal over samples
    ``edges[c] .. edges[c + 1] - 1``; NaN where the column holds no sample (all lost).
    ``gaps`` are the runs of lost samples as ``(start, stop)`` sample indices."""

    fs: float
    n_samples: int
    channel_names: tuple[str, ...]
    edges: NDArray[np.int64]  # (columns + 1,) sample index of each column's start, then n
    rms: Array  # (columns, channels)
    gaps: tuple[tuple[int, int], ...]

    @property
    def columns(self) -> int:
        return int(self.rms.shape[0])

    @property
    def times_s(self) -> Array:
        """The middle of each column, seconds from the start."""
        return (self.edges[:-1] + self.edges[1:]) / (2.0 * self.fs)


def compute_overview(
    read: Reader,
    n_samples: int,
    info: StreamInfo,
    columns: int = DEFAULT_COLUMNS,
    *,
    low_hz: float = 20.0,
    block_rows: int = BLOCK_ROWS,
    channels_first: bool = False,
    fresh: bool = False,
) -> Overview:
    """The overview of a recording read by ``read(start, stop)`` (``(samples, channels)``
    of ``info``'s channels, NaN rows lost; ``channels_first``: ``(channels, samples)``, which
    saves a transposed copy), ``n_samples`` long, in at most ``columns`` columns. ``fresh``
    says each read returns a new array that may be filtered in place (saves another copy)."""
    fs, ch = info.fs, info.n_channels
    n = max(0, int(n_samples))
    cols = max(1, min(int(columns), n)) if n else 0
    edges = np.linspace(0, n, cols + 1).round().astype(np.int64)
    sums = np.zeros((cols, ch))
    counts = np.zeros((cols, ch))
    sos = np.ascontiguousarray(design_highpass(fs, low_hz, 2))
    unit = sosfilt_zi(sos)
    zi: Array | None = None  # filter state (ch, sections, 2); None: restart at the next sample
    gaps: list[tuple[int, int]] = []
    step = max(1, int(block_rows))
    for a in range(0, n, step):
        got = np.asarray(read(a, min(n, a + step)), dtype=np.float64)
        x = got if channels_first else got.T  # (channels, samples)
        m = x.shape[1]
        if np.isfinite(x.sum()):  # the usual case, one pass: no lost row in this block
            bad: NDArray[np.bool_] = np.zeros(m, dtype=bool)
            good_runs, bad_runs = [(0, m)], []
        else:
            bad = np.asarray(~np.isfinite(x).all(axis=0), dtype=bool)
            flags: NDArray[np.int8] = bad.view(np.int8)
            good_runs, bad_runs = _runs(flags, 0), _runs(flags, 1)
        for s, e in bad_runs:  # lost rows: gap spans (joined across blocks)
            if gaps and gaps[-1][1] == a + s:
                gaps[-1] = (gaps[-1][0], a + e)
            else:
                gaps.append((a + s, a + e))
        for s, e in good_runs:
            # the run's rows, C-contiguous and writable (filtered in place)
            whole = s == 0 and e == m and x.flags.c_contiguous and x.flags.writeable
            rows = x if fresh and channels_first and whole else np.array(x[:, s:e], order="C")
            if zi is None or s > 0:
                zi = np.ascontiguousarray(unit[None] * rows[:, :1, None])  # steady state
            sosfilt_rows(sos, rows, zi)
            np.multiply(rows, rows, out=rows)
            # the columns this run touches: sums over each column's part of it
            lo, hi = a + s, a + e
            c0 = int(np.searchsorted(edges, lo, side="right")) - 1
            c1 = int(np.searchsorted(edges, hi - 1, side="right")) - 1
            bounds = np.concatenate(([lo], edges[c0 + 1 : c1 + 1], [hi])) - lo
            sums[c0 : c1 + 1] += np.add.reduceat(rows, bounds[:-1], axis=1).T
            counts[c0 : c1 + 1] += np.diff(bounds)[:, None]
        if m and bad[-1]:
            zi = None  # the filters restart after a gap
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.where(counts > 0, np.sqrt(sums / np.maximum(counts, 1)), np.nan)
    return Overview(fs, n, tuple(info.channel_names), edges, rms, tuple(gaps))


def _runs(flags: NDArray[np.int8], value: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of ``flags == value``."""
    hit = (flags == value).view(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], hit, [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
