"""Where fireorder keeps its files: the user's data folder, never the checkout.

* recordings: ``<data>/recordings`` unless the user chose another folder (Settings,
  ``--recordings-dir``);
* reviews of files that cannot carry their own (the shipped demo recordings, read-only files,
  files from other tools): ``<data>/reviews``.

``<data>`` is the platform's user data folder (``platformdirs``; ``~/.local/share/fireorder``
on Linux), or ``$FIREORDER_DATA_DIR`` when set (tests, portable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

#: the recordings shipped with the source (read-only examples)
EXAMPLES = Path(__file__).resolve().parents[2] / "recordings"


def data_dir() -> Path:
    env = os.environ.get("FIREORDER_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("fireorder", appauthor=False))


def default_recordings_dir() -> Path:
    return data_dir() / "recordings"


def reviews_dir() -> Path:
    return data_dir() / "reviews"


def is_example(path: str | os.PathLike[str]) -> bool:
    """True for a recording shipped with fireorder (its files are never changed)."""
    try:
        return Path(path).resolve().is_relative_to(EXAMPLES)
    except OSError:
        return False
