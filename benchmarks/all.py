"""Every benchmark of the README's performance table, one after the other, in one run.

Run: python benchmarks/all.py [--dir DIR] [--quick] [--log FILE] [--here]

Each script runs us and its peer interleaved on the same files (see its own
docstring); this one only runs them in turn with the README's arguments, keeps
their whole output in ``--log`` and prints, per script, the lines that carry a
ratio or a target, as a Markdown table for the README. Archives are written once
under ``--dir`` and reused by later runs. ``--quick`` uses small sizes and one
round, to check the scripts themselves, not to measure.

What is measured is dicomtools as the README installs it: a venv under ``DIR/venv``
with ``pip install .`` of this checkout (rebuilt every run), whose interpreter runs
every script. A development install differs in what no user has: the editable
install's import hook (``__editable__...finder``, ~9 ms of imports at every start)
and whatever ``.pth`` hooks the machine's Python has. ``--here`` measures the
interpreter running this script instead (the development install).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEEP = re.compile(r"ratio|worst|target|warm cache|cold \(|first nodes|x python|^files:|realistic archive:|instances,|files, .* MB in")


def plan(base: Path, quick: bool) -> list[list[str]]:
    """The README's commands (script and arguments), in the order of its table."""
    if quick:
        return [
            ["startup.py", "--rounds", "1"],
            ["scan.py", "--count", "200", "--junk", "0", "--rounds", "1", "--dir", str(base / "s200")],
            ["warm.py", "--count", "200", "--rounds", "1", "--dir", str(base / "w200")],
            ["anonymize.py", "--count", "50", "--rounds", "1"],
            ["network.py", "--count", "50", "--large", "2", "--rounds", "1"],
        ]
    return [
        ["startup.py", "--rounds", "15"],
        ["scan.py", "--count", "1000", "--junk", "0", "--rounds", "9", "--dir", str(base / "s1000")],
        ["scan.py", "--count", "5000", "--junk", "0", "--rounds", "7", "--dir", str(base / "s5000")],
        ["scan.py", "--count", "20000", "--junk", "1000", "--rounds", "5", "--dir", str(base / "s20000")],
        ["scan.py", "--count", "100000", "--junk", "0", "--rounds", "3", "--dir", str(base / "s100000")],
        ["warm.py", "--count", "5000", "--rounds", "9", "--dir", str(base / "w5000")],
        ["search.py", "--count", "20000", "--junk", "2000", "--rounds", "3", "--dir", str(base / "q20000")],
        ["scan_large.py", "--dir", str(base / "s100000")],
        ["realistic.py", "--patients", "3", "--rounds", "5", "--dir", str(base / "realistic")],
        ["anonymize.py", "--count", "500", "--rounds", "7"],
        ["anonymize.py", "--count", "2000", "--rounds", "5"],
        ["network.py", "--count", "1500", "--large", "150", "--rounds", "9"],
        ["realistic_archive.py", str(base / "realistic1"), "--patients", "1"],
        ["network.py", "--dir", str(base / "realistic1"), "--rounds", "7"],
    ]


def product_python(base: Path) -> str:
    """The interpreter of ``base/venv``, with this checkout installed as the README does (``pip install .``)."""
    venv = base / "venv"
    python = venv / "bin" / "python"
    root = str(HERE.parent)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", root], check=True)  # with its dependencies
    # this checkout's code, whatever was installed before (same version number, so force it)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", root], check=True)
    return str(python)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/dicomtools-bench", help="where archives are kept [default: %(default)s]")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one round: checks the scripts, measures nothing")
    ap.add_argument("--log", default=None, help="whole output of every script [default: DIR/all.log]")
    ap.add_argument("--here", action="store_true",
                    help="measure the interpreter running this script (a development install), not DIR/venv")
    args = ap.parse_args()
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    python = sys.executable if args.here else product_python(base)
    log_path = Path(args.log) if args.log else base / "all.log"
    rows: list[tuple[str, list[str]]] = []
    failed = 0
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, interpreter {python}"
                  f" ({'this one' if args.here else 'pip install . in a venv'})\n")
        for argv in plan(base, args.quick):
            command = "python benchmarks/" + " ".join(argv)
            print(f"... {command}", file=sys.stderr, flush=True)
            started = time.monotonic()
            r = subprocess.run([python, str(HERE / argv[0]), *argv[1:]],
                               capture_output=True, text=True, errors="replace")
            took = time.monotonic() - started
            log.write(f"\n$ {command}   ({took:.0f} s, exit {r.returncode})\n{r.stdout}{r.stderr}")
            log.flush()
            if r.returncode != 0:
                failed += 1
                kept = [f"FAILED (exit {r.returncode}): {(r.stderr or r.stdout).strip().splitlines()[-1:]}"]
            else:
                kept = [ln.strip() for ln in r.stdout.splitlines() if KEEP.search(ln)]
            rows.append((command, kept))
    print("| command | result |\n|---|---|")
    for command, kept in rows:
        print(f"| `{command}` | {'<br>'.join(k.replace('|', '/') for k in kept)} |")
    print(f"\nwhole output: {log_path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
