"""Named simulator presets, kept apart from the simulator so that the command line can list
them without importing numpy/scipy (headless commands start fast)."""

from __future__ import annotations

from typing import Any

# A good recording: skin shaved, abraded and cleaned, fresh gel electrodes, subject relaxed.
# Rest noise floor 2.5-4 uV RMS over the amplifier band (~2-3.5 uV in 20-450 Hz), what a good
# preparation gives (Konrad 2005, ABC of EMG, signal check: a few uV; Merletti & Cerone 2020:
# front-end noise < 1 uV RMS plus electrode-skin noise); mains residue well below that floor
# (0.5-1.6 uV RMS at 50 Hz); ECG residue on the lumbar erector spinae of a well placed pair
# (R wave ~0.3 x the plateau RMS, ~15-20 uV before the 20 Hz high-pass). No motion transients.
_CLEAN: dict[str, Any] = {
    "noise_uv": (2.5, 4.0),
    "hum_uv": 1.5,
    "ecg_rel": 0.3,
    "transient_rate_per_min": 0.0,
}

#: named presets (overrides of the defaults); "clean" and "hard" are used by the benchmarks.
#: The fault presets are the clean recording with exactly one thing wrong, for the signal check.
PRESETS: dict[str, dict[str, Any]] = {
    "clean": _CLEAN,
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
    # --- faults (clean otherwise) ---------------------------------------------------------
    # poor ground/reference contact or a mains lead next to the cables: 50 Hz at 15-45 uV
    "hum": {**_CLEAN, "hum_uv": 30.0},
    # left glute electrode off (snap lead unclipped): that channel reads a flat line
    "lead_off": {**_CLEAN, "lead_off": ("glute_l",)},
    # amplifier gain too high for the subject: the front end saturates at +-150 uV, so every
    # glute and lumbar burst (peaks ~3.5 x the 60-100 uV plateau RMS) is clipped
    "clipping": {**_CLEAN, "rail_uv": 150.0},
    # lumbar pair placed high and near the spine's midline: the R wave is ~4x the plateau RMS
    "ecg": {**_CLEAN, "ecg_rel": 4.0},
    # skin not prepared (oily, hairy) or dried electrodes: rest floor 15-25 uV RMS
    "noisy": {**_CLEAN, "noise_uv": (15.0, 25.0)},
}
