"""The streaming pipeline shared by live use, replay and offline analysis.

raw chunk -> gap/duplicate accounting -> artefact spans -> conditioning (band-pass, notch,
ECG high-pass on lumbar channels) -> detection statistic -> baseline + onset detector (split at
baseline block boundaries) -> rep tracker -> events. Everything is causal and carries its state,
so the result does not depend on how the stream is cut into chunks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from dsp.artefacts import ArtefactScanner, SpanIndex
from dsp.baseline import BaselineEstimate, BaselineTracker
from dsp.contract import MAX_PLAUSIBLE_UV, Chunk, Role, StreamInfo
from dsp.ecg_gate import EcgGate
from dsp.envelope import Tkeo
from dsp.events import ArtefactEvent, Event, GapEvent, RepsRejudged
from dsp.filters import (
    cascade,
    design_bandpass,
    design_highpass,
    design_lowpass,
    design_notch,
    sosfilt_rows,
    sosfilt_zi,
)
from dsp.onset import OnsetDetector, OnsetEvent, Thresholds
from dsp.reps import RepEnded, RepResult, RepTracker
from dsp.settings import DspSettings
from dsp.templates import get_template

log = logging.getLogger(__name__)

#: the longest run of missing samples held over (each channel its last value): a few ms is
#: shorter than one motor-unit action potential (≈ 5–10 ms), so holding it cannot make or
#: hide a burst; longer runs are gaps (filters restart, data settle).
BRIDGE_MS = 5.0
Array = NDArray[np.float64]

#: artefact kinds that pass (a spike, a pop, a motion transient, a clipping run): they block
#: onsets and offsets on their channel while the filters ring, then the channel works as before
TRANSIENT_KINDS = frozenset({"spike", "pop", "motion", "clip"})


def joined(chunks: list[Chunk], most: int) -> list[Chunk]:
    """Consecutive chunks (no gap between them) joined into runs of up to ``most`` samples.
    A pipeline call costs about as much for one sample as for a thousand: a re-judge that
    replayed a stream's first 8 s in the sample or two of each read took seconds."""
    out: list[Chunk] = []
    parts: list[Chunk] = []

    def flush() -> None:
        if parts:
            data = parts[0].data if len(parts) == 1 else np.concatenate([c.data for c in parts])
            out.append(Chunk(data, parts[0].start, parts[0].timestamp))
            parts.clear()

    size = 0
    for c in chunks:
        if parts and (c.start != parts[-1].stop or size + c.n_samples > most):
            flush()
            size = 0
        parts.append(c)
        size += c.n_samples
    flush()
    return out


def continued(
    old: Pipeline, info: StreamInfo, settings: DspSettings, start: int, raw: Array
) -> Pipeline:
    """A pipeline that goes on where ``old`` stopped with other ``settings`` (changed
    mid-stream, at rest), its filters and rest baseline primed from ``raw``: the raw rows kept
    before the change, from absolute ``start`` up to ``old.next_index``. Reps go on being
    numbered after ``old``'s. Started afresh instead, it learned rest again: a burst just
    after the change went undetected and the next reps were judged against a provisional
    baseline. Live sessions prime from their raw ring (``buffer_s``), an offline analysis of
    a recording from the same span of the file (:data:`CONTINUE_PRIME_S`), so that both
    judge what follows alike."""
    new = Pipeline(info, settings, display=old.display)
    end = old.next_index
    cut = (-start) % new.baseline.block  # (baseline blocks aligned as in one pass)
    if start + raw.shape[0] != end or raw.shape[0] - cut < new.baseline.block:
        new.resume_at(end, old.reps_numbered)  # nothing kept to prime from
        new.continues_rep(primed=False)
        return new
    new.resume_at(start + cut, old.reps_numbered)  # (the numbering; priming the rest)
    new.prime_baseline(start + cut, raw[cut:])
    new.continues_rep()
    return new


#: How much raw signal before a settings change primes the pipeline that follows it (s): a
#: live session keeps this much raw history by default (``LiveSession.buffer_s``).
CONTINUE_PRIME_S = 32.0


@dataclass(frozen=True)
class Processed:
    """What one chunk produced: display signals (None when display is off) and events."""

    start: int
    filtered: Array | None
    envelope: Array | None
    events: list[Event]


class Pipeline:
    def __init__(
        self, info: StreamInfo, settings: DspSettings | None = None, display: bool = True
    ) -> None:
        self.info = info
        self.settings = settings or DspSettings()
        self.display = display
        self.template = get_template(self.settings.exercise)
        self.glutes, self.lumbars = self.template.resolve(info)
        self._build()

    # -- construction ---------------------------------------------------------------
    def _ms(self, ms: float) -> int:
        return max(1, round(ms * self.info.fs / 1000.0))

    def _build(self) -> None:
        s, fs, ch = self.settings, self.info.fs, self.info.n_channels
        base = cascade(
            design_bandpass(fs, s.bandpass_low_hz, s.bandpass_high_hz, s.bandpass_order),
            design_notch(fs, s.notch_hz, s.notch_harmonics, s.notch_q),
        )
        lumbar_idx = [i for r, i in self.info.roles.items() if r.is_lumbar]
        # One pass of the band-pass and notch sections over every channel, then the ECG
        # high-pass sections over the lumbar rows alone: the same arithmetic per sample as one
        # cascade per channel group (the sections run one after the other), fewer calls.
        self._base_sos = np.ascontiguousarray(base)
        base_unit = sosfilt_zi(self._base_sos)
        self._zi_base_unit = np.repeat(base_unit[None], ch, axis=0)  # (ch, sections, 2)
        self._hp_sos: Array | None = None
        self._hp_unit: Array | None = None
        self._lumbar = np.array(sorted(lumbar_idx), dtype=np.intp)
        # Lumbar channels side by side (the usual layout): their rows are one contiguous
        # slice, filtered in place instead of copied out and back.
        n_lumbar = len(self._lumbar)
        lo = int(self._lumbar[0]) if n_lumbar else 0
        side_by_side = n_lumbar and np.array_equal(self._lumbar, np.arange(lo, lo + n_lumbar))
        self._lumbar_rows = slice(lo, lo + n_lumbar) if side_by_side else None
        if s.ecg_highpass_hz > 0 and lumbar_idx:
            ecg = cascade(base, design_highpass(fs, s.ecg_highpass_hz, s.ecg_highpass_order))
            k = len(self._base_sos)
            self._hp_sos = np.ascontiguousarray(ecg[k:])
            ecg_unit = sosfilt_zi(ecg)  # what a lumbar channel's state starts from
            self._zi_base_unit[self._lumbar] = ecg_unit[None, :k]
            self._hp_unit = np.repeat(ecg_unit[None, k:], len(self._lumbar), axis=0)
        # heartbeats on the lumbar channels: where a QRS, not EMG, may lift the statistic
        self._ecg_gate = (
            EcgGate(fs, n_lumbar, s.ecg_gate_ratio) if s.ecg_gate_ratio > 0 and n_lumbar else None
        )
        self._beats: dict[int, list[tuple[int, int]]] = {}  # lumbar channel -> recent gates
        self._zi_base: Array | None = None  # filter states (rows, sections, 2), None: restart
        self._zi_hp: Array | None = None
        self._tkeo = Tkeo() if s.detector == "tkeo" else None
        self._tk_prev: Array | None = None  # the TKEO's last two input samples (ch, 2)
        self._stat_sos = np.ascontiguousarray(design_lowpass(fs, s.detector_lowpass_hz, 2))
        self._off_sos = np.ascontiguousarray(design_lowpass(fs, s.offset_lowpass_hz, 2))
        self._zi_stat = np.zeros((ch, len(self._stat_sos), 2))
        self._zi_off = np.zeros((ch, len(self._off_sos), 2))
        self._rms_window = self._ms(s.rms_window_ms)
        self._rms_tail = np.zeros((ch, self._rms_window - 1))  # squares of the last samples
        block = self._ms(s.baseline_block_s * 1000)
        self.baseline = BaselineTracker(
            ch,
            block,
            history_blocks=round(s.baseline_history_s / s.baseline_block_s),
            quantile=s.baseline_quantile,
            min_blocks=max(2, round(s.baseline_min_s / s.baseline_block_s)),
            adapt_alpha=min(1.0, s.baseline_block_s / max(s.baseline_adapt_tau_s, 1e-9)),
            rise_per_block=float(np.exp(s.baseline_block_s / max(s.baseline_rise_tau_s, 1e-9))),
        )
        self.detector = OnsetDetector(
            ch,
            min_on=self._ms(s.min_on_ms),
            min_off=self._ms(s.min_off_ms),
            backdate_max=self._ms(s.backdate_max_ms),
            off_peak_fraction=s.off_peak_fraction,
            rearm_ratio=s.rearm_ratio,
            delay=(Tkeo.delay_samples if self._tkeo else 0)
            + self._smoothing_delay(s.detector_lowpass_hz),
            off_delay=self._smoothing_delay(s.offset_lowpass_hz),
            rest_memory=self._ms(1000),  # early verdicts look back at most this far
            rest_window=self._ms(s.rest_window_ms),
            startup=self._ms(s.gap_settle_ms),
            floor_window=self._ms(s.floor_window_ms),
            method=s.onset_method,
            window=self._ms(s.changepoint_window_ms),
            # Samples per independent one in the smoothed statistic: fs / (2 * equivalent
            # noise bandwidth); a 2nd-order Butterworth's ENBW is 1.11 x its corner.
            corr_len=fs / (2.0 * 1.11 * min(s.detector_lowpass_hz, 0.45 * fs)),
            ramp_power=s.changepoint_ramp_power,
            fast_ratio=s.fast_ratio,
            min_on_fast=self._ms(s.fast_min_on_ms),
            k_on=s.k_on,
            cusum_k=s.cusum_k_sd,
            cusum_cap=s.cusum_cap_sd,
            # SD x ms -> SD x samples: the sum grows by one increment per sample
            cusum_h=s.cusum_h_sd_ms * fs / 1000.0,
        )
        self.reps = RepTracker(
            dict(self.info.roles),
            self.glutes,
            self.lumbars,
            self.info.fs,
            s.tolerance_ms,
            settle=self._ms(s.settle_ms),
        )
        self.artefacts = ArtefactScanner(
            ch, flat_len=self._ms(50), clip_len=3, warmup=round(fs), fs=fs, transients=True
        )
        self.spans = SpanIndex(ch, horizon=round(120 * fs))
        self._next = 0
        self._thr = self._thresholds()
        self._thr_version = self.baseline.version
        self._started = False
        self._blocked_until = 0
        # per channel: a transient artefact blocks [from, until) (the span plus the ringing)
        self._chan_from = np.zeros(ch, dtype=np.int64)
        self._cut_rep = False  # the last gap cut a rep in progress
        self._chan_blocked = np.zeros(ch, dtype=np.int64)
        self._any_blocked_until = 0  # the largest of _chan_blocked
        # (channel, from, until) of a channel's earlier transient span that a later one
        # replaced in _chan_from/_chan_blocked while it still covers samples to come (two
        # artefacts in one chunk): without it, how many spans block depended on the chunking
        self._held_blocks: list[tuple[int, int, int]] = []
        # Until the baseline is sound: the raw chunks, the rest levels in force and the reps
        # judged with them (see _maybe_rejudge). None once settled.
        self._early: list[Chunk] | None = [] if s.rejudge_after_s > 0 else None
        self._early_means: list[Array] = []
        self._early_reps: dict[int, RepResult] = {}
        self._first = 0
        self.samples = 0
        self.gaps = 0
        self.lost_samples = 0
        self.implausible = 0  # chunks that held values beyond MAX_PLAUSIBLE_UV
        # Short runs of missing samples (NaN cells: a file's empty cells, a dropped reading)
        # are bridged: each channel holds its last value for at most BRIDGE_MS, the filters
        # run on (no restart, no re-settling), and the run is a gap span (a rep whose onsets
        # it touches is undetermined) counted as a gap. Longer runs are gaps proper.
        self._bridge_n = max(1, self._ms(BRIDGE_MS))
        self._last_good = np.full(ch, np.nan)  # each channel's last finite value
        self._nan_run = 0  # missing rows at the end of the last chunk (a run may go on)
        self._missing_to = -1  # index after the last gap (bridged or not): one going on is one gap
        # a held run's end -> its start, for a run whose gap proper follows in this chunk
        self._held_from: dict[int, int] = {}

    def _smoothing_delay(self, cutoff_hz: float) -> int:
        # Low-frequency group delay of the 2nd-order Butterworth smoother, sqrt(2)/(2 pi fc):
        # a known, generator-independent lag of the statistic behind the signal.
        fc = min(cutoff_hz, 0.45 * self.info.fs)
        return round(np.sqrt(2.0) / (2.0 * np.pi * fc) * self.info.fs)

    def reset(self) -> None:
        calibrated = self.baseline.calibrated
        self._build()
        if calibrated is not None:
            self.baseline.set_estimate(calibrated)

    # -- calibration ------------------------------------------------------------------
    def calibrate_rest(self, raw_rest: Array) -> BaselineEstimate:
        """Fix the baseline from a rest recording (raw uV). Returns the estimate."""
        probe = Pipeline(self.info, self.settings, display=False)
        rows, stat_rows, _ = probe._front(raw_rest)
        stat = np.array(stat_rows.T)
        # A heartbeat is not rest EMG, here as in the running baseline. (The gate does not
        # change the statistic's units, so it is not one of the settings a stored
        # calibration must match: with it on or off, rest between beats reads the same.)
        gate = probe._gated(0, raw_rest, rows)
        if gate is not None:
            stat[gate] = np.nan
        settle = min(len(stat) // 4, self._ms(200))  # skip the filters' start-up
        self.baseline.calibrate(stat[settle:])
        return self.baseline.estimate

    def set_baseline(self, estimate: BaselineEstimate | None) -> None:
        if estimate is None:
            self.baseline.calibrate(None)
        else:
            self.baseline.set_estimate(estimate)

    # -- processing -------------------------------------------------------------------
    def process(self, chunk: Chunk) -> Processed:
        events: list[Event] = []
        data, start = chunk.data, chunk.start
        if data.shape[1] != self.info.n_channels:
            raise ValueError(
                f"chunk has {data.shape[1]} channels, stream has {self.info.n_channels}"
            )
        if self._started and start < self._next:
            skip = self._next - start  # duplicates: a consumer never sees an index twice
            log.warning("dropping %d duplicated samples at index %d", min(skip, len(data)), start)
            data, start = data[skip:], self._next
        if not self._started and len(data):
            self._started = True
            self._next = self._first = start
            # The filters and the smoothed statistic start up from rest: no onset (and no
            # burst under way mistaken for one) until they have settled, as after a gap.
            self._blocked_until = start + self._ms(self.settings.gap_settle_ms)
        if self._early is not None and len(data):
            self._early.append(Chunk(data, start))
        if start > self._next:
            self._gap(self._next, start - self._next, events)
        n = data.shape[0]
        # One pass decides the usual case: the peak is NaN if any sample is, inf if any is.
        peak = float(np.max(np.abs(data))) if n else 0.0
        finite = bool(n) and peak <= MAX_PLAUSIBLE_UV
        if n and not finite:
            if peak > MAX_PLAUSIBLE_UV:  # corrupt or mis-scaled numbers: missing samples
                data = np.where(np.abs(data) > MAX_PLAUSIBLE_UV, np.nan, data)
                self.implausible += 1
                if self.implausible == 1:
                    log.warning("values beyond ±%g µV treated as missing samples",
                                MAX_PLAUSIBLE_UV)
            data = self._bridge(start, data, events)
            finite = bool(np.isfinite(data).all())
        if finite:
            self._last_good[:] = data[-1]
            self._nan_run = 0
        elif n:
            self._remember_last(data)
        if finite:
            # the usual case: one contiguous run of samples, displayed as they come
            shown = self._contiguous(start, data, None, None, 0, events)
            filtered, envelope = shown if shown is not None else (None, None)
            self._next = start + n
            self.spans.prune(self._next)
            if self._early is not None:
                self._note_reps(events)
            return Processed(start, filtered, envelope, events)
        filtered = np.full(data.shape, np.nan) if self.display else None
        envelope = np.full(data.shape, np.nan) if self.display else None
        bad_rows = ~np.isfinite(data).all(axis=1)
        if bad_rows.any():
            # NaN rows are samples a file says are missing: each run becomes a gap.
            edges = np.flatnonzero(np.diff(np.concatenate(([0], bad_rows.view(np.int8), [0]))))
            pos = 0
            for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
                self._contiguous(start + pos, data[pos:a], filtered, envelope, pos, events)
                self._gap(start + int(a), int(b - a), events)
                pos = b
            self._contiguous(start + pos, data[pos:], filtered, envelope, pos, events)
            self._held_from.clear()
        else:
            self._contiguous(start, data, filtered, envelope, 0, events)
        self._next = start + n
        self.spans.prune(self._next)
        if self._early is not None:
            self._note_reps(events)
        return Processed(start, filtered, envelope, events)

    def resume_at(self, index: int, reps_done: int = 0) -> None:
        """Continue an index line begun by another pipeline (settings changed mid-stream):
        the next chunk at ``index`` is no gap; filters start afresh; reps go on being
        numbered after the ``reps_done`` the other pipeline numbered (the rep table, the
        lag plot and the LSL verdicts keep one numbering per session)."""
        self.number_from(reps_done)
        self._next = self._first = index
        self._started = True
        self._blocked_until = index + self._ms(self.settings.gap_settle_ms)  # start-up

    def continues_rep(self, primed: bool = True) -> None:
        """This pipeline goes on from another at rest (settings or mapping changed): a burst
        it finds already under way where it begins is the tail of the other's last rep,
        already judged, not a rep of its own. (An onset of a burst under way since the start
        is censored; told as a rep, it was "undetermined: already active when the data
        began" and pushed every later rep's number up by one.) ``primed``: its filters and
        baseline were primed, so there is no start-up, and a burst that begins just after is
        a rep (unprimed, the start-up's own censoring holds)."""
        self._cut_rep = True
        self.detector.primed_start = primed

    def number_from(self, reps_done: int) -> None:
        """Number the reps found from now on after ``reps_done`` earlier ones."""
        self.reps._count = max(self.reps._count, int(reps_done))

    def prime_baseline(
        self, start: int, data: Array, display_from: int | None = None
    ) -> tuple[Array, Array] | None:
        """Run raw ``data`` (rows from absolute ``start``) through the filters and the rest
        baseline only (no detector, reps or artefact scan): what a seek needs from the minute
        before its target, at a fraction of the cost. Call it on a fresh pipeline; then
        :meth:`process` goes on at ``start + len(data)`` with the filters' state carried over,
        as in one pass (run the last few seconds before the target that way, so that the
        detector settles too).

        Rows with a missing value are gaps: the filters restart after each and the next
        ``gap_settle_ms`` is not used, as in :meth:`process`. Afterwards the baseline counts
        as sound: reps judged from then on are not re-judged. With ``display_from`` (an
        absolute index) the conditioned signal and its envelope from there on are returned,
        (rows, ch) each, NaN in the gaps."""
        n_rows = data.shape[0]
        bad = ~np.isfinite(data).all(axis=1) | (np.abs(data) > MAX_PLAUSIBLE_UV).any(axis=1)
        edges = np.flatnonzero(np.diff(np.concatenate(([1], bad.view(np.int8), [1]))))
        settle = self._ms(self.settings.gap_settle_ms)
        quiet = np.ones(self.info.n_channels, dtype=bool)  # no detector: every block may adapt
        shown = None
        lo = 0
        if display_from is not None:
            lo = min(max(0, display_from - start), n_rows)
            shape = (n_rows - lo, data.shape[1])
            shown = (np.full(shape, np.nan), np.full(shape, np.nan))
        runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
        ch = self.info.n_channels
        stat_all = np.zeros((n_rows, ch))
        usable = np.zeros((n_rows, ch), dtype=bool)
        w = self._rms_window
        for k, (a, b) in enumerate(runs):
            self._restart_filters()
            rows, stat_rows, _ = self._front(data[a:b])
            stat_all[a:b] = stat_rows.T
            usable[min(b, a + settle) : b] = True  # the filters' start-up after a gap
            gate = self._gated(start + a, data[a:b], rows)
            if gate is not None:
                usable[a:b] &= ~gate  # a heartbeat is not rest EMG
            # The envelope where it is shown, and over the last run's end (its window state
            # carries on): from one window earlier on, it equals the envelope of the whole run.
            want = [max(a, lo)] if shown is not None and b > lo else []
            if k == len(runs) - 1:
                want.append(max(a, b - (w - 1)))
            if want:
                c = min(want)
                e0 = max(a, c - (w - 1))  # one window before c (or the run's start)
                env = self._envelope(rows[:, e0 - a :]).T[c - e0 :]
                if shown is not None and b > lo:
                    d = max(a, lo)
                    shown[0][d - lo : b - lo] = rows.T[d - a :]
                    shown[1][d - lo : b - lo] = env[d - c :]
        block = self.baseline.block
        whole = (n_rows // block) * block if start % block == 0 else 0
        self.baseline.prime(start, stat_all[:whole], usable[:whole])
        pos = whole
        while pos < n_rows:
            at = start + pos
            m = min(n_rows - pos, self.baseline.next_boundary(at) - at)
            self.baseline.update(at, stat_all[pos : pos + m], usable[pos : pos + m], quiet)
            pos += m
        # as if these rows had been processed: the next chunk continues them, no gap
        self._started = True
        self._first = start
        self._next = start + n_rows
        last_start = runs[-1][0] if runs else n_rows
        self._blocked_until = start + last_start + settle
        if not runs or runs[-1][1] < n_rows:  # it ends in missing rows: start afresh after
            self._restart_filters()
            self._blocked_until = start + n_rows + settle
            self._missing_to = start + n_rows
        self._early = None
        self._thr = self._thresholds()
        self._thr_version = self.baseline.version
        return shown

    @property
    def reps_numbered(self) -> int:
        """How many reps this pipeline has numbered (the next rep's index)."""
        return self.reps._count

    @property
    def next_index(self) -> int:
        """Index of the next sample the pipeline expects."""
        return self._next

    def finish(self) -> list[Event]:
        """End of stream: settle the rep in progress (decide it, end it)."""
        events: list[Event] = []
        self._settle_decision(self._next, events)
        self._emit(self.reps.abort(self._next, self._usable), events)
        if self._early is not None:  # a stream shorter than the settling time
            self._note_reps(events)
            self._rejudge(self._next, events, at_end=True)
        return events

    def _remember_last(self, data: Array) -> None:
        ok = np.isfinite(data)
        for c in np.flatnonzero(ok.any(axis=0)).tolist():
            self._last_good[c] = data[np.flatnonzero(ok[:, c])[-1], c]

    def _bridge(self, start: int, data: Array, events: list[Event]) -> Array:
        """Hold each channel's last value over the first ``_bridge_n`` samples of every run of
        missing rows (NaN cells); what is left of a longer run stays NaN (a gap proper).
        Each bridged run is a gap span and a gap event."""
        bad = np.asarray(~np.isfinite(data).all(axis=1), dtype=bool)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], bad.view(np.int8), [0]))))
        rows = data.shape[0]
        run_before = self._nan_run
        # missing rows at the end of this chunk, counting a run that began before it
        good = np.flatnonzero(~bad)
        self._nan_run = run_before + rows if not len(good) else rows - 1 - int(good[-1])
        out = data.copy()
        last = self._last_good.copy()
        prev_end = 0
        for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            if a > prev_end:  # the good rows before this run: their last values are held
                seg = out[prev_end:a]
                ok = np.isfinite(seg)
                for c in np.flatnonzero(ok.any(axis=0)).tolist():
                    last[c] = seg[np.flatnonzero(ok[:, c])[-1], c]
            prev_end = b
            done = run_before if a == 0 else 0  # a run going on from the last chunk
            held = min(b - a, self._bridge_n - done)
            if held <= 0:
                continue
            block = out[a : a + held]
            for r in range(held):  # short: hold cell by cell, a channel's own last value
                row = block[r]
                miss = ~np.isfinite(row)
                row[miss] = last[miss]
                last[~miss] = row[~miss]
            if not np.isfinite(block).all():
                continue  # nothing to hold yet (the stream begins with missing values)
            at = start + a
            if held < b - a:  # the run goes on past the bridge here: one gap event for all
                if at != self._missing_to:
                    self._held_from[at + held] = at
            elif at != self._missing_to:
                self.gaps += 1
                events.append(GapEvent(at, held))
            self.lost_samples += held
            self.samples -= held  # (counted again as they pass through the filters)
            self._missing_to = at + held
            self.spans.add_all(at, at + held + self._bridge_n, "gap")
        return out

    def _gap(self, start: int, length: int, events: list[Event]) -> None:
        held_from = self._held_from.pop(start, None)
        if held_from is not None:  # the rest of a run whose start was held in this chunk
            self.gaps += 1
            self.lost_samples += length
            events.append(GapEvent(held_from, start - held_from + length))
            self._gap_restart(start, length, events)
            return
        if start == self._missing_to:  # a run going on from the last chunk: the same gap
            self.lost_samples += length
            events.append(GapEvent(start, length))
            self._gap_restart(start, length, events)
            return
        self.gaps += 1
        self.lost_samples += length
        events.append(GapEvent(start, length))
        self._gap_restart(start, length, events)

    def _gap_restart(self, start: int, length: int, events: list[Event]) -> None:
        settle = self._ms(self.settings.gap_settle_ms)
        self.spans.add_all(start, start + length + settle, "gap")
        self._settle_decision(start - 1, events)
        # a rep the gap cuts is undetermined for it (not "no onset": the data are missing),
        # and what is left of its bursts after the gap starts no second rep
        self._cut_rep = self._cut_rep or self.reps._rep is not None  # (a gap may come in parts)
        self._emit(self.reps.abort(start, lambda *_: "gap"), events)
        self._restart_filters()
        for c in range(self.info.n_channels):
            self.detector.force_quiet(c)
        self.detector.reset()
        self.artefacts.restart()
        self._blocked_until = start + length + settle
        self._next = start + length
        self._missing_to = start + length

    def _restart_filters(self) -> None:
        """The conditioning, the statistic and the envelope start afresh (after a gap)."""
        self._zi_base = self._zi_hp = self._tk_prev = None
        if self._ecg_gate is not None:
            self._ecg_gate.restart()
        self._zi_stat.fill(0.0)
        self._zi_off.fill(0.0)
        self._rms_tail.fill(0.0)

    def _front(self, x: Array) -> tuple[Array, Array, Array]:
        """Raw ``x`` (n, ch) -> the conditioned signal, the detection statistic and the offset
        statistic, each as rows (ch, n). Filters start in steady state at the first sample
        (no start-up transient from a DC offset), the smoothers from zero."""
        rows = np.array(x.T, dtype=np.float64, order="C")  # filtered in place
        if self._zi_base is None:
            x0 = rows[:, :1, None]
            self._zi_base = np.ascontiguousarray(self._zi_base_unit * x0 + 0.0)
            if self._hp_unit is not None:
                self._zi_hp = np.ascontiguousarray(self._hp_unit * x0[self._lumbar] + 0.0)
        sosfilt_rows(self._base_sos, rows, self._zi_base)
        if self._hp_sos is not None and self._zi_hp is not None:
            if self._lumbar_rows is not None:
                sosfilt_rows(self._hp_sos, rows[self._lumbar_rows], self._zi_hp)
            else:
                sub = rows[self._lumbar]
                sosfilt_rows(self._hp_sos, sub, self._zi_hp)
                rows[self._lumbar] = sub
        if self._tkeo is not None:
            # Teager-Kaiser energy, one sample late: output j is psi at input j - 1.
            prev = self._tk_prev
            if prev is None:
                prev = np.repeat(rows[:, :1], 2, axis=1)
            ext = np.concatenate((prev, rows), axis=1)
            stat = ext[:, 1:-1] ** 2 - ext[:, :-2] * ext[:, 2:]
            self._tk_prev = ext[:, -2:].copy()
            np.abs(stat, out=stat)
        else:
            stat = rows * rows
        sosfilt_rows(self._stat_sos, stat, self._zi_stat)
        stat_off = stat.copy()
        sosfilt_rows(self._off_sos, stat_off, self._zi_off)
        return rows, stat, stat_off

    def _gated(self, start: int, x: Array, rows: Array) -> NDArray[np.bool_] | None:
        """The heartbeat gate (n, ch) of raw ``x`` (n, ch) and its conditioned ``rows``
        (ch, n) from absolute ``start``, or None when no sample is gated."""
        if self._ecg_gate is None:
            return None
        lum = self._lumbar
        g = self._ecg_gate.process(start, np.ascontiguousarray(x[:, lum].T), rows[lum])
        if g is None:
            return None
        out = np.zeros(x.shape, dtype=bool)
        out[:, lum] = g.T
        return out

    def _note_beats(self, start: int, gate: NDArray[np.bool_]) -> None:
        """Keep the heartbeat gates of the last seconds as spans per channel (a span that
        reaches the chunk's end goes on in the next one)."""
        horizon = start - self._ms(2000)
        for c in self._lumbar.tolist():
            g = gate[:, c]
            if not g.any():
                continue
            edges = np.flatnonzero(np.diff(np.concatenate(([0], g.view(np.int8), [0]))))
            spans = self._beats.setdefault(c, [])
            for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
                if spans and a == 0 and spans[-1][1] == start:
                    spans[-1] = (spans[-1][0], start + b)
                else:
                    spans.append((start + a, start + b))
            self._beats[c] = [sp for sp in spans if sp[1] > horizon]

    def _beat_widened(self, ev: OnsetEvent) -> OnsetEvent:
        """An onset dated inside or just after a heartbeat gate may have begun anywhere under
        the beat: its interval reaches back to the gate's start -- and on over gates that
        follow each other closely (a gate broken up by a burst under way), to the first."""
        spans = self._beats.get(ev.channel)
        if not spans or self.settings.onset_method == "backdate":  # (it gives no intervals)
            return ev
        d = self.detector.delay
        slack = self._ms(self.settings.min_on_ms + 10.0)
        chain = self._ms(60.0)
        lo: int | None = None
        for a, b in reversed(spans):
            if lo is None:
                if a - d <= ev.index <= b - d + slack:
                    lo = a - d
                elif b - d + slack < ev.index:
                    break
            elif b - d + chain >= lo:
                lo = a - d
            else:
                break
        return ev if lo is None else replace(ev, lo=min(ev.lo, max(lo, 0)), beat=True)

    def _envelope(self, rows: Array) -> Array:
        """Moving RMS (causal window) of conditioned ``rows`` (ch, n), as rows."""
        w = self._rms_window
        sq = np.concatenate((self._rms_tail, rows * rows), axis=1)
        csum = np.add.accumulate(sq, axis=1)
        # Windowed sums from the cumulative sum; the first output needs the full prefix.
        np.subtract(csum[:, w:], csum[:, :-w], out=csum[:, w:])
        if w > 1:
            self._rms_tail = sq[:, -(w - 1) :]
        out = csum[:, w - 1 :]
        out /= w
        np.maximum(out, 0.0, out=out)
        return np.sqrt(out, out=out)

    def _thresholds(self) -> Thresholds:
        s = self.settings
        mean, sd = self.baseline.mean, self.baseline.sd
        floor = mean * 1.5  # never closer to the mean than this, whatever the SD says
        return Thresholds(
            on=np.maximum(mean + s.k_on * sd, floor),
            back=mean + s.k_back * sd,
            off=np.maximum(mean + s.k_off * sd, mean * 1.2),
            mean=mean,
        )

    def _contiguous(
        self,
        start: int,
        x: Array,
        filtered: Array | None,
        envelope: Array | None,
        offset: int,
        events: list[Event],
    ) -> tuple[Array, Array] | None:
        """Process the gap-free run ``x`` from absolute ``start``. The conditioned signal
        and its envelope go into rows ``offset ...`` of ``filtered`` and ``envelope`` if given,
        else (display on) they are returned, (n, ch) each."""
        n = x.shape[0]
        if n == 0:
            return None
        self.samples += n
        for c, a, end, kind in self.artefacts.scan(start, x):
            b = end
            if kind in TRANSIENT_KINDS:
                # The filters ring and the statistic is smoothed after a transient: the
                # channel may neither start nor end a burst until that has died away.
                b += self._ms(self.settings.artefact_settle_ms)
                # Blocked from the artefact's first sample, not from the block that reported
                # it: the same samples are blocked however the stream was chunked.
                fresh = self._chan_blocked[c] <= a
                if fresh and self._chan_blocked[c] > start:  # still ahead: keep blocking it
                    self._held_blocks.append(
                        (c, int(self._chan_from[c]), int(self._chan_blocked[c]))
                    )
                self._chan_from[c] = a if fresh else min(self._chan_from[c], a)
                self._chan_blocked[c] = max(self._chan_blocked[c], b)
                self._any_blocked_until = max(self._any_blocked_until, b)
                if a < start:  # samples an earlier chunk already gave the rest baseline
                    self.baseline.exclude(c, a, start)
            self.spans.add(c, a, b, kind)
            events.append(ArtefactEvent(c, a, b, kind))
        rows, stat_rows, off_rows = self._front(x)
        gate = self._gated(start, x, rows)
        if gate is not None:
            self._note_beats(start, gate)
        # the statistic in (n, ch) C order: the baseline's block sums run over it in the order
        # they always did (a sum's rounding depends on the memory layout)
        stat = np.ascontiguousarray(stat_rows.T)
        stat_off = off_rows.T
        shown: tuple[Array, Array] | None = None
        if filtered is not None and envelope is not None:
            filtered[offset : offset + n] = rows.T
            envelope[offset : offset + n] = self._envelope(rows).T
        elif self.display:
            shown = np.ascontiguousarray(rows.T), np.ascontiguousarray(self._envelope(rows).T)
        pos = 0
        while pos < n:
            at = start + pos
            m = min(n - pos, self.baseline.next_boundary(at) - at)
            seg = stat[pos : pos + m]
            blocked = None  # the usual case: no gap is settling, no artefact ringing
            if at < self._blocked_until or at < self._any_blocked_until:
                idx = (at + np.arange(m))[:, None]
                blocked = (idx < self._blocked_until) | (
                    (idx >= self._chan_from[None, :]) & (idx < self._chan_blocked[None, :])
                )
                for c, a, b in self._held_blocks:
                    if a < at + m and b > at:
                        blocked[max(a - at, 0) : b - at, c] = True
            if self._thr_version != self.baseline.version:  # levels change with the estimate
                self._thr, self._thr_version = self._thresholds(), self.baseline.version
            gated = None if gate is None else gate[pos : pos + m]
            if gated is not None and not gated.any():
                gated = None  # (as a chunk without a beat: the same arithmetic however cut)
            if gated is not None:
                # What a heartbeat put into the statistic is no evidence of a burst: the
                # onset estimate, which reads back over these samples, sees rest there.
                # (Holding the level from before the beat instead, or leaving the samples
                # as they are, dated onsets worse on both generators.)
                seg = np.where(gated, self._thr.mean[None, :], seg)
            found = self.detector.process(
                at, seg, self._thr, blocked, stat_off[pos : pos + m], gated
            )
            found.sort(key=lambda e: e.detected_at)
            if self._beats:  # an onset under a heartbeat: its interval reaches back over it
                found = [
                    self._beat_widened(e) if isinstance(e, OnsetEvent) else e for e in found
                ]
            for ev in found:
                self._settle_decision(ev.detected_at - 1, events)
                events.append(ev)
                if isinstance(ev, OnsetEvent) and ev.censored and self._cut_rep:
                    pass  # the rest of a burst the last gap cut: its rep is already judged
                elif isinstance(ev, OnsetEvent):
                    self._cut_rep = False
                    self._emit(
                        self.reps.on_onset(
                            ev.channel,
                            ev.index,
                            ev.detected_at,
                            self._usable,
                            (ev.lo, ev.hi),
                            ev.censored,
                            ev.beat,
                        ),
                        events,
                    )
                else:
                    self.reps.on_offset(ev.channel)
                    self._emit(self.reps.close_if_quiet(ev.detected_at, self._usable), events)
                self._settle_decision(ev.detected_at, events)
            # Events are stamped in reported (delay-corrected) indices and become known
            # `delay` samples later: decide only up to what is surely known.
            self._settle_decision(at + m - 1 - self.detector.delay, events)
            unusable = blocked if gated is None else gated if blocked is None else blocked | gated
            self.baseline.update(
                at, seg, None if unusable is None else ~unusable, self.detector.quiet
            )
            pos += m
            if self._held_blocks:
                self._held_blocks = [h for h in self._held_blocks if h[2] > at + m]
            if self._early is not None and (at + m) % self.baseline.block == 0:
                if np.isfinite(self.baseline.mean).any():
                    self._early_means.append(self.baseline.mean.copy())
                self._note_reps(events)
                self._maybe_rejudge(at + m, events)
        return shown

    # -- re-judging the first reps of a stream that began mid-activity ------------------
    def _note_reps(self, events: list[Event]) -> None:
        """Remember the reps judged while the baseline was provisional."""
        for ev in events:
            if isinstance(ev, RepResult):
                self._early_reps.setdefault(ev.index, ev)
            elif isinstance(ev, RepEnded):
                self._early_reps[ev.index] = ev.result

    def _maybe_rejudge(self, at: int, events: list[Event]) -> None:
        """At a block boundary: once ``rejudge_after_s`` of the stream is known and no rep is
        in progress, the baseline is taken as sound; judge the early reps again if the rest
        level they were judged with was far from it. A stream that never pauses that long
        keeps its verdicts."""
        s = self.settings
        known = at - self._first
        if known < self._ms(s.rejudge_after_s * 1000) or self.reps.current_pending:
            return
        if self.reps._rep is not None:  # a decided rep still running: wait for its end
            if known > self._ms(4 * s.rejudge_after_s * 1000):
                self._early = None  # never idle: give up, keep what was said
            return
        self._rejudge(at, events)

    def _rejudge(self, upto: int, events: list[Event], at_end: bool = False) -> None:
        early, self._early = self._early, None
        now = self.baseline.estimate
        compared = [self.info.roles[r] for r in self.reps.compared]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = [np.maximum(m / now.mean, now.mean / m)[compared] for m in self._early_means]
        worst = max((float(np.nanmax(r)) for r in ratios if np.isfinite(r).any()), default=1.0)
        if not early or not np.isfinite(now.mean[compared]).all():
            return
        if worst <= self.settings.rejudge_ratio:
            return
        log.info("re-judging the reps before %d: rest level was off by up to %.1fx", upto, worst)
        probe = Pipeline(self.info, self.settings.with_(rejudge_after_s=0.0), display=False)
        probe.set_baseline(now)
        found: dict[int, RepResult] = {}
        for whole in joined(early, round(self.info.fs)):
            if whole.start >= upto:
                break
            part = (
                whole
                if whole.stop <= upto
                else Chunk(whole.data[: upto - whole.start], whole.start)
            )
            for ev in probe.process(part).events:
                if isinstance(ev, RepEnded):
                    found[ev.index] = ev.result
        for ev in probe.finish() if at_end else ():
            if isinstance(ev, RepEnded):
                found[ev.index] = ev.result
        old = sorted(self._early_reps.values(), key=lambda r: r.start)
        used: set[int] = set()
        judged: list[RepResult] = []
        for new in sorted(found.values(), key=lambda r: r.start):
            end = new.end if new.end is not None else new.decided_at
            match = next(
                (
                    o
                    for o in old
                    if o.index not in used
                    and o.start <= end
                    and new.start <= (o.end if o.end is not None else o.decided_at)
                ),
                None,
            )
            if match is None:
                index = self.reps._count
                self.reps._count += 1
            else:
                used.add(match.index)
                index = match.index
            judged.append(replace(new, index=index, rejudged=True))
        # Every rep so far was judged again (none is in progress): number them in time
        # order, so that a rep found only now (one already under way when the data began)
        # is rep 1, not the next free number, in the window, the report and the markers.
        base = min((o.index for o in old), default=self.reps._count)
        if {o.index for o in old} == set(range(base, self.reps._count - (len(judged) - len(used)))):
            judged = [replace(r, index=base + k) for k, r in enumerate(judged)]
            self.reps._count = base + len(judged)
        events.append(RepsRejudged(upto, tuple(judged), since=self._first))
        self._early_reps.clear()
        self._early_means.clear()

    def _quiet_from(self, role: Role, index: int) -> int | None:
        return self.detector.first_at_rest(self.info.roles[role], index)

    def _settle_decision(self, now: int, events: list[Event]) -> None:
        due = self.reps.decision_due(self._quiet_from)
        if due is not None and due <= now:
            result = self.reps.decide_now(due, self._usable)
            if result is not None:
                events.append(result)

    @staticmethod
    def _emit(pair: tuple[RepResult | None, RepEnded | None], events: list[Event]) -> None:
        events.extend(e for e in pair if e is not None)

    def _usable(self, start: int, stop: int, role: Role) -> str | None:
        lo = start - self._ms(self.settings.search_pre_ms)
        return self.spans.kind_overlapping(self.info.roles[role], lo, stop + 1)
