"""DSP settings: one frozen record travels from the GUI/CLI to the worker and into recordings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Literal, get_args

from dsp.limits import Limit, SettingError

DetectorSignal = Literal["power", "tkeo"]
OnsetMethod = Literal["changepoint", "backdate"]


@dataclass(frozen=True)
class DspSettings:
    """Every tunable of the streaming pipeline, with literature-backed defaults.

    Times are in milliseconds or seconds as named; frequencies in Hz.
    """

    # Conditioning. sEMG power sits at ~20-450 Hz (De Luca 2010); hum is 50 or 60 Hz.
    bandpass_low_hz: float = 20.0
    bandpass_high_hz: float = 450.0
    bandpass_order: int = 4
    notch_hz: float = 50.0  # 0 disables the notch
    notch_harmonics: int = 3  # fundamental + 2 harmonics: odd ones dominate mains hum
    notch_q: float = 30.0
    # Lumbar channels pick up the heart; a 30 Hz high-pass is the standard remedy (Drake 2006).
    ecg_highpass_hz: float = 30.0  # 0 disables
    ecg_highpass_order: int = 4
    # Heartbeat gate on lumbar channels (dsp.ecg_gate): no onset or offset where the 8-25 Hz
    # band is this many times the conditioned band (amplitude) and 3x its rest; 0 disables.
    ecg_gate_ratio: float = 2.0

    # Display envelopes (not used for decisions).
    rms_window_ms: float = 50.0
    envelope_lowpass_hz: float = 6.0

    # Onset detection statistic: the Teager-Kaiser energy operator ("tkeo", Solnik 2010), which
    # weights energy by frequency and so rejects what leaks past the high-pass from the heart
    # and from movement; or plain instantaneous power ("power"), which keeps a little more SNR
    # against a white noise floor. Either is smoothed with a 2nd-order low-pass.
    detector: DetectorSignal = "tkeo"
    detector_lowpass_hz: float = 30.0

    # Hodges & Bui (1996): threshold = baseline mean + k * SD, sustained for a minimum time.
    k_on: float = 4.0
    min_on_ms: float = 30.0
    # Strong evidence confirms sooner: a statistic this many times further above the rest
    # mean than the threshold, held for the shorter time, confirms an onset too (0 disables).
    # At rest that is as unlikely as the full time just above the threshold, and most bursts
    # rise through it, so a cue can follow the lumbar onset within tens of milliseconds.
    fast_ratio: float = 4.0
    fast_min_on_ms: float = 15.0
    # Sequential tier (Page 1954's CUSUM): S = max(0, S + min(z, cusum_cap_sd) - cusum_k_sd)
    # on the statistic in baseline SDs, z = (s - mean) / SD, an onset confirmed when S exceeds
    # cusum_h_sd_ms (SD x ms). At low SNR a burst's statistic crosses the threshold only
    # intermittently; the sum adds up that evidence where a run has to start again at every
    # dip. The cap keeps one spike (the statistic is heavy-tailed) from confirming alone.
    # cusum_h_sd_ms = 0 disables it.
    cusum_k_sd: float = 3.0
    cusum_cap_sd: float = 4.0
    cusum_h_sd_ms: float = 40.0
    # Back-dating (double threshold in spirit of Bonato 1998): walk back from the sure crossing
    # to where the statistic last sat at baseline level (mean + k_back * SD).
    k_back: float = 1.0
    backdate_max_ms: float = 300.0
    # How the onset time is estimated once a burst is sure: "changepoint" (the change point
    # of a two-phase model, rest level then a rise, fitted over the look-back window; see
    # dsp.onset) or "backdate" (walk back to the last sample at mean + k_back * SD, the method
    # before; kept as an ablation).
    onset_method: OnsetMethod = "changepoint"
    # How far back from the sure crossing the changepoint looks: slow recruitment (ramps of
    # up to ~500 ms, sparse first discharges) starts well before the crossing.
    changepoint_window_ms: float = 600.0
    # Shape of the rise after the change: power ~ (t - t0) ** p. 2 = amplitude growing in
    # proportion to a linearly ramping force (Lawrence & De Luca 1983).
    changepoint_ramp_power: float = 2.0
    # Hysteresis for the offset: below mean + k_off * SD or a fraction of the burst's peak.
    k_off: float = 2.0
    off_peak_fraction: float = 0.02
    min_off_ms: float = 80.0
    # The offset is judged on a more smoothed statistic, so that a dip inside a noisy burst
    # does not end it (offsets only separate reps; their timing matters less).
    offset_lowpass_hz: float = 8.0
    # A burst this much above the floor it fell to re-arms the detector over tonic activity.
    rearm_ratio: float = 3.0
    # The level a burst fell back to (the tonic floor behind the re-arm level) is never above
    # the highest offset statistic of this last stretch, so a floor left by an artefact is
    # gone one window after the channel is back at rest (onset.OnsetDetector._floor_track).
    floor_window_ms: float = 200.0

    # Baseline: calibrated rest window if given, else robust estimate from recent blocks.
    # Blocks of half a second hold part of a cardiac cycle, so the rest level of a lumbar
    # channel includes its heart artefact instead of treating every beat as an onset.
    baseline_block_s: float = 0.5
    baseline_history_s: float = 60.0
    baseline_quantile: float = 0.2  # blocks at or below this quantile of block means are rest
    baseline_min_s: float = 1.0  # no onsets until this much history (>= one heartbeat)
    baseline_adapt_tau_s: float = 30.0  # slow drift following with a calibrated baseline
    # Without calibration the estimated rest level falls at once but rises at most by e per
    # this time constant, so long sets without rest do not lift it to the activity level.
    baseline_rise_tau_s: float = 60.0
    # A stream that begins mid-activity has no rest to learn from: its first reps are judged
    # against a provisional baseline. Once this much of the stream is known the baseline is
    # taken as sound; if the rest level it found is far from the one those reps were judged
    # with (by more than ``rejudge_ratio``), they are judged again and marked re-judged.
    rejudge_after_s: float = 8.0
    rejudge_ratio: float = 1.5

    # Firing order.
    tolerance_ms: float = 20.0
    exercise: str = "hinge"
    settle_ms: float = 30.0  # wait for a missing side's onset before deciding a rep
    # A muscle counts as at rest for an early verdict when its statistic is at the rest level
    # and its mean over this last stretch is too: no weak activity hidden under the noise.
    rest_window_ms: float = 100.0
    search_pre_ms: float = 250.0  # data before the rep start that must be usable
    gap_settle_ms: float = 200.0  # after a gap, filters resettle: data unusable
    # After a transient artefact (spike, pop, motion) the band-pass rings and the statistic is
    # smoothed: the channel's onsets and offsets are suspended this long after its end.
    artefact_settle_ms: float = 100.0

    #: The range of every numeric tunable: wide enough for any sEMG setup and for ablations,
    #: narrow enough that no value in it breaks the pipeline (an empty band, a zero-length
    #: window, a threshold at or below the rest mean). The CLI's options, the settings dialog
    #: and stored settings all take their ranges from here.
    LIMITS: ClassVar[dict[str, Limit]] = {
        "bandpass_low_hz": Limit(1.0, 500.0, "Hz"),
        "bandpass_high_hz": Limit(20.0, 5000.0, "Hz"),
        "bandpass_order": Limit(1, 8, integer=True),
        "notch_hz": Limit(40.0, 70.0, "Hz", off=0.0),
        "notch_harmonics": Limit(1, 10, integer=True),
        "notch_q": Limit(1.0, 200.0),
        "ecg_highpass_hz": Limit(5.0, 200.0, "Hz", off=0.0),
        "ecg_highpass_order": Limit(1, 8, integer=True),
        "ecg_gate_ratio": Limit(0.5, 20.0, off=0.0),
        "rms_window_ms": Limit(5.0, 1000.0, "ms"),
        "envelope_lowpass_hz": Limit(0.5, 100.0, "Hz"),
        "detector_lowpass_hz": Limit(1.0, 200.0, "Hz"),
        "k_on": Limit(0.5, 50.0, "SD"),
        "min_on_ms": Limit(0.0, 500.0, "ms", low_open=True),
        "fast_ratio": Limit(1.0, 100.0, off=0.0),
        "fast_min_on_ms": Limit(0.0, 500.0, "ms", low_open=True),
        "cusum_k_sd": Limit(0.0, 50.0, "SD", low_open=True),
        "cusum_cap_sd": Limit(0.0, 100.0, "SD", low_open=True),
        "cusum_h_sd_ms": Limit(1.0, 100000.0, "SD ms", off=0.0),
        "k_back": Limit(0.0, 50.0, "SD"),
        "backdate_max_ms": Limit(10.0, 2000.0, "ms"),
        "changepoint_window_ms": Limit(50.0, 5000.0, "ms"),
        "changepoint_ramp_power": Limit(0.5, 4.0),
        "k_off": Limit(0.0, 50.0, "SD"),
        "off_peak_fraction": Limit(0.0, 1.0),
        "min_off_ms": Limit(0.0, 5000.0, "ms"),
        "offset_lowpass_hz": Limit(0.5, 100.0, "Hz"),
        "rearm_ratio": Limit(1.0, 100.0),
        "floor_window_ms": Limit(10.0, 10000.0, "ms"),
        "baseline_block_s": Limit(0.05, 10.0, "s"),
        "baseline_history_s": Limit(1.0, 3600.0, "s"),
        "baseline_quantile": Limit(0.0, 1.0, low_open=True),
        "baseline_min_s": Limit(0.0, 60.0, "s"),
        # up to ~30,000 years: "held" (an ablation that calibrates once and never adapts)
        "baseline_adapt_tau_s": Limit(0.1, 1e12, "s"),
        "baseline_rise_tau_s": Limit(0.1, 1e12, "s"),
        "rejudge_after_s": Limit(0.0, 600.0, "s"),
        "rejudge_ratio": Limit(1.0, 100.0),
        "tolerance_ms": Limit(0.0, 200.0, "ms"),
        "settle_ms": Limit(0.0, 1000.0, "ms"),
        "rest_window_ms": Limit(10.0, 2000.0, "ms"),
        "search_pre_ms": Limit(0.0, 2000.0, "ms"),
        "gap_settle_ms": Limit(0.0, 5000.0, "ms"),
        "artefact_settle_ms": Limit(0.0, 5000.0, "ms"),
    }

    def __post_init__(self) -> None:
        # Values arrive from the CLI, the dialog, QSettings, JSON sidecars and code: each is
        # checked here, once, and stored in its field's type.
        for name, limit in self.LIMITS.items():
            object.__setattr__(self, name, limit.parse(name, getattr(self, name)))
        if self.bandpass_low_hz >= self.bandpass_high_hz:
            raise SettingError(
                f"band-pass {self.bandpass_low_hz:g}-{self.bandpass_high_hz:g} Hz is empty: "
                "bandpass_low_hz must be below bandpass_high_hz"
            )
        for name, kind in (("detector", DetectorSignal), ("onset_method", OnsetMethod)):
            if getattr(self, name) not in get_args(kind):
                raise SettingError(
                    f"{name} = {getattr(self, name)!r}: give one of {', '.join(get_args(kind))}"
                )
        if not isinstance(self.exercise, str) or not self.exercise:
            raise SettingError(f"exercise = {self.exercise!r}: give an exercise name")

    @classmethod
    def check(cls, name: str, value: Any) -> float | int:
        """``value`` for setting ``name`` within its range, or SettingError naming both."""
        return cls.LIMITS[name].parse(name, value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DspSettings:
        """Settings from a mapping (a sidecar, stored settings); unknown keys are ignored,
        a value outside its range raises SettingError."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_(self, **changes: Any) -> DspSettings:
        return replace(self, **changes)

    def same_statistic(self, other: DspSettings) -> bool:
        """Whether a baseline measured under ``other`` is in this pipeline's units."""
        return all(getattr(self, k) == getattr(other, k) for k in STATISTIC_FIELDS)


#: The settings that shape the detection statistic: a rest baseline measured under different
#: values of these is in other units and must be measured again.
STATISTIC_FIELDS: tuple[str, ...] = (
    "bandpass_low_hz",
    "bandpass_high_hz",
    "bandpass_order",
    "notch_hz",
    "notch_harmonics",
    "notch_q",
    "ecg_highpass_hz",
    "ecg_highpass_order",
    "detector",
    "detector_lowpass_hz",
)


@dataclass(frozen=True)
class SettingsSchedule:
    """The settings a recording was judged with: ``start`` from its first sample, then each
    change from the sample it came into use (``changes``: (index, settings), ascending). A
    replay and an analysis of the recording follow it, so a reviewer sees the verdicts the
    live session gave."""

    start: DspSettings
    changes: tuple[tuple[int, DspSettings], ...] = ()

    def at(self, index: int) -> DspSettings:
        """The settings in use at sample ``index``."""
        now = self.start
        for at, settings in self.changes:
            if at > index:
                break
            now = settings
        return now

    def after(self, index: int) -> tuple[tuple[int, DspSettings], ...]:
        """The changes that come into use after sample ``index``."""
        return tuple(c for c in self.changes if c[0] > index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.start.to_dict(),
            "changes": [{"index": i, "settings": s.to_dict()} for i, s in self.changes],
        }
