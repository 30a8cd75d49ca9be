"""``fireorder simulate``: write simulated sEMG to a CSV (and its ground truth to JSON)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli import CliError
from app.commands.common import atomic_outputs, bounded, check_writable, sampling_rate
from devices.simulation.presets import PRESETS

if TYPE_CHECKING:
    from devices.simulation.model import SimConfig

log = logging.getLogger(__name__)

MAX_DURATION_S = 24 * 3600.0
DEFAULT_DROPOUT_RATE = 2.0  # per minute, when --dropouts is given without a rate

# argparse destination -> SimConfig field, for options that map one to one
_FIELDS = {
    "fs": "fs",
    "seed": "seed",
    "snr": "snr_db",
    "noise_uv": "noise_uv",
    "lead_off": "lead_off",
    "hum": "hum_hz",
    "hum_uv": "hum_uv",
    "counter": "counter",
    "glute_first": "p_glute_first",
    "lumbar_first": "p_lumbar_first",
    "glute_lag": "glute_first_ms",
    "lumbar_lag": "lumbar_first_ms",
    "simultaneous_ms": "simultaneous_ms",
    "side_jitter": "side_jitter_ms",
    "rep_period": "rep_period_s",
    "rep_jitter": "rep_period_jitter_s",
    "burst": "burst_s",
    "rise": "rise_ms",
    "decay": "decay_ms",
    "continuous": "continuous",
    "tonic": "tonic",
    "ecg": "ecg_rel",
    "transients": "transient_rate_per_min",
    "wander": "wander_uv",
    "dropout_rate": "dropout_rate_per_min",
    "dropout_ms": "dropout_ms",
    "rail": "rail_uv",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="write simulated sEMG (CSV) and its ground truth (JSON)",
        description="Simulate glute/lumbar sEMG with known onsets; every option overrides "
        "the preset (or the defaults).",
    )
    p.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--fs", type=sampling_rate, help="sampling rate in Hz, >= 500 (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="CSV to write")
    p.add_argument("--truth", metavar="FILE.json", help="also write the ground truth here")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="start from a named preset: clean, hard, ideal, or a clean recording with one "
        "fault for the signal check: hum, lead_off, clipping, ecg, noisy",
    )
    p.add_argument(
        "--channels",
        help="comma-separated: roles glute_l,glute_r,lumbar_l,lumbar_r and/or extra names "
        "(e.g. hamstring_l), which fire with the glutes but carry no role",
    )
    p.add_argument(
        "--counter",
        action="store_true",
        default=None,
        help="add a 'counter' channel holding the sample index",
    )

    g = p.add_argument_group("firing order")
    g.add_argument("--glute-first", type=float, metavar="P", help="probability (default 0.7)")
    g.add_argument("--lumbar-first", type=float, metavar="P", help="probability (default 0.15)")
    g.add_argument(
        "--glute-lag",
        type=bounded(0.0, 2000.0, " ms"),
        nargs=2,
        metavar=("LO", "HI"),
        help="glute-first lag range in ms (default 40 150)",
    )
    g.add_argument(
        "--lumbar-lag",
        type=bounded(0.0, 2000.0, " ms"),
        nargs=2,
        metavar=("LO", "HI"),
        help="lumbar-first lag magnitude range in ms (default 40 150)",
    )
    g.add_argument(
        "--simultaneous-ms",
        type=bounded(0.0, 1000.0, " ms"),
        metavar="MS",
        help="simultaneous reps have |lag| below this (default 10)",
    )
    g.add_argument(
        "--side-jitter",
        type=bounded(0.0, 1000.0, " ms"),
        metavar="MS",
        help="SD of the left/right onset jitter (default 8)",
    )

    g = p.add_argument_group("reps")
    g.add_argument(
        "--rep-period",
        type=bounded(0.1, 3600.0, " s"),
        metavar="S",
        help="rep period (default 3)",
    )
    g.add_argument(
        "--rep-jitter",
        type=bounded(0.0, 3600.0, " s"),
        metavar="S",
        help="+- period jitter (default 0.3)",
    )
    g.add_argument("--burst", type=float, metavar="S", help="burst duration (default 1)")
    g.add_argument(
        "--rise",
        type=bounded(1.0, 10_000.0, " ms"),
        nargs=2,
        metavar=("LO", "HI"),
        help="activation rise time range in ms (default 20 100)",
    )
    g.add_argument(
        "--decay",
        type=bounded(1.0, 10_000.0, " ms"),
        nargs=2,
        metavar=("LO", "HI"),
        help="activation decay time range in ms (default 60 200)",
    )
    g.add_argument("--continuous", action="store_true", default=None, help="no rest between reps")
    g.add_argument(
        "--tonic",
        type=float,
        metavar="FRAC",
        help="activity between reps as a fraction of the plateau (default 0)",
    )

    g = p.add_argument_group("noise and artefacts")
    g.add_argument(
        "--snr",
        type=bounded(-40.0, 100.0, " dB"),
        nargs=2,
        metavar=("LO", "HI"),
        help="per-channel SNR range in dB (default 14 26; replaces a preset's --noise-uv)",
    )
    g.add_argument(
        "--noise-uv",
        type=bounded(0.0, 10_000.0, " µV"),
        nargs=2,
        metavar=("LO", "HI"),
        help="per-channel rest noise floor range in µV RMS, instead of --snr (clean: 2.5 4)",
    )
    g.add_argument(
        "--hum",
        type=float,
        choices=[0.0, 50.0, 60.0],
        help="mains hum frequency, 0 = off (default 50)",
    )
    g.add_argument(
        "--hum-uv",
        type=bounded(0.0, 100_000.0, " µV"),
        metavar="UV",
        help="hum amplitude in µV (default 3)",
    )
    g.add_argument(
        "--wander",
        type=bounded(0.0, 100_000.0, " µV"),
        metavar="UV",
        help="baseline wander RMS in µV (default 15)",
    )
    g.add_argument(
        "--ecg",
        type=bounded(0.0, 100.0),
        metavar="REL",
        help="ECG R-wave on lumbar channels / plateau RMS; >= 3.5 is strong (default 1)",
    )
    g.add_argument(
        "--transients",
        type=bounded(0.0, 600.0, " per minute"),
        metavar="PER_MIN",
        help="motion transients per minute (default 0.5)",
    )
    g.add_argument(
        "--dropouts",
        action="store_true",
        help=f"lose runs of samples ({DEFAULT_DROPOUT_RATE:g}/min unless --dropout-rate)",
    )
    g.add_argument(
        "--dropout-rate",
        type=bounded(0.0, 600.0, " per minute"),
        metavar="PER_MIN",
        help="dropouts per minute",
    )
    g.add_argument(
        "--dropout-ms",
        type=bounded(0.0, 10_000.0, " ms"),
        nargs=2,
        metavar=("LO", "HI"),
        help="dropout length range in ms (default 5 80)",
    )
    g.add_argument(
        "--rail",
        type=bounded(0.0, 1e6, " µV", low_open=True),
        metavar="UV",
        help="clip (saturate) at ±UV µV",
    )
    g.add_argument(
        "--lead-off",
        metavar="NAMES",
        help="comma-separated channels whose electrode is off (they read a flat 0 µV)",
    )
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The :class:`~devices.simulation.model.SimConfig` described by the command line."""
    from devices.simulation.model import SimConfig, SimConfigError, preset

    changes: dict[str, Any] = {}
    for dest, name in _FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None:
            changes[name] = tuple(value) if isinstance(value, list) else value
    if isinstance(changes.get("lead_off"), str):
        changes["lead_off"] = tuple(c.strip() for c in changes["lead_off"].split(",") if c.strip())
    if "snr_db" in changes and "noise_uv" not in changes:
        changes["noise_uv"] = None  # an explicit SNR replaces a preset's floor in µV
    if args.channels is not None:
        changes["channels"] = tuple(c.strip() for c in args.channels.split(",") if c.strip())
    if args.dropouts and args.dropout_rate is None:
        changes["dropout_rate_per_min"] = DEFAULT_DROPOUT_RATE
    try:
        base = preset(args.preset) if args.preset else SimConfig()
        _fit_probabilities(base, changes)
        return base.replace(**changes)
    except SimConfigError as exc:
        raise CliError(_option_names(str(exc))) from None


def _fit_probabilities(base: SimConfig, changes: dict[str, Any]) -> None:
    """With only one of --glute-first/--lumbar-first given, shrink the other to fit in 1."""
    pair = ("p_glute_first", "p_lumbar_first")
    given = [name for name in pair if name in changes]
    if len(given) == 1:
        (other,) = set(pair) - set(given)
        p = float(changes[given[0]])
        if 0 <= p <= 1:  # out-of-range values are reported by the config
            changes[other] = min(getattr(base, other), 1.0 - p)


def _option_names(message: str) -> str:
    """Say ``--snr`` where the simulator says ``snr_db``: the user typed options."""
    for dest, name in _FIELDS.items():
        if name not in ("counter", "continuous", "fs"):
            message = re.sub(rf"\b{name}\b", "--" + dest.replace("_", "-"), message)
    return message


def run(args: argparse.Namespace) -> int:
    if not 0 < args.duration <= MAX_DURATION_S:
        raise CliError(
            f"--duration must be within (0, {MAX_DURATION_S:g}] s, got {args.duration:g}"
        )
    config = config_from_args(args)
    out = Path(args.out)
    truth_path = Path(args.truth) if args.truth else None
    check_writable(out, "--out")
    if truth_path is not None:
        check_writable(truth_path, "--truth")
        if truth_path.resolve() == out.resolve():
            raise CliError("--out and --truth must be different files")
    log.info("simulating %.1f s at %g Hz: %s", args.duration, config.fs, config.channel_names)
    try:
        from devices.simulation.model import stream_to_csv, write_truth

        with atomic_outputs(out, truth_path) as (out_tmp, truth_tmp):
            assert out_tmp is not None
            truth = stream_to_csv(out_tmp, config, args.duration)
            if truth_tmp is not None:
                write_truth(truth_tmp, truth)
    except OSError as exc:
        raise CliError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    lost = sum(n for _, n in truth.dropouts)
    sys.stdout.write(
        f"wrote {out}: {truth.n_samples - lost} rows x {len(truth.channels)} channels "
        f"at {config.fs:g} Hz, {len(truth.complete_reps)} complete reps"
        + (f", {len(truth.dropouts)} dropouts ({lost} samples)" if truth.dropouts else "")
        + (f"; truth in {truth_path}" if truth_path is not None else "")
        + "\n"
    )
    return 0
