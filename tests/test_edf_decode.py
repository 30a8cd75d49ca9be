"""EDF/BDF samples decoded with numpy are pyedflib's values, to the bit.

``devices.files.edf_reader`` reads the header and annotations through pyedflib but decodes the
data records itself (pyedflib's per-sample reads were most of the time of reading a long
BDF). Every file here is read both ways and compared exactly; a layout the decoder does not
recognise must fall back to pyedflib.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

pyedflib = pytest.importorskip("pyedflib")

from devices.files import edf_reader  # noqa: E402
from devices.files.edf_reader import _check_header, _Samples, read_edf  # noqa: E402

EDF_RANGE = (-32768, 32767)
BDF_RANGE = (-8388608, 8388607)


def header(label: str, fs: float, phys: tuple[float, float], dig: tuple[int, int], **kw: str):
    return {
        "label": label,
        "dimension": kw.get("dim", "uV"),
        "sample_frequency": fs,
        "physical_min": phys[0],
        "physical_max": phys[1],
        "digital_min": dig[0],
        "digital_max": dig[1],
        "transducer": kw.get("transducer", ""),
        "prefilter": "",
    }


def write(path: Path, signals, headers, file_type: int, annotations=()) -> Path:
    w = pyedflib.EdfWriter(str(path), len(signals), file_type=file_type)
    try:
        w.setSignalHeaders(headers)
        w.setStartdatetime(datetime(2024, 5, 17, 10, 30, 0))
        for a in annotations:
            w.writeAnnotation(*a)
        w.writeSamples([np.asarray(s, dtype=np.float64) for s in signals])
    finally:
        w.close()
    return path


def pyedflib_values(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    r = pyedflib.EdfReader(str(path))
    try:
        return [(r.readSignal(i), r.readSignal(i, digital=True)) for i in range(r.signals_in_file)]
    finally:
        r.close()


def decoded_values(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    r = pyedflib.EdfReader(str(path))
    try:
        s = _Samples(r, str(path), _check_header(str(path)))
        fast = s._map is not None
        return [(s.physical(i), s.digital(i)) for i in range(r.signals_in_file)], fast
    finally:
        r.close()


FILE_TYPES = {
    "edf": (pyedflib.FILETYPE_EDF, EDF_RANGE),
    "edf+": (pyedflib.FILETYPE_EDFPLUS, EDF_RANGE),
    "bdf": (pyedflib.FILETYPE_BDF, BDF_RANGE),
    "bdf+": (pyedflib.FILETYPE_BDFPLUS, BDF_RANGE),
}


@pytest.mark.parametrize("kind", list(FILE_TYPES))
def test_decoded_samples_are_pyedflib_values(tmp_path: Path, kind: str) -> None:
    file_type, (dmin, dmax) = FILE_TYPES[kind]
    rng = np.random.default_rng(1)
    n = 3000
    signals = [
        rng.normal(0, 300, n),  # uV, full scale both ways
        np.clip(rng.normal(0, 2, n), -5, 5),  # mV
        rng.normal(0, 1e-3, n),  # V
        rng.normal(2, 1, n // 2),  # another rate, an asymmetric range
        np.linspace(-3276.8, 3276.7, n),  # the extremes
    ]
    headers = [
        header("glute_l", 1000, (-3276.8, 3276.7), (dmin, dmax)),
        header("EXG2", 1000, (-5, 5), (dmin, dmax), dim="mV", transducer="AgCl role=lumbar_r"),
        header("EXG3", 1000, (-0.005, 0.005), (dmin, dmax), dim="V"),
        header("acc", 500, (-7.3, 11.1), (dmin // 2, dmax // 3), dim="g"),
        header("ramp", 1000, (-3276.8, 3276.7), (dmin, dmax)),
    ]
    ann = [(0.5, -1, "rep 1"), (1.25, 0.75, "rep 2")] if kind.endswith("+") else ()
    path = write(tmp_path / f"r.{kind[:3]}", signals, headers, file_type, ann)
    ours, fast = decoded_values(path)
    assert fast, "the numpy decoder should handle a plain pyedflib file"
    for (phys, dig), (phys_ref, dig_ref) in zip(ours, pyedflib_values(path), strict=True):
        np.testing.assert_array_equal(phys, phys_ref)
        np.testing.assert_array_equal(dig, dig_ref)


def test_status_channel_and_whole_recording(tmp_path: Path) -> None:
    fs, n = 512, 2048
    codes = np.zeros(n)
    codes[100:110], codes[600:605] = 20, 57
    status = -6815744 + codes
    status_h = header("Status", fs, (-8388608, 8388607), BDF_RANGE, dim="Boolean")
    status_h["transducer"] = "Triggers and Status"
    emg = 100 * np.sin(np.arange(n) / 10)
    path = write(
        tmp_path / "s.bdf",
        [emg, status],
        [header("EXG1", fs, (-262144, 262143), BDF_RANGE), status_h],
        pyedflib.FILETYPE_BDFPLUS,
        [(1.0, 0.0, "start")],
    )
    rec = read_edf(str(path), fs=None, units=None)
    np.testing.assert_array_equal(rec.data[:, 1], codes)
    np.testing.assert_array_equal(rec.data[:, 0], pyedflib_values(path)[0][0])


def test_unrecognised_layout_falls_back_to_pyedflib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path / "f.edf",
        [np.sin(np.arange(2000) / 7) * 100, np.cos(np.arange(2000) / 5) * 50],
        [header("A", 1000, (-200, 200), EDF_RANGE), header("B", 1000, (-100, 100), EDF_RANGE)],
        pyedflib.FILETYPE_EDFPLUS,
    )
    fast = read_edf(str(path), fs=None, units=None)
    monkeypatch.setattr(_Samples, "_signal_map", lambda self: None)
    slow = read_edf(str(path), fs=None, units=None)
    np.testing.assert_array_equal(fast.data, slow.data)
    assert fast.channel_names == slow.channel_names and fast.units == slow.units


def test_reading_a_csv_does_not_need_pyedflib() -> None:
    assert not hasattr(edf_reader, "pyedflib")  # imported inside the EDF reader only
