"""The serial wire protocols: pure parsers, the C encoder of the firmware, the sketch itself.

No I/O but for compiling and running small C programs with the host's gcc (skipped if
missing). Counting of garbage, bad CRCs, truncated frames and gaps is checked exactly.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.drivers.serial_protocol import (
    MAX_LINE_BYTES,
    Fob1Parser,
    Parsed,
    Scale,
    TextParser,
    crc16_ccitt_false,
    encode_fob1,
    encode_fob1_frames,
    fob1_frame_length,
    make_parser,
)

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "resources" / "firmware"
DOC = ROOT / "docs" / "serial-protocol.md"
FUZZ = settings(
    # FIREORDER_FUZZ_EXAMPLES=5000 for a long local run
    max_examples=int(os.environ.get("FIREORDER_FUZZ_EXAMPLES", "150")),
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
)


def frames(counters: list[int] | range, n: int = 3, base: int = 0) -> bytes:
    c = np.asarray(list(counters))
    values = (c[:, None] * 10 + np.arange(n)[None, :] + base) % 30000
    return encode_fob1_frames(c, values)


def feed_pieces(parser: Fob1Parser | TextParser, data: bytes, cuts: list[int]) -> Parsed:
    """Feed ``data`` split at ``cuts`` and join the results."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    outs = [parser.feed(data[a:b]) for a, b in itertools.pairwise(bounds)]
    n = parser.n_channels or 0
    samples = [o.samples for o in outs if len(o)]
    return Parsed(
        samples=np.concatenate(samples) if samples else np.empty((0, n)),
        index=np.concatenate([o.index for o in outs]),
        messages=tuple(m for o in outs for m in o.messages),
    )


# --------------------------------------------------------------------------------------
# CRC, encoder, scale
# --------------------------------------------------------------------------------------


def test_crc_check_value_and_known_frame() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF
    # produced by resources/firmware/fireorder_fob1.c (see the doc's test vectors)
    assert encode_fob1(65535, [-32768, 32767, 0]).hex() == "a55a03ffff0080ff7f00004299"
    assert fob1_frame_length(8) == 23


def test_encoder_rejects_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode_fob1(0, [])
    with pytest.raises(ValueError):
        encode_fob1(0, list(range(33)))
    with pytest.raises(ValueError):
        encode_fob1(0, [40000])
    with pytest.raises(ValueError):
        encode_fob1(0, [1.5])


def test_scale_from_gain_offset_and_from_adc() -> None:
    s = Scale(gain=2.0, offset=10.0, unit="counts")
    np.testing.assert_array_equal(s.apply([10, 11, 20]), [0.0, 2.0, 20.0])
    adc = Scale.from_adc(bits=10, vref=5.0, amp_gain=1000.0)
    assert adc.offset == 512.0 and adc.unit == "counts"
    assert adc.gain == pytest.approx(5.0 / 1024 / 1000 * 1e6)  # 4.88 uV per count
    assert Scale.from_adc(12, 3.3, signed=True).offset == 0.0
    assert Scale.from_value({"bits": 10, "vref": 5.0, "amp_gain": 1000.0}) == adc
    assert Scale.from_value({"gain": 0.5}) == Scale(gain=0.5)
    assert Scale.from_value(None).is_identity
    per_channel = Scale(gain=(1.0, 2.0), offset=(0.0, 1.0))
    np.testing.assert_array_equal(per_channel.apply([[1, 1], [2, 2]]), [[1, 0], [2, 2]])
    with pytest.raises(ValueError):
        Scale(gain=0.0)


# --------------------------------------------------------------------------------------
# fob1
# --------------------------------------------------------------------------------------


def test_fob1_exact_values_indices_and_scale() -> None:
    p = Fob1Parser(Scale(gain=0.5, offset=2.0))
    out = p.feed(encode_fob1(7, [2, 4, -2]) + encode_fob1(8, [32767, -32768, 0]))
    np.testing.assert_array_equal(out.index, [0, 1])
    np.testing.assert_array_equal(out.counter, [7, 8])
    np.testing.assert_array_equal(out.samples, [[0.0, 1.0, -2.0], [16382.5, -16385.0, -1.0]])
    assert out.samples.dtype == np.float64
    assert out.channel_names == ("ch1", "ch2", "ch3")
    assert p.stats.samples == 2 and p.stats.resyncs == 0 and p.stats.garbage_bytes == 0


def test_fob1_garbage_is_counted_exactly() -> None:
    p = Fob1Parser()
    data = b"boot\x00\xff" + frames(range(3)) + b"xyz" + frames(range(3, 5)) + b"q"
    out = p.feed(data)
    np.testing.assert_array_equal(out.index, np.arange(5))
    assert (p.stats.garbage_bytes, p.stats.resyncs) == (6 + 3 + 1, 3)
    assert p.stats.crc_errors == 0 and p.stats.gaps == 0


def test_fob1_bad_crc_is_one_error_and_one_lost_sample() -> None:
    good = frames(range(10))
    size = fob1_frame_length(3)
    bad = bytearray(good)
    bad[4 * size + 7] ^= 0x01  # a sample byte of counter 4
    p = Fob1Parser()
    out = p.feed(bytes(bad))
    np.testing.assert_array_equal(out.counter, [0, 1, 2, 3, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(out.index, [0, 1, 2, 3, 5, 6, 7, 8, 9])
    s = p.stats
    assert (s.crc_errors, s.resyncs, s.garbage_bytes, s.truncated) == (1, 1, size, 0)
    assert (s.gaps, s.lost_samples) == (1, 1)


@pytest.mark.parametrize("cut", range(2, fob1_frame_length(3)))
def test_fob1_truncated_frame_is_recognised_at_any_length(cut: int) -> None:
    size = fob1_frame_length(3)
    data = frames([0]) + frames([1])[:cut] + frames(range(2, 5))
    p = Fob1Parser()
    out = p.feed(data)
    np.testing.assert_array_equal(out.counter, [0, 2, 3, 4])
    s = p.stats
    assert (s.truncated, s.crc_errors, s.resyncs, s.garbage_bytes) == (1, 0, 1, cut)
    assert (s.gaps, s.lost_samples) == (1, 1)
    assert s.garbage_bytes + 4 * size == s.bytes


def test_fob1_a_lone_sync_byte_is_just_garbage() -> None:
    p = Fob1Parser()
    p.feed(frames([0]) + b"\xa5" + frames([1]))
    assert (p.stats.truncated, p.stats.garbage_bytes, p.stats.resyncs) == (0, 1, 1)


def test_fob1_counter_jumps_wraps_and_duplicates() -> None:
    p = Fob1Parser()
    out = p.feed(frames([65533, 65534, 65535, 0, 1, 5, 5, 6, 1006]))
    np.testing.assert_array_equal(out.index, [0, 1, 2, 3, 4, 8, 9, 1009])
    s = p.stats
    assert (s.gaps, s.lost_samples, s.duplicates) == (2, 3 + 999, 1)
    assert out.breaks == ()
    assert [r[0] for r in out.runs()] == [0, 8, 1009]
    assert [len(r[1]) for r in out.runs()] == [5, 2, 1]


def test_fob1_counter_jump_beyond_max_gap_is_a_break() -> None:
    p = Fob1Parser(max_gap=100)
    out = p.feed(frames([10, 11, 300, 301]))
    np.testing.assert_array_equal(out.index, [0, 1, 2, 3])
    assert out.breaks == (2,)
    assert (p.stats.seq_breaks, p.stats.gaps) == (1, 0)


def test_fob1_restart_and_flush() -> None:
    p = Fob1Parser()
    p.feed(frames([100, 101]) + frames([102])[:9])
    p.flush()
    assert (p.stats.truncated, p.stats.garbage_bytes, p.pending_bytes) == (1, 9, 0)
    p.restart_sequence()
    out = p.feed(frames([7, 8]))
    np.testing.assert_array_equal(out.index, [2, 3])  # continues; the caller fills the gap
    assert out.breaks == (0,)
    assert p.stats.gaps == 0


def test_fob1_other_channel_count_is_a_mismatch_not_data() -> None:
    p = Fob1Parser(channels=3)
    out = p.feed(frames([0], n=3) + frames([1], n=4) + frames([2], n=3))
    np.testing.assert_array_equal(out.counter, [0, 2])
    assert p.stats.channel_mismatch == 1
    with pytest.raises(ValueError):
        Fob1Parser(channels=33)


def test_fob1_learns_channel_count_and_ignores_a_false_sync_in_garbage() -> None:
    p = Fob1Parser()
    # a sync followed by an impossible channel count, then a real 8-channel stream
    out = p.feed(b"\xa5\x5a\x99" + frames(range(4), n=8))
    assert p.n_channels == 8 and len(out) == 4
    assert p.stats.garbage_bytes == 3 and p.stats.crc_errors == 0


# --------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------


def test_text_values_separators_crlf_and_scale() -> None:
    p = TextParser(scale=Scale(gain=2.0))
    out = p.feed(b"1,2,3\r\n4 5 6\n7\t8\t9\n10;11;12\n-1.5, +2e1 ,.5\n")
    np.testing.assert_array_equal(
        out.samples / 2, [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [-1.5, 20, 0.5]]
    )
    np.testing.assert_array_equal(out.index, np.arange(5))
    assert out.counter is None and p.channel_names == ("ch1", "ch2", "ch3")


def test_text_labels_become_channel_names() -> None:
    p = TextParser()
    out = p.feed(b"glute_l:1,lumbar_l: 2\nglute_l:3,lumbar_l:4\n5,6\n")
    assert p.channel_names == ("glute_l", "lumbar_l")
    assert out.channel_names == ("glute_l", "lumbar_l")
    np.testing.assert_array_equal(out.samples, [[1, 2], [3, 4], [5, 6]])
    p.feed(b"other:1,lumbar_l:2\n")  # another layout: not our stream
    assert p.stats.bad_lines == 1


def test_text_messages_bad_and_truncated_lines_counted_exactly() -> None:
    p = TextParser(channels=3)
    lines = [b"1,2,3\n", b"# hello board\r\n", b"1,2\n", b"abc,def\n", b"\n", b"4,5,6,7\n"]
    out = p.feed(b"".join(lines) + b"8,9,10\n")
    assert out.messages == ("hello board",)
    np.testing.assert_array_equal(out.samples, [[1, 2, 3], [8, 9, 10]])
    s = p.stats
    assert (s.messages, s.truncated, s.bad_lines, s.resyncs) == (1, 1, 2, 1)
    assert s.garbage_bytes == len(b"1,2\n") + len(b"abc,def\n") + len(b"4,5,6,7\n")


def test_text_seq_gaps_duplicates_and_given_wrap() -> None:
    p = TextParser(seq=True, seq_wrap=1000)
    out = p.feed(b"997,1\n998,2\n999,3\n0,4\n3,5\n3,5\n4,6\n1000,7\n")
    np.testing.assert_array_equal(out.counter, [997, 998, 999, 0, 3, 4])
    np.testing.assert_array_equal(out.index, [0, 1, 2, 3, 6, 7])
    s = p.stats
    assert (s.gaps, s.lost_samples, s.duplicates, s.bad_lines) == (1, 2, 1, 1)


@pytest.mark.parametrize(("top", "wrap"), [(255, 256), (999, 1000), (65535, 65536), (9999, 10000)])
def test_text_seq_wrap_is_inferred(top: int, wrap: int) -> None:
    p = TextParser(seq=True)
    data = b"".join(f"{c},{c % 7}\n".encode() for c in [top - 2, top - 1, top, 0, 1, 3])
    out = p.feed(data)
    assert p.seq_wrap == wrap
    np.testing.assert_array_equal(out.index, [0, 1, 2, 3, 4, 6])
    assert (p.stats.gaps, p.stats.lost_samples) == (1, 1)


def test_text_inferred_wrap_survives_a_lost_top_value() -> None:
    p = TextParser(seq=True)
    p.feed(b"253,0\n254,0\n1,0\n")  # 255 and 0 were lost
    assert p.seq_wrap == 256 and p.stats.lost_samples == 2


def test_text_skip_first_line_keeps_messages() -> None:
    p = TextParser(skip_first_line=True)
    out = p.feed(b"3,4\n5,6,7\n8,9,10\n")  # "3,4" may be the tail of a line
    assert p.n_channels == 3 and len(out) == 2 and p.stats.skipped_lines == 1
    q = TextParser(skip_first_line=True)
    out = q.feed(b"# boot\n1,2\n")
    assert out.messages == ("boot",) and len(out) == 1


def test_text_overlong_line_is_garbage_whatever_the_split() -> None:
    junk = b"x" * (MAX_LINE_BYTES + 10)
    data = b"1,2\n" + junk + b"\n3,4\n"
    for step in (len(data), 1000, 7):
        p = TextParser()
        out = feed_pieces(p, data, list(range(step, len(data), step)))
        np.testing.assert_array_equal(out.samples, [[1, 2], [3, 4]])
        assert (p.stats.bad_lines, p.stats.garbage_bytes) == (1, len(junk) + 1)


def test_text_flush_counts_an_unfinished_line() -> None:
    p = TextParser()
    p.feed(b"1,2\n3,")
    p.flush()
    assert (p.stats.truncated, p.stats.garbage_bytes) == (1, 2)


def test_make_parser_rejects_unknown_protocols() -> None:
    assert isinstance(make_parser("fob1"), Fob1Parser)
    assert isinstance(make_parser("text", seq=True), TextParser)
    with pytest.raises(ValueError, match="unknown serial protocol"):
        make_parser("morse")


# --------------------------------------------------------------------------------------
# Properties: random input never raises, and the split never matters
# --------------------------------------------------------------------------------------

cut_lists = st.lists(st.integers(min_value=1, max_value=4000), max_size=40)


@FUZZ
@given(data=st.binary(max_size=3000), cuts=cut_lists)
def test_random_bytes_never_raise_and_every_byte_is_accounted(data: bytes, cuts: list[int]) -> None:
    p = Fob1Parser()
    out = feed_pieces(p, data, cuts)
    s = p.stats
    assert s.bytes == len(data)
    if p.n_channels:
        frame_bytes = (s.samples + s.duplicates) * fob1_frame_length(p.n_channels)
        assert s.garbage_bytes + frame_bytes + p.pending_bytes == len(data)
    else:
        assert s.garbage_bytes + p.pending_bytes == len(data) and len(out) == 0
    t = TextParser(seq=True)
    feed_pieces(t, data, cuts)
    assert t.stats.bytes == len(data)


@st.composite
def fob1_streams(draw: st.DrawFn) -> bytes:
    """Valid frames with counter jumps, mixed with garbage, bad CRCs and truncations."""
    n = draw(st.integers(1, 32))
    counter = draw(st.integers(0, 65535))
    out = bytearray()
    for _ in range(draw(st.integers(0, 40))):
        counter = (counter + draw(st.sampled_from([1, 1, 1, 1, 2, 0, 300]))) % 65536
        values = draw(st.lists(st.integers(-32768, 32767), min_size=n, max_size=n))
        frame = encode_fob1(counter, values)
        fault = draw(st.sampled_from(["ok"] * 6 + ["garbage", "crc", "cut", "noise"]))
        if fault == "garbage":
            out += draw(st.binary(max_size=30))
        elif fault == "crc":
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        elif fault == "cut":
            frame = frame[: draw(st.integers(1, len(frame) - 1))]
        elif fault == "noise":
            pos = draw(st.integers(0, len(frame) - 1))
            frame = frame[:pos] + bytes([draw(st.integers(0, 255))]) + frame[pos + 1 :]
        out += frame
    return bytes(out)


@FUZZ
@given(stream=fob1_streams(), cuts=cut_lists)
def test_fob1_split_invariance(stream: bytes, cuts: list[int]) -> None:
    whole, split = Fob1Parser(), Fob1Parser()
    a = feed_pieces(whole, stream, [])
    b = feed_pieces(split, stream, cuts)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.index, b.index)
    assert whole.stats == split.stats
    assert whole.pending_bytes == split.pending_bytes


@FUZZ
@given(values=st.lists(st.integers(-32768, 32767), min_size=8, max_size=8 * 60), cuts=cut_lists)
def test_fob1_clean_stream_gives_every_sample_in_any_split(
    values: list[int], cuts: list[int]
) -> None:
    v = np.array(values[: len(values) // 8 * 8]).reshape(-1, 8)
    stream = encode_fob1_frames(np.arange(len(v)) + 65500, v)
    p = Fob1Parser()
    out = feed_pieces(p, stream, cuts)
    np.testing.assert_array_equal(out.samples, v)
    np.testing.assert_array_equal(out.index, np.arange(len(v)))
    assert p.stats.garbage_bytes == 0 and p.pending_bytes == 0


text_pieces = st.one_of(
    st.lists(st.integers(-999, 999), min_size=3, max_size=3).map(
        lambda v: (",".join(map(str, v)) + "\n").encode()
    ),
    st.lists(st.integers(-999, 999), min_size=3, max_size=3).map(
        lambda v: ("a:{} b:{}\tc:{}\r\n".format(*v)).encode()
    ),
    st.just(b"# a message\n"),
    st.just(b"1,2\n"),
    st.just(b"\n"),
    st.binary(max_size=12),
)


@FUZZ
@given(
    pieces=st.lists(text_pieces, max_size=40),
    seq=st.booleans(),
    skip=st.booleans(),
    cuts=cut_lists,
)
def test_text_split_invariance(pieces: list[bytes], seq: bool, skip: bool, cuts: list[int]) -> None:
    counter = 250
    lines = []
    for piece in pieces:  # with seq, number the sample lines (wrapping at 256)
        if seq and (piece[:1].isdigit() or piece[:1] in (b"-", b"a")):
            counter += 1
            lines.append(f"{counter % 256},".encode() + piece)
        else:
            lines.append(piece)
    stream = b"".join(lines)
    whole = TextParser(seq=seq, skip_first_line=skip)
    split = TextParser(seq=seq, skip_first_line=skip)
    a = feed_pieces(whole, stream, [])
    b = feed_pieces(split, stream, cuts)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.index, b.index)
    assert a.messages == b.messages
    assert whole.stats == split.stats


# --------------------------------------------------------------------------------------
# The firmware's C encoder, compiled with the host's gcc
# --------------------------------------------------------------------------------------

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


@pytest.fixture(scope="module")
def c_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    exe = tmp_path_factory.mktemp("fob1c") / "test_vectors"
    cmd = [
        "gcc",
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O2",
        "-o",
        str(exe),
        str(FIRMWARE / "test_vectors.c"),
        str(FIRMWARE / "fireorder_fob1.c"),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return exe


def run_c(exe: Path, commands: list[str]) -> list[str]:
    proc = subprocess.run(
        [str(exe)],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def shared_vectors() -> list[tuple[int, list[int]]]:
    rng = np.random.default_rng(20240601)
    vecs: list[tuple[int, list[int]]] = [
        (0, [0]),
        (65535, [-32768, 32767, 0]),
        (65534, [-1, 1, -32768, 32767, 0x5AA5, -0x5A5B, 255, -256]),
        (0x5AA5, [0xA5, 0x5A]),
        (1, list(range(-16, 16))),  # 32 channels, the maximum
    ]
    for c in [65533, 65534, 65535, 0, 1]:  # across the counter wrap
        vecs.append((c, [c - 32768, 32767 - c % 7]))
    for _ in range(40):
        n = int(rng.integers(1, 33))
        vecs.append((int(rng.integers(0, 65536)), rng.integers(-32768, 32768, n).tolist()))
    return vecs


@needs_gcc
def test_c_crc_matches_python(c_vectors: Path) -> None:
    rng = np.random.default_rng(7)
    blobs = [b"123456789", b"", b"\x00", b"\xff" * 70] + [
        rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes() for _ in range(30)
    ]
    out = run_c(c_vectors, [f"crc {b.hex()}" for b in blobs])
    assert out[0] == "29b1"
    assert [int(x, 16) for x in out] == [crc16_ccitt_false(b) for b in blobs]


@needs_gcc
def test_c_frames_match_python_encoder_and_parse_back(c_vectors: Path) -> None:
    vecs = shared_vectors()
    out = run_c(c_vectors, [f"frame {c} " + " ".join(map(str, s)) for c, s in vecs])
    assert len(out) == len(vecs)
    for (counter, samples), hexframe in zip(vecs, out, strict=True):
        frame = bytes.fromhex(hexframe)
        assert frame == encode_fob1(counter, samples)
        parsed = Fob1Parser().feed(frame)
        assert parsed.counter is not None and int(parsed.counter[0]) == counter
        np.testing.assert_array_equal(parsed.samples[0], samples)
    # the wrap run, as one stream: consecutive, no gap
    wrap = b"".join(bytes.fromhex(h) for h in out[5:10])
    parsed = Fob1Parser().feed(wrap)
    np.testing.assert_array_equal(parsed.index, np.arange(5))


@needs_gcc
def test_c_encoder_rejects_bad_channel_counts(c_vectors: Path) -> None:
    too_many = "frame 1 " + " ".join(["0"] * 33)
    assert run_c(c_vectors, ["frame 1", too_many, "frame 70000 1"]) == ["error"] * 3


def doc_vectors() -> list[tuple[int, list[int], str]]:
    """The ``frame <counter> <samples...> -> <hex>`` lines of the protocol document."""
    text = DOC.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^frame ([0-9]+)((?: -?[0-9]+)+) -> ((?:[0-9a-f]{2} ?)+)$", text, re.M):
        out.append((int(m[1]), [int(v) for v in m[2].split()], m[3].replace(" ", "")))
    return out


def test_doc_examples_are_real_frames() -> None:
    vecs = doc_vectors()
    assert len(vecs) >= 3
    for counter, samples, hexframe in vecs:
        assert encode_fob1(counter, samples).hex() == hexframe


@needs_gcc
def test_doc_examples_come_from_the_c_encoder(c_vectors: Path) -> None:
    vecs = doc_vectors()
    out = run_c(c_vectors, [f"frame {c} " + " ".join(map(str, s)) for c, s, _ in vecs])
    assert out == [h for _, _, h in vecs]


# --------------------------------------------------------------------------------------
# The Arduino sketch itself, on host stand-ins for the AVR registers and Serial
# --------------------------------------------------------------------------------------

AVR_STUB = r"""
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#define F_CPU 16000000UL
#define __AVR__ 1
#define _BV(b) (1U << (b))
#define CS10 0
#define CS11 1
#define WGM12 3
#define OCIE1A 1
#define REFS0 6
#define ADEN 7
#define ADSC 6
#define ADIE 3
#define ADPS0 0
#define ADPS1 1
#define ADPS2 2
volatile uint8_t TCCR1A, TCCR1B, TIMSK1, ADMUX, ADCSRA, ADCSRB;
volatile uint16_t TCNT1, OCR1A, ADC;
#define ISR(vec) extern "C" void vec(void)
static int irq_on = 1;
static void noInterrupts() { irq_on = 0; }
static void interrupts() { irq_on = 1; }
struct HostSerial {
  unsigned long baud = 0;
  void begin(unsigned long b) { baud = b; }
  size_t write(const uint8_t *d, size_t n) { return fwrite(d, 1, n, stdout); }
  size_t print(const char *s) { return fwrite(s, 1, strlen(s), stdout); }
  size_t print(char c) { return fwrite(&c, 1, 1, stdout); }
  size_t print(long v) { return (size_t)printf("%ld", v); }
};
static HostSerial Serial;
"""

HARNESS = r"""
#include "fireorder_emg.ino"
#include <stdlib.h>

static uint32_t ticks = 0;
static uint16_t fake(uint8_t pin, uint32_t t) { return (uint16_t)((t * 7u + pin * 100u) % 1024u); }

// Complete the conversions the sketch starts, as the ADC would, with values of tick t.
static void convert(uint32_t t) {
  while (ADCSRA & _BV(ADSC)) {
    ADCSRA &= (uint8_t)~_BV(ADSC);
    ADC = fake(ADMUX & 0x0F, t);
    ADC_vect();
  }
}

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  long sets = atol(argv[1]), burst_at = atol(argv[2]), burst = atol(argv[3]);
  long overrun_at = atol(argv[4]);
  setup();
  for (long i = 0; i < sets; i++) {
    uint32_t t = ticks++;
    TIMER1_COMPA_vect();      // starts the set of tick t
    if (i == overrun_at) {    // the next tick comes while the ADC still converts
      ticks++;
      TIMER1_COMPA_vect();
    }
    convert(t);
    if (i < burst_at || i >= burst_at + burst) loop();  // during the burst loop() starves
  }
  loop();
  fprintf(stderr, "OCR1A=%u TCCR1B=%u TIMSK1=%u ADCSRA=%u baud=%lu",
          (unsigned)OCR1A, (unsigned)TCCR1B, (unsigned)TIMSK1, (unsigned)ADCSRA, Serial.baud);
  fprintf(stderr, " overruns=%u overflows=%u irq=%d\n",
          (unsigned)overruns, (unsigned)overflows, irq_on);
  return 0;
}
"""


def run_sketch(tmp: Path, defines: dict[str, int], args: list[int]) -> tuple[bytes, dict[str, int]]:
    if shutil.which("g++") is None or shutil.which("gcc") is None:
        pytest.skip("gcc/g++ not installed")
    (tmp / "avr_stub.h").write_text(AVR_STUB)
    (tmp / "harness.cpp").write_text(HARNESS)
    exe = tmp / "sketch"
    flags = [f"-D{k}={v}" for k, v in defines.items()]
    obj = tmp / "fob1.o"
    fob1_c = str(FIRMWARE / "fireorder_fob1.c")
    cc = ["gcc", "-std=c99", "-Wall", "-Werror", "-c", "-o", str(obj), fob1_c]
    subprocess.run(cc, check=True, capture_output=True, timeout=60)
    cxx = [
        *("g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function", "-O1"),
        *flags,
        *("-include", str(tmp / "avr_stub.h"), "-I", str(FIRMWARE)),
        *("-I", str(FIRMWARE / "fireorder_emg"), "-o", str(exe), str(tmp / "harness.cpp")),
        str(obj),
    ]
    build = subprocess.run(cxx, capture_output=True, text=True, timeout=60, check=False)
    assert build.returncode == 0, build.stderr
    proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    regs = dict(re.findall(r"(\w+)=(\d+)", proc.stderr.decode()))
    return proc.stdout, {k: int(v) for k, v in regs.items()}


def fake(pin: np.ndarray, tick: np.ndarray) -> np.ndarray:
    return (tick * 7 + pin * 100) % 1024


def test_sketch_sends_every_set_with_exact_gaps(tmp_path: Path) -> None:
    sets, burst_at, burst, overrun_at = 70_000, 1000, 40, 5000  # the counter wraps
    out, regs = run_sketch(
        tmp_path, {"FS_HZ": 2000, "N_CHANNELS": 4}, [sets, burst_at, burst, overrun_at]
    )
    assert regs["OCR1A"] == 16_000_000 // 2000 - 1
    assert regs["TCCR1B"] == (1 << 3) | 1  # CTC, no prescaler
    assert regs["ADCSRA"] & 0x07 == 0b110  # 8000 conversions/s: ADC clock 250 kHz
    assert regs["baud"] == 1_000_000 and regs["irq"] == 1
    # burst + 1 sets come before the next loop(); the ring holds RING_FRAMES - 1 of them
    ring = 32
    assert regs["overflows"] == burst + 1 - (ring - 1) and regs["overruns"] == 1
    p = Fob1Parser(channels=4)
    parsed = p.feed(out)
    assert p.stats.garbage_bytes == 0 and p.pending_bytes == 0
    # every set carries the values sampled at its own tick
    tick = parsed.index  # the stream starts at tick 0, so index == tick
    expected = fake(np.arange(4)[None, :], tick[:, None])
    np.testing.assert_array_equal(parsed.samples, expected)
    assert parsed.counter is not None
    np.testing.assert_array_equal(parsed.counter, tick % 65536)
    assert p.stats.gaps == 2 and p.stats.lost_samples == regs["overflows"] + regs["overruns"]
    assert len(parsed) == sets - p.stats.lost_samples + 1  # the overrun tick adds one tick


def test_sketch_text_mode_lines_parse_with_seq(tmp_path: Path) -> None:
    out, regs = run_sketch(
        tmp_path, {"FS_HZ": 250, "N_CHANNELS": 6, "WIRE_TEXT": 1}, [300, 10**6, 0, 10**6]
    )
    assert regs["ADCSRA"] & 0x07 == 0b111  # 1500 conversions/s: the slow, accurate clock
    p = TextParser(seq=True, seq_wrap=65536)
    parsed = p.feed(out)
    assert parsed.messages == ("fireorder_emg text fs=250 channels=6",)
    np.testing.assert_array_equal(parsed.index, np.arange(300))
    expected = fake(np.arange(6)[None, :], parsed.index[:, None])
    np.testing.assert_array_equal(parsed.samples, expected)
    assert p.stats.bad_lines == 0 and p.stats.gaps == 0
