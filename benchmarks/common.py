"""Shared helpers for the benchmarks: archives, timing child processes, peak memory."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Timed:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: bytes


def timed(cmd: list[str], env: dict[str, str] | None = None) -> Timed:
    """Run a command and measure wall time and the peak RSS of its biggest process.

    Each timed command runs in a fresh helper process, so RUSAGE_CHILDREN is
    the peak of that command alone.
    """
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
        "dt = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "sys.stderr.write(f'{dt} {rss} {r.returncode}\\n')\n"
        "sys.stdout.buffer.write(r.stdout)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, env=env)
    dt, rss, rc = r.stderr.decode().strip().splitlines()[-1].split()
    return Timed(float(dt), float(rss), int(rc), r.stdout)


def interleaved(
    cmds: dict[str, list[str]],
    rounds: int,
    env: dict[str, str] | None = None,
    before: Callable[[str], None] | None = None,
    check: Callable[[str, Timed], None] | None = None,
) -> dict[str, list[Timed]]:
    """Run every command once per round, in turn, for ``rounds`` rounds.

    Interleaving puts the tools under the same background load (the machine is
    shared); ``before(name)`` resets state (an output folder) outside the timing,
    ``check(name, result)`` validates each run.
    """
    runs: dict[str, list[Timed]] = {name: [] for name in cmds}
    for _ in range(rounds):
        for name, cmd in cmds.items():
            if before is not None:
                before(name)
            t = timed(cmd, env)
            if check is not None:
                check(name, t)
            elif t.returncode != 0:
                sys.exit(f"{name} failed ({t.returncode}): {' '.join(cmd)}")
            runs[name].append(t)
    return runs


def median_s(runs: list[Timed]) -> float:
    return statistics.median(t.seconds for t in runs)


def peak_mb(runs: list[Timed]) -> float:
    return max(t.peak_rss_mb for t in runs)


def median_ratio(theirs: list[Timed], ours: list[Timed]) -> float:
    """Median over rounds of (their time / our time) within the same round: > 1 means we are faster."""
    return statistics.median(t.seconds / o.seconds for t, o in zip(theirs, ours, strict=True))


def line(label: str, runs: list[Timed], items: int | None = None, unit: str = "files") -> str:
    """One result line: median time, rate, peak RSS, and every round (so the spread is visible)."""
    med = median_s(runs)
    rate = f"  {items / med:10,.0f} {unit}/s" if items else ""
    every = ", ".join(f"{t.seconds:.2f}" for t in runs)
    return f"{label:46s} median {med:7.3f} s{rate}  peak RSS {peak_mb(runs):5.0f} MB  (rounds: {every})"


def need(binary: str) -> str:
    path = shutil.which(binary)
    if not path:
        sys.exit(f"benchmark needs {binary!r} (apt-get install dcmtk orthanc)")
    return path


_COMPILED = False


def byte_compile() -> None:
    """Write the package's .pyc files once, as installing a wheel does.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (this VM sets it)
    compiles every module from source on every run, ~40 ms a command that no
    installed copy pays; Python still reads .pyc files that exist.
    """
    global _COMPILED
    if _COMPILED:
        return
    import compileall
    import importlib.util

    for name in ("dicomtools.core", "dicomtools.tui"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                compileall.compile_dir(folder, quiet=1)
    _COMPILED = True


def dicomtools_cmd() -> list[str]:
    """The console script next to this interpreter, what a user runs (``python -m`` adds runpy's
    imports, ~1.5 ms a command); ``-m`` when there is none."""
    byte_compile()
    script = os.path.join(os.path.dirname(sys.executable), "dicomtools")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "dicomtools.core"]


def make_archive(root: Path, count: int, junk: int) -> None:
    """count small CT files in nested folders plus junk files; reused when already there."""
    from dicomtools.core.phantom.bulk import write_ct_series, write_junk

    marker = root / f".dicomtools-bench-{count}-{junk}"
    if marker.exists():
        return
    if root.exists():
        shutil.rmtree(root)
    per_folder = 2000
    t = time.perf_counter()
    for i in range(0, count, per_folder):
        write_ct_series(root / f"series{i // per_folder:03d}", min(per_folder, count - i),
                        patient_id=f"BULK-{i // per_folder:03d}", seed=i)
    if junk:
        write_junk(root / "junk", junk)
    marker.write_text("benchmark archive\n")
    print(f"wrote {count} CT + {junk} junk files in {time.perf_counter() - t:.1f}s", file=sys.stderr)


def drop_page_cache_hint() -> None:
    """Both tools read the same files in the same run; warm them once so neither pays the disk."""


def max_rss_self_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def env_nodelay() -> dict[str, str]:
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    return env
