"""Batch retrieve: one single retrieve per patient of a list, each into its own folder.

Every patient goes through :func:`dicomtools.core.net.retrieve.retrieve`
(the same code as ``retrieve --patientId``) into a private work folder
under ``DIR/.dicomtools-batch/``; only a complete, successful retrieve is
renamed to ``DIR/<Patient ID made safe>/``. So a final folder is always a
whole patient, a rerun can skip it (its state file says which plans it
holds), and a failed or interrupted patient leaves nothing under a final
name. ``--anonymize`` numbers the new identities by list position, so a
rerun gives every patient the same number again.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from dicomtools.core.atomic import atomic_write_bytes
from dicomtools.core.config import NodeConfig
from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.retrieve import RetrieveOptions, retrieve, write_anonymization_map
from dicomtools.core.patientlist import PatientEntry
from dicomtools.core.progress import CancelToken, ProgressSink
from dicomtools.core.safename import numbered, safe_name

log = logging.getLogger(__name__)

BATCH_DIR = ".dicomtools-batch"
MAP_NAME = "anonymization_map.csv"


class Result(Enum):
    OK = "ok"
    SKIPPED = "skipped (complete)"
    FAILED = "failed"
    CANCELLED = "not done (interrupted)"


@dataclass
class BatchOptions:
    entries: Sequence[PatientEntry]
    out_dir: Path
    # per patient: patient_id, out_dir, plan_ids, new ID/name and anonymize are filled in
    template: RetrieveOptions
    new_id_base: str | None = None
    new_name_base: str | None = None
    parallel: int = 1
    force: bool = False


@dataclass
class PatientOutcome:
    index: int  # 1-based position in the list
    entry: PatientEntry
    folder: str  # name below out_dir
    new_id: str | None = None
    new_name: str | None = None
    result: Result = Result.CANCELLED
    instances: int = 0
    seconds: float = 0.0
    reason: str = ""
    plans: list[str] = field(default_factory=list)  # chosen plan labels
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    forest: list[Any] = field(default_factory=list)  # tree of what was saved (for --showTree)

    @property
    def plans_text(self) -> str:
        return ", ".join(self.entry.plan_ids) if self.entry.plan_ids else "all"


@dataclass
class BatchResult:
    outcomes: list[PatientOutcome]
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[PatientOutcome]:
        return [o for o in self.outcomes if o.result is Result.FAILED]

    @property
    def ok(self) -> bool:
        return all(o.result in (Result.OK, Result.SKIPPED) for o in self.outcomes)


def plan_outcomes(opts: BatchOptions) -> list[PatientOutcome]:
    """Folder and new identity of every entry, before anything runs (the TUI shows these)."""
    total = len(opts.entries)
    out = []
    for i, entry in enumerate(opts.entries, 1):
        new_id = numbered(opts.new_id_base, i, total, "-") if opts.new_id_base else None
        new_name = numbered(opts.new_name_base, i, total, "^") if opts.new_name_base else None
        out.append(PatientOutcome(i, entry, safe_name(new_id or entry.patient_id), new_id, new_name))
    return out


def _state(o: PatientOutcome, tpl: RetrieveOptions) -> dict[str, Any]:
    """What a complete folder was asked for; a rerun asking for something else does not skip it."""
    return {"patient_id": o.entry.patient_id, "plan_ids": list(o.entry.plan_ids),
            "new_patient_id": o.new_id, "new_patient_name": o.new_name,
            "only_approved": tpl.only_approved, "anonymized": tpl.anonymize is not None}


class _Batch:
    def __init__(self, node: NodeConfig, opts: BatchOptions, sink: ProgressSink | None,
                 cancel: CancelToken, on_done: Callable[[PatientOutcome], None] | None) -> None:
        self.node = node
        self.opts = opts
        self.sink = sink
        self.cancel = cancel
        self.on_done = on_done
        self.out = Path(opts.out_dir)
        self.meta = self.out / BATCH_DIR
        self.map_lock = threading.Lock()
        self.done_lock = threading.Lock()

    def state_path(self, o: PatientOutcome) -> Path:
        return self.meta / f"{o.folder}.json"

    def complete(self, o: PatientOutcome) -> str | None:
        """'' when done before with the same request; a reason when the folder is someone else's."""
        final = self.out / o.folder
        if not final.exists():
            return None
        try:
            state = json.loads(self.state_path(o).read_text("utf-8"))
        except (OSError, ValueError):
            return f"{final} exists and was not written by a batch retrieve (use --force to replace it)"
        want = _state(o, self.opts.template)
        if not isinstance(state, dict) or {k: state.get(k) for k in want} != want:
            return f"{final} holds an earlier retrieve of other plans or another identity (use --force to redo)"
        count = state.get("instances")
        o.instances = count if isinstance(count, int) else 0
        return ""

    def run_one(self, o: PatientOutcome) -> PatientOutcome:
        start = time.monotonic()
        try:
            self._run_one(o)
        except NetError as exc:
            o.result, o.reason = Result.FAILED, str(exc)
        except KeyboardInterrupt:
            self.cancel.cancel()
            if o.result is not Result.OK:
                o.result = Result.CANCELLED
        except Exception as exc:  # noqa: BLE001 - one patient's bug must not stop the others
            log.debug("batch patient %s", o.entry.patient_id, exc_info=True)
            o.result, o.reason = Result.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            o.seconds = time.monotonic() - start
            shutil.rmtree(self.meta / f"work-{o.folder}", ignore_errors=True)
        if self.on_done is not None:
            with self.done_lock:
                self.on_done(o)
        return o

    def _run_one(self, o: PatientOutcome) -> None:
        if self.cancel.cancelled:
            return
        if not self.opts.force:
            why = self.complete(o)
            if why == "":
                o.result = Result.SKIPPED
                return
            if why:
                o.result, o.reason = Result.FAILED, why
                return
        work = self.meta / f"work-{o.folder}"
        shutil.rmtree(work, ignore_errors=True)  # left by an earlier, interrupted run
        tpl = self.opts.template
        anonymize = None
        if tpl.anonymize is not None:
            # numbered per patient; without a base (the CLI and the TUI ask for both) the template's stays
            anonymize = tpl.anonymize.for_patient(o.new_id or tpl.anonymize.new_patient_id,
                                                  o.new_name or tpl.anonymize.new_patient_name)
        ropts = dataclasses.replace(
            tpl, patient_id=o.entry.patient_id, out_dir=work, plan_ids=list(o.entry.plan_ids),
            new_patient_id=None if anonymize else o.new_id, new_patient_name=None if anonymize else o.new_name,
            anonymize=anonymize)
        res = retrieve(self.node, ropts, sink=self.sink, cancel=self.cancel)
        o.plans, o.problems, o.notes = res.chosen_plans, res.problems, res.notes
        if res.cancelled:
            o.result = Result.CANCELLED
            return
        if not res.ok or not res.saved:
            o.result = Result.FAILED
            o.reason = res.problems[0] if res.problems else "nothing saved"
            return
        o.instances = len(res.saved)
        o.forest = res.forest
        self._publish(o, work)

    def _publish(self, o: PatientOutcome, work: Path) -> None:
        """Move a finished work folder to its final name.

        State and map rows first: a crash before the rename redoes the patient, never
        leaves a final folder without them.
        """
        rows = _map_rows(work / MAP_NAME)
        (work / MAP_NAME).unlink(missing_ok=True)
        for entry in os.scandir(work):  # our own leftovers (locks, temp folders)
            if entry.name.startswith(".") and entry.is_dir():
                shutil.rmtree(entry.path, ignore_errors=True)
            elif entry.name.startswith("."):
                os.unlink(entry.path)
        subdirs = [e for e in os.scandir(work) if e.is_dir()]
        files = [e for e in os.scandir(work) if not e.is_dir()]
        # the anonymizer writes <NEW ID>/<plan>/<kind>/...: its one top folder is the patient's
        source = Path(subdirs[0].path) if len(subdirs) == 1 and not files and self.opts.template.anonymize else work
        final = self.out / o.folder
        state = _state(o, self.opts.template) | {"instances": o.instances}
        atomic_write_bytes(self.state_path(o), json.dumps(state, indent=1).encode("utf-8"))
        if rows:  # before the rename: a complete folder always has its identity row
            with self.map_lock:
                write_anonymization_map(self.out, rows)
        old = None
        if final.exists():
            old = self.meta / f"old-{o.folder}"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
        os.rename(source, final)
        o.result = Result.OK  # at once: an interrupt from here on must not call it "not done"
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _map_rows(path: Path) -> list[tuple[str, str, str, str]]:
    """The identity rows one retrieve wrote (without its timestamp; the batch map adds one)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        return []
    return [(r[0], r[1], r[2], r[3]) for r in rows[1:] if len(r) >= 4]


def abort_stray_associations() -> int:
    """Abort pynetdicom associations nobody holds any more; return how many.

    Ctrl-C can land inside ``AE.associate()`` after its (non-daemon) DUL thread
    started but before the association was handed back: nothing would ever
    abort it and the interpreter would wait for that thread at exit (seen:
    1 in 3 interrupted batches hung until the peer's idle timeout).
    """
    from pynetdicom.dul import DULServiceProvider

    stray = [t for t in threading.enumerate() if isinstance(t, DULServiceProvider) and t.is_alive()]
    for t in stray:
        try:
            t.assoc.abort()
        except Exception:  # noqa: BLE001 - best effort while stopping
            t.kill_dul()
    return len(stray)


def run_batch(
    node: NodeConfig,
    opts: BatchOptions,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
    on_done: Callable[[PatientOutcome], None] | None = None,
) -> BatchResult:
    """Retrieve every entry; failures are recorded per patient, never raised.

    ``on_done`` is called (serialised) as each patient finishes, for progress
    lines. C-MOVE brings every patient to our one SCP port, so ``parallel``
    applies to C-GET only.
    """
    cancel = cancel or CancelToken()
    batch = _Batch(node, opts, sink, cancel, on_done)
    batch.meta.mkdir(parents=True, exist_ok=True)
    outcomes = plan_outcomes(opts)
    result = BatchResult(outcomes)
    workers = max(1, opts.parallel)
    if workers > 1 and opts.template.method == "move":
        result.notes.append(f"--parallel {workers} needs C-GET (C-MOVE sends every patient to our one SCP "
                            "port): one patient at a time; use --useGet to run them in parallel")
        workers = 1
    try:
        if workers == 1:
            for o in outcomes:
                batch.run_one(o)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dicomtools-batch") as pool:
                futures = [pool.submit(batch.run_one, o) for o in outcomes]
                try:
                    for f in futures:
                        f.result()
                except KeyboardInterrupt:
                    cancel.cancel()
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        if cancel.cancelled and abort_stray_associations():
            log.debug("aborted associations left behind by the interrupt")
    try:
        batch.meta.rmdir()  # only when empty: nothing was saved
    except OSError:
        pass
    return result


def summary_table(result: BatchResult) -> str:
    """Patient, plans, instances, seconds, result: one row per list entry."""
    head = ("patient", "plans", "instances", "seconds", "result")
    rows = []
    for o in result.outcomes:
        res = o.result.value if not o.reason else f"{o.result.value}: {o.reason}"
        who = o.entry.patient_id + (f" -> {o.new_id}" if o.new_id else "")
        rows.append((who, o.plans_text, str(o.instances), f"{o.seconds:.1f}", res))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = []
    for r in [head, *rows]:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3].rjust(widths[3]), r[4]]
        lines.append("  ".join(cells))
    return "\n".join(lines) + "\n"
