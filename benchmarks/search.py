"""Search speed: ``dicomtools search --tag "(0010,0020)=?"`` cold and warm vs ``dcmdump`` on one folder.

Run: python benchmarks/search.py [--count 20000] [--junk 2000] [--dir DIR]
Cold = no index cache; warm = second run with the cache filled by the first. Prints files/s
and the ratios (ours / dcmdump, and warm / cold).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dicomtools_cmd, make_archive, need, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--junk", type=int, default=2000)
    ap.add_argument("--dir", default=None, help="archive folder (kept and reused) [default: a temp dir]")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs each")
    args = ap.parse_args()
    dcmdump = need("dcmdump")
    root = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-search-"))
    make_archive(root, args.count, args.junk)
    files = args.count + args.junk
    cache = Path(tempfile.mkdtemp(prefix="dicomtools-bench-cache-"))
    base = [*dicomtools_cmd(), "search", "--path", str(root), "--tag", "(0010,0020)=?"]
    cold_cmd = [*base, "--noCache"]
    warm_cmd = [*base, "--cache", str(cache)]
    theirs_cmd = [dcmdump, "-q", "+sd", "+r", "+P", "0010,0020", str(root)]
    timed(theirs_cmd)  # page cache warm for everybody
    cold = min((timed(cold_cmd) for _ in range(args.repeat)), key=lambda t: t.seconds)
    fill = timed(warm_cmd)
    warm = min((timed(warm_cmd) for _ in range(args.repeat)), key=lambda t: t.seconds)
    theirs = min((timed(theirs_cmd) for _ in range(args.repeat)), key=lambda t: t.seconds)
    lines = cold.stdout.decode(errors="replace").splitlines()
    assert sum(1 for line in lines if "(0010,0020)=" in line) == args.count, "cold search missed files"
    assert warm.stdout == cold.stdout, "warm search differs from cold search"
    print(f"files: {files} ({args.count} DICOM + {args.junk} non-DICOM), cpus: {os.cpu_count()}")
    print(f"dicomtools search, cold (--noCache): {cold.seconds:.2f}s  {files / cold.seconds:,.0f} files/s  peak RSS {cold.peak_rss_mb:.0f} MB")
    print(f"dicomtools search, first run filling the cache: {fill.seconds:.2f}s")
    print(f"dicomtools search, warm (cache): {warm.seconds:.2f}s  {files / warm.seconds:,.0f} files/s")
    print(f"dcmdump -q +sd +r +P 0010,0020: {theirs.seconds:.2f}s  {files / theirs.seconds:,.0f} files/s")
    print(f"ratio cold / dcmdump: {theirs.seconds / cold.seconds:.2f}x")
    print(f"ratio warm / dcmdump: {theirs.seconds / warm.seconds:.2f}x")
    print(f"ratio warm / cold: {cold.seconds / warm.seconds:.1f}x")
    shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
