"""Hypothesis strategies for the fuzz suite (tests/test_fuzz_*.py): valid files of every format
the readers know, hostile mutations of them, and hostile command-line values.

A mutation starts from a file that reads (so that it reaches deep into the parser, not just the
magic-bytes check) and changes one thing a broken writer, a hand edit or a bad disk would: a
header number, the size, a few bytes, the text encoding, the JSON sidecar.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import configuration
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "recordings" / "demo_glute_first.bdf"

# Hypothesis (6.1xx) caches the constants it finds in the code under test, and keeps its
# example database, under ./.hypothesis: the suite leaves the checkout alone, so both go to a
# temp folder (for the whole run: it is one setting). HYPOTHESIS_STORAGE_DIRECTORY still wins.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "fireorder-hypothesis")

#: numbers and non-numbers a field that should hold a number may hold instead
HOSTILE_NUMBERS = (
    "nan", "NaN", "inf", "-inf", "Infinity", "-1", "0", "-0", "1e300", "-1e300", "1e-300",
    "1e308", "99999999", "2147483648", "18446744073709551617", "1" * 40, "", " ", "abc",
    "0x10", "1_0", "1,5", "+1", "1e", ".", "--1", "١٢", "１２", "²", "é", "µ", "\u2028",
    "1 2",
)
#: what a text field (a label, a unit, a name) may hold instead
HOSTILE_TEXT = (
    "", " ", "x\ny", "a\rb", "\x00", "\x1b[31m", "\u2028", "\x85", "µV", "ÿÿÿÿ", "Δ",
    "\ufeff", "\t", "#", ",", ";", '"', "'", "role=glute_l", "A-B", "-", "glute_l",
)


@dataclass(frozen=True, repr=False)
class Seed:
    """A valid file, how to read it (reader keyword arguments) and how to map it."""

    name: str  # file name, its extension picks the reader as a user's file would
    data: bytes
    family: str  # "edf" (fixed header), "text", "xdf"
    read_kwargs: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, str] | None = None  # None: the file names its roles
    sidecar: bytes | None = None  # FILE.json beside it (fireorder recordings)
    cli_args: tuple[str, ...] = ()  # the same as flags

    def __repr__(self) -> str:
        return f"Seed({self.name})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


@dataclass(frozen=True, repr=False)
class Case:
    """A mutated seed, ready to be written to a folder."""

    seed: Seed
    what: str  # the mutation, for the failure message
    data: bytes
    sidecar: bytes | None
    sparse_size: int | None = None  # extend the file to this size without writing (a hole)

    def __repr__(self) -> str:  # (the bytes would make hypothesis' report unreadable)
        return f"Case({self.seed.name}: {self.what})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # what hypothesis prints
        p.text(repr(self))

    def write(self, folder: Path) -> Path:
        path = folder / self.seed.name
        path.write_bytes(self.data)
        if self.sparse_size is not None:
            with open(path, "r+b") as f:
                f.truncate(self.sparse_size)
        if self.sidecar is not None:
            path.with_name(path.name + ".json").write_bytes(self.sidecar)
        return path


# ----------------------------------------------------------------------------- valid seeds


def _small_fireorder_bdf(records: int = 16) -> bytes:
    """The demo recording cut to its first ``records`` data records (its header says so)."""
    raw = DEMO.read_bytes()
    header_bytes = int(raw[184:192])
    n_sig = int(raw[252:256])
    spr_at = 256 + n_sig * (16 + 80 + 8 * 5 + 80)
    spr = [int(raw[spr_at + 8 * i : spr_at + 8 * i + 8]) for i in range(n_sig)]
    record_bytes = 3 * sum(spr)
    head = raw[:236] + f"{records:<8d}".encode() + raw[244:header_bytes]
    return head + raw[header_bytes : header_bytes + records * record_bytes]


def _pyedflib_file(path: Path, bdf: bool) -> bytes:
    import pyedflib

    fs, n = 1000, 2000
    t = np.arange(n) / fs
    burst = (np.sin(2 * np.pi * 0.5 * t) > 0.6).astype(float)
    rng = np.random.default_rng(3)
    signals = [burst * rng.normal(0, 80, n) + rng.normal(0, 3, n) for _ in range(2)]
    dmax = 8388607 if bdf else 32767
    headers = [
        {
            "label": label,
            "dimension": "uV",
            "sample_frequency": fs,
            "physical_max": 2000.0,
            "physical_min": -2000.0,
            "digital_max": dmax,
            "digital_min": -dmax - 1,
            "transducer": f"AgAgCl role={label}",
            "prefilter": "HP:10Hz",
        }
        for label in ("glute_l", "lumbar_l")
    ]
    kind = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    writer = pyedflib.EdfWriter(str(path), 2, file_type=kind)
    try:
        writer.setSignalHeaders(headers)
        writer.setStartdatetime(datetime(2024, 5, 17, 10, 30, 0))
        writer.writeAnnotation(0.5, 0.2, "rep")
        writer.writeSamples(signals)
    finally:
        writer.close()
    return path.read_bytes()


def _csv_text() -> str:
    rng = np.random.default_rng(5)
    rows = [
        f"{k / 1000:.3f},{rng.normal(0, 20):.2f},{rng.normal(0, 20):.2f}" for k in range(1500)
    ]
    return "# roles: glute_l=EMG1, lumbar_l=EMG2\ntime,EMG1 [uV],EMG2 (mV)\n" + "\n".join(rows)


def _opensignals_text() -> str:
    meta = {
        "00:07:80:3B:46:61": {
            "sensor": ["EMG", "EMG"],
            "device name": "00:07:80:3B:46:61",
            "column": ["nSeq", "I1", "I2", "O1", "O2", "A1", "A2"],
            "sync interval": 2,
            "time": "14:20:29.617",
            "date": "2024-3-9",
            "channels": [1, 2],
            "device": "bitalino_rev",
            "sampling rate": 1000,
            "label": ["A1", "A2"],
            "resolution": [4, 1, 1, 1, 1, 10, 10],
        }
    }
    lines = ["# OpenSignals Text File Format. Version 1", "# " + json.dumps(meta), "# EndOfHeader"]
    lines += [f"{k % 16}\t0\t0\t0\t0\t{512 + k % 50}\t{500 - k % 30}\t" for k in range(1200)]
    return "\n".join(lines) + "\n"


def _simple_text() -> str:
    head = "# Simple Text Format\n# Sampling Rate (Hz):= 1000.00\n# Resolution:= 10\n"
    head += "# Labels:= EMG1 EMG2\n"
    return head + "".join(f"{500 + k % 40} {520 - k % 25}\n" for k in range(1200))


def _xdf() -> bytes:
    from tests.test_import_formats import CHANNELS, emg_block, xdf_bytes

    values, stamps = emg_block(2000)
    return xdf_bytes(values, stamps, [(100.5, "squeeze")], channels=CHANNELS)


def _brainflow(path: Path) -> bytes:
    from brainflow.board_shim import BoardIds

    from tests.test_import_formats import brainflow_file

    data = np.round(np.random.default_rng(2).normal(0, 50, (600, 16)), 3)
    return brainflow_file(path, BoardIds.SYNTHETIC_BOARD, data, markers={100: 3}).read_bytes()


@functools.cache
def seeds() -> tuple[Seed, ...]:
    """Every valid seed file (built once per test session)."""
    with tempfile.TemporaryDirectory() as tmp:
        edf = _pyedflib_file(Path(tmp) / "a.edf", bdf=False)
        bdf = _pyedflib_file(Path(tmp) / "a.bdf", bdf=True)
        brainflow = _brainflow(Path(tmp) / "b.csv")
    sidecar = DEMO.with_name(DEMO.name + ".json").read_bytes()
    os_map = {"glute_l": "A1", "lumbar_l": "A2"}
    return (
        Seed("rec.bdf", _small_fireorder_bdf(), "edf", sidecar=sidecar),
        Seed("plain.edf", edf, "edf"),
        Seed("plain.bdf", bdf, "edf"),
        Seed("emg.csv", _csv_text().encode(), "text"),
        Seed("os.txt", _opensignals_text().encode(), "text", channels=os_map),
        Seed("simple.txt", _simple_text().encode(), "text",
             channels={"glute_l": "EMG1", "lumbar_l": "EMG2"}),
        Seed("emg.xdf", _xdf(), "xdf"),
        Seed("bf.csv", brainflow, "text", read_kwargs={"board": "SYNTHETIC_BOARD"},
             channels={"glute_l": "EMG1", "lumbar_l": "EMG2"},
             cli_args=("--board", "SYNTHETIC_BOARD")),
    )


def seed_named(name: str) -> Seed:
    return next(s for s in seeds() if s.name == name)


# ------------------------------------------------------------------------------- mutations

# EDF/BDF main header fields: (name, offset, width)
_MAIN_FIELDS = (
    ("version", 0, 8), ("patient", 8, 80), ("recording", 88, 80), ("start date", 168, 8),
    ("start time", 176, 8), ("header bytes", 184, 8), ("reserved", 192, 44),
    ("records", 236, 8), ("record duration", 244, 8), ("signals", 252, 4),
)
# per-signal fields, each stored for all signals in turn
_SIGNAL_FIELDS = (
    ("label", 16), ("transducer", 80), ("dimension", 8), ("physical min", 8),
    ("physical max", 8), ("digital min", 8), ("digital max", 8), ("prefilter", 80),
    ("samples per record", 8), ("signal reserved", 32),
)
_NUMERIC_FIELDS = {
    "start date", "start time", "header bytes", "records", "record duration", "signals",
    "physical min", "physical max", "digital min", "digital max", "samples per record",
}


def edf_fields(data: bytes) -> list[tuple[str, int, int]]:
    """(name, offset, width) of every header field of a valid EDF/BDF file."""
    n_sig = int(data[252:256])
    out = list(_MAIN_FIELDS)
    pos = 256
    for name, width in _SIGNAL_FIELDS:
        for i in range(n_sig):
            out.append((f"{name} of signal {i + 1}", pos + i * width, width))
        pos += width * n_sig
    return out


def _encode_field(value: str, width: int) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")[:width]
    return raw.ljust(width, b" ")


_token = st.sampled_from(HOSTILE_NUMBERS) | st.text(max_size=10) | st.sampled_from(HOSTILE_TEXT)


@st.composite
def edf_field_change(draw: st.DrawFn, seed: Seed) -> Case:
    fields = edf_fields(seed.data)
    name, at, width = draw(st.sampled_from(fields))
    numeric = any(name.startswith(n) for n in _NUMERIC_FIELDS)
    value = draw(st.sampled_from(HOSTILE_NUMBERS) if numeric else _token)
    if draw(st.booleans()) and numeric:
        # a number that parses but lies: off by one, scaled, negated
        old = seed.data[at : at + width].decode("latin-1").strip()
        try:
            n = float(old)
        except ValueError:
            n = 1.0
        value = draw(st.sampled_from([n + 1, n - 1, n * 1000, -n, n / 1000, n * 2**31]))
        value = f"{value:g}" if not float(value).is_integer() else str(int(value))
    data = seed.data[:at] + _encode_field(value, width) + seed.data[at + width :]
    return Case(seed, f"{name} = {value!r}", data, seed.sidecar)


_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@st.composite
def number_change(draw: st.DrawFn, seed: Seed) -> Case:
    """Any number written as text in the file (a header value, a time stamp, an XML field)."""
    limit = draw(st.sampled_from([512, 4096, len(seed.data)]))
    spans = [m.span() for m in _NUMBER.finditer(seed.data, 0, min(limit, len(seed.data)))]
    if not spans:
        return Case(seed, "unchanged", seed.data, seed.sidecar)
    a, b = draw(st.sampled_from(spans))
    value = draw(st.sampled_from(HOSTILE_NUMBERS))
    raw = value.encode("utf-8")
    if seed.family == "xdf":  # keep chunk lengths right: the value reaches the XML parser
        raw = raw[: b - a].ljust(b - a, b" ")
    data = seed.data[:a] + raw + seed.data[b:]
    return Case(seed, f"number {seed.data[a:b]!r} at {a} -> {value!r}", data, seed.sidecar)


@st.composite
def size_change(draw: st.DrawFn, seed: Seed) -> Case:
    how = draw(st.sampled_from(["truncate", "extend", "repeat", "sparse", "header-only"]))
    data = seed.data
    if how == "truncate":
        cut = draw(st.integers(0, len(data) - 1))
        return Case(seed, f"cut to {cut} bytes", data[:cut], seed.sidecar)
    if how == "header-only":
        cut = draw(st.sampled_from([256, 512, 768, 1024, 1280]))
        return Case(seed, f"cut to {cut} bytes", data[:cut], seed.sidecar)
    if how == "extend":
        tail = draw(st.binary(min_size=1, max_size=3000))
        return Case(seed, f"{len(tail)} bytes appended", data + tail, seed.sidecar)
    if how == "repeat":
        k = draw(st.integers(2, 4))
        return Case(seed, f"content repeated {k} times", data * k, seed.sidecar)
    # a hole: what a crashed writer or a pre-allocating tool leaves (reads as zeros)
    extra = draw(st.sampled_from([1, 3, 4096, 2**20 + 1, 2**31, 2**36, 2**40]))
    return Case(seed, f"sparse +{extra} bytes", data, seed.sidecar, len(data) + extra)


@st.composite
def byte_flips(draw: st.DrawFn, seed: Seed) -> Case:
    data = bytearray(seed.data)
    n = draw(st.integers(1, 8))
    region = draw(st.sampled_from([256, 2048, len(data)]))
    changed = []
    for _ in range(n):
        i = draw(st.integers(0, min(region, len(data)) - 1))
        data[i] = draw(st.integers(0, 255))
        changed.append(i)
    return Case(seed, f"bytes changed at {sorted(changed)}", bytes(data), seed.sidecar)


_ENCODINGS = ("utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "latin-1", "utf-32", "cp1252")


@st.composite
def encoding_change(draw: st.DrawFn, seed: Seed) -> Case:
    text = seed.data.decode("utf-8")
    how = draw(st.sampled_from(["encode", "crlf", "cr", "nel", "insert"]))
    if how == "crlf":
        return Case(seed, "CRLF line ends", text.replace("\n", "\r\n").encode(), seed.sidecar)
    if how == "cr":
        return Case(seed, "CR line ends", text.replace("\n", "\r").encode(), seed.sidecar)
    if how == "nel":
        sep = draw(st.sampled_from(["\x85", "\u2028", "\x0b", "\x0c", "\x1c"]))
        return Case(seed, f"{sep!r} line ends", text.replace("\n", sep).encode(), seed.sidecar)
    if how == "insert":
        lines = text.split("\n")
        at = draw(st.integers(0, min(len(lines), 8)))
        value = draw(_token | st.text(alphabet=st.characters(), max_size=40))
        lines.insert(at, value)
        return Case(seed, f"line {at + 1} inserted: {value!r}", "\n".join(lines).encode(
            "utf-8", "surrogatepass"), seed.sidecar)
    enc = draw(st.sampled_from(_ENCODINGS))
    if draw(st.booleans()):
        text = text.replace("uV", "µV").replace("EMG1", "ÉMG1")
    data = text.encode(enc, "replace")
    return Case(seed, f"encoded as {enc}", data, seed.sidecar)


# ---------------------------------------------------------------------------------- sidecar

_JSON_VALUES = st.sampled_from(
    [None, True, False, 0, -1, 1e308, -1e308, 10**40, "", "x", "x\ny", [], {}, [1, 2],
     {"a": 1}, [[[]]], "\ud800", "\x00"]
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> None:
    for key in path[:-1]:
        doc = doc[key]
    if delete:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


@st.composite
def sidecar_change(draw: st.DrawFn, seed: Seed) -> Case:
    assert seed.sidecar is not None
    doc = json.loads(seed.sidecar)
    how = draw(st.sampled_from(["swap", "delete", "deep", "literal", "cut", "encoding"]))
    if how in ("swap", "delete"):
        path = draw(st.sampled_from(_paths(doc)))
        value = draw(_JSON_VALUES)
        _set(doc, path, value, delete=how == "delete")
        text = json.dumps(doc, allow_nan=True)
        what = f"sidecar {'/'.join(map(str, path))} " + ("deleted" if how == "delete" else
                                                          f"= {value!r}")
        raw = text.encode("utf-8", "surrogatepass")
    elif how == "deep":
        depth = draw(st.sampled_from([100, 5000, 200_000]))
        text = json.dumps(doc)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
        what, raw = f"sidecar nested {depth} deep", text.encode()
    elif how == "literal":
        lit = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000]))
        text = seed.sidecar.decode().replace("2000.0", lit, 1)
        what, raw = f"sidecar fs {lit[:20]}", text.encode()
    elif how == "cut":
        cut = draw(st.integers(0, len(seed.sidecar) - 1))
        what, raw = f"sidecar cut to {cut} bytes", seed.sidecar[:cut]
    else:
        enc = draw(st.sampled_from(["utf-16", "latin-1", "utf-8-sig"]))
        text = seed.sidecar.decode().replace("demo", "démo")
        what, raw = f"sidecar encoded as {enc}", text.encode(enc)
    return Case(seed, what, seed.data, raw)


def mutations(seed: Seed) -> st.SearchStrategy[Case]:
    """Every mutation that applies to ``seed``."""
    options: list[Callable[[Seed], st.SearchStrategy[Case]]] = [
        number_change, size_change, byte_flips,
    ]
    if seed.family == "edf":
        options += [edf_field_change, edf_field_change]  # the header is where it hurts
    if seed.family == "text":
        options.append(encoding_change)
    if seed.sidecar is not None:
        options += [sidecar_change, sidecar_change]
    return st.one_of([make(seed) for make in options])


def killed(case: Case) -> Case:
    """What a kill leaves of ``case``: record count -1, a partial last record, and a sidecar
    still saying "recording" (when it is a JSON object)."""
    data = case.data
    if len(data) >= 244:
        data = data[:236] + b"-1      " + data[244:]
    data += b"\x01" * 999
    side = case.sidecar
    try:
        doc = json.loads(side or b"")
    except (ValueError, RecursionError):
        doc = None
    if isinstance(doc, dict):
        side = json.dumps({**doc, "state": "recording"}).encode()
    return Case(case.seed, f"killed, {case.what}", data, side)


def cases(names: tuple[str, ...] | None = None) -> st.SearchStrategy[Case]:
    chosen = [s for s in seeds() if names is None or s.name in names]
    return st.sampled_from(chosen).flatmap(mutations)


# ------------------------------------------------------------------------------- CLI values

HOSTILE_ARGS = (
    "nan", "NaN", "-nan", "inf", "-inf", "+inf", "0", "-0", "-1", "1e308", "-1e308", "1e-300",
    "1e309", "", " ", "abc", "0x1F", "1_000", "1,5", "١٢٣", "１２", "²", "9" * 30,
    str(2**63), str(-(2**63) - 1), str(10**400), "1e", "--", "\x00", "ⅷ",
)


def hostile_value() -> st.SearchStrategy[str]:
    return st.sampled_from(HOSTILE_ARGS) | st.floats().map(repr) | st.integers().map(str)


# ------------------------------------------------------------- pinned cases (@example)


def replaced(name: str, old: bytes, new: bytes) -> Case:
    """Seed ``name`` with the first ``old`` replaced by ``new``."""
    seed = seed_named(name)
    assert old in seed.data, (name, old)
    return Case(seed, f"{old!r} -> {new!r}", seed.data.replace(old, new, 1), seed.sidecar)


def line_replaced(name: str, index: int, line: str) -> Case:
    """Text seed ``name`` with line ``index`` (0-based) replaced by ``line``."""
    seed = seed_named(name)
    lines = seed.data.decode().split("\n")
    lines[index] = line
    return Case(seed, f"line {index + 1} = {line!r}", "\n".join(lines).encode(), seed.sidecar)


def sparse(name: str, extra: int) -> Case:
    seed = seed_named(name)
    return Case(seed, f"sparse +{extra} bytes", seed.data, seed.sidecar, len(seed.data) + extra)


def sidecar_set(name: str, path: tuple[Any, ...], value: Any) -> Case:
    seed = seed_named(name)
    assert seed.sidecar is not None
    doc = json.loads(seed.sidecar)
    _set(doc, path, value)
    what = f"sidecar {'/'.join(map(str, path))} = {value!r}"
    return Case(seed, what, seed.data, json.dumps(doc).encode())
