"""A fake EMG board for the serial tests and the benchmark: writes a known pattern to a port.

Run as a program (``python tests/serial_writer.py --port DIR/ttyV0 ...``), it paces samples
in real time, in blocks, as a board would, and can inject faults at given sample numbers.
Sample ``k`` (0, 1, 2, ...) carries :func:`pattern` values; the wire counter is
``counter_start + k`` (modulo 65536 for fob1, ``--seq-wrap`` for text).

Events (``--events`` JSON list of ``[kind, k, arg]``), applied just before sample ``k``:
``garbage`` n bytes without 0xA5 or newlines (text: then a newline, one bad line);
``badcrc`` sample k goes out with a wrong CRC (fob1); ``truncate`` only the first n bytes of
sample k's frame go out (text: the first n fields of its line); ``drop`` n samples from k
are not sent; ``message`` a ``# text`` line (text).

With ``--reopen`` a write error (the port vanished) makes it reopen the path until it
exists again; samples due meanwhile are lost, as on a board that keeps sampling. With
``--reset-counter`` the counter restarts at 0 after a reopen (a board that rebooted). With
``--go`` it waits for a line on stdin before the first sample. ``--jitter-ms j`` spaces the
writes ``block-ms`` +- j apart (uniform, seeded) instead of on a fixed grid: bursty delivery
as from a board that prints in blocks or a Bluetooth bridge. ``--data FILE.npy`` sends the
rows of that integer array (samples x channels) instead of the pattern: a recording, e.g.
synthetic EMG with reps. ``--log`` writes one line
per block, ``first_k n t_send`` (time.monotonic just before the write), for latency. At
the end it prints a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devices.drivers.serial_protocol import encode_fob1_frames

log = logging.getLogger("serial_writer")
LABELS = ("glute_l", "glute_r", "lumbar_l", "lumbar_r", "ham_l", "ham_r", "x1", "x2")


def pattern(k: np.ndarray | Sequence[int] | int, n_channels: int) -> np.ndarray:
    """Values (len(k), n_channels) of samples ``k``: channel 0 is k mod 20000, the others
    small deterministic values in -1000..1000 (no 0xA5 0x5A pair can form in a frame)."""
    kk = np.atleast_1d(np.asarray(k, dtype=np.int64))
    out = np.empty((kk.size, n_channels), dtype=np.int64)
    out[:, 0] = kk % 20000
    for ch in range(1, n_channels):
        out[:, ch] = (kk * (2 * ch + 1) + 97 * ch) % 2001 - 1000
    return out


def _garbage(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0x21, 0x7F, size=n, dtype=np.uint8)  # printable, no 0xA5, no newline
    raw[raw == ord("#")] = ord("!")
    return raw.tobytes()


class Writer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.data: np.ndarray | None = None
        if args.data:
            self.data = np.load(args.data).astype(np.int64)
            args.channels = self.data.shape[1]
        self.n_total = round(args.fs * args.seconds)
        if self.data is not None:
            self.n_total = min(self.n_total, self.data.shape[0])
        self.events: dict[int, list[tuple[str, int]]] = {}
        for kind, k, *rest in json.loads(args.events or "[]"):
            self.events.setdefault(int(k), []).append((str(kind), int(rest[0]) if rest else 0))
        self.fd: int | None = None
        self.sent: list[int] = []  # sample numbers that went out whole
        self.lost_closed = 0
        self.skip_until = -1  # a drop event can span blocks
        self.counter_shift = 0  # --reset-counter: a rebooted board counts from 0 again
        self.reopens = 0
        self.log_lines: list[str] = []

    # -- encoding -------------------------------------------------------------------------
    def _text(self, k: int) -> bytes:
        a = self.a
        vals = self.values(np.array([k]))[0]
        fields = []
        if a.seq:
            fields.append(str((a.counter_start + self.counter_shift + k) % a.seq_wrap))
        for ch, v in enumerate(vals):
            fields.append(f"{LABELS[ch]}:{v}" if a.labels else str(v))
        end = "\r\n" if a.crlf else "\n"
        return (a.sep.join(fields) + end).encode("ascii")

    def _fob1(self, ks: np.ndarray) -> bytes:
        counters = self.a.counter_start + self.counter_shift + ks
        return encode_fob1_frames(counters, self.values(ks))

    def values(self, ks: np.ndarray) -> np.ndarray:
        if self.data is not None:
            return self.data[ks]
        return pattern(ks, self.a.channels)

    def block(self, k0: int, k1: int) -> bytes:
        """Bytes for samples k0..k1-1, with the events that fall in that range."""
        a = self.a
        out = bytearray()
        ks = list(range(k0, k1))
        plain: list[int] = []

        def flush() -> None:
            if plain:
                arr = np.array(plain)
                if a.protocol == "fob1":
                    out.extend(self._fob1(arr))
                else:
                    out.extend(b"".join(self._text(int(k)) for k in arr))
                self.sent.extend(plain)
                plain.clear()

        for k in ks:
            if k < self.skip_until:
                continue
            special = None
            for kind, arg in self.events.get(k, []):
                if kind == "garbage":
                    flush()
                    out.extend(_garbage(arg, k))
                    if a.protocol == "text":
                        out.extend(b"\n")
                elif kind == "message":
                    flush()
                    out.extend(f"# event at {k}\n".encode())
                elif kind == "drop":
                    self.skip_until = k + arg
                    special = "drop"
                elif kind in ("badcrc", "truncate"):
                    special = (kind, arg)
            if special == "drop":
                continue
            if special is None:
                plain.append(k)
                continue
            flush()
            kind, arg = special
            if a.protocol == "text":  # a short line: only the first `arg` fields
                fields = self._text(k).rstrip(b"\r\n").split(a.sep.encode())
                out.extend(a.sep.encode().join(fields[:arg]) + b"\n")
                continue
            one = self._fob1(np.array([k]))
            if kind == "badcrc":
                out.extend(one[:-1] + bytes([one[-1] ^ 0x5C]))
            else:
                out.extend(one[:arg])
        flush()
        return bytes(out)

    # -- port -------------------------------------------------------------------------------
    def open(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            try:
                self.fd = os.open(self.a.port, os.O_RDWR | os.O_NOCTTY)
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def write_all(self, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            assert self.fd is not None
            try:
                n = os.write(self.fd, view)
            except OSError as exc:
                log.info("write failed: %s", exc)
                return False
            view = view[n:]
        return True

    def run(self) -> dict[str, Any]:
        a = self.a
        if not self.open(time.monotonic() + 10):
            raise SystemExit(f"cannot open {a.port}")
        if a.go:
            sys.stdin.readline()
        t0 = time.monotonic()
        pos = 0
        block_s = a.block_ms / 1000
        jitter_s = a.jitter_ms / 1000
        rng = np.random.default_rng(a.seed)
        while pos < self.n_total:
            now = time.monotonic()
            due = min(self.n_total, int((now - t0) * a.fs) + 1)
            if due > pos:
                data = self.block(pos, due)
                t_send = time.monotonic()
                n_before = len(self.sent)
                if not self.write_all(data):
                    # those samples never arrived whole: forget them
                    del self.sent[n_before:]
                    if not a.reopen or not self._reopen():
                        break
                    now = time.monotonic()
                    new_pos = min(self.n_total, int((now - t0) * a.fs) + 1)
                    self.lost_closed += new_pos - pos
                    pos = new_pos
                    if a.reset_counter:
                        self.counter_shift = -(a.counter_start + pos)
                    continue
                self.log_lines.append(f"{pos} {due - pos} {t_send:.6f}")
                pos = due
            now = time.monotonic()
            if jitter_s:
                time.sleep(max(0.0, block_s + rng.uniform(-jitter_s, jitter_s)))
            else:
                time.sleep(max(0.0, t0 + (math.floor((now - t0) / block_s) + 1) * block_s - now))
        time.sleep(a.linger)
        if self.fd is not None:
            os.close(self.fd)
        if a.log:
            Path(a.log).write_text("\n".join(self.log_lines) + "\n", encoding="utf-8")
        return {
            "n_total": self.n_total,
            "n_sent": len(self.sent),
            "first": self.sent[0] if self.sent else None,
            "last": self.sent[-1] if self.sent else None,
            "lost_closed": self.lost_closed,
            "reopens": self.reopens,
            "seconds": time.monotonic() - t0,
        }

    def _reopen(self) -> bool:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        time.sleep(0.05)  # the old link may still be there for a moment
        ok = self.open(time.monotonic() + 15)
        self.reopens += int(ok)
        return ok


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="fake serial EMG board (tests, benchmark)")
    p.add_argument("--port", required=True)
    p.add_argument("--protocol", choices=("text", "fob1"), default="fob1")
    p.add_argument("--fs", type=float, default=1000.0)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--block-ms", type=float, default=10.0)
    p.add_argument("--jitter-ms", type=float, default=0.0, help="writes block-ms +- this apart")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="", help="an .npy integer array to send, row by row")
    p.add_argument("--seq", action="store_true", help="text: first field is the counter")
    p.add_argument("--seq-wrap", type=int, default=1 << 32)
    p.add_argument("--counter-start", type=int, default=0)
    p.add_argument("--labels", action="store_true", help="text: label:value fields")
    p.add_argument("--crlf", action="store_true")
    p.add_argument("--sep", default=",")
    p.add_argument("--events", default="")
    p.add_argument("--reopen", action="store_true")
    p.add_argument(
        "--reset-counter", action="store_true", help="after a reopen the counter restarts at 0"
    )
    p.add_argument("--go", action="store_true", help="wait for a line on stdin first")
    p.add_argument("--linger", type=float, default=0.2, help="keep the port open at the end")
    p.add_argument("--log", default="")
    args = p.parse_args(argv)
    if args.sep == "tab":
        args.sep = "\t"
    return args


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="writer: %(message)s")
    summary = Writer(parse_args(argv)).run()
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
