"""The live session worker: simulator -> pipeline -> buffers and events, no Qt."""

from __future__ import annotations

import time

import numpy as np
import pytest

from devices.drivers.base import Device, DeviceError
from devices.drivers.simulator import SimulatorDevice
from devices.session.live import LiveSession
from dsp.contract import Chunk, Role, StreamInfo
from dsp.reps import RepResult
from dsp.settings import DspSettings


def sim(**kw: object) -> SimulatorDevice:
    return SimulatorDevice(preset="clean", realtime=False, **kw)  # type: ignore[arg-type]


def test_pump_fills_buffers_and_queues_reps() -> None:
    s = LiveSession(sim(seed=4))
    info = s.open()
    s.start(threaded=False)
    s.pump(12.0)
    snap = s.snapshot(10.0)
    assert snap.raw.shape == (round(10 * info.fs), info.n_channels)
    assert snap.start + snap.raw.shape[0] == s.stats.samples
    assert np.isfinite(snap.filtered).all() and np.isfinite(snap.thresholds).all()
    reps = [e.event for e in s.drain_events() if isinstance(e.event, RepResult)]
    assert len(reps) >= 3
    assert s.drain_events() == []


def test_threaded_run_until_source_ends() -> None:
    s = LiveSession(sim(seed=5, duration_s=8.0))
    s.start()
    deadline = time.monotonic() + 30
    while s.state == "streaming" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.state == "finished" and s.stats.samples == 16_000
    s.close()


def test_rest_calibration_fixes_the_baseline() -> None:
    s = LiveSession(sim(seed=6, lead_in_s=3.0))
    s.open()
    s.start(threaded=False)
    results = []
    s.calibrate_rest(1.5, results.append)
    s.pump(2.0)
    assert results and results[0].kind == "rest"
    assert s.pipeline is not None and s.pipeline.baseline.calibrated is not None
    s.calibrate_reference([0, 1], 1.0, results.append)
    s.pump(6.0)
    assert results[-1].kind == "reference" and s.reference is not None
    assert np.all(s.reference[:2] > 0) and np.isnan(s.reference[2])


def test_settings_change_keeps_the_index_line() -> None:
    s = LiveSession(sim(seed=7))
    s.open()
    s.start(threaded=False)
    s.pump(3.0)
    s.apply_settings(DspSettings(tolerance_ms=50.0))
    s.pump(9.0)
    assert s.stats.gaps == 0 and s.settings.tolerance_ms == 50.0
    assert any(isinstance(e.event, RepResult) for e in s.drain_events())


class _Unplugged(Device):
    def __init__(self) -> None:
        self.n = 0

    def open(self) -> StreamInfo:
        return StreamInfo(1000, ("g", "l"), {Role.GLUTE_L: 0, Role.LUMBAR_L: 1})

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...

    def read(self) -> Chunk | None:
        self.n += 1
        if self.n > 5:
            raise DeviceError("device unplugged")
        return Chunk(np.random.default_rng(self.n).standard_normal((20, 2)), (self.n - 1) * 20)


def test_device_error_stops_stream_and_keeps_samples() -> None:
    s = LiveSession(_Unplugged())
    s.start()
    deadline = time.monotonic() + 10
    while s.state == "streaming" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.state == "error" and s.error == "device unplugged"
    assert s.stats.samples == 100 and s.raw.end == 100
    s.close()


def test_unmapped_roles_fail_on_open() -> None:
    with pytest.raises(Exception, match="glute and one lumbar"):
        LiveSession(sim(channels="glute_l,glute_r")).open()


def test_the_measured_rate_counts_gaps_and_never_runs_backwards() -> None:
    from devices.session.live import SessionStats

    st = SessionStats()
    for i in range(50):  # 40 samples every 20 ms: 2 kHz
        st.count(40 * i, 40, 10.0 + 0.02 * i)
    assert st.rate_hz == pytest.approx(2000, rel=0.03)
    st.count(40 * 50 + 400, 40, 11.0)  # 400 samples the device lost: it still sent them
    assert st.rate_hz > 2000
    st.count(0, 40, 11.02)  # a seek back: no rate across the jump, and none negative
    assert st.rate_hz == 0.0
    for i in range(1, 40):
        st.count(40 * i, 40, 11.02 + 0.02 * i)
        assert st.rate_hz >= 0.0
    assert st.rate_hz == pytest.approx(2000, rel=0.03)


def test_at_rest_the_lanes_are_not_filled_with_noise() -> None:
    """Found by a newcomer: stopped before the first rep, every lane was full of noise (the
    lanes scaled to the rest noise alone read as activity). A half lane spans at least 5x
    the onset threshold, so rest noise's peaks reach about a third of it."""
    from devices.session.live import DISPLAY_FLOOR_X_THRESHOLD

    s = LiveSession(SimulatorDevice(preset="clean", realtime=False, seed=3, lead_in_s=8.0))
    s.run(6.0)  # rest only
    snap = s.snapshot(5.0)
    assert snap is not None
    thr = snap.thresholds
    assert np.isfinite(thr).all() and (thr > 0).all()
    assert (snap.scale >= DISPLAY_FLOOR_X_THRESHOLD * thr * 0.999).all()
    noise = np.nanpercentile(np.abs(snap.filtered), 99.5, axis=0)
    assert (noise < 0.5 * snap.scale).all()  # the noise fills under half a lane
