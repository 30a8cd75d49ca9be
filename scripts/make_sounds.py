"""Generate the audible cue WAVs in ``resources/sounds/`` (16-bit mono, 44.1 kHz, <= 0.5 s).

Run from the repository root: ``python scripts/make_sounds.py [out_dir]``. The output is
deterministic (no randomness), so regenerating gives byte-identical files.

- glute_first: a pleasant rising two-note chime (E5 then A5, bell-like decay): "well done".
- lumbar_first: a low descending buzz (190 -> 130 Hz, harmonic-rich): clearly "not that".
- simultaneous: a single mid tone (C5): neutral.
- undetermined: no file; the data could not decide, so the athlete hears nothing.
"""

from __future__ import annotations

import logging
import sys
import wave
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FS = 44_100
PEAK = 0.6  # of full scale: loud enough over gym noise, with headroom so nothing clips
FADE_S = 0.006  # raised-cosine fades at both ends so the cue starts and stops without a click
OUT_DIR = Path(__file__).resolve().parents[1] / "resources" / "sounds"


def _t(duration_s: float) -> np.ndarray:
    return np.arange(round(duration_s * FS)) / FS


def _fade(x: np.ndarray, fade_s: float = FADE_S) -> np.ndarray:
    n = min(round(fade_s * FS), len(x) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    y = x.copy()
    y[:n] *= ramp
    y[len(y) - n :] *= ramp[::-1]
    return y


def _bell(freq: float, duration_s: float) -> np.ndarray:
    """A soft bell: fundamental plus a quiet octave, exponential decay."""
    t = _t(duration_s)
    env = np.exp(-t / 0.09)
    return env * (np.sin(2 * np.pi * freq * t) + 0.25 * np.sin(2 * np.pi * 2 * freq * t))


def glute_first() -> np.ndarray:
    # Two notes that overlap a little, so the chime sounds connected rather than two beeps.
    a = _bell(659.25, 0.30)
    b = _bell(880.0, 0.30)
    out = np.zeros(round(0.42 * FS))
    out[: len(a)] += a
    start = round(0.12 * FS)
    out[start : start + len(b)] += b
    return out


def lumbar_first() -> np.ndarray:
    # Falling pitch plus odd harmonics (square-ish) reads as a "buzzer" across the room.
    t = _t(0.38)
    freq = np.linspace(190.0, 130.0, len(t))
    phase = 2 * np.pi * np.cumsum(freq) / FS
    x = sum(np.sin(k * phase) / k for k in (1, 3, 5, 7))
    env = np.minimum(1.0, 1.3 - t / 0.38)  # hold, then taper over the last third
    return env * x


def simultaneous() -> np.ndarray:
    t = _t(0.25)
    env = np.exp(-t / 0.15)
    return env * np.sin(2 * np.pi * 523.25 * t)


SOUNDS = {"glute_first": glute_first, "lumbar_first": lumbar_first, "simultaneous": simultaneous}


def to_pcm16(x: np.ndarray) -> bytes:
    y = _fade(x)
    y = PEAK * y / np.max(np.abs(y))
    return np.round(y * 32767).astype("<i2").tobytes()


def write_wav(path: Path, x: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FS)
        w.writeframes(to_pcm16(x))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, make in SOUNDS.items():
        path = out_dir / f"{name}.wav"
        write_wav(path, make())
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
