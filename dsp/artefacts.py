"""Per-channel artefact spans from the raw signal (microvolts), causal and chunk-size invariant.

Spans are absolute index intervals ``[start, stop)`` of one channel, so that a rep can ask
whether its onset search window touched one. Five kinds:

* ``"flat"`` -- a run of identical raw values at least ``flat_len`` long inside the channel's
  range (lead-off, a stuck converter).
* ``"clip"`` -- a run of at least ``clip_len`` identical values at or beyond the channel's
  extremes (saturation at the amplifier's rail), whatever its length.
* ``"spike"`` -- one to ~1.5 ms of samples jutting out from both neighbours, far beyond what the
  channel does around them (an ADC glitch, a cable knock, the first sample of an electrode pop).
* ``"pop"`` -- a sharp DC step that stays (an electrode pop: the step, then a slow recovery).
* ``"motion"`` -- a large low-frequency (1-15 Hz) deflection, far above the channel's own
  low-frequency background and not carried by EMG (a motion transient, cable sway).

Thresholds and why (surface EMG: 20-450 Hz, at most ~5 mV at the skin):

* Spikes and steps are judged against the channel's local activity -- the 3rd largest
  sample-to-sample difference in the 10 ms before and in the 10 ms after (``context``; the 3rd
  largest, so that a second glitch nearby does not hide the first) -- and against its recent
  activity, the mean absolute difference over the last complete 100 ms block. Band-limited EMG
  cannot jump between samples far beyond its neighbouring differences: on simulated (clean and
  hard, 1-2 kHz) and real recordings (``../shared/data``), rest and bursts, a sample's
  excursion from both neighbours stays below 4.8x the context, a one-sample step below 6x and
  a two-sample step below 9.1x. A spike needs >= 10x, a step >= 12x (one sample) or 18x (two
  samples); either needs >= 10x the recent activity and >= 50 uV. A jump of >= 10 mV needs only
  3x the context: no surface EMG moves that far within a few samples (5 mV at 500 Hz changes by
  at most 16 mV per ms).
* A pop's step must persist: 10 ms later the level is still at least half-way to the new
  value. A step into or out of a run of identical values is clipping or a flat line, not a pop.
* Motion: the 1-15 Hz band (2nd-order Butterworth) of the despiked signal -- where movement and
  cable sway sit and EMG does not -- must exceed 3x the channel's low-frequency background (the
  decaying maximum of that band, time constant 4 s, from 100 ms blocks without motion: the
  heartbeat on lumbar channels and baseline wander belong to the background), 5x the EMG-like
  activity around it (mean |difference| over the last 20 ms as the amplitude of a 100 Hz wave;
  a real burst's low-frequency share stays below 1x of that on glute channels) and 100 uV
  (smaller deflections leak too little above 20 Hz to matter; on the simulator's hard preset
  this flags a third of the motion transients, the large ones, and nothing else). The span
  starts 50 ms before the crossing (the band lags the deflection) and lasts while the
  deflection stays above the background it was judged against, until 50 ms without. No motion
  is judged during a pop or a pinned run, nor 0.5 s after: the band's own response to a step.

Ringing: a spike or a step excites the conditioning filters -- the 20 Hz high-pass for tens of
ms, the 50 Hz notch (Q 30) longer, its tail decaying with tau = Q / (pi f0) ~ 0.19 s -- so the
span of a spike or a pop extends by ``0.2 s * ln(r / r0)``, r its size over the context, r0
measured on the pipeline's filters (``RING_SPIKE``, ``RING_STEP``), at most 2 s. A run of
clipped or flat samples extends likewise by its entry or exit step.

Adaptive levels and how they recover: each is updated per 100 ms block of absolute sample
index, from samples already judged, so the result does not depend on how the stream is
chunked. The rails (the extremes that recognise clipping) are the extremes of the last 30 s of
the despiked signal outside pops and pinned runs: a spike never enters them, and whatever
raised them (a pop missed, a much stronger contraction) is forgotten 30 s later. The
low-frequency background decays with a time constant of 4 s; the recent activity is the last
block's.

Causality: a spike or a step is sure ``lookahead`` samples (~11.5 ms) after it begins, a motion
deflection when it crosses its threshold; each span is reported by the call that received the
sample that made it sure. A span that grows (a run, a deflection) is reported again, longer.
Spikes, pops and motion are reported only with ``transients=True`` (see ``ArtefactScanner``).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from dsp.filters import design_bandpass, sosfilt_rows, sosfilt_zi

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]
Span = tuple[int, int, int, str]

# -- spikes and steps (electrode pops) -------------------------------------------------------
CONTEXT_S = 0.010  # local activity: the 3rd largest |difference| of this long a window
CONTEXT_RANK = 3
SPIKE_MAX_S = 0.0015  # a spike lasts one sample up to this long (2 to 4 samples)
ISO_SPIKE = 10.0  # a spike's excursion over the local activity
ISO_STEP = (12.0, 18.0)  # a step over one / two samples
K_RECENT = 10.0  # either over the recent activity (mean |difference| of the last block)
MIN_JUMP_UV = 50.0
IMPOSSIBLE_UV = 10_000.0  # no surface EMG jumps this far within a few samples
IMPOSSIBLE_ISO = 3.0
STEP_PERSIST = 0.5  # fraction of a pop's step still there ``context`` later
# Ringing after a spike / a step of r x the context: tau ln(r / r0), r0 = R0 (fs / 1 kHz)^P,
# the lower envelope of what the pipeline's filters need (clean and hard simulated channels at
# rest, 1-2 kHz, 0.3-30 mV: until the TKEO statistic of the artefact alone stays below its
# onset threshold, less the pipeline's 100 ms settle). The measured time constant is 0.18 s.
RING_TAU_S = 0.2
RING_SPIKE = (55.0, 1.7)  # a spike's ringing fades faster at higher rates
RING_STEP = (35.0, 0.7)
RING_MAX_S = 2.0
MOTION_QUIET_AFTER_S = 0.5  # no motion is judged during a pop or a run and this long after:
# the motion band's own response to a step, whose 1 Hz high-pass settles in about that

# -- motion ----------------------------------------------------------------------------------
LF_BAND_HZ = (1.0, 15.0)
LF_ORDER = 2
BLOCK_S = 0.1  # levels are updated per block of absolute sample index
BACKGROUND_TAU_S = 4.0
MOTION_K_BACKGROUND = 3.0
MOTION_K_ACTIVITY = 5.0
MOTION_MIN_UV = 100.0
ACTIVITY_WINDOW_S = 0.02
ACTIVITY_REF_HZ = 100.0  # mean |difference| x fs / (2 pi f): the amplitude of a wave at f
MOTION_BACK_S = 0.05
MOTION_QUIET_S = 0.05
MOTION_WARMUP_S = 1.0  # after a reset the background must be known first
MOTION_REWARM_S = 0.2  # after a gap the low-frequency filter restarts

# -- clipping --------------------------------------------------------------------------------
RAIL_HOLD_S = 30.0  # the rails are the extremes of this long a history
MAX_CHUNK_S = 10.0  # longer chunks are scanned in parts of this length (same result)

_NEVER = -(2**62)


class ArtefactScanner:
    """Streaming artefact detector for all channels of a raw signal ``(n, ch)`` in microvolts.

    ``fs`` should be given; without it, it is taken from ``warmup`` (the pipeline passes one
    second of samples) or else from ``flat_len`` (50 ms).

    ``transients`` turns on the report of spikes, pops and motion (flat lines and clipping are
    always reported; spikes and pops are always found, to keep them out of the rails). It is
    off by default because a consumer that blocks a channel after a transient must block from
    the span's start, not from the start of the chunk in which the span was reported, or its
    results depend on the chunking: ``dsp.pipeline.Pipeline`` does the latter today.
    """

    #: isolated pairs of equal samples take the fast path (False: the full run bookkeeping,
    #: the reference the tests compare with; the spans are the same)
    skip_pairs = True

    def __init__(
        self,
        n_channels: int,
        flat_len: int,
        clip_len: int = 3,
        warmup: int = 0,
        fs: float | None = None,
        transients: bool = False,
    ) -> None:
        self.n_channels = n_channels
        self.transients = transients
        self.flat_len = max(2, int(flat_len))
        self.clip_len = max(2, int(clip_len))
        self.warmup = warmup
        if fs is None:
            fs = float(warmup) if warmup > 0 else 20.0 * self.flat_len
        self.fs = float(fs)
        self.context = max(8, self._n(CONTEXT_S))
        self.max_spike = max(2, min(4, self._n(SPIKE_MAX_S)))
        #: samples after its start before a spike or a step is judged
        self.lookahead = self.max_spike + self.context
        self.block = max(16, self._n(BLOCK_S))
        self.activity_window = max(4, self._n(ACTIVITY_WINDOW_S))
        self._keep_raw = self.context + 2
        # sub-blocks of the cheap bound (see _candidates): the largest size with three whole
        # ones in the context before any column of a sub-block's group and in the shared
        # part of the context after it, and their offsets
        w, lmax = self.context, self.max_spike
        for h in range(max(1, w // 4), 0, -1):
            pre, post = -((w + 1 - h) // h), 1 - (-lmax // h)  # ceil((h-1-w)/h), 1+ceil(l/h)
            if pre <= -3 and post + 3 <= (w + 1) // h:
                break
        self._sub, self._pre, self._post = h, pre, post
        self._sos = np.ascontiguousarray(design_bandpass(self.fs, *LF_BAND_HZ, LF_ORDER))
        self._zi_unit = sosfilt_zi(self._sos)
        self._activity_gain = self.fs / (2.0 * math.pi * ACTIVITY_REF_HZ)
        self._bg_decay = math.exp(-self.block / (BACKGROUND_TAU_S * self.fs))
        self._rail_blocks = max(1, round(RAIL_HOLD_S / BLOCK_S))
        self._max_chunk = self._n(MAX_CHUNK_S)
        self.reset()

    def _n(self, seconds: float) -> int:
        return max(1, round(seconds * self.fs))

    # -- state ---------------------------------------------------------------------------
    def reset(self) -> None:
        ch = self.n_channels
        self._origin: int | None = None
        # runs of identical raw values; while no channel repeats, every channel's run is its
        # last sample (``_lazy_run``) and is filled in only when needed
        self._run_start = np.zeros(ch, dtype=np.int64)
        self._run_entry = np.zeros(ch)
        self._run_rails = np.zeros((ch, 3))  # hi, lo, recent activity at the run's start
        self._run_known = np.zeros(ch, dtype=bool)
        self._lazy_run: tuple[int, Array | None] | None = None
        self._last_raw = np.full(ch, np.nan)
        self._last_repeat = _NEVER  # index after the last chunk with a repeated value
        # levels, per block: (its end, maximum, minimum of its judged samples outside pops and
        # runs, recent activity)
        self._extremes: deque[tuple[int, Array, Array, Array]] = deque(
            maxlen=self._rail_blocks + round(MAX_CHUNK_S / BLOCK_S) + 4
        )
        self._rails_cache: tuple[int, Array, Array, Array] | None = None
        self._act = np.zeros(ch)  # recent activity: mean |difference| of the last block
        self._jump_floor = np.full(ch, 0.5 * MIN_JUMP_UV)
        self._floor_col = self._jump_floor[:, None]
        self._bg = np.zeros(ch)
        self._thr = np.full(ch, np.inf)  # motion threshold in this block
        self._acc_lf = np.zeros(ch)
        self._blk_motion = np.zeros(ch, dtype=bool)
        self._blk_motion_any = False
        self._prev_lf = np.zeros(ch)
        self._prev_ok = np.zeros(ch, dtype=bool)
        self._prev_all_ok = False
        # pops: span per channel (levels skip it, no motion is judged in it)
        self._pop_from = np.full(ch, _NEVER, dtype=np.int64)
        self._pop_until = np.full(ch, _NEVER, dtype=np.int64)
        self._any_pop_until = _NEVER
        # motion, per channel
        self._mot_open = np.zeros(ch, dtype=bool)
        self._n_open = 0
        self._mot_start = np.zeros(ch, dtype=np.int64)
        self._mot_last = np.zeros(ch, dtype=np.int64)
        self._mot_end = np.full(ch, _NEVER, dtype=np.int64)
        self._mot_floor = np.zeros(ch)
        self._mot_from = np.zeros(ch, dtype=np.int64)  # warm-up: no motion before
        # no motion judged in [_quiet_from, _quiet_until): a pop, a run, and what follows
        self._quiet_from = np.full(ch, _NEVER, dtype=np.int64)
        self._quiet_until = np.full(ch, _NEVER, dtype=np.int64)
        self._claimed = np.full(ch, _NEVER, dtype=np.int64)  # last sample a find took
        self._restart_buffers()

    def _restart_buffers(self) -> None:
        ch = self.n_channels
        self._raw = np.zeros((ch, 0))  # judged raw context, then the raw samples pending
        self._raw_start = 0
        self._pending = 0
        # judged samples, despiked, runs held: this block's pieces, and the samples before
        self._pieces: list[Array] = []
        self._tail = np.zeros((ch, 0))
        self._hold = np.full(ch, np.nan)  # value held through a run of identical samples
        self._fix: list[tuple[int, int, int, float, float]] = []  # despiking still to apply
        self._zi: Array | None = None
        self._blk_data = False
        self._fresh = True
        self._next = 0

    def restart(self) -> None:
        """After a gap: runs, filters and pending judgements do not continue across it; the
        levels (rails, background, recent activity) are kept."""
        self._last_raw = np.full(self.n_channels, np.nan)
        self._lazy_run = None
        self._run_known[:] = False
        self._mot_open[:] = False
        self._n_open = 0
        self._acc_lf[:] = 0.0
        self._blk_motion[:] = False
        self._blk_motion_any = False
        self._prev_ok[:] = False
        self._prev_all_ok = False
        self._restart_buffers()

    # -- helpers -------------------------------------------------------------------------
    def _ring(self, ratio: float, law: tuple[float, float]) -> int:
        """Samples the conditioning filters ring after a jump ``ratio`` x the context."""
        r0 = law[0] * (self.fs / 1000.0) ** law[1]
        if not ratio > r0:  # also False for NaN
            return 0
        return min(round(RING_TAU_S * math.log(ratio / r0) * self.fs), self._n(RING_MAX_S))

    def _rails_at(self, index: int, c: int) -> tuple[float, float, float]:
        """Channel ``c``'s rails in force at ``index`` -- the extremes of the ``RAIL_HOLD_S``
        of blocks that ended at least ``lookahead`` samples before it, known by then however
        the stream is cut -- and the recent activity of the last of them. NaN while none."""
        limit = index - self.lookahead
        ext = self._extremes
        k = len(ext)
        while k and ext[k - 1][0] > limit:
            k -= 1
        if not k:
            return math.nan, math.nan, math.nan
        cached = self._rails_cache
        if cached is None or cached[0] != ext[k - 1][0]:
            window = [ext[j] for j in range(max(0, k - self._rail_blocks), k)]
            with np.errstate(all="ignore"):
                hi = np.fmax.reduce(np.array([w[1] for w in window]), axis=0)
                lo = np.fmin.reduce(np.array([w[2] for w in window]), axis=0)
            cached = self._rails_cache = (ext[k - 1][0], hi, lo, ext[k - 1][3])
        return float(cached[1][c]), float(cached[2][c]), float(cached[3][c])

    # -- scanning ------------------------------------------------------------------------
    def scan(self, start: int, x: Array) -> list[Span]:
        """Spans ``(channel, start, stop, kind)`` that became sure within this block of raw
        samples ``x`` (n, ch) starting at absolute index ``start`` (a run or a deflection
        still growing is reported again, longer, later)."""
        n = x.shape[0]
        spans: list[Span] = []
        if n == 0:
            return spans
        if n > self._max_chunk:  # bounded state; the result is the same
            for i in range(0, n, self._max_chunk):
                spans += self.scan(start + i, x[i : i + self._max_chunk])
            return spans
        if start != self._next or self._fresh:
            self._begin(start)
        self._next = start + n
        buf = np.concatenate((self._raw, x.T), axis=1)
        d = buf[:, 1:] - buf[:, :-1]
        width = buf.shape[1]
        q0 = width - n  # column of x[0]
        dn = d[:, q0 - 1 :] if q0 else d  # the difference into each new sample
        first = q0 - self._pending  # first column not judged yet
        p1 = width - self.lookahead
        plain = first > self.context and p1 > first
        if plain:  # one |d| for both tests: repeats among the new, jumps among the judged
            ad = np.abs(d[:, first - 1 :])
            any_repeat = np.count_nonzero(ad[:, q0 - first :]) != n * d.shape[0]
        else:
            any_repeat = np.count_nonzero(dn) != dn.size
        if any_repeat and self.skip_pairs and q0 >= 2 and min(self.clip_len, self.flat_len) >= 3:
            # Quantised data repeat a value now and then; only three equal samples in a row
            # (two zero differences side by side, the one into x[0] and the one before it
            # included) can start a run that is held or reported, and only a repeat at the
            # end can carry one into the next block: isolated pairs change nothing.
            z = d[:, q0 - 2 :] == 0
            any_repeat = bool(np.count_nonzero(z[:, 1:] & z[:, :-1]) or np.count_nonzero(z[:, -1]))
        if any_repeat:
            self._last_repeat = start + n
        # Judge first: a run is compared with the rails of blocks that ended at least
        # ``lookahead`` before it, which this call may complete.
        if p1 > first:
            a0 = self._raw_start + first
            if (
                plain
                and a0 % self.block + p1 - first <= self.block
                and not self._fix
                and self._last_repeat <= a0 - 3
                and not np.count_nonzero(ad[:, : p1 - first + 1] >= self._floor_col)
            ):
                self._plain(buf[:, first:p1], a0, spans)  # the usual case
            else:
                self._judge(buf, d, first, p1, spans)
            keep = p1 - self._keep_raw
            if keep > 0:
                self._raw = buf[:, keep:]
                self._raw_start += keep
            else:
                self._raw = buf
            self._pending = width - p1
        else:
            self._raw = buf
            self._pending = width - first
        if any_repeat:
            self._runs(start, x, dn, q0 > 0, spans)
        else:
            self._lazy_run = (start + n - 1, dn[:, -1] if dn.shape[1] else None)
        self._last_raw = x[-1]
        return spans

    def _begin(self, start: int) -> None:
        """A fresh start, or data not contiguous with the last (as after a gap)."""
        if self._origin is None:
            self._origin = start
        if not self._fresh:
            self.restart()
        self._raw_start = start
        wait = MOTION_WARMUP_S if start == self._origin else MOTION_REWARM_S
        np.maximum(self._mot_from, start + self._n(wait), out=self._mot_from)
        self._fresh = False

    # -- flat lines and clipping ---------------------------------------------------------
    def _runs(self, start: int, x: Array, dn: Array, carried: bool, spans: list[Span]) -> None:
        """Runs of identical raw values; ``dn`` holds the difference into each sample of
        ``x`` (into the first one too when ``carried``)."""
        n = x.shape[0]
        if self._lazy_run is not None:
            at, diff = self._lazy_run
            self._run_start[:] = at
            self._run_known[:] = False
            self._run_entry = np.abs(diff) if diff is not None else np.zeros(self.n_channels)
            self._lazy_run = None
        repeats = (dn == 0).any(axis=1)
        minlen = min(self.clip_len, self.flat_len)
        for c in range(self.n_channels):
            if repeats[c]:
                self._runs_of(c, start, x[:, c], carried and dn[c, 0] == 0, minlen, spans)
            else:
                self._run_start[c] = start + n - 1
                self._run_known[c] = False
                self._run_entry[c] = abs(float(dn[c, -1])) if dn.shape[1] else 0.0

    def _runs_of(
        self, c: int, start: int, col: Array, cont: bool, minlen: int, spans: list[Span]
    ) -> None:
        n = col.shape[0]
        change = np.flatnonzero(col[1:] != col[:-1]) + 1
        starts = [0, *change.tolist()]
        ends = [*change.tolist(), n]
        last = len(starts) - 1
        origin = self._origin or 0
        # Only the runs long enough to be a span and the last one (carried into the next
        # block) do anything below: skip the others (nearly every sample is a run of one).
        lengths = np.diff(np.concatenate(([0], change, [n])))
        if cont:
            lengths[0] = start + ends[0] - int(self._run_start[c])
        todo = np.flatnonzero(lengths >= minlen).tolist()
        if not todo or todo[-1] != last:
            todo.append(last)
        for k in todo:
            s0, e0 = starts[k], ends[k]
            carried = k == 0 and cont
            a = int(self._run_start[c]) if carried else start + s0
            length = start + e0 - a
            v = float(col[s0])
            if carried:
                entry = float(self._run_entry[c])
            else:
                prev = float(col[s0 - 1]) if s0 else float(self._last_raw[c])
                entry = 0.0 if math.isnan(prev) else abs(v - prev)
            if k == last:
                self._run_start[c] = a
                self._run_entry[c] = entry
            if length < minlen:
                if k == last:
                    self._run_known[c] = False
                continue
            if carried and self._run_known[c]:
                hi, lo, act = self._run_rails[c]
            else:
                hi, lo, act = self._rails_at(a, c)
                if k == last:
                    self._run_rails[c] = (hi, lo, act)
                    self._run_known[c] = True
            at_rail = a - origin >= self.warmup and hi > lo and (v >= hi or v <= lo)
            if at_rail and length >= self.clip_len:
                kind = "clip"
            elif not at_rail and length >= self.flat_len:
                kind = "flat"
            else:
                continue
            b = start + e0
            if e0 < n:  # the run ended here: the filters ring from its steps
                step = max(entry, abs(float(col[e0]) - v))
                if act > 0:
                    b += self._ring(step / (2.0 * act), RING_STEP)  # context ~ 2x mean
            spans.append((c, a, b, kind))

    # -- judging ---------------------------------------------------------------------------
    def _judge(self, buf: Array, d: Array, first: int, p1: int, spans: list[Span]) -> None:
        """Judge columns ``[first, p1)`` of ``buf`` (absolute ``self._raw_start + column``),
        block by block: the recent activity a jump is compared with is the last block's."""
        base, bsz = self._raw_start, self.block
        s = first
        while s < p1:
            e = min(p1, s + bsz - (base + s) % bsz)
            self._piece(buf, d, s, e, spans)
            s = e

    def _piece(self, buf: Array, d: Array, s: int, e: int, spans: list[Span]) -> None:
        """Columns ``[s, e)`` of ``buf``, all within one block."""
        a0 = self._raw_start + s
        lo_i = s if s > self.context else self.context + 1
        # cheap test first: no entry difference reaches the least that any jump needs
        if lo_i < e and np.count_nonzero(np.abs(d[:, lo_i - 1 : e]) >= self._floor_col):
            cols = self._candidates(d, lo_i, e)
            if cols is not None:
                for c, i, j, left, right in self._jumps(buf, d, cols, lo_i, e, spans):
                    self._fix.append((c, a0 + i - s, a0 + j - s, left, right))
        clean = buf[:, s:e]
        if self._fix or self._last_repeat > a0 - 3:
            clean = self._cleaned(clean, d, s, e, a0)
        self._plain(clean, a0, spans)

    def _plain(self, clean: Array, a0: int, spans: list[Span]) -> None:
        """Levels and motion on cleaned samples ``clean`` (ch, m) from ``a0``, in one block."""
        self._pieces.append(clean)
        self._blk_data = True
        stop = a0 + clean.shape[1]
        if not self.transients:  # the low-frequency band only serves motion
            if stop % self.block == 0:
                self._close_block(stop)
            return
        lf = np.array(clean, dtype=np.float64, order="C")
        zi = self._zi
        if zi is None:
            zi = self._zi = np.ascontiguousarray(self._zi_unit[None, :, :] * lf[:, :1, None])
        sosfilt_rows(self._sos, lf, zi)
        mx = np.maximum.reduce(np.abs(lf, out=lf), axis=1)
        if self._n_open or np.count_nonzero(mx >= self._thr):  # (transients: see above)
            self._motions(lf, mx, a0, spans)
        np.maximum(self._acc_lf, mx, out=self._acc_lf)
        if stop % self.block == 0:
            self._close_block(stop)

    def _cleaned(self, clean: Array, d: Array, s: int, e: int, a0: int) -> Array:
        """Despike (linear between the neighbours) and hold runs of identical values at the
        value before them, so that neither the low-frequency band nor the levels see them."""
        clean = clean.copy()
        if self._fix:
            self._apply_fixes(clean, a0, a0 + e - s)
        if s >= 2:
            eq = d[:, s - 2 : e + 1] == 0  # eq[:, k]: buf[s-1+k] == buf[s-2+k]
            run3 = eq[:, :-1] & eq[:, 1:]  # run3[:, k]: the triple centred on column s-1+k
            inrun = run3[:, :-2] | run3[:, 1:-1] | run3[:, 2:]  # column s+k is in a run
            if np.count_nonzero(inrun):
                for c, (k0, k1) in self._hold_runs(clean, inrun).items():
                    self._quiet(c, a0 + k0, a0 + k1 + 1)
        return clean

    def _candidates(self, d: Array, lo_i: int, e: int) -> NDArray[np.intp] | None:
        """Columns in ``[lo_i, e)`` where a spike or a step may start (None: nowhere).

        A necessary condition: the entry difference of a spike or a step (or the second one,
        for a two-sample step) is >= 8x its context and >= the channel's jump floor, or >= 5
        mV. The differences are cut into sub-blocks (``_sub``) aligned with column ``lo_i``:
        for every column whose entry lies in sub-block g, three whole sub-blocks lie in its
        context before (from g + ``_pre``) and in the part of its context after it that every
        spike and step length shares (from g + ``_post``), so the larger of those two
        smallest-of-three sub-block maxima bounds its context from below.
        """
        w, h = self.context, self._sub
        seg = np.abs(d[:, lo_i - 1 - w : e + w + self.max_spike])  # k + w: entry into lo_i + k
        nb = seg.shape[1] // h
        bmax = np.maximum.reduce(seg[:, : nb * h].reshape(seg.shape[0], nb, h), axis=2)
        m3 = np.minimum(np.minimum(bmax[:, :-2], bmax[:, 1:-1]), bmax[:, 2:])
        g0, g1 = w // h, (w + e - lo_i - 1) // h  # the sub-blocks holding entries
        pre, post = g0 + self._pre, g0 + self._post
        n = g1 - g0 + 1
        bound = np.maximum(m3[:, pre : pre + n], m3[:, post : post + n])
        # sub-block b holds the entries of group b and second differences of group b - 1
        both = np.minimum(
            np.concatenate((bound[:, :1], bound), axis=1),
            np.concatenate((bound, bound[:, -1:]), axis=1),
        )
        need = np.minimum(np.maximum(8.0 * both, self._floor_col), 5000.0)
        hit = np.logical_or.reduce(bmax[:, g0 : g0 + n + 1] >= need, axis=0)
        groups = np.flatnonzero(hit).tolist()
        if not groups:
            return None
        cols: set[int] = set()
        for j in groups:
            g = g0 + j
            cols.update(range(max(0, (g - 1) * h - w), min(e - lo_i, (g + 1) * h - w)))
        return np.array(sorted(cols), dtype=np.intp) + lo_i

    def _jumps(
        self, buf: Array, d: Array, cols: NDArray[np.intp], lo_i: int, e: int, spans: list[Span]
    ) -> list[tuple[int, int, int, float, float]]:
        """The exact tests, on raw samples, for spikes and steps starting at columns ``cols``
        (within ``[lo_i, e)``). Returns the despiking to apply: (channel, first column, stop
        column, value before, value after)."""
        w, rank, lmax = self.context, CONTEXT_RANK, self.max_spike
        base = self._raw_start
        off = lo_i - 1 - w
        # ctx[:, k] = 3rd largest |d| in columns [k + off, k + off + w)
        win = sliding_window_view(np.abs(d[:, off : e + lmax + w]), w, axis=1)
        ctx = np.partition(win, w - rank, axis=2)[:, :, w - rank]
        pre = ctx[:, cols - 1 - w - off]
        recent = (K_RECENT * self._act)[:, None]
        found: list[tuple[int, int, int, str, float, float, float]] = []
        for length in range(1, lmax + 1):  # spikes: a run of samples off both neighbours
            j = cols + length
            left, right = buf[:, cols - 1], buf[:, j]
            ref = 0.5 * (left + right)
            dev = buf[:, cols] - ref
            size = np.abs(dev)
            for k in range(1, length):
                dk = buf[:, cols + k] - ref
                size = np.where(dk * dev > 0, np.minimum(size, np.abs(dk)), 0.0)
            a = np.maximum(pre, ctx[:, j - off])
            ratio = size / np.maximum(np.maximum(a, np.abs(left - right)), 1e-12)
            hit = (ratio >= ISO_SPIKE) & (size >= np.maximum(recent, MIN_JUMP_UV))
            hit |= (ratio >= IMPOSSIBLE_ISO) & (size >= IMPOSSIBLE_UV)
            hit &= a > 0
            for c, k in zip(*np.nonzero(hit), strict=True):
                found.append(
                    (int(cols[k]), int(c), length, "spike", float(ratio[c, k]),
                     float(left[c, k]), float(right[c, k]))
                )  # fmt: skip
        for steps, iso in zip((1, 2), ISO_STEP, strict=True):  # steps that stay
            jump = buf[:, cols + steps - 1] - buf[:, cols - 1]
            post = ctx[:, cols + steps - 1 - off]
            size = np.abs(jump)
            ratio = size / np.maximum(np.maximum(pre, post), 1e-12)
            later = buf[:, cols + steps - 1 + w] - buf[:, cols - 1]
            hit = (ratio >= iso) & (size >= np.maximum(recent, MIN_JUMP_UV))
            hit |= (ratio >= IMPOSSIBLE_ISO) & (size >= IMPOSSIBLE_UV)
            hit &= (pre > 0) & (post > 0) & (later * jump >= STEP_PERSIST * jump * jump)
            for c, k in zip(*np.nonzero(hit), strict=True):
                found.append((int(cols[k]), int(c), steps, "pop", float(ratio[c, k]), 0.0, 0.0))
        found.sort(key=lambda f: (f[1], f[0], f[3] != "spike", f[2]))
        fixes: list[tuple[int, int, int, float, float]] = []
        for i, c, length, kind, size_ratio, v_left, v_right in found:
            at = base + i
            if at <= self._claimed[c]:
                continue
            self._claimed[c] = at + length  # a spike's exit is no step; a step is found once
            if kind == "spike":
                if self.transients:
                    ring = self._ring(size_ratio, RING_SPIKE)
                    spans.append((c, at, at + length + ring, kind))
                fixes.append((c, i, i + length, v_left, v_right))
            else:
                stop = at + length + self._ring(size_ratio, RING_STEP)
                if self.transients:
                    spans.append((c, at, stop, kind))
                self._pop_from[c] = at
                self._pop_until[c] = stop
                self._any_pop_until = max(self._any_pop_until, stop)
                self._quiet(c, at, max(stop, at + 1))
        return fixes

    def _quiet(self, c: int, start: int, stop: int) -> None:
        """No motion is judged on channel ``c`` in ``[start, stop + MOTION_QUIET_AFTER_S)``."""
        until = stop + self._n(MOTION_QUIET_AFTER_S)
        if start > self._quiet_until[c]:
            self._quiet_from[c] = start
        self._quiet_until[c] = max(self._quiet_until[c], until)

    def _apply_fixes(self, clean: Array, a0: int, a1: int) -> None:
        keep = []
        for c, i, j, left, right in self._fix:
            for k in range(max(i, a0), min(j, a1)):
                clean[c, k - a0] = left + (right - left) * (k - i + 1) / (j - i + 1)
            if j > a1:
                keep.append((c, i, j, left, right))
        self._fix = keep

    def _hold_runs(self, clean: Array, inrun: Mask) -> dict[int, tuple[int, int]]:
        """Hold runs at the value before them. Returns, per channel where that moved a sample
        by more than half the motion floor (a pinned run, not a quantisation repeat), the
        first and the last column held."""
        moved: dict[int, tuple[int, int]] = {}
        for c in np.flatnonzero(inrun.any(axis=1)).tolist():
            row = clean[c]
            hold = float(self._hold[c])
            for k, flag in enumerate(inrun[c].tolist()):
                if flag:
                    if math.isnan(hold):  # a run begins: hold the value before it
                        hold = float(self._last_clean[c]) if k == 0 else float(row[k - 1])
                    if abs(row[k] - hold) > 0.5 * MOTION_MIN_UV:
                        moved[c] = (moved[c][0] if c in moved else k, k)
                    row[k] = hold
                else:
                    hold = math.nan
            self._hold[c] = hold
        return moved

    @property
    def _last_clean(self) -> Array:
        last = self._pieces[-1] if self._pieces else self._tail
        return last[:, -1] if last.shape[1] else np.full(self.n_channels, np.nan)

    # -- motion ----------------------------------------------------------------------------
    def _motions(self, alf: Array, mx: Array, a0: int, spans: list[Span]) -> None:
        m = alf.shape[1]
        reports: dict[tuple[int, int], int] = {}
        history = np.concatenate((self._tail, *self._pieces), axis=1)
        for c in np.flatnonzero((mx >= self._thr) | self._mot_open).tolist():
            self._motion(c, a0, alf[c], history[c], history.shape[1] - m, reports)
        spans.extend((c, a, b, "motion") for (c, a), b in reports.items())

    def _activity(self, row: Array, col: int, n: int) -> Array:
        """The EMG-like activity at each of the ``n`` samples from history column ``col``:
        mean |difference| over the last ``activity_window`` samples, as an amplitude (uV)."""
        w = self.activity_window
        lo = max(0, col - w)
        cs = np.concatenate(([0.0], np.cumsum(np.abs(np.diff(row[lo : col + n])))))
        idx = np.arange(n) + (col - lo)  # cs index just after the difference into col + t
        begin = np.maximum(idx - w, 0)
        return (cs[idx] - cs[begin]) / np.maximum(idx - begin, 1) * self._activity_gain

    def _motion(
        self,
        c: int,
        at: int,
        seg: Array,
        row: Array,
        col: int,
        reports: dict[tuple[int, int], int],
    ) -> None:
        n = seg.shape[0]
        quiet = self._n(MOTION_QUIET_S)
        trig: Mask | None = None
        pos = 0
        while pos < n:
            if not self._mot_open[c]:
                if trig is None:
                    act = self._activity(row, col, n)
                    trig = (seg >= self._thr[c]) & (seg >= MOTION_K_ACTIVITY * act)
                    idx = at + np.arange(n)
                    trig &= idx >= self._mot_from[c]
                    if self._quiet_until[c] > at:
                        trig &= (idx < self._quiet_from[c]) | (idx >= self._quiet_until[c])
                hits = np.flatnonzero(trig[pos:])
                if hits.size == 0:
                    return
                t = pos + int(hits[0])
                begin = max(at + t - self._n(MOTION_BACK_S), int(self._mot_end[c]))
                self._mot_open[c] = True
                self._n_open += 1
                self._mot_start[c] = begin
                self._mot_last[c] = at + t
                self._mot_floor[c] = max(float(self._bg[c]), 0.5 * MOTION_MIN_UV)
                self._blk_motion[c] = True
                self._blk_motion_any = True
                reports[(c, begin)] = at + t + 1
                pos = t + 1
                continue
            self._blk_motion[c] = True
            self._blk_motion_any = True
            active = np.flatnonzero(seg[pos:] >= self._mot_floor[c]) + (at + pos)
            pts = np.concatenate(([self._mot_last[c]], active))
            gaps = np.flatnonzero(np.diff(pts) > quiet)
            last = int(pts[gaps[0]]) if gaps.size else int(pts[-1])
            if last > self._mot_last[c]:
                self._mot_last[c] = last
                reports[(c, int(self._mot_start[c]))] = last + 1
            if gaps.size or at + n - 1 - last >= quiet:  # ``quiet`` samples without: over
                self._mot_open[c] = False
                self._n_open -= 1
                self._mot_end[c] = last + 1
                pos = max(pos, last + 1 - at)
                continue
            return

    def _close_block(self, stop: int) -> None:
        """The block ending at absolute ``stop`` is complete: update the levels from it."""
        bsz = self.block
        # low-frequency background: commit the previous block unless it or this one moved
        self._bg *= self._bg_decay
        if self._blk_motion_any or not self._prev_all_ok:
            ok = ~self._blk_motion if self._prev_all_ok else self._prev_ok & ~self._blk_motion
            np.maximum(self._bg, np.where(ok, self._prev_lf, 0.0), out=self._bg)
            self._prev_ok = ~self._blk_motion
            self._prev_all_ok = not self._blk_motion_any
        else:
            np.maximum(self._bg, self._prev_lf, out=self._bg)
        self._prev_lf, self._acc_lf = self._acc_lf, self._prev_lf
        self._acc_lf.fill(0.0)
        self._thr = np.maximum(MOTION_K_BACKGROUND * self._bg, MOTION_MIN_UV)
        if self._blk_motion_any:
            self._blk_motion[:] = self._mot_open
            self._blk_motion_any = self._n_open > 0
        if not self._blk_data:
            return
        self._blk_data = False
        pieces = self._pieces
        blk = pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=1)
        self._pieces = []
        self._tail = blk[:, -self.activity_window :]
        if blk.shape[1] < 2:
            return
        # rails and recent activity, outside pops
        act = np.add.reduce(np.abs(blk[:, 1:] - blk[:, :-1]), axis=1) * (1.0 / (blk.shape[1] - 1))
        no_pop: Mask | None = None
        if self._any_pop_until > stop - bsz:
            no_pop = ~((self._pop_from < stop) & (self._pop_until > stop - bsz))
            act = np.where(no_pop, act, self._act)
        self._act = act
        self._jump_floor = np.minimum(np.maximum((0.5 * K_RECENT) * act, 0.5 * MIN_JUMP_UV), 5000.0)
        self._floor_col = self._jump_floor[:, None]
        bmax, bmin = np.maximum.reduce(blk, axis=1), np.minimum.reduce(blk, axis=1)
        if no_pop is not None:
            bmax, bmin = np.where(no_pop, bmax, np.nan), np.where(no_pop, bmin, np.nan)
        self._extremes.append((stop, bmax, bmin, act))


class SpanIndex:
    """Unusable spans per channel, pruned to a horizon, queried by interval overlap."""

    def __init__(self, n_channels: int, horizon: int) -> None:
        self.horizon = horizon
        self._spans: list[list[tuple[int, int, str]]] = [[] for _ in range(n_channels)]

    def add(self, channel: int, start: int, stop: int, kind: str) -> None:
        spans = self._spans[channel]
        if spans and spans[-1][2] == kind and spans[-1][0] <= start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(stop, spans[-1][1]), kind)
        else:
            spans.append((start, stop, kind))

    def add_all(self, start: int, stop: int, kind: str) -> None:
        for c in range(len(self._spans)):
            self.add(c, start, stop, kind)

    def overlaps(self, channel: int, start: int, stop: int) -> bool:
        return self.kind_overlapping(channel, start, stop) is not None

    def kind_overlapping(self, channel: int, start: int, stop: int) -> str | None:
        """Kind of the latest span of ``channel`` overlapping ``[start, stop)``, if any."""
        for a, b, kind in reversed(self._spans[channel]):
            if a < stop and b > start:
                return kind
        return None

    def prune(self, now: int) -> None:
        limit = now - self.horizon
        for c, spans in enumerate(self._spans):
            if spans and spans[0][1] < limit:
                self._spans[c] = [s for s in spans if s[1] >= limit]


def merge_spans(
    raw: dict[tuple[int, str], list[tuple[int, int]]],
) -> dict[tuple[int, str], list[tuple[int, int]]]:
    """Spans per (channel, kind) as reported, block by block, merged where they overlap (a
    run still growing is reported again, longer)."""
    out: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for key, spans in raw.items():
        merged: list[tuple[int, int]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        out[key] = merged
    return out
