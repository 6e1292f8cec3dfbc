"""Saving what was retrieved into the target folder; the temporary folder's lock and clean-up."""

from __future__ import annotations

import errno
import functools
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.archive.summarize import read_summary
from dicomtools.core.atomic import atomic_writer
from dicomtools.core.net.arrival import safe_uid_name
from dicomtools.core.net.retrieve_model import FILE_PREFIX, SaveAnonymized
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: stale temp folders are found by age only
    fcntl = None  # type: ignore[assignment]


@functools.lru_cache(maxsize=256)
def _prefix(modality: str) -> str:
    """The file name prefix of a modality (``RP``, ``CT``...): letters and digits only."""
    prefix = FILE_PREFIX.get(modality.upper(), modality.upper() or "OT")
    return "".join(c for c in prefix if c.isalnum()) or "OT"


def _target_name(inst: InstanceSummary) -> str:
    return f"{_prefix(inst.modality)}.{safe_uid_name(inst.sop_instance_uid)}"


def _save(selected: Sequence[InstanceSummary], out: Path, new_id: str | None, new_name: str | None,
          rep: Reporter, cancel: CancelToken) -> list[InstanceSummary]:
    """Move the selected instances into ``out`` (rewritten first when the patient is renamed).

    The summaries are this run's own (built from what arrived): they are updated in place
    to their saved path and identity, not copied (a copy of 40 fields cost ~6 us an instance).
    Paths are plain strings: ``Path`` joins cost as much as the rename itself on a fast disk.
    """
    saved: list[InstanceSummary] = []
    rep.started(len(selected), "saving")
    folder = os.fspath(out)
    rewrite = new_id is not None or new_name is not None
    for n, inst in enumerate(selected, 1):
        if cancel.cancelled:
            break
        name = _target_name(inst)
        target = os.path.join(folder, name)
        if rewrite:
            from pydicom import dcmread

            ds = dcmread(inst.path)
            if new_id is not None:
                ds.PatientID = new_id
            if new_name is not None:
                ds.PatientName = new_name
            # rewrite inside the temporary folder, then move: `out` never holds a partial file
            with atomic_writer(inst.path) as fh:
                ds.save_as(fh, enforce_file_format=True)
        os.replace(inst.path, target)  # same file system: the temp folder is inside `out`
        inst.path = target
        if new_id is not None:
            inst.patient_id = new_id
        if new_name is not None:
            inst.patient_name = new_name
        saved.append(inst)
        rep.advanced(n, len(selected), name)
    return saved


def _save_anonymized(selected: Sequence[InstanceSummary], out: Path, saver: SaveAnonymized,
                     sink: ProgressSink | None, cancel: CancelToken, problems: list[str]) -> list[InstanceSummary]:
    """Anonymize from the temporary folder into ``out`` (the anonymizer's tree layout).

    An instance the anonymizer could not copy is a problem (exit 1); the others are still saved.
    """
    written, not_copied = saver.save([i.path for i in selected], str(out), sink, cancel)
    by_path = {i.path: i for i in selected}  # the temporary path means nothing once it is gone
    for path, reason in not_copied:
        inst = by_path.get(path)
        what = f"{inst.modality} instance {inst.sop_instance_uid}" if inst is not None else path
        problems.append(f"not copied: {what}: {reason}")
    saved = [read_summary(dest) for dest in written]
    return [s for s in saved if isinstance(s, InstanceSummary)]


def write_anonymization_map(out: Path, rows: Iterable[tuple[str, str, str, str]]) -> Path:
    """Append (original ID, original name, new ID, new name, UTC time) rows; sensitive file."""
    import csv  # here, as datetime and io: only an anonymizing retrieve writes the map
    import datetime as _dt
    import io

    path = out / "anonymization_map.csv"
    old = path.read_bytes() if path.exists() else b""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if not old:
        w.writerow(["original_patient_id", "original_patient_name", "new_patient_id", "new_patient_name", "utc_time"])
    for row in rows:
        w.writerow([*row, stamp])
    with atomic_writer(path) as fh:
        fh.write(old + buf.getvalue().encode("utf-8"))
    return path



TEMP_PREFIX = ".dicomtools-retrieve-"
_LOCK_NAME = ".lock"
_UNLOCKED_GRACE = 600.0  # a temp folder without a lock file is stale after this many seconds


def make_temp_folder(out: Path) -> Path:
    """A new private folder ``.dicomtools-retrieve-<random>`` inside ``out``, as ``tempfile.mkdtemp``
    makes it (mode 0700, a name nobody else holds), without importing tempfile (~3 ms of start-up)."""
    for _ in range(100):
        path = os.path.join(out, TEMP_PREFIX + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return Path(path)
    raise FileExistsError(errno.EEXIST, "no free name for a temporary folder", str(out))


def remove_temp_folder(tmp: Path) -> None:
    """Remove our temporary folder and what it holds (received files, the lock), errors ignored.

    It is flat: a list and one unlink each; anything else (a folder inside) goes to ``shutil.rmtree``.
    """
    try:
        entries = list(os.scandir(tmp))
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                raise IsADirectoryError(entry.path)
            os.unlink(entry.path)
        os.rmdir(tmp)
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _lock_temp_folder(tmp: Path) -> BinaryIO | None:
    """Hold an exclusive lock inside our temp folder for the whole run.

    The kernel drops it when the process dies, even by ``kill -9``, so the
    next run can tell a stale folder from one a concurrent run is filling.
    """
    if fcntl is None:  # pragma: no cover - not POSIX
        return None
    fh = open(tmp / _LOCK_NAME, "wb")  # noqa: SIM115 - held until the run ends
    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fh


def remove_stale_temp_folders(out: Path) -> list[str]:
    """Remove temp folders of earlier runs that died (their lock is free); return their names."""
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(out) if e.name.startswith(TEMP_PREFIX) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    if entries:
        import shutil  # only when an earlier run left a folder (with bz2 and lzma, ~1.5 ms of start-up)
    for entry in entries:
        lock_path = os.path.join(entry.path, _LOCK_NAME)
        try:
            if fcntl is not None and os.path.exists(lock_path):
                with open(lock_path, "rb") as fh:
                    try:
                        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # a running retrieve owns it
                    shutil.rmtree(entry.path, ignore_errors=True)
            elif time.time() - entry.stat(follow_symlinks=False).st_mtime > _UNLOCKED_GRACE:
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                continue
        except OSError as exc:
            log.info("cannot remove stale %s: %s", entry.path, exc)
            continue
        removed.append(entry.name)
    return removed


