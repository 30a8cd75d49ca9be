"""Pick the reader for a file from its first bytes and its extension, and run it."""

from __future__ import annotations

import importlib
import logging
import os
import stat
from collections.abc import Callable

import numpy as np

from .common import check_user_fs, one_line
from .model import FormatError, ReaderError, Recording
from .signatures import (
    BDF_MAGIC,
    EDF_MAGIC,
    OPENSIGNALS_MAGIC,
    SIMPLE_MAGIC,
    XDF_MAGIC,
    file_suffix,
    is_xdf_name,
)

log = logging.getLogger(__name__)

Reader = Callable[..., Recording]

# Each reader is imported when a file of its format is read: the others would only cost
# start-up time (the XDF reader imports xml and gzip; issue 8).
_READERS: dict[str, tuple[str, str]] = {
    "csv": ("csv_reader", "read_csv"),
    "edf": ("edf_reader", "read_edf"),
    "opensignals": ("bitalino_reader", "read_opensignals"),
    "bitalino-simple": ("bitalino_reader", "read_simple_text"),
    "brainflow": ("brainflow_reader", "read_brainflow"),
    "xdf": ("xdf_reader", "read_xdf"),
}


def reader(key: str) -> Reader:
    """The reading function for a format key of :data:`FORMATS`' values."""
    module, name = _READERS[key]
    found: Reader = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return found


# Names a user may pass as ``format``; the EDF family is told apart by the file itself.
FORMATS: dict[str, str] = {
    "csv": "csv",
    "tsv": "csv",
    "txt": "csv",
    "edf": "edf",
    "edf+": "edf",
    "bdf": "edf",
    "bdf+": "edf",
    "opensignals": "opensignals",
    "bitalino-simple": "bitalino-simple",
    "brainflow": "brainflow",
    "xdf": "xdf",
    "xdfz": "xdf",
}
_TEXT_EXTENSIONS = {".csv", ".tsv", ".txt", ".dat"}
_EDF_EXTENSIONS = {".edf", ".bdf", ".rec"}


def detect_format(path: str, head: bytes) -> str:
    """Reader key for a file: content first (magic bytes), then the extension."""
    if head.startswith((BDF_MAGIC, EDF_MAGIC)):
        return "edf"
    if head.startswith(XDF_MAGIC) or is_xdf_name(path):
        return "xdf"
    text = head.lstrip(b"\xef\xbb\xbf")
    if text.startswith(OPENSIGNALS_MAGIC.encode()):
        return "opensignals"
    if text.startswith(SIMPLE_MAGIC.encode()):
        return "bitalino-simple"
    ext = file_suffix(path).lower()
    if ext in _EDF_EXTENSIONS:
        return "edf"
    if ext in _TEXT_EXTENSIONS or b"\x00" not in head:
        return "csv"
    raise FormatError("unrecognised file type (not CSV text, EDF/BDF, XDF or BITalino/OpenSignals)")


def read_recording(
    path: str | os.PathLike[str],
    *,
    fs: float | None = None,
    units: str | None = None,
    format: str | None = None,
    board: str | int | None = None,
    stream: str | None = None,
) -> Recording:
    """Read a CSV, EDF(+), BDF(+), OpenSignals, BITalino text, BrainFlow or XDF file.

    ``fs`` is needed for a CSV without a time column; for a BrainFlow file it replaces the
    board's default rate; for other files it is a check (more than 1% off the file's rate is
    an error). ``units`` (``uV``, ``mV``, ``V``) is the unit of values the file does not
    label. ``board`` (a BrainFlow board name or id) selects the BrainFlow reader, which
    needs it: such files are never detected from content. ``stream`` names the XDF stream
    to read when there are several. Every failure is a :class:`ReaderError` with one line.
    """
    name = os.fspath(path)
    try:
        user_fs = check_user_fs(fs)
        if format is not None and format.strip().lower() not in FORMATS:
            raise FormatError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")
        try:
            # A FIFO, socket or device would block the read or never end: refuse it before
            # opening (opening a FIFO alone waits for a writer).
            st = os.stat(name) if os.path.exists(name) else None
            if st is not None and not stat.S_ISDIR(st.st_mode) and not stat.S_ISREG(st.st_mode):
                raise FormatError("not a regular file (a pipe, socket or device)")
            with open(name, "rb") as f:
                head = f.read(256)
        except FileNotFoundError:
            raise ReaderError(f"no such file: {name}") from None
        except IsADirectoryError:
            raise FormatError("it is a directory") from None
        if not head:
            raise FormatError("the file is empty")
        if format:
            key = FORMATS[format.strip().lower()]
        elif board is not None:
            key = "brainflow"
        else:
            key = detect_format(name, head)
        if board is not None and key != "brainflow":
            raise FormatError(f"the board setting applies to BrainFlow files only (this is {key})")
        if stream is not None and key != "xdf":
            raise FormatError(f"the stream setting applies to XDF files only (this is {key})")
        log.debug("reading %s as %s", name, key)
        # A value the file holds that overflows when scaled to µV (1e308 mV) becomes inf,
        # which the mapping treats as a missing sample; numpy's RuntimeWarning about it would
        # only print two lines of source code at the user.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            read = reader(key)
            if key == "brainflow":
                return read(name, fs=user_fs, units=units, board=board)
            if key == "xdf":
                return read(name, fs=user_fs, units=units, stream=stream)
            return read(name, fs=user_fs, units=units)
    except FormatError as exc:
        raise ReaderError(f"cannot read {name!r}: {one_line(str(exc), 300)}") from None
    except ReaderError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ReaderError(f"cannot read {name!r}: {one_line(reason)}") from None
    except MemoryError:
        raise ReaderError(f"cannot read {name!r}: not enough memory") from None
    except Exception as exc:
        # A parser bug must still reach the user as one line; the traceback goes to the log.
        log.exception("unexpected failure reading %s", name)
        raise ReaderError(
            f"cannot read {name!r}: internal error ({type(exc).__name__}: {one_line(str(exc))})"
        ) from None
