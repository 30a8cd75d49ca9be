"""Rest baseline of the detection statistic: calibrated, or estimated robustly on the fly.

The statistic is summarised per fixed block (aligned to absolute sample indices so results do
not depend on chunk sizes). Without calibration, rest is taken to be the quietest blocks of the
recent history (a low quantile of block means): this needs no rest period at the start, copes
with files that begin mid-burst, and follows slow drift over a long session. With a calibrated
rest window the baseline only drifts slowly, and only during blocks that look like rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


@dataclass(frozen=True)
class BaselineEstimate:
    mean: Array  # per channel; NaN where not yet known
    sd: Array

    def to_dict(self) -> dict[str, list[float | None]]:
        def clean(a: Array) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {"mean": clean(self.mean), "sd": clean(self.sd)}


class BaselineTracker:
    def __init__(
        self,
        n_channels: int,
        block: int,
        history_blocks: int,
        quantile: float = 0.2,
        min_blocks: int = 5,
        adapt_alpha: float = 0.003,
        rise_per_block: float = 1.0,
    ) -> None:
        self.n_channels = n_channels
        self.block = max(1, int(block))
        self.history_blocks = max(min_blocks, int(history_blocks))
        self.quantile = quantile
        self.min_blocks = min_blocks
        self.adapt_alpha = adapt_alpha
        self.rise_per_block = rise_per_block
        self.calibrated: BaselineEstimate | None = None
        self.reset()

    def reset(self) -> None:
        #: changes whenever the estimate may have changed (consumers cache what they derive)
        self.version = getattr(self, "version", 0) + 1
        ch = self.n_channels
        # The block's samples and weights, summed when it closes: one sum over the whole
        # block, in one order, however the stream was cut (partial sums per chunk rounded
        # differently, ~1e-13, and once moved a change-point fit by a sample).
        self._buf = np.zeros((self.block, ch))
        self._wbuf = np.zeros((self.block, ch))
        self._means = np.full((self.history_blocks, ch), np.nan)
        self._sds = np.full((self.history_blocks, ch), np.nan)
        self._n_blocks = 0
        self._block_id: int | None = None
        if self.calibrated is not None:
            self.mean = self.calibrated.mean.copy()
            self.sd = self.calibrated.sd.copy()
        else:
            self.mean = np.full(ch, np.nan)
            self.sd = np.full(ch, np.nan)

    def calibrate(self, rest: Array | None) -> None:
        """Fix the baseline from a rest window of the statistic (``None`` returns to auto)."""
        if rest is None:
            self.calibrated = None
        else:
            rest = np.asarray(rest, dtype=np.float64)
            self.calibrated = BaselineEstimate(np.nanmean(rest, axis=0), np.nanstd(rest, axis=0))
        self.reset()

    def set_estimate(self, estimate: BaselineEstimate) -> None:
        self.calibrated = estimate
        self.reset()

    @property
    def estimate(self) -> BaselineEstimate:
        return BaselineEstimate(self.mean.copy(), self.sd.copy())

    def next_boundary(self, index: int) -> int:
        """First block boundary strictly after ``index``."""
        return (index // self.block + 1) * self.block

    def update(
        self,
        start: int,
        s: Array,
        usable: NDArray[np.bool_] | None,
        quiet: NDArray[np.bool_],
    ) -> None:
        """Add samples ``s`` (all within one block) starting at absolute index ``start``.

        ``usable`` (n, ch) excludes gaps and artefacts (None: all usable); ``quiet`` (ch,)
        says the detector is off, which gates adaptation of a calibrated baseline.
        """
        block_id = start // self.block
        if self._block_id is None:
            self._block_id = block_id
        elif block_id != self._block_id:
            self._close_block(quiet)
            self._block_id = block_id
        at = start - block_id * self.block
        self._buf[at : at + s.shape[0]] = s
        self._wbuf[at : at + s.shape[0]] = 1.0 if usable is None else usable
        if (start + s.shape[0]) % self.block == 0:
            self._close_block(quiet)
            self._block_id = block_id + 1

    def exclude(self, channel: int, start: int, stop: int) -> None:
        """Leave samples ``[start, stop)`` of ``channel`` out of the open block, after they
        were added: an artefact is sure only some samples after it began, and without this
        the rest level depended on whether those samples came in the chunk that made it sure
        or in an earlier one."""
        if self._block_id is None:
            return
        b0 = self._block_id * self.block
        lo, hi = max(start, b0) - b0, min(stop, b0 + self.block) - b0
        if hi > lo:
            self._wbuf[lo:hi, channel] = 0.0

    def prime(self, start: int, s: Array, usable: NDArray[np.bool_]) -> None:
        """Whole blocks of history at once, as :meth:`update` block by block would give them
        (up to rounding): ``s`` (n, ch) from ``start``, a block boundary, ``n`` a whole number
        of blocks; ``usable`` (n, ch) marks the samples to count. For a seek, which needs the
        minute before its target: the block statistics and every block's estimate are computed
        together (the estimate after each block matters: a rising rest level is capped from
        the one before). A fresh tracker without calibration only; otherwise block by block."""
        n, ch = s.shape
        b = self.block
        if self.calibrated is not None or self._n_blocks or self._block_id is not None or (
            start % b or n % b
        ):
            quiet = np.ones(ch, dtype=bool)
            for a in range(0, n, b):
                self.update(start + a, s[a : a + b], usable[a : a + b], quiet)
            return
        k = n // b
        if k == 0:
            return
        w = usable.astype(np.float64).reshape(k, b, ch)
        xw = s.reshape(k, b, ch) * w
        count = np.einsum("kbc->kc", w)  # (einsum: a sum over the middle axis, fast)
        total = np.einsum("kbc->kc", xw)
        total_sq = np.einsum("kbc,kbc->kc", xw, s.reshape(k, b, ch))
        full = count >= 0.5 * b
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(full, total / np.maximum(count, 1), np.nan)
            var = total_sq / np.maximum(count, 1) - means * means
        sds = np.sqrt(np.maximum(np.where(full, var, np.nan), 0.0))
        h = self.history_blocks
        # every block's history window (the last h blocks, fewer at first): (k, ch, h)
        pad_m = np.concatenate((np.full((h - 1, ch), np.nan), means))
        pad_s = np.concatenate((np.full((h - 1, ch), np.nan), sds))
        win_m = np.lib.stride_tricks.sliding_window_view(pad_m, h, axis=0)
        win_s = np.lib.stride_tricks.sliding_window_view(pad_s, h, axis=0)
        valid = np.isfinite(win_m)
        counts = valid.sum(axis=2)
        ready = counts >= self.min_blocks
        take = np.maximum(np.floor(self.quantile * (counts - 1)).astype(int), 0)
        ranked = np.sort(np.where(valid, win_m, np.inf), axis=2)
        cut = np.take_along_axis(ranked, take[..., None], axis=2)
        sel = valid & (win_m <= cut)
        kk = np.maximum(sel.sum(axis=2), 1.0)
        mean_u = np.where(sel, win_m, 0.0).sum(axis=2) / kk
        within = np.where(sel, win_s**2, 0.0).sum(axis=2) / kk
        between = np.where(sel, (win_m - mean_u[..., None]) ** 2, 0.0).sum(axis=2) / kk
        sd_u = np.sqrt(within + between)
        mean, sd = self.mean, self.sd
        for j in np.flatnonzero(ready.any(axis=1)).tolist():  # the rise cap, block by block
            cap = mean * self.rise_per_block
            capped = np.isfinite(cap) & (mean_u[j] > cap)
            scale = np.where(capped, cap / np.where(mean_u[j] > 0, mean_u[j], 1.0), 1.0)
            mean = np.where(ready[j], np.where(capped, cap, mean_u[j]), mean)
            sd = np.where(ready[j], sd_u[j] * scale, sd)
        self.mean, self.sd = mean, sd
        keep = min(k, h)
        slots = np.arange(k - keep, k) % h
        self._means[slots] = means[k - keep :]
        self._sds[slots] = sds[k - keep :]
        self._n_blocks = k
        self._block_id = start // b + k
        self.version += k

    def _close_block(self, quiet: NDArray[np.bool_]) -> None:
        self.version += 1
        xw = self._buf * self._wbuf
        total = np.add.reduce(xw, axis=0)
        total_sq = np.einsum("ij,ij->j", xw, self._buf)
        count = np.add.reduce(self._wbuf, axis=0)
        full = count >= 0.5 * self.block
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(full, total / np.maximum(count, 1), np.nan)
            var = total_sq / np.maximum(count, 1) - mean * mean
        sd = np.sqrt(np.maximum(np.where(full, var, np.nan), 0.0))
        slot = self._n_blocks % self.history_blocks
        self._means[slot] = mean
        self._sds[slot] = sd
        self._n_blocks += 1
        self._buf.fill(0.0)
        self._wbuf.fill(0.0)
        if self.calibrated is not None:
            self._adapt(mean, sd, quiet & full)
        else:
            self._estimate()

    def _adapt(self, mean: Array, sd: Array, ok: NDArray[np.bool_]) -> None:
        # Follow slow drift only in blocks that look like rest for that channel.
        rest = ok & (mean < self.mean + 2.0 * self.sd)
        a = self.adapt_alpha
        self.mean = np.where(rest, (1 - a) * self.mean + a * mean, self.mean)
        self.sd = np.where(rest, (1 - a) * self.sd + a * sd, self.sd)

    def _estimate(self) -> None:
        n = min(self._n_blocks, self.history_blocks)
        means = self._means[:n]
        valid = np.isfinite(means)
        counts = valid.sum(axis=0)
        ready = counts >= self.min_blocks
        if not ready.any():
            return
        # Rest = the quietest blocks: those ranked at or below the quantile of block means.
        filled = np.where(valid, means, np.inf)
        take = np.floor(self.quantile * (counts - 1)).astype(int)
        if np.all(take == take[0]):
            cut = np.partition(filled, take[0], axis=0)[take[0]]
        else:
            cut = np.sort(filled, axis=0)[take, np.arange(self.n_channels)]
        sel = valid & (means <= cut[None, :])
        w = sel.astype(np.float64)
        k = np.maximum(w.sum(axis=0), 1.0)
        m = np.where(sel, means, 0.0)
        mean = m.sum(axis=0) / k
        # Pooled variance of the rest samples: within-block variance plus the wander of the
        # block means around their average.
        within = np.where(sel, self._sds[:n] ** 2, 0.0).sum(axis=0) / k
        between = np.where(sel, (means - mean) ** 2, 0.0).sum(axis=0) / k
        sd = np.sqrt(within + between)
        # The rest level may fall at once but rise only slowly: in a set without rest between
        # reps no block is quiet, and the estimate must not climb to the activity level.
        cap = self.mean * self.rise_per_block
        capped = np.isfinite(cap) & (mean > cap)
        scale = np.where(capped, cap / np.where(mean > 0, mean, 1.0), 1.0)
        self.mean = np.where(ready, np.where(capped, cap, mean), self.mean)
        self.sd = np.where(ready, sd * scale, self.sd)
