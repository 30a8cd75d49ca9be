"""Named simulator presets, kept apart from the simulator so that the command line can list
them without importing numpy/scipy (headless commands start fast)."""

from __future__ import annotations

from typing import Any

#: named presets (overrides of the defaults); "clean" and "hard" are used by the benchmarks
PRESETS: dict[str, dict[str, Any]] = {
    # realistic good recording: defaults, without motion transients
    "clean": {"snr_db": (14.0, 26.0), "transient_rate_per_min": 0.0},
    # poor skin contact, moving subject, electrodes close to the heart
    "hard": {
        "snr_db": (6.0, 14.0),
        "hum_uv": 10.0,
        "wander_uv": 40.0,
        "ecg_rel": 4.0,
        "transient_rate_per_min": 4.0,
        "transient_uv": 500.0,
    },
    # noise- and artefact-free activation, for checking algorithms against the truth
    "ideal": {
        "snr_db": None,
        "hum_uv": 0.0,
        "wander_uv": 0.0,
        "ecg_rel": 0.0,
        "transient_rate_per_min": 0.0,
    },
}
