"""Anonymization speed: ``dicomtools anonymize`` vs plain pydicom read + write of the same files.

Run: python benchmarks/anonymize.py [--count 20000] [--dir DIR] [--rounds 5] [--layout tree|keep]
The floor is what any anonymizer built on pydicom must pay: ``dcmread`` + ``save_as`` per file,
one process. Both run interleaved round by round on the same files; prints median time, files/s
and peak RSS of both and the median of the per-round ratios (our time / floor time; target <= 1.3).
It also prints the same ratio of CPU time (user + system) of the two processes: on a machine
loaded by others wall times swing by 2x from one second to the next, CPU time much less.
From 64 files ``anonymize`` works in worker processes on every core (output byte-identical to
a serial run); the floor is one process, as a plain pydicom script is. The CPU ratio counts
every process of ours, so it shows what the workers cost on top of the work itself.

Both commands run with Python's bytecode cache on (in a folder of the work dir): an installed
package has its bytecode, but an editable checkout under PYTHONDONTWRITEBYTECODE (as on the
shared machine) would recompile our ~50 modules on every run, a cost no installed copy pays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timed, dicomtools_cmd, line, make_archive, median_ratio  # noqa: E402

FLOOR = """
import os, sys, pydicom
src, dst = sys.argv[1], sys.argv[2]
n = 0
for folder, _dirs, files in os.walk(src):
    for name in sorted(files):
        if name.startswith('.'):
            continue
        path = os.path.join(folder, name)
        out = os.path.join(dst, os.path.relpath(path, src))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        ds = pydicom.dcmread(path)
        ds.save_as(out)
        n += 1
print(n)
"""


PROBE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
    "dt = time.perf_counter() - t\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stderr.write(f'{dt} {u.ru_maxrss / 1024} {r.returncode} {u.ru_utime + u.ru_stime}\\n')\n"
    "sys.stdout.buffer.write(r.stdout)\n"
)


def timed_cpu(cmd: list[str], env: dict[str, str]) -> tuple[Timed, float]:
    """common.timed plus the CPU seconds (user + system) of the command's processes."""
    r = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True, env=env)
    dt, rss, rc, cpu = r.stderr.decode().strip().splitlines()[-1].split()
    return Timed(float(dt), float(rss), int(rc), r.stdout), float(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=20000, help="CT files to generate [default: 20000]")
    ap.add_argument("--dir", default=None, help="work folder (archive kept and reused) [default: a temp dir]")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds [default: 5]")
    ap.add_argument("--layout", choices=["tree", "keep"], default="tree")
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-anon-"))
    src = work / "archive"
    make_archive(src, args.count, 0)
    floor_out, ours_out = work / "floor-out", work / "anon-out"
    floor_cmd = [sys.executable, "-c", FLOOR, str(src), str(floor_out)]

    def ours(folder: Path, out: Path) -> list[str]:
        cmd = [*dicomtools_cmd(), "anonymize", "--path", str(folder), "--out", str(out),
               "--newPatientId", "BENCH", "--newPatientName", "BENCH^ANON"]
        return [*cmd, "--keep-layout"] if args.layout == "keep" else cmd

    ours_cmd = ours(src, ours_out)
    outs = {"floor": floor_out, "ours": ours_out}

    def check(name: str, t: Timed) -> None:
        if t.returncode != 0:
            sys.exit(f"{name} failed ({t.returncode})\n{t.stdout.decode(errors='replace')}")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    timed_cpu(floor_cmd, env)  # warm the page cache (and the bytecode cache) once for both
    shutil.rmtree(floor_out, ignore_errors=True)
    one = work / "warm"
    if not one.is_dir():
        one.mkdir()
        shutil.copy(min(src.rglob("*.dcm")), one / "one.dcm")
    warm_out = work / "warm-out"
    shutil.rmtree(warm_out, ignore_errors=True)
    check("ours (warm-up)", timed_cpu(ours(one, warm_out), env)[0])
    shutil.rmtree(warm_out, ignore_errors=True)
    runs: dict[str, list[Timed]] = {"floor": [], "ours": []}
    cpu: dict[str, list[float]] = {"floor": [], "ours": []}
    for _ in range(args.rounds):  # interleaved: both under the same background load
        for name, cmd in (("floor", floor_cmd), ("ours", ours_cmd)):
            shutil.rmtree(outs[name], ignore_errors=True)
            t, c = timed_cpu(cmd, env)
            check(name, t)
            runs[name].append(t)
            cpu[name].append(c)
    written = sum(1 for p in ours_out.rglob("*.dcm"))
    if written != args.count:
        sys.exit(f"anonymize wrote {written} files, expected {args.count}")
    shutil.rmtree(floor_out, ignore_errors=True)
    shutil.rmtree(ours_out, ignore_errors=True)
    print(f"files: {args.count} CT slices (phantom write_ct_series), layout {args.layout}, "
          f"{args.rounds} interleaved rounds")
    print(line("pydicom read+write (floor)", runs["floor"], args.count))
    print(line("dicomtools anonymize", runs["ours"], args.count))
    ratio = median_ratio(runs["ours"], runs["floor"])
    print(f"median ratio (anonymize time / floor time): {ratio:.2f}x (target <= 1.3x)")
    cpu_ratio = statistics.median(o / f for o, f in zip(cpu["ours"], cpu["floor"], strict=True))
    every = ", ".join(f"{o:.2f}/{f:.2f}" for o, f in zip(cpu["ours"], cpu["floor"], strict=True))
    print(f"median ratio of CPU time (user+sys, all our processes): {cpu_ratio:.2f}x  "
          f"(rounds ours/floor s: {every})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
