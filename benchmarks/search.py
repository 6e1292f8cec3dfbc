"""Search speed: ``dicomtools search --tag "(0010,0020)=?"`` cold and warm vs ``dcmdump`` on one folder.

Run: python benchmarks/search.py [--count 20000] [--junk 2000] [--dir DIR] [--rounds 5]
Cold = no index cache; warm = with the cache filled once before the rounds. dcmdump, cold
and warm run interleaved round by round on the same files; prints median times, files/s,
peak RSS and the medians of the per-round ratios (dcmdump time / ours; > 1 means faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timed, dicomtools_cmd, interleaved, line, make_archive, median_ratio, need, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--junk", type=int, default=2000)
    ap.add_argument("--dir", default=None, help="archive folder (kept and reused) [default: a temp dir]")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds [default: 5]")
    args = ap.parse_args()
    dcmdump = need("dcmdump")
    root = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-search-"))
    make_archive(root, args.count, args.junk)
    files = args.count + args.junk
    cache = Path(tempfile.mkdtemp(prefix="dicomtools-bench-cache-"))
    base = [*dicomtools_cmd(), "search", "--path", str(root), "--tag", "(0010,0020)=?"]
    cmds = {
        "dcmdump": [dcmdump, "-q", "+sd", "+r", "+P", "0010,0020", str(root)],
        "cold": [*base, "--noCache"],
        "warm": [*base, "--cache", str(cache)],
    }
    timed(cmds["dcmdump"])  # page cache warm for everybody
    reference = timed(cmds["cold"]).stdout
    if sum(1 for x in reference.decode(errors="replace").splitlines() if "(0010,0020)=" in x) != args.count:
        sys.exit("cold search missed files")
    fill = timed(cmds["warm"])

    def check(name: str, t: Timed) -> None:
        # dcmdump exits non-zero on the junk files: only our runs are checked
        if name != "dcmdump" and (t.returncode != 0 or t.stdout != reference):
            sys.exit(f"{name}: failed or differs from the first cold search")

    runs = interleaved(cmds, args.rounds, check=check)
    print(f"files: {files} ({args.count} DICOM + {args.junk} non-DICOM), cpus: {os.cpu_count()}, "
          f"{args.rounds} interleaved rounds")
    print(line("dicomtools search, cold (--noCache)", runs["cold"], files))
    print(f"dicomtools search, first run filling the cache: {fill.seconds:.2f}s")
    print(line("dicomtools search, warm (cache)", runs["warm"], files))
    print(line("dcmdump -q +sd +r +P 0010,0020", runs["dcmdump"], files))
    print(f"median ratio cold (dcmdump time / ours): {median_ratio(runs['dcmdump'], runs['cold']):.2f}x")
    print(f"median ratio warm (dcmdump time / ours): {median_ratio(runs['dcmdump'], runs['warm']):.2f}x")
    print(f"median ratio warm / cold: {median_ratio(runs['cold'], runs['warm']):.1f}x")
    shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
