"""Recorded EMG from files: CSV/TSV, EDF(+)/BDF(+) (including fireorder recordings), BITalino
OpenSignals and Simple Text, BrainFlow CSV (``board=``) and XDF from LabRecorder (``stream=``).

No Qt here. :func:`read_recording` loads a whole file into a :class:`Recording` (microvolts,
NaN rows for lost samples); :func:`resolve_channel` and :func:`derive_channels` pick channels
by name or derive bipolar ones ("A-B"). Every failure is a :class:`ReaderError`.

``Recording.roles`` (role -> channel name) is filled when the file says so: a channel named
after a role (``glute_l``), an EDF signal whose transducer field holds ``role=glute_l``, a
``# roles: glute_l=EMG1, lumbar_l=EMG3`` comment line above a CSV header, or the same
``roles: ...`` text in the EDF "recording additional" field.
"""

from __future__ import annotations

from .derive import derive_channels, resolve_channel
from .detect import FORMATS, read_recording
from .model import Annotation, ReaderError, Recording

__all__ = [
    "FORMATS",
    "Annotation",
    "ReaderError",
    "Recording",
    "derive_channels",
    "read_recording",
    "resolve_channel",
]
