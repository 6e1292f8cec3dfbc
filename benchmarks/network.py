"""Time ``dicomtools store`` / ``retrieve`` against dcmtk in the same run, same instances.

    python benchmarks/network.py [--count 2000] [--large 150] [--dir FOLDER] [--rounds 5]
                                 [--only store|orthanc|retrieve]

Input: ``--count`` small (8x8) CT slices plus ``--large`` 512x512 16-bit CT slices (a second
series of the same patient, ~0.5 MB each) in one folder, or every file of ``--dir`` (e.g. the
archive of ``benchmarks/realistic_archive.py``; retrieve then runs once per patient in it).
Tiny files measure the per-instance overhead, large ones the bytes path (PDU framing, copies).

- store: ``dicomtools store --includeAll`` vs dcmtk ``storescu``, both into a dcmtk
  ``storescp`` writing files, one association each.
- orthanc: ``dicomtools store --associations N`` vs ``storescu`` into the same Orthanc (a
  PACS that takes associations in parallel), Orthanc emptied before every run.
- retrieve: ``dicomtools retrieve`` (C-MOVE into our SCP) vs ``movescu`` with a dcmtk
  ``storescp`` as the destination, and ``retrieve --useGet`` vs ``getscu``, all from one Orthanc.

Outputs are moved aside between runs and deleted only at the end (see :func:`fresh`).
Every process runs with ``TCP_NODELAY=1``; every command is a subprocess, so start-up
costs count on both sides. Tools run interleaved round by round (the machine may be
shared); prints median time, instances/s, peak RSS, and the median of the per-round
ratios (dcmtk time / ours; > 1 means we are faster).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "net"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import peers  # noqa: E402
from common import Timed, dicomtools_cmd, line, median_ratio, timed  # noqa: E402

from dicomtools.core.phantom import write_ct_series  # noqa: E402

OURS_AET = "DICOMTOOLS"


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


_set_aside = 0


def fresh(folder: Path) -> None:
    """An empty output folder; the last run's output is moved aside, not deleted, until the end.

    On this VM's ext4 creating a file is ~0.5 ms slower for about 30 s after many files were
    deleted nearby (``ext4_create`` skips recently freed inodes): deleting between runs slowed
    every later run whichever tool ran. A rename frees nothing. The output set aside is then
    written out and dropped from the page cache (:func:`forget`).
    """
    global _set_aside
    if folder.exists():
        _set_aside += 1
        aside = folder.with_name(f"{folder.name}.old{_set_aside}")
        folder.rename(aside)
        forget(aside)
    folder.mkdir(parents=True)


def forget(folder: Path) -> None:
    """Flush every dirty page, then drop ``folder``'s files from the page cache (outside the timing).

    Without it each round's output (141 MB for the realistic patient) stays cached and the next
    round's files go into memory the VM has never touched: its first touch cost ~0.5 s of
    system time per 141 MB (``perf``: half the samples in ``copy_folio_from_iter_atomic``), for
    whichever tool wrote, and rounds doubled in time once the recycled memory ran out. A server
    that has been up for a while writes into recycled pages; so does every round now. The flush
    also keeps the kernel's background writeback of earlier rounds out of the timed ones.
    """
    os.sync()
    for p in folder.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def run(cmd: list[str], what: str) -> Timed:
    t = timed(cmd, env=peers.peer_env())
    if t.returncode != 0:
        sys.exit(f"{what} failed ({t.returncode}): {t.stdout.decode(errors='replace')[-800:]}")
    return t


def summed(parts: list[Timed]) -> Timed:
    """One round over several patients: times add up, peak memory is the largest."""
    return Timed(sum(p.seconds for p in parts), max(p.peak_rss_mb for p in parts), 0, b"")


def storescu_argv(port: int, aet: str, files: list[Path]) -> list[str]:
    return [peers.find_binary("storescu"), "-aet", "STORESCU", "-aec", aet, "-nh", peers.HOST, str(port),
            *map(str, files)]


def our_store_argv(src: Path, port: int, aet: str, associations: int) -> list[str]:
    return [*dicomtools_cmd(), "store", "--path", str(src), "--hostName", peers.HOST, "--hostPort", str(port),
            "--calledAet", aet, "--callingAet", OURS_AET, "--showMessages", "false", "--noCache", "--includeAll",
            "--associations", str(associations)]


def report(what: str, theirs_label: str, ours_label: str, n: int, theirs: list[Timed], ours: list[Timed],
           target: float) -> float:
    ratio = median_ratio(theirs, ours)
    print(line(f"{what}: {theirs_label}", theirs, n, "inst"))
    print(line(f"{what}: {ours_label}", ours, n, "inst"))
    print(f"{what}: median ratio (dcmtk time / ours) {ratio:.2f}x (target >= {target})")
    return ratio


def bench_store(work: Path, files: list[Path], src: Path, rounds: int) -> float:
    n = len(files)
    scp = peers.StoreSCP.start(work / "scp-store", unique=False)
    theirs, ours = [], []
    try:
        for _ in range(rounds):
            fresh(scp.out_dir)
            theirs.append(run(storescu_argv(scp.port, scp.aet, files), "storescu"))
            if count_files(scp.out_dir) != n:
                sys.exit(f"storescu stored {count_files(scp.out_dir)} of {n}")
            fresh(scp.out_dir)
            ours.append(run(our_store_argv(src, scp.port, scp.aet, 1), "dicomtools store"))
            if count_files(scp.out_dir) != n:
                sys.exit(f"dicomtools store stored {count_files(scp.out_dir)} of {n}")
    finally:
        scp.stop()
    return report("store", "storescu -> storescp", "dicomtools store -> storescp", n, theirs, ours, 1.0)


def bench_store_orthanc(work: Path, files: list[Path], src: Path, rounds: int, associations: int) -> float:
    n = len(files)
    orthanc = peers.Orthanc.start(work / "orthanc-store")
    theirs, ours = [], []
    try:
        for _ in range(rounds):
            orthanc.clear()
            os.sync()  # earlier rounds' writeback stays out of the timed run (see forget)
            theirs.append(run(storescu_argv(orthanc.port, orthanc.aet, files), "storescu"))
            if orthanc.instance_count() != n:
                sys.exit(f"storescu stored {orthanc.instance_count()} of {n} into Orthanc")
            orthanc.clear()
            os.sync()
            ours.append(run(our_store_argv(src, orthanc.port, orthanc.aet, associations), "dicomtools store"))
            if orthanc.instance_count() != n:
                sys.exit(f"dicomtools store stored {orthanc.instance_count()} of {n} into Orthanc")
    finally:
        orthanc.stop()
    return report("orthanc", "storescu -> Orthanc", f"store --associations {associations} -> Orthanc",
                  n, theirs, ours, 1.5)


def bench_retrieve(work: Path, files: list[Path], patients: Counter[str], rounds: int) -> None:
    n = len(files)
    our_port = peers.free_port()
    dest = peers.StoreSCP.start(work / "scp-move", aet="MOVESCP", unique=False)
    orthanc = peers.Orthanc.start(work / "orthanc", modalities={
        "dicomtools": (OURS_AET, peers.HOST, our_port),
        "movescp": ("MOVESCP", peers.HOST, dest.port),
    })
    out, get_out = work / "retrieved", work / "getscu"
    runs: dict[str, list[Timed]] = {"movescu": [], "move": [], "getscu": [], "get": []}
    node = ["--hostName", peers.HOST, "--hostPort", str(orthanc.port), "--calledAet", orthanc.aet,
            "--callingAet", OURS_AET]
    try:
        r = peers.storescu(orthanc.port, orthanc.aet, files)
        if r.returncode != 0 or orthanc.instance_count() != n:
            sys.exit(f"loading Orthanc failed: {r.stderr.decode(errors='replace')[-300:]}")
        qr = ["-aec", orthanc.aet, "-P", "-k", "QueryRetrieveLevel=PATIENT"]
        movescu = [peers.find_binary("movescu"), "-aet", "MOVESCP", "-aem", "MOVESCP", *qr]
        getscu = [peers.find_binary("getscu"), "-aet", "GETSCU", *qr, "-od", str(get_out)]
        host = [peers.HOST, str(orthanc.port)]
        for _ in range(rounds):
            fresh(dest.out_dir)
            runs["movescu"].append(summed([run([*movescu, "-k", f"PatientID={pid}", *host], "movescu")
                                           for pid in patients]))
            fresh(out)
            runs["move"].append(summed([run([*dicomtools_cmd(), "retrieve", "--patientId", pid, "--path",
                                             str(out / pid), "--force", *node, "--scpPort", str(our_port)],
                                            "dicomtools retrieve") for pid in patients]))
            fresh(get_out)
            runs["getscu"].append(summed([run([*getscu, "-k", f"PatientID={pid}", *host], "getscu")
                                          for pid in patients]))
            fresh(out)
            runs["get"].append(summed([run([*dicomtools_cmd(), "retrieve", "--patientId", pid, "--path",
                                            str(out / pid), "--force", "--useGet", *node], "dicomtools retrieve")
                                       for pid in patients]))
            for label, folder in (("movescu", dest.out_dir), ("getscu", get_out), ("dicomtools --useGet", out)):
                if count_files(folder) != n:
                    sys.exit(f"{label} retrieved {count_files(folder)} of {n}")
    finally:
        orthanc.stop()
        dest.stop()
    report("move", "movescu + storescp", "dicomtools retrieve (C-MOVE)", n, runs["movescu"], runs["move"], 0.9)
    report("get", "getscu", "dicomtools retrieve --useGet", n, runs["getscu"], runs["get"], 0.9)


def patients_of(files: list[Path]) -> Counter[str]:
    from pydicom import dcmread

    seen: Counter[str] = Counter()
    for f in files:
        seen[str(dcmread(f, stop_before_pixels=True, specific_tags=["PatientID"]).PatientID)] += 1
    return seen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="small CT instances when no --dir [default: 2000]")
    ap.add_argument("--large", type=int, default=150,
                    help="512x512 CT instances added to the small ones when no --dir [default: 150]")
    ap.add_argument("--dir", default=None, help="send every file of this folder instead (all DICOM)")
    ap.add_argument("--only", choices=["store", "orthanc", "retrieve"], default=None)
    ap.add_argument("--associations", type=int, default=4, help="for the Orthanc store [default: 4]")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds [default: 5]")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dicomtools-bench-"))
    try:
        if args.dir:
            src = Path(args.dir)
            files = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            src = work / "src"
            files = write_ct_series(src / "small", args.count, patient_id="BENCH-001")
            if args.large:
                files += write_ct_series(src / "large", args.large, patient_id="BENCH-001", seed=1, rows=512)
        patients = patients_of(files)
        size = sum(f.stat().st_size for f in files)
        print(f"{len(files)} instances, {size / 1e6:.1f} MB, {len(patients)} patient(s), TCP_NODELAY=1 everywhere, "
              f"{args.rounds} interleaved rounds")
        if args.only in (None, "store"):
            bench_store(work, files, src, args.rounds)
        if args.only in (None, "orthanc"):
            bench_store_orthanc(work, files, src, args.rounds, args.associations)
        if args.only in (None, "retrieve"):
            bench_retrieve(work, files, patients, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
