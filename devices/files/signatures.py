"""What tells the file formats apart: their first bytes and names.

Kept apart from the readers so that picking a reader imports only that reader (each one
costs start-up time: the XDF reader pulls in xml and gzip, the EDF one the BDF writer's
tempfile; issue 8's start of ``fireorder analyze``).
"""

from __future__ import annotations

from pathlib import Path

EDF_MAGIC = b"0       "
BDF_MAGIC = b"\xffBIOSEMI"
XDF_MAGIC = b"XDF:"
OPENSIGNALS_MAGIC = "# OpenSignals Text File Format"
SIMPLE_MAGIC = "# Simple Text Format"


def is_xdf_name(path: str) -> bool:
    name = Path(path).name.lower()
    return name.endswith((".xdf", ".xdfz", ".xdf.gz"))
