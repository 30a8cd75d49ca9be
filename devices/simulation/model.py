"""Built-in surface-EMG simulator with ground truth.

It produces physiologically plausible sEMG so that the app, the tests and the benchmarks run
without hardware, and it records the true onsets so that consumers can be checked.

Signal model, per EMG channel (microvolts)::

    x = carrier * activation * plateau_rms   # band-limited stochastic EMG
      + noise floor (Gaussian, flat over the amplifier band, RMS set by the channel's SNR)
      + mains hum (fundamental + a little 3rd harmonic) + baseline wander (< 2 Hz)
      + ECG (lumbar channels only) + motion transients
    then clipped at +-rail (saturation); a run of samples may be lost (dropout).

* The carrier is white Gaussian noise shaped by the classic sEMG spectrum of Shwedyk et al.
  ``|H(f)|^2 ~ f^2 / ((f^2 + fl^2) (f^2 + fh^2)^2)`` (``fl``, ``fh`` drawn per channel), which
  peaks at 70-100 Hz (median 95-135 Hz) with ~98 % of its power in 20-450 Hz. It has unit variance.
* The activation of a muscle in a rep rises from rest with a raised cosine (20-100 ms), holds
  a plateau with a slow +-10 % amplitude fluctuation and decays with a raised cosine. Between
  reps it sits at ``tonic`` (fraction of the plateau, default 0).
* The noise floor is white Gaussian noise band-limited to a typical sEMG amplifier band,
  10-500 Hz (4th-order Butterworth; the top edge at most 0.45 fs).
* SNR (dB) = 20 log10(plateau RMS / noise-floor RMS), drawn per channel from ``snr_db``, or
  the floor RMS drawn directly from ``noise_uv`` (what skin preparation sets). Hum,
  wander, ECG and transients are artefacts on top and do not enter the SNR.

Truth: the onset of a muscle in a rep is the time (s from sample 0) at which its activation
starts rising from rest, the offset the time it is back at rest. The first sample that
reflects an event is ``floor(t * fs) + 1`` (used for :class:`~dsp.contract.Marker` indices).

Streaming and reproducibility: :class:`EmgSimulator` produces fixed blocks of samples, every
random component from its own seeded stream (and the rep, ECG, transient and dropout
schedules drawn lazily, in time order, from their own streams), so the output for a seed is
bit-identical however ``generate`` calls split it. Rep timing is drawn in seconds, so the
truth for a seed is the same at any sampling rate. ``generate`` returns every sample;
dropouts are applied by the consumers of the stream
(:class:`~devices.drivers.simulator.SimulatorDevice`, :func:`simulate`, :func:`stream_to_csv`).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from dsp import filters
from dsp.contract import Marker, Role, StreamInfo

log = logging.getLogger(__name__)

TRUTH_SCHEMA = "fireorder.truth/1"
COUNTER = "counter"
#: samples produced per internal block (the unit of work; any generate() split is served
#: from it, which is what makes the output independent of the split).
BLOCK = 4096
MAX_CHANNELS = 16
ORDER_THRESHOLD_MS = 20.0
#: after a rest request ends, the next rep starts this much later (a reaction to "go": a
#: verbal cue takes a few hundred ms to turn into movement)
RESUME_S = 0.5

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_ROLE_GROUP: dict[Role, str] = {
    Role.GLUTE_L: "glute",
    Role.GLUTE_R: "glute",
    Role.LUMBAR_L: "lumbar",
    Role.LUMBAR_R: "lumbar",
}

FloatArray = NDArray[np.float64]


class SimConfigError(ValueError):
    """An invalid simulator setting (one clear line)."""


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimConfig:
    """All knobs of the simulator. Ranges are ``(low, high)`` drawn uniformly."""

    fs: float = 2000.0
    #: EMG channels in order: roles (glute_l, glute_r, lumbar_l, lumbar_r) and/or role-less
    #: extra channels (e.g. "hamstring_l"), which fire with the glutes but carry no role.
    channels: tuple[str, ...] = ("glute_l", "glute_r", "lumbar_l", "lumbar_r")
    #: append a "counter" channel whose value is the sample index (for loss tests)
    counter: bool = False
    #: None draws fresh entropy (recorded in the truth, so the run can be repeated)
    seed: int | None = 0

    # --- rep structure
    lead_in_s: float = 1.0
    rep_period_s: float = 3.0
    rep_period_jitter_s: float = 0.3
    #: earliest onset to the start of the decay
    burst_s: float = 1.0
    burst_jitter_s: float = 0.15
    #: no rest between reps: the next rep starts a short gap after the previous one ends
    continuous: bool = False
    continuous_gap_s: tuple[float, float] = (0.05, 0.2)
    min_rest_s: float = 0.3
    #: activation between reps, as a fraction of the plateau (0 = silent)
    tonic: float = 0.0
    rise_ms: tuple[float, float] = (20.0, 100.0)
    decay_ms: tuple[float, float] = (60.0, 200.0)
    #: spread of the decay start between muscles of one rep
    end_jitter_ms: float = 30.0
    #: RMS of the slow plateau amplitude fluctuation (relative)
    plateau_fluct: float = 0.1

    # --- firing order (the rest of the probability is "simultaneous")
    p_glute_first: float = 0.7
    p_lumbar_first: float = 0.15
    glute_first_ms: tuple[float, float] = (40.0, 150.0)
    #: magnitudes; lumbar-first lags are negative
    lumbar_first_ms: tuple[float, float] = (40.0, 150.0)
    #: simultaneous reps have |lag| below this
    simultaneous_ms: float = 10.0
    #: SD of each side's onset jitter within a muscle group (the earliest side defines the
    #: group onset, so the drawn glute-vs-lumbar lag is exact)
    side_jitter_ms: float = 8.0

    # --- amplitudes (plateau RMS, microvolts)
    glute_uv: float = 100.0
    lumbar_uv: float = 60.0
    extra_uv: float = 50.0
    #: log-normal SD of the fixed per-channel gain (electrode placement, skin, fat)
    channel_spread: float = 0.25
    #: log-normal SD of the per-rep, per-muscle amplitude
    rep_amp_sd: float = 0.1

    # --- noise and artefacts
    #: per-channel SNR range in dB; None = no noise floor (unless ``noise_uv`` is set)
    snr_db: tuple[float, float] | None = (14.0, 26.0)
    #: per-channel rest noise floor RMS range in microvolts (amplifier band). When set it
    #: replaces the SNR-derived floor: electrode-skin noise depends on the skin preparation,
    #: not on how strongly the muscle contracts, so a "good preparation" preset states it in uV.
    noise_uv: tuple[float, float] | None = None
    #: mains frequency (0 = no hum) and amplitude of its fundamental
    hum_hz: float = 50.0
    hum_uv: float = 3.0
    #: 3rd-harmonic amplitude relative to the fundamental
    hum_third: float = 0.3
    #: RMS of the slow baseline wander (sinusoids at 0.05-0.8 Hz)
    wander_uv: float = 15.0
    #: ECG R-wave amplitude on lumbar channels relative to the channel's plateau RMS
    #: (EMG peaks are ~3.5x RMS, so >= 3.5 is "strong": as large as the EMG peaks)
    ecg_rel: float = 1.0
    heart_rate_bpm: tuple[float, float] = (60.0, 100.0)
    #: motion transients (spikes and decaying steps) per minute, and their typical peak
    transient_rate_per_min: float = 0.5
    transient_uv: float = 300.0
    #: runs of lost samples per minute and their duration range
    dropout_rate_per_min: float = 0.0
    dropout_ms: tuple[float, float] = (5.0, 80.0)
    #: amplifier rail: samples are clipped at +-rail_uv (None = no saturation)
    rail_uv: float | None = None
    #: channels whose electrode is off: they read exactly 0 uV (a front end with lead-off
    #: detection blanks the channel; a DC-blocked open input settles to its offset)
    lead_off: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # from JSON
                object.__setattr__(self, f.name, tuple(value))
        if isinstance(self.channels, str):
            object.__setattr__(self, "channels", _split_names(self.channels))
        if isinstance(self.lead_off, str):
            object.__setattr__(self, "lead_off", _split_names(self.lead_off))
        _validate(self)

    @property
    def p_simultaneous(self) -> float:
        return max(0.0, 1.0 - self.p_glute_first - self.p_lumbar_first)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return self.channels + ((COUNTER,) if self.counter else ())

    def replace(self, **changes: Any) -> SimConfig:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SimConfigError(f"unknown simulator setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        return cls().replace(**dict(data))


def _split_names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _check_range(name: str, rng: Sequence[float], low: float = 0.0) -> None:
    if len(rng) != 2:
        raise SimConfigError(f"{name} needs two values (low, high), got {list(rng)}")
    lo, hi = float(rng[0]), float(rng[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise SimConfigError(f"{name} must be finite, got {list(rng)}")
    if lo < low or hi < lo:
        raise SimConfigError(f"{name} must satisfy {low:g} <= low <= high, got {lo:g}, {hi:g}")


def _check_nonneg(cfg: SimConfig, *names: str) -> None:
    for name in names:
        value = float(getattr(cfg, name))
        if not math.isfinite(value) or value < 0:
            raise SimConfigError(f"{name} must be a finite number >= 0, got {value:g}")


def _validate(cfg: SimConfig) -> None:
    if not math.isfinite(cfg.fs) or cfg.fs < 500:
        raise SimConfigError(f"sampling rate must be >= 500 Hz, got {cfg.fs:g}")
    names = cfg.channels
    if not names:
        raise SimConfigError("need at least one channel")
    for name in names:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise SimConfigError(f"bad channel name {name!r} (letters, digits, _ . -)")
        if name == COUNTER:
            raise SimConfigError("channel name 'counter' is reserved for the sample counter")
    if len(set(names)) != len(names):
        raise SimConfigError(f"duplicate channel names: {list(names)}")
    if len(cfg.channel_names) > MAX_CHANNELS:
        raise SimConfigError(f"at most {MAX_CHANNELS} channels, got {len(cfg.channel_names)}")
    if cfg.seed is not None and (not isinstance(cfg.seed, int | np.integer) or cfg.seed < 0):
        raise SimConfigError(f"seed must be a non-negative integer, got {cfg.seed!r}")
    _check_nonneg(
        cfg,
        "lead_in_s",
        "rep_period_jitter_s",
        "burst_jitter_s",
        "min_rest_s",
        "end_jitter_ms",
        "plateau_fluct",
        "simultaneous_ms",
        "side_jitter_ms",
        "channel_spread",
        "rep_amp_sd",
        "hum_hz",
        "hum_uv",
        "hum_third",
        "wander_uv",
        "ecg_rel",
        "transient_rate_per_min",
        "transient_uv",
        "dropout_rate_per_min",
    )
    if cfg.rep_period_s <= 0 or not math.isfinite(cfg.rep_period_s):
        raise SimConfigError(f"rep period must be > 0 s, got {cfg.rep_period_s:g}")
    if not 0.1 <= cfg.burst_s <= 60:
        raise SimConfigError(f"burst duration must be within 0.1-60 s, got {cfg.burst_s:g}")
    if cfg.burst_jitter_s >= cfg.burst_s:
        raise SimConfigError("burst jitter must be smaller than the burst duration")
    if not 0 <= cfg.tonic < 0.5:
        raise SimConfigError(f"tonic level must be within [0, 0.5), got {cfg.tonic:g}")
    _check_range("continuous_gap_s", cfg.continuous_gap_s)
    _check_range("rise_ms", cfg.rise_ms, low=1.0)
    _check_range("decay_ms", cfg.decay_ms, low=1.0)
    _check_range("glute_first_ms", cfg.glute_first_ms)
    _check_range("lumbar_first_ms", cfg.lumbar_first_ms)
    _check_range("heart_rate_bpm", cfg.heart_rate_bpm, low=20.0)
    _check_range("dropout_ms", cfg.dropout_ms)
    for name in ("p_glute_first", "p_lumbar_first"):
        p = float(getattr(cfg, name))
        if not 0 <= p <= 1:
            raise SimConfigError(f"{name} must be a probability in [0, 1], got {p:g}")
    if cfg.p_glute_first + cfg.p_lumbar_first > 1 + 1e-9:
        raise SimConfigError("glute-first + lumbar-first probabilities exceed 1")
    if cfg.snr_db is not None:
        _check_range("snr_db", cfg.snr_db, low=-40.0)
    if cfg.noise_uv is not None:
        _check_range("noise_uv", cfg.noise_uv)
    unknown = [name for name in cfg.lead_off if name not in names]
    if unknown:
        raise SimConfigError(f"lead_off names unknown channel(s): {', '.join(map(str, unknown))}")
    if cfg.hum_hz >= cfg.fs / 2:
        raise SimConfigError(f"hum at {cfg.hum_hz:g} Hz is above Nyquist")
    if cfg.rail_uv is not None and not cfg.rail_uv > 0:
        raise SimConfigError(f"rail must be > 0 µV, got {cfg.rail_uv:g}")


from devices.simulation.presets import PRESETS  # noqa: E402  (light module: the CLI lists them)


def preset(name: str, **overrides: Any) -> SimConfig:
    """A named preset with optional overrides, e.g. ``preset("hard", fs=1000, seed=3)``."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise SimConfigError(
            f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})"
        ) from None
    return SimConfig().replace(**{**base, **overrides})


# --------------------------------------------------------------------------------------
# Truth
# --------------------------------------------------------------------------------------


def sample_after(t_s: float, fs: float) -> int:
    """First sample index whose value reflects an event at time ``t_s``."""
    return math.floor(t_s * fs) + 1


def order_label(lag_ms: float) -> str:
    if lag_ms >= ORDER_THRESHOLD_MS:
        return "glute_first"
    if lag_ms <= -ORDER_THRESHOLD_MS:
        return "lumbar_first"
    return "simultaneous"


@dataclass(frozen=True)
class RepTruth:
    """Ground truth of one rep. Times are seconds from sample 0; lags in ms (+ = glute first)."""

    index: int
    onsets: dict[Role, float]
    offsets: dict[Role, float]
    rise_ms: dict[Role, float]
    extra_onsets: dict[str, float]
    extra_offsets: dict[str, float]
    lag_ms: float | None
    order: str | None
    side_lags_ms: dict[str, float]
    complete: bool

    @property
    def start_s(self) -> float:
        return min([*self.onsets.values(), *self.extra_onsets.values()])

    @property
    def end_s(self) -> float:
        return max([*self.offsets.values(), *self.extra_offsets.values()])

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "onsets": {r.value: t for r, t in self.onsets.items()},
            "offsets": {r.value: t for r, t in self.offsets.items()},
            "rise_ms": {r.value: v for r, v in self.rise_ms.items()},
            "extra_onsets": dict(self.extra_onsets),
            "extra_offsets": dict(self.extra_offsets),
            "lag_ms": self.lag_ms,
            "order": self.order,
            "side_lags_ms": dict(self.side_lags_ms),
            "complete": self.complete,
        }


@dataclass(frozen=True)
class Truth:
    """Everything the simulator knows about the first ``n_samples`` of a stream."""

    fs: float
    channels: tuple[str, ...]
    roles: dict[Role, int]
    config: SimConfig
    n_samples: int
    reps: tuple[RepTruth, ...]
    #: (start index, length) of each run of lost samples
    dropouts: tuple[tuple[int, int], ...]
    #: (channel name, start index, length) of each run of clipped samples
    saturation: tuple[tuple[str, int, int], ...]
    transients: tuple[dict[str, Any], ...] = ()
    channel_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    heart_rate_bpm: float = 0.0

    @property
    def complete_reps(self) -> tuple[RepTruth, ...]:
        return tuple(r for r in self.reps if r.complete)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": TRUTH_SCHEMA,
            "fs": self.fs,
            "channels": list(self.channels),
            "roles": {r.value: self.channels[i] for r, i in self.roles.items()},
            "config": self.config.to_dict(),
            "n_samples": self.n_samples,
            "duration_s": self.n_samples / self.fs,
            "heart_rate_bpm": self.heart_rate_bpm,
            "channel_params": self.channel_params,
            "reps": [r.to_dict() for r in self.reps],
            "dropouts": [{"start": s, "length": n} for s, n in self.dropouts],
            "saturation": [{"channel": c, "start": s, "length": n} for c, s, n in self.saturation],
            "transients": list(self.transients),
        }


# --------------------------------------------------------------------------------------
# Internal schedule objects
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Burst:
    channel: int
    onset: float
    rise: float
    decay_start: float
    decay: float
    amp: float
    fluct_f: tuple[float, float]
    fluct_ph: tuple[float, float]

    @property
    def offset(self) -> float:
        return self.decay_start + self.decay


@dataclass(slots=True)
class _Rep:
    index: int
    start: float
    end: float
    bursts: list[_Burst]


@dataclass(slots=True)
class _Event:
    """Something spanning samples [start, stop) (ECG beat, transient, dropout)."""

    start: int
    stop: int
    kind: str = ""
    width: float = 0.0
    amp: float = 0.0
    weights: FloatArray | None = None


#: how far back the simulator keeps its reps (and so its truth) in a long session
TRUTH_HORIZON_S = 3600.0


class _Timeline:
    """Events drawn lazily in time order from a private random stream.

    ``draw(t)`` returns the event at time ``t`` and the time of the next one, so the list of
    events does not depend on how far ahead anyone looked.
    """

    def __init__(
        self,
        first_t: float,
        draw: Callable[[float], tuple[Any, float]],
        *,
        keep_past: bool = True,
    ) -> None:
        self.events: list[Any] = []
        self._next_t = first_t
        self._draw = draw
        self._live = 0  # events before this index have ended (for block scans)
        # Events nothing looks back at (heartbeats: not in the truth) are dropped once past,
        # so a simulated session of hours does not grow by its beats.
        self._keep_past = keep_past

    def extend_to(self, t_s: float) -> None:
        while self._next_t <= t_s:
            event, self._next_t = self._draw(self._next_t)
            self.events.append(event)

    def overlapping(self, i0: int, i1: int) -> Iterable[_Event]:
        """Events (with ``start``/``stop``) that intersect samples [i0, i1)."""
        events = self.events
        while self._live < len(events) and events[self._live].stop <= i0:
            self._live += 1
        if not self._keep_past and self._live >= 256:
            del events[: self._live]
            self._live = 0
        for ev in events[self._live :]:
            if ev.start >= i1:
                break
            if ev.stop > i0:
                yield ev


@dataclass(frozen=True)
class _Channel:
    name: str
    kind: str  # "glute", "lumbar" or "extra"
    role: Role | None
    side: str | None
    plateau_uv: float
    snr_db: float | None
    noise_uv: float
    ecg_uv: float
    fl: float
    fh: float


def _side_of(name: str) -> str | None:
    low = name.lower()
    if low.endswith(("_l", "-l", ".l", "_left")):
        return "left"
    if low.endswith(("_r", "-r", ".r", "_right")):
        return "right"
    return None


def _shaping_sos(fl: float, fh: float, fs: float) -> tuple[FloatArray, float]:
    """Shwedyk sEMG spectrum as a digital filter, and the gain giving unit output variance."""
    # pre-warp so the digital poles sit at fl/fh at any sampling rate
    wl = 2 * fs * math.tan(math.pi * fl / fs)
    wh = 2 * fs * math.tan(math.pi * fh / fs)
    z, p, k = filters.bilinear_zpk([0.0], [-wl, -wh, -wh], wh * wh, fs)
    sos = filters.zpk2sos(z, p, k)
    impulse = np.zeros(max(256, int(0.25 * fs)))
    impulse[0] = 1.0
    h = filters.sosfilt(sos, impulse)
    return sos, 1.0 / math.sqrt(float(np.sum(h * h)))


def _ecg_template(fs: float) -> tuple[FloatArray, int]:
    """One PQRST complex (sum of Gaussians, R = 1) and the index of the R peak."""
    pre, post = 0.30, 0.45
    t = np.arange(-round(pre * fs), round(post * fs)) / fs
    waves = (  # amplitude, centre (s), width (s)
        (0.12, -0.18, 0.025),  # P
        (-0.12, -0.025, 0.008),  # Q
        (1.0, 0.0, 0.009),  # R
        (-0.30, 0.025, 0.009),  # S
        (0.25, 0.28, 0.045),  # T
    )
    tmpl = sum(a * np.exp(-0.5 * ((t - c) / w) ** 2) for a, c, w in waves)
    tmpl = np.asarray(tmpl, dtype=np.float64)
    return tmpl / float(np.max(tmpl)), round(pre * fs)


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------


class EmgSimulator:
    """Streaming sEMG generator. ``generate(n)`` continues where the last call stopped."""

    def __init__(self, config: SimConfig | None = None) -> None:
        cfg = config or SimConfig()
        if cfg.seed is None:
            cfg = cfg.replace(seed=int(np.random.SeedSequence().entropy))  # type: ignore[arg-type]
        self.config = cfg
        self.fs = float(cfg.fs)
        seeds = np.random.SeedSequence(cfg.seed).spawn(7)
        rngs = [np.random.default_rng(s) for s in seeds]
        (static, self._rng_reps, self._rng_carrier, self._rng_noise) = rngs[:4]
        (self._rng_ecg, self._rng_trans, self._rng_drop) = rngs[4:]

        self._n_emg = len(cfg.channels)
        self._channels = self._draw_channels(static)
        self._roles = {ch.role: i for i, ch in enumerate(self._channels) if ch.role is not None}
        self.info = StreamInfo(
            fs=self.fs,
            channel_names=cfg.channel_names,
            roles=self._roles,
            units=("uV",) * self._n_emg + (("count",) if cfg.counter else ()),
            source="simulator",
        )
        self._plateau = np.array([c.plateau_uv for c in self._channels])
        self._noise = np.array([c.noise_uv for c in self._channels])
        self._ecg_gain = np.array([c.ecg_uv for c in self._channels])
        self._lead_off = [cfg.channels.index(name) for name in cfg.lead_off]
        self._setup_carrier()
        self._setup_periodic(static)
        self.heart_rate_bpm = float(static.uniform(*cfg.heart_rate_bpm))
        self._ecg_tmpl, self._ecg_pre = _ecg_template(self.fs)

        self._reps = _Timeline(cfg.lead_in_s + self._rng_reps.uniform(0, 0.25), self._draw_rep)
        self._rep_starts: list[float] = []
        self.truth_horizon_s = TRUTH_HORIZON_S  # how far back reps (and truth) are kept
        self._rep_count = 0  # reps drawn (their index; old ones are forgotten, see TRUTH_...)
        self._beats = _Timeline(
            self._rng_ecg.uniform(0, 60 / self.heart_rate_bpm),
            self._draw_beat,
            keep_past=False,
        )
        self._trans = _Timeline(
            self._first_poisson(self._rng_trans, cfg.transient_rate_per_min), self._draw_transient
        )
        self._drops = _Timeline(
            0.5 + self._first_poisson(self._rng_drop, cfg.dropout_rate_per_min),
            self._draw_dropout,
        )
        self._drop_starts: list[int] = []

        self._buf = np.empty((0, len(cfg.channel_names)))
        self._buf_pos = 0
        self._produced = 0  # samples produced into blocks
        self.position = 0  # samples handed out by generate()
        self._sat_open: list[int | None] = [None] * self._n_emg
        self._sat_spans: list[tuple[int, int, int]] = []
        # What the current block was made of, so that a rest request can re-render the part
        # not yet handed out (see set_rest): the unit carrier, the activation and (with a
        # rail) the signal before clipping.
        self._blk_carrier: FloatArray | None = None
        self._blk_env: FloatArray | None = None
        self._blk_unclipped: FloatArray | None = None
        self.resting = False
        self._due_after_rest = 0.0  # when the next rep was due as the rest began

    # ---------------------------------------------------------------- static parameters

    def _draw_channels(self, rng: np.random.Generator) -> list[_Channel]:
        cfg = self.config
        out = []
        for name in cfg.channels:
            try:
                role: Role | None = Role(name)
            except ValueError:
                role = None
            kind = _ROLE_GROUP[role] if role is not None else "extra"
            base = {"glute": cfg.glute_uv, "lumbar": cfg.lumbar_uv, "extra": cfg.extra_uv}[kind]
            plateau = base * math.exp(rng.normal(0, cfg.channel_spread))
            snr: float | None
            if cfg.noise_uv is not None:  # one draw either way: the other draws stay the same
                noise = float(rng.uniform(*cfg.noise_uv))
                snr = 20 * math.log10(plateau / noise) if noise > 0 else None
            elif cfg.snr_db is None:
                snr, noise = None, 0.0
            else:
                snr = float(rng.uniform(*cfg.snr_db))
                noise = plateau * 10 ** (-snr / 20)
            ecg = cfg.ecg_rel * plateau * rng.uniform(0.8, 1.2) if kind == "lumbar" else 0.0
            out.append(
                _Channel(
                    name=name,
                    kind=kind,
                    role=role,
                    side=role.side if role is not None else _side_of(name),
                    plateau_uv=plateau,
                    snr_db=snr,
                    noise_uv=noise,
                    ecg_uv=ecg,
                    fl=float(rng.uniform(70, 100)),
                    fh=float(rng.uniform(120, 170)),
                )
            )
        return out

    def _setup_carrier(self) -> None:
        self._sos: list[FloatArray] = []
        self._zi: list[FloatArray] = []
        gains = []
        warm = self._rng_carrier.standard_normal((self._n_emg, 512))
        for c, ch in enumerate(self._channels):
            sos, gain = _shaping_sos(ch.fl, ch.fh, self.fs)
            # settle the filter so the carrier is stationary from sample 0
            _, zi = filters.sosfilt(sos, warm[c], zi=np.zeros((sos.shape[0], 2)))
            self._sos.append(sos)
            self._zi.append(zi)
            gains.append(gain)
        self._carrier_gain = np.array(gains)
        # the amplifier band of the noise floor, settled like the carrier
        band = [10.0, min(500.0, 0.45 * self.fs)]
        sos = filters.butter_sos(2, band, "bandpass", self.fs)
        impulse = np.zeros(max(256, int(0.5 * self.fs)))
        impulse[0] = 1.0
        self._noise_gain = 1.0 / math.sqrt(float(np.sum(filters.sosfilt(sos, impulse) ** 2)))
        self._noise_sos = sos
        warm = self._rng_noise.standard_normal((self._n_emg, int(0.5 * self.fs)))
        _, self._noise_zi = filters.sosfilt(sos, warm, zi=np.zeros((sos.shape[0], self._n_emg, 2)))

    def _setup_periodic(self, rng: np.random.Generator) -> None:
        """Hum and wander as sinusoids: a shared basis times per-channel coefficients."""
        cfg = self.config
        freqs: list[float] = []
        coefs: list[FloatArray] = []  # rows of (sin, cos) coefficients per channel
        n = self._n_emg
        if cfg.hum_hz > 0 and cfg.hum_uv > 0:
            amp = cfg.hum_uv * rng.uniform(0.5, 1.5, n)
            harmonics = [(1, amp)]
            if 3 * cfg.hum_hz < self.fs / 2 and cfg.hum_third > 0:
                harmonics.append((3, amp * cfg.hum_third))
            for k, a in harmonics:
                ph = rng.uniform(0, 2 * np.pi, n)
                freqs.append(k * cfg.hum_hz)
                coefs += [a * np.cos(ph), a * np.sin(ph)]
        if cfg.wander_uv > 0:
            wf = np.exp(rng.uniform(math.log(0.05), math.log(0.8), 4))
            c = rng.standard_normal((2 * len(wf), n))
            c *= cfg.wander_uv / np.sqrt(0.5 * np.sum(c * c, axis=0))  # RMS = wander_uv
            freqs += list(wf)
            coefs += list(c)
        self._freqs = np.array(freqs)
        coef = np.array(coefs).reshape(len(coefs), n)
        self._coef_sin, self._coef_cos = coef[0::2].copy(), coef[1::2].copy()
        # exp(i 2 pi f k / fs) for k in one block; each block only rotates it (cheap, exact)
        self._phasor = np.exp(2j * np.pi * np.outer(np.arange(BLOCK), self._freqs) / self.fs)

    @staticmethod
    def _first_poisson(rng: np.random.Generator, rate_per_min: float) -> float:
        return float(rng.exponential(60 / rate_per_min)) if rate_per_min > 0 else math.inf

    # ---------------------------------------------------------------- lazy schedules

    def _draw_rep(self, start: float) -> tuple[_Rep, float]:
        cfg, rng = self.config, self._rng_reps
        u = rng.random()
        if u < cfg.p_glute_first:
            lag = rng.uniform(*cfg.glute_first_ms) / 1000
        elif u < cfg.p_glute_first + cfg.p_lumbar_first:
            lag = -rng.uniform(*cfg.lumbar_first_ms) / 1000
        else:
            lag = rng.uniform(-cfg.simultaneous_ms, cfg.simultaneous_ms) / 1000
        g0 = start + max(0.0, -lag)
        l0 = g0 + lag
        end_ref = start + cfg.burst_s + rng.uniform(-cfg.burst_jitter_s, cfg.burst_jitter_s)
        sj = cfg.side_jitter_ms / 1000
        onsets: dict[int, float] = {}
        for kind, base in (("glute", g0), ("lumbar", l0)):
            members = [i for i, ch in enumerate(self._channels) if ch.kind == kind]
            jit = np.clip(rng.normal(0.0, sj, len(members)), -3 * sj, 3 * sj)
            if members:
                jit -= jit.min()  # earliest side = group onset, so the drawn lag is exact
            for i, j in zip(members, jit, strict=True):
                onsets[i] = base + float(j)
        for i, ch in enumerate(self._channels):
            if ch.kind == "extra":  # fires with the glutes, a little after
                onsets[i] = g0 + min(abs(float(rng.normal(0.0, sj))), 3 * sj)
        bursts = []
        for i in sorted(onsets):
            rise = rng.uniform(*cfg.rise_ms) / 1000
            ds = end_ref + rng.uniform(-1, 1) * cfg.end_jitter_ms / 1000
            ds = max(ds, onsets[i] + rise + 0.05)  # keep a plateau
            bursts.append(
                _Burst(
                    channel=i,
                    onset=onsets[i],
                    rise=rise,
                    decay_start=ds,
                    decay=rng.uniform(*cfg.decay_ms) / 1000,
                    amp=math.exp(rng.normal(0, cfg.rep_amp_sd)),
                    fluct_f=(rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0)),
                    fluct_ph=(rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)),
                )
            )
        end = max(b.offset for b in bursts)
        # the first onset (not the draw time: with one muscle group only, they differ)
        first = min(b.onset for b in bursts)
        rep = _Rep(index=self._rep_count, start=first, end=end, bursts=bursts)
        self._rep_count += 1
        self._rep_starts.append(first)
        if cfg.continuous:
            nxt = end + rng.uniform(*cfg.continuous_gap_s)
        else:
            j = cfg.rep_period_jitter_s
            nxt = max(start + cfg.rep_period_s + rng.uniform(-j, j), end + cfg.min_rest_s)
        return rep, nxt

    def _draw_beat(self, t: float) -> tuple[_Event, float]:
        r = round(t * self.fs)
        ev = _Event(start=r - self._ecg_pre, stop=r - self._ecg_pre + len(self._ecg_tmpl))
        rr = 60 / self.heart_rate_bpm * (1 + 0.03 * self._rng_ecg.standard_normal())
        return ev, t + max(rr, 0.25)

    def _draw_transient(self, t: float) -> tuple[_Event, float]:
        cfg, rng = self.config, self._rng_trans
        kind = "spike" if rng.random() < 0.6 else "step"
        width = rng.uniform(0.01, 0.04) if kind == "spike" else rng.uniform(0.1, 0.6)
        length = round((6 if kind == "spike" else 5) * width * self.fs)
        amp = cfg.transient_uv * rng.uniform(0.5, 1.5) * rng.choice([-1.0, 1.0])
        scope = rng.random()
        weights = rng.uniform(0.5, 1.0, self._n_emg)
        if scope < 0.4:  # one side
            side = "left" if rng.random() < 0.5 else "right"
            mask = np.array([ch.side == side for ch in self._channels])
            weights *= mask if mask.any() else 1.0
        elif scope < 0.6:  # one electrode
            weights *= np.arange(self._n_emg) == rng.integers(self._n_emg)
        start = round(t * self.fs)
        ev = _Event(start, start + length, kind=kind, width=width, amp=amp, weights=weights)
        return ev, t + float(rng.exponential(60 / cfg.transient_rate_per_min))

    def _draw_dropout(self, t: float) -> tuple[_Event, float]:
        cfg, rng = self.config, self._rng_drop
        start = max(1, round(t * self.fs))
        length = max(1, round(rng.uniform(*cfg.dropout_ms) / 1000 * self.fs))
        self._drop_starts.append(start)
        nxt = (start + length + 1) / self.fs + float(rng.exponential(60 / cfg.dropout_rate_per_min))
        return _Event(start, start + length, kind="dropout"), nxt

    # ---------------------------------------------------------------- block production

    def _produce(self) -> FloatArray:
        i0, i1 = self._produced, self._produced + BLOCK
        idx = np.arange(i0, i1)
        t = idx / self.fs
        emg = self._carrier()
        self._blk_carrier = emg.copy()
        self._blk_env = self._activation(i0, i1, t)
        emg *= self._blk_env
        emg *= self._plateau
        if self._noise.any():
            emg += self._noise_floor()
        if len(self._freqs):
            emg += self._periodic(i0)
        if self.config.ecg_rel > 0 and any(c.kind == "lumbar" for c in self._channels):
            self._add_ecg(emg, i0, i1)
        self._add_transients(emg, i0, i1)
        if self._lead_off:
            emg[:, self._lead_off] = 0.0
        if self.config.rail_uv is not None:
            self._blk_unclipped = emg.copy()
            np.clip(emg, -self.config.rail_uv, self.config.rail_uv, out=emg)
            self._track_saturation(emg, i0)
        self._produced = i1
        if not self.config.counter:
            return emg
        out = np.empty((BLOCK, self._n_emg + 1))
        out[:, :-1] = emg
        out[:, -1] = idx
        return out

    def _carrier(self) -> FloatArray:
        # channel-major so that each channel filters a contiguous row
        z = self._rng_carrier.standard_normal((self._n_emg, BLOCK))
        for c, sos in enumerate(self._sos):
            z[c], self._zi[c] = filters.sosfilt(sos, z[c], zi=self._zi[c])
        z *= self._carrier_gain[:, None]
        return np.ascontiguousarray(z.T)

    def _noise_floor(self) -> FloatArray:
        z = self._rng_noise.standard_normal((self._n_emg, BLOCK))
        z, self._noise_zi = filters.sosfilt(self._noise_sos, z, zi=self._noise_zi)
        z *= (self._noise * self._noise_gain)[:, None]
        return z.T

    def _activation(self, i0: int, i1: int, t: FloatArray) -> FloatArray:
        tonic = self.config.tonic
        env = np.full((i1 - i0, self._n_emg), tonic)
        self._reps.extend_to(i1 / self.fs)
        first = max(0, bisect.bisect_right(self._rep_starts, i0 / self.fs) - 1)
        old = bisect.bisect_left(self._rep_starts, i0 / self.fs - self.truth_horizon_s)
        cut = min(first, old)  # (never the rep under way, however long a rest before it)
        if cut > 64:
            # reps older than the horizon are forgotten (truth() covers the horizon), 64 at
            # a time: a simulated session of hours stays the size of one (halving the list
            # instead let it grow to twice the horizon first: +6 MB over 2 hours, issue 11)
            del self._reps.events[:cut]
            del self._rep_starts[:cut]
            first -= cut
        for rep in self._reps.events[first:]:
            if rep.start >= i1 / self.fs:
                break
            if rep.end * self.fs < i0:
                continue
            for b in rep.bursts:
                k0 = max(i0, sample_after(b.onset, self.fs))
                k1 = min(i1, sample_after(b.offset, self.fs))
                if k1 <= k0:
                    continue
                tt = t[k0 - i0 : k1 - i0]
                u = np.clip((tt - b.onset) / b.rise, 0.0, 1.0)
                shape = 0.5 - 0.5 * np.cos(np.pi * u)
                v = np.clip((tt - b.decay_start) / b.decay, 0.0, 1.0)
                shape *= 0.5 + 0.5 * np.cos(np.pi * v)
                # two slow sines, RMS 1 in sum, make the plateau fluctuate a little
                w = 2 * np.pi * (tt - b.onset)
                fl = np.sin(w * b.fluct_f[0] + b.fluct_ph[0])
                fl += np.sin(w * b.fluct_f[1] + b.fluct_ph[1])
                fl = np.maximum(1.0 + self.config.plateau_fluct * fl, 0.0)
                env[k0 - i0 : k1 - i0, b.channel] += (1 - tonic) * b.amp * shape * fl
        return env

    def _periodic(self, i0: int) -> FloatArray:
        # block-start phase from (f * i0 / fs) mod 1 keeps precision over hours of samples
        rot = np.exp(2j * np.pi * np.mod(self._freqs * i0 / self.fs, 1.0))
        e = self._phasor * rot
        # real products: a complex matmul this small is slow and wakes BLAS threads
        return e.imag @ self._coef_sin + e.real @ self._coef_cos

    def _add_ecg(self, emg: FloatArray, i0: int, i1: int) -> None:
        self._beats.extend_to((i1 + self._ecg_pre) / self.fs)
        for ev in self._beats.overlapping(i0, i1):
            a, b = max(ev.start, i0), min(ev.stop, i1)
            emg[a - i0 : b - i0] += np.outer(
                self._ecg_tmpl[a - ev.start : b - ev.start], self._ecg_gain
            )

    def _add_transients(self, emg: FloatArray, i0: int, i1: int) -> None:
        self._trans.extend_to(i1 / self.fs)
        for ev in self._trans.overlapping(i0, i1):
            assert ev.weights is not None
            a, b = max(ev.start, i0), min(ev.stop, i1)
            tau = np.arange(a - ev.start, b - ev.start) / self.fs
            if ev.kind == "spike":  # biphasic Gaussian derivative, peaks +-1
                x = (tau - 3 * ev.width) / ev.width
                wave = -x * np.exp(0.5 * (1 - x * x))
            else:  # electrode shift through an AC-coupled front end: step, slow recovery
                tau += 1 / self.fs  # nonzero from the first sample of the event
                wave = (1 - np.exp(-tau / 0.003)) * np.exp(-tau / ev.width)
            emg[a - i0 : b - i0] += np.outer(ev.amp * wave, ev.weights)

    def _track_saturation(self, emg: FloatArray, i0: int) -> None:
        rail = self.config.rail_uv
        hit = np.abs(emg) >= rail
        n = len(emg)
        for c in range(self._n_emg):
            col = hit[:, c]
            if self._sat_open[c] is None and not col.any():
                continue
            edges = np.diff(col.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
            starts = [int(i) for i in np.flatnonzero(edges == 1)]
            stops = [int(i) for i in np.flatnonzero(edges == -1)]
            open_start = self._sat_open[c]
            if open_start is not None:
                if starts and starts[0] == 0:  # the run continues into this block
                    starts[0] = open_start - i0
                else:
                    self._sat_spans.append((c, open_start, i0 - open_start))
                self._sat_open[c] = None
            for s, e in zip(starts, stops, strict=True):
                if e == n:  # still clipped at the block end
                    self._sat_open[c] = i0 + s
                else:
                    self._sat_spans.append((c, i0 + s, e - s))

    # ---------------------------------------------------------------- public API

    @property
    def n_channels(self) -> int:
        return self.info.n_channels

    def generate(self, n_samples: int) -> FloatArray:
        """The next ``n_samples`` samples, shape ``(n_samples, n_channels)``, microvolts."""
        if n_samples < 0:
            raise ValueError("n_samples must be >= 0")
        out = np.empty((n_samples, self.n_channels))
        filled = 0
        while filled < n_samples:
            if self._buf_pos >= len(self._buf):
                self._buf, self._buf_pos = self._produce(), 0
            take = min(n_samples - filled, len(self._buf) - self._buf_pos)
            out[filled : filled + take] = self._buf[self._buf_pos : self._buf_pos + take]
            filled += take
            self._buf_pos += take
        self.position += n_samples
        return out

    def set_rest(self, on: bool) -> None:
        """The simulated athlete relaxes (``on``) or goes back to doing reps, from the next
        sample :meth:`generate` hands out -- what a coach's "relax now" does.

        Relaxing: reps not yet begun are dropped (from the signal, the markers and the truth),
        and the muscles of a rep in progress decay now with their own decay times; a muscle
        of it that had not fired yet does not fire. No rep starts while resting. Back to
        work: the next rep starts :data:`RESUME_S` later. Noise, hum, wander, ECG and motion
        transients go on unchanged (they are not voluntary). The samples already produced
        but not handed out are re-rendered with the new activation; the saturation truth of
        those samples is not re-tracked (a rail and a rest request together are not needed
        by anything). Deterministic for a seed and the sample positions of the requests.
        """
        if on == self.resting:
            return
        self.resting = on
        t = self.position / self.fs
        reps = self._reps
        if on:
            keep = bisect.bisect_left(self._rep_starts, t)
            # the athlete's own schedule (a lead-in, the rest between reps) still holds after
            # the rest: no rep comes earlier than it would have
            self._due_after_rest = min([*self._rep_starts[keep:], reps._next_t])
            del reps.events[keep:]
            del self._rep_starts[keep:]
            for rep in reps.events[-1:]:
                if rep.end <= t:
                    continue
                rep.bursts = [b for b in rep.bursts if b.onset < t]
                for b in rep.bursts:
                    b.decay_start = min(b.decay_start, t)
                rep.end = max(b.offset for b in rep.bursts)
            reps._next_t = math.inf
        else:
            reps._next_t = max(t + RESUME_S, self._due_after_rest)
        self._rerender()

    def _rerender(self) -> None:
        """Recompute the activation of the buffered samples not handed out yet."""
        if self._blk_carrier is None or self._blk_env is None or self._buf_pos >= len(self._buf):
            return
        i0 = self._produced - BLOCK
        k = self._buf_pos
        t = np.arange(i0 + k, self._produced) / self.fs
        env = self._activation(i0 + k, self._produced, t)
        delta = self._blk_carrier[k:] * (env - self._blk_env[k:]) * self._plateau
        self._blk_env[k:] = env
        cols = slice(0, self._n_emg)
        if self.config.rail_uv is not None and self._blk_unclipped is not None:
            self._blk_unclipped[k:] += delta
            rail = self.config.rail_uv
            self._buf[k:, cols] = np.clip(self._blk_unclipped[k:], -rail, rail)
        else:
            self._buf[k:, cols] += delta

    def skip(self, n_samples: int) -> None:
        """Advance without returning samples (they are still computed, for continuity)."""
        self.generate(n_samples)

    def dropouts(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Runs of lost samples ``(start, length)`` that intersect [start, stop)."""
        self._drops.extend_to(stop / self.fs)
        first = max(0, bisect.bisect_right(self._drop_starts, start) - 1)
        return [
            (ev.start, ev.stop - ev.start)
            for ev in self._drops.events[first:]
            if ev.start < stop and ev.stop > start
        ]

    def kept_mask(self, start: int, stop: int) -> NDArray[np.bool_]:
        """True for the samples in [start, stop) that are delivered (not dropped)."""
        mask = np.ones(stop - start, dtype=bool)
        for s, n in self.dropouts(start, stop):
            mask[max(s - start, 0) : max(s + n - start, 0)] = False
        return mask

    def markers(self, start: int, stop: int) -> list[Marker]:
        """Truth markers whose sample index lies in [start, stop), in order."""
        fs = self.fs
        self._reps.extend_to(stop / fs)
        first = max(0, bisect.bisect_right(self._rep_starts, start / fs) - 1)
        found: list[tuple[int, int, str]] = []
        for rep in self._reps.events[first:]:
            if rep.start >= stop / fs:
                break
            found.append((sample_after(rep.start, fs), 0, f"rep:{rep.index}"))
            for b in rep.bursts:
                name = self._channels[b.channel].name
                found.append((sample_after(b.onset, fs), 1, f"onset:{name}"))
                found.append((sample_after(b.offset, fs), 2, f"offset:{name}"))
        found.sort()
        return [Marker(i, label) for i, _, label in found if start <= i < stop]

    def truth(self, n_samples: int | None = None) -> Truth:
        """Ground truth for the first ``n_samples`` (default: all generated so far)."""
        n = self.position if n_samples is None else int(n_samples)
        if n < 0:
            raise ValueError("n_samples must be >= 0")
        if self.config.rail_uv is not None and n > self._produced:
            # saturation is only known for samples that exist; reps and dropouts are not
            raise ValueError(f"truth for {n} samples requested, only {self.position} generated")
        fs = self.fs
        self._reps.extend_to(n / fs)
        reps = tuple(self._rep_truth(r, n) for r in self._reps.events if r.start < n / fs)
        drops = tuple((s, min(length, n - s)) for s, length in self.dropouts(0, n))
        return Truth(
            fs=fs,
            channels=self.info.channel_names,
            roles=dict(self._roles),
            config=self.config,
            n_samples=n,
            reps=reps,
            dropouts=drops,
            saturation=self._saturation_until(n),
            transients=self._transients_until(n),
            channel_params={
                ch.name: {
                    "kind": ch.kind,
                    "plateau_rms_uv": ch.plateau_uv,
                    "snr_db": ch.snr_db,
                    "noise_rms_uv": ch.noise_uv,
                    "ecg_r_uv": ch.ecg_uv,
                    "spectrum_fl_fh_hz": [ch.fl, ch.fh],
                }
                for ch in self._channels
            },
            heart_rate_bpm=self.heart_rate_bpm,
        )

    def _rep_truth(self, rep: _Rep, n: int) -> RepTruth:
        onsets: dict[Role, float] = {}
        offsets: dict[Role, float] = {}
        rise: dict[Role, float] = {}
        ex_on: dict[str, float] = {}
        ex_off: dict[str, float] = {}
        for b in rep.bursts:
            ch = self._channels[b.channel]
            if ch.role is None:
                ex_on[ch.name], ex_off[ch.name] = b.onset, b.offset
            else:
                onsets[ch.role], offsets[ch.role] = b.onset, b.offset
                rise[ch.role] = b.rise * 1000
        glutes = [t for r, t in onsets.items() if r.is_glute]
        lumbars = [t for r, t in onsets.items() if r.is_lumbar]
        lag = round((min(lumbars) - min(glutes)) * 1000, 6) if glutes and lumbars else None
        side_lags = {}
        for side, g, lu in (
            ("left", Role.GLUTE_L, Role.LUMBAR_L),
            ("right", Role.GLUTE_R, Role.LUMBAR_R),
        ):
            if g in onsets and lu in onsets:
                side_lags[side] = round((onsets[lu] - onsets[g]) * 1000, 6)
        return RepTruth(
            index=rep.index,
            onsets=onsets,
            offsets=offsets,
            rise_ms=rise,
            extra_onsets=ex_on,
            extra_offsets=ex_off,
            lag_ms=lag,
            order=order_label(lag) if lag is not None else None,
            side_lags_ms=side_lags,
            complete=sample_after(rep.end, self.fs) <= n,
        )

    def _saturation_until(self, n: int) -> tuple[tuple[str, int, int], ...]:
        spans = list(self._sat_spans)
        for c, s in enumerate(self._sat_open):
            if s is not None:
                spans.append((c, s, self._produced - s))
        return tuple(
            (self._channels[c].name, s, min(length, n - s))
            for c, s, length in sorted(spans, key=lambda x: (x[1], x[0]))
            if s < n
        )

    def _transients_until(self, n: int) -> tuple[dict[str, Any], ...]:
        self._trans.extend_to(n / self.fs)
        out = []
        for ev in self._trans.events:
            if ev.start >= n:
                break
            assert ev.weights is not None
            out.append(
                {
                    "start": ev.start,
                    "length": ev.stop - ev.start,
                    "time_s": ev.start / self.fs,
                    "kind": ev.kind,
                    "peak_uv": float(abs(ev.amp)),
                    "channels": [self._channels[c].name for c in np.flatnonzero(ev.weights)],
                }
            )
        return tuple(out)


# --------------------------------------------------------------------------------------
# Offline use
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedRecording:
    """A finished simulation: the delivered rows (dropped samples removed) and the truth."""

    data: FloatArray
    #: stream index of each row of ``data`` (jumps where samples were dropped)
    index: NDArray[np.int64]
    info: StreamInfo
    truth: Truth

    @property
    def time(self) -> FloatArray:
        return self.index / self.info.fs

    @property
    def config(self) -> SimConfig:
        return self.truth.config

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready truth (no sample data)."""
        return self.truth.to_dict()


def _n_samples(config: SimConfig, duration_s: float) -> int:
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise SimConfigError(f"duration must be > 0 s, got {duration_s:g}")
    return max(1, round(duration_s * config.fs))


def simulate(config: SimConfig | None = None, duration_s: float = 60.0) -> SimulatedRecording:
    """Simulate ``duration_s`` seconds in one go."""
    cfg = config or SimConfig()
    sim = EmgSimulator(cfg)
    n = _n_samples(cfg, duration_s)
    data = sim.generate(n)
    kept = sim.kept_mask(0, n)
    return SimulatedRecording(
        data=data[kept] if not kept.all() else data,
        index=np.flatnonzero(kept).astype(np.int64),
        info=sim.info,
        truth=sim.truth(n),
    )


def _csv_header(info: StreamInfo) -> str:
    return ",".join(("time", *info.channel_names)) + "\n"


def _write_rows(fh: TextIO, index: NDArray[np.int64], data: FloatArray, fs: float) -> None:
    # one %-format per batch of rows is several times faster than np.savetxt
    row = ",".join(["%.6f"] + ["%.4f"] * data.shape[1]) + "\n"
    table = np.empty((len(index), data.shape[1] + 1))
    table[:, 0] = index / fs
    table[:, 1:] = data
    step = 20000
    for a in range(0, len(table), step):
        part = table[a : a + step]
        fh.write((row * len(part)) % tuple(part.ravel().tolist()))


def write_csv(path: str | Path, rec: SimulatedRecording) -> None:
    """CSV with header ``time,<channels>``; dropped samples are absent rows."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(_csv_header(rec.info))
        _write_rows(fh, rec.index, rec.data, rec.info.fs)


def write_truth(path: str | Path, rec: SimulatedRecording | Truth) -> None:
    truth = rec.truth if isinstance(rec, SimulatedRecording) else rec
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(truth.to_dict(), fh, indent=1)
        fh.write("\n")


def stream_to_csv(
    path: str | Path, config: SimConfig, duration_s: float, block_s: float = 10.0
) -> Truth:
    """Simulate straight to a CSV in blocks (bounded memory for long recordings)."""
    sim = EmgSimulator(config)
    n = _n_samples(config, duration_s)
    step = max(1, round(block_s * config.fs))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(_csv_header(sim.info))
        for a in range(0, n, step):
            b = min(n, a + step)
            data = sim.generate(b - a)
            kept = sim.kept_mask(a, b)
            _write_rows(fh, np.flatnonzero(kept) + a, data[kept], sim.fs)
    return sim.truth(n)
