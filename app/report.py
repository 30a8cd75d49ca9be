"""Session export: the rep table as CSV and a self-contained HTML report for the coach.

Both work from the ``fireorder.analysis/1`` document (:meth:`dsp.analysis.Analysis.to_dict`),
so a report can be made from a saved JSON as well as from a fresh analysis. The signal itself
(``data`` + ``info``) is optional: it only adds the session overview and the example traces.

No Qt here: plots are drawn with matplotlib's Agg canvas (no pyplot, no global backend state)
and embedded as base64 PNG, so the HTML is one file that can be mailed or printed.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from app.theme import CHANNEL_COLORS, VERDICT_COLOR, VERDICT_TEXT
from dsp.contract import Role, StreamInfo
from dsp.quality import HUM_FLOOR_DB, ISSUE_LABELS
from dsp.reps import (
    GLUTE_FIRST,
    LUMBAR_FIRST,
    ORDERS,
    SIMULTANEOUS,
    UNDETERMINED,
    Verdict,
    glute_first_pct,
)
from dsp.settings import DspSettings

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

Progress = Callable[[float], None]
PathLike = str | os.PathLike[str]

#: Verdicts in the order a coach reads them: the goal first, "no reading" last.
VERDICT_ORDER = (GLUTE_FIRST, SIMULTANEOUS, LUMBAR_FIRST, UNDETERMINED)
#: Lane colours per role when the file's channel order is not known: the window's colours of
#: a fireorder recording, whose channels are glute_l, glute_r, lumbar_l, lumbar_r in that order.
ROLE_COLOR = {role: CHANNEL_COLORS[k] for k, role in enumerate(Role)}
CORRECTED_COLOR = "#222222"  # the ring around a rep corrected by hand
NOTE_COLOR = "#8e44ad"  # notes, as the window draws them on the traces
SIDE_COLOR = {"left": "#4363d8", "right": "#911eb4"}
ISSUE_TEXT = ISSUE_LABELS  # one wording for the window, the CLI and the report
STATUS_COLOR = {"ok": "#1b9e4b", "warn": "#e0a000", "bad": "#d7263d"}
MIN_TREND_REPS = 6  # fewer reps with a verdict than this: halves of 3 say nothing
MIN_TREND_PARTS = 3  # a direction needs three points: a line through two always "goes" somewhere
TREND_POINTS = 10  # glute-first % difference between halves worth calling a change
INTERPRETATION = (
    "Glute-first is a training goal, not a diagnosis. Healthy people often fire the lumbar "
    "erector spinae with or before the glutes, and the lag varies by about ±100 ms from rep to "
    "rep, so a single rep means little: judge the trend over a set and across sessions."
)


# ------------------------------------------------------------------------------------------
# Small helpers shared by the CSV and the HTML


def role_colors(doc: Mapping[str, Any]) -> dict[Role, str]:
    """Lane colour of each role as the window draws it: by the channel's place in the file
    (``source.channels``), falling back to the role order."""
    channels = list((doc.get("source") or {}).get("channels") or [])
    out = dict(ROLE_COLOR)
    for role, name in (doc.get("roles") or {}).items():
        try:
            out[Role(role)] = CHANNEL_COLORS[channels.index(name) % len(CHANNEL_COLORS)]
        except ValueError:
            continue  # a derived (bipolar) channel or an unknown role: the fallback stays
    return out


def compared_roles(doc: Mapping[str, Any]) -> list[str]:
    """Roles whose onsets decide a rep, in the canonical order glute_l, glute_r, lumbar_l, ...

    Taken from the reps; with no reps, from the exercise template and the mapped roles, so a
    0-rep CSV still has the columns a spreadsheet template expects.
    """
    seen = {r for rep in doc.get("reps", []) for r in rep.get("onsets", {})}
    if not seen:
        from dsp.contract import ContractError
        from dsp.templates import get_template

        mapped = set(doc.get("roles", {}))
        try:
            t = get_template(str(doc.get("exercise", "hinge")))
            seen = {r.value for r in (*t.glutes, *t.lumbars)} & mapped
        except ContractError:
            seen = mapped
    return [r.value for r in Role if r.value in seen]


def verdict_counts(reps: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {o: sum(r.get("order") == o for r in reps) for o in ORDERS}


def _num(v: float | None, nd: int) -> str:
    return "" if v is None else f"{float(v):.{nd}f}"


def _side(rep: Mapping[str, Any], side: str) -> Mapping[str, Any] | None:
    s = rep.get(side)
    return s if isinstance(s, Mapping) else None


# ------------------------------------------------------------------------------------------
# CSV


def rep_table_columns(doc: Mapping[str, Any]) -> list[str]:
    return [
        "rep",
        "start_s",
        "end_s",
        *(f"onset_{r}_s" for r in compared_roles(doc)),
        "lag_ms",
        "lag_ci_low_ms",
        "lag_ci_high_ms",
        "order",
        "corrected",
        "detected_lag_ms",
        "detected_order",
        "left_lag_ms",
        "left_order",
        "right_lag_ms",
        "right_order",
        "reason",
        "rejudged",
        "cued",
    ]


def rep_table_rows(doc: Mapping[str, Any]) -> list[list[str]]:
    """One row of text cells per rep; missing values are empty cells (NaN in pandas)."""
    roles = compared_roles(doc)
    rows = []
    for rep in doc.get("reps", []):
        left, right = _side(rep, "left"), _side(rep, "right")
        was = rep.get("detected") if rep.get("corrected") else None
        was = was if isinstance(was, Mapping) else rep  # not corrected: detected = shown
        rows.append(
            [
                str(int(rep["index"]) + 1),  # 1-based, as the coach counts reps
                _num(rep.get("start_s"), 4),  # the document keeps 0.1 ms
                _num(rep.get("end_s"), 4),
                *(_num(rep.get("onsets", {}).get(r), 4) for r in roles),
                _num(rep.get("lag_ms"), 2),
                _num((rep.get("lag_ci_ms") or [None, None])[0], 1),
                _num((rep.get("lag_ci_ms") or [None, None])[1], 1),
                str(rep.get("order", "")),
                "yes" if rep.get("corrected") else "",
                _num(was.get("lag_ms"), 2),
                str(was.get("order") or ""),
                _num(left["lag_ms"], 2) if left else "",
                str(left["order"]) if left else "",
                _num(right["lag_ms"], 2) if right else "",
                str(right["order"]) if right else "",
                str(rep.get("reason") or ""),
                "yes" if rep.get("rejudged") else "",
                str(rep.get("cued") or ""),  # the verdict given live, where it was revised
            ]
        )
    return rows


def rep_table_csv(doc: Mapping[str, Any], path: PathLike) -> None:
    """Write one row per rep with a plain header row (Excel and pandas read it as is)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")  # RFC 4180, what Excel writes too
        writer.writerow(rep_table_columns(doc))
        writer.writerows(rep_table_rows(doc))


# ------------------------------------------------------------------------------------------
# Numbers for the summary


def trend(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Glute-first % (and median lag) in the first vs the second half of the reps with a
    verdict, and a one-sentence note."""
    decided = [r for r in doc.get("reps", []) if r.get("order") != UNDETERMINED]
    out: dict[str, Any] = {"halves": None, "note": ""}
    if len(decided) < MIN_TREND_REPS:
        out["note"] = (
            f"Too few reps with a verdict ({len(decided)}) to compare the first and the second "
            f"half of the session (needs {MIN_TREND_REPS})."
        )
        return out
    half = len(decided) // 2
    halves = []
    for part in (decided[:half], decided[half:]):
        lags = [r["lag_ms"] for r in part if r.get("lag_ms") is not None]
        halves.append(
            {
                "reps": len(part),
                "glute_first": sum(r["order"] == GLUTE_FIRST for r in part),
                "percent": glute_first_pct(verdict_counts(part)),
                "median_lag_ms": float(median(lags)) if lags else None,
            }
        )
    out["halves"] = halves
    p1, p2 = halves[0]["percent"], halves[1]["percent"]
    said = (
        f"Glute first {p1:.0f} % in the first half ({halves[0]['glute_first']} of "
        f"{halves[0]['reps']}) and {p2:.0f} % in the second half ({halves[1]['glute_first']} "
        f"of {halves[1]['reps']})."
    )
    # Two halves are two numbers: a line through them always points somewhere. A direction
    # is only claimed when three thirds of the set agree on it.
    k = len(decided) // MIN_TREND_PARTS
    if k < 3:
        out["note"] = (
            f"{said} Two numbers are not a trend; a direction needs {MIN_TREND_PARTS} parts "
            f"of at least 3 reps with a verdict ({3 * MIN_TREND_PARTS}, this set has "
            f"{len(decided)})."
        )
        return out
    parts = [decided[:k], decided[k : 2 * k], decided[2 * k :]]
    pcts = [float(glute_first_pct(verdict_counts(x)) or 0.0) for x in parts]
    out["thirds"] = pcts
    rising = all(b >= a for a, b in pairwise(pcts))
    falling = all(b <= a for a, b in pairwise(pcts))
    if rising and pcts[-1] - pcts[0] >= TREND_POINTS:
        word = "more reps were glute-first as the set went on"
    elif falling and pcts[0] - pcts[-1] >= TREND_POINTS:
        word = "fewer reps were glute-first as the set went on"
    else:
        word = "no steady change through the set"
    thirds = ", ".join(f"{x:.0f} %" for x in pcts)
    out["note"] = f"{said} By thirds of the set ({thirds}): {word}."
    return out


# ------------------------------------------------------------------------------------------
# Signal work for the plots


def _conditioning(info: StreamInfo, settings: DspSettings, roles: Sequence[Role]) -> list[Any]:
    """One :class:`~dsp.filters.SosFilter` per role, as the pipeline conditions it."""
    from dsp.filters import SosFilter, cascade, design_bandpass, design_highpass, design_notch

    s, fs = settings, info.fs
    base = cascade(
        design_bandpass(fs, s.bandpass_low_hz, s.bandpass_high_hz, s.bandpass_order),
        design_notch(fs, s.notch_hz, s.notch_harmonics, s.notch_q),
    )
    ecg = (
        cascade(base, design_highpass(fs, s.ecg_highpass_hz, s.ecg_highpass_order))
        if s.ecg_highpass_hz > 0
        else base
    )
    return [SosFilter(ecg if r.is_lumbar else base, 1) for r in roles]


def session_envelope(
    data: NDArray[np.float64],
    info: StreamInfo,
    settings: DspSettings,
    roles: Sequence[Role],
    bin_s: float,
    progress: Progress | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """RMS of the conditioned signal of ``roles`` in bins of ``bin_s``: (bin centres s,
    (bins, roles) uV). Bins without valid samples are NaN.

    Filters only (no detection), so this costs a fraction of the analysis; runs of NaN rows
    (gaps) restart the filters as the pipeline does, so a gap does not ring.
    """
    n = int(data.shape[0])
    bin_n = max(1, round(bin_s * info.fs))
    n_bins = max(1, math.ceil(n / bin_n))
    cols = [info.roles[r] for r in roles]
    sq = np.zeros((n_bins, len(cols)))
    cnt = np.zeros(n_bins)
    filters = _conditioning(info, settings, roles)
    good = np.isfinite(data[:, cols]).all(axis=1) if cols else np.ones(n, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], good.view(np.int8), [0]))))
    step = max(bin_n, round(2.0 * info.fs))
    done = 0
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        for f in filters:
            f.reset()
        for i in range(a, b, step):
            j = min(b, i + step)
            bins = np.arange(i, j) // bin_n
            cnt += np.bincount(bins, minlength=n_bins)
            for k, (c, f) in enumerate(zip(cols, filters, strict=True)):
                y = f.process(data[i:j, c : c + 1])[:, 0]
                sq[:, k] += np.bincount(bins, weights=y * y, minlength=n_bins)
            done += j - i
            if progress is not None:
                progress(min(1.0, done / max(1, int(good.sum()))))
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(sq / cnt[:, None])
    rms[cnt == 0] = np.nan
    t = (np.arange(n_bins) + 0.5) * bin_n / info.fs
    return t.astype(np.float64), rms.astype(np.float64)


def rep_traces(
    data: NDArray[np.float64],
    info: StreamInfo,
    settings: DspSettings,
    t0: float,
    t1: float,
    warmup_s: float = 2.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Filtered EMG and RMS envelope of every channel over [t0, t1] s, exactly as the live
    display shows them: (times s, filtered (n, ch), envelope (n, ch)).

    The display pipeline starts ``warmup_s`` earlier so its filters have settled.
    """
    from dsp.contract import Chunk
    from dsp.pipeline import Pipeline

    fs = info.fs
    lo = max(0, math.floor(t0 * fs))
    hi = min(int(data.shape[0]), math.ceil(t1 * fs) + 1)
    start = max(0, lo - round(warmup_s * fs))
    pipe = Pipeline(info, settings, display=True)
    out = pipe.process(Chunk(data[start:hi], start))
    assert out.filtered is not None and out.envelope is not None
    cut = lo - start
    t = np.arange(lo, hi) / fs
    return t, out.filtered[cut:], out.envelope[cut:]


# ------------------------------------------------------------------------------------------
# Plots


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def _lag_limit(values: Sequence[float], tolerance_ms: float) -> float:
    """Symmetric y limit: the bulk of the lags, not one stray onset 700 ms off."""
    a = np.abs(np.asarray([v for v in values if np.isfinite(v)], dtype=float))
    if not len(a):
        return max(3.0 * tolerance_ms, 100.0)
    bulk = float(np.percentile(a, 98)) * 1.3 if len(a) >= 20 else float(a.max())
    return max(min(float(a.max()), bulk) * 1.15, 3.0 * tolerance_ms, 60.0)


def _running_median(y: NDArray[np.float64], w: int) -> NDArray[np.float64]:
    return np.array([np.median(y[max(0, i - w + 1) : i + 1]) for i in range(len(y))])


def plot_lags(reps: Sequence[Mapping[str, Any]], tolerance_ms: float) -> Figure:
    """Lag per rep, neutral zone shaded, points in verdict colours, running median."""
    fig = _figure(9.0, 3.8)
    ax = fig.add_subplot()
    _style(ax)
    ax.axhspan(-tolerance_ms, tolerance_ms, color=VERDICT_COLOR[SIMULTANEOUS], alpha=0.18, lw=0)
    ax.axhline(0, color="#999999", lw=0.8)
    x = np.array([int(r["index"]) + 1 for r in reps])
    lag = np.array([np.nan if r.get("lag_ms") is None else float(r["lag_ms"]) for r in reps])
    finite = np.isfinite(lag)
    lim = _lag_limit(lag.tolist(), tolerance_ms)
    size = 34 if len(reps) <= 100 else 16
    for order in VERDICT_ORDER:
        sel = np.array([r.get("order") == order for r in reps], dtype=bool) & finite
        if not sel.any():
            continue
        inside = sel & (np.abs(lag) <= lim)
        color = VERDICT_COLOR[order]
        ax.scatter(
            x[inside],
            lag[inside],
            s=size,
            edgecolor="white",
            linewidth=0.6,
            label=VERDICT_TEXT[order].lower(),
            color=color,
            zorder=3,
            clip_on=False,
        )
        for sign, marker in ((1, "^"), (-1, "v")):
            out = sel & (sign * lag > lim)  # beyond the axis: a triangle on its edge
            if out.any():
                ax.scatter(
                    x[out],
                    np.full(int(out.sum()), sign * lim),
                    marker=marker,
                    s=size,
                    color=color,
                    zorder=3,
                    clip_on=False,
                )
    fixed = [
        (int(r["index"]) + 1, (r.get("detected") or {}).get("lag_ms"), r.get("lag_ms"))
        for r in reps
        if r.get("corrected")
    ]
    if fixed:
        # the detected lag stays visible (hollow), joined to the corrected one (ringed)
        for xi, was, now in fixed:
            if was is not None and now is not None:
                ax.plot(
                    [xi, xi],
                    np.clip([was, now], -lim, lim),
                    color=CORRECTED_COLOR,
                    lw=0.8,
                    ls=":",
                    zorder=2,
                )
        xs = [xi for xi, _, now in fixed if now is not None]
        ys = [float(np.clip(now, -lim, lim)) for _, _, now in fixed if now is not None]
        ax.scatter(
            xs,
            ys,
            s=size * 3.2,
            facecolor="none",
            edgecolor=CORRECTED_COLOR,
            linewidth=1.2,
            zorder=4,
            label="corrected by hand",
            clip_on=False,
        )
        xd = [xi for xi, was, _ in fixed if was is not None]
        yd = [float(np.clip(was, -lim, lim)) for _, was, _ in fixed if was is not None]
        ax.scatter(
            xd,
            yd,
            s=size,
            facecolor="white",
            edgecolor=CORRECTED_COLOR,
            linewidth=0.9,
            zorder=3,
            label="detected (before correction)",
            clip_on=False,
        )
    nolag = ~finite
    if nolag.any():
        # reps without a lag still happened: crosses along the bottom edge
        ax.scatter(
            x[nolag],
            np.zeros(int(nolag.sum())),
            marker="x",
            s=size,
            color=VERDICT_COLOR[UNDETERMINED],
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            zorder=3,
            label="no lag",
        )
    if finite.sum() >= 5:
        # The trend, not the rep-to-rep spread: 5 reps, or ~1/20 of a long session.
        w = max(5, int(finite.sum()) // 20)
        ax.plot(
            x[finite],
            _running_median(lag[finite], w),
            color="#333333",
            lw=1.2,
            alpha=0.7,
            label=f"running median ({w} reps)",
            zorder=2,
        )
    ax.set_ylim(-lim, lim)
    ax.set_xlim(0.3, max(1, int(x.max()) if len(x) else 1) + 0.7)
    ax.text(0.005, 0.98, "↑ glute first", transform=ax.transAxes, va="top", fontsize=8)
    ax.text(0.005, 0.02, "↓ lumbar first", transform=ax.transAxes, va="bottom", fontsize=8)
    ax.set_xlabel("rep")
    ax.set_ylabel("lag (ms, lumbar − glute onset)")
    _integer_ticks(ax)
    fig.legend(loc="outside upper center", fontsize=8, ncols=4 if fixed else 6, frameon=False)
    return fig


def plot_counts(counts: Mapping[str, int]) -> Figure:
    fig = _figure(9.0, 2.1)
    ax = fig.add_subplot()
    _style(ax)
    ax.grid(False)
    orders = list(VERDICT_ORDER)
    values = [int(counts.get(o, 0)) for o in orders]
    total = max(1, sum(values))
    y = np.arange(len(orders))[::-1]
    ax.barh(y, values, color=[VERDICT_COLOR[o] for o in orders], height=0.65)
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f"  {v}  ({100 * v / total:.0f} %)", va="center", fontsize=9)
    ax.set_yticks(y, [VERDICT_TEXT[o].lower() for o in orders])
    ax.set_xlim(0, max([*values, 1]) * 1.25)
    ax.set_xlabel("reps")
    _integer_ticks(ax)
    return fig


def plot_sides(reps: Sequence[Mapping[str, Any]], tolerance_ms: float) -> Figure:
    """Left and right lag of each rep side by side (bars; markers for long sessions)."""
    fig = _figure(9.0, 3.6)
    ax = fig.add_subplot()
    _style(ax)
    ax.axhspan(-tolerance_ms, tolerance_ms, color=VERDICT_COLOR[SIMULTANEOUS], alpha=0.18, lw=0)
    ax.axhline(0, color="#999999", lw=0.8)
    x = np.array([int(r["index"]) + 1 for r in reps], dtype=float)
    sides: dict[str, tuple[NDArray[np.float64], list[str]]] = {}
    for side in ("left", "right"):
        vals, colors = [], []
        for r in reps:
            sr = _side(r, side)
            v = None if sr is None else sr.get("lag_ms")
            vals.append(np.nan if v is None else float(v))
            colors.append(VERDICT_COLOR[sr["order"]] if sr else VERDICT_COLOR[UNDETERMINED])
        sides[side] = (np.array(vals), colors)
    lim = _lag_limit([float(v) for vals, _ in sides.values() for v in vals], tolerance_ms)
    bars = len(reps) <= 60
    for (side, (v, colors)), dx, hatch in zip(
        sides.items(), (-0.2, 0.2), ("", "////"), strict=True
    ):
        if bars:  # a bar longer than the axis is cut at its edge, which reads right
            ax.bar(
                x + dx,
                np.nan_to_num(v),
                width=0.38,
                color=colors,
                edgecolor=SIDE_COLOR[side],
                linewidth=0.8,
                hatch=hatch,
                label=side,
            )
        else:
            ax.scatter(
                x + dx / 2,
                np.clip(v, -lim, lim),  # outliers sit on the edge
                s=14,
                color=colors,
                marker="<" if side == "left" else ">",
                label=side,
                clip_on=False,
            )
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("rep")
    ax.set_ylabel("lag per side (ms)")
    _integer_ticks(ax)
    leg = fig.legend(loc="outside upper center", fontsize=8, frameon=False, ncols=2)
    for h in leg.legend_handles:  # the legend tells the sides apart, not the verdicts
        if h is not None and hasattr(h, "set_facecolor"):
            h.set_facecolor("white" if bars else "#555555")
    return fig


def plot_overview(
    t: NDArray[np.float64],
    rms: NDArray[np.float64],
    roles: Sequence[Role],
    names: Sequence[str],
    reps: Sequence[Mapping[str, Any]],
    notes: Sequence[Mapping[str, Any]] = (),
    colors: Mapping[Role, str] | None = None,
) -> Figure:
    """Whole-session activity per muscle with the reps shaded in verdict colours; notes are
    numbered lines (the numbers of the report's Notes table), corrected reps hatched."""
    colors = colors or ROLE_COLOR
    fig = _figure(9.0, 0.9 + 0.85 * len(roles))
    axes = fig.subplots(len(roles), 1, sharex=True, squeeze=False)[:, 0]
    spans: dict[str, list[tuple[float, float]]] = {o: [] for o in ORDERS}
    for r in reps:
        if r.get("start_s") is not None:
            start = float(r["start_s"])
            end = float(r["end_s"]) if r.get("end_s") is not None else start + 0.5
            spans.setdefault(r.get("order", UNDETERMINED), []).append((start, end - start))
    for k, (ax, role) in enumerate(zip(axes, roles, strict=True)):
        _style(ax)
        ax.grid(False)
        for order, xr in spans.items():
            if xr:
                ax.broken_barh(
                    xr,
                    (0, 1),
                    transform=ax.get_xaxis_transform(),
                    color=VERDICT_COLOR[Verdict(order)],
                    alpha=0.22,
                    lw=0,
                )
        fixed = [
            (float(r["start_s"]), float(r.get("end_s") or r["start_s"] + 0.5) - float(r["start_s"]))
            for r in reps
            if r.get("corrected") and r.get("start_s") is not None
        ]
        if fixed:
            ax.broken_barh(
                fixed,
                (0, 1),
                transform=ax.get_xaxis_transform(),
                facecolor="none",
                edgecolor=CORRECTED_COLOR,
                hatch="///",
                lw=0,
                alpha=0.5,
            )
        for n in notes:
            ax.axvline(float(n["t_s"]), color=NOTE_COLOR, lw=1.0, ls="--", zorder=3)
        y = rms[:, k]
        ax.plot(t, y, color=colors[role], lw=0.8)
        top = np.nanpercentile(y, 99.5) if np.isfinite(y).any() else 1.0
        ax.set_ylim(0, max(float(top) * 1.1, 1e-6))
        ax.set_ylabel(f"{role.label}\n{names[k]}", fontsize=8, rotation=0, ha="right", va="center")
        ax.tick_params(axis="y", labelsize=7)
    for i, n in enumerate(notes, 1):
        axes[0].annotate(
            str(i),
            (float(n["t_s"]), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color="white",
            fontweight="bold",
            bbox={"boxstyle": "circle,pad=0.2", "fc": NOTE_COLOR, "lw": 0},
        )
    axes[-1].set_xlabel("time in session (s)")
    title = "RMS of the filtered EMG (µV); shading = reps in verdict colours"
    if any(r.get("corrected") for r in reps):
        title += "; hatched = corrected by hand"
    if notes:
        title += "; numbered lines = notes"
    axes[0].set_title(title, fontsize=9, pad=14 if notes else 6)
    return fig


def plot_example(
    rep: Mapping[str, Any],
    t: NDArray[np.float64],
    filtered: NDArray[np.float64],
    envelope: NDArray[np.float64],
    roles: Sequence[Role],
    channels: Sequence[int],
    names: Sequence[str],
    colors: Mapping[Role, str] | None = None,
) -> Figure:
    """One rep's compared channels: filtered EMG (light), envelope (dark), onsets marked, the
    glute-to-lumbar interval shaded in the verdict colour."""
    colors = colors or ROLE_COLOR
    fig = _figure(9.0, 0.7 + 1.05 * len(roles))
    axes = fig.subplots(len(roles), 1, sharex=True, squeeze=False)[:, 0]
    onsets = {Role(k): v for k, v in rep.get("onsets", {}).items() if v is not None}
    g = [v for r, v in onsets.items() if r.is_glute]
    lu = [v for r, v in onsets.items() if r.is_lumbar]
    color = VERDICT_COLOR.get(rep.get("order", UNDETERMINED), VERDICT_COLOR[UNDETERMINED])
    for ax, role, ch, name in zip(axes, roles, channels, names, strict=True):
        _style(ax)
        ax.grid(False)
        if g and lu:
            ax.axvspan(min(*g, *lu), max(min(g), min(lu)), color=color, alpha=0.18, lw=0)
        ax.plot(t, filtered[:, ch], color=colors[role], lw=0.5, alpha=0.45)
        ax.plot(t, envelope[:, ch], color=colors[role], lw=1.6)
        if role in onsets:
            ax.axvline(onsets[role], color="#222222", lw=1.0, ls="--")
            ax.plot(
                [onsets[role]],
                [0],
                marker="^",
                color="#222222",
                transform=ax.get_xaxis_transform(),
                clip_on=False,
                ms=7,
            )
        amp = np.nanpercentile(np.abs(filtered[:, ch]), 99.5) if np.isfinite(filtered).any() else 1
        amp = max(float(amp), 1e-6) * 1.1
        ax.set_ylim(-amp, amp)
        ax.set_ylabel(f"{role.label}\n{name} (µV)", fontsize=8, rotation=0, ha="right", va="center")
        ax.tick_params(axis="y", labelsize=7)
    lag = rep.get("lag_ms")
    axes[0].set_title(
        f"rep {int(rep['index']) + 1}: {VERDICT_TEXT.get(rep.get('order', ''), '?').lower()}"
        + ("" if lag is None else f", lag {float(lag):+.0f} ms")
        + "   (▲ onset; light = filtered EMG, dark = RMS envelope)",
        fontsize=9,
    )
    axes[-1].set_xlabel("time in session (s)")
    return fig


def plot_ensemble(ens: Any, colors: Mapping[Role, str] | None = None) -> Figure:
    """One panel per verdict: each muscle's mean envelope over its reps, aligned at the first
    glute onset (t = 0), with the 25-75 % band; the same y scale in every panel."""
    from devices.session.ensemble import verdict_order

    colors = colors or ROLE_COLOR
    verdicts = verdict_order(list(dict.fromkeys(c.verdict for c in ens.curves)))
    fig = _figure(9.0, 3.3)
    axes = fig.subplots(1, max(1, len(verdicts)), sharey=True, squeeze=False)[0]
    top = max((float(np.nanmax(c.hi)) for c in ens.curves if np.isfinite(c.hi).any()), default=1.0)
    for ax, verdict in zip(axes, verdicts, strict=False):
        _style(ax)
        curves = ens.of(verdict)
        for c in curves:
            col = colors[c.role]
            ax.fill_between(ens.t_ms, c.lo, c.hi, color=col, alpha=0.16, lw=0)
            ax.plot(ens.t_ms, c.mean, color=col, lw=1.5, label=c.role.label)
        ax.axvline(0, color="#222222", lw=0.9, ls="--")
        n = curves[0].n if curves else 0
        ax.set_title(
            f"{VERDICT_TEXT[Verdict(verdict)].lower()} ({n} reps)",
            fontsize=9,
            color=VERDICT_COLOR[Verdict(verdict)],
            fontweight="bold",
        )
        ax.set_xlabel("ms from the first glute onset")
        ax.set_ylim(0, top * 1.05)
    axes[0].set_ylabel("envelope (µV)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", fontsize=8, ncols=4, frameon=False)
    return fig


def _ensemble_html(
    doc: Mapping[str, Any],
    data: NDArray[np.float64],
    info: StreamInfo,
    settings: DspSettings,
    colors: Mapping[Role, str],
) -> str:
    from devices.session.ensemble import ensemble, summary_rows

    ens = ensemble(doc, data, info, settings)
    intro = (
        "<p>Every rep's envelopes cut from 300 ms before to 700 ms after its first glute onset "
        "(dashed line), averaged per verdict: the line is the mean, the band the middle half "
        "of the reps (25–75 %). Corrected reps count under their corrected verdict.</p>"
    )
    if not ens.curves:
        return intro + (
            "<p>Too few reps of any one verdict to average (an average needs 2 reps).</p>"
        )
    rows = [
        [
            _chip(r["verdict"]),
            _e(Role(r["role"]).label),
            str(r["reps"]),
            _e(f"{r['peak_uv']:.0f} µV"),
            _e(f"{r['peak_ms']:+.0f} ms"),
        ]
        for r in summary_rows(ens)
    ]
    lone = [v for v, n in ens.reps.items() if n < 2]
    extra = (
        f"<p>Not averaged (a single rep): {', '.join(_chip(v) for v in lone)}.</p>" if lone else ""
    )
    return (
        intro
        + _img(_png(plot_ensemble(ens, colors)), "ensemble of reps per verdict")
        + extra
        + _table(["verdict", "muscle", "reps", "peak of the mean", "peak at"], rows, "ensemble")
    )


def pick_example(reps: Sequence[Mapping[str, Any]], order: str) -> Mapping[str, Any] | None:
    """A typical rep of ``order``: all onsets present, lag closest to that verdict's median."""
    cands = [
        r
        for r in reps
        if r.get("order") == order
        and r.get("lag_ms") is not None
        and all(v is not None for v in r.get("onsets", {}).values())
    ]
    if not cands:
        return None
    mid = median(float(r["lag_ms"]) for r in cands)
    return min(cands, key=lambda r: (abs(float(r["lag_ms"]) - mid), int(r["index"])))


# ------------------------------------------------------------------------------------------
# HTML


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _lag_text(v: float | None) -> str:
    return "—" if v is None else f"{float(v):+.0f} ms"


def _verdict(order: str) -> Verdict | None:
    """``order`` (a document's string) as a verdict; None when it names none."""
    try:
        return Verdict(order)
    except ValueError:
        return None


def _chip(order: str | None) -> str:
    if not order:
        return ""
    verdict = _verdict(order)
    color = VERDICT_COLOR[UNDETERMINED if verdict is None else verdict]
    text = "#222" if order == SIMULTANEOUS else "#fff"  # amber needs dark text to be read
    word = (order if verdict is None else VERDICT_TEXT[verdict]).lower()
    return f'<span class="chip" style="background:{color};color:{text}">{_e(word)}</span>'


def _img(b64: str, alt: str) -> str:
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """Rows are pre-escaped HTML cells."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    thead = f"<thead><tr>{th}</tr></thead>" if head else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}">{thead}<tbody>{body}</tbody></table>'


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#222;max-width:1040px;margin:24px auto;padding:0 16px;line-height:1.4}
h1{margin:0 0 4px;font-size:26px}h2{font-size:19px;margin:28px 0 8px;
 border-bottom:2px solid #eee;padding-bottom:4px}
.sub{color:#666;margin:0 0 14px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{padding:3px 9px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6}
table.meta td:first-child{color:#666;font-weight:600;width:190px}
table.reps td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.card{border:1px solid #e3e3e3;border-radius:10px;padding:10px 16px;min-width:130px}
.card .num{font-size:34px;font-weight:700;line-height:1.1}
.card .lbl{color:#666;font-size:13px}
.chip{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600}
.note{background:#f4f7fb;border-left:4px solid #4363d8;padding:8px 12px;margin:10px 0}
.trend{font-size:15px;margin:8px 0}
.empty{background:#fff6e0;border-left:4px solid #e0a000;padding:8px 12px}
img.plot{max-width:100%;height:auto;display:block;margin:6px 0}
ul.advice{margin:2px 0;padding-left:18px}
details summary{cursor:pointer;color:#4363d8}
footer{color:#888;font-size:12px;margin:30px 0 10px}
.fixed{border:1.5px solid #222;border-radius:10px;padding:0 7px;font-size:11px;font-weight:600}
.was{color:#666;font-size:12px}.said{color:#8e44ad;font-style:italic}
.pin{display:inline-block;background:#8e44ad;color:#fff;border-radius:50%;width:18px;
 text-align:center;font-size:11px;font-weight:700}
.review{background:#f6f6f6;border-left:4px solid #222;padding:8px 12px;margin:10px 0}
table.ensemble td{font-variant-numeric:tabular-nums}
@media print{body{margin:0;max-width:none}section{break-inside:avoid}
 details{display:block}}
"""


def _html_page(title: str, body: list[str]) -> str:
    """One self-contained HTML document (the report and the progress page share its head)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _meta_rows(
    doc: Mapping[str, Any], info: StreamInfo | None, meta: Mapping[str, Any]
) -> list[list[str]]:
    from dsp.contract import ContractError
    from dsp.templates import get_template

    src = doc.get("source", {}) or {}
    ex = str(doc.get("exercise", ""))
    try:
        ex_text = f"{get_template(ex).title} ({ex})"
    except ContractError:
        ex_text = ex
    rows: list[list[str]] = []
    known = ("athlete", "session", "date")
    for key in known:
        if meta.get(key):
            rows.append([_e(key.capitalize()), _e(meta[key])])
        elif key == "date":  # always say when; a file may not know it
            rows.append(["Date", "not recorded in the file"])
    for key, value in meta.items():
        if key not in known and value not in (None, ""):
            rows.append([_e(str(key).replace("_", " ").capitalize()), _e(value)])
    rows.append(["Exercise", _e(ex_text)])
    if src.get("path"):
        fmt = f" ({src['format']})" if src.get("format") else ""
        rows.append(["Source file", _e(f"{os.path.basename(str(src['path']))}{fmt}")])
    fs = src.get("fs") or (info.fs if info else None)
    dur = src.get("duration_s")
    if dur is not None:
        rows.append(["Duration", _e(f"{float(dur):.1f} s ({float(dur) / 60:.1f} min)")])
    if fs:
        rows.append(["Sampling rate", _e(f"{float(fs):g} Hz")])
    roles = doc.get("roles", {}) or {}
    compared = set(compared_roles(doc))
    role_txt = ", ".join(
        f"{Role(r).label} = {c}" + ("" if r in compared else " (not compared)")
        for r, c in roles.items()
    )
    rows.append(["Muscles (role = channel)", _e(role_txt or "—")])
    chans = src.get("channels")
    if chans:
        rows.append(["Channels in the file", _e(", ".join(map(str, chans)))])
    return rows


def _summary_html(doc: Mapping[str, Any], reps: Sequence[Mapping[str, Any]], tol: float) -> str:
    s = doc.get("summary", {}) or {}
    counts: dict[str, int] = {o: int(s.get(o, 0)) for o in ORDERS}
    n = int(s.get("reps", len(reps)))
    pct = glute_first_pct(counts)
    med = s.get("median_lag_ms")
    cards = [
        ("sum-reps", str(n), "reps"),
        (
            "sum-glute-first-pct",
            "—" if pct is None else f"{pct:.0f} %",
            "glute first (of reps with a verdict)",
        ),
        ("sum-median-lag", _lag_text(med), "median lag (+ = glute first)"),
    ]
    parts = ['<div class="cards">']
    for cid, num, lbl in cards:
        parts.append(
            f'<div class="card"><div class="num" id="{cid}">{_e(num)}</div>'
            f'<div class="lbl">{_e(lbl)}</div></div>'
        )
    for o in VERDICT_ORDER:
        parts.append(
            f'<div class="card"><div class="num" id="sum-{o}" style="color:'
            f'{VERDICT_COLOR[o]}">{counts[o]}</div><div class="lbl">{_chip(o)}</div></div>'
        )
    parts.append("</div>")
    if n == 0:
        parts.append(
            '<p class="empty" id="no-reps">No reps were detected in this recording. Check the '
            "channel mapping and the signal quality below; a rep needs an onset on at least one "
            "glute and one lumbar channel after a moment of rest.</p>"
        )
    else:
        tr = trend(doc)
        parts.append(f'<p class="trend" id="trend">{_e(tr["note"])}</p>')
        parts.append(
            f"<p>Verdicts use a neutral zone of ±{_e(f'{tol:g}')} ms: a lag inside it is "
            "“simultaneous”.</p>"
        )
    return "\n".join(parts)


def _sides_html(reps: Sequence[Mapping[str, Any]], tol: float) -> tuple[str, bool]:
    """Per-side table (and whether both sides have results, i.e. the plot is worth drawing)."""
    present = {side: [_side(r, side) for r in reps] for side in ("left", "right")}
    have = [side for side, v in present.items() if any(x is not None for x in v)]
    if not have:
        return "<p>No per-side results (the exercise compares no same-side pair).</p>", False
    rows = []
    for side in have:
        res = [x for x in present[side] if x is not None]
        counts: dict[str, int] = {o: sum(x.get("order") == o for x in res) for o in ORDERS}
        pct = glute_first_pct(counts)
        lags = [float(x["lag_ms"]) for x in res if x.get("lag_ms") is not None]
        rows.append(
            [
                _e(side),
                str(len(res)),
                "—" if pct is None else _e(f"{pct:.0f} %"),
                _e(_lag_text(median(lags) if lags else None)),
                " ".join(f"{_chip(o)} {counts[o]}" for o in VERDICT_ORDER),
            ]
        )
    head = ["side", "reps", "glute first", "median lag", "verdicts"]
    out = _table(head, rows, "sides")
    both = len(have) == 2
    if both:
        diffs = [
            float(r["left"]["lag_ms"]) - float(r["right"]["lag_ms"])
            for r in reps
            if _side(r, "left")
            and _side(r, "right")
            and r["left"].get("lag_ms") is not None
            and r["right"].get("lag_ms") is not None
        ]
        if diffs:
            d = median(diffs)
            out += (
                f"<p>Median left − right lag difference: {_e(f'{d:+.0f}')} ms "
                + (
                    "(about symmetric)."
                    if abs(d) < max(tol, 1.0)
                    else f"(the {'left' if d > 0 else 'right'} side leads with the glute more)."
                )
                + "</p>"
            )
    else:
        out += (
            f'<p id="one-side">Only the {_e(have[0])} side was compared (one side mapped, or a '
            "single-leg exercise), so there is no left/right comparison.</p>"
        )
    return out, both


def _rep_table_html(doc: Mapping[str, Any]) -> str:
    reps = doc.get("reps", [])
    if not reps:
        return "<p>No reps.</p>"
    roles = compared_roles(doc)
    head = (
        ["rep", "start s"]
        + [f"{Role(r).label} onset s" for r in roles]
        + ["lag ms (95 %)", "verdict", "left", "right", "note"]
    )
    rows = []
    for rep in reps:
        cells = [str(int(rep["index"]) + 1), _e(_num(rep.get("start_s"), 3))]
        cells += [_e(_num(rep.get("onsets", {}).get(r), 3) or "—") for r in roles]
        lag = _lag_text(rep.get("lag_ms")).replace(" ms", "")
        ci = rep.get("lag_ci_ms")
        if ci and rep.get("lag_ms") is not None:
            lag += f" ({ci[0]:+.0f}…{ci[1]:+.0f})"
        cells.append(_e(lag))
        verdict = _chip(rep.get("order"))
        if rep.get("cued"):
            verdict += f' <span class="was">(cue: {_e(str(rep["cued"]).replace("_", " "))})</span>'
        was = rep.get("detected") if rep.get("corrected") else None
        if isinstance(was, Mapping):
            verdict += (
                ' <span class="fixed">corrected</span><br><span class="was">detected: '
                f"{_chip(was.get('order'))} {_e(_lag_text(was.get('lag_ms')))}</span>"
            )
        cells.append(verdict)
        for side in ("left", "right"):
            s = _side(rep, side)
            cells.append("" if s is None else f"{_chip(s['order'])} {_e(_lag_text(s['lag_ms']))}")
        note = rep.get("reason") or ""
        if rep.get("rejudged"):
            note = "re-judged once rest was seen" + (f"; {note}" if note else "")
        said = [n["text"] for n in doc.get("notes", []) if n.get("rep") == int(rep["index"]) + 1]
        cells.append(_e(note) + "".join(f'<br><span class="said">“{_e(t)}”</span>' for t in said))
        rows.append(cells)
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = []
    numeric = {0, 1, *range(2, 2 + len(roles)), 2 + len(roles)}
    for rep, cells in zip(reps, rows, strict=True):
        tds = "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(cells)
        )
        fixed = ' data-corrected="yes"' if rep.get("corrected") else ""
        body.append(f'<tr class="rep" data-rep="{int(rep["index"]) + 1}"{fixed}>{tds}</tr>')
    return f'<table class="reps"><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _notes_html(doc: Mapping[str, Any]) -> str:
    """The timeline's notes: numbered as on the session overview, with the rep they fall in."""
    notes = doc.get("notes") or []
    if not notes:
        return "<p>No notes on this recording.</p>"
    rows = []
    for i, n in enumerate(notes, 1):
        t = float(n["t_s"])
        rows.append(
            [
                f'<span class="pin">{i}</span>',
                _e(f"{int(t // 60)}:{t % 60:04.1f}"),
                "—" if n.get("rep") is None else _e(f"rep {n['rep']}"),
                _e(n.get("text", "")),
                _e("made in review" if n.get("source") == "review" else "in the recording"),
            ]
        )
    return _table(["", "time", "rep", "note", "where"], rows, "notes")


def _review_line(doc: Mapping[str, Any]) -> str:
    """What the review changed, in one sentence (empty without a review)."""
    review = doc.get("review") or {}
    fixed = int(review.get("corrected_reps", 0))
    parts = []
    if fixed:
        was = doc.get("detected_summary") or {}
        pct_was = glute_first_pct({o: int(was.get(o, 0)) for o in ORDERS})
        parts.append(
            f"{fixed} rep{'s' if fixed != 1 else ''} corrected by hand in review: the figures "
            "use the corrected onsets"
            + ("" if pct_was is None else f" (as detected: glute first {pct_was:.0f} %)")
            + "; the rep table shows both."
        )
    if review.get("unmatched_corrections"):
        n = int(review["unmatched_corrections"])
        parts.append(
            f"{n} correction{'s' if n != 1 else ''} of the review match no rep of this analysis "
            "(analysed with other settings) and are not applied."
        )
    if review.get("notice"):
        parts.append(str(review["notice"]) + ".")
    return f'<p class="review" id="review">{_e(" ".join(parts))}</p>' if parts else ""


def _hum_figure(q: Mapping[str, Any]) -> str:
    """Hum as the window shows it: over the rest noise floor, with its RMS in µV."""
    freq = f"{q['hum_freq']:g} Hz " if q.get("hum_freq") else ""
    if q["hum_db"] <= HUM_FLOOR_DB:
        return f"{freq}hum below {HUM_FLOOR_DB:.0f} dB of the rest noise floor"
    rms = q.get("hum_rms_uv")
    rms_txt = f" ({rms:.1f} µV RMS)" if rms is not None else ""
    return f"{freq}hum {q['hum_db']:+.0f} dB over the rest noise floor{rms_txt}"


_ECG_TAIL = ", or enable ECG removal / a 30 Hz high-pass"  # (dsp/quality.py's ECG advice)


def _advice_in_force(text: str, role: str, doc: Mapping[str, Any]) -> str:
    """The quality advice with the analysis's settings in force: the ECG advice told to
    "enable ECG removal / a 30 Hz high-pass" with the high-pass already on in Settings. The
    ECG is measured on the raw signal (before the high-pass), so it can stand out with the
    filter on; then the advice says the filter is on and what is left to do."""
    if not text.startswith("heartbeat (ECG)") or _ECG_TAIL not in text:
        return text
    settings = doc.get("settings") or {}
    hz = settings.get("ecg_highpass_hz", DspSettings().ecg_highpass_hz) if settings else 0.0
    try:
        hz = float(hz or 0.0)
    except (TypeError, ValueError):
        hz = 0.0
    try:
        lumbar = Role(role).is_lumbar
    except ValueError:
        lumbar = False
    head = text.replace(_ECG_TAIL, "")
    if not lumbar:
        # the ECG high-pass acts on the lumbar channels only: enabling it would not help here
        return head + " (the ECG high-pass acts on the lumbar channels only)"
    gate = settings.get("ecg_gate_ratio", DspSettings().ecg_gate_ratio) if settings else 0.0
    try:
        gated = float(gate or 0.0) > 0
    except (TypeError, ValueError):
        gated = False
    skip = "; heartbeats are skipped on these channels too" if gated else ""
    if hz > 0:
        return (
            head + f"; the {hz:g} Hz ECG high-pass is already on (Settings) and keeps the "
            f"heartbeat out of the onsets (this figure is measured before it){skip}"
        )
    return head + f", or enable the ECG high-pass (Settings, ECG removal, 30 Hz){skip}"


def _quality_html(doc: Mapping[str, Any]) -> str:
    quality = doc.get("quality", {}) or {}
    roles = doc.get("roles", {}) or {}
    rows = []
    for role, q in quality.items():
        label = f"{Role(role).label} ({roles.get(role, role)})" if role in roles else role
        if not q:
            rows.append([_e(label), "not measured (recording too short)", "", ""])
            continue
        status = str(q.get("status", "?"))
        color = STATUS_COLOR.get(status, "#7f8c8d")
        pill = f'<span class="chip" style="background:{color};color:#fff">{_e(status)}</span>'
        figures = []
        if q.get("noise_rms_uv") is not None:
            figures.append(f"noise floor {q['noise_rms_uv']:.1f} µV RMS")
        if q.get("hum_db") is not None:
            figures.append(_hum_figure(q))
        if q.get("saturation_fraction"):
            figures.append(f"clipped {100 * q['saturation_fraction']:.2f} %")
        if q.get("flat_fraction"):
            figures.append(f"flat {100 * q['flat_fraction']:.1f} %")
        if q.get("ecg_db") is not None:
            figures.append(f"ECG {q['ecg_db']:+.0f} dB over the rest EMG band")
        if q.get("missing_fraction"):
            figures.append(f"missing {100 * q['missing_fraction']:.2f} %")
        issues = ", ".join(ISSUE_TEXT.get(i, i) for i in q.get("issues", [])) or "none"
        advice = [_advice_in_force(str(a), role, doc) for a in q.get("advice") or []]
        adv = (
            '<ul class="advice">' + "".join(f"<li>{_e(a)}</li>" for a in advice) + "</ul>"
            if advice
            else "—"
        )
        rows.append([_e(label), f"{pill} {_e(issues)}", _e("; ".join(figures)), adv])
    if not rows:
        return "<p>No signal-quality figures in the analysis.</p>"
    gaps = doc.get("gaps", []) or []
    out = _table(["muscle (channel)", "status / issues", "figures", "what to do"], rows, "quality")
    if gaps:
        lost = sum(int(g.get("samples", 0)) for g in gaps)
        fs = float((doc.get("source") or {}).get("fs") or 0) or None
        lost_txt = f"{lost / fs:.2f} s" if fs else f"{lost} samples"
        out += f"<p>{len(gaps)} gap(s) in the data ({_e(lost_txt)} lost); reps touching a gap "
        out += "are undetermined.</p>"
    return out


def _overridden_html(doc: Mapping[str, Any], used: Mapping[str, Any]) -> str:
    """Where the report was judged with other settings than its recording was made with
    (chosen for a review, or given on the command line): which, and that its verdicts are
    then not the ones the athlete was cued with."""
    from devices.files.sidecar import recorded_settings

    source = doc.get("source")
    path = source.get("path") if isinstance(source, Mapping) else None
    own = recorded_settings(path) if isinstance(path, str) and path else None
    if own is None:
        return ""
    was = own.start.to_dict()
    diff = [f"{k} {_e(v)} (here {_e(used.get(k))})" for k, v in was.items() if used.get(k) != v]
    if not diff and not (own.changes and not doc.get("settings_changes")):
        return ""
    what = ", ".join(diff) if diff else "the same at the start, without its later changes"
    return (
        "<p><strong>Not the recorded settings.</strong> The recording was made "
        f"with {what}. The verdicts here are a review's, not those the athlete was cued "
        "with.</p>"
    )


def _settings_changes_html(start: Mapping[str, Any], changes: Sequence[Any]) -> str:
    """The settings changed while the recording was made, each from where it came into
    use (the reps after it were judged with it, live and here)."""
    items, before = [], dict(start)
    for change in changes:
        if not isinstance(change, Mapping) or not isinstance(change.get("settings"), Mapping):
            continue
        now = dict(change["settings"])
        diff = [f"{k} {_e(before.get(k))} → {_e(v)}" for k, v in now.items() if before.get(k) != v]
        at = change.get("start_s")
        when = f"{at:.1f} s" if isinstance(at, int | float) else "?"
        items.append(f"<li>from {when}: {', '.join(diff) or 'no change'}</li>")
        before = now
    if not items:
        return ""
    return (
        "<p>Changed while recording (the reps after each change were judged with it, as "
        f"they were live):</p><ul>{''.join(items)}</ul>"
    )


def _settings_html(settings: Mapping[str, Any]) -> str:
    defaults = DspSettings().to_dict()
    main_keys = [
        ("exercise", "exercise template"),
        ("tolerance_ms", "neutral zone ± (ms)"),
        ("detector", "onset statistic"),
        ("k_on", "onset threshold (baseline SDs)"),
        ("min_on_ms", "minimum time above threshold (ms)"),
        ("bandpass_low_hz", "band-pass low (Hz)"),
        ("bandpass_high_hz", "band-pass high (Hz)"),
        ("notch_hz", "mains notch (Hz, 0 = off)"),
        ("ecg_highpass_hz", "lumbar ECG high-pass (Hz, 0 = off)"),
        ("ecg_gate_ratio", "skip heartbeats on lumbar channels (gate ratio, 0 = off)"),
    ]

    def row(key: str, label: str) -> list[str]:
        v = settings.get(key)
        d = defaults.get(key)
        changed = key in defaults and v != d
        val = _e(v) + (f" <em>(default {_e(d)})</em>" if changed else "")
        return [_e(label), f"<strong>{val}</strong>" if changed else val]

    shown = {k for k, _ in main_keys}
    main = _table(["setting", "value"], [row(k, lbl) for k, lbl in main_keys if k in settings])
    rest = [row(k, k) for k in settings if k not in shown]
    more = (
        f"<details><summary>all settings</summary>{_table(['setting', 'value'], rest)}</details>"
        if rest
        else ""
    )
    return main + more


def _version() -> str:
    try:
        from app import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "?"


def build_report(
    doc: Mapping[str, Any],
    data: NDArray[np.float64] | None,
    info: StreamInfo | None,
    *,
    title: str | None = None,
    meta: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    stills: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The report as one HTML string (see :func:`write_report`)."""
    meta = dict(meta or {})

    def tick(f: float) -> None:
        if progress is not None:
            progress(min(1.0, max(0.0, f)))

    reps = list(doc.get("reps", []))
    settings_d = dict(doc.get("settings", {}) or {})
    settings = DspSettings.from_dict(settings_d) if settings_d else DspSettings()
    tol = float(settings.tolerance_ms)
    athlete = meta.get("athlete")
    title = title or ("Firing-order report" + (f" — {athlete}" if athlete else ""))
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    counts: dict[str, int] = {o: int((doc.get("summary") or {}).get(o, 0)) for o in ORDERS}
    colors = role_colors(doc)

    body: list[str] = [
        f"<header><h1>{_e(title)}</h1>",
        '<p class="sub">Glute-vs-lumbar firing order, rep by rep (surface EMG). '
        f"Report made {_e(stamp)} with fireorder {_e(_version())}.</p>",
        _table([], _meta_rows(doc, info, meta), "meta"),
        "</header>",
        '<section id="summary"><h2>Summary</h2>',
        _summary_html(doc, reps, tol),
        _review_line(doc),
        f'<p class="note">{_e(INTERPRETATION)}</p></section>',
    ]
    if stills:  # the hinge a verdict belongs to, seen (right under the summary)
        body += ['<section id="stills"><h2>Video</h2>', _stills_html(stills), "</section>"]
    tick(0.02)

    signal_ok = data is not None and info is not None and data.shape[0] > 0
    notes_section = f'<section id="notes"><h2>Notes</h2>{_notes_html(doc)}</section>'
    # Share of the progress bar: the overview filters every sample; the plots are fixed cost.
    overview_share = 0.7 if signal_ok else 0.0

    if reps:
        body += [
            '<section id="lags"><h2>Lag per rep</h2>',
            "<p>Each point is one rep: above the shaded neutral zone the glutes fired first, "
            "below it the lumbar muscles did. The line is the running median of 5 reps "
            "(drawn from 5 reps with a lag on).</p>",
            _img(_png(plot_lags(reps, tol)), "lag per rep"),
            "</section>",
            '<section id="counts"><h2>Verdicts</h2>',
            _img(_png(plot_counts(counts)), "verdict counts"),
            "</section>",
        ]
        sides_table, both = _sides_html(reps, tol)
        body += ['<section id="sides"><h2>Left and right</h2>', sides_table]
        if both:
            body.append(_img(_png(plot_sides(reps, tol)), "left and right lag per rep"))
        body.append("</section>")
    tick(0.02 + 0.1 * (1 - overview_share))

    if signal_ok:
        assert data is not None and info is not None
        roles = [r for r in Role if r in info.roles]
        names = [info.channel_names[info.roles[r]] for r in roles]
        dur = data.shape[0] / info.fs
        bin_s = max(0.05, dur / 3000.0)  # at most ~3000 points per lane
        t, rms = session_envelope(
            data,
            info,
            settings,
            roles,
            bin_s,
            progress=lambda f: tick(0.1 + overview_share * f),
        )
        body += [
            '<section id="overview"><h2>Session overview</h2>',
            _img(
                _png(plot_overview(t, rms, roles, names, reps, doc.get("notes") or [], colors)),
                "session overview",
            ),
            "</section>",
            notes_section,  # right under the timeline they are pinned on
        ]
        if reps:
            body += [
                '<section id="ensemble"><h2>Ensemble of reps</h2>',
                _ensemble_html(doc, data, info, settings, colors),
                "</section>",
            ]
        picked = [(o, pick_example(reps, o)) for o in (GLUTE_FIRST, LUMBAR_FIRST)]
        examples = [(o, r) for o, r in picked if r is not None]
        if examples:
            body.append('<section id="examples"><h2>Example reps</h2>')
            body.append(
                "<p>A typical rep of each kind (lag closest to that verdict's median), the "
                "compared muscles only. The shaded interval runs from the first glute onset to "
                "the first lumbar onset.</p>"
            )
            for order, rep in examples:
                body.append(_example_html(rep, order, data, info, settings, colors))
            missing = {GLUTE_FIRST, LUMBAR_FIRST} - {o for o, _ in examples}
            for o in sorted(missing):
                body.append(f"<p>No {_e(VERDICT_TEXT[o].lower())} rep in this session.</p>")
            body.append("</section>")
    elif reps:
        body.append(
            '<section id="examples"><h2>Example reps</h2><p>Signal traces are not included '
            "(the report was made without the recording's samples).</p></section>"
        )
    tick(0.92)

    if not signal_ok:
        body.append(notes_section)  # no overview to sit under
    body += [
        '<section id="reptable"><h2>Rep by rep</h2>',
        _rep_table_html(doc),
        "</section>",
        '<section id="quality"><h2>Signal quality</h2>',
        _quality_html(doc),
        "</section>",
        '<section id="settings"><h2>Signal-processing settings</h2>',
        _settings_html(settings_d),
        _settings_changes_html(settings_d, doc.get("settings_changes") or []),
        _overridden_html(doc, settings_d),
        "</section>",
        '<section id="interpretation"><h2>How to read this report</h2>',
        f"<p>{_e(INTERPRETATION)}</p>",
        "<p>The lag is the lumbar muscles’ onset minus the glutes’ onset of the rep "
        "(positive = glutes first). A group’s onset is its earlier side’s, or, when the two "
        "sides’ onsets are too uncertain to tell apart, their precision-weighted mean. "
        f"A rep is “glute first” when the lag is at least {tol:g} ms, "
        f"“lumbar first” when it is at most −{tol:g} ms, and “simultaneous” in between. "
        "“Undetermined” means a muscle group had no onset, a gap, clipping or a flat line "
        "touched an onset, or the lag’s 95 % interval reaches from lumbar first to glute "
        "first, so the data cannot decide. Onsets are detected on the filtered EMG "
        "(Teager–Kaiser energy against a resting baseline, Hodges &amp; Bui 1996), so poor "
        "electrode contact (see Signal quality) makes them less reliable.</p>",
        "</section>",
        f"<footer>fireorder {_e(_version())} · analysis schema {_e(doc.get('schema', '?'))} "
        f"· {_e(stamp)}</footer>",
    ]
    tick(1.0)
    return _html_page(title, body)


def _example_html(
    rep: Mapping[str, Any],
    order: str,
    data: NDArray[np.float64],
    info: StreamInfo,
    settings: DspSettings,
    colors: Mapping[Role, str] | None = None,
) -> str:
    roles = [Role(r) for r in rep.get("onsets", {}) if Role(r) in info.roles]
    roles = [r for r in Role if r in roles]
    times = [float(v) for v in rep["onsets"].values() if v is not None]
    t0 = min(times) - 0.4
    t1 = max(max(times) + 0.6, t0 + 1.2)  # at least 1.2 s so the burst is visible
    t, filt, env = rep_traces(data, info, settings, max(0.0, t0), t1)
    channels = [info.roles[r] for r in roles]
    names = [info.channel_names[c] for c in channels]
    fig = plot_example(rep, t, filt, env, roles, channels, names, colors)
    title = f"{VERDICT_TEXT[Verdict(order)].lower()} example (rep {int(rep['index']) + 1})"
    return f"<h3>{_chip(order)} rep {int(rep['index']) + 1}</h3>" + _img(_png(fig), title)


# ------------------------------------------------------------------------------------------
# A still of a rep from the recording's video (``fireorder report FILE --still REP``)


def rep_onset_s(rep: Mapping[str, Any]) -> float:
    """The rep's onset: its first muscle onset (the moment the hinge starts), else its start."""
    onsets = [float(v) for v in (rep.get("onsets") or {}).values() if v is not None]
    return min(onsets) if onsets else float(rep.get("start_s") or 0.0)


def video_still(recording: PathLike, rep: Mapping[str, Any]) -> dict[str, Any]:
    """The video frame at ``rep``'s onset as a JPEG (base64) with its caption, or
    ``{"error": why}`` (no video, missing, unreadable, none at that time)."""
    import base64
    import io

    from PIL import Image

    from devices.files.sidecar import ReviewStore
    from devices.video.reader import VideoError, VideoReader
    from devices.video.sync import timeline_for

    number = int(rep["index"]) + 1
    entry = ReviewStore(recording).video()
    if entry is None:
        return {"rep": number, "error": "the recording has no video (attach one in review)"}
    path = entry.resolve(recording)
    if not path.is_file():
        return {"rep": number, "error": f"video {path} not found"}
    try:
        reader = VideoReader(path, max_width=960)
    except VideoError as exc:
        return {"rep": number, "error": f"video unreadable: {exc}"}
    try:
        timeline = timeline_for(entry, recording, reader)
        t = rep_onset_s(rep)
        index = timeline.index_at(t)
        if index is None:
            return {"rep": number, "error": f"the video has no frame at {t:.2f} s of the EMG"}
        rgb = reader.frame(index)
    except VideoError as exc:
        return {"rep": number, "error": str(exc)}
    finally:
        reader.close()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    order = str(rep.get("order") or "")
    verdict = _verdict(order)
    word = VERDICT_TEXT[verdict] if verdict is not None else order
    lag = rep.get("lag_ms")
    caption = (
        f"Rep {number}: {word.lower()}"
        + ("" if lag is None else f", lag {float(lag):+.0f} ms")
        + f" — video frame {index + 1} at the rep's onset ({t:.2f} s)"
    )
    return {
        "rep": number,
        "order": order,
        "caption": caption,
        "jpeg_b64": base64.b64encode(buf.getvalue()).decode("ascii"),
    }


def _stills_html(stills: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for st in stills:
        if "jpeg_b64" in st:
            parts.append(
                f'<figure class="still"><h3>{_chip(st.get("order"))} rep {int(st["rep"])}</h3>'
                f'<img class="plot" alt="video still of rep {int(st["rep"])}" '
                f'src="data:image/jpeg;base64,{st["jpeg_b64"]}">'
                f"<figcaption>{_e(st['caption'])}</figcaption></figure>"
            )
        else:
            parts.append(f"<p>Rep {int(st['rep'])}: no still ({_e(st.get('error', ''))}).</p>")
    return "".join(parts)


def header_meta(
    path: str,
    start_time: datetime | None,
    athlete: str | None = None,
    session: str | None = None,
    date: str | None = None,
) -> dict[str, str]:
    """The report's header: what was given, else what the recording says of itself (a
    fireorder recording names its athlete and session; a file may know its start)."""
    from devices.files.bdf_format import read_sidecar, sidecar_part

    recorded = sidecar_part(read_sidecar(path), "meta")
    meta = {
        "athlete": athlete or recorded.get("athlete"),
        "session": session or recorded.get("session"),
        "date": date or (start_time.strftime("%Y-%m-%d %H:%M") if start_time else None),
    }
    return {k: str(v) for k, v in meta.items() if v}


def write_report(
    doc: Mapping[str, Any],
    data: NDArray[np.float64] | None,
    info: StreamInfo | None,
    path: PathLike,
    *,
    title: str | None = None,
    meta: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    stills: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Write a single self-contained HTML report of an analysed session to ``path``.

    ``doc`` is the ``fireorder.analysis/1`` document. ``data`` (n, ch) in microvolts and
    ``info`` (with the roles) are the analysed samples; with them the report adds a session
    overview and example traces of a glute-first and a lumbar-first rep. ``meta`` holds
    free-form header fields (``athlete``, ``session``, ``date`` first, then any other).
    ``progress`` receives 0..1 while the signal is processed (long files). ``stills``: video
    frames of chosen reps (:func:`video_still`), shown under the summary.
    """
    text = build_report(doc, data, info, title=title, meta=meta, progress=progress, stills=stills)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    log.info("wrote report %s (%d reps)", path, len(doc.get("reps", [])))


# ------------------------------------------------------------------------------------------
# Progress across sessions (``fireorder report --athlete NAME``)

PROGRESS_SERIES = ("#4363d8", "#f58231", "#911eb4", "#469990", "#9a6324", "#000075")


def progress_colors(exercises: Sequence[str]) -> dict[str, str]:
    """One colour per exercise, the same in the report and the window's progress view."""
    return {ex: PROGRESS_SERIES[k % len(PROGRESS_SERIES)] for k, ex in enumerate(exercises)}


def trend_text(prog: Any, exercise: str) -> str:
    """The sentence under the progress plot for one exercise."""
    from devices.session.progress import MIN_TREND_SESSIONS

    n = sum(s.glute_first_pct is not None for s in prog.series(exercise))
    line = prog.trend(exercise)
    if line is None:
        return (
            f"{exercise}: {n} session(s) with a verdict; no trend line is drawn, because a "
            f"line through fewer than {MIN_TREND_SESSIONS} sessions always points somewhere."
        )
    slope = line[0]
    return (
        f"{exercise}: over {n} sessions the glute-first share changed by {slope:+.1f} "
        "percentage points a week (least-squares line; each session's share rests on the "
        "reps shown beside its point, so a few reps move it a lot)."
    )


def _noon(day: Any) -> datetime:
    """A session day on the date axis: its noon (the trend line's ends are too)."""
    return datetime(day.year, day.month, day.day, 12)


def plot_progress(prog: Any) -> Figure:
    """Glute-first % per session over dates (n reps at each point, trend line from 3
    sessions) above the median lag per session with the neutral band."""
    import matplotlib.dates as mdates

    fig = _figure(9.0, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    colors = progress_colors(prog.exercises)
    tol = float(prog.tolerance_ms)
    bottom.axhspan(
        -tol, tol, color=VERDICT_COLOR[SIMULTANEOUS], alpha=0.18, lw=0, label=f"neutral ±{tol:g} ms"
    )
    bottom.axhline(0, color="#999999", lw=0.8)
    lags_all: list[float] = []
    for k, ex in enumerate(prog.exercises):
        pts = prog.series(ex)
        col = colors[ex]
        days = [_noon(s.day) for s in pts if s.glute_first_pct is not None]
        pcts = [s.glute_first_pct for s in pts if s.glute_first_pct is not None]
        # sessions are joined only from 3 on: a line between two reads as a trend
        joined = len(days) >= MIN_TREND_PARTS
        if joined:
            top.plot(days, pcts, color=col, lw=1.0, alpha=0.5)
        top.scatter(days, pcts, color=col, s=36, zorder=3, label=ex, edgecolor="white")
        for s in pts:
            if s.glute_first_pct is not None:
                top.annotate(
                    f"n={s.decided}",
                    (_noon(s.day), s.glute_first_pct),
                    xytext=(0, 7 if k % 2 == 0 else -12),  # series alternate above/below
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                    color=col,
                )
        seg = prog.trend_segment(ex)
        if seg is not None:
            top.plot(
                [t.replace(tzinfo=None) for t, _ in seg],  # noon of the days, as the points
                [y for _, y in seg],
                color=col,
                lw=1.2,
                ls="--",
                label=f"{ex} trend",
            )
        ldays = [_noon(s.day) for s in pts if s.median_lag_ms is not None]
        lags = [float(s.median_lag_ms) for s in pts if s.median_lag_ms is not None]
        lags_all += lags
        if len(ldays) >= MIN_TREND_PARTS:
            bottom.plot(ldays, lags, color=col, lw=1.0, alpha=0.5)
        bottom.scatter(ldays, lags, color=col, s=36, zorder=3, edgecolor="white")
    for ax in (top, bottom):
        _style(ax)
    top.set_ylim(-5, 112)
    top.set_ylabel("glute first (% of reps\nwith a verdict)")
    lim = _lag_limit(lags_all, tol)
    bottom.set_ylim(-lim, lim)
    bottom.set_ylabel("median lag (ms)\n+ = glute first")
    bottom.text(0.005, 0.98, "↑ glute first", transform=bottom.transAxes, va="top", fontsize=8)
    bottom.text(0.005, 0.02, "↓ lumbar first", transform=bottom.transAxes, va="bottom", fontsize=8)
    days = sorted({s.day for s in prog.sessions})
    if days:
        pad = timedelta(days=max(1, (days[-1] - days[0]).days // 20 + 1))
        bottom.set_xlim(_noon(days[0]) - pad, _noon(days[-1]) + pad)
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    bottom.set_xlabel("session date")
    handles, labels = top.get_legend_handles_labels()
    h2, l2 = bottom.get_legend_handles_labels()
    fig.legend(
        handles + h2,
        labels + l2,
        loc="outside upper center",
        fontsize=8,
        ncols=min(6, len(labels) + len(l2)),
        frameon=False,
    )
    return fig


def build_progress_report(prog: Any, *, title: str | None = None) -> str:
    """One athlete's progress as one self-contained HTML string."""
    title = title or f"Progress — {prog.athlete}"
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    days = [s.day for s in prog.sessions]
    meta = [
        ["Athlete", _e(prog.athlete)],
        ["Recordings folder", _e(str(prog.folder))],
        ["Sessions", _e(f"{len(set(days))} day(s), {days[0]} to {days[-1]}" if days else "none")],
        ["Exercises", _e(", ".join(prog.exercises) or "—")],
        ["Neutral zone", _e(f"±{prog.tolerance_ms:g} ms (a lag inside it is simultaneous)")],
    ]
    rows = []
    for s in prog.sessions:
        rows.append(
            [
                _e(s.day.isoformat()),
                _e(s.exercise),
                _e(", ".join(s.sessions) or "—"),
                str(s.reps),
                _e(f"{s.glute_first} of {s.decided}"),
                "—" if s.glute_first_pct is None else _e(f"{s.glute_first_pct:.0f} %"),
                _e(_lag_text(s.median_lag_ms)),
                str(s.corrected) if s.corrected else "",
                _e(", ".join(p.name for p in s.files)),
            ]
        )
    head = [
        "date",
        "exercise",
        "session",
        "reps",
        "glute first",
        "%",
        "median lag",
        "corrected",
        "recordings",
    ]
    body = [
        f"<header><h1>{_e(title)}</h1>",
        '<p class="sub">Glute-vs-lumbar firing order across sessions (surface EMG). '
        f"Report made {_e(stamp)} with fireorder {_e(_version())}.</p>",
        _table([], meta, "meta"),
        "</header>",
        '<section id="progress"><h2>Progress</h2>',
        "<p>Each point is one session day of one exercise (its recordings pooled), from the "
        "reviewed reps: corrections made in review count. The number at a point is the reps "
        "with a verdict behind it. Below: the median lag of each session, with the neutral "
        "zone shaded.</p>",
        _img(_png(plot_progress(prog)), "progress over sessions"),
        "".join(f'<p class="trend">{_e(trend_text(prog, ex))}</p>' for ex in prog.exercises),
        "</section>",
        '<section id="sessions"><h2>Sessions</h2>',
        _table(head, rows, "progress"),
        "</section>",
    ]
    if prog.skipped:
        items = "".join(f"<li>{_e(p.name)}: {_e(why)}</li>" for p, why in prog.skipped)
        body += ['<section id="skipped"><h2>Not counted</h2>', f"<ul>{items}</ul>", "</section>"]
    body += [
        '<section id="interpretation"><h2>How to read this report</h2>',
        f"<p>{_e(INTERPRETATION)}</p>",
        "</section>",
        f"<footer>fireorder {_e(_version())} · {_e(stamp)}</footer>",
    ]
    return _html_page(title, body)


def write_progress_report(prog: Any, path: PathLike, *, title: str | None = None) -> None:
    """Write :func:`build_progress_report` to ``path``."""
    text = build_progress_report(prog, title=title)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    log.info("wrote progress report %s (%d sessions)", path, len(prog.sessions))
