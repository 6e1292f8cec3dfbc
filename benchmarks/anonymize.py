"""Anonymization speed: ``dicomtools anonymize`` vs plain pydicom read + write of the same files.

Run: python benchmarks/anonymize.py [--count 20000] [--dir DIR] [--repeat 3] [--layout tree|keep]
The floor is what any anonymizer built on pydicom must pay: ``dcmread`` + ``save_as`` per file,
one process. Prints files/s and peak RSS of both and the ratio (ours / floor time; target <= 1.5).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timed, dicomtools_cmd, make_archive, timed  # noqa: E402

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


def run_best(cmd: list[str], out: Path, repeat: int) -> Timed:
    best: Timed | None = None
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        t = timed(cmd)
        if t.returncode != 0:
            sys.exit(f"failed ({t.returncode}): {' '.join(cmd)}\n{t.stdout.decode(errors='replace')}")
        if best is None or t.seconds < best.seconds:
            best = t
    assert best is not None
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=20000, help="CT files to generate [default: 20000]")
    ap.add_argument("--dir", default=None, help="work folder (archive kept and reused) [default: a temp dir]")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs each")
    ap.add_argument("--layout", choices=["tree", "keep"], default="tree")
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-anon-"))
    src = work / "archive"
    make_archive(src, args.count, 0)
    floor_out, ours_out = work / "floor-out", work / "anon-out"
    floor_cmd = [sys.executable, "-c", FLOOR, str(src), str(floor_out)]
    ours_cmd = [*dicomtools_cmd(), "anonymize", "--path", str(src), "--out", str(ours_out),
                "--newPatientId", "BENCH", "--newPatientName", "BENCH^ANON"]
    if args.layout == "keep":
        ours_cmd.append("--keep-layout")
    timed(floor_cmd)  # warm the page cache once for both
    floor = run_best(floor_cmd, floor_out, args.repeat)
    ours = run_best(ours_cmd, ours_out, args.repeat)
    written = sum(1 for p in ours_out.rglob("*.dcm"))
    if written != args.count:
        sys.exit(f"anonymize wrote {written} files, expected {args.count}")
    shutil.rmtree(floor_out, ignore_errors=True)
    shutil.rmtree(ours_out, ignore_errors=True)
    print(f"files: {args.count} CT slices (phantom write_ct_series), layout {args.layout}")
    print(f"pydicom read+write (floor): {floor.seconds:.2f}s  {args.count / floor.seconds:,.0f} files/s  "
          f"peak RSS {floor.peak_rss_mb:.0f} MB")
    print(f"dicomtools anonymize:       {ours.seconds:.2f}s  {args.count / ours.seconds:,.0f} files/s  "
          f"peak RSS {ours.peak_rss_mb:.0f} MB")
    print(f"ratio (anonymize time / floor time): {ours.seconds / floor.seconds:.2f}x (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
