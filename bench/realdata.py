"""fireorder on the real recordings of ``../shared/data`` (a plausibility check, no truth).

* ``myonset/example_data.bdf`` (BioSemi, 2048 Hz): bipolar EXG1-EXG2 and EXG3-EXG4 over hand
  muscles of a choice-reaction task, mapped to glute_l and lumbar_l only to exercise the
  pipeline. ``example_events.csv`` holds the triggers; following the myonset tutorial, codes
  11/12/21/22 are the stimuli (its epochs are cut on them) and 100/200 the button responses.
  Reported: onsets per channel, EMG onset minus the nearest preceding stimulus, and for each
  response code how often a channel had an onset in the 500 ms before the button press.
* ``biosppy/emg_1.txt`` (clear bursts) and ``biosppy/emg.txt`` (weak, "nothing happens"),
  BITalino, 1000 Hz, one channel analysed as both roles by duplicating it (the lumbar copy gets
  the extra ECG high-pass, so the two copies can differ).

Files are read with ``devices.files`` (falling back to pyedflib/numpy if that is missing).
Absent data are skipped; any failure is recorded, not raised.
"""

from __future__ import annotations

import csv
import importlib
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench import common
from dsp.analysis import analyze
from dsp.contract import Role, StreamInfo
from dsp.settings import DspSettings

log = logging.getLogger(__name__)

STIMULUS_CODES = (11, 12, 21, 22)
RESPONSE_CODES = (100, 200)
MAX_STIM_LATENCY_S = 3.0
RESPONSE_WINDOW_S = 0.5

Array = NDArray[np.float64]


def _files() -> Any:
    """``devices.files`` if present, else None (then pyedflib/numpy read the files)."""
    try:
        return importlib.import_module("devices.files")
    except ImportError:
        return None


def _read_bdf_pairs(path: Path) -> tuple[Array, list[str], float]:
    files = _files()
    if files is None:
        pyedflib = importlib.import_module("pyedflib")
        with pyedflib.EdfReader(str(path)) as f:
            labels = f.getSignalLabels()
            fs = float(f.getSampleFrequency(0))
            sig = {lab: f.readSignal(i) for i, lab in enumerate(labels)}
        data = np.column_stack([sig["EXG1"] - sig["EXG2"], sig["EXG3"] - sig["EXG4"]])
        return data, ["EXG1-EXG2", "EXG3-EXG4"], fs
    rec = files.read_recording(path)
    data, names = files.derive_channels(rec, {"glute_l": "EXG1-EXG2", "lumbar_l": "EXG3-EXG4"})
    return data, names, rec.fs


def _read_text_channel(path: Path) -> tuple[Array, float]:
    files = _files()
    if files is None:
        fs = 1000.0
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if "Sampling Rate" in line:
                    fs = float(line.split(":=")[1])
        return np.loadtxt(path, comments="#", ndmin=2)[:, 0], fs
    rec = files.read_recording(path)
    return np.asarray(rec.data[:, 0], dtype=float), rec.fs


def read_events(path: Path) -> list[tuple[float, int]]:
    """(time s, code) rows of a myonset events CSV (``sample,time,code,chan``)."""
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.append((float(row["time"]), int(float(row["code"]))))
    return out


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values)
    return {
        "n": len(values),
        "min": float(arr.min()),
        "p25": float(np.percentile(arr, 25)),
        "median": float(np.median(arr)),
        "p75": float(np.percentile(arr, 75)),
        "max": float(arr.max()),
    }


def event_check(onsets_s: list[float], events: list[tuple[float, int]]) -> dict[str, Any]:
    stim = sorted(t for t, c in events if c in STIMULUS_CODES)
    latencies: list[float] = []
    unrelated = 0
    for t in onsets_s:
        before = [s for s in stim if s <= t]
        if before and t - before[-1] <= MAX_STIM_LATENCY_S:
            latencies.append((t - before[-1]) * 1000.0)
        else:
            unrelated += 1
    responses: dict[str, Any] = {}
    for code in RESPONSE_CODES:
        times = [t for t, c in events if c == code]
        leads = []
        for r in times:
            prior = [o for o in onsets_s if r - RESPONSE_WINDOW_S <= o <= r]
            if prior:
                leads.append((r - prior[-1]) * 1000.0)
        responses[str(code)] = {
            "responses": len(times),
            "with_onset_in_500ms_before": len(leads),
            "onset_to_response_ms": _stats(leads),
        }
    return {
        "stimulus_to_onset_ms": _stats(latencies),
        "onsets_without_stimulus_in_3s": unrelated,
        "by_response_code": responses,
    }


def _analyse(data: Array, names: list[str], fs: float, source: str) -> dict[str, Any]:
    info = StreamInfo(fs, tuple(names), {Role.GLUTE_L: 0, Role.LUMBAR_L: 1}, source=source)
    t0 = time.perf_counter()
    result = analyze(data, info, DspSettings())
    seconds = time.perf_counter() - t0
    onsets = {names[ch]: [i / fs for i in result.onsets.get(ch, [])] for ch in range(len(names))}
    return {
        "duration_s": data.shape[0] / fs,
        "fs": fs,
        "seconds": seconds,
        "onsets": {k: len(v) for k, v in onsets.items()},
        "onset_times_s": {k: [round(t, 3) for t in v] for k, v in onsets.items()},
        "reps": result.summary(),
    }


def run(data_dir: Path | None = None) -> dict[str, Any]:
    data_dir = data_dir or common.SHARED_DATA
    out: dict[str, Any] = {"data_dir": str(data_dir), "files": {}}
    if not data_dir.is_dir():
        out["skipped"] = "data folder absent"
        log.info("no real data at %s: skipped", data_dir)
        return out
    bdf = data_dir / "myonset" / "example_data.bdf"
    if bdf.is_file():
        try:
            data, names, fs = _read_bdf_pairs(bdf)
            res = _analyse(data, names, fs, "myonset example_data.bdf")
            events_path = bdf.with_name("example_events.csv")
            if events_path.is_file():
                events = read_events(events_path)
                res["events"] = {
                    name: event_check(times, events) for name, times in res["onset_times_s"].items()
                }
            res["mapping"] = {"glute_l": names[0], "lumbar_l": names[1]}
            out["files"]["myonset/example_data.bdf"] = res
        except Exception as exc:  # report, never crash the benchmark
            log.exception("real data %s failed", bdf)
            out["files"]["myonset/example_data.bdf"] = {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
    for name in ("emg_1.txt", "emg.txt"):
        path = data_dir / "biosppy" / name
        if not path.is_file():
            continue
        key = f"biosppy/{name}"
        try:
            x, fs = _read_text_channel(path)
            data = np.column_stack([x, x])
            res = _analyse(data, ["EMG (as glute_l)", "EMG (as lumbar_l)"], fs, key)
            out["files"][key] = res
        except Exception as exc:
            log.exception("real data %s failed", path)
            out["files"][key] = {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
    return out


def markdown(real: dict[str, Any]) -> str:
    lines = ["## Real recordings (fireorder, default settings; no truth)", ""]
    if real.get("skipped"):
        return "\n".join([*lines, f"Skipped: {real['skipped']} ({real['data_dir']})."])
    rows = []
    for key, res in real["files"].items():
        if "error" in res:
            rows.append([key, "–", "–", f"**crashed**: {res['error']}"])
            continue
        counts = ", ".join(f"{k}: {v}" for k, v in res["onsets"].items())
        reps = res["reps"]
        verdicts = ", ".join(
            f"{reps[o]} {o}"
            for o in ("glute_first", "lumbar_first", "simultaneous", "undetermined")
            if reps.get(o)
        )
        rows.append(
            [
                key,
                f"{res['duration_s']:.1f} s @ {res['fs']:g} Hz",
                counts,
                f"{reps['reps']} reps ({verdicts or 'none'})",
            ]
        )
    lines.append(common.md_table(["file", "length", "onsets found", "reps / verdicts"], rows))
    bdf = real["files"].get("myonset/example_data.bdf", {})
    if "events" in bdf:
        lines += ["", "myonset BDF against its triggers (stimuli 11/12/21/22, responses 100/200):"]
        for ch, ev in bdf["events"].items():
            st = ev["stimulus_to_onset_ms"]
            lat = (
                f"stimulus→onset median {st['median']:.0f} ms "
                f"(IQR {st['p25']:.0f}–{st['p75']:.0f}, "
                f"range {st['min']:.0f}–{st['max']:.0f}, n={st['n']})"
                if st["n"]
                else "no onset after a stimulus"
            )
            resp = "; ".join(
                f"code {code}: onset in the 500 ms before {r['with_onset_in_500ms_before']}/"
                f"{r['responses']} presses"
                + (
                    f" (median {r['onset_to_response_ms']['median']:.0f} ms before)"
                    if r["onset_to_response_ms"]["n"]
                    else ""
                )
                for code, r in ev["by_response_code"].items()
            )
            lines.append(
                f"- {ch}: {lat}; {ev['onsets_without_stimulus_in_3s']} onsets with no stimulus in "
                f"the 3 s before; {resp}"
            )
    crashed = [k for k, r in real["files"].items() if "error" in r]
    lines += ["", "Nothing crashed." if not crashed else f"Crashed: {', '.join(crashed)}."]
    return "\n".join(lines)
