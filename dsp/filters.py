"""Filter design (pure functions) and a multi-channel causal SOS stage that carries state.

Nothing here imports ``scipy.signal``: its package ``__init__`` pulls in scipy.stats,
scipy.interpolate, scipy.optimize and more (about 1 s), which would be most of the start-up
time of the headless commands. The designs follow scipy.signal's own algorithms (``butter``
with ``output="sos"``: analog prototype, pre-warped bilinear transform, "nearest" pole-zero
pairing; ``iirnotch``; ``sosfilt_zi``) and give the same sections up to rounding
(tests/test_filter_design.py compares them). Filtering runs scipy's compiled SOS loop, loaded
from its extension file without scipy.signal's nor scipy's package ``__init__`` (see
:func:`_load_sosfilt`), or ``scipy.signal.sosfilt`` (imported then) if that file cannot be
loaded.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import math
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

log = logging.getLogger(__name__)

Sos = NDArray[np.float64]

_TOL = 100 * np.finfo(np.float64).eps  # scipy's tolerance for "this root is real"


# -- the compiled SOS loop --------------------------------------------------------------------
def _extension(folder: str, name: str) -> Any:
    """Load the compiled module ``name`` from ``folder`` by its file, registered under its
    own name (a later ordinary import reuses it); raises if there is no such file."""
    stem = name.rsplit(".", 1)[-1]
    path = next(
        p
        for p in (os.path.join(folder, stem + s) for s in importlib.machinery.EXTENSION_SUFFIXES)
        if os.path.isfile(p)
    )
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise ImportError(name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _load_sosfilt(scipy_dir: str) -> Any:
    """The ``scipy.signal._sosfilt`` extension, without running scipy's package ``__init__``.

    The extension imports Cython's shared helpers, ``scipy._cyutility``, and that import goes
    through the package ``scipy``, whose ``__init__`` costs ~20 ms of every start (it imports
    subprocess, sysconfig and scipy's test helpers). While the extension initialises, a bare
    stand-in module named ``scipy`` holds the helpers, loaded from their file; it is removed
    right after, so a later ``import scipy`` runs the real package (which reuses both
    extension modules: they are registered under their own names). If that fails (a future
    scipy laid out otherwise), the extension is loaded the ordinary way.
    """
    name = "scipy.signal._sosfilt"
    if "scipy" not in sys.modules:
        helpers = sys.modules.get("scipy._cyutility")
        try:
            if helpers is None:
                helpers = _extension(scipy_dir, "scipy._cyutility")
            stand_in = types.ModuleType("scipy")
            stand_in.__path__ = [scipy_dir]
            stand_in._cyutility = helpers  # type: ignore[attr-defined]
            sys.modules["scipy"] = stand_in
            try:
                return _extension(os.path.join(scipy_dir, "signal"), name)
            finally:
                if sys.modules.get("scipy") is stand_in:
                    del sys.modules["scipy"]
        except Exception:
            log.debug("scipy's SOS kernel without the package failed; importing it", exc_info=True)
    return _extension(os.path.join(scipy_dir, "signal"), name)


def _load_kernel() -> Callable[..., Any] | None:
    """scipy's ``_sosfilt(sos, x, zi)`` kernel, or None.

    It filters the rows of a C-contiguous (signals, n) array in place, with the state in a
    C-contiguous (signals, sections, 2) array. Called directly it skips the per-call validation
    of ``scipy.signal.sosfilt``, which at live chunk sizes (40 samples) costs ~7x the filtering.
    The extension module has no import-time dependency on scipy.signal; it is registered under
    its own name, so a later ``import scipy.signal`` reuses it.
    """
    module = sys.modules.get("scipy.signal._sosfilt")
    if module is None:
        try:
            spec = importlib.util.find_spec("scipy")  # locates scipy without importing it
            if spec is None or not spec.submodule_search_locations:
                return None
            module = _load_sosfilt(next(iter(spec.submodule_search_locations)))
        except Exception:  # not found, or a layout of a future scipy
            return None
    kernel = getattr(module, "_sosfilt", None)
    if kernel is None:
        return None
    try:  # check the calling convention: y[n] = x[n] + 0.5 y[n-1] on an impulse
        x = np.zeros((1, 4))
        x[0, 0] = 1.0
        kernel(np.array([[1.0, 0.0, 0.0, 1.0, -0.5, 0.0]]), x, np.zeros((1, 1, 2)))
    except Exception:
        return None
    return kernel if np.array_equal(x[0], [1.0, 0.5, 0.25, 0.125]) else None


_sosfilt_kernel = _load_kernel()


def sosfilt_rows(sos: Sos, rows: NDArray[np.float64], zi: NDArray[np.float64]) -> None:
    """Filter the rows of ``rows`` (signals, n) in place; ``zi`` (signals, sections, 2) is the
    state, updated in place. All three must be C-contiguous float64."""
    if _sosfilt_kernel is not None:
        _sosfilt_kernel(sos, rows, zi)
        return
    from scipy import signal  # pragma: no cover - only without the kernel

    y, zf = signal.sosfilt(sos, rows, axis=-1, zi=zi.transpose(1, 0, 2))
    rows[...] = y
    zi[...] = zf.transpose(1, 0, 2)


def sosfilt(sos: Sos, x: ArrayLike, zi: NDArray[np.float64] | None = None) -> Any:
    """``scipy.signal.sosfilt`` along the last axis of a 1-D or 2-D ``x``, zi as scipy lays it
    out ((sections, 2) or (sections, signals, 2)). Returns ``y`` or ``(y, zf)`` like scipy."""
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    arr = np.asarray(x, dtype=np.float64)
    rows = np.array(arr.reshape(-1, arr.shape[-1]), dtype=np.float64, order="C")
    n_sec, n_sig = sos.shape[0], rows.shape[0]
    if zi is None:
        state = np.zeros((n_sig, n_sec, 2))
    else:
        z = np.asarray(zi, dtype=np.float64)
        state = np.array(z.reshape(n_sec, n_sig, 2).transpose(1, 0, 2), order="C")  # a copy
    sosfilt_rows(sos, rows, state)
    y = rows.reshape(arr.shape)
    if zi is None:
        return y
    return y, state.transpose(1, 0, 2).reshape(np.shape(zi))


# -- design -----------------------------------------------------------------------------------
def _cplxreal(z: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """One root of each conjugate pair (positive imaginary part) and the real roots, sorted the
    way scipy.signal sorts them (so that pairing ties break the same way)."""
    z = np.atleast_1d(z)
    if z.size == 0:
        return z, z.real
    z = z[np.lexsort((abs(z.imag), z.real))]
    real = abs(z.imag) <= _TOL * abs(z)
    zr = z[real].real
    if zr.size == z.size:
        return np.array([]), zr
    zc = z[~real]
    zp, zn = zc[zc.imag > 0], zc[zc.imag < 0]
    if len(zp) != len(zn):
        raise ValueError("array contains a complex value with no matching conjugate")
    # runs of (nearly) equal real part are ordered by their imaginary part
    same = np.diff(zp.real) <= _TOL * abs(zp[:-1])
    edges = np.diff(np.concatenate(([0], same, [0])))
    for start, stop in zip(np.flatnonzero(edges > 0), np.flatnonzero(edges < 0) + 1, strict=True):
        for part in (zp[start:stop], zn[start:stop]):
            part[...] = part[np.lexsort([abs(part.imag)])]
    if np.any(abs(zp - zn.conj()) > _TOL * abs(zn)):
        raise ValueError("array contains a complex value with no matching conjugate")
    return (zp + zn.conj()) / 2, zr


def _poly(roots: Sequence[Any]) -> NDArray[np.float64]:
    coef = np.ones(1)
    for r in roots:
        coef = np.convolve(coef, np.array([1.0, -r]))
    return np.real(coef)


def _nearest(fro: NDArray[Any], to: complex, which: str) -> int:
    order = np.argsort(np.abs(fro - to))
    if which == "any":
        return int(order[0])
    real = np.isreal(fro[order])
    return int(order[np.flatnonzero(real if which == "real" else ~real)[0]])


def zpk2sos(z: ArrayLike, p: ArrayLike, k: float) -> Sos:
    """Digital zeros/poles/gain to second-order sections: scipy's ``zpk2sos`` with its default
    "nearest" pairing (poles closest to the unit circle in the last sections, each with the
    zeros nearest to it; gain in the first section)."""
    z, p = np.atleast_1d(np.asarray(z)), np.atleast_1d(np.asarray(p))
    if len(z) == len(p) == 0:
        return np.array([[float(k), 0.0, 0.0, 1.0, 0.0, 0.0]])
    p = np.concatenate((p, np.zeros(max(len(z) - len(p), 0))))
    z = np.concatenate((z, np.zeros(max(len(p) - len(z), 0))))
    n_sections = (len(p) + 1) // 2
    if len(p) % 2:
        p, z = np.append(p, 0.0), np.append(z, 0.0)
    z = np.concatenate(_cplxreal(z))
    p = np.concatenate(_cplxreal(p))

    def worst(v: NDArray[Any]) -> int:  # closest to the unit circle
        return int(np.argmin(np.abs(1 - np.abs(v))))

    sos = np.zeros((n_sections, 6))
    for si in range(n_sections - 1, -1, -1):
        i = worst(p)
        p1 = p[i]
        p = np.delete(p, i)
        if np.isreal(p1) and np.isreal(p).sum() == 0:  # the last real pole: a first-order section
            j = _nearest(z, p1, "real")
            zs, ps = [z[j], 0.0], [p1, 0.0]
            z = np.delete(z, j)
        elif (
            len(p) + 1 == len(z)
            and not np.isreal(p1)
            and np.isreal(p).sum() == 1
            and np.isreal(z).sum() == 1
        ):  # one real pole and one real zero left: this pair must take a complex zero
            j = _nearest(z, p1, "complex")
            zs, ps = [z[j], np.conj(z[j])], [p1, np.conj(p1)]
            z = np.delete(z, j)
        else:
            if np.isreal(p1):
                reals = np.flatnonzero(np.isreal(p))
                j = int(reals[worst(p[reals])])
                p2 = p[j]
                p = np.delete(p, j)
            else:
                p2 = np.conj(p1)
            ps, zs = [p1, p2], []
            if len(z):
                j = _nearest(z, p1, "any")
                z1 = z[j]
                z = np.delete(z, j)
                if not np.isreal(z1):
                    zs = [z1, np.conj(z1)]
                elif len(z):
                    j = _nearest(z, p1, "real")
                    zs = [z1, z[j]]
                    z = np.delete(z, j)
                else:
                    zs = [z1]
        b, a = _poly(zs), _poly(ps)
        sos[si, 3 - len(b) : 3] = b
        sos[si, 6 - len(a) : 6] = a
    sos[0, :3] *= np.real(k)
    return sos


def bilinear_zpk(
    z: ArrayLike, p: ArrayLike, k: float, fs: float
) -> tuple[NDArray[Any], NDArray[Any], float]:
    """Analog zeros/poles/gain to digital by the bilinear transform (as scipy.signal's)."""
    z, p = np.atleast_1d(np.asarray(z)), np.atleast_1d(np.asarray(p))
    degree = len(p) - len(z)
    if degree < 0:
        raise ValueError("improper transfer function: more zeros than poles")
    fs2 = 2.0 * fs
    z_z = np.concatenate(((fs2 + z) / (fs2 - z), -np.ones(degree)))
    p_z = (fs2 + p) / (fs2 - p)
    return z_z, p_z, float(k * np.real(np.prod(fs2 - z) / np.prod(fs2 - p)))


# -- stored designs -----------------------------------------------------------------------
#: False: design every filter (the table's generator and its test use it)
USE_STORED = True


_table: dict[str, str] = {}  # key text -> its sections' numbers, read at the first design


def _stored(key: str) -> Sos | None:
    """The sections :mod:`dsp.filter_table` holds for a design call (its key text), or None.

    Designing the ~30 filters of a pipeline and a quality monitor takes ~9 ms of every start
    (hundreds of numpy calls on arrays of 2-8 roots); the table holds the results, to the bit,
    for the default settings at the common rates (tests/test_filter_table.py designs every
    entry again and compares; ``python -m bench.filter_table`` writes it). Other calls design.
    The table is one string of decimal floats: compiling it costs nothing, where literal
    tuples of 2000 floats would cost ~13 ms of a start without a bytecode cache.
    """
    if not USE_STORED:
        return None
    if not _table:
        from dsp.filter_table import TABLE

        for line in TABLE.splitlines():
            call, _, numbers = line.partition(": ")
            _table[call] = numbers
    row = _table.get(key)
    if row is None:
        return None
    return np.array([float(v) for v in row.split()], dtype=np.float64).reshape(-1, 6)


def butter_key(order: int, freqs: float | Sequence[float], btype: str, fs: float) -> str:
    """The table's key of a ``butter_sos`` call (``repr`` gives a float's exact value)."""
    corners = ",".join(repr(float(f)) for f in np.atleast_1d(np.asarray(freqs, np.float64)))
    return f"butter {order!r} {corners} {btype} {float(fs)!r}"


def notch_key(freq: float, q: float, fs: float) -> str:
    """The table's key of a ``notch_sos`` call."""
    return f"notch {float(freq)!r} {float(q)!r} {float(fs)!r}"


def butter_sos(order: int, freqs: float | Sequence[float], btype: str, fs: float) -> Sos:
    """Digital Butterworth filter as second-order sections, as
    ``scipy.signal.butter(order, freqs, btype, fs=fs, output="sos")`` designs it
    (btype: "lowpass", "highpass" or "bandpass"; corners in Hz, 0 < f < fs/2)."""
    stored = _stored(butter_key(order, freqs, btype, fs))
    return _design_butter(order, freqs, btype, fs) if stored is None else stored


def _design_butter(order: int, freqs: float | Sequence[float], btype: str, fs: float) -> Sos:
    wn = np.atleast_1d(np.asarray(freqs, dtype=np.float64)) / (fs / 2)
    if order < 1 or order != int(order):
        raise ValueError(f"filter order must be a positive integer, got {order}")
    if np.any(wn <= 0) or np.any(wn >= 1):
        raise ValueError(f"filter corners must be 0 < f < fs/2 (fs={fs} Hz), got {freqs}")
    if len(wn) != (2 if btype == "bandpass" else 1):
        raise ValueError(f"{btype} needs {'two corners' if btype == 'bandpass' else 'one corner'}")
    warped = 4.0 * np.tan(np.pi * wn / 2.0)  # pre-warp (normalised: fs = 2)
    # analog prototype: poles on the left half of the unit circle, the middle one exactly real
    proto = -np.exp(1j * np.pi * np.arange(-order + 1, order, 2, dtype=np.float64) / (2 * order))
    if btype == "lowpass":
        wo = float(warped[0])
        z, p, k = np.zeros(0), wo * proto, wo**order
    elif btype == "highpass":
        wo = float(warped[0])
        z, p, k = np.zeros(order), wo / proto, float(np.real(1.0 / np.prod(-proto)))
    elif btype == "bandpass":
        if not wn[0] < wn[1]:
            raise ValueError(f"band-pass corners must increase, got {freqs}")
        bw = float(warped[1] - warped[0])
        wo = float(np.sqrt(warped[0] * warped[1]))
        lp = proto * bw / 2
        shift = np.sqrt(lp**2 - wo**2)
        z, p, k = np.zeros(order), np.concatenate((lp + shift, lp - shift)), bw**order
    else:
        raise ValueError(f"unknown filter type {btype!r}")
    return zpk2sos(*bilinear_zpk(z, p, k, 2.0))


def notch_sos(freq: float, q: float, fs: float) -> Sos:
    """Second-order IIR notch at ``freq`` with quality factor ``q`` (-3 dB width freq/q), one
    section: the closed form of ``scipy.signal.iirnotch``, factored like ``tf2sos``."""
    stored = _stored(notch_key(freq, q, fs))
    return _design_notch(freq, q, fs) if stored is None else stored


def _design_notch(freq: float, q: float, fs: float) -> Sos:
    w0 = 2.0 * float(freq) / fs
    if not 0.0 <= w0 <= 1.0:
        raise ValueError(f"notch frequency must be within 0..fs/2, got {freq} Hz at fs={fs} Hz")
    bw = w0 / float(q) * math.pi
    w0 *= math.pi
    gain = 1.0 / (1.0 + math.tan(bw / 2.0))
    b = gain * np.array([1.0, -2.0 * math.cos(w0), 1.0])
    a = np.array([1.0, -2.0 * gain * math.cos(w0), 2.0 * gain - 1.0])
    return zpk2sos(np.roots(b / b[0]), np.roots(a), b[0])


def sosfilt_zi(sos: Sos) -> NDArray[np.float64]:
    """Steady-state state (sections, 2) of a unit step, as ``scipy.signal.sosfilt_zi``."""
    sos = np.asarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6:
        raise ValueError("sos must be shape (n_sections, 6)")
    a0 = sos[:, 3:4]
    b, a = sos[:, :3] / a0, sos[:, 3:] / a0
    # transposed direct form II: zi = A zi + B, A = companion(a).T
    m = np.zeros((len(sos), 2, 2))
    m[:, 0, 0] = 1.0 + a[:, 1]
    m[:, 0, 1] = -1.0
    m[:, 1, 0] = a[:, 2]
    m[:, 1, 1] = 1.0
    rhs = b[:, 1:] - a[:, 1:] * b[:, :1]
    zi = np.linalg.solve(m, rhs[:, :, None])[:, :, 0]
    gain = sos[:, :3].sum(axis=1) / sos[:, 3:].sum(axis=1)  # each section's DC gain
    scale = np.concatenate(([1.0], np.cumprod(gain[:-1])))
    return np.asarray(zi * scale[:, None], dtype=np.float64)


def _nyquist_clip(fs: float, freq: float) -> float:
    # Keep a corner safely below Nyquist so that the design stays stable at any fs.
    return min(freq, 0.45 * fs)


def design_bandpass(fs: float, low: float, high: float, order: int = 4) -> Sos:
    """Butterworth band-pass; ``high`` is clipped below Nyquist (e.g. 450 Hz at fs=500)."""
    high = _nyquist_clip(fs, high)
    if not 0 < low < high:
        raise ValueError(f"band-pass {low}-{high} Hz is empty at fs={fs} Hz")
    return butter_sos(order, [low, high], "bandpass", fs)


def design_highpass(fs: float, cutoff: float, order: int = 4) -> Sos:
    return butter_sos(order, _nyquist_clip(fs, cutoff), "highpass", fs)


def design_lowpass(fs: float, cutoff: float, order: int = 2) -> Sos:
    return butter_sos(order, _nyquist_clip(fs, cutoff), "lowpass", fs)


def design_notch(fs: float, freq: float, harmonics: int = 3, q: float = 30.0) -> Sos:
    """Cascade of IIR notches at ``freq`` and its harmonics below Nyquist (empty if freq=0)."""
    sections = []
    if freq > 0:
        for k in range(1, max(1, harmonics) + 1):
            f = k * freq
            if f >= 0.48 * fs:
                break
            sections.append(notch_sos(f, q * k, fs))  # constant bandwidth across harmonics
    if not sections:
        return np.zeros((0, 6))
    return np.vstack(sections)


def cascade(*parts: Sos) -> Sos:
    """Chain SOS filters into one array so one ``sosfilt`` call runs them all (fixed cost
    per call dominates at live chunk sizes)."""
    non_empty = [np.atleast_2d(p) for p in parts if np.size(p)]
    return np.vstack(non_empty) if non_empty else np.zeros((0, 6))


class SosFilter:
    """Causal multi-channel filter over axis 0 with state carried across chunks.

    ``initial`` selects how the state starts: ``"step"`` assumes the signal has been constant
    at its first value forever (no start-up transient from a DC offset), ``"zero"`` the usual
    rest state.
    """

    def __init__(self, sos: Sos, n_channels: int, initial: str = "step") -> None:
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.n_channels = n_channels
        self.initial = initial
        self._zi_unit = sosfilt_zi(self.sos) if len(self.sos) else None
        self._zi: NDArray[np.float64] | None = None  # (channels, sections, 2)

    def reset(self) -> None:
        self._zi = None

    def process(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter ``x`` (n, channels); returns a new (n, channels) array."""
        if not len(self.sos) or x.shape[0] == 0:
            return np.array(x, dtype=np.float64, copy=True)
        if self._zi is None:
            unit = self._zi_unit[None, :, :]  # type: ignore[index]
            scale = x[0][:, None, None] if self.initial == "step" else 0.0
            self._zi = np.ascontiguousarray(unit * scale + np.zeros((x.shape[1], 1, 1)))
        # The kernel filters rows of a C-contiguous (channels, n) array in place.
        rows = np.array(x.T, dtype=np.float64, order="C")
        sosfilt_rows(self.sos, rows, self._zi)
        return rows.T
