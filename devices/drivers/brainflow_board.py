"""Any BrainFlow board as a :class:`~devices.drivers.base.Device` (registered as ``"brainflow"``).

BrainFlow hands back a 2-D array per poll: one row per quantity (package number, EXG
channels, accelerometer, timestamp, marker, ...), one column per sample. The board's
descriptor says which row is which; for the playback and streaming boards it is the
descriptor of the *master* board (the one that recorded / produces the data).

What this driver adds on top of BrainFlow:

* **Channels**: the board's EMG rows (``get_emg_channels``), else its EXG rows; a subset may
  be chosen with ``channels`` (row numbers). Values are multiplied by ``scale_uv`` so that
  chunks are in microvolts (BrainFlow documents EXG data in µV; see ``docs/brainflow.md``
  for the boards where that needs checking).
* **Gaps**: the package-number row counts samples (Cyton and the synthetic board wrap it at
  255). A jump of ``k`` steps means ``k - 1`` lost samples, which shows as a jump of
  ``Chunk.start``; a chunk with a hole inside is split in two.
* **Board time**: BrainFlow's timestamp row (unix seconds, usually stamped by the host on
  arrival) is kept per sample in a side list (:meth:`drain_board_rows`, with the package
  numbers). ``Chunk.timestamp`` stays the host's monotonic receive time, which the live
  session uses for latency.
* **Markers**: :meth:`mark` calls ``insert_marker``; BrainFlow writes the value into the
  marker row of the next sample it stores, which :meth:`drain_markers` reports with the
  stream index of that sample.
* **Stalls**: no data for ``stall_timeout_s`` -> state ``"disconnected"``; with
  ``reconnect=True`` a background thread retries ``release_session`` / ``prepare_session``
  / ``start_stream`` with exponential backoff, and the stream resumes with the lost time as
  a gap (from board timestamps). Data already received is never dropped.
* **Playback**: ``PLAYBACK_FILE_BOARD`` ends (state ``"finished"``) once every row of the
  file has arrived; :func:`write_brainflow_file` writes recordings in BrainFlow's layout.

``read`` never blocks: it returns what ``get_board_data`` has, or ``None``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from brainflow.board_shim import BoardIds, BoardShim, BrainFlowError, BrainFlowInputParams
from brainflow.data_filter import DataFilter
from brainflow.exit_codes import BrainFlowExitCodes
from numpy.typing import NDArray

from devices.drivers.base import Device, DeviceError, Marker, register
from devices.files.brainflow_layout import (
    PACKAGE_MODULUS,
    PackageTracker,
    UnknownBoardError,
    board_name,
    descriptor,
    exg_rows,
)
from devices.files.brainflow_layout import resolve_board as _resolve_board
from dsp.contract import Chunk, ContractError, Role, StreamInfo

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]


class BoardRows(NamedTuple):
    """BrainFlow's own bookkeeping for one delivered chunk (same ``start`` as the chunk)."""

    start: int
    time: FloatArray  # board timestamp per sample (unix s on live boards; NaN if none)
    package: FloatArray  # package number per sample (empty if the board has none)


#: roles given to the first four channels when the caller names none (the simulator's order)
DEFAULT_ROLE_ORDER: tuple[Role, ...] = (Role.GLUTE_L, Role.GLUTE_R, Role.LUMBAR_L, Role.LUMBAR_R)
#: set to a path to let BrainFlow's own (C++) log go to that file
LOG_ENV = "FIREORDER_BRAINFLOW_LOG"

_FILE_BOARDS = {BoardIds.PLAYBACK_FILE_BOARD.value}
_MASTER_BOARDS = {BoardIds.PLAYBACK_FILE_BOARD.value, BoardIds.STREAMING_BOARD.value}

# What a board cannot be opened without (BrainFlow's "Supported Boards" page). Descriptors do
# not say this, so it is kept by hand; boards missing here need nothing or only optional
# fields (MAC / serial number for auto-discovery).
_NEEDS: dict[str, tuple[str, ...]] = {
    "PLAYBACK_FILE_BOARD": ("file", "master_board"),
    "STREAMING_BOARD": ("ip_address", "ip_port", "master_board"),
    "CYTON_BOARD": ("serial_port",),
    "CYTON_DAISY_BOARD": ("serial_port",),
    "GANGLION_BOARD": ("serial_port",),  # the BLED112 dongle's port
    "GALEA_SERIAL_BOARD": ("serial_port",),
    "FREEEEG32_BOARD": ("serial_port",),
    "FREEEEG128_BOARD": ("serial_port",),
    "BRAINBIT_BLED_BOARD": ("serial_port",),
    "MUSE_S_BLED_BOARD": ("serial_port",),
    "MUSE_2_BLED_BOARD": ("serial_port",),
    "MUSE_2016_BLED_BOARD": ("serial_port",),
    "NEUROPAWN_KNIGHT_BOARD": ("serial_port",),
    "NEUROPAWN_KNIGHT_BOARD_IMU": ("serial_port",),
    "BIOLISTENER_BOARD": ("serial_port",),
    "GANGLION_WIFI_BOARD": ("ip_address", "ip_port"),
    "CYTON_WIFI_BOARD": ("ip_address", "ip_port"),
    "CYTON_DAISY_WIFI_BOARD": ("ip_address", "ip_port"),
    "EXPLORE_4_CHAN_BOARD": ("mac_address",),
    "EXPLORE_8_CHAN_BOARD": ("mac_address",),
    "EXPLORE_PLUS_8_CHAN_BOARD": ("mac_address",),
    "EXPLORE_PLUS_32_CHAN_BOARD": ("mac_address",),
    "ENOPHONE_BOARD": ("mac_address",),
}
_PARAM_EXAMPLE = {
    "serial_port": "e.g. /dev/ttyUSB0, /dev/cu.usbserial-XXXX or COM3",
    "mac_address": "the board's Bluetooth address",
    "ip_address": "e.g. 192.168.4.1 for an OpenBCI WiFi shield",
    "ip_port": "a free local port",
    "file": "a file recorded by BrainFlow",
    "master_board": "the board that recorded / produces the data",
}

# One-line hints per BrainFlow exit code.
_HINTS: dict[int, str] = {
    BrainFlowExitCodes.PORT_ALREADY_OPEN_ERROR: "another program (OpenBCI GUI?) holds the port",
    BrainFlowExitCodes.UNABLE_TO_OPEN_PORT_ERROR: (
        "check serial_port, that the dongle is plugged in and that you may open it "
        "(Linux: dialout group); close other programs using it"
    ),
    BrainFlowExitCodes.SER_PORT_ERROR: "the serial port failed: re-plug the dongle",
    BrainFlowExitCodes.BOARD_WRITE_ERROR: "the board did not accept the command",
    BrainFlowExitCodes.INCOMMING_MSG_ERROR: "the board sent unexpected data: power-cycle it",
    BrainFlowExitCodes.INITIAL_MSG_ERROR: "the board did not answer: is it on and paired?",
    BrainFlowExitCodes.BOARD_NOT_READY_ERROR: (
        "the board did not answer: switch it on, check battery, dongle switch and pairing"
    ),
    BrainFlowExitCodes.INVALID_ARGUMENTS_ERROR: (
        "a parameter is missing or wrong (serial_port, mac_address, ip_address, file, "
        "master_board) or the board is not reachable there"
    ),
    BrainFlowExitCodes.UNSUPPORTED_BOARD_ERROR: "BrainFlow does not support this board here",
    BrainFlowExitCodes.ANOTHER_BOARD_IS_CREATED_ERROR: "this board is already open",
    BrainFlowExitCodes.SYNC_TIMEOUT_ERROR: "timed out: is the board on and in range?",
    BrainFlowExitCodes.GENERAL_ERROR: f"set {LOG_ENV}=<file> to keep BrainFlow's log",
}


# --------------------------------------------------------------------------------------
# Board names, descriptors, discovery
# --------------------------------------------------------------------------------------


def resolve_board(board: str | int) -> int:
    """A BrainFlow board id from a name (``"CYTON_BOARD"``, ``"cyton"``) or id (``0``)."""
    try:
        return _resolve_board(board)
    except UnknownBoardError as exc:
        raise DeviceError(str(exc)) from None


def list_boards() -> list[dict[str, Any]]:
    """Every board BrainFlow knows: name, id, sampling rate, channel counts, what it needs.

    Boards without a default descriptor (playback, streaming, some multi-preset boards) are
    listed with ``fs`` None and zero channels.
    """
    _quiet_brainflow(None)  # the descriptor look-ups below log errors for some boards
    out: list[dict[str, Any]] = []
    for b in BoardIds:
        if b is BoardIds.NO_BOARD:
            continue
        entry: dict[str, Any] = {
            "name": b.name,
            "id": b.value,
            "label": "",
            "fs": None,
            "emg_channels": 0,
            "exg_channels": 0,
            "needs": list(_NEEDS.get(b.name, ())),
        }
        try:
            descr = descriptor(b.value)
            entry["label"] = str(descr.get("name", ""))
            entry["fs"] = int(descr["sampling_rate"])
            entry["emg_channels"] = len(descr.get("emg_channels", []))
            entry["exg_channels"] = len(exg_rows(b.value)[0])
        except (BrainFlowError, KeyError, ValueError, TypeError) as exc:
            # e.g. PLAYBACK_FILE_BOARD: its layout is the master board's
            log.debug("no descriptor for %s: %s", b.name, exc)
        out.append(entry)
    return out


def describe_error(exc: BrainFlowError) -> str:
    """``UNABLE_TO_OPEN_PORT_ERROR (check serial_port, ...)`` for a BrainFlow error."""
    code = int(getattr(exc, "exit_code", BrainFlowExitCodes.GENERAL_ERROR))
    try:
        name = BrainFlowExitCodes(code).name
    except ValueError:
        name = f"error {code}"
    hint = _HINTS.get(code)
    return f"{name} ({hint})" if hint else name


def _quiet_brainflow(log_file: str | None) -> None:
    """BrainFlow's C++ logger writes to stderr; keep it off unless a log file is asked for."""
    path = log_file or os.environ.get(LOG_ENV)
    try:
        if path:
            BoardShim.set_log_file(str(path))
            BoardShim.enable_board_logger()
        else:
            BoardShim.disable_board_logger()
    except BrainFlowError as exc:  # logging must never stop a session
        log.warning("could not configure BrainFlow's log: %s", describe_error(exc))


# --------------------------------------------------------------------------------------
# Playback files
# --------------------------------------------------------------------------------------


def write_brainflow_file(
    path: str | Path,
    data_uv: FloatArray,
    *,
    master_board: str | int = "ANT_NEURO_EE_410_BOARD",
    fs: float | None = None,
    sample_index: NDArray[np.int64] | None = None,
    start_time: float = 1.0,
    speed: float = 1.0,
    markers: Mapping[int, float] | None = None,
) -> None:
    """Write ``data_uv`` (n, ch) in ``master_board``'s layout for ``PLAYBACK_FILE_BOARD``.

    The channels go to the board's first ``ch`` EMG (else EXG) rows, in microvolts (the file
    keeps 6 decimals). ``sample_index`` (default ``0..n-1``) gives each row's place in the
    original stream: leave some out to make a file with lost samples. The package-number row
    is ``sample_index % 256`` and the timestamp row ``start_time + sample_index / (fs *
    speed)``: the playback board paces itself by the timestamps, so ``speed=10`` replays ten
    times faster than real time. ``markers`` maps a row number to a marker value (kept in the
    file, but BrainFlow 5.x does not replay it: the playback board's marker row only carries
    markers inserted during the replay).
    """
    board_id = resolve_board(master_board)
    data = np.asarray(data_uv, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"data must be (samples, channels), got {data.shape}")
    n, ch = data.shape
    rows, _ = exg_rows(board_id)
    if ch > len(rows):
        raise ValueError(f"{board_name(board_id)} has {len(rows)} EMG/EXG rows, got {ch}")
    if speed <= 0 or not math.isfinite(speed):
        raise ValueError(f"speed must be > 0, got {speed}")
    rate = float(fs or BoardShim.get_sampling_rate(board_id))
    idx = np.arange(n) if sample_index is None else np.asarray(sample_index, dtype=np.int64)
    if idx.shape != (n,):
        raise ValueError("one sample index per row")
    out = np.zeros((BoardShim.get_num_rows(board_id), n))
    out[rows[:ch]] = data.T
    out[BoardShim.get_package_num_channel(board_id)] = idx % PACKAGE_MODULUS
    out[BoardShim.get_timestamp_channel(board_id)] = start_time + idx / (rate * speed)
    marker_row = BoardShim.get_marker_channel(board_id)
    for row, value in (markers or {}).items():
        out[marker_row, row] = value
    DataFilter.write_file(out, str(path), "w")


def _sniff_playback(path: str, board_id: int) -> int:
    """Check ``path`` is a BrainFlow file for ``board_id``; return its number of rows."""
    p = Path(path)
    if not p.is_file():
        raise DeviceError(f"playback file not found: {path}")
    want = BoardShim.get_num_rows(board_id)
    with p.open("rb") as fh:
        first = fh.readline().decode("utf-8", "replace").strip()
        if not first:
            raise DeviceError(f"playback file {path} is empty")
        fields = first.split("\t") if "\t" in first else first.split(",")
        try:
            [float(f) for f in fields]
        except ValueError:
            raise DeviceError(
                f"playback file {path} is not a BrainFlow recording (first row is not "
                f"numbers: {first[:60]!r})"
            ) from None
        if len(fields) != want:
            raise DeviceError(
                f"playback file {path} has {len(fields)} values per row but "
                f"{board_name(board_id)} needs {want} (is master_board right?)"
            )
        # count the rows so that the end of the file is known exactly
        fh.seek(0)
        count = 0
        last = b"\n"
        while block := fh.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")  # a last line without a newline


# --------------------------------------------------------------------------------------
# Package numbers -> lost samples
# --------------------------------------------------------------------------------------


class _Shim(BoardShim):
    """A ``BoardShim`` whose ``__del__`` leaves sessions alone once the driver released it.

    BrainFlow keys a session by board id and parameters, and ``BoardShim.__del__`` releases
    whatever session of that key is prepared: an old handle freed late by the cycle collector
    would otherwise kill a newer session of the same board (seen in the test suite).
    """

    retired = False

    def __del__(self) -> None:
        if self.retired:
            return
        with contextlib.suppress(Exception):  # e.g. at interpreter shutdown
            super().__del__()


class BrainFlowDevice(Device):
    """A BrainFlow board. See the module docstring and ``docs/brainflow.md``.

    ``channels`` are BrainFlow row numbers (a subset of the board's EMG, else EXG, rows);
    ``names`` name them (default ``EMG<row>``); ``roles`` maps a role to a channel name
    (default: the first four channels are glute_l, glute_r, lumbar_l, lumbar_r). ``config``
    strings are sent with ``config_board`` after ``prepare_session`` (default for
    playback: ``["old_timestamps"]``, so the board time is the recorded one).
    """

    name = "brainflow"

    def __init__(
        self,
        board: str | int = "SYNTHETIC_BOARD",
        *,
        serial_port: str = "",
        mac_address: str = "",
        ip_address: str = "",
        ip_port: int = 0,
        ip_protocol: int = 0,
        file: str = "",
        master_board: str | int | None = None,
        other_info: str = "",
        serial_number: str = "",
        timeout: int = 0,
        channels: Sequence[int] | None = None,
        names: Sequence[str] | None = None,
        roles: Mapping[str, str] | None = None,
        scale_uv: float = 1.0,
        reconnect: bool = True,
        stall_timeout_s: float = 2.0,
        retry_s: tuple[float, float] = (0.5, 10.0),
        config: Sequence[str] | None = None,
        log_file: str | None = None,
    ) -> None:
        self.board_id = resolve_board(board)
        self.board_name = board_name(self.board_id)
        self.master_id = resolve_board(master_board) if master_board is not None else None
        if not (math.isfinite(scale_uv) and scale_uv != 0):
            raise DeviceError(f"scale_uv must be a non-zero number, got {scale_uv}")
        if not stall_timeout_s > 0:
            raise DeviceError(f"stall_timeout_s must be > 0, got {stall_timeout_s}")
        self.params = BrainFlowInputParams()
        self.params.serial_port = serial_port
        self.params.mac_address = mac_address
        self.params.ip_address = ip_address
        self.params.ip_port = int(ip_port)
        self.params.ip_protocol = int(ip_protocol)
        self.params.file = str(file)
        self.params.other_info = other_info
        self.params.serial_number = serial_number
        self.params.timeout = int(timeout)
        if self.master_id is not None:
            self.params.master_board = self.master_id
        self.want_channels = list(channels) if channels is not None else None
        self.want_names = list(names) if names is not None else None
        self.want_roles = dict(roles) if roles is not None else None
        self.scale_uv = float(scale_uv)
        self.reconnect = reconnect and self.board_id not in _FILE_BOARDS
        self.stall_timeout_s = float(stall_timeout_s)
        self.retry_s = (float(retry_s[0]), float(retry_s[1]))
        if config is None:
            config = ["old_timestamps"] if self.board_id in _FILE_BOARDS else []
        self.config = list(config)
        self.log_file = log_file

        self.state = "closed"
        #: called with the new state on every change, from the acquisition or the reconnect
        #: thread (a GUI must only post it to its own thread)
        self.on_state: Callable[[str], None] | None = None
        self.info: StreamInfo | None = None
        self.data_board_id = self.board_id
        self._board: _Shim | None = None
        self._lock = threading.RLock()
        self._rows: list[int] = []
        self._pkg_row: int | None = None
        self._ts_row: int | None = None
        self._marker_row: int | None = None
        self._tracker: PackageTracker | None = None
        self._file_rows: int | None = None
        self._loopback = False
        self._reset_counters()
        self._retry_thread: threading.Thread | None = None
        self._cancel = threading.Event()

    def _reset_counters(self) -> None:
        self._next = 0  # stream index of the next sample
        self._rows_in = 0  # rows received in this session (playback end / loop detection)
        self._samples = 0
        self._gaps = 0
        self._lost = 0
        self._reconnects = 0
        self._pending: collections.deque[Chunk] = collections.deque()
        self._markers: list[Marker] = []
        # bounded: a consumer that never drains it must not grow memory without limit
        self._board_rows: collections.deque[BoardRows] = collections.deque(maxlen=100_000)
        self._last_data = time.monotonic()
        self._last_board_time: float | None = None
        self._resync = False  # after a reconnect: measure the gap from the clock
        self._lost_at: float | None = None  # host time of the last sample before a stall
        self._checked_units = False

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:  # a broken observer must not break acquisition
                log.exception("on_state callback failed")

    # -- public properties ---------------------------------------------------------------
    @property
    def link_state(self) -> str | None:
        return self.state

    @property
    def counters(self) -> dict[str, int]:
        return self.stats

    @property
    def stats(self) -> dict[str, int]:
        return {
            "samples": self._samples,
            "gaps": self._gaps,
            "lost_samples": self._lost,
            "reconnects": self._reconnects,
        }

    @property
    def finished(self) -> bool:
        """A playback file has been delivered to its end."""
        return self.state == "finished" and not self._pending

    @property
    def board(self) -> BoardShim | None:
        """The underlying ``BoardShim`` (e.g. for ``config_board``); None when closed."""
        return self._board

    @property
    def last_board_time(self) -> float | None:
        """BrainFlow timestamp of the newest sample received."""
        return self._last_board_time

    # -- lifecycle -----------------------------------------------------------------------
    def _check_params(self) -> None:
        needs = _NEEDS.get(self.board_name, ())
        have = {
            "serial_port": self.params.serial_port,
            "mac_address": self.params.mac_address,
            "ip_address": self.params.ip_address,
            "ip_port": self.params.ip_port,
            "file": self.params.file,
            "master_board": self.master_id,
        }
        missing = [k for k in needs if not have[k]]
        if missing:
            what = "; ".join(f"{k} ({_PARAM_EXAMPLE[k]})" for k in missing)
            raise DeviceError(f"BrainFlow {self.board_name} needs {what}")
        if self.board_id in _MASTER_BOARDS:
            assert self.master_id is not None
            if self.master_id in _MASTER_BOARDS:
                raise DeviceError("master_board must be a real board, not playback/streaming")

    def describe(self) -> StreamInfo:
        """The stream this board will send, from its descriptor, without opening it: the
        parameters are checked, a playback file is sniffed (what discovery shows)."""
        _quiet_brainflow(self.log_file)
        self._check_params()
        # playback and streaming boards carry the master board's layout and rate
        if self.board_id in _MASTER_BOARDS and self.master_id is not None:
            self.data_board_id = self.master_id
        else:
            self.data_board_id = self.board_id
        self._file_rows = None
        if self.board_id in _FILE_BOARDS:
            self._file_rows = _sniff_playback(self.params.file, self.data_board_id)
        self._describe()
        assert self.info is not None
        return self.info

    @property
    def rows(self) -> list[int]:
        """BrainFlow rows of the channels (known after :meth:`describe` or :meth:`open`)."""
        return list(self._rows)

    def _describe(self) -> None:
        """Rows, rate and channel info from the descriptor of the board that made the data."""
        bid = self.data_board_id
        rows, kind = exg_rows(bid)
        if not rows:
            raise DeviceError(f"BrainFlow {board_name(bid)} has no EMG/EXG channels")
        if self.want_channels is not None:
            bad = [c for c in self.want_channels if c not in rows]
            if bad or not self.want_channels:
                raise DeviceError(
                    f"channels {bad or '[]'} are not {kind.upper()} rows of "
                    f"{board_name(bid)} (rows: {rows})"
                )
            if len(set(self.want_channels)) != len(self.want_channels):
                raise DeviceError(f"channels repeat a row: {self.want_channels}")
            rows = list(self.want_channels)
        self._rows = rows
        fs = float(BoardShim.get_sampling_rate(bid))

        def row_of(getter: Any) -> int | None:
            try:
                return int(getter(bid))
            except BrainFlowError:
                return None

        self._pkg_row = row_of(BoardShim.get_package_num_channel)
        self._ts_row = row_of(BoardShim.get_timestamp_channel)
        self._marker_row = row_of(BoardShim.get_marker_channel)
        self._tracker = PackageTracker(fs) if self._pkg_row is not None else None

        names = self.want_names or [f"EMG{r}" for r in rows]
        if len(names) != len(rows):
            raise DeviceError(f"{len(names)} names for {len(rows)} channels")
        if self.want_roles is None:
            roles = {r.value: names[i] for i, r in enumerate(DEFAULT_ROLE_ORDER[: len(names)])}
            if len(names) < len(DEFAULT_ROLE_ORDER):
                roles = {}  # too few to guess a mapping: the caller maps roles
        else:
            roles = self.want_roles
        unit = {1.0: "uV", 1e3: "mV", 1e6: "V"}.get(self.scale_uv, f"uV/{self.scale_uv:g}")
        src = self.board_name
        if self.board_id != bid:
            src += f"({board_name(bid)})"
        try:
            self.info = StreamInfo.from_role_names(
                fs, names, roles, units=(unit,) * len(names), source=f"brainflow:{src}"
            )
        except ContractError as exc:
            raise DeviceError(f"BrainFlow {self.board_name}: {exc}") from None

    def _prepare(self, board: BoardShim) -> None:
        """Prepare and configure a session (raises BrainFlowError, leaving it released)."""
        board.prepare_session()
        try:
            for cmd in self.config:
                reply = board.config_board(cmd)
                if reply:
                    log.debug("config_board(%r) -> %r", cmd, reply)
        except BrainFlowError:
            _release_quietly(board)
            raise

    def open(self) -> StreamInfo:
        with self._lock:
            if self._board is not None:
                self.close()
            self.describe()
            loop = [c for c in self.config if c in ("loopback_true", "loopback_false")]
            self._loopback = bool(loop) and loop[-1] == "loopback_true"
            # one handle per open(), reused by reconnects (see _Shim)
            board = _Shim(self.board_id, self.params)
            try:
                self._prepare(board)
                self._board = board
            except BrainFlowError as exc:
                board.retired = True
                raise DeviceError(
                    f"BrainFlow {self.board_name}: cannot open the board: {describe_error(exc)}"
                ) from None
            self._reset_counters()
            self._set_state("open")
            assert self.info is not None
            log.info(
                "BrainFlow %s open: %g Hz, rows %s as %s",
                self.board_name,
                self.info.fs,
                self._rows,
                list(self.info.channel_names),
            )
            return self.info

    def start(self) -> None:
        with self._lock:
            if self._board is None:
                raise DeviceError(f"BrainFlow {self.board_name} is not open")
            if self.state in ("streaming", "disconnected", "finished"):
                return
            try:
                if not self._board.is_prepared():  # stopped while a reconnect was pending
                    self._prepare(self._board)
                self._board.start_stream()
            except BrainFlowError as exc:
                raise DeviceError(
                    f"BrainFlow {self.board_name}: cannot start streaming: {describe_error(exc)}"
                ) from None
            # a new run: the package counter may have moved on while stopped
            if self._tracker is not None:
                self._tracker.reset()
            self._last_data = time.monotonic()
            self._set_state("streaming")

    def stop(self) -> None:
        self._cancel_retry()
        with self._lock:
            board = self._board
            if board is None or self.state not in ("streaming", "disconnected", "finished"):
                return
            if self.state != "disconnected":
                try:
                    self._take(board)  # keep what BrainFlow still holds
                    board.stop_stream()
                except BrainFlowError as exc:
                    log.debug("stop_stream: %s", describe_error(exc))
            self._set_state("stopped")

    def close(self) -> None:
        self.stop()
        with self._lock:
            if self._board is not None:
                _release_quietly(self._board)
                self._board.retired = True
                self._board = None
            self._set_state("closed")

    # -- reading -------------------------------------------------------------------------
    def read(self) -> Chunk | None:
        """The next chunk of samples received, or ``None``; never waits for the board."""
        with self._lock:
            if not self._pending and self.state == "streaming" and self._board is not None:
                self._poll(self._board)
            return self._pending.popleft() if self._pending else None

    def _poll(self, board: BoardShim) -> None:
        try:
            got = self._take(board)
        except BrainFlowError as exc:
            self._stalled(f"get_board_data failed: {describe_error(exc)}")
            return
        now = time.monotonic()
        if got:
            self._last_data = now
            done = self._file_rows is not None and self._rows_in >= self._file_rows
            if done and not self._loopback:
                self._set_state("finished")
                log.info("BrainFlow playback finished: %d rows", self._rows_in)
            return
        if now - self._last_data > self.stall_timeout_s:
            if self._file_rows is not None:  # a file has nothing to reconnect to
                self._set_state("finished")
                log.info(
                    "BrainFlow playback ended after %d of %s rows", self._rows_in, self._file_rows
                )
                return
            self._stalled(f"no data for {self.stall_timeout_s:g} s")

    def _take(self, board: BoardShim) -> int:
        """Move everything BrainFlow holds into pending chunks; return the sample count."""
        raw = board.get_board_data()
        n = int(raw.shape[1]) if raw.ndim == 2 else 0
        if n:
            self._convert(raw)
        return n

    def _convert(self, raw: FloatArray) -> None:
        assert self.info is not None
        n = raw.shape[1]
        fs = self.info.fs
        now = time.monotonic()
        times = raw[self._ts_row] if self._ts_row is not None else None
        pkg = raw[self._pkg_row] if self._pkg_row is not None else None
        lost = np.zeros(n, dtype=np.int64)
        if self._resync:
            lost[0] = self._gap_after_stall(times, n, now)
            self._resync = False
        elif self._tracker is not None and pkg is not None:
            if self._loopback and self._file_rows:
                # the file starts over: package numbers and times jump back without a loss
                restart = (self._rows_in + np.arange(n)) % self._file_rows == 0
                restart[0] &= self._rows_in > 0
                lost = self._tracked_with_restarts(pkg, times, restart)
            else:
                lost = self._tracker.lost(pkg, times)
        self._rows_in += n
        if self._next == 0 and self._samples == 0:
            lost[0] = 0  # nothing before the first sample
        index = self._next + np.arange(n) + np.cumsum(lost)
        data = raw[self._rows].T * self.scale_uv
        if not self._checked_units and self._samples + n >= fs / 2:
            self._check_units(data)
        cuts = np.flatnonzero(lost[1:] > 0) + 1
        for a, b in zip(
            np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [n])).tolist(), strict=True
        ):
            if lost[a] > 0:
                self._gaps += 1
                self._lost += int(lost[a])
                log.warning(
                    "BrainFlow %s: %d samples lost before index %d",
                    self.board_name,
                    int(lost[a]),
                    int(index[a]),
                )
            seg = np.ascontiguousarray(data[a:b])
            seg.flags.writeable = False  # fresh: spare Chunk its defensive copy
            self._pending.append(Chunk(seg, int(index[a]), now))
            self._board_rows.append(
                BoardRows(
                    int(index[a]),
                    times[a:b].copy() if times is not None else np.full(b - a, np.nan),
                    pkg[a:b].copy() if pkg is not None else np.empty(0),
                )
            )
        if self._marker_row is not None:
            mrow = raw[self._marker_row]
            for i in np.flatnonzero(mrow != 0).tolist():
                self._markers.append(Marker(int(index[i]), f"{mrow[i]:g}"))
        if times is not None:
            self._last_board_time = float(times[-1])
        self._next = int(index[-1]) + 1
        self._samples += n

    def _tracked_with_restarts(
        self, pkg: FloatArray, times: FloatArray | None, restart: NDArray[np.bool_]
    ) -> NDArray[np.int64]:
        assert self._tracker is not None
        lost = np.zeros(len(pkg), dtype=np.int64)
        edges = np.concatenate(([0], np.flatnonzero(restart), [len(pkg)]))
        for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
            if a == b:
                continue
            if restart[a]:
                self._tracker.reset()
            lost[a:b] = self._tracker.lost(pkg[a:b], None if times is None else times[a:b])
        return lost

    def _check_units(self, data: FloatArray) -> None:
        # EMG in microvolts is never this small; volts (ANT Neuro's SDK?) would be.
        self._checked_units = True
        level = np.median(np.abs(data), axis=0)
        live = level[level > 0]  # all-zero rows: unused inputs, not evidence
        if live.size and float(live.max()) < 0.05:
            log.warning(
                "BrainFlow %s: signals are tiny (median |x| <= %.3g µV); the board may deliver "
                "volts: try scale_uv=1e6",
                self.board_name,
                float(live.max()),
            )

    # -- stalls and reconnection ---------------------------------------------------------
    def _stalled(self, why: str) -> None:
        self._set_state("disconnected")
        self._lost_at = self._last_data
        if not self.reconnect:
            log.error("BrainFlow %s: %s", self.board_name, why)
            raise DeviceError(
                f"BrainFlow {self.board_name} stopped delivering data ({why}): is it on, "
                "charged and in range?"
            )
        log.warning("BrainFlow %s: %s; reconnecting", self.board_name, why)
        self._cancel.clear()
        self._retry_thread = threading.Thread(
            target=self._retry_loop, name="brainflow-reconnect", daemon=True
        )
        self._retry_thread.start()

    def _retry_loop(self) -> None:
        # read(), mark() and stop() leave the board alone while the state is "disconnected",
        # so this thread may use it without the lock until it hands it back.
        board = self._board
        if board is None:
            return
        with contextlib.suppress(BrainFlowError):
            board.stop_stream()
        _release_quietly(board)
        delay, max_delay = self.retry_s
        attempt = 0
        while not self._cancel.is_set():
            attempt += 1
            try:
                self._prepare(board)
                board.start_stream()
            except BrainFlowError as exc:
                _release_quietly(board)
                log.warning(
                    "BrainFlow %s: reconnect attempt %d failed: %s; next in %.1f s",
                    self.board_name,
                    attempt,
                    describe_error(exc),
                    delay,
                )
                self._cancel.wait(delay)
                delay = min(delay * 2, max_delay)
                continue
            with self._lock:
                if not self._cancel.is_set():
                    self._reconnects += 1
                    self._resync = True
                    if self._tracker is not None:
                        self._tracker.reset()
                    self._last_data = time.monotonic()
                    self._set_state("streaming")
                    log.info("BrainFlow %s: reconnected (attempt %d)", self.board_name, attempt)
                    return
            # stopped while the session was coming back: leave it released
            with contextlib.suppress(BrainFlowError):
                board.stop_stream()
            _release_quietly(board)
            return

    def _gap_after_stall(self, times: FloatArray | None, n: int, now: float) -> int:
        """Samples missed between the last sample before a stall and the first after it."""
        assert self.info is not None
        fs = self.info.fs
        last = self._last_board_time
        if times is not None and last is not None and math.isfinite(times[0]) and times[0] > last:
            gap = (times[0] - last) * fs - 1
        else:  # no usable board clock: host receive times, minus this block's own length
            gap = ((now - (self._lost_at or now)) - n / fs) * fs
        lost = max(0, round(gap))
        log.info("BrainFlow %s: resumed; %d samples lost", self.board_name, lost)
        return lost

    def _cancel_retry(self) -> None:
        thread = self._retry_thread
        if thread is None:
            return
        self._cancel.set()
        thread.join(timeout=30)  # prepare_session of a Bluetooth board can take a while
        if thread.is_alive():
            log.warning("BrainFlow %s: reconnect thread still busy", self.board_name)
        self._retry_thread = None

    # -- markers and side data -----------------------------------------------------------
    def mark(self, value: float) -> bool:
        """Insert a marker into the stream (BrainFlow's marker row); False if not streaming.

        The value must be a non-zero number (0 means "no marker" in the marker row).
        """
        value = float(value)
        if value == 0 or not math.isfinite(value):
            raise DeviceError(f"a marker value must be a non-zero number, got {value}")
        with self._lock:
            if self.state != "streaming" or self._board is None:
                log.warning(
                    "BrainFlow %s: marker %g dropped (%s)", self.board_name, value, self.state
                )
                return False
            try:
                self._board.insert_marker(value)
            except BrainFlowError as exc:
                log.warning("insert_marker failed: %s", describe_error(exc))
                return False
            return True

    def drain_markers(self) -> list[Marker]:
        with self._lock:
            out, self._markers = self._markers, []
            return out

    def drain_board_rows(self) -> list[BoardRows]:
        """Board timestamps and package numbers per chunk received since the last call."""
        with self._lock:
            out = list(self._board_rows)
            self._board_rows.clear()
            return out


def _release_quietly(board: BoardShim) -> None:
    try:
        board.release_session()
    except BrainFlowError as exc:
        log.debug("release_session: %s", describe_error(exc))


register("brainflow", BrainFlowDevice)
