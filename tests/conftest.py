"""Suite-wide fixtures: the suite never writes into the user's data folder or the checkout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Recordings and reviews of every test (and of the CLI it runs) go to a temp folder."""
    folder = tmp_path_factory.mktemp("fireorder-data")
    monkeypatch.setenv("FIREORDER_DATA_DIR", str(folder))
    yield folder
