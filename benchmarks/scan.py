"""Scan speed: ``dicomtools show --format json`` (cold) vs dcmtk's ``dcmdump`` on one folder.

Run: python benchmarks/scan.py [--count 20000] [--junk 1000] [--dir DIR] [--rounds 5]
Both run on the same files in the same run, interleaved round by round (the machine may be
shared); prints median time, files/s and peak RSS of each and the median of the per-round
ratios (dcmdump time / ours; > 1 means we are faster).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timed, dicomtools_cmd, interleaved, line, make_archive, median_ratio, need, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--junk", type=int, default=1000)
    ap.add_argument("--dir", default=None, help="archive folder (kept and reused) [default: a temp dir]")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds [default: 5]")
    args = ap.parse_args()
    dcmdump = need("dcmdump")
    root = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-scan-"))
    make_archive(root, args.count, args.junk)
    files = args.count + args.junk
    ours_cmd = [*dicomtools_cmd(), "show", "--path", str(root), "--format", "json", "--noCache"]
    theirs_cmd = [dcmdump, "-q", "+sd", "+r", "+P", "0010,0020", str(root)]

    def check(name: str, t: Timed) -> None:
        if name == "ours":
            doc = json.loads(t.stdout)
            if doc["stats"]["instances"] != args.count:
                sys.exit(f"show found {doc['stats']['instances']} instances, expected {args.count}")

    timed(theirs_cmd)  # warm the page cache for both
    runs = interleaved({"theirs": theirs_cmd, "ours": ours_cmd}, args.rounds, check=check)
    print(f"files: {files} ({args.count} DICOM + {args.junk} non-DICOM), {args.rounds} interleaved rounds")
    print(line("dicomtools show --format json --noCache", runs["ours"], files))
    print(line("dcmdump -q +sd +r +P 0010,0020", runs["theirs"], files))
    print(f"median ratio (dcmdump time / ours): {median_ratio(runs['theirs'], runs['ours']):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
