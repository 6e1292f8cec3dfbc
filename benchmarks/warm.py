"""Warm ``show``/``search`` (index cache filled, files unchanged) against the floor.

The floor is what any tool must do to know nothing changed: start Python
(``python -c pass``) and stat every file (``find -printf '%s %T@'``), run as one
shell command. Run: python benchmarks/warm.py [--count 5000] [--dir DIR] [--rounds 7]
Prints median times and the median of the per-round ratios (ours / floor; the
target is <= 3x).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dicomtools_cmd, interleaved, line, make_archive, timed  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--dir", default=None, help="archive folder (kept and reused) [default: a temp dir]")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds [default: 7]")
    args = ap.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-warm-"))
    make_archive(root, args.count, 0)
    cache = Path(tempfile.mkdtemp(prefix="dicomtools-bench-cache-"))
    floor = f"{shlex.quote(sys.executable)} -c pass; find {shlex.quote(str(root))} -type f -printf '%s %T@\\n'"
    cmds = {
        "floor": ["sh", "-c", floor],
        "show": [*dicomtools_cmd(), "show", "--path", str(root), "--format", "json", "--cache", str(cache)],
        "search": [*dicomtools_cmd(), "search", "--path", str(root), "--tag", "(0010,0020)=?", "--cache", str(cache)],
    }
    timed(cmds["show"])  # fill the cache
    timed(cmds["search"])
    runs = interleaved(cmds, args.rounds)
    print(f"files: {args.count}, {args.rounds} interleaved rounds")
    print(line("floor: python -c pass + find stat-ing every file", runs["floor"], args.count))
    for name in ("show", "search"):
        print(line(f"dicomtools {name}, warm (index cache)", runs[name], args.count))
        ratio = statistics.median(o.seconds / f.seconds for o, f in zip(runs[name], runs["floor"], strict=True))
        print(f"median ratio {name} warm / floor: {ratio:.2f}x (target <= 3x)")
    shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
