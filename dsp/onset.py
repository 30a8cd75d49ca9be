"""Per-channel onset/offset detection on a detection statistic, streaming and vectorised.

Hodges & Bui (1996): activity starts when the statistic exceeds the rest mean + k*SD for a
minimum time. The moment the detector becomes sure is later than the real start of activity, so
the onset is back-dated to where the statistic last sat at baseline level (a second, lower
threshold, as in Bonato's double-threshold detector). The offset uses hysteresis: the statistic
must stay below a lower level for a minimum time.

Beside the two run tiers, a sequential test confirms an onset too (whichever is first): Page's
CUSUM on the statistic in baseline SDs, each sample's contribution capped. At low SNR a burst's
statistic crosses the threshold only now and then, so a run of 30 ms comes late; the CUSUM adds
up the evidence of the crossings and of the near misses between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dsp.ringbuffer import SlidingRows

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]

#: the 95 % quantile of chi-square with one degree of freedom (likelihood interval)
CHI2_95 = 3.84
#: residuals beyond this many robust SDs count as this many (Huber): a heartbeat or a lone
#: discharge in the rest part of the window is not a reason to doubt every candidate
HUBER = 2.0
#: the changepoint fit evaluates the smoothed statistic at this many points per correlation
#: length: finer adds cost, not information
POINTS_PER_CORR = 4
#: and at most this many points over its window (a coarse grid, refined around the best)
MAX_POINTS = 80
#: The rise shape of the onset interval's second model: power growing as (t - t0) ** 6, i.e.
#: amplitude as t ** 3. A contraction whose force starts smoothly (a sigmoid or raised-cosine
#: force ramp, recruitment accelerating) leaves its first tens of ms below the noise, and the
#: quadratic model then dates the onset late by much of that stretch; the data cannot tell
#: the two shapes apart at the start of a rise. The interval holds the onset either model puts
#: first (the point estimate stays the quadratic model's).
SMOOTH_START_POWER = 6.0


@dataclass(frozen=True)
class OnsetEvent:
    channel: int
    index: int  # estimated onset, absolute sample index
    detected_at: int  # sample index at which the detector became sure
    #: approximate 95 % interval of the onset (absolute indices, lo <= index <= hi); equal to
    #: ``index`` when the estimator gives none (the back-dating ablation)
    lo: int = -1
    hi: int = -1
    #: the burst was already under way when the stream (or the data after a gap) began: its
    #: true onset was never seen, so it cannot be compared
    censored: bool = False
    #: a heartbeat gate covered the onset (dsp.ecg_gate): ``lo`` reaches back over the beat
    beat: bool = False

    def __post_init__(self) -> None:
        if self.lo < 0:
            object.__setattr__(self, "lo", self.index)
        if self.hi < 0:
            object.__setattr__(self, "hi", self.index)


@dataclass(frozen=True)
class OffsetEvent:
    channel: int
    index: int
    detected_at: int
    peak: float  # burst maximum of the statistic


@dataclass(frozen=True)
class Thresholds:
    on: Array
    back: Array
    off: Array
    mean: Array  # the rest mean of the statistic the levels were made from


def first_run(mask: Mask, carry: int, need: int) -> tuple[int | None, int]:
    """Find the first run of True of length >= ``need``.

    ``carry`` is the length of a run of True that ended right before ``mask[0]``. Returns the
    run's start (negative when it began in an earlier chunk) or ``None``, and the length of the
    trailing run to carry into the next call.
    """
    n = mask.shape[0]
    if n == 0:
        return None, carry
    falses = np.flatnonzero(~mask)
    if not falses.size:  # one run through the whole mask, continuing the carried one
        total = carry + n
        return (-carry, 0) if total >= need else (None, total)
    f0 = int(falses[0])
    if carry + f0 >= need:  # the run that began before the mask (or at its start)
        return -carry, 0
    if falses.size == n:  # no True at all (the usual case of a fast threshold)
        return None, 0
    if falses.size > 1 and n - 2 >= need:  # a run between two False samples
        hit = np.flatnonzero(falses[1:] - falses[:-1] > need)
        if hit.size:
            return int(falses[int(hit[0])]) + 1, 0
    last = int(falses[-1])
    tail = n - 1 - last
    if tail >= need:
        return last + 1, 0
    return None, tail


def lindley(x: Array, s0: float) -> Array:
    """Page's CUSUM ``S_t = max(0, S_{t-1} + x_t)`` from ``S_{-1} = s0``, for every t.

    The closed form of the recursion (Lindley's): with ``W = s0 + cumsum(x)``,
    ``S_t = W_t - min(0, min_{j <= t} W_j)`` -- a few array operations instead of a loop."""
    w = np.add.accumulate(x)
    w += s0
    return w - np.minimum.accumulate(np.minimum(w, 0.0))


def cusum_segments(x: Array, free: Mask | None, s0: float) -> Array:
    """:func:`lindley` over ``x``, held at 0 on samples that are not ``free`` (an artefact's
    ringing must neither add evidence nor leave any behind)."""
    if free is None or bool(free.all()):
        return lindley(x, s0)
    out = np.zeros(x.shape[0])
    k = int(np.argmax(free))  # the usual held stretch: a burst's tail, then free samples on
    if free[k] and bool(free[k:].all()):
        out[k:] = lindley(x[k:], s0 if k == 0 else 0.0)
        return out
    edges = np.flatnonzero(np.diff(np.concatenate(([False], free, [False])).astype(np.int8)))
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        out[a:b] = lindley(x[a:b], s0 if a == 0 else 0.0)
    return out


def sliding_max(x: Array, w: int) -> Array:
    """``max(x[k : k + w])`` for every k (len(x) - w + 1 values; NaN where a window holds one).

    Van Herk / Gil-Werman: cut ``x`` into blocks of ``w``; a window spans the end of one
    block and the start of the next, so its maximum is that of a running maximum from the
    right in the first and one from the left in the second: O(len(x)) work in a few array
    operations, where a reduction over every window's ``w`` values costs ``w`` times as much.
    Maxima are exact, so the result equals the direct one to the bit."""
    m = x.shape[0] - w + 1
    if m <= 0:
        return np.empty(0)
    if w == 1:
        return np.array(x, dtype=np.float64)
    blocks = -(-x.shape[0] // w)
    padded = np.full(blocks * w, -np.inf)
    padded[: x.shape[0]] = x
    grid = padded.reshape(blocks, w)
    ahead = np.maximum.accumulate(grid, axis=1).reshape(-1)
    behind = np.maximum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    return np.maximum(behind[:m], ahead[w - 1 : w - 1 + m])


def _fits(xwy: Array, xxw: Array, wyy: float) -> tuple[Array, Array]:
    """Each candidate's least-squares amplitude ``beta >= 0`` and weighted residual sum, from
    its ramp's products with the data (``x @ (w * y)``, ``(x * x) @ w``) and ``sum(w * y * y)``:
    ``sum(w * (y - beta * x) ** 2)`` expanded, so that no candidate x point matrix of
    residuals is formed (the fit ran once per onset and per channel, a third of a chunk's
    time when one fired)."""
    beta = np.maximum(xwy / np.maximum(xxw, 1e-300), 0.0)
    rss = beta * (beta * xxw - 2.0 * xwy)
    rss += wyy
    return beta, rss


class _ChannelState:
    __slots__ = ("onset", "rest_from")

    def __init__(self) -> None:
        self.onset = -1
        self.rest_from = 0  # statistic index at which the last burst ended (onset search floor)


class OnsetDetector:
    """Streaming detector for all channels of a statistic ``s`` (n, ch)."""

    def __init__(
        self,
        n_channels: int,
        min_on: int,
        min_off: int,
        backdate_max: int,
        off_peak_fraction: float,
        rearm_ratio: float,
        delay: int = 0,
        off_delay: int = 0,
        rest_memory: int = 0,
        rest_window: int = 1,
        startup: int = 0,
        floor_window: int = 1,
        method: str = "changepoint",
        window: int = 0,
        corr_len: float = 1.0,
        ramp_power: float = 2.0,
        fast_ratio: float = 0.0,
        min_on_fast: int = 1,
        k_on: float = 4.0,
        cusum_k: float = 0.0,
        cusum_cap: float = 0.0,
        cusum_h: float = 0.0,
    ) -> None:
        self.n_channels = n_channels
        self.min_on = max(1, int(min_on))
        self.min_off = max(1, int(min_off))
        self.backdate_max = max(1, int(backdate_max))
        self.off_peak_fraction = off_peak_fraction
        self.rearm_ratio = rearm_ratio
        self.delay = delay
        self.off_delay = off_delay
        self.rest_memory = max(1, int(rest_memory))
        self.rest_window = max(1, int(rest_window))
        self.startup = max(0, int(startup))
        self.floor_window = max(1, int(floor_window))
        if method not in ("changepoint", "backdate"):
            raise ValueError(f"unknown onset method {method!r}")
        self.method = method
        self.window = max(1, int(window or backdate_max))
        self.corr_len = max(1.0, float(corr_len))
        self.ramp_power = ramp_power
        self._ramp_cache: dict[tuple[int, float], tuple[Array, Array]] = {}
        self._fine_cache: dict[tuple[int, int, int], tuple[Array, Array, Array]] = {}
        self.fast_ratio = fast_ratio
        self.min_on_fast = max(1, int(min_on_fast))
        # The sequential tier, in baseline SDs: ``k_on`` SDs make the distance from the rest
        # mean to the threshold in force (so over a tonic floor the SD scales with the re-arm
        # level, as the fast tier does); reference ``cusum_k``, cap ``cusum_cap``, alarm
        # level ``cusum_h`` in SD x samples (0: off).
        self.k_on = float(k_on)
        self.cusum_k = float(cusum_k)
        self.cusum_cap = float(cusum_cap)
        self.cusum_h = float(cusum_h)
        self.reset()

    def reset(self) -> None:
        ch = self.n_channels
        self._states = [_ChannelState() for _ in range(ch)]
        # Per channel, as arrays (the per-block fast path reads them all at once): in a
        # burst; the length of the run of samples beyond the threshold (row 0) and beyond the
        # fast threshold (row 1) that ended the last block (row 1 is 0 in a burst); the burst's
        # peak; the statistic level the last burst fell back to (its floor).
        self._active = np.zeros(ch, dtype=bool)
        self._carries = np.zeros((2, ch), dtype=np.int64)
        self._peak = np.zeros(ch)
        self._floor = np.zeros(ch)
        self._cusum = np.zeros(ch)  # the sequential tier's sum, carried while quiet
        # and the first statistic index it may count again after the last offset: the
        # statistic just after a burst is its tail, not rest, for ``rest_window`` samples
        self._seq_from = np.zeros(ch, dtype=np.int64)
        self._seq_level: tuple[Thresholds, Array] | None = None  # reference level per channel
        keep = max(max(self.backdate_max, self.window) + self.min_on + 1, self.rest_memory)
        self._hist_rows = SlidingRows(keep, ch)  # the statistic
        # Per sample: was the statistic at rest level (<= the back-dating level in force at
        # that sample)? Kept with the history so that questions about the past get the same
        # answer however the stream was chunked.
        self._rest_rows = SlidingRows(keep, ch, dtype=np.bool_)
        # the offset statistic of the last floor window (the tonic floor's cap)
        self._off_rows = SlidingRows(self.floor_window - 1, ch)
        self._csum_rows = SlidingRows(self.rest_window + 1, ch)
        self._csum_end = np.zeros(ch)
        self._hist_start = 0
        self._origin = -1  # first index after a (re)start, while it is in the history
        # The next (re)start goes on from another detector with primed filters and baseline
        # (dsp.pipeline.continued): no start-up there, see the censoring in _channel.
        self.primed_start = False
        self._origin_primed = False
        self._thr_seen: tuple[Thresholds, Mask] | None = None

    @property
    def active(self) -> Mask:
        return self._active.copy()

    @property
    def quiet(self) -> Mask:
        """Not in a burst, per channel (a new array)."""
        return ~self._active

    def force_quiet(self, channel: int) -> None:
        """End a burst without an offset event (e.g. a gap broke the stream)."""
        self._active[channel] = False
        self._carries[0, channel] = 0
        self._floor[channel] = 0.0
        self._cusum[channel] = 0.0
        self._seq_from[channel] = 0

    def process(
        self,
        start: int,
        s: Array,
        thr: Thresholds,
        blocked: Mask | None,
        s_off: Array | None = None,
        gated: Mask | None = None,
    ) -> list[OnsetEvent | OffsetEvent]:
        """Run over ``s`` (n, ch) starting at absolute ``start``, thresholds constant.

        ``blocked`` (n, ch) marks samples that may neither start nor end a burst (filters
        settling after a gap, an artefact ringing); None when there are none. ``gated`` marks
        samples that may neither start nor end one either (a heartbeat passing, see
        :mod:`dsp.ecg_gate`), but leave no ringing behind: the sequential tier goes on right
        after them. ``s_off`` is a more smoothed statistic for
        the offset decision: within a noisy burst the onset statistic dips, and a dip must
        not end the burst. Offsets are only used to separate reps, so the extra delay of the
        smoother (``off_delay``) costs nothing that matters.
        """
        if s_off is None:
            s_off = s
        ringing = blocked
        if gated is not None:
            blocked = gated if blocked is None else blocked | gated
        n = s.shape[0]
        tail = len(self._off_rows)
        off_hist = self._off_rows.push(s_off)
        if len(self._hist_rows) == 0:
            self._hist_start = self._origin = start  # fresh start or after a gap
            self._origin_primed, self.primed_start = self.primed_start, False
        hist = self._hist_rows.push(s)
        # At rest: at the rest level now, and no sustained activity below the threshold in
        # the last ``rest_window`` samples (a slowly recruiting muscle in noise dips to the
        # rest level often; its mean over a window does not).
        w = self.rest_window
        # Running sums: the cumulative sum of the statistic, carried across blocks, so the
        # mean of the last w samples costs a cumulative sum over the new block only.
        csum, new = self._csum_rows.reserve(n)
        np.add.accumulate(s, axis=0, out=new)
        new += self._csum_end
        self._csum_end = new[-1].copy()
        _, now_rest = self._rest_rows.reserve(n)
        np.less_equal(s, thr.back, out=now_rest)
        if csum.shape[0] > n + w:
            mean_w = (new - csum[-n - w : csum.shape[0] - w]) / w
            now_rest &= mean_w <= thr.back
        hist_start = self._hist_start
        events: list[OnsetEvent | OffsetEvent] = []
        # Fast path: a quiet channel that never crosses its threshold in this segment, and an
        # active one that never dips below its offset level, only update their carried state.
        seen = self._thr_seen
        if seen is None or seen[0] is not thr:
            seen = self._thr_seen = (thr, np.isfinite(thr.on))
        finite_on = seen[1]
        active = self._active
        n_active = int(np.count_nonzero(active))
        # Blocked samples (an artefact ringing) must neither start a burst nor raise a burst's
        # peak: the offset level follows the peak, and a pop's peak would end the burst at once.
        s_m = s if blocked is None else np.where(blocked, -np.inf, s)
        if n_active < self.n_channels:
            # (any sample above a level <=> the largest, NaN aside, above it)
            on_level = thr.on if n_active == 0 else np.where(active, np.inf, thr.on)
            top = np.fmax.reduce(s_m, axis=0)
            quiet_work = (top > on_level) | (self._floor > thr.on)
            if self.cusum_h > 0:
                quiet_work |= self._cusum_bulk(start, s, top, thr, blocked, ~active & ~quiet_work)
        if n_active:
            # The offset level only rises with the running peak, so nothing below the level of
            # the final peak means nothing below at any sample.
            peaks = np.maximum(self._peak, np.maximum.reduce(s_m, axis=0))
            off_level = np.maximum(thr.off, self.off_peak_fraction * peaks)
            dips = np.fmin.reduce(s_off, axis=0) < off_level  # (comparisons with NaN: False)
        if n_active == 0:
            work = finite_on & quiet_work
        elif n_active == self.n_channels:
            work = finite_on & dips
        else:
            work = finite_on & np.where(active, dips, quiet_work)
        idle = finite_on & ~work
        self._carries[:, idle] = 0  # (the fast carry is 0 in a burst)
        if n_active:
            self._peak = np.where(idle & active, peaks, self._peak)
        def unringing(c: int) -> Mask | None:
            if gated is None:
                return None  # blocked samples all ring
            return np.ones(n, dtype=bool) if ringing is None else ~ringing[:, c]

        for c in np.flatnonzero(work).tolist():
            events.extend(
                self._channel(
                    c,
                    start,
                    s[:, c],
                    off_hist[:, c],
                    tail,
                    thr,
                    None if blocked is None else ~blocked[:, c],
                    hist[:, c],
                    hist_start,
                    unringing(c),
                )
            )
        self._hist_start = start + n - len(self._hist_rows)
        return events

    def _channel(
        self,
        c: int,
        start: int,
        s: Array,
        off_hist: Array,
        tail: int,
        thr: Thresholds,
        free: Mask | None,
        hist: Array,
        hist_start: int,
        unringing: Mask | None = None,
    ) -> list[OnsetEvent | OffsetEvent]:
        """One channel's pass. ``free``: samples that may start or end a burst; ``unringing``:
        those of them not in an artefact's ringing, when that differs (heartbeat gates)."""
        st = self._states[c]
        rung = free if unringing is None else unringing
        active = bool(self._active[c])
        carry, carry_fast = int(self._carries[0, c]), int(self._carries[1, c])
        peak, st_floor = float(self._peak[c]), float(self._floor[c])
        seq = float(self._cusum[c])  # the sequential tier's sum (0 in a burst)
        use_seq = self.cusum_h > 0
        seq_from = int(self._seq_from[c])  # the tier counts from this index on
        seq_next = seq_from
        seq_ok: Mask | None = None  # and not on the samples marked False here
        if use_seq and rung is not None and not bool(rung.all()):
            # What follows an artefact's blocked stretch is its ringing's tail (the notches
            # ring longest), not rest: the sequential tier, which adds up exactly such
            # intermittent crossings, waits ``rest_window`` samples after each blocked one.
            w = self.rest_window
            cnt = np.concatenate(([0], np.add.accumulate(~rung, dtype=np.int64)))
            idx = np.arange(1, s.shape[0] + 1)
            seq_ok = cnt[idx] - cnt[np.maximum(idx - w - 1, 0)] == 0
            seq_next = max(seq_from, start + int(np.flatnonzero(~rung)[-1]) + 1 + w)
        on_c, back_c, off_c = thr.on[c], thr.back[c], thr.off[c]
        s_off = off_hist[tail:]
        events: list[OnsetEvent | OffsetEvent] = []
        i = 0
        n = s.shape[0]
        if not active and st_floor > on_c and n:
            # Quiet over a tonic floor, nothing above the threshold (the re-arm level and
            # the fast level are higher still): only the floor follows the channel down.
            # The loop below would find no run and keep the floor's last value.
            top = float(np.max(s))
            mean_c = thr.mean[c]
            if not top > on_c and not (
                self.fast_ratio > 0 and top > mean_c + self.fast_ratio * (on_c - mean_c)
            ):
                alarm = None
                recent = self._recent_max(off_hist, tail)  # (one sliding maximum for both)
                if use_seq:
                    # The sequential tier sleeps over a tonic floor (the baseline SDs do not
                    # describe activity's fluctuations) and wakes where the floor has gone.
                    calm = ~(np.minimum.accumulate(np.minimum(recent, st_floor)) > on_c)
                    calm[: max(0, min(seq_from - start, n))] = False
                    if seq_ok is not None:
                        calm &= seq_ok
                    alarm, seq = self._cusum_alarm(
                        s, mean_c, on_c, calm if free is None else free & calm, seq
                    )
                if alarm is None:
                    end = np.minimum(np.min(recent), st_floor)
                    self._floor[c] = float(end) if end > on_c else 0.0
                    self._carries[0, c] = 0
                    if self.fast_ratio > 0:
                        self._carries[1, c] = 0
                    self._cusum[c] = seq
                    self._seq_from[c] = seq_next
                    return events
                seq = float(self._cusum[c])  # the loop below finds the alarm again
        while i < n:
            seg = s[i:]
            free_i = None if free is None else free[i:]
            if not active:
                on: float | Array = on_c
                back_level = back_c
                floor: Array | None = None
                if st_floor > on_c:  # tonic activity: demand a clear rise above it
                    floor = self._floor_track(st_floor, off_hist, tail + i)
                    tonic = floor > on_c
                    on = np.where(tonic, floor * self.rearm_ratio, on_c)
                mask = seg > on
                if free_i is not None:
                    mask &= free_i
                run, carry = first_run(mask, carry, self.min_on)
                need = self.min_on
                if self.fast_ratio > 0:
                    # Strong evidence confirms sooner: far above the threshold, a shorter
                    # run is as unlikely at rest as the full one just above it.
                    fast_on = thr.mean[c] + self.fast_ratio * (on - thr.mean[c])
                    fast = seg > fast_on
                    if free_i is not None:
                        fast &= free_i
                    run_f, carry_fast = first_run(fast, carry_fast, self.min_on_fast)
                    if run_f is not None and (
                        run is None or run_f + self.min_on_fast < run + self.min_on
                    ):
                        run, need = run_f, self.min_on_fast
                if use_seq:
                    # Accumulated evidence confirms too: an intermittent crossing at low SNR
                    # (off over a tonic floor, held at 0 on blocked samples).
                    seq_free = free_i
                    if floor is not None:
                        calm = ~tonic
                        seq_free = calm if seq_free is None else seq_free & calm
                    if seq_ok is not None:
                        seq_free = seq_ok[i:] if seq_free is None else seq_free & seq_ok[i:]
                    wait = seq_from - start - i  # a burst's tail: not rest
                    if wait > 0:
                        mine = np.ones(seg.shape[0], dtype=bool)
                        seq_free = mine if seq_free is None else seq_free & mine
                        seq_free[: min(wait, seg.shape[0])] = False
                    alarm, seq_end = self._cusum_alarm(seg, float(thr.mean[c]), on, seq_free, seq)
                    if alarm is not None and (run is None or alarm < run + need - 1):
                        run, need = alarm, 1
                if run is None:
                    if floor is not None:
                        st_floor = float(floor[-1]) if floor[-1] > on_c else 0.0
                    if use_seq:
                        seq = seq_end
                    break
                carry_fast = 0
                seq = 0.0
                if floor is not None:
                    level = float(floor[max(run, 0)])
                    if level > on_c:
                        back_level = level
                    st_floor = 0.0
                run_start = start + i + run
                detected = run_start + need - 1
                if self.method == "changepoint":
                    rest_level = float(thr.mean[c]) if back_level == back_c else back_level
                    onset, lo, hi = self._changepoint(
                        hist, hist_start, max(st.rest_from, hist_start), detected, rest_level
                    )
                else:
                    onset = self._backdate(hist, hist_start, run_start, back_level)
                    lo = hi = onset
                active, carry, st.onset = True, 0, onset
                peak = float(np.max(hist[run_start - hist_start : detected - hist_start + 1]))
                censored = False
                if hist_start == self._origin and self._origin_primed:
                    # Going on from another detector at rest (settings changed; filters and
                    # baseline primed, no start-up): only a burst already on at the switch
                    # is under way since before, the tail of the other's last rep. One
                    # beginning just after is a rep (it was told "already active" too).
                    censored = run_start - hist_start <= self.min_on
                elif hist_start == self._origin:
                    # Under way since the data began: above the threshold through most of
                    # what came before, or dated back into the filters' start-up.
                    before = hist[: run_start - hist_start]
                    censored = onset - self.delay < self._origin + self.startup or bool(
                        before.size and np.mean(before > on_c) >= 0.8
                    )
                d = self.delay
                first = hist_start if hist_start == self._origin else 0  # no onset before data
                events.append(
                    OnsetEvent(
                        c,
                        max(onset - d, first),
                        detected - d,
                        max(lo - d, first),
                        max(hi - d, first),
                        censored=censored,
                    )
                )
                i = detected - start + 1
            else:
                if free_i is None:
                    peaks = np.maximum.accumulate(np.maximum(seg, peak))
                    mask = s_off[i:] < np.maximum(off_c, self.off_peak_fraction * peaks)
                else:
                    peaks = np.maximum.accumulate(np.maximum(np.where(free_i, seg, -np.inf), peak))
                    mask = s_off[i:] < np.maximum(off_c, self.off_peak_fraction * peaks)
                    mask &= free_i
                run, carry = first_run(mask, carry, self.min_off)
                if run is None:
                    peak = float(peaks[-1])
                    break
                run_start = start + i + run
                detected = run_start + self.min_off - 1
                lo = max(run_start - hist_start, 0)
                peak = float(peaks[min(max(run, 0), len(peaks) - 1)])
                st_floor = float(np.mean(hist[lo : detected - hist_start + 1]))
                st.rest_from = run_start - self.off_delay
                seq_from = detected + 1 + self.rest_window
                off_at = run_start - self.delay - self.off_delay
                events.append(OffsetEvent(c, off_at, detected - self.delay, peak))
                active, carry = False, 0
                i = detected - start + 1
        self._active[c] = active
        self._carries[0, c], self._carries[1, c] = carry, carry_fast
        self._peak[c], self._floor[c] = peak, st_floor
        self._cusum[c] = 0.0 if active else seq
        self._seq_from[c] = max(seq_from, seq_next)
        return events

    def _cusum_bulk(
        self,
        start: int,
        s: Array,
        top: Array,
        thr: Thresholds,
        blocked: Mask | None,
        quiet: Mask,
    ) -> Mask:
        """Run the sequential tier over the block for the ``quiet`` channels (not in a burst,
        no tonic floor, nothing above the threshold) at once; store their sums and return which
        of them need the per-channel pass (an alarm, a blocked sample, a NaN, a burst's
        tail)."""
        need = np.zeros(self.n_channels, dtype=bool)
        # Most of the time at rest the sum is 0 and no sample is above the reference: then it
        # stays 0 (every increment is negative), and nothing needs computing.
        # (``top``: the block's highest unblocked sample per channel; blocked channels are
        # passed on, their ringing's tail is for the per-channel pass to hold back)
        if self._seq_level is None or self._seq_level[0] is not thr:
            level = thr.mean + self.cusum_k * (thr.on - thr.mean) / self.k_on
            self._seq_level = (thr, level)
        moving = (self._cusum > 0) | ~(top <= self._seq_level[1])
        if blocked is not None:
            moving |= np.any(blocked, axis=0)
        cols = np.flatnonzero(quiet & moving)
        if not cols.size:
            return need
        x = self._cusum_increments(s[:, cols], thr.mean[cols], thr.on[cols])
        s0 = self._cusum[cols]
        wait = self._seq_from[cols] - start  # a burst's tail: the sum held at 0 until it ends
        waiting = wait > 0
        if waiting.any():
            # ... and starting afresh from 0 there, as in the per-channel pass
            # (:func:`cusum_segments`); leading zeros leave the closed form's sums unchanged.
            s0 = np.where(waiting, 0.0, s0)
            x[np.arange(s.shape[0])[:, None] < wait[None, :]] = 0.0
        w = np.add.accumulate(x, axis=0)
        w += s0
        sums = w - np.minimum.accumulate(np.minimum(w, 0.0), axis=0)
        hit = ~(np.max(sums, axis=0) <= self.cusum_h)  # (NaN: to the per-channel pass)
        if blocked is not None:
            hit |= np.any(blocked[:, cols], axis=0)
        need[cols[hit]] = True
        keep = cols[~hit]
        self._cusum[keep] = sums[-1, ~hit]
        return need

    def _cusum_increments(self, s: Array, mean: Array | float, on: Array | float) -> Array:
        """Each sample's contribution to the sum: the statistic in baseline SDs (``k_on`` of
        them from the rest mean to the threshold in force), capped, less the reference."""
        z = (s - mean) * (self.k_on / np.maximum(on - mean, 1e-300))
        np.minimum(z, self.cusum_cap, out=z)
        z -= self.cusum_k
        return z

    def _cusum_alarm(
        self, seg: Array, mean: float, on: float | Array, free: Mask | None, s0: float
    ) -> tuple[int | None, float]:
        """First sample of ``seg`` at which the sum exceeds its alarm level (None if none),
        and the sum at the end. Samples that are not ``free`` hold it at 0."""
        x = self._cusum_increments(seg, mean, on)
        ok = ~np.isnan(x)
        if free is not None:
            ok &= free
        sums = cusum_segments(np.where(ok, x, 0.0), None if ok.all() else ok, s0)
        hits = np.flatnonzero(sums > self.cusum_h)
        return (int(hits[0]) if hits.size else None), float(sums[-1])

    def _floor_track(self, floor: float, s_off: Array, pos: int) -> Array:
        """The tonic floor per sample of ``s_off[pos:]`` while the channel is quiet: never
        above the highest (offset-smoothed) statistic of the last ``floor_window`` samples.

        A burst's floor is the level the channel stayed at after it (tonic activity), and a
        new burst must rise clearly above it. An artefact (an electrode pop, a cable knock)
        leaves a huge floor behind: kept, ``floor * rearm_ratio`` would be a permanent re-arm
        level and blind the channel for the rest of the stream. Capped by the recent maximum,
        a floor follows the channel down within one window once it is quieter, and tonic
        activity, whose recent maximum stays above its mean, keeps its floor.
        """
        return np.minimum.accumulate(np.minimum(self._recent_max(s_off, pos), floor))

    def _recent_max(self, s_off: Array, pos: int) -> Array:
        """The highest of the last ``floor_window`` samples of ``s_off`` at each sample from
        ``pos`` on (a shorter history is padded with its first value)."""
        w = self.floor_window
        need = s_off.shape[0] - pos + w - 1  # a whole window behind every sample from pos
        ext = s_off[max(pos - w + 1, 0) :]
        if ext.shape[0] < need:  # the history is shorter than a window: pad with the first value
            ext = np.concatenate((np.full(need - ext.shape[0], ext[0]), ext))
        return sliding_max(ext, w)

    def first_at_rest(self, channel: int, index: int) -> int | None:
        """First reported index >= ``index`` at which the channel's statistic was at rest
        level, among the samples seen so far (None if none yet)."""
        lo = index + self.delay - self._hist_start  # reported index -> history row
        window = self._rest_rows.tail()[max(lo, 0) :, channel]
        hits = np.flatnonzero(window)
        if hits.size == 0:
            return None
        return self._hist_start + max(lo, 0) + int(hits[0]) - self.delay

    def _changepoint(
        self, hist: Array, hist_start: int, floor_index: int, detected: int, rest: float
    ) -> tuple[int, int, int]:
        """Onset as the change point of a two-phase model, with an approximate 95 % interval.

        Model, over the look-back window up to the sure crossing: the statistic sits at its
        rest level ``rest`` until t0, then rises as ``rest + beta * (t - t0) ** p`` with
        ``p = ramp_power`` (2: EMG amplitude grows about in proportion to force, Lawrence &
        De Luca 1983, and force ramps about linearly at the start of a voluntary contraction,
        so power grows with the square of the time since onset). t0 is the maximum-likelihood
        change point (segmented regression, cf. the changepoint family Staude 2001 reviews);
        ``beta`` is solved in closed form for every candidate. Errors are weighted by the
        statistic's own level (a smoothed energy: its SD grows with its mean), so the quiet
        part before the change counts as much as the burst. Walking back to the last sample
        below a level (the back-dating ablation) stops at the first dip of a slow or sparse
        recruitment and lands late by a large part of the rise; the fit uses the whole rise.
        The window never reaches back past the end of the channel's last burst.

        Interval: the t0 whose residual sum is within chi2(1, 0.95) = 3.84 of the best's, each
        candidate weighted by its own fit, residuals in robust SDs and Huber-clipped, counted
        per independent sample (``corr_len`` samples of the smoothed statistic make one); and
        widened to hold the change point a smoother start gives (``SMOOTH_START_POWER``): the
        noise alone is not the whole uncertainty when the rise may be shaped unlike the
        model. The benchmark reports how often it holds the truth.
        """
        lo = max(detected - self.window, hist_start, floor_index)
        seg = hist[lo - hist_start : detected - hist_start + 1]
        if seg.size < 4:
            return detected, detected, detected
        step = max(1, round(self.corr_len / POINTS_PER_CORR), -(-seg.size // MAX_POINTS))
        sub = np.ascontiguousarray(seg[::step])  # (a column of the history: strided twice)
        # A rest level of 0 (a flat, dead channel) would weigh its points infinitely: keep it
        # a hair above 0 (no change for any real rest, which is far above this)
        rest = max(rest, 1e-9 * float(np.max(sub)), 1e-300)
        y = sub - rest
        x, xx = self._ramps(y.size)  # row j: the ramp that starts at point j; its square
        # Weights 1 / level^2 (the statistic's SD grows with its mean), from the data.
        w = 1.0 / np.maximum(sub, rest) ** 2
        wy = w * y
        wyy = float(wy @ y)
        beta, rss = _fits(x @ wy, xx @ w, wyy)
        j = int(np.argmin(rss))
        if j == 0 and lo > floor_index and y[0] > 0:
            # Already rising where the window begins (tonic activity, a set without rest, a
            # stream that began mid-burst): the quietest point is the best estimate, with the
            # whole window as its uncertainty.
            return lo + int(np.argmin(seg)), lo, detected
        # For the interval each candidate is judged with weights from its own fit (one
        # re-weighting step): with the data's weights, a candidate that starts a gentle ramp
        # long before the burst would discount the burst points it fails to fit.
        # (In place, in as few passes over the candidates x points as the algebra allows.)
        inv = np.multiply(beta[:, None], x)
        inv += rest
        np.reciprocal(inv, out=inv)  # 1 / each candidate's fitted level
        u = x * inv  # the ramp, standardised
        v = np.multiply(inv, y[None, :], out=inv)  # the data, standardised
        bj = np.maximum(
            np.einsum("jt,jt->j", u, v) / np.maximum(np.einsum("jt,jt->j", u, u), 1e-300), 0.0
        )
        u *= bj[:, None]
        z = np.subtract(v, u, out=v)  # standardised residuals
        # A robust scale and Huber-clipped residuals: a heartbeat or a single discharge in
        # the rest part that no candidate explains must not widen every candidate's interval.
        dev = np.abs(z[j])
        scale = 1.4826 * float(np.partition(dev, dev.size // 2)[dev.size // 2]) + 1e-300
        cap = HUBER * scale
        np.minimum(np.maximum(z, -cap, out=z), cap, out=z)  # (np.clip, fewer calls)
        rj = np.einsum("jt,jt->j", z, z)
        rj /= scale * scale
        independent = step / self.corr_len  # independent samples per fitted point
        near = np.flatnonzero((rj - rj[j]) * independent <= CHI2_95)
        first, last = (min(int(near[0]), j), max(int(near[-1]), j)) if near.size else (j, j)
        # Model uncertainty: where a smoother start puts the change (measured on both test
        # generators, this is what brings the intervals near their 95 %: the noise alone
        # left the truth outside on 47 % of clean onsets, nearly all earlier than the interval)
        xs, xs2 = self._ramps(y.size, SMOOTH_START_POWER)
        js = int(np.argmin(_fits(xs @ wy, xs2 @ w, wyy)[1]))
        first, last = min(first, js), max(last, js)
        # Refine between the neighbouring points, at the sample's resolution.
        t0, xf, xf2 = self._fine_ramps(y.size, step, j)
        best = float(t0[int(np.argmin(_fits(xf @ wy, xf2 @ w, wyy)[1]))])
        onset = lo + round(best * step)
        return onset, min(lo + first * step, onset), max(lo + last * step, onset)

    def _ramps(self, n: int, power: float | None = None) -> tuple[Array, Array]:
        """``max(t - j, 0) ** power`` (default ``ramp_power``) for every candidate j < n - 1 and
        point t < n, and its square (the same for every onset with a full window, so made
        once)."""
        p = self.ramp_power if power is None else power
        got = self._ramp_cache.get((n, p))
        if got is None:
            t = np.arange(n, dtype=np.float64)
            x = np.maximum(t[None, :] - t[:-1, None], 0.0) ** p
            got = (x, x * x)
            if len(self._ramp_cache) < 8:  # full windows share one size: a few suffice
                self._ramp_cache[(n, p)] = got
        return got

    def _fine_ramps(self, n: int, step: int, j: int) -> tuple[Array, Array, Array]:
        """The refinement's candidates around point j (fractions of a point, within the
        window) and their ramps and squared ramps over the n points (made once per case)."""
        key = (n, step, j)
        got = self._fine_cache.get(key)
        if got is None:
            t = np.arange(n, dtype=np.float64)
            t0 = j + np.arange(-step + 1, step) / step
            t0 = t0[(t0 >= 0) & (t0 <= n - 2)]
            xf = np.maximum(t[None, :] - t0[:, None], 0.0) ** self.ramp_power
            got = (t0, xf, xf * xf)
            if len(self._fine_cache) < 512:
                self._fine_cache[key] = got
        return got

    def _backdate(self, hist: Array, hist_start: int, run_start: int, level: float) -> int:
        """Last index before ``run_start`` where the statistic was at baseline level."""
        lo = max(run_start - self.backdate_max, hist_start)
        window = hist[lo - hist_start : run_start - hist_start]
        if window.size == 0:
            return run_start
        below = np.flatnonzero(window <= level)
        if below.size:
            return lo + int(below[-1]) + 1
        # Never quiet within reach: take the quietest point as the best estimate.
        return lo + int(np.argmin(window))
