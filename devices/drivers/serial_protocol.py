"""Pure parsers of the two serial wire protocols (no I/O): ``text`` and ``fob1``.

Both parsers take bytes as they arrive (any split) and return :class:`Parsed`: samples in
microvolts with the stream index of every sample, so a lost sample is a jump in the index.
They resynchronise after garbage, truncated frames and bad CRCs and count each kind in
:class:`ParserStats`. Feeding a stream in any pieces gives the same samples and counters.
See ``docs/serial-protocol.md`` for the wire formats.

Sequence handling (fob1 always, text with ``seq=True``): the device counter of each sample
is compared with the previous one modulo the wrap; a jump of ``d`` is a gap of ``d - 1``
samples, a repeat is a duplicate (dropped). A jump larger than ``max_gap``, or the first
sample after :meth:`restart_sequence`, is a *break*: the counter cannot be trusted there, so
the index simply continues (+1) and the position is reported in ``Parsed.breaks`` for the
caller (the serial driver) to fill in from the wall clock.
"""

from __future__ import annotations

import binascii
import collections
import itertools
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsp.limits import Limit, SettingError, check_fields

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

SYNC = b"\xa5\x5a"
FOB1_MAX_CHANNELS = 32
FOB1_WRAP = 1 << 16
TEXT_MAX_CHANNELS = 64
MAX_SEQ_WRAP = 1 << 32
#: a text line longer than this (no newline in sight) is garbage, e.g. a baud mismatch
MAX_LINE_BYTES = 4096
_FOB1_HEADER = struct.Struct("<BH")
_NO_WRAP = 1 << 62  # counters only increase until a text counter's wrap is seen


def crc16_ccitt_false(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor).

    ``binascii.crc_hqx`` is exactly this polynomial without reflection; seeded with 0xFFFF it
    is CCITT-FALSE (check value of b"123456789": 0x29B1), and it runs in C.
    """
    return binascii.crc_hqx(data, crc)


def fob1_frame_length(n_channels: int) -> int:
    """Bytes of one frame: sync (2) + count (1) + counter (2) + samples (2n) + CRC (2)."""
    return 7 + 2 * n_channels


def encode_fob1(counter: int, samples: ArrayLike) -> bytes:
    """One fob1 frame. ``counter`` is taken modulo 65536; samples must fit int16."""
    values = np.asarray(samples)
    if values.ndim != 1 or not 1 <= values.size <= FOB1_MAX_CHANNELS:
        raise ValueError(f"fob1 carries 1-{FOB1_MAX_CHANNELS} samples, got shape {values.shape}")
    return encode_fob1_frames(np.array([counter]), values[None, :])


def encode_fob1_frames(counters: ArrayLike, samples: ArrayLike) -> bytes:
    """Consecutive fob1 frames for ``counters`` (m,) and ``samples`` (m, n), vectorised."""
    c = np.asarray(counters, dtype=np.int64).ravel()
    s = np.asarray(samples)
    if s.ndim != 2 or s.shape[0] != c.size or not 1 <= s.shape[1] <= FOB1_MAX_CHANNELS:
        raise ValueError(f"need samples (m, 1-{FOB1_MAX_CHANNELS}) for m counters, got {s.shape}")
    if s.size and (s.min() < -32768 or s.max() > 32767 or not np.array_equal(s, np.round(s))):
        raise ValueError("fob1 samples must be integers in -32768..32767")
    m, n = s.shape
    size = fob1_frame_length(n)
    out = np.empty((m, size), dtype=np.uint8)
    out[:, 0], out[:, 1], out[:, 2] = 0xA5, 0x5A, n
    c16 = (c & 0xFFFF).astype("<u2")
    out[:, 3:5] = c16.view(np.uint8).reshape(m, 2)
    out[:, 5 : 5 + 2 * n] = s.astype("<i2").view(np.uint8).reshape(m, 2 * n)
    for row in out:  # crc_hqx is C; one call per frame
        crc = binascii.crc_hqx(row[2 : size - 2].tobytes(), 0xFFFF)
        row[size - 2], row[size - 1] = crc & 0xFF, crc >> 8
    return out.tobytes()


# --------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Wire values to microvolts: ``uV = (value - offset) * gain``.

    ``unit`` records what the device sends ("uV" when it already sends microvolts, "counts"
    for raw ADC codes). ``gain``/``offset`` may be per channel (tuples).
    """

    gain: float | tuple[float, ...] = 1.0
    offset: float | tuple[float, ...] = 0.0
    unit: str = "uV"

    #: Ranges of the scale and of the ADC description it is made from (the window's scale
    #: fields and the CLI's options take theirs from here). A gain may be negative (an
    #: inverting front end) but not 0.
    LIMITS: ClassVar[dict[str, Limit]] = {
        "gain": Limit(-1e9, 1e9, "µV/count"),
        "offset": Limit(-1e9, 1e9, "counts"),
    }
    ADC_LIMITS: ClassVar[dict[str, Limit]] = {
        "adc_bits": Limit(8, 24, "bits", integer=True),
        "vref": Limit(0.0, 10.0, "V", low_open=True),
        "amp_gain": Limit(0.0, 1e6, low_open=True),
    }

    def __post_init__(self) -> None:
        for name in ("gain", "offset"):
            value = getattr(self, name)
            if isinstance(value, list | tuple | np.ndarray):
                object.__setattr__(self, name, tuple(float(v) for v in value))
                if not self.__dict__[name]:
                    raise SettingError(f"scale {name} has no values")
            else:
                object.__setattr__(self, name, float(value))
        check_fields(self, self.LIMITS)
        if np.any(np.asarray(self.gain) == 0):
            raise SettingError("scale gain = 0 is not usable: give a non-zero µV per count")

    @classmethod
    def from_adc(
        cls,
        bits: int,
        vref: float,
        amp_gain: float = 1.0,
        *,
        offset: float | None = None,
        signed: bool = False,
    ) -> Scale:
        """An ADC of ``bits`` with reference ``vref`` volts behind an amplifier of ``amp_gain``.

        One count is ``vref / 2**bits`` volts at the ADC, ``/ amp_gain`` at the electrodes.
        A unipolar ADC (Arduino ``analogRead``) sees the signal around mid-scale, so the
        offset defaults to ``2**(bits - 1)``; ``signed=True`` (bipolar ADC) defaults it to 0.
        """
        limits = cls.ADC_LIMITS
        bits = int(limits["adc_bits"].parse("adc_bits", bits))
        vref = limits["vref"].parse("vref", vref)
        amp_gain = limits["amp_gain"].parse("amp_gain", amp_gain)
        gain = vref / 2 ** int(bits) / amp_gain * 1e6
        if offset is None:
            offset = 0.0 if signed else float(2 ** (int(bits) - 1))
        return cls(gain=gain, offset=offset, unit="counts")

    @classmethod
    def from_value(cls, value: Scale | Mapping[str, Any] | None) -> Scale:
        """A Scale, None (identity) or a dict: {gain, offset, unit} or {bits, vref, amp_gain}."""
        if value is None:
            return cls()
        if isinstance(value, Scale):
            return value
        d = dict(value)
        if "bits" in d:
            return cls.from_adc(
                int(d.pop("bits")),
                float(d.pop("vref")),
                float(d.pop("amp_gain", 1.0)),
                offset=d.pop("offset", None),
                signed=bool(d.pop("signed", False)),
            )
        return cls(**d)

    @property
    def is_identity(self) -> bool:
        return self.gain == 1.0 and self.offset == 0.0

    def apply(self, values: ArrayLike) -> FloatArray:
        x = np.asarray(values, dtype=np.float64)
        if self.is_identity:
            return x
        return (x - np.asarray(self.offset)) * np.asarray(self.gain)


# --------------------------------------------------------------------------------------
# Results and counters
# --------------------------------------------------------------------------------------


@dataclass
class ParserStats:
    """Counters of one parser. ``garbage_bytes`` are bytes that were not part of any valid
    frame or sample line (including bad and truncated ones); ``resyncs`` counts runs of such
    discarded input (each run ends at the next valid frame or sample line)."""

    bytes: int = 0
    samples: int = 0
    gaps: int = 0
    lost_samples: int = 0
    duplicates: int = 0
    seq_breaks: int = 0
    crc_errors: int = 0
    resyncs: int = 0
    garbage_bytes: int = 0
    truncated: int = 0
    channel_mismatch: int = 0
    bad_lines: int = 0
    messages: int = 0
    skipped_lines: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Parsed:
    """What one :meth:`feed` produced.

    ``samples`` (n, channels) float64 microvolts; ``index`` (n,) the stream index of each row
    (a jump is a gap); ``counter`` the device counter of each row (None without one);
    ``breaks`` rows where counter continuity was unknown (see the module doc).
    """

    samples: FloatArray
    index: IntArray
    counter: IntArray | None = None
    breaks: tuple[int, ...] = ()
    messages: tuple[str, ...] = ()
    channel_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def runs(self) -> list[tuple[int, FloatArray]]:
        """Consecutive runs as ``(first index, block)``; a new run starts at every jump."""
        if len(self) == 0:
            return []
        cuts = np.flatnonzero(np.diff(self.index) != 1) + 1
        bounds = [0, *cuts.tolist(), len(self)]
        return [(int(self.index[a]), self.samples[a:b]) for a, b in itertools.pairwise(bounds)]


def _empty(n_channels: int | None, messages: list[str], names: tuple[str, ...] | None) -> Parsed:
    return Parsed(
        samples=np.empty((0, n_channels or 0)),
        index=np.empty(0, dtype=np.int64),
        messages=tuple(messages),
        channel_names=names,
    )


@dataclass
class _Sequencer:
    """Turns device counters into stream indices (shared by both parsers)."""

    wrap: int | None  # None: infer it at the first wrap (text counters)
    max_gap: int | None
    stats: ParserStats
    last_counter: int | None = None
    last_index: int = -1  # index of the last sample given out
    pending_break: bool = False
    max_seen: int = -1
    _breaks: list[int] = field(default_factory=list)

    def restart(self) -> None:
        if self.last_counter is not None or self.last_index >= 0:
            self.pending_break = True
        self.last_counter = None

    def plain(self, n: int) -> IntArray:
        """Indices for ``n`` samples without counters (text, seq=False)."""
        idx = self.last_index + 1 + np.arange(n, dtype=np.int64)
        if n:
            self.last_index = int(idx[-1])
        return idx

    def assign(self, counters: IntArray) -> tuple[NDArray[np.bool_], IntArray, list[int]]:
        """(keep mask, index of kept rows, break positions among kept rows)."""
        c = counters.astype(np.int64)
        if self.wrap is None:
            self._infer_wrap(c)
        wrap = self.wrap or _NO_WRAP
        last = self.last_counter
        if (
            last is not None
            and (int(c[0]) - last) % wrap == 1
            and bool(((c[1:] - c[:-1]) % wrap == 1).all())
        ):  # the usual case, consecutive counters: skip the general bookkeeping
            idx = self.last_index + 1 + np.arange(c.size, dtype=np.int64)
            self.last_counter, self.last_index = int(c[-1]), int(idx[-1])
            if self.wrap is None:
                self.max_seen = max(self.max_seen, int(c[-1]))
            return np.ones(c.size, dtype=bool), idx, []
        prev = np.empty_like(c)
        prev[1:] = c[:-1]
        prev[0] = self.last_counter if self.last_counter is not None else 0
        d = (c - prev) % wrap
        brk = np.zeros(c.size, dtype=bool)
        if self.last_counter is None:
            brk[0] = self.pending_break
            d[0] = 1  # no predecessor (stream start or restart): the index continues
        if self.max_gap is not None:
            big = d - 1 > self.max_gap
            brk |= big
            d[big] = 1
        dup = d == 0
        keep = ~dup
        step = d[keep]
        idx = self.last_index + np.cumsum(step)
        jumps = step - 1
        st = self.stats
        st.duplicates += int(dup.sum())
        st.gaps += int(np.count_nonzero(jumps > 0))
        st.lost_samples += int(jumps.sum())
        breaks = np.flatnonzero(brk[keep]).tolist()
        st.seq_breaks += len(breaks)
        self.pending_break = False
        self.last_counter = int(c[-1])
        if idx.size:
            self.last_index = int(idx[-1])
        self.max_seen = max(self.max_seen, int(c.max()))
        return keep, idx, breaks

    def _infer_wrap(self, c: IntArray) -> None:
        # A text counter wraps at some unknown point: at its first decrease take the smallest
        # power of two or of ten above the largest counter seen (uint8/16/32 or decimal).
        prev = np.concatenate(([self.last_counter if self.last_counter is not None else -1], c))
        down = np.flatnonzero(np.diff(prev) < 0)
        if down.size == 0:
            return
        top = max(self.max_seen, int(prev[: down[0] + 1].max())) + 1
        pow2 = 1 << (top - 1).bit_length()
        pow10 = 10
        while pow10 < top:
            pow10 *= 10
        self.wrap = min(pow2, pow10, MAX_SEQ_WRAP)


# --------------------------------------------------------------------------------------
# fob1
# --------------------------------------------------------------------------------------


class Fob1Parser:
    """Binary ``fob1`` frames; see the module doc and ``docs/serial-protocol.md``.

    The channel count is fixed by ``channels`` or by the first valid frame; valid frames with
    another count are dropped and counted in ``channel_mismatch``.
    """

    protocol = "fob1"
    wrap = FOB1_WRAP

    def __init__(
        self,
        scale: Scale | None = None,
        *,
        channels: int | None = None,
        max_gap: int | None = None,
    ) -> None:
        if channels is not None and not 1 <= channels <= FOB1_MAX_CHANNELS:
            raise ValueError(f"fob1 carries 1-{FOB1_MAX_CHANNELS} channels, got {channels}")
        self.scale = scale or Scale()
        self.n_channels: int | None = channels
        self.stats = ParserStats()
        self._seq = _Sequencer(FOB1_WRAP, max_gap, self.stats)
        self._buf = b""
        self._skipping = False

    @property
    def channel_names(self) -> tuple[str, ...] | None:
        n = self.n_channels
        return tuple(f"ch{i + 1}" for i in range(n)) if n else None

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    @property
    def last_counter(self) -> int | None:
        return self._seq.last_counter

    def restart_sequence(self) -> None:
        """The next sample's counter is not compared with the last one (a break)."""
        self._seq.restart()

    def flush(self) -> None:
        """Drop buffered bytes of an unfinished frame (the port went away), counting them."""
        if self._buf:
            if self._buf.startswith(SYNC):
                self.stats.truncated += 1
            self._discard(len(self._buf))
            self._buf = b""

    def _discard(self, n: int) -> None:
        if n <= 0:
            return
        self.stats.garbage_bytes += n
        if not self._skipping:
            self.stats.resyncs += 1
            self._skipping = True

    def _frame_ok(self, buf: bytes, k: int, end: int) -> bool | None:
        """Is there a valid frame of our channel count at ``k``? None: not enough bytes."""
        if end - k < 3:
            return None
        n = buf[k + 2]
        if not 1 <= n <= FOB1_MAX_CHANNELS or (self.n_channels and n != self.n_channels):
            return False
        size = fob1_frame_length(n)
        if end - k < size:
            return None
        crc = buf[k + size - 2] | buf[k + size - 1] << 8
        return binascii.crc_hqx(buf[k + 2 : k + size - 2], 0xFFFF) == crc

    def _inner_frame(self, buf: bytes, p: int, size: int, end: int) -> int | None:
        """After a bad candidate at ``p`` spanning ``size`` bytes: the start of a valid frame
        inside it (the candidate was truncated by it), -1 if none, None to wait for bytes."""
        lo = p + 1
        while True:
            k = buf.find(SYNC, lo, min(p + size + 1, end))
            if k < 0 or k >= p + size:
                # a sync could still start at the last byte we have
                if end <= p + size and end - 1 > p and buf[end - 1] == 0xA5:
                    return None
                return -1
            ok = self._frame_ok(buf, k, end)
            if ok is None:
                return None
            if ok:
                return k
            lo = k + 1

    def feed(self, data: bytes | bytearray | memoryview) -> Parsed:
        data = bytes(data)
        self.stats.bytes += len(data)
        buf = self._buf + data if self._buf else data
        end = len(buf)
        blocks: list[NDArray[np.uint8]] = []  # rows of valid frames (views into buf)
        p = 0
        while p < end:
            if buf.startswith(SYNC, p):
                j = p
            else:
                j = buf.find(SYNC, p)
                if j < 0:  # keep a trailing 0xA5: it may be half a sync
                    keep = 1 if buf[-1] == 0xA5 else 0
                    self._discard(end - keep - p)
                    p = end - keep
                    break
                self._discard(j - p)
                p = j
            if end - p < 3:
                break
            n = buf[p + 2]
            if not 1 <= n <= FOB1_MAX_CHANNELS:
                k = self._inner_frame(buf, p, 3, end)
                if k is None:
                    break
                if k >= 0:
                    self.stats.truncated += 1
                    self._discard(k - p)
                    p = k
                else:
                    self._discard(2)
                    p += 2
                continue
            size = fob1_frame_length(n)
            if end - p < size:
                break
            if self.n_channels is None or n == self.n_channels:
                good = self._valid_run(buf, p, n, end)
                if good is not None:
                    if self.n_channels is None:
                        self.n_channels = n
                    blocks.append(good)
                    self._skipping = False
                    p += good.shape[0] * size
                    continue
            crc = buf[p + size - 2] | buf[p + size - 1] << 8
            if binascii.crc_hqx(buf[p + 2 : p + size - 2], 0xFFFF) == crc:
                # a sound frame with another channel count: the device changed its layout
                self.stats.channel_mismatch += 1
                self._discard(size)
                p += size
                continue
            k = self._inner_frame(buf, p, size, end)
            if k is None:
                break
            if k >= 0:
                self.stats.truncated += 1
                self._discard(k - p)
                p = k
            else:
                self.stats.crc_errors += 1
                self._discard(size)
                p += size
        self._buf = buf[p:]
        return self._decode(blocks)

    def _valid_run(self, buf: bytes, p: int, n: int, end: int) -> NDArray[np.uint8] | None:
        """The longest run of valid frames of ``n`` channels from ``p`` (vectorised), as rows.

        Headers are checked with numpy over all complete frames at once; the CRC of each
        frame with ``crc_hqx`` (C) up to the first mismatch.
        """
        size = fob1_frame_length(n)
        m = (end - p) // size
        rows = np.frombuffer(buf, dtype=np.uint8, count=m * size, offset=p).reshape(m, size)
        hdr = (rows[:, 0] == 0xA5) & (rows[:, 1] == 0x5A) & (rows[:, 2] == n)
        m_hdr = m if hdr.all() else int(np.argmin(hdr))
        rx = rows[:m_hdr, size - 2].astype(np.int64) | rows[:m_hdr, size - 1].astype(np.int64) << 8
        view = memoryview(buf)
        calc = np.fromiter(
            (
                binascii.crc_hqx(view[q + 2 : q + size - 2], 0xFFFF)
                for q in range(p, p + m_hdr * size, size)
            ),
            dtype=np.int64,
            count=m_hdr,
        )
        ok = calc == rx
        m_good = m_hdr if ok.all() else int(np.argmin(ok))
        return rows[:m_good] if m_good else None

    def _decode(self, blocks: list[NDArray[np.uint8]]) -> Parsed:
        names = self.channel_names
        if not blocks:
            return _empty(self.n_channels, [], names)
        n = self.n_channels
        assert n is not None
        rows = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        counters = rows[:, 3].astype(np.int64) | rows[:, 4].astype(np.int64) << 8
        raw = np.ascontiguousarray(rows[:, 5 : 5 + 2 * n]).view("<i2").reshape(-1, n)
        keep, idx, breaks = self._seq.assign(counters)
        if not keep.all():
            raw, counters = raw[keep], counters[keep]
        self.stats.samples += int(idx.size)
        return Parsed(
            samples=self.scale.apply(raw),
            index=idx,
            counter=counters,
            breaks=tuple(breaks),
            channel_names=names,
        )


# --------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------

_SPLIT = re.compile(r"[,;\s]+")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_COUNTER = re.compile(r"^\+?\d+$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class _BadLineError(Exception):
    def __init__(self, truncated: bool = False) -> None:
        self.truncated = truncated


def _fields(text: str) -> list[tuple[str | None, str]]:
    """``label:value`` / ``label: value`` / ``value`` fields of one line."""
    out: list[tuple[str | None, str]] = []
    label: str | None = None
    for tok in _SPLIT.split(text.strip()):
        if not tok:
            continue
        if label is not None:  # "label:" followed by its value as the next token
            out.append((label, tok))
            label = None
        elif ":" in tok:
            name, _, value = tok.partition(":")
            if not _LABEL.match(name):
                raise _BadLineError
            if value:
                out.append((name, value))
            else:
                label = name
        else:
            out.append((None, tok))
    if label is not None:
        raise _BadLineError(truncated=True)
    return out


class TextParser:
    """One sample per line; see the module doc and ``docs/serial-protocol.md``.

    ``channels`` fixes the channel count, else the first valid line does. With ``seq`` the
    first field is the sample counter (wrapping at ``seq_wrap``, or inferred at the first
    wrap). Lines starting with ``#`` are device messages. ``skip_first_line`` drops the first
    line (it may be the tail of a line sent before the port was opened) unless it is a message.
    A line with fewer values than channels counts as truncated, any other invalid line as bad.
    """

    protocol = "text"

    def __init__(
        self,
        channels: int | None = None,
        seq: bool = False,
        seq_wrap: int | None = None,
        scale: Scale | None = None,
        *,
        max_gap: int | None = None,
        skip_first_line: bool = False,
    ) -> None:
        if channels is not None and not 1 <= channels <= TEXT_MAX_CHANNELS:
            raise ValueError(f"text carries 1-{TEXT_MAX_CHANNELS} channels, got {channels}")
        if seq_wrap is not None and not 2 <= seq_wrap <= MAX_SEQ_WRAP:
            raise ValueError(f"seq_wrap must be within 2..2**32, got {seq_wrap}")
        self.scale = scale or Scale()
        self.n_channels: int | None = channels
        self.seq = seq
        self.stats = ParserStats()
        self._seq = _Sequencer(seq_wrap, max_gap, self.stats)
        self._labels: tuple[str, ...] | None = None
        self._layout_seen = False
        self._given_wrap = seq_wrap
        self._partial = b""
        self._overlong = False
        self._skip_first = skip_first_line
        self._skipping = False

    @property
    def seq_wrap(self) -> int | None:
        return self._seq.wrap

    @property
    def wrap(self) -> int | None:
        """The counter's wrap for gap arithmetic (2**32 until a smaller one is known)."""
        return (self._seq.wrap or MAX_SEQ_WRAP) if self.seq else None

    @property
    def labels(self) -> tuple[str, ...] | None:
        """Channel names from ``label:value`` fields of the first valid line, if any."""
        return self._labels

    @property
    def channel_names(self) -> tuple[str, ...] | None:
        if self._labels is not None:
            return self._labels
        n = self.n_channels
        return tuple(f"ch{i + 1}" for i in range(n)) if n else None

    @property
    def pending_bytes(self) -> int:
        return len(self._partial)

    @property
    def last_counter(self) -> int | None:
        return self._seq.last_counter

    def restart_sequence(self, skip_first_line: bool = False) -> None:
        self._seq.restart()
        if skip_first_line:
            self._skip_first = True

    def flush(self) -> None:
        """Drop an unfinished line (the port went away), counting it as truncated."""
        if self._overlong:
            self.stats.bad_lines += 1  # its bytes are counted already
        elif self._partial.strip():
            self.stats.truncated += 1
            self._invalid(len(self._partial))
        self._partial = b""
        self._overlong = False

    def _invalid(self, n_bytes: int) -> None:
        self.stats.garbage_bytes += n_bytes
        if not self._skipping:
            self.stats.resyncs += 1
            self._skipping = True

    def feed(self, data: bytes | bytearray | memoryview) -> Parsed:
        data = bytes(data)
        self.stats.bytes += len(data)
        lines = data.split(b"\n")
        last = lines.pop()  # unfinished: no newline yet
        values: list[list[float]] = []
        counters: list[int] = []
        messages: list[str] = []
        for i, piece in enumerate(lines):
            if self._overlong:
                self._overlong = False
                self.stats.bad_lines += 1
                self._invalid(len(piece) + 1)
                continue
            line = self._partial + piece if i == 0 and self._partial else piece
            if i == 0:
                self._partial = b""
            self._line(line, values, counters, messages)
        if self._overlong:
            self.stats.garbage_bytes += len(last)
        else:
            self._partial = self._partial + last if not lines else last
            if len(self._partial) > MAX_LINE_BYTES:
                self._overlong = True
                self._invalid(len(self._partial))
                self._partial = b""
        return self._result(values, counters, messages)

    def _line(
        self, line: bytes, values: list[list[float]], counters: list[int], messages: list[str]
    ) -> None:
        size = len(line) + 1
        if len(line) > MAX_LINE_BYTES:
            self.stats.bad_lines += 1
            self._invalid(size)
            return
        if self._skip_first and line.strip():
            self._skip_first = False
            if not line.lstrip().startswith(b"#"):
                self.stats.skipped_lines += 1
                return
        body = line[:-1] if line.endswith(b"\r") else line
        body = body.strip()
        if not body:
            return
        if body.startswith(b"#"):
            messages.append(body[1:].strip().decode("utf-8", "replace"))
            self.stats.messages += 1
            return
        try:
            counter, row = self._decode(body)
        except _BadLineError as exc:
            if exc.truncated:
                self.stats.truncated += 1
            else:
                self.stats.bad_lines += 1
            self._invalid(size)
            return
        self._skipping = False
        values.append(row)
        if counter is not None:
            counters.append(counter)

    def _decode(self, body: bytes) -> tuple[int | None, list[float]]:
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            raise _BadLineError from None
        fields = _fields(text)
        counter: int | None = None
        if self.seq:
            if not fields:
                raise _BadLineError
            _, ctext = fields.pop(0)
            if not _COUNTER.match(ctext):
                raise _BadLineError
            counter = int(ctext)
            # only a given wrap bounds the counter (an inferred one is learnt later, and the
            # result must not depend on how the stream was split)
            if counter >= (self._given_wrap or MAX_SEQ_WRAP):
                raise _BadLineError
        if not fields:
            raise _BadLineError(truncated=self.n_channels is not None)
        for _, v in fields:
            if not _NUMBER.match(v):
                raise _BadLineError
        row = [float(v) for _, v in fields]
        labels = [name for name, _ in fields]
        n = self.n_channels
        if n is not None and len(row) < n:
            raise _BadLineError(truncated=True)
        if (n is not None and len(row) > n) or len(row) > TEXT_MAX_CHANNELS:
            raise _BadLineError
        if not self._layout_seen:  # the first valid line fixes the layout and the names
            self._layout_seen = True
            self.n_channels = len(row)
            self._labels = _names_from_labels(labels)
        elif self._labels is not None and any(
            got is not None and got != want for got, want in zip(labels, self._labels, strict=True)
        ):
            raise _BadLineError  # other labels: another layout, not our stream
        return counter, row

    def _result(
        self, values: list[list[float]], counters: list[int], messages: list[str]
    ) -> Parsed:
        names = self.channel_names
        if not values:
            return _empty(self.n_channels, messages, names)
        raw = np.array(values, dtype=np.float64)
        if self.seq:
            c = np.array(counters, dtype=np.int64)
            keep, idx, breaks = self._seq.assign(c)
            if not keep.all():
                raw, c = raw[keep], c[keep]
            counter: IntArray | None = c
        else:
            idx, breaks, counter = self._seq.plain(len(values)), [], None
        self.stats.samples += int(idx.size)
        return Parsed(
            samples=self.scale.apply(raw),
            index=idx,
            counter=counter,
            breaks=tuple(breaks),
            messages=tuple(messages),
            channel_names=names,
        )


def _names_from_labels(labels: Sequence[str | None]) -> tuple[str, ...] | None:
    """Channel names from Serial-Plotter labels: missing ones become chK; None if unlabelled."""
    if not any(labels):
        return None
    names = tuple(lab or f"ch{i + 1}" for i, lab in enumerate(labels))
    return names if len(set(names)) == len(names) else None


# --------------------------------------------------------------------------------------
# Host timing: gaps of a stream without counters
# --------------------------------------------------------------------------------------

#: the smallest lost time the clock model reports. It must exceed the lateness that normal
#: delivery shows between reads: USB full-speed frames are 1 ms, an FTDI latency timer
#: 16 ms, a board printing in blocks (or a Bluetooth SPP link) 50-100 ms; the host reader's
#: own stalls add nothing (it then reads the backlog at once). 100 ms is 6 FTDI periods.
CLOCK_MIN_TOLERANCE_S = 0.1
#: the tolerance is also at least this many times the worst normal lateness just seen, and
#: this many times the usual time between deliveries (a board sending 100 ms blocks: a read
#: can be one block late when the host stalls, without any loss)
CLOCK_JITTER_FACTOR = 2.0
#: weight of a new delivery interval in its running mean (about the last 20 deliveries)
_PERIOD_ALPHA = 0.05
#: ... and at most this: a stream whose delivery is later than that is unusable for timing
CLOCK_MAX_TOLERANCE_S = 1.0
#: the reference offset is the minimum over this much arrival history; a board whose clock
#: runs 0.5 % slow (an Arduino's ceramic resonator) drifts 10 ms in it, well inside tolerance
CLOCK_WINDOW_S = 2.0
#: how long the worst normal lateness is remembered
CLOCK_JITTER_WINDOW_S = 10.0
#: a suspected gap is confirmed over three tolerances, within these bounds: a relay that
#: held data up (a starved pty relay or USB worker on a loaded host; 0.15 s seen with a
#: load of 12 on 2 cores) delivers its backlog within it, a real loss stays late. The
#: samples of that time are delivered, with the gap, once it is decided.
CLOCK_HOLD_FACTOR = 3.0
CLOCK_MIN_HOLD_S = 0.3
CLOCK_MAX_HOLD_S = 1.0


@dataclass
class _PendingGap:
    t0: float  # arrival of the first read after the silence
    ref: float  # the reference offset before it
    late: float  # the smallest lateness since, against ref: the lost time if it stays
    tolerance: float
    hold: float
    points: list[tuple[float, float]]  # (time, offset) of the held reads


class ArrivalClock:
    """Lost samples of a stream without sample counters, inferred from host arrival times.

    A board samples at ``fs``; sample ``k`` cannot arrive before ``t0 + k / fs``. For each
    read that brought samples, ``offset = t_arrival - stop / fs`` (``stop``: the stream index
    one past its last sample) is the board's start time plus that read's lateness. Delivery in
    bursts only ever makes the offset larger, so the minimum over the last
    :data:`CLOCK_WINDOW_S` of arrivals is the reference (a min filter). Lost samples move the
    offset up for good. When a read follows a silence the reader heard (it polled and got
    nothing, rather than being stalled itself) and its offset is later than the reference by
    more than :attr:`tolerance_s`, a gap is suspected and the reads of the next hold
    (:data:`CLOCK_HOLD_FACTOR` tolerances) decide: one that catches up means delivery was
    held up somewhere and nothing was lost; if all stay late, the gap is ``round(late * fs)``
    samples before the first of them (``late``: the smallest lateness in the hold, never more
    than the silence, plus the previous read's own lateness, could hold). The caller holds
    those reads meanwhile (:meth:`arrive` returns ``None``; :meth:`due` ends the hold when
    no read comes). The tolerance is the largest of :data:`CLOCK_MIN_TOLERANCE_S`, twice the
    worst lateness of the last :data:`CLOCK_JITTER_WINDOW_S` and twice the mean delivery
    interval, capped at :data:`CLOCK_MAX_TOLERANCE_S`. A late offset without a heard
    silence before it (the host reader stalled while the board was flow-controlled, so old
    bytes were waiting) re-anchors the reference instead of inventing a gap; the catch-up
    that follows brings it back down. After a reconnect (``broken``) continuity is known to
    be lost: the gap is the clock's estimate, at least one sample, at once.

    Pure: the caller supplies the times (``time.monotonic`` in the driver, a fake in tests).
    """

    def __init__(
        self,
        fs: float,
        *,
        min_tolerance_s: float = CLOCK_MIN_TOLERANCE_S,
        jitter_factor: float = CLOCK_JITTER_FACTOR,
        max_tolerance_s: float = CLOCK_MAX_TOLERANCE_S,
        window_s: float = CLOCK_WINDOW_S,
        jitter_window_s: float = CLOCK_JITTER_WINDOW_S,
    ) -> None:
        if not fs > 0 or not 0 < min_tolerance_s <= max_tolerance_s:
            raise ValueError(f"bad clock model: fs={fs}, tolerance {min_tolerance_s}..")
        self.fs = float(fs)
        self.min_tolerance_s = float(min_tolerance_s)
        self.jitter_factor = float(jitter_factor)
        self.max_tolerance_s = float(max_tolerance_s)
        self.window_s = float(window_s)
        self.jitter_window_s = float(jitter_window_s)
        # (time, offset) with increasing offsets: the front is the window's minimum
        self._low: collections.deque[tuple[float, float]] = collections.deque()
        # (time, lateness) with decreasing lateness: the front is the window's maximum
        self._late: collections.deque[tuple[float, float]] = collections.deque()
        self._t_prev: float | None = None
        self._period: float | None = None  # running mean of the intervals between deliveries
        self._prev_late = 0.0  # lateness of the last read decided
        self._pending: _PendingGap | None = None
        self.last_late_s = 0.0
        self.reanchors = 0

    @property
    def tolerance_s(self) -> float:
        """Lost time below this is not told from delivery jitter (see the module constants)."""
        jitter = max(self._late[0][1] if self._late else 0.0, self._period or 0.0)
        return min(self.max_tolerance_s, max(self.min_tolerance_s, self.jitter_factor * jitter))

    @property
    def reference(self) -> float | None:
        """The board's start time on the host clock, as estimated (None before any arrival)."""
        return self._low[0][1] if self._low else None

    @property
    def pending(self) -> bool:
        """A suspected gap is being confirmed: the reads since are held (see :meth:`arrive`)."""
        return self._pending is not None

    def arrive(
        self, t: float, stop: int, *, heard_s: float | None = None, broken: bool = False
    ) -> int | None:
        """The read that arrived at ``t`` and ends at index ``stop`` (its index before any
        gap found here). Returns the samples lost before the first read still held (the
        caller shifts it and every read held since by that), or ``None``: hold this read too,
        the decision is pending.

        ``heard_s``: how long the reader was listening and got nothing before this read
        (default: all the time since the previous arrival). Only a silence that was heard can
        hold lost samples: a reader that itself stalled finds the link's backlog waiting,
        possibly late if the board was flow-controlled meanwhile, and nothing lost."""
        offset = t - stop / self.fs
        while self._late and self._late[0][0] < t - self.jitter_window_s:
            self._late.popleft()  # the jitter of long ago no longer widens the tolerance
        silence = t - self._t_prev if self._t_prev is not None else 0.0
        heard = silence if heard_s is None else heard_s
        self._t_prev = t
        pend = self._pending
        if pend is not None:
            pend.points.append((t, offset))
            pend.late = min(pend.late, offset - pend.ref)
            if pend.late <= pend.tolerance:  # the backlog caught up: late, nothing lost
                return self._resolve(0)
            if t - pend.t0 >= pend.hold:  # still late after the hold: samples were lost
                return self._resolve(round(pend.late * self.fs))
            return None
        ref = self.reference
        late = 0.0 if ref is None else offset - ref
        self.last_late_s = late
        if ref is None:
            self._push_offset(t, offset)
            return 0
        tolerance = self.tolerance_s
        if broken:  # continuity is known to be lost; the clock only sizes the gap
            gap = max(1, round(late * self.fs))
            self._push_offset(t, offset - gap / self.fs)
            return gap
        if late > tolerance and heard > tolerance:
            # a gap, or delivery held up somewhere on the way (a starved USB or pty
            # relay): the reads that follow tell, a backlog catches up at once
            hold = min(CLOCK_MAX_HOLD_S, max(CLOCK_MIN_HOLD_S, CLOCK_HOLD_FACTOR * tolerance))
            # the loss fits in the silence, plus the age the previous read's last sample
            # already had (a block cut short by the loss arrives late)
            cap = silence + max(0.0, self._prev_late)
            self._pending = _PendingGap(t, ref, min(late, cap), tolerance, hold, [(t, offset)])
            return None
        self._prev_late = late
        if late > tolerance:  # late with no silence heard: the reference is stale
            self._low.clear()
            self.reanchors += 1
        else:
            if late > 0:
                self._push_late(t, late)
            p = self._period
            self._period = silence if p is None else p + _PERIOD_ALPHA * (silence - p)
        self._push_offset(t, offset)
        return 0

    def due(self, t: float) -> int | None:
        """With a decision pending and no read since confirming or refuting it: the gap
        once the hold has passed at ``t``, else ``None``."""
        pend = self._pending
        if pend is None or t - pend.t0 < pend.hold:
            return None
        return self._resolve(round(pend.late * self.fs))

    def settle(self) -> int | None:
        """Decide a pending gap now (the port went away): the estimate so far."""
        pend = self._pending
        return None if pend is None else self._resolve(round(pend.late * self.fs))

    def _resolve(self, gap: int) -> int:
        pend = self._pending
        assert pend is not None
        self._pending = None
        for t, offset in pend.points:
            self._push_offset(t, offset - gap / self.fs)
        self._prev_late = pend.late - gap / self.fs
        return gap

    def _push_offset(self, t: float, offset: float) -> None:
        low = self._low
        while low and low[-1][1] >= offset:
            low.pop()
        low.append((t, offset))
        while low[0][0] < t - self.window_s:
            low.popleft()

    def _push_late(self, t: float, late: float) -> None:
        q = self._late
        while q and q[-1][1] <= late:
            q.pop()
        q.append((t, late))


def make_parser(
    protocol: str,
    *,
    channels: int | None = None,
    seq: bool = False,
    seq_wrap: int | None = None,
    scale: Scale | None = None,
    max_gap: int | None = None,
    skip_first_line: bool = False,
) -> TextParser | Fob1Parser:
    if protocol == "fob1":
        return Fob1Parser(scale, channels=channels, max_gap=max_gap)
    if protocol == "text":
        return TextParser(
            channels, seq, seq_wrap, scale, max_gap=max_gap, skip_first_line=skip_first_line
        )
    raise ValueError(f"unknown serial protocol {protocol!r} (expected text or fob1)")


def text_line(values: Iterable[float], counter: int | None = None, sep: str = ",") -> bytes:
    """A text-protocol line (tests, docs, the writer)."""
    parts = [str(counter)] if counter is not None else []
    parts += [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return (sep.join(parts) + "\n").encode("ascii")
