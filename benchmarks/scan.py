"""Scan speed: ``dicomtools show --format json`` (cold) vs dcmtk's ``dcmdump`` on one folder.

Run: python benchmarks/scan.py [--count 20000] [--junk 1000] [--dir DIR]
Prints files/s for both and the ratio (ours / dcmdump; > 1 means faster), plus our peak memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dicomtools_cmd, make_archive, need, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--junk", type=int, default=1000)
    ap.add_argument("--dir", default=None, help="archive folder (kept and reused) [default: a temp dir]")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs each")
    args = ap.parse_args()
    dcmdump = need("dcmdump")
    root = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-scan-"))
    make_archive(root, args.count, args.junk)
    files = args.count + args.junk
    ours_cmd = [*dicomtools_cmd(), "show", "--path", str(root), "--format", "json"]
    if "--no-cache" in timed([*dicomtools_cmd(), "show", "-h"]).stdout.decode():
        ours_cmd.append("--no-cache")
    theirs_cmd = [dcmdump, "-q", "+sd", "+r", "+P", "0010,0020", str(root)]
    timed(theirs_cmd)  # warm the page cache for both
    ours = min((timed(ours_cmd) for _ in range(args.repeat)), key=lambda t: t.seconds)
    theirs = min((timed(theirs_cmd) for _ in range(args.repeat)), key=lambda t: t.seconds)
    doc = json.loads(ours.stdout)
    assert doc["stats"]["instances"] == args.count, doc["stats"]
    our_rate, their_rate = files / ours.seconds, files / theirs.seconds
    print(f"files: {files} ({args.count} DICOM + {args.junk} non-DICOM)")
    print(f"dicomtools show --format json: {ours.seconds:.2f}s  {our_rate:,.0f} files/s  peak RSS {ours.peak_rss_mb:.0f} MB")
    print(f"dcmdump -q +sd +r +P 0010,0020: {theirs.seconds:.2f}s  {their_rate:,.0f} files/s")
    print(f"ratio (dicomtools / dcmdump): {our_rate / their_rate:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
