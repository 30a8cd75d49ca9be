"""Write ``dsp/filter_table.py``: the filter designs a start of fireorder makes, stored.

``python -m bench.filter_table`` builds, with every filter designed (``USE_STORED = False``),
the live pipeline (all four roles) and the quality monitor for the default settings at each
rate in :data:`RATES` and each mains frequency in :data:`LINES`, records every
``butter_sos`` / ``notch_sos`` call with its result and writes them as Python literals (a
float's ``repr`` reads back to the same bits). Run it after a change of the design code or of
the default settings; tests/test_filter_table.py fails until then.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dsp import filters
from dsp.contract import Role, StreamInfo
from dsp.pipeline import Pipeline
from dsp.quality import QualityMonitor, QualitySettings
from dsp.settings import DspSettings

#: the common rates, and the ones a CSV's time column at 1000 or 2000 Hz gives (written to
#: 6 decimals, the span over the samples is often one unit in the last place off)
BASE_RATES = (1000.0, 2000.0, 2048.0)
RATES = tuple(
    sorted(
        {*BASE_RATES}
        | {math.nextafter(f, math.inf) for f in (1000.0, 2000.0)}
        | {math.nextafter(f, -math.inf) for f in (1000.0, 2000.0)}
    )
)
LINES = (50.0, 60.0)
TABLE = Path(__file__).resolve().parents[1] / "dsp" / "filter_table.py"


@contextmanager
def recording() -> Iterator[dict[str, list[list[float]]]]:
    """Design everything (nothing from the table) and record each design call's result."""
    calls: dict[str, list[list[float]]] = {}
    butter, notch = filters._design_butter, filters._design_notch

    def rec_butter(order: int, freqs: Any, btype: str, fs: float) -> Any:
        sos = butter(order, freqs, btype, fs)
        calls[filters.butter_key(order, freqs, btype, fs)] = sos.tolist()
        return sos

    def rec_notch(freq: float, q: float, fs: float) -> Any:
        sos = notch(freq, q, fs)
        calls[filters.notch_key(freq, q, fs)] = sos.tolist()
        return sos

    before = filters.USE_STORED
    filters.USE_STORED = False
    filters._design_butter, filters._design_notch = rec_butter, rec_notch  # type: ignore[assignment]
    try:
        yield calls
    finally:
        filters._design_butter, filters._design_notch = butter, notch  # type: ignore[assignment]
        filters.USE_STORED = before


def start(fs: float, line: float) -> None:
    """What ``analyze`` and a live session build before the first sample."""
    names = ("glute_l", "glute_r", "lumbar_l", "lumbar_r")
    roles = {Role(n): i for i, n in enumerate(names)}
    info = StreamInfo(fs, names, roles)
    settings = DspSettings(notch_hz=line)
    Pipeline(info, settings, display=False)
    Pipeline(info, settings, display=True)
    QualityMonitor(fs, len(names), QualitySettings(line_freq=line))


def designs() -> dict[str, list[list[float]]]:
    with recording() as calls:
        for fs in RATES:
            for line in LINES:
                start(fs, line)
    return dict(sorted(calls.items()))


def source(table: dict[str, list[list[float]]]) -> str:
    lines = [
        "# ruff: noqa: E501",
        '"""Filter designs of a fireorder start, stored: written by',
        "``python -m bench.filter_table``, do not edit. A line per design call (its key, as",
        "``dsp.filters.butter_key`` / ``notch_key`` write it), then its second-order sections,",
        'each b0 b1 b2 a0 a1 a2 (``repr`` of each float: the same bits read back)."""',
        "",
        'TABLE = """\\',
    ]
    for key, sos in table.items():
        lines.append(f"{key}: " + " ".join(repr(v) for row in sos for v in row))
    lines.append('"""')
    return "\n".join(lines) + "\n"


def main() -> None:
    table = designs()
    TABLE.write_text(source(table))
    print(f"wrote {TABLE}: {len(table)} designs")


if __name__ == "__main__":
    main()
