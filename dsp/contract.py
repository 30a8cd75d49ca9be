"""The data contract every source, stage and consumer agrees on.

A source announces a :class:`StreamInfo` once, then emits :class:`Chunk` objects. A chunk
carries the index of its first sample so that gaps and duplicates are detectable end to end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from dsp.limits import Limit


class Role(StrEnum):
    """Muscle role of a channel. Channels without a role are kept and shown, not analysed."""

    GLUTE_L = "glute_l"
    GLUTE_R = "glute_r"
    LUMBAR_L = "lumbar_l"
    LUMBAR_R = "lumbar_r"

    @property
    def is_glute(self) -> bool:
        return self in (Role.GLUTE_L, Role.GLUTE_R)

    @property
    def is_lumbar(self) -> bool:
        return self in (Role.LUMBAR_L, Role.LUMBAR_R)

    @property
    def side(self) -> str:
        return "left" if self.value.endswith("_l") else "right"

    @property
    def label(self) -> str:
        muscle = "glute max" if self.is_glute else "lumbar ES"
        return f"{self.side} {muscle}"


GLUTES: tuple[Role, ...] = (Role.GLUTE_L, Role.GLUTE_R)
LUMBARS: tuple[Role, ...] = (Role.LUMBAR_L, Role.LUMBAR_R)


class ContractError(ValueError):
    """A stream description or chunk that breaks the contract."""


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ContractError(f"unknown role {text!r} (expected one of: {names})") from None



#: sampling rates fireorder accepts anywhere (CLI, files, devices). sEMG needs >= 1 kHz for its
#: 20-450 Hz band, but files of other biosignals at a few hundred Hz still open; no sEMG
#: amplifier samples above 100 kHz, and buffers sized by the rate would exhaust memory.
MIN_FS, MAX_FS = 100.0, 100_000.0
#: The sampling rates fireorder accepts (a lying header or a typo beyond them is refused).
FS_LIMIT = Limit(MIN_FS, MAX_FS, "Hz")
#: no electrode sees more than this (µV, input-referred): sEMG peaks at a few mV, an electrode
#: pop or a cable knock at tens of mV. Beyond ±1 V a value is not a voltage the skin made but
#: a corrupt or mis-scaled number (1e308 in a file); it is treated as a missing sample.
MAX_PLAUSIBLE_UV = 1e6

@dataclass(frozen=True)
class StreamInfo:
    """What a source sends once before its chunks.

    ``roles`` maps a role to the index of the channel that carries it. Units of the samples
    in every :class:`Chunk` are microvolts; ``units`` records what the device reported before
    conversion, for provenance.
    """

    fs: float
    channel_names: tuple[str, ...]
    roles: Mapping[Role, int] = field(default_factory=dict)
    units: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if not np.isfinite(self.fs) or self.fs <= 0:
            raise ContractError(f"sampling rate must be positive, got {self.fs}")
        names = tuple(self.channel_names)
        object.__setattr__(self, "channel_names", names)
        if not names:
            raise ContractError("a stream needs at least one channel")
        if len(set(names)) != len(names):
            raise ContractError(f"channel names must be unique: {list(names)}")
        units = tuple(self.units) or ("uV",) * len(names)
        if len(units) != len(names):
            raise ContractError("one unit per channel")
        object.__setattr__(self, "units", units)
        roles: dict[Role, int] = {}
        for key, idx in dict(self.roles).items():
            role = key if isinstance(key, Role) else parse_role(str(key))
            if not 0 <= int(idx) < len(names):
                raise ContractError(f"role {role.value} points at channel {idx}, out of range")
            roles[role] = int(idx)
        if len(set(roles.values())) != len(roles):
            raise ContractError("two roles are mapped to the same channel")
        object.__setattr__(self, "roles", dict(sorted(roles.items(), key=lambda kv: kv[1])))

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    def channel_of(self, role: Role) -> int | None:
        return self.roles.get(role)

    def role_of(self, channel: int) -> Role | None:
        for role, idx in self.roles.items():
            if idx == channel:
                return role
        return None

    def validate_roles(self) -> None:
        """Raise unless at least one glute and one lumbar channel are mapped."""
        if not any(r.is_glute for r in self.roles) or not any(r.is_lumbar for r in self.roles):
            have = ", ".join(r.value for r in self.roles) or "none"
            raise ContractError(
                f"need at least one glute and one lumbar channel mapped (mapped: {have})"
            )

    @classmethod
    def from_role_names(
        cls,
        fs: float,
        channel_names: Sequence[str],
        role_names: Mapping[str, str],
        **kwargs: object,
    ) -> StreamInfo:
        """Build from ``{"glute_l": "EXG1", ...}`` (role -> channel name)."""
        names = list(channel_names)
        roles: dict[Role, int] = {}
        for rname, cname in role_names.items():
            if cname not in names:
                raise ContractError(f"unknown channel {cname!r} for role {rname}")
            roles[parse_role(rname)] = names.index(cname)
        return cls(fs=fs, channel_names=tuple(names), roles=roles, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Marker:
    """An event tied to a sample: a user mark, a trigger, or a simulator's ground truth."""

    index: int
    label: str


@dataclass(frozen=True)
class Chunk:
    """A block of consecutive samples: float64 ``(n_samples, n_channels)`` in microvolts.

    ``start`` is the stream index of the first row; ``timestamp`` the host time (s, monotonic
    or unix, as the source documents) when the chunk was received. The array is made read-only
    so that a consumer can keep a view without copying.
    """

    data: NDArray[np.float64]
    start: int
    timestamp: float = 0.0

    def __post_init__(self) -> None:
        arr = np.ascontiguousarray(self.data, dtype=np.float64)
        if arr.ndim != 2:
            raise ContractError(f"chunk data must be 2-D (samples, channels), got {arr.shape}")
        if arr is self.data and arr.flags.writeable:
            arr = arr.copy()
        arr.flags.writeable = False
        object.__setattr__(self, "data", arr)
        if self.start < 0:
            raise ContractError("chunk start index must be >= 0")

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def stop(self) -> int:
        """Index one past the last sample."""
        return self.start + self.n_samples
