"""What tells the file formats apart: their first bytes and names.

Kept apart from the readers so that picking a reader imports only that reader (each one
costs start-up time: the XDF reader pulls in xml and gzip; issue 8's start of ``fireorder
analyze``). Names are split with ``os.path`` the way ``pathlib`` splits a file's name:
pathlib (with fnmatch, urllib.parse and ipaddress) is ~5 ms of a start that reads a CSV.
"""

from __future__ import annotations

import os

EDF_MAGIC = b"0       "
BDF_MAGIC = b"\xffBIOSEMI"
XDF_MAGIC = b"XDF:"
OPENSIGNALS_MAGIC = "# OpenSignals Text File Format"
SIMPLE_MAGIC = "# Simple Text Format"


def file_name(path: str) -> str:
    """``pathlib.Path(path).name`` of a file's path (trailing separators dropped)."""
    return os.path.basename(os.path.normpath(path)) if path not in ("", ".") else ""


def file_suffix(path: str) -> str:
    """``pathlib.Path(path).suffix``: from the last dot of the name, not a leading one."""
    name = file_name(path)
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def is_xdf_name(path: str) -> bool:
    return file_name(path).lower().endswith((".xdf", ".xdfz", ".xdf.gz"))
