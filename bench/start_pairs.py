"""`fireorder analyze` of 10 s files, process start to exit: this tree against an older commit.

On a shared machine one run's wall time says little (the same command moved 0.33-0.40 s within
minutes here); what holds is a comparison run back to back. This runs each command of the
older commit (``git archive`` into a temporary folder) and of this tree in turn, ``--runs``
rounds, with bytecode cached in a temporary folder (one untimed run each fills it), and prints
the median and least wall and CPU time (the child's rusage) of each, with the load average::

    python -m bench.start_pairs --before cc048b0 --runs 20

The files: a 10 s 4-channel CSV from ``fireorder simulate``, fireorder's own BDF from
``fireorder record --source simulator --fast`` and a BDF+ written by pyedflib (read through
pyedflib), all 2 kHz.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import common


def _tree(commit: str, into: Path) -> Path:
    """The files of ``commit`` in a folder (no git metadata)."""
    archive = into / "before.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", commit], cwd=common.REPO_ROOT, stdout=f, check=True)
    folder = into / "before"
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``cmd`` (stdout discarded), from process start to exit. It runs
    in the tree on its PYTHONPATH: ``python -m`` puts the working folder first on sys.path."""
    cwd = env["PYTHONPATH"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.strip()}")
    return wall, usage.ru_utime + usage.ru_stime


def _files(folder: Path, env: dict[str, str]) -> dict[str, Path]:
    from bench.speed import FS, write_bdf
    from devices.simulation.model import preset, simulate

    py = [sys.executable, "-m", "app"]
    csv, own, other = folder / "s.csv", folder / "own.bdf", folder / "other.bdf"
    subprocess.run(
        [*py, "simulate", "--duration", "10", "--out", str(csv)],
        env=env,
        check=True,
        capture_output=True,
        cwd=env["PYTHONPATH"],
    )
    record = ["record", "--source", "simulator", "--fast", "--duration", "10"]
    subprocess.run(
        [*py, *record, "--out", str(own)],
        env=env,
        check=True,
        capture_output=True,
        cwd=env["PYTHONPATH"],
    )
    write_bdf(other, simulate(preset("clean", fs=FS, seed=7), 10.0))
    return {"10 s CSV": csv, "10 s fireorder BDF": own, "10 s BDF+ (pyedflib)": other}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--before", required=True, help="the commit to compare with")
    parser.add_argument("--runs", type=int, default=20, help="rounds (default 20)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trees = {"before": _tree(args.before, folder), "after": common.REPO_ROOT}
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        envs = {name: {**base, "PYTHONPATH": str(tree)} for name, tree in trees.items()}
        files = _files(folder, envs["after"])
        cmds = {
            (label, name): [sys.executable, "-m", "app", "analyze", str(path)]
            for label, path in files.items()
            for name in trees
        }
        for (_, name), cmd in cmds.items():  # fill the bytecode cache
            _run(cmd, envs[name])
        times: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in cmds}
        load0 = os.getloadavg()[0]
        for _ in range(args.runs):
            for key, cmd in cmds.items():
                times[key].append(_run(cmd, envs[key[1]]))
        load1 = os.getloadavg()[0]
    print(
        f"`fireorder analyze`, {args.runs} alternating rounds, before = {args.before}, after = "
        f"{common.code_version_text(common.code_version())}; load average (1 min) "
        f"{load0:.2f} -> {load1:.2f}\n"
    )
    print("| file | tree | wall median (least) | CPU median (least) |\n|---|---|---|---|")
    for (label, name), ts in times.items():
        wall, cpu = [t[0] for t in ts], [t[1] for t in ts]
        print(
            f"| {label} | {name} | {statistics.median(wall):.3f} s ({min(wall):.3f}) | "
            f"{statistics.median(cpu):.3f} s ({min(cpu):.3f}) |"
        )


if __name__ == "__main__":
    main()
