"""A realistic RT archive: scan and search vs ``dcmdump``, optionally store/retrieve vs dcmtk.

Run: python benchmarks/realistic.py [--patients 3] [--dir DIR] [--rounds 5] [--small] [--network]
The archive (``realistic_archive.py``: per patient a 150-slice 512x512 CT, 30 ROIs x 150
contours, two VMAT plans of 2 arcs x 178 control points with a multi-frame dose, DRRs and
records each, a CBCT) is written once and reused. ``dcmdump``, ``show --format json`` cold
(--noCache), ``search`` cold and warm run interleaved round by round on the same files;
prints median times, files/s and MB/s, peak RSS and the medians of the per-round ratios
(dcmdump time / ours; > 1 means faster). ``--network`` then runs ``network.py --dir`` on
the same archive (storescu/movescu/getscu, TCP_NODELAY=1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import Timed, dicomtools_cmd, interleaved, line, median_ratio, median_s, need, timed  # noqa: E402
from realistic_archive import Sizes, make_realistic  # noqa: E402

# the Treatment Machine Name of every beam: a tag inside a sequence, only plans have it
MACHINE = "(300A,00B0)/(300A,00B2)=?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=3, help="patients [default: 3, about 140 MB each]")
    ap.add_argument("--dir", default=None, help="archive folder (kept and reused) [default: a temp dir]")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds [default: 5]")
    ap.add_argument("--small", action="store_true", help="small matrices and counts: checks the script quickly")
    ap.add_argument("--network", action="store_true", help="also run network.py --dir on the archive")
    args = ap.parse_args()
    dcmdump = need("dcmdump")
    sizes = Sizes.small(args.patients) if args.small else Sizes(patients=args.patients)
    root = Path(args.dir or tempfile.mkdtemp(prefix="dicomtools-bench-realistic-"))
    files, size = make_realistic(root, sizes)
    cache = Path(tempfile.mkdtemp(prefix="dicomtools-bench-cache-"))
    search = [*dicomtools_cmd(), "search", "--path", str(root), "--tag", "(0010,0020)=?"]
    cmds = {
        "dcmdump": [dcmdump, "-q", "+sd", "+r", "+P", "0010,0020", str(root)],
        "show": [*dicomtools_cmd(), "show", "--path", str(root), "--format", "json", "--noCache"],
        "search": [*search, "--noCache"],
        "search_warm": [*search, "--cache", str(cache)],
        "machine": [*dicomtools_cmd(), "search", "--path", str(root), "--tag", MACHINE, "--noCache"],
    }
    plans = sizes.patients * sizes.plans

    def check(name: str, t: Timed) -> None:
        if name == "dcmdump":
            return  # exits 1 on the archive's marker file (not DICOM); its time is what counts
        if t.returncode != 0:
            sys.exit(f"{name} failed ({t.returncode}): {t.stdout.decode(errors='replace')[-500:]}")
        text = t.stdout.decode(errors="replace")
        if name == "show":
            stats = json.loads(text)["stats"]
            if (stats["instances"], stats["plans"]) != (files, plans):
                sys.exit(f"show saw {stats['instances']} instances and {stats['plans']} plans, expected {files}, {plans}")
        elif name.startswith("search") and text.count("(0010,0020)=") != files:
            sys.exit(f"{name} matched {text.count('(0010,0020)=')} files, expected {files}")
        elif name == "machine" and text.count("TrueBeam1") != plans:
            sys.exit(f"machine search matched {text.count('TrueBeam1')} plans, expected {plans}")

    timed(cmds["dcmdump"])  # the page cache is warm for every tool
    timed(cmds["search_warm"])  # fills the index cache
    runs = interleaved(cmds, args.rounds, check=check)
    print(f"realistic archive: {sizes.patients} patients, {files} files, {size / 1e6:.0f} MB "
          f"({'small sizes' if args.small else 'full sizes'}); cpus: {os.cpu_count()}; {args.rounds} interleaved rounds")
    labels = {
        "dcmdump": "dcmdump -q +sd +r +P 0010,0020",
        "show": "show --format json --noCache (cold)",
        "search": 'search --tag "(0010,0020)=?" cold',
        "search_warm": 'search --tag "(0010,0020)=?" warm (cache)',
        "machine": f'search --tag "{MACHINE}" cold',
    }
    for name, label in labels.items():
        print(f"{line(label, runs[name], files)}  {size / 1e6 / median_s(runs[name]):6.0f} MB/s")
    for name in ("show", "search", "search_warm", "machine"):
        print(f"median ratio {labels[name]} (dcmdump time / ours): {median_ratio(runs['dcmdump'], runs[name]):.2f}x")
    shutil.rmtree(cache, ignore_errors=True)
    if args.network:
        sys.stdout.flush()
        subprocess.run([sys.executable, str(HERE / "network.py"), "--dir", str(root), "--rounds", str(args.rounds)],
                       check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
