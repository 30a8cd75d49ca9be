"""What every LSL test needs: the loopback-only liblsl config, or a skip.

tests/conftest.py sets ``LSLAPICFG`` for the whole test process (children inherit it) when
``../shared/lsl/lsl_loopback.cfg`` is beside the checkout; without it an LSL test would send
its stream queries to the network, so it skips instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ../shared/lsl/lsl_loopback.cfg beside the checkout: liblsl resolves on 127.0.0.1 only.
LSL_LOOPBACK_CFG = Path(__file__).resolve().parents[2] / "shared" / "lsl" / "lsl_loopback.cfg"


def use_loopback_lsl() -> None:
    """Point liblsl at the loopback config for this process and its children, if present.
    Must run before liblsl loads (it reads its config once)."""
    if LSL_LOOPBACK_CFG.is_file():
        os.environ["LSLAPICFG"] = str(LSL_LOOPBACK_CFG)


def require_loopback_lsl() -> None:
    """Skip the calling test unless liblsl is confined to this machine."""
    if os.environ.get("LSLAPICFG") != str(LSL_LOOPBACK_CFG) or not LSL_LOOPBACK_CFG.is_file():
        pytest.skip(f"LSL tests need the loopback config {LSL_LOOPBACK_CFG}")


#: pytest marker-free fixture form: ``pytestmark = pytest.mark.usefixtures("lsl_loopback")``
@pytest.fixture
def lsl_loopback() -> None:
    require_loopback_lsl()
