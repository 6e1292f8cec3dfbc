"""Start-up: every command's ``-h``, ``--version`` and ``show``/``search`` on an empty folder,
each as a multiple of a bare ``python -c pass`` (target: <= 4x).

Run: python benchmarks/startup.py [--rounds 15]
Every command runs once per round, interleaved with the bare interpreter, through the
installed ``dicomtools`` entry point; the ratio is the median over rounds of
(command time / bare python time in the same round). Peak RSS is the largest seen.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dicomtools_cmd, interleaved, median_s, peak_mb  # noqa: E402

TARGET = 4.0
COMMANDS = ["show", "search", "retrieve", "store", "anonymize", "echo", "config", "demo", "tui"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds [default: 15]")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dicomtools-bench-startup-"))
    empty = work / "empty"
    empty.mkdir()
    env = dict(os.environ, XDG_CONFIG_HOME=str(work / "config"), XDG_CACHE_HOME=str(work / "cache"))
    exe = dicomtools_cmd()  # the console script next to this interpreter
    cmds: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
    cmds["--version"] = [*exe, "--version"]
    cmds["-h"] = [*exe, "-h"]
    for name in COMMANDS:
        cmds[f"{name} -h"] = [*exe, name, "-h"]
    cmds["show (empty folder, cache)"] = [*exe, "show", "--path", str(empty)]
    cmds["show --format json --noCache (empty)"] = [*exe, "show", "--path", str(empty), "--format", "json",
                                                    "--noCache"]
    # search is outside the target (the issue names -h, --version and show), shown for information;
    # a keyword (PatientID) loads pydicom's dictionary, a (gggg,eeee) tag does not
    cmds["search (0010,0020)=? (empty, cache)"] = [*exe, "search", "--path", str(empty), "--tag", "(0010,0020)=?"]
    cmds["search PatientID (empty, cache)"] = [*exe, "search", "--path", str(empty), "--tag", "PatientID"]
    try:
        runs = interleaved(cmds, args.rounds, env=env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = runs["python -c pass"]
    print(f"entry point: {' '.join(exe)}; {args.rounds} interleaved rounds; cpus: {os.cpu_count()}")
    print(f"{'command':40s} {'median':>9s} {'x python':>9s} {'peak RSS':>9s}")
    worst = 0.0
    for name, r in runs.items():
        ratio = statistics.median(o.seconds / b.seconds for o, b in zip(r, base, strict=True))
        target = name != "python -c pass" and not (name.startswith("search") and "empty" in name)
        if target:
            worst = max(worst, ratio)
        flag = "" if not target else "  ok" if ratio <= TARGET else "  OVER the target"
        print(f"{name:40s} {median_s(r) * 1000:7.1f}ms {ratio:8.2f}x {peak_mb(r):6.0f} MB{flag}")
    print(f"worst target command: {worst:.2f}x a bare python start (target <= {TARGET:.0f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
