"""A second, independent sEMG test generator: a motor-unit pool model after Fuglevand et al.

Fuglevand AJ, Winter DA, Patla AE (1993) "Models of recruitment and rate coding organization
in motor-unit pools", J Neurophysiol 70(6):2470-2488. The built-in simulator
(:mod:`devices.simulation.model`) shapes Gaussian noise with an activation envelope; this module
builds the surface EMG from its physiological cause instead -- motor units that are recruited
one by one as a common excitation rises, discharge trains and their action potentials -- so
that onset accuracy can be judged on signals fireorder was not tuned on. It is test and
benchmark code only (nothing in ``dsp`` or ``devices`` depends on it).

Model, per muscle channel (glute_l, glute_r, lumbar_l, lumbar_r; four independent pools):

* **Pool** (:class:`PoolConfig`): ``n_units`` (120, as in Fuglevand 1993) motor units.
  Recruitment thresholds ``RTE_i = exp(a i)``, ``a = ln(RR) / n``, RR = 30: exponentially
  distributed over a 30-fold range, so many small low-threshold units and few large ones
  (as in Fuglevand 1993), with a 5 % log-normal scatter. Excitation ``E`` is in the same units;
  ``E_max`` is the excitation at which the last unit reaches its peak rate.
* **Rate coding** (Fuglevand 1993): ``FR_i = MFR + g_e (E - RTE_i)`` for ``E >= RTE_i``,
  with MFR = 8 Hz and g_e = 1 Hz per excitation unit, capped at a peak rate falling linearly
  with threshold from 35 Hz (first unit) to 25 Hz (last unit; PFRD = 10 Hz).
* **Discharge times**: each unit's first discharge is at the instant the excitation crosses
  its threshold; later ones follow with Gaussian inter-spike variability, CV 0.2 (Fuglevand's
  value; Clamann 1969 reports 0.1-0.25). Implemented by time rescaling: the discharge phase
  ``int FR dt`` advances by independent N(1, 0.2) steps (clipped at 0.4), which gives ISIs of
  mean 1/FR and CV 0.2 at a steady rate and follows rate changes between discharges.
* **Action potentials** (MUAPs): the first- and second-order Hermite-Rodriguez functions
  (Lo Conte, Merletti, Sandri 1994; biphasic ``x exp(-x^2)`` mixed with a little triphasic
  ``(1 - 2x^2) exp(-x^2)``, ``x = t / lambda``, a per-unit mixing angle within +-0.5 rad and a
  random polarity). The amplitude of unit i grows as ``exp(b i)`` over a 100-fold range (the
  number of fibres, which Fuglevand's twitch range RP = 100 also reflects; 20 % log-normal
  scatter). Each unit lies at a depth below the skin (subcutaneous fat 3-8 mm per channel plus
  0-20 mm in the muscle); the tissue is a low-pass filter, so the scale lambda grows with depth
  (1.8 ms at the skin + 0.06 ms/mm: lambda 2.0-3.5 ms; the potential is above 5 % of its peak
  for ~4 lambda, i.e. 8-14 ms) while the amplitude falls as ``exp(-depth / 8 mm)``. The
  interference signal then has its median frequency at ~95-115 Hz with > 99 % of its power
  in 20-450 Hz (the usual surface-EMG band; the widening of the fatigue drift lowers it).
  The potential starts at the discharge (its 2.5-lambda lead-in is placed after the
  discharge, as for propagation from the end-plate to the electrodes): no energy precedes a
  unit's first discharge. The functions are evaluated analytically at the sample times of the
  recording, so any sampling rate works (1000, 2000, 2048 Hz, ...); lambda >= 1.8 ms leaves
  practically no energy above 500 Hz (no aliasing at 1 kHz).
* **Excitation per rep and muscle**: rises from zero over ``rise_ms`` (100-500 ms, drawn per
  muscle per rep) as ``E_p u^gamma`` (gamma 1-1.5: linear or slightly convex), holds at
  ``E_p`` (25-45 % of E_max, a moderate effort that recruits ~75-90 % of the pool) with a slow
  3 % fluctuation, then falls linearly to zero over 100-300 ms. Recruitment is therefore
  gradual: the first discharges are sparse and come from the smallest units.
* **Reps**: the glute->lumbar lag (earliest lumbar onset - earliest glute onset, ms, positive =
  glute first) is drawn per rep: glute first 15-150 ms (p 0.55), lumbar first 15-150 ms
  (p 0.25), else simultaneous (|lag| <= 10 ms); the two sides of a muscle are jittered by a
  few ms (SD 8 ms; the earlier side defines the muscle's onset, so the drawn lag is exact).
* **Recording**: noise floor of white Gaussian noise band-limited to the amplifier band
  (10-500 Hz, 4th-order Butterworth, top edge at most 0.45 fs), its RMS set by the channel's
  SNR in dB relative to the plateau RMS (the RMS of the noise-free EMG over the holds of all
  reps of that channel; plateau RMS is scaled to 60-150 uV for glutes, 40-100 uV for lumbar
  channels). Optionally: mains hum (50/60 Hz with a 3rd harmonic), an ECG artefact on the lumbar
  channels (P-QRS-T of Gaussians through the amplifier band, R peak ``ecg_rel`` x plateau RMS),
  fatigue-like drift over the file (MUAP widening = spectral compression, and amplitude
  growth, both linear in time), and files that start mid-burst (``start="active"``: the first
  burst is already on at t = 0; ``"early"``: the first onset is 0.2-0.6 s in, too little rest
  for a baseline; ``"mid"``: one of the two at random).

**Ground truth**: the onset of a muscle in a rep is the time of the *first motor-unit
discharge* of that burst (by construction: the lowest-threshold unit's recruitment instant).
The truth also records when the excitation started rising (``excitation_start``, up to a few
tens of ms earlier: the excitation must reach the lowest threshold) and the rise duration of
the excitation (``rise_ms``). The offset is the end of the last MUAP of the burst. Reps whose
onsets precede t = 0 (``start="active"``) are kept in :class:`MuTruth` (``at_start``) but
not scored; their spans are (a detection inside such a burst is a false alarm).

Reproducibility: every random component has its own seeded stream (schedule, pools, spikes,
noise, artefacts); the schedule and the discharge times are integrated on a fixed 1 ms grid in
seconds, so the truth and the discharges of a seed are the same at every sampling rate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from bench.metrics import GroundTruth, TrueRep
from dsp.contract import Role, StreamInfo

FloatArray = NDArray[np.float64]

CHANNELS: tuple[str, ...] = ("glute_l", "glute_r", "lumbar_l", "lumbar_r")
ROLES: tuple[Role, ...] = (Role.GLUTE_L, Role.GLUTE_R, Role.LUMBAR_L, Role.LUMBAR_R)
#: time grid (s) on which excitation, rates and discharge phases are integrated
GRID_S = 0.001
#: a MUAP is evaluated over [0, 2 K lambda] after its discharge, centred at K lambda
MUAP_HALF_WIDTH = 2.5
START_MODES = ("rest", "active", "early", "mid")
GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS = "glute_first", "lumbar_first", "simultaneous"
ORDER_THRESHOLD_MS = 20.0


class MuConfigError(ValueError):
    pass


@dataclass(frozen=True)
class PoolConfig:
    """One muscle's motor-unit pool (Fuglevand et al. 1993 parameters unless noted)."""

    n_units: int = 120  # Fuglevand: 120 units
    recruitment_range: float = 30.0  # RR: last threshold / first threshold
    threshold_scatter: float = 0.05  # log-normal SD of the thresholds (then sorted)
    min_rate_hz: float = 8.0  # MFR
    peak_rate_first_hz: float = 35.0  # PFR1
    peak_rate_drop_hz: float = 10.0  # PFRD: the last unit peaks at 25 Hz
    rate_gain: float = 1.0  # g_e, Hz per unit of excitation
    isi_cv: float = 0.2
    amp_range: float = 100.0  # MUAP size of the last unit / first unit (cf. RP = 100)
    amp_scatter: float = 0.2  # log-normal SD of the MUAP sizes
    fat_mm: tuple[float, float] = (3.0, 8.0)  # per channel
    muscle_depth_mm: tuple[float, float] = (0.0, 20.0)  # per unit, below the fat
    #: Hermite-Rodriguez scale at the skin and its growth with depth (tissue low-pass)
    lambda_skin_ms: float = 1.8
    lambda_per_mm_ms: float = 0.06
    #: amplitude attenuation length with depth
    atten_mm: float = 8.0
    #: per-unit mixing angle of the 2nd-order (triphasic) function into the 1st (biphasic)
    shape_mix_rad: float = 0.5


@dataclass(frozen=True)
class MuConfig:
    """The recording: schedule, efforts, noise and artefacts. Ranges ``(low, high)`` uniform."""

    fs: float = 2000.0
    seed: int = 0
    pool: PoolConfig = field(default_factory=PoolConfig)

    # --- rep schedule (seconds): hip hinges / bridges of ~1-2 s every ~3 s
    start: str = "rest"  # rest | active | early | mid (see the module doc)
    lead_in_s: tuple[float, float] = (1.5, 2.5)  # first onset with start="rest"
    early_s: tuple[float, float] = (0.2, 0.6)  # first onset with start="early"
    rep_period_s: tuple[float, float] = (2.7, 3.4)  # onset to onset
    min_rest_s: float = 0.6  # silence between the end of one rep and the next excitation
    hold_s: tuple[float, float] = (0.6, 1.1)  # plateau duration
    hold_jitter_s: float = 0.08  # per muscle: the muscles of a rep do not relax together
    #: voluntary ramps: a brisk hinge recruits within ~100 ms, a slow controlled one over
    #: ~0.5 s; the ramp is linear or slightly convex (slow start), as in ramp contractions
    rise_ms: tuple[float, float] = (100.0, 500.0)
    rise_shape: tuple[float, float] = (1.0, 1.5)  # exponent gamma of the ramp
    decay_ms: tuple[float, float] = (100.0, 300.0)
    #: plateau excitation as a fraction of E_max: a moderate, body-weight effort (25-45 %
    #: recruits ~75-90 % of the units, most at well below their peak rates); per channel,
    #: then varied per rep (log-normal SD)
    effort: tuple[float, float] = (0.25, 0.45)
    effort_rep_sd: float = 0.08
    #: RMS of the slow (0.5-3 Hz) plateau excitation fluctuation, relative: the few-percent
    #: force fluctuation of a steady contraction
    hold_fluct: float = 0.03

    # --- firing order (same kind of mix as the simulator's, drawn independently)
    p_glute_first: float = 0.55
    p_lumbar_first: float = 0.25
    lag_ms: tuple[float, float] = (15.0, 150.0)  # magnitude when not simultaneous
    simultaneous_ms: float = 10.0
    side_jitter_ms: float = 8.0  # left vs right onset of one muscle

    # --- amplitudes and noise
    glute_uv: tuple[float, float] = (60.0, 150.0)  # plateau RMS of moderate contractions
    lumbar_uv: tuple[float, float] = (40.0, 100.0)
    snr_db: tuple[float, float] | None = (20.0, 80.0)  # per channel; None = no noise floor
    amp_band_hz: tuple[float, float] = (10.0, 500.0)  # a typical sEMG amplifier band

    # --- artefacts and drift
    hum_hz: float = 50.0  # 60 for American mains (fireorder's default notch is 50 Hz)
    hum_uv: tuple[float, float] = (0.0, 0.0)  # amplitude of the fundamental
    #: R peak / lumbar plateau RMS; up to 4 is an ECG as large as the EMG peaks (electrodes
    #: over the lower back pick up the heart, more so in lean subjects)
    ecg_rel: tuple[float, float] = (0.0, 0.0)
    heart_rate_bpm: tuple[float, float] = (60.0, 100.0)
    #: MUAP widening (relative lambda increase: conduction velocity falls with fatigue) and
    #: amplitude growth over the whole file; 10-30 % widening lowers the median frequency by
    #: about as much, a moderate fatigue over a set
    widening: tuple[float, float] = (0.0, 0.0)
    amp_growth: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.start not in START_MODES:
            raise MuConfigError(f"start must be one of {START_MODES}, got {self.start!r}")
        if not self.fs > 0:
            raise MuConfigError(f"fs must be > 0, got {self.fs}")
        lo, hi = self.rise_ms
        if not 0 < lo <= hi:
            raise MuConfigError(f"bad rise_ms {self.rise_ms}")
        if self.p_glute_first + self.p_lumbar_first > 1:
            raise MuConfigError("p_glute_first + p_lumbar_first must be <= 1")

    def replace(self, **changes: Any) -> MuConfig:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise MuConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}


#: named presets: "clean" (rest first, no artefacts, SNR 20-80 dB) and "hard" (SNR 5-20 dB,
#: mid-burst starts, fatigue drift, hum, ECG up to 4x the lumbar plateau RMS)
PRESETS: dict[str, dict[str, Any]] = {
    "clean": {},
    "hard": {
        "snr_db": (5.0, 20.0),
        "start": "mid",
        "widening": (0.1, 0.3),
        "amp_growth": (0.2, 0.6),
        "hum_uv": (3.0, 15.0),
        "ecg_rel": (1.0, 4.0),
    },
}


def preset(name: str, **overrides: Any) -> MuConfig:
    """``preset("hard", fs=1000.0, seed=3)``."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise MuConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})") from None
    return MuConfig().replace(**{**base, **overrides})


# --------------------------------------------------------------------------------------
# Truth
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MuRep:
    """One rep. Times in seconds from sample 0 (may be negative for a burst on at t = 0)."""

    index: int
    onsets: dict[Role, float]  # first motor-unit discharge of the burst
    offsets: dict[Role, float]  # end of the last MUAP of the burst
    excitation_start: dict[Role, float]  # excitation starts rising from zero
    rise_ms: dict[Role, float]  # duration of the excitation ramp
    effort: dict[Role, float]  # plateau excitation / E_max
    plateau_s: dict[Role, tuple[float, float]]  # (start, end) of the hold at E_p
    lag_ms: float  # earliest lumbar onset - earliest glute onset (+ = glute first)
    at_start: bool  # the burst began before t = 0 (not scored)

    @property
    def order(self) -> str:
        if self.lag_ms >= ORDER_THRESHOLD_MS:
            return GLUTE_FIRST
        if self.lag_ms <= -ORDER_THRESHOLD_MS:
            return LUMBAR_FIRST
        return SIMULTANEOUS


@dataclass(frozen=True)
class MuTruth:
    fs: float
    n_samples: int
    channels: tuple[str, ...]
    roles: dict[Role, int]
    config: MuConfig
    reps: tuple[MuRep, ...]
    #: per channel: snr_db, plateau_rms_uv, noise_rms_uv, fat_mm, hum_uv, ecg_uv, ...
    channel_params: dict[str, dict[str, Any]]
    #: per file: widening, amp_growth, heart_rate_bpm, start mode actually used
    file_params: dict[str, Any]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def active_at_start(self, role: Role) -> bool:
        """Whether ``role``'s muscle is active (inside a burst) at t = 0."""
        return any(r.onsets[role] <= 0.0 < r.offsets[role] for r in self.reps if role in r.onsets)

    def to_ground_truth(self, label: str = "", end_margin_s: float = 0.5) -> GroundTruth:
        """The benchmark's truth: scored reps are those whose onsets are all inside the file."""
        duration = self.duration_s
        reps = tuple(
            TrueRep(r.index, dict(r.onsets), r.lag_ms, dict(r.rise_ms))
            for r in self.reps
            if not r.at_start and max(r.onsets.values()) < duration
        )
        spans: dict[Role, list[tuple[float, float]]] = {}
        for r in self.reps:
            for role, on in r.onsets.items():
                if on < duration:
                    spans.setdefault(role, []).append((on, r.offsets[role]))
        snr = {
            role: float(self.channel_params[self.channels[i]]["snr_db"])
            for role, i in self.roles.items()
            if self.channel_params[self.channels[i]].get("snr_db") is not None
        }
        return GroundTruth(
            fs=self.fs,
            duration_s=duration,
            reps=reps,
            score_until_s=duration - end_margin_s,
            spans=spans,
            transients={},
            snr_db=snr,
            label=label,
        )


@dataclass
class MuRecording:
    data: FloatArray  # (n, 4) microvolts
    info: StreamInfo
    truth: MuTruth
    #: the noise-free EMG (n, 4), before noise, hum and ECG (for tests)
    emg: FloatArray
    #: per channel: (discharge times in s, unit indices), all bursts, sorted by time
    discharges: tuple[tuple[FloatArray, NDArray[np.int64]], ...] = ()

    @property
    def index(self) -> NDArray[np.int64]:
        """Stream sample index of each row (no samples are lost)."""
        return np.arange(self.data.shape[0], dtype=np.int64)


# --------------------------------------------------------------------------------------
# Pools
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pool:
    rte: FloatArray  # recruitment thresholds (excitation units), ascending
    peak_rate: FloatArray  # Hz
    amp: FloatArray  # MUAP peak amplitude (arbitrary units, attenuation included)
    lam: FloatArray  # Hermite-Rodriguez scale (s)
    w1: FloatArray  # weight of the normalised 1st-order function (sign = polarity)
    w2: FloatArray  # weight of the normalised 2nd-order function
    e_max: float
    fat_mm: float


def _make_pool(cfg: PoolConfig, rng: np.random.Generator) -> _Pool:
    n = cfg.n_units
    i = np.arange(1, n + 1, dtype=float)
    # Fuglevand 1993: RTE(i) = exp(a i), a = ln(RR)/n -> thresholds 1..RR (scattered, sorted)
    rte = np.exp(np.log(cfg.recruitment_range) / n * i)
    rte = np.sort(rte * np.exp(cfg.threshold_scatter * rng.standard_normal(n)))
    rte /= rte[0]  # the first threshold is 1 excitation unit
    # peak rates fall linearly with threshold, from PFR1 (first unit) to PFR1 - PFRD (last)
    peak = cfg.peak_rate_first_hz - cfg.peak_rate_drop_hz * (rte - rte[0]) / (rte[-1] - rte[0])
    e_max = float(rte[-1] + (peak[-1] - cfg.min_rate_hz) / cfg.rate_gain)
    # MUAP size exp(b i) over amp_range (unit rank = threshold rank: size principle)
    size = np.exp(np.log(cfg.amp_range) / n * (i - 1)) * np.exp(
        cfg.amp_scatter * rng.standard_normal(n)
    )
    fat = float(rng.uniform(*cfg.fat_mm))
    depth = fat + rng.uniform(*cfg.muscle_depth_mm, size=n)
    lam = (cfg.lambda_skin_ms + cfg.lambda_per_mm_ms * depth) / 1000.0
    amp = size * np.exp(-depth / cfg.atten_mm)
    theta = rng.uniform(-cfg.shape_mix_rad, cfg.shape_mix_rad, size=n)
    polarity = rng.choice([-1.0, 1.0], size=n)
    return _Pool(
        rte=rte,
        peak_rate=peak,
        amp=amp,
        lam=lam,
        w1=polarity * np.cos(theta),
        w2=polarity * np.sin(theta),
        e_max=e_max,
        fat_mm=fat,
    )


_HR1_PEAK = math.sqrt(0.5) * math.exp(-0.5)  # max of x exp(-x^2)


def _muap(x: FloatArray, w1: FloatArray, w2: FloatArray) -> FloatArray:
    """Mixed 1st/2nd-order Hermite-Rodriguez function, each normalised to unit peak."""
    g = np.exp(-x * x)
    return g * (w1 * (x / _HR1_PEAK) + w2 * (1.0 - 2.0 * x * x))


# --------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------


@dataclass
class _Burst:
    channel: int
    onset: float  # first discharge (= recruitment of the lowest-threshold unit)
    t_exc: float  # excitation starts rising
    rise: float  # s
    gamma: float
    e_p: float  # plateau excitation (excitation units)
    hold_end: float
    decay: float  # s
    fluct: tuple[FloatArray, FloatArray, FloatArray]  # freqs, phases, amplitudes

    @property
    def end(self) -> float:
        return self.hold_end + self.decay

    @property
    def hold_start(self) -> float:
        return self.t_exc + self.rise


def _draw_lag(cfg: MuConfig, rng: np.random.Generator) -> float:
    u = rng.uniform()
    if u < cfg.p_glute_first:
        return float(rng.uniform(*cfg.lag_ms))
    if u < cfg.p_glute_first + cfg.p_lumbar_first:
        return -float(rng.uniform(*cfg.lag_ms))
    return float(rng.uniform(-cfg.simultaneous_ms, cfg.simultaneous_ms))


def _fluct(rng: np.random.Generator, rel: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    # three slow sinusoids (0.5-3 Hz), total RMS ``rel``
    f = rng.uniform(0.5, 3.0, 3)
    ph = rng.uniform(0, 2 * np.pi, 3)
    a = np.full(3, rel * math.sqrt(2.0 / 3.0))
    return f, ph, a


def _schedule(
    cfg: MuConfig, pools: list[_Pool], duration: float, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], str]:
    start = cfg.start
    if start == "mid":
        start = "active" if rng.uniform() < 0.5 else "early"
    base_effort = [rng.uniform(*cfg.effort) for _ in pools]
    reps: list[dict[str, Any]] = []
    prev_end = -np.inf
    anchor = 0.0
    k = 0
    while True:
        lag = _draw_lag(cfg, rng)
        lag_s = lag / 1000.0
        if k == 0:
            if start == "rest":
                anchor = float(rng.uniform(*cfg.lead_in_s))
            elif start == "early":
                anchor = float(rng.uniform(*cfg.early_s))
            else:  # active: every onset of the first rep before 0, in its hold at t = 0
                anchor = -float(rng.uniform(0.25, 0.6)) - abs(lag_s) - 0.05
        group_onset = {"glute": anchor + max(0.0, -lag_s), "lumbar": anchor + max(0.0, lag_s)}
        hold = float(rng.uniform(*cfg.hold_s))
        bursts: list[_Burst] = []
        for group, chans in (("glute", (0, 1)), ("lumbar", (2, 3))):
            jit = rng.normal(0.0, cfg.side_jitter_ms / 1000.0, 2)
            jit -= jit.min()
            for c, j in zip(chans, jit, strict=True):
                pool = pools[c]
                onset = group_onset[group] + float(j)
                rise = float(rng.uniform(*cfg.rise_ms)) / 1000.0
                gamma = float(rng.uniform(*cfg.rise_shape))
                frac = base_effort[c] * math.exp(cfg.effort_rep_sd * rng.standard_normal())
                e_p = min(0.95, frac) * pool.e_max
                # the first discharge is where E_p u^gamma reaches the lowest threshold
                dead = rise * (pool.rte[0] / e_p) ** (1.0 / gamma)
                t_exc = onset - dead
                hold_end = t_exc + rise + max(0.2, hold + rng.normal(0.0, cfg.hold_jitter_s))
                if k == 0 and start == "active":
                    hold_end = max(hold_end, float(rng.uniform(0.3, 0.8)))
                decay = float(rng.uniform(*cfg.decay_ms)) / 1000.0
                bursts.append(
                    _Burst(
                        c,
                        onset,
                        t_exc,
                        rise,
                        gamma,
                        e_p,
                        hold_end,
                        decay,
                        _fluct(rng, cfg.hold_fluct),
                    )
                )
        first_exc = min(b.t_exc for b in bursts)
        if k > 0 and first_exc < prev_end + cfg.min_rest_s:
            shift = prev_end + cfg.min_rest_s - first_exc
            for b in bursts:
                b.onset += shift
                b.t_exc += shift
                b.hold_end += shift
            anchor += shift
        if min(b.onset for b in bursts) >= duration:
            break
        reps.append({"lag_ms": lag, "bursts": bursts, "at_start": k == 0 and start == "active"})
        prev_end = max(b.end for b in bursts)
        anchor += float(rng.uniform(*cfg.rep_period_s))
        k += 1
    return reps, start


# --------------------------------------------------------------------------------------
# Discharges
# --------------------------------------------------------------------------------------


def _excitation(b: _Burst, t: FloatArray) -> FloatArray:
    """Excitation of one burst on the grid ``t``: ramp, plateau with fluctuation, linear fall."""
    f, ph, a = b.fluct

    def level(tt: FloatArray) -> FloatArray:
        # plateau: slow sinusoids, zero at the ramp's end and faded in over 0.2 s after it,
        # so that E is continuous there
        dt = np.atleast_1d(tt - b.hold_start)
        wob = (a[:, None] * np.sin(2 * np.pi * f[:, None] * dt + ph[:, None])).sum(0)
        wob -= (a * np.sin(ph)).sum()
        return b.e_p * (1.0 + np.clip(dt / 0.2, 0.0, 1.0) * wob)

    u = np.clip((t - b.t_exc) / b.rise, 0.0, 1.0)
    e = np.where(t > b.hold_start, level(t), b.e_p * u**b.gamma)
    e_end = float(level(np.asarray(b.hold_end))[0])
    down = e_end * np.clip(1.0 - (t - b.hold_end) / b.decay, 0.0, 1.0)
    return np.where(t > b.hold_end, down, e)


def _discharges(
    b: _Burst, pool: _Pool, pcfg: PoolConfig, rng: np.random.Generator
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Discharge times (s) and unit indices of one burst."""
    n_grid = math.ceil((b.end - b.t_exc) / GRID_S) + 2
    t: FloatArray = b.t_exc + GRID_S * np.arange(n_grid, dtype=np.float64)
    e = _excitation(b, t)
    active = np.flatnonzero(pool.rte < e.max())
    if active.size == 0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    rte = pool.rte[active][:, None]
    on = e[None, :] > rte
    rate = np.where(
        on,
        np.minimum(
            pcfg.min_rate_hz + pcfg.rate_gain * (e[None, :] - rte), pool.peak_rate[active][:, None]
        ),
        0.0,
    )
    # discharge phase: exclusive cumulative integral of the rate on the grid
    phase = np.zeros_like(rate)
    np.cumsum(rate[:, :-1] * GRID_S, axis=1, out=phase[:, 1:])
    # recruitment instants: analytic on the ramp (E_p u^gamma = RTE), else from the grid
    rte1 = pool.rte[active]
    t_rec = np.where(
        rte1 < b.e_p,
        b.t_exc + b.rise * (np.minimum(rte1, b.e_p) / b.e_p) ** (1.0 / b.gamma),
        np.nan,
    )
    late = np.flatnonzero(np.isnan(t_rec))
    for j in late:  # recruited by the plateau fluctuation: first grid crossing, interpolated
        k = int(np.argmax(on[j]))
        if k == 0:
            t_rec[j] = t[0]
        else:
            e0, e1 = e[k - 1], e[k]
            t_rec[j] = t[k - 1] + GRID_S * (rte1[j] - e0) / (e1 - e0)
    n_act = active.size
    phase_end = phase[:, -1]
    # phase at recruitment (linear interpolation on the uniform grid)
    pos = np.clip((t_rec - t[0]) / GRID_S, 0.0, n_grid - 1.000001)
    k0 = pos.astype(np.int64)
    rows_a = np.arange(n_act)
    phase_rec = phase[rows_a, k0] + (pos - k0) * (phase[rows_a, k0 + 1] - phase[rows_a, k0])
    # ISI steps in phase units: N(1, cv), clipped (Fuglevand: Gaussian ISI, CV 0.2)
    m = math.ceil((phase_end - phase_rec).max() * 1.6) + 8
    steps = np.clip(1.0 + pcfg.isi_cv * rng.standard_normal((n_act, m)), 0.4, None)
    targets = phase_rec[:, None] + np.cumsum(steps, axis=1)
    assert (targets[:, -1] > phase_end).all()
    keep = targets < phase_end[:, None]
    # one monotone interpolation over all units: offset each row's phase by a large constant
    big = float(phase_end.max()) + 10.0
    off = big * np.arange(n_act, dtype=float)
    xp = (phase + off[:, None]).ravel()
    fp = np.tile(t, n_act)
    rows, cols = np.nonzero(keep)
    later = np.interp(targets[rows, cols] + off[rows], xp, fp)
    times = np.concatenate([t_rec, later])
    units = np.concatenate([active, active[rows]])
    return times, units.astype(np.int64)


# --------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------


def _render(
    times: FloatArray,
    amp: FloatArray,
    lam: FloatArray,
    w1: FloatArray,
    w2: FloatArray,
    fs: float,
    n: int,
) -> FloatArray:
    """Sum of MUAPs, each starting at its discharge, sampled exactly at n / fs."""
    out = np.zeros(n)
    if times.size == 0:
        return out
    # group by support length to avoid evaluating long windows for short MUAPs
    width = 2 * MUAP_HALF_WIDTH * lam
    order = np.argsort(width)
    chunk = 20000
    for s in range(0, order.size, chunk):
        sel = order[s : s + chunk]
        length = math.ceil(width[sel].max() * fs) + 2
        n0 = np.ceil(times[sel] * fs).astype(np.int64)
        idx = n0[:, None] + np.arange(length)[None, :]
        tt = idx / fs - times[sel][:, None]
        x = (tt - MUAP_HALF_WIDTH * lam[sel][:, None]) / lam[sel][:, None]
        inside = (x <= MUAP_HALF_WIDTH) & (idx >= 0) & (idx < n)
        r = np.nonzero(inside)[0]
        s_sel = sel[r]
        wave = amp[s_sel] * _muap(x[inside], w1[s_sel], w2[s_sel])
        out += np.bincount(idx[inside], weights=wave, minlength=n)
    return out


def _band(fs: float, band: tuple[float, float]) -> NDArray[np.float64]:
    lo, hi = band
    hi = min(hi, 0.45 * fs)
    return signal.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos")


def _noise(rng: np.random.Generator, n: int, fs: float, band: tuple[float, float]) -> FloatArray:
    warm = int(fs)  # let the filter settle: drop the first second
    w = signal.sosfilt(_band(fs, band), rng.standard_normal(n + warm))[warm:]
    return w / np.sqrt(np.mean(w * w))


def _ecg_template(fs: float, band: tuple[float, float]) -> tuple[FloatArray, int]:
    """One P-QRS-T beat (Gaussians), through the amplifier band; R peak at ``lead`` samples."""
    t = np.arange(-0.4, 0.8, 1.0 / fs)
    waves = (  # (amplitude, centre s, SD s)
        (0.12, -0.18, 0.025),  # P
        (-0.12, -0.03, 0.008),  # Q
        (1.0, 0.0, 0.010),  # R
        (-0.3, 0.03, 0.009),  # S
        (0.25, 0.25, 0.045),  # T
    )
    beat = sum(a * np.exp(-0.5 * ((t - c) / s) ** 2) for a, c, s in waves)
    beat = signal.sosfilt(_band(fs, band), np.asarray(beat))
    beat /= np.abs(beat).max()
    return beat, round(0.4 * fs)


def _plateau_mask(bursts: list[_Burst], fs: float, n: int) -> NDArray[np.bool_]:
    mask = np.zeros(n, dtype=bool)
    for b in bursts:
        a = max(0, math.ceil((b.hold_start + 0.05) * fs))
        z = min(n, math.floor(b.hold_end * fs))
        if z > a:
            mask[a:z] = True
    return mask


def generate(config: MuConfig | None = None, duration_s: float = 40.0) -> MuRecording:
    """Simulate ``duration_s`` of 4-channel sEMG from four motor-unit pools (see module doc)."""
    cfg = config or MuConfig()
    fs = float(cfg.fs)
    n = round(duration_s * fs)
    duration = n / fs
    ss = np.random.SeedSequence(cfg.seed)
    r_pool, r_sched, r_spike, r_noise, r_art, r_gain = (
        np.random.default_rng(s) for s in ss.spawn(6)
    )
    pools = [_make_pool(cfg.pool, r_pool) for _ in CHANNELS]
    reps, start_used = _schedule(cfg, pools, duration, r_sched)
    widening = float(r_art.uniform(*cfg.widening))
    growth = float(r_art.uniform(*cfg.amp_growth))

    emg = np.zeros((n, len(CHANNELS)))
    truth_reps: list[MuRep] = []
    first: dict[tuple[int, int], float] = {}
    last: dict[tuple[int, int], float] = {}
    per_channel: list[list[tuple[FloatArray, NDArray[np.int64]]]] = [[] for _ in CHANNELS]
    for k, rep in enumerate(reps):
        for b in rep["bursts"]:
            times, units = _discharges(b, pools[b.channel], cfg.pool, r_spike)
            per_channel[b.channel].append((times, units))
            first[(k, b.channel)] = float(times.min())
            pool = pools[b.channel]
            j = int(np.argmax(times))
            tail = 2 * MUAP_HALF_WIDTH * pool.lam[units[j]] * (1.0 + widening)
            last[(k, b.channel)] = float(times[j] + tail)
    discharges: list[tuple[FloatArray, NDArray[np.int64]]] = []
    for c in range(len(CHANNELS)):
        times = np.concatenate([np.empty(0)] + [t for t, _ in per_channel[c]])
        units = np.concatenate([np.empty(0, dtype=np.int64)] + [u for _, u in per_channel[c]])
        order = np.argsort(times, kind="stable")
        times, units = times[order], units[order]
        discharges.append((times, units))
        pool = pools[c]
        # fatigue-like drift, linear over the file: wider (slower) and larger MUAPs
        frac = np.clip(times / duration, 0.0, 1.0)
        lam = pool.lam[units] * (1.0 + widening * frac)
        amp = pool.amp[units] * (1.0 + growth * frac)
        emg[:, c] = _render(times, amp, lam, pool.w1[units], pool.w2[units], fs, n)

    # per-channel scalars first (the same for a seed at any sampling rate), then the samples
    draws: list[dict[str, Any]] = []
    for name in CHANNELS:
        lo, hi = cfg.lumbar_uv if name.startswith("lumbar") else cfg.glute_uv
        draws.append(
            {
                "target": float(r_gain.uniform(lo, hi)),
                "snr": None if cfg.snr_db is None else float(r_gain.uniform(*cfg.snr_db)),
                "hum": float(r_gain.uniform(*cfg.hum_uv)) if cfg.hum_hz > 0 else 0.0,
                "hum_phase": float(r_gain.uniform(0, 2 * np.pi)),
                "ecg": float(r_gain.uniform(*cfg.ecg_rel)) if name.startswith("lumbar") else 0.0,
            }
        )
    hr = float(r_art.uniform(*cfg.heart_rate_bpm))
    beats = _beats(r_art, hr, duration)
    template, lead = _ecg_template(fs, cfg.amp_band_hz)
    t_axis = np.arange(n) / fs
    # scale to the plateau RMS wanted, then add the noise floor at the SNR drawn
    channel_params: dict[str, dict[str, Any]] = {}
    data = np.empty_like(emg)
    for c, name in enumerate(CHANNELS):
        d = draws[c]
        bursts = [b for rep in reps for b in rep["bursts"] if b.channel == c]
        mask = _plateau_mask(bursts, fs, n)
        rms = float(np.sqrt(np.mean(emg[mask, c] ** 2))) if mask.any() else 0.0
        gain = d["target"] / rms if rms > 0 else 1.0
        emg[:, c] *= gain
        plateau = rms * gain
        x = emg[:, c].copy()
        snr = d["snr"]
        noise_rms = 0.0
        if snr is not None:
            noise_rms = plateau / 10 ** (snr / 20.0)
            x += noise_rms * _noise(r_noise, n, fs, cfg.amp_band_hz)
        hum = d["hum"]
        if hum > 0:
            w = 2 * np.pi * cfg.hum_hz * t_axis + d["hum_phase"]
            x += hum * (np.sin(w) + 0.3 * np.sin(3 * w + 0.7))
        ecg = d["ecg"] * plateau
        if ecg > 0:
            sign = 1.0 if name.endswith("_l") else -0.8
            x += sign * ecg * _place(template, lead, beats, fs, n)
        data[:, c] = x
        channel_params[name] = {
            "snr_db": snr,
            "plateau_rms_uv": plateau,
            "noise_rms_uv": noise_rms,
            "fat_mm": pools[c].fat_mm,
            "hum_uv": hum,
            "ecg_r_uv": ecg,
            "e_max": pools[c].e_max,
        }

    for k, rep in enumerate(reps):
        onsets: dict[Role, float] = {}
        offsets: dict[Role, float] = {}
        exc: dict[Role, float] = {}
        rise: dict[Role, float] = {}
        effort: dict[Role, float] = {}
        holds: dict[Role, tuple[float, float]] = {}
        for b in rep["bursts"]:
            role = ROLES[b.channel]
            onsets[role] = first[(k, b.channel)]
            offsets[role] = last[(k, b.channel)]
            exc[role] = b.t_exc
            rise[role] = b.rise * 1000.0
            effort[role] = b.e_p / pools[b.channel].e_max
            holds[role] = (b.hold_start, b.hold_end)
        g = min(t for r, t in onsets.items() if r.is_glute)
        lu = min(t for r, t in onsets.items() if r.is_lumbar)
        truth_reps.append(
            MuRep(
                index=k,
                onsets=onsets,
                offsets=offsets,
                excitation_start=exc,
                rise_ms=rise,
                effort=effort,
                plateau_s=holds,
                lag_ms=(lu - g) * 1000.0,
                at_start=bool(rep["at_start"]),
            )
        )
    roles = {r: i for i, r in enumerate(ROLES)}
    info = StreamInfo(fs=fs, channel_names=CHANNELS, roles=roles, source="bench.mupool")
    truth = MuTruth(
        fs=fs,
        n_samples=n,
        channels=CHANNELS,
        roles=roles,
        config=cfg,
        reps=tuple(truth_reps),
        channel_params=channel_params,
        file_params={
            "start": start_used,
            "widening": widening,
            "amp_growth": growth,
            "heart_rate_bpm": hr,
            "hum_hz": cfg.hum_hz,
        },
    )
    return MuRecording(data=data, info=info, truth=truth, emg=emg, discharges=tuple(discharges))


def _beats(rng: np.random.Generator, hr_bpm: float, duration: float) -> FloatArray:
    rr = 60.0 / hr_bpm
    out = []
    t = float(rng.uniform(0.0, rr)) - 0.5
    while t < duration + 0.5:
        out.append(t)
        t += rr * (1.0 + 0.04 * float(rng.standard_normal()))
    return np.asarray(out)


def _place(template: FloatArray, lead: int, beats: FloatArray, fs: float, n: int) -> FloatArray:
    idx = np.round(beats * fs).astype(np.int64)[:, None] - lead + np.arange(template.size)
    inside = (idx >= 0) & (idx < n)
    w = np.broadcast_to(template, idx.shape)
    return np.bincount(idx[inside], weights=w[inside], minlength=n).astype(np.float64)
