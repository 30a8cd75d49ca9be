"""Serial acquisition benchmark: ``python -m bench.serial_bench [--quick]``.

A writer process (``tests/serial_writer.py``) plays a board through a socat pty pair, paced
in real time in small blocks; a :class:`~devices.drivers.serial_board.SerialDevice` reads the other
end and a consumer polls ``read()`` like the live session does. Measured per run:

* loss: every sample must arrive, in order, with the right values (zero loss expected);
* CPU: the reader thread (``time.thread_time`` inside it) and the whole process, as % of
  one core over the run;
* latency: writer's send time (``time.monotonic`` just before each block's write, logged
  to a side file; the clock is system-wide) to the moment ``read()`` returns the chunk
  holding the block's last sample: median, p95, max.

Plus the parsers alone (no I/O): CPU time per second of stream, fed in 2 ms pieces.
Results: ``bench/out/serial.json`` and ``serial.md`` (``bench/out/quick/`` with --quick).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from bench import common
from devices.drivers.serial_board import SerialDevice
from devices.drivers.serial_protocol import Fob1Parser, TextParser, encode_fob1_frames
from dsp.contract import Chunk

log = logging.getLogger(__name__)
WRITER = common.REPO_ROOT / "tests" / "serial_writer.py"
POLL_S = 0.002  # the live session's poll period


def _writer_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("serial_writer", WRITER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@dataclass(frozen=True)
class Run:
    name: str
    protocol: str
    fs: float
    channels: int
    seconds: float
    baud: int
    block_ms: float = 2.0
    read_interval_s: float = 0.002


def runs(quick: bool) -> list[Run]:
    s = 3.0 if quick else 20.0
    out = [
        Run("fob1 4 kHz x 8", "fob1", 4000, 8, s, 1_000_000),
        Run("text 1 kHz x 8 (seq)", "text", 1000, 8, s, 1_000_000),
    ]
    if not quick:
        # USB delivers small packets (64 B every ~0.7 ms at 92 kB/s): the reader's batching
        # trades CPU for latency there; with 2 ms blocks it has nothing to batch.
        usb = "fob1 4 kHz x 8, 0.5 ms packets"
        out += [
            Run(f"{usb}, batching 2 ms", "fob1", 4000, 8, s, 1_000_000, 0.5, 0.002),
            Run(f"{usb}, no batching", "fob1", 4000, 8, s, 1_000_000, 0.5, 0.0),
            Run(f"{usb}, batching 5 ms", "fob1", 4000, 8, s, 1_000_000, 0.5, 0.005),
        ]
    return out


class Ports:
    def __init__(self, folder: Path) -> None:
        self.board, self.host = folder / "ttyV0", folder / "ttyV1"
        cmd = ["socat", "-d", "-d"]
        cmd += [f"pty,raw,echo=0,link={self.board}", f"pty,raw,echo=0,link={self.host}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (self.board.exists() and self.host.exists()):
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("socat did not create its ptys")
            time.sleep(0.01)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(run: Run, writer: ModuleType) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="fireorder-serial-bench-"))
    ports = Ports(folder)
    side = folder / "sent.log"
    dev = SerialDevice(
        str(ports.host),
        run.protocol,
        fs=run.fs,
        baud=run.baud,
        seq=run.protocol == "text",
        channels=run.channels,
        wait_first=False,
        read_interval_s=run.read_interval_s,
    )
    chunks: list[tuple[Chunk, float]] = []
    try:
        dev.open()
        dev.start()
        args = ["--port", str(ports.board), "--protocol", run.protocol, "--fs", str(run.fs)]
        args += ["--channels", str(run.channels), "--seconds", str(run.seconds)]
        args += ["--block-ms", str(run.block_ms), "--log", str(side)]
        args += ["--seq"] if run.protocol == "text" else []
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        cpu0, t0 = _cpu_self(), time.monotonic()
        deadline = t0 + run.seconds + 30
        quiet: float | None = None
        while time.monotonic() < deadline:
            chunk = dev.read()
            if chunk is not None:
                chunks.append((chunk, time.monotonic()))
                quiet = None
                continue
            if proc.poll() is not None:
                quiet = quiet or time.monotonic()
                if time.monotonic() - quiet > 0.3:
                    break
            time.sleep(POLL_S)
        wall = time.monotonic() - t0
        cpu = _cpu_self() - cpu0
        out, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"writer failed: {err}")
        summary = json.loads(out)
        reader_cpu = dev.reader_cpu_s
        stats = dev.stats
    finally:
        dev.close()
        ports.close()
    result = _check(run, chunks, summary, writer)
    result.update(_latency(chunks, side, result.pop("k0")))
    shutil.rmtree(folder, ignore_errors=True)
    result.update(
        run=asdict(run),
        stats=stats,
        writer=summary,
        wall_s=wall,
        reader_cpu_pct=100 * reader_cpu / wall,
        process_cpu_pct=100 * cpu / wall,
    )
    log.info(
        "%s: %d samples, lost %d, reader CPU %.1f %%, latency median %.2f ms p95 %.2f ms",
        run.name,
        result["received"],
        result["lost"],
        result["reader_cpu_pct"],
        result["latency_ms"]["median"],
        result["latency_ms"]["p95"],
    )
    return result


def _check(
    run: Run, chunks: list[tuple[Chunk, float]], summary: dict[str, Any], writer: ModuleType
) -> dict[str, Any]:
    """Zero loss: consecutive indices, every sample the writer sent, the right values."""
    if not chunks:
        return {"received": 0, "lost": summary["n_sent"], "values_ok": False, "k0": 0}
    index = np.concatenate([np.arange(c.start, c.stop) for c, _ in chunks])
    data = np.concatenate([c.data for c, _ in chunks])
    k0 = int(data[0, 0])  # channel 0 carries the sample number (mod 20000)
    k = index + k0
    values_ok = bool(np.array_equal(data, writer.pattern(k, run.channels)))
    expected = summary["n_sent"] - k0  # the text driver drops the first line (k0 = 1)
    return {
        "received": len(index),
        "expected": expected,
        "lost": expected - len(index),
        "contiguous": bool(np.all(np.diff(index) == 1)),
        "values_ok": values_ok,
        "k0": k0,
    }


def _latency(chunks: list[tuple[Chunk, float]], side: Path, k0: int) -> dict[str, Any]:
    sent = np.loadtxt(side, ndmin=2)  # first_k, n, t_send per block
    last_index = (sent[:, 0] + sent[:, 1] - 1).astype(np.int64) - k0
    starts = np.array([c.start for c, _ in chunks])
    stops = np.array([c.stop for c, _ in chunks])
    returned = np.array([t for _, t in chunks])
    pos = np.searchsorted(starts, last_index, side="right") - 1
    ok = (pos >= 0) & (last_index >= 0)
    ok[ok] &= last_index[ok] < stops[pos[ok]]
    lat = (returned[pos[ok]] - sent[ok, 2]) * 1000
    return {
        "latency_ms": {
            "median": float(np.median(lat)) if lat.size else None,
            "p95": float(np.percentile(lat, 95)) if lat.size else None,
            "max": float(lat.max()) if lat.size else None,
            "blocks": int(lat.size),
        },
        "chunks": len(chunks),
        "mean_chunk_samples": float(np.mean(stops - starts)),
    }


def parser_cost(seconds: float = 10.0) -> dict[str, Any]:
    """CPU per second of stream for the parsers alone, fed in 2 ms pieces."""
    writer = _writer_module()
    out: dict[str, Any] = {}
    fs = 4000
    k = np.arange(round(seconds * fs))
    stream = encode_fob1_frames(k, writer.pattern(k, 8))
    out["fob1 4 kHz x 8"] = _feed_cost(Fob1Parser(), stream, round(0.002 * fs) * 23, seconds)
    fs = 1000
    k = np.arange(round(seconds * fs))
    values = writer.pattern(k, 8)
    text = b"".join(
        (f"{i}," + ",".join(map(str, row)) + "\n").encode()
        for i, row in zip(k, values, strict=True)
    )
    piece = max(1, len(text) * 2 // (1000 * round(seconds)))  # ~2 ms of stream
    out["text 1 kHz x 8 (seq)"] = _feed_cost(TextParser(seq=True), text, piece, seconds)
    return out


def _feed_cost(parser: Fob1Parser | TextParser, stream: bytes, piece: int, seconds: float) -> dict:
    t0 = time.thread_time()
    n = 0
    for i in range(0, len(stream), piece):
        n += len(parser.feed(stream[i : i + piece]))
    cpu = time.thread_time() - t0
    return {
        "samples": n,
        "bytes": len(stream),
        "piece_bytes": piece,
        "cpu_ms_per_s": 1000 * cpu / seconds,
        "cpu_pct": 100 * cpu / seconds,
    }


def run_all(quick: bool) -> dict[str, Any]:
    if shutil.which("socat") is None:
        raise SystemExit("the serial benchmark needs socat (scripts/sysdeps.sh installs it)")
    writer = _writer_module()
    results = [measure(r, writer) for r in runs(quick)]
    return {
        "runs": results,
        "parsers": parser_cost(2.0 if quick else 10.0),
        "poll_s": POLL_S,
        "machine": common.machine(),
        "code": common.code_version(),
    }


def markdown(res: dict[str, Any]) -> str:
    rows = []
    for r in res["runs"]:
        lat = r["latency_ms"]
        loss = "none" if r["lost"] == 0 and r["values_ok"] and r["contiguous"] else "LOSS"
        rows.append(
            [
                r["run"]["name"],
                f"{r['run']['seconds']:.0f}",
                f"{r['run']['block_ms']:g}",
                f"{1000 * r['run']['read_interval_s']:g}",
                f"{r['received']}",
                f"{loss} ({r['lost']} lost, values {'ok' if r['values_ok'] else 'WRONG'})",
                common.fmt(r["reader_cpu_pct"], 1),
                common.fmt(r["process_cpu_pct"], 1),
                f"{common.fmt(lat['median'], 2)} / {common.fmt(lat['p95'], 2)} / "
                f"{common.fmt(lat['max'], 1)}",
            ]
        )
    table = common.md_table(
        [
            "run",
            "s",
            "writer block ms",
            "reader batching ms",
            "samples",
            "loss",
            "reader CPU %",
            "process CPU %",
            "latency median / p95 / max (ms)",
        ],
        rows,
    )
    prows = [
        [name, common.fmt(p["cpu_ms_per_s"], 2), common.fmt(p["cpu_pct"], 2)]
        for name, p in res["parsers"].items()
    ]
    ptable = common.md_table(["parser alone (2 ms pieces)", "CPU ms per s", "CPU %"], prows)
    m = res["machine"]
    return "\n".join(
        [
            "## Serial acquisition",
            "",
            "A writer process plays a board through a socat pty pair (real-time pacing, in "
            "blocks); the driver reads the other end; a consumer polls `read()` every "
            f"{1000 * res['poll_s']:.0f} ms. CPU is % of one core over the run; latency runs "
            "from the writer's send time to `read()` returning the sample. Reader batching "
            "(`read_interval_s`, default 2 ms): the reader thread wakes at most that often.",
            "",
            table,
            "",
            ptable,
            "",
            f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, Python {m['python']}; "
            f"{common.code_version_text(res['code'])}.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse_args("fireorder serial acquisition benchmark", argv)
    common.setup_logging(args.verbose)
    t0 = time.perf_counter()
    res = run_all(args.quick)
    res["seconds"] = time.perf_counter() - t0
    out = common.out_dir(args.quick)
    common.write_json(out / "serial.json", res)
    text = markdown(res)
    common.write_text(out / "serial.md", text + "\n")
    print(text)
    return res


if __name__ == "__main__":
    main()
