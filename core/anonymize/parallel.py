"""Anonymize on every core, with output byte-identical to a serial run with the same salt.

Worker processes (forked, as by the scanner's pool: :mod:`dicomtools.core.archive.pool`)
take contiguous batches of the run's files and the calling process works too.
What a file's bytes depend on besides the file itself:

- new UIDs and date shifts: keyed hashes of the salt, the same in every process;
- the patient's new ID/name: ``-2``, ``-3`` suffixes in order of first
  appearance. The first batch needs no plan (its order is the run's); the
  parent plans the rest from a look at each file's first bytes for its
  Patient ID while a worker anonymizes the first batch;
- retained AE titles of the file meta, cleaned of the identifiers (names,
  IDs, birth date) learned from every file up to this one.

Results are merged in path order, replaying what a serial run does: the
patients are assigned again from each file's journal, the identifiers
learned again, each cleaned AE title cleaned again. A file whose worker
guessed differently (a patient the header pass saw otherwise, a title that
an earlier file's name changes) is anonymized once more here, as the serial
run would: the guess costs time, never a byte. The saved UID map lists UIDs
in order of first use: the journals give each file's new ones, merged in order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

from dicomtools.core.anonymize.engine import Anonymizer
from dicomtools.core.anonymize.fileanon import FileWork, JournalUidMap, Outcome
from dicomtools.core.anonymize.naming import PathNames
from dicomtools.core.anonymize.needles import Identifiers
from dicomtools.core.anonymize.uidmap import PatientEntry, UidMap
from dicomtools.core.progress import CancelToken

if TYPE_CHECKING:  # imported when the pool starts
    from concurrent.futures import Future, ProcessPoolExecutor

log = logging.getLogger(__name__)

ENV = "DICOMTOOLS_ANONYMIZE_PARALLEL"
MIN_FILES = 64  # below this a fork, a header pass and the merge cost more than a second core gives
MAX_BATCH = 32  # the caller waits for the last worker batch: small batches keep that tail short
_WORK: FileWork | None = None  # the worker side, set before the pool forks (and used by the caller's batches)


def workers_available(force: bool = False) -> int:
    """Worker processes worth starting besides the caller: CPUs - 1 (``force``: at least one).

    0 when fork is not safe here: forkserver/spawn workers import pydicom anew
    (~0.3 s each), so only a single-threaded process (the CLI) gets workers.
    The environment variable ``DICOMTOOLS_ANONYMIZE_PARALLEL`` set to ``1``
    forces workers (as ``force``), ``0`` forbids them.
    """
    setting = os.environ.get(ENV, "").strip()
    if setting == "0":
        return 0
    force = force or setting == "1"
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    if not force and (cpus < 2 or _busy(cpus)):
        return 0
    import multiprocessing

    from dicomtools.core.archive.pool import start_method

    if start_method(multiprocessing.get_all_start_methods()) != "fork":
        return 0
    return max(1, cpus - 1)


_PATIENT_ID_TAG = b"\x10\x00\x20\x00"  # (0010,0020) little endian
_PATIENT_ID_TAG_BE = b"\x00\x10\x00\x20"
_HEAD = 16384


def patient_id_guess(path: str) -> str | None:
    """The Patient ID of a file, by a look at its first bytes (~4 us against ~28 us for the scanner's summary).

    Only a guess to plan with: a file it reads wrong (big endian, the tag
    inside a sequence, a non-ASCII ID) is anonymized again in order by the
    merge, so a wrong guess costs time, never a byte.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            head = os.read(fd, _HEAD)
        finally:
            os.close(fd)
    except OSError:
        return None
    order: Literal["little", "big"] = "little"
    at = head.find(_PATIENT_ID_TAG)
    if at < 0:
        order, at = "big", head.find(_PATIENT_ID_TAG_BE)
    if at < 0:  # a DICOM file without a Patient ID is the patient ""
        return "" if head[128:132] == b"DICM" else None
    if head[at + 4 : at + 6] == b"LO":  # explicit VR: 2-byte length
        length, start = int.from_bytes(head[at + 6 : at + 8], order), at + 8
    else:  # implicit VR: 4-byte length
        length, start = int.from_bytes(head[at + 4 : at + 8], order), at + 8
    if length > 512 or start + length > len(head):
        return None
    return head[start : start + length].decode("latin-1").strip("\0 ").strip()


def _busy(cpus: int) -> bool:
    """Whether the other cores are taken (load average of the last minute >= the CPUs).

    Workers on a machine that is already busy buy no time: they compete with
    the other work for the same cores and add their own cost (fork, pickling,
    the merge) to it; measured here, ~10% more CPU at idle, up to ~40% under load.
    """
    try:
        return os.getloadavg()[0] >= cpus
    except (AttributeError, OSError):  # no load average here: assume free cores
        return False


def preassign(paths: Sequence[str], uid_map: UidMap, given_id: str, given_name: str) -> dict[str, PatientEntry]:
    """The patients of the run in order of first appearance, guessed from the files' first bytes."""
    plan = UidMap(salt=uid_map.salt, patients=dict(uid_map.patients))
    for path in paths:
        pid = patient_id_guess(path)
        if pid is not None:
            plan.patient(pid, given_id, given_name)
    return plan.patients


def split(items: list[tuple[int, str]], workers: int) -> list[list[tuple[int, str]]]:
    """Contiguous batches; the first is big enough to keep a worker busy through the header pass
    (~4% of a file's anonymizing time per file), when the other batches are not planned yet."""
    size = max(4, min(MAX_BATCH, len(items) // ((workers + 1) * 8)))
    first = max(size, len(items) // 20)
    return [items[:first]] + [items[i : i + size] for i in range(first, len(items), size)]


def _batch(items: list[tuple[int, str]], patients: dict[str, PatientEntry] | None) -> list[Outcome]:
    """Anonymize a batch; ``patients``: the parent's assignment (None for the first batch, which needs none:
    the order the files are met in is the run's)."""
    pid = os.getpid()  # workers ignore Ctrl-C from their start (archive.pool): it is the parent's to handle
    assert _WORK is not None
    if patients is not None:
        _WORK.engine.uid_map.patients.update(patients)
    done = [_WORK.process(index, path) for index, path in items]
    for out in done:
        out.pid = pid
    return done


def _run_batches(
    batches: list[list[tuple[int, str]]],
    plan: Callable[[], dict[str, PatientEntry]],
    workers: int,
    take: Callable[[list[Outcome]], None],
    cancel: CancelToken | None,
) -> bool:
    """:func:`dicomtools.core.archive.pool.run_batches` with the patients planned while the first batch runs.

    Workers take batches from the front; the caller steals not-yet-started
    ones from the back; a pool that fails only slows the run. True when cancelled.
    """
    from dicomtools.core.archive.pool import make_pool, submit_first

    n = len(batches)
    futures: list[Future[list[Outcome]] | None] = [None] * n
    stolen: dict[int, list[Outcome]] = {}
    pool: ProcessPoolExecutor | None = None
    patients: dict[str, PatientEntry] | None = None
    try:
        try:
            pool = make_pool(workers, __name__)
            futures[0] = submit_first(pool, _batch, batches[0], None)
        except Exception as exc:
            log.warning("anonymizing in this process only: worker processes unavailable (%s)", exc)
        try:
            patients = plan()  # the header pass, while the first batch is anonymized
        except Exception as exc:  # only a guess: each process assigns in its own order, the merge corrects
            log.warning("could not plan the patients ahead (%s); the merge puts them in order", exc)
            patients = {}
        if pool is not None:
            for i in range(1, n):
                futures[i] = pool.submit(_batch, batches[i], patients)
        steal = n - 1
        for i in range(n):
            got: list[Outcome] | None = stolen.pop(i, None)
            while got is None:
                if cancel is not None and cancel.cancelled:
                    return True
                fut = futures[i]
                if fut is None:
                    got = _batch(batches[i], patients if i else None)
                elif fut.done() or steal <= i:
                    try:
                        got = fut.result()
                    except Exception as exc:  # a dead worker must not lose the batch
                        log.warning("worker process failed (%s); anonymizing its batch here", exc)
                        got = _batch(batches[i], patients if i else None)
                else:  # the next result is not ready: anonymize a batch from the back here
                    victim = futures[steal]
                    if victim is not None and victim.cancel():
                        futures[steal] = None
                        stolen[steal] = _batch(batches[steal], patients)
                    steal -= 1
            take(got)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return False


def settle(
    out: Outcome,
    uid_map: UidMap,
    names: PathNames,
    given: tuple[str, str],
    redo: FileWork,
    identifiers: Identifiers | None,
) -> Outcome:
    """Replay one worker outcome into the run's state (in path order); anonymize it again if it differs."""
    again = False
    journal = out.journal
    if journal is not None:
        for old, new in journal.uids:
            uid_map.uids.setdefault(old, new)
        for pid, days in journal.date_shifts:
            uid_map.date_shifts.setdefault(pid, days)
        for pid, new_id, new_name in journal.patients:
            entry = uid_map.patient(pid, *given)
            again = again or (entry.new_id, entry.new_name) != (new_id, new_name)
    if not again and out.found is not None:
        names.add(out.found, out.new_id, out.new_name)
        again = any(names.rewrite(title, None) != cleaned for title, cleaned in out.ae_titles)
    if again:
        log.debug("%s: anonymized again in order (worker's patient or names differed)", out.path)
        out = redo.process(out.index, out.path)
    if identifiers is not None and out.identifiers is not None:
        identifiers.merge(out.identifiers)
    return out


def run_parallel(
    paths: Sequence[str],
    engine: Anonymizer,
    names: PathNames,
    staging: str,
    *,
    workers: int,
    keep_burned_in: bool,
    summarize: bool,
    identifiers: Identifiers | None,
    identifiers_ignore: set[str],
    take: Callable[[Outcome], None],
    cancel: CancelToken | None = None,
) -> bool:
    """Anonymize ``paths`` into ``staging``; ``take`` gets every settled outcome in path order.

    ``engine``/``names``/``identifiers`` are the run's own (serial) state, brought
    up to date as a serial run would. Returns True when cancelled.
    """
    global _WORK
    uid_map = engine.uid_map
    given = (engine.new_patient_id, engine.new_patient_name)
    _WORK = FileWork(
        Anonymizer(engine.compiled, JournalUidMap(uid_map), *given), PathNames(), staging,
        keep_burned_in=keep_burned_in, summarize=summarize,
        per_file_identifiers=identifiers_ignore if identifiers is not None else None,
    )
    # a file done again collects its identifiers as a worker did (per file), for the merge
    redo = FileWork(engine, names, staging, keep_burned_in=keep_burned_in, summarize=summarize,
                    per_file_identifiers=_WORK.per_file_identifiers)
    items = list(enumerate(paths))
    batches = split(items, workers)

    def settled(outcomes: list[Outcome]) -> None:
        for out in outcomes:
            take(settle(out, uid_map, names, given, redo, identifiers))

    try:
        return _run_batches(batches, lambda: preassign(paths, uid_map, *given), workers, settled, cancel)
    finally:
        _WORK = None
