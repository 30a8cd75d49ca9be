"""Suite-wide fixtures: the suite never writes into the user's data folder or the checkout."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lsl_env import use_loopback_lsl

#: Network safety: liblsl multicasts its stream queries to the whole network unless told
#: otherwise. Every test process (and every child it starts) uses the loopback-only config
#: beside the checkout; without it the LSL tests skip (see tests/lsl_env.py).
use_loopback_lsl()

#: Widgets a test gave to qtbot, held until its teardown. pytest-qt keeps only a weak
#: reference, so a window held by nothing but the test's locals became garbage as soon as the
#: test body returned, and the cycle collector could free it (deleting the C++ window) in the
#: middle of the paint events pytest-qt still processes after the body: "Cannot destroy paint
#: device that is being painted", then a segfault.
_HELD: list[object] = []


def _hold_widgets() -> None:
    try:
        from pytestqt.qtbot import QtBot
    except ImportError:
        return
    add = QtBot.addWidget

    def add_widget(self: QtBot, widget: object, **kwargs: object) -> None:
        _HELD.append(widget)
        add(self, widget, **kwargs)  # type: ignore[arg-type]

    QtBot.addWidget = add_widget  # type: ignore[method-assign]


_hold_widgets()


@pytest.fixture(autouse=True)
def _qt_objects_die_between_tests() -> Iterator[None]:
    """Windows closed by a test are deleted when it ends, not at some later moment.

    pytest-qt closes a test's widgets and calls ``deleteLater``, but ``processEvents`` never
    runs deferred deletes, and Python's cycle collector may free the wrappers later, in the
    middle of painting another view (a segfault in pyqtgraph's ``GraphicsView.paintEvent``).
    Deleting them here, between tests, leaves nothing to be freed mid-paint."""
    yield
    _HELD.clear()  # (pytest-qt has closed them by now)
    qtwidgets = sys.modules.get("PyQt6.QtWidgets")
    if qtwidgets is None:
        return
    app = qtwidgets.QApplication.instance()
    if app is None:
        return
    from PyQt6 import QtCore

    gc.collect()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    app.processEvents()
    gc.collect()
    # A window's background readers (the Sessions tab reads each recording's review; its
    # widget is gone now, so the reader stops after its current file) end within the test
    # that started them: one running on into the next test analysed beside it (a segfault
    # once, in BLAS, under a CLI fuzz test).
    for thread in threading.enumerate():
        if thread.name == "session-reviews":
            thread.join(timeout=60)


@pytest.fixture(autouse=True)
def _private_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Recordings and reviews of every test (and of the CLI it runs) go to a temp folder."""
    folder = tmp_path_factory.mktemp("fireorder-data")
    monkeypatch.setenv("FIREORDER_DATA_DIR", str(folder))
    yield folder


@pytest.fixture
def store(tmp_path: Path):  # -> app.settings_store.SettingsStore (Qt only when a test asks)
    """The window's settings in a private ini file: no test reads or writes the user's."""
    from PyQt6 import QtCore

    from app.settings_store import SettingsStore

    return SettingsStore(
        QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    )


# -- the suite leaves the checkout's tracked files untouched --------------------------------
_ROOT = Path(__file__).resolve().parents[1]


def _tracked_state() -> dict[str, tuple[int, int]] | None:
    import subprocess

    try:
        names = subprocess.run(
            ["git", "ls-files", "-z"], cwd=_ROOT, capture_output=True, check=True, timeout=30
        ).stdout.decode("utf-8", "surrogateescape")
    except (OSError, subprocess.SubprocessError):
        return None  # not a git checkout (an installed copy): nothing to compare
    state = {}
    for name in filter(None, names.split("\0")):
        try:
            st = (_ROOT / name).stat()
        except FileNotFoundError:
            st = None
        state[name] = (st.st_size, st.st_mtime_ns) if st else (-1, -1)
    return state


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_TRACKED] = _tracked_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_TRACKED, None)
    if before is None:
        return
    after = _tracked_state() or {}
    changed = sorted(n for n in before if after.get(n) != before[n])
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "the test suite changed tracked files of the checkout: " + ", ".join(changed[:20])
        if reporter is not None:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_TRACKED = pytest.StashKey[dict[str, tuple[int, int]] | None]()


# -- a pair of linked pseudo-terminals (socat): a serial board and the port the host opens ----
@pytest.fixture
def ports(tmp_path: Path):  # -> Iterator[tests.test_serial_device.VirtualPorts]
    import shutil

    from tests.test_serial_device import VirtualPorts

    if shutil.which("socat") is None:
        pytest.skip("socat not installed")
    vp = VirtualPorts(tmp_path)
    vp.start()
    yield vp
    vp.kill()
