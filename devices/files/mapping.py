"""A file's channels mapped to muscles: the one mapping analyze, replay and export all use.

The roles come from the caller (``{"glute_l": "EMG1", "lumbar_l": "EMG3-EMG4", ...}``; a
bipolar channel is ``A-B``) or, when none are given, from the file itself
(:attr:`Recording.roles`). Errors name the setting to change (``channels``); the CLI says
``--channels``, the window its mapping table.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from devices.files.derive import derive_channels
from devices.files.detect import read_recording
from devices.files.model import FormatError, ReaderError, Recording
from dsp.contract import MAX_PLAUSIBLE_UV, MIN_FS, ContractError, Role, StreamInfo, parse_role

log = logging.getLogger(__name__)


class MappingError(ReaderError):
    """The file's channels cannot be mapped to roles as asked (the message says how)."""


@dataclass(frozen=True)
class MappedRecording:
    recording: Recording
    data: NDArray[np.float64]  # microvolts; role channels first, in the order of ``roles``
    info: StreamInfo

    def source(self, path: str) -> dict[str, Any]:
        """The ``source`` block of the analysis document, as ``analyze --json`` writes it."""
        return source_block(self.recording, path)


def source_block(rec: Recording, path: str) -> dict[str, Any]:
    """The ``source`` block of the analysis document for recording ``rec`` read from ``path``."""
    return {
        "path": path,
        "format": rec.format,
        "fs": float(rec.fs),
        "duration_s": round(rec.data.shape[0] / rec.fs, 6),
        "channels": list(rec.channel_names),
    }


def map_recording(
    rec: Recording,
    channels: Mapping[str, str] | None = None,
    *,
    source: str = "",
    keep_unmapped: bool = False,
) -> MappedRecording:
    """Map ``rec``'s channels to roles (``channels``, else the file's own roles).

    ``keep_unmapped`` appends the channels without a role (replay shows them)."""
    if not rec.fs >= MIN_FS:  # a file of slow signals (or a lying header): no sEMG band
        raise FormatError(
            f"sampling rate {rec.fs:.4g} Hz is too low for sEMG (20-450 Hz needs "
            f">= 1000 Hz; fireorder accepts >= {MIN_FS:g} Hz)"
        )
    spec = dict(channels) if channels else dict(rec.roles)
    if not spec:
        raise MappingError(
            f"{source or 'the file'} does not name its roles: set channels "
            f"(role=CHANNEL; channels are: {', '.join(rec.channel_names)})"
        )
    try:
        roles = [parse_role(r) for r in spec]
    except ContractError as exc:
        raise MappingError(str(exc)) from None
    data, names = derive_channels(rec, {r.value: spec[k] for r, k in zip(roles, spec, strict=True)})
    if keep_unmapped:
        used = set(spec.values())
        extra = [i for i, n in enumerate(rec.channel_names) if n not in used]
        if extra:
            data = np.column_stack([data, rec.data[:, extra]])
            names = [*names, *(rec.channel_names[i] for i in extra)]
    role_index: dict[Role, int] = {r: i for i, r in enumerate(roles)}
    info = StreamInfo(rec.fs, tuple(names), role_index, source=source)
    data = np.ascontiguousarray(data, dtype=np.float64)
    # Two reductions decide the usual case without a temporary the size of the data: within
    # range (a NaN fails both tests and takes the full look below, where it stays NaN).
    tame = data.size == 0 or (
        float(np.max(data)) <= MAX_PLAUSIBLE_UV and float(np.min(data)) >= -MAX_PLAUSIBLE_UV
    )
    wild = None if tame else np.abs(data) > MAX_PLAUSIBLE_UV  # (inf too; NaN stays NaN)
    if wild is not None and wild.any():
        if not data.flags.writeable or np.shares_memory(data, rec.data):
            data = data.copy()
        data[wild] = np.nan
        log.warning(
            "%s: %d value(s) beyond ±%g µV (not a voltage the skin makes): treated as "
            "missing samples (gaps)",
            os.path.basename(source) or "the file",
            int(np.count_nonzero(wild)),
            MAX_PLAUSIBLE_UV,
        )
    return MappedRecording(rec, data, info)


def load_mapped(
    path: str,
    channels: Mapping[str, str] | None = None,
    *,
    fs: float | None = None,
    units: str | None = None,
    board: str | None = None,
    stream: str | None = None,
    keep_unmapped: bool = False,
) -> MappedRecording:
    """Read ``path`` (any supported format) and map its channels (see :func:`map_recording`)."""
    rec = read_recording(path, fs=fs, units=units, board=board, stream=stream)
    return map_recording(rec, channels, source=path, keep_unmapped=keep_unmapped)
