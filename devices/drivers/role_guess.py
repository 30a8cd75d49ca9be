"""A role -> channel mapping to start from, for a source whose channels name no muscles.

(Its own module so that drivers and :mod:`devices.drivers.discovery` share it without an
import cycle.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from dsp.contract import Role

log = logging.getLogger(__name__)

#: the order roles are suggested in for four or more channels (the simulator's and the
#: BrainFlow driver's default order)
ROLE_ORDER: tuple[Role, ...] = (Role.GLUTE_L, Role.GLUTE_R, Role.LUMBAR_L, Role.LUMBAR_R)


def has_both_roles(roles: Mapping[str, str] | Mapping[Role, Any]) -> bool:
    """At least one glute and one lumbar role (what the analysis needs)."""
    parsed = [Role(str(r.value if isinstance(r, Role) else r)) for r in roles]
    return any(r.is_glute for r in parsed) and any(r.is_lumbar for r in parsed)


def suggest_roles(
    channel_names: Sequence[str], stored: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A role -> channel name mapping to start from.

    A stored mapping of the device wins when all its channels are there and it has a glute
    and a lumbar role; then channels named after roles (``glute_l:``-labelled text); then
    by position: four or more channels are glute_l, glute_r, lumbar_l, lumbar_r (the order
    the simulator and the BrainFlow driver use), two or three are one glute and one lumbar
    channel (ch1 glute_l, ch2 lumbar_l); a single channel cannot be mapped.
    """
    names = list(channel_names)
    if stored:
        try:
            if all(n in names for n in stored.values()) and has_both_roles(stored):
                return {Role(r).value: str(n) for r, n in stored.items()}
        except ValueError:  # an unknown role in an old store: fall through to a guess
            log.info("stored mapping %s ignored", dict(stored))
    by_name = {n.strip().lower(): n for n in names}
    named: dict[str, str] = {r.value: by_name[r.value] for r in Role if r.value in by_name}
    if has_both_roles(named):
        return named
    if len(names) >= len(ROLE_ORDER):
        return {r.value: names[i] for i, r in enumerate(ROLE_ORDER)}
    if len(names) >= 2:
        return {Role.GLUTE_L.value: names[0], Role.LUMBAR_L.value: names[1]}
    return {}
