"""Time ``dicomtools store`` / ``retrieve`` against dcmtk in the same run, same instances.

    python benchmarks/network.py [--count 2000]

Store: ``dicomtools store`` vs dcmtk ``storescu``, both into a dcmtk
``storescp`` writing files. Retrieve: ``dicomtools retrieve`` (C-MOVE into
our SCP) vs dcmtk ``movescu`` with a dcmtk ``storescp`` as the destination,
both from one Orthanc. Every process runs with ``TCP_NODELAY=1``; every
command is a subprocess, so start-up costs count on both sides. Prints
instances/s and our/dcmtk ratios (targets: store >= 0.5, retrieve >= 0.8),
best of ``--rounds`` interleaved runs because the machine may be shared.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "net"))

import peers  # noqa: E402

from dicomtools.core.phantom import write_ct_series  # noqa: E402


def dicomtools(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dicomtools.core", *args], capture_output=True, text=True,
                          env=peers.peer_env(), timeout=1800)


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def bench_store(work: Path, files: list[Path], src: Path, rounds: int) -> float:
    n = len(files)
    scp = peers.StoreSCP.start(work / "scp-store", unique=False)
    dcmtk_times, our_times = [], []
    try:
        for _ in range(rounds):  # interleaved, best of N: the machine is shared
            shutil.rmtree(scp.out_dir)
            scp.out_dir.mkdir()
            r, t = timed(lambda: peers.storescu(scp.port, scp.aet, files))
            if r.returncode != 0 or count_files(scp.out_dir) != n:
                raise SystemExit(f"storescu failed: {r.stderr.decode(errors='replace')[-500:]}")
            dcmtk_times.append(t)
            shutil.rmtree(scp.out_dir)
            scp.out_dir.mkdir()
            r2, t = timed(lambda: dicomtools(
                "store", "--path", str(src), "--hostName", peers.HOST, "--hostPort", str(scp.port),
                "--calledAet", scp.aet, "--callingAet", "DICOMTOOLS", "--showMessages", "false", "--noCache"))
            if r2.returncode != 0 or count_files(scp.out_dir) != n:
                raise SystemExit(f"dicomtools store failed: {r2.stdout}{r2.stderr}")
            our_times.append(t)
    finally:
        scp.stop()
    return report("store", "storescu", "dicomtools store", n, dcmtk_times, our_times, 0.5)


def report(what: str, theirs: str, ours: str, n: int, dcmtk: list[float], mine: list[float], target: float) -> float:
    td, to = min(dcmtk), min(mine)
    print(f"{what:8s} {theirs:26s} {n / td:7.0f} inst/s  best {td:.2f} s  (all: {', '.join(f'{t:.2f}' for t in dcmtk)})")
    print(f"{what:8s} {ours:26s} {n / to:7.0f} inst/s  best {to:.2f} s  (all: {', '.join(f'{t:.2f}' for t in mine)})")
    print(f"{what:8s} ratio {td / to:.2f} (target >= {target})")
    return td / to


def bench_retrieve(work: Path, files: list[Path], patient_id: str, rounds: int) -> float:
    n = len(files)
    our_port = peers.free_port()
    dest = peers.StoreSCP.start(work / "scp-move", aet="MOVESCP", unique=False)
    orthanc = peers.Orthanc.start(work / "orthanc", modalities={
        "dicomtools": ("DICOMTOOLS", peers.HOST, our_port),
        "movescp": ("MOVESCP", peers.HOST, dest.port),
    })
    dcmtk_times, our_times = [], []
    try:
        r = peers.storescu(orthanc.port, orthanc.aet, files)
        if r.returncode != 0 or orthanc.instance_count() != n:
            raise SystemExit(f"loading Orthanc failed: {r.stderr.decode(errors='replace')[-300:]}")
        movescu = peers.find_binary("movescu")
        argv = [movescu, "-aet", "MOVESCP", "-aem", "MOVESCP", "-aec", orthanc.aet, "-P",
                "-k", "QueryRetrieveLevel=PATIENT", "-k", f"PatientID={patient_id}", peers.HOST, str(orthanc.port)]
        out = work / "retrieved"
        for _ in range(rounds):
            shutil.rmtree(dest.out_dir)
            dest.out_dir.mkdir()
            r, t = timed(lambda: subprocess.run(argv, capture_output=True, env=peers.peer_env(), timeout=1800))
            got = count_files(dest.out_dir)
            if r.returncode != 0 or got != n:
                raise SystemExit(f"movescu failed ({got}/{n}): {r.stderr.decode(errors='replace')[-500:]}")
            dcmtk_times.append(t)
            shutil.rmtree(out, ignore_errors=True)
            r2, t = timed(lambda: dicomtools(
                "retrieve", "--patientId", patient_id, "--path", str(out), "--force",
                "--hostName", peers.HOST, "--hostPort", str(orthanc.port), "--calledAet", orthanc.aet,
                "--callingAet", "DICOMTOOLS", "--scpPort", str(our_port)))
            got2 = count_files(out)
            if r2.returncode != 0 or got2 != n:
                raise SystemExit(f"dicomtools retrieve failed ({got2}/{n}): {r2.stdout}{r2.stderr}")
            our_times.append(t)
    finally:
        orthanc.stop()
        dest.stop()
    return report("retrieve", "movescu + storescp", "dicomtools retrieve (move)", n, dcmtk_times, our_times, 0.8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="instances [default: 2000]")
    ap.add_argument("--only", choices=["store", "retrieve"], default=None)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved runs per tool, best counts [default: 3]")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dicomtools-bench-"))
    try:
        src = work / "src"
        files = write_ct_series(src, args.count, patient_id="BENCH-001")
        print(f"{args.count} CT instances of {files[0].stat().st_size} bytes, TCP_NODELAY=1 everywhere")
        if args.only in (None, "store"):
            bench_store(work, files, src, args.rounds)
        if args.only in (None, "retrieve"):
            bench_retrieve(work, files, "BENCH-001", args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
