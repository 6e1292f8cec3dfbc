"""A 100,000-file archive: cold and warm ``show`` time and peak memory, and how soon a warm
scan delivers its first nodes (what the TUI paints first).

Run: python benchmarks/scan_large.py [--count 100000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dicomtools_cmd, make_archive, timed  # noqa: E402

FIRST_BATCH = (
    "import sys, time\n"
    "from dicomtools.core.archive.cache import IndexCache\n"
    "from dicomtools.core.archive.scan import scan\n"
    "t = time.perf_counter(); first = []\n"
    "def on_batch(b):\n"
    "    if not first: first.append(time.perf_counter() - t)\n"
    "if __name__ == '__main__':\n"
    "    r = scan(sys.argv[1], cache=IndexCache(sys.argv[2]), on_batch=on_batch)\n"
    "    print(first[0], time.perf_counter() - t, len(r.instances))\n"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-large-"))
    make_archive(root, args.count, 0)
    cache = tempfile.mkdtemp(prefix="dicomtools-bench-cache-")
    show = [*dicomtools_cmd(), "show", "--path", str(root), "--format", "json"]
    cold = timed([*show, "--noCache"])
    assert json.loads(cold.stdout)["stats"]["instances"] == args.count
    fill = timed([*show, "--cache", cache])
    warm = timed([*show, "--cache", cache])
    assert json.loads(warm.stdout)["stats"]["instances"] == args.count
    script = Path(cache) / "first_batch.py"
    script.write_text(FIRST_BATCH)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, str(script), str(root), cache], capture_output=True, text=True, check=True)
    first, total, n = out.stdout.split()
    print(f"files: {args.count}")
    print(f"show --format json, cold (--noCache): {cold.seconds:.1f}s  {args.count / cold.seconds:,.0f} files/s  peak RSS {cold.peak_rss_mb:.0f} MB")
    print(f"show, first run filling the index cache: {fill.seconds:.1f}s  peak RSS {fill.peak_rss_mb:.0f} MB")
    print(f"show, warm cache: {warm.seconds:.1f}s  peak RSS {warm.peak_rss_mb:.0f} MB")
    print(f"warm scan in-process: first nodes after {float(first):.2f}s, all {n} after {float(total):.2f}s "
          f"(process {time.perf_counter() - t:.1f}s with start-up)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
