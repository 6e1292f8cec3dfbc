"""``store``: send a folder to a node in the order ARIA accepts, resumable, machine-mapped.

Order per patient and plan: the structure set's image series, the structure
set, referenced plans, the plan, its CBCT series, its doses (with
``include_all`` also its RT images and records), then registered series and
their structure sets (and the REG itself with ``include_all``); after all
plans the unconnected series and structure sets. A plan or dose the peer
refuses stops that patient (its dependants would be refused too).

Each item is sent as the encoded bytes of its file (no decode, no
re-encode) over :mod:`ul`; only plans whose machine names change are
re-encoded, in memory. Confirmed instances are appended to the status file
and flushed one by one, so a rerun with the same file continues where the
last one stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.config import NodeConfig
from dicomtools.core.errors import DicomToolsError
from dicomtools.core.net.assoc import NetError, tls_args
from dicomtools.core.net.files import (
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    UNCOMPRESSED,
    split_meta,
)
from dicomtools.core.net.machines import (
    MachineProblem,
    mapped_dataset_bytes,
    needs_rewrite,
    plan_problems,
)
from dicomtools.core.net.status import FAILURE, SUCCESS, WARNING, describe_status, status_category
from dicomtools.core.net.store_order import (  # noqa: F401 - re-exported
    CRITICAL,
    StoreItem,
    StorePlan,
    order_for_store,
)
from dicomtools.core.net.store_status import (  # noqa: F401 - re-exported
    StatusFileError,
    _StatusFile,
    read_status_file,
)
from dicomtools.core.net.transcode import even_deflated, fallback_for, reencode
from dicomtools.core.net.ul import ClientAssociation, PeerAborted, request_association
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128


@dataclass
class Failure:
    path: str
    uid: str
    text: str
    status: int | None = None


@dataclass
class StoreResult:
    total: int = 0  # instances in the ordered list
    stored: int = 0
    warned: int = 0
    already: int = 0  # in the status file from an earlier run
    not_sent: int = 0  # held back: patient stopped, cancelled, connection lost
    failed: list[Failure] = field(default_factory=list)
    stopped_patients: dict[str, str] = field(default_factory=dict)
    problems: list[MachineProblem] = field(default_factory=list)
    skipped: list[tuple[InstanceSummary, str]] = field(default_factory=list)
    cancelled: bool = False
    aborted: str = ""
    status_file_failed: bool = False  # the status file could not be written (full disk)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.failed or self.stopped_patients or self.problems or self.cancelled
                    or self.aborted or self.not_sent)

    def summary(self) -> str:
        parts = [f"{self.stored} stored", f"{self.already} skipped (already stored)",
                 f"{self.warned} warned", f"{len(self.failed)} failed"]
        if self.not_sent:
            parts.append(f"{self.not_sent} not sent")
        held = len(self.skipped)
        if held:
            parts.append(f"{held} left out")
        rate = (self.stored + self.warned) / self.elapsed if self.elapsed > 0 else 0.0
        return ", ".join(parts) + f" in {self.elapsed:.1f} s ({rate:.0f}/s)"


def _sniff_transfer_syntax(path: str) -> str:
    """Transfer syntax of a file without File Meta (old exports): as pydicom guesses it."""
    from pydicom import dcmread

    ds = dcmread(path, force=True, stop_before_pixels=True)
    implicit, little = ds.original_encoding
    if implicit is None or implicit:
        return IMPLICIT_LE
    return EXPLICIT_LE if little else EXPLICIT_BE


def _contexts(items: Sequence[StoreItem]) -> list[list[tuple[str, str]]]:
    """One context per (SOP class, transfer syntax) present plus an Implicit VR fallback
    per class; split into groups of at most 128, all contexts of a class in one group."""
    per_class: dict[str, list[str]] = {}
    for it in items:
        lst = per_class.setdefault(it.inst.sop_class_uid, [])
        if it.transfer_syntax not in lst:
            lst.append(it.transfer_syntax)
    groups: list[list[tuple[str, str]]] = [[]]
    for cls in sorted(per_class):
        syntaxes = list(per_class[cls])
        if not any(ts in UNCOMPRESSED for ts in syntaxes):
            syntaxes += [EXPLICIT_LE, IMPLICIT_LE]  # to re-encode into when the node refuses the stored one
        elif IMPLICIT_LE not in syntaxes:
            syntaxes.append(IMPLICIT_LE)
        ctx = [(cls, ts) for ts in syntaxes]
        if len(groups[-1]) + len(ctx) > MAX_CONTEXTS:
            groups.append([])
        groups[-1].extend(ctx)
    return [g for g in groups if g]


class AssociationUnavailable(NetError):
    """Our association request was not answered or refused (no data was in flight)."""


class _Retired(DicomToolsError):
    """A parallel sender whose association the node would not take: its item goes back."""


class _Sender:
    """One worker's associations (one per context group), opened on first use."""

    def __init__(self, node: NodeConfig, groups: list[list[tuple[str, str]]], use_tls: bool | None) -> None:
        self.node = node
        self.groups = groups
        self.group_of = {cls: gi for gi, g in enumerate(groups) for cls, _ in g}
        self.assocs: dict[int, ClientAssociation] = {}
        self.note = ""  # a warning about the last instance sent (decompressed lossy image)
        tls_node = node
        if use_tls is not None and use_tls != node.tls.enabled:
            import copy

            tls_node = copy.deepcopy(node)
            tls_node.tls.enabled = use_tls
        self.tls = tls_args(tls_node)

    def assoc(self, cls: str) -> ClientAssociation:
        gi = self.group_of[cls]
        a = self.assocs.get(gi)
        if a is None:
            # One association at a time: many SCPs (dcmtk storescp without --fork)
            # serve one association after the other, so a second one would wait.
            self.close()
            n = self.node
            try:
                a = request_association(
                    n.host, n.port, n.calling_ae, n.called_ae, self.groups[gi],
                    connect_timeout=n.connect_timeout, acse_timeout=n.acse_timeout,
                    dimse_timeout=n.dimse_timeout, tls=self.tls, max_pdu=n.max_pdu,
                )
            except NetError as exc:
                raise AssociationUnavailable(str(exc)) from None
            self.assocs[gi] = a
        return a

    def send(self, item: StoreItem, payload: bytes | memoryview, ts: str) -> tuple[int, str]:
        cls = item.inst.sop_class_uid
        a = self.assoc(cls)
        cx = a.context_for(cls, ts)
        self.note = ""
        if cx is None:
            fb_ts = fallback_for([t for (k, t) in a.accepted if k == cls])
            cx = a.context_for(cls, fb_ts) if fb_ts else None
            if cx is None:
                return -1, f"the peer accepts no transfer syntax we offered for SOP class {cls}"
            payload, self.note = reencode(item.path, ts, fb_ts)
            ts = fb_ts
        return a.c_store(cx, cls, item.uid, even_deflated(payload, ts))

    def close(self) -> None:
        for a in self.assocs.values():
            a.release()
        self.assocs.clear()

    def abort(self) -> None:
        for a in self.assocs.values():
            a.abort()
        self.assocs.clear()


def _payload(item: StoreItem, mapping: Mapping[str, str], defaults: Mapping[str, str]) -> tuple[bytes | memoryview, str]:
    if item.category == "plan" and needs_rewrite(item.inst, mapping, defaults):
        data, ts, _ = mapped_dataset_bytes(item.path, mapping, defaults)
        return data, ts
    with open(item.path, "rb") as fh:
        raw = fh.read()
    meta = split_meta(raw)
    if meta is None:
        return raw, item.transfer_syntax or IMPLICIT_LE
    if meta.offset >= len(raw):
        raise ValueError("no data set after the file meta (file cut short)")
    return memoryview(raw)[meta.offset :], meta.transfer_syntax_uid or item.transfer_syntax


class _Run:
    def __init__(self, node: NodeConfig, items: list[StoreItem], result: StoreResult, status: _StatusFile,
                 associations: int, mapping: Mapping[str, str], defaults: Mapping[str, str],
                 use_tls: bool | None, rep: Reporter, cancel: CancelToken) -> None:
        self.node = node
        self.items = items
        self.result = result
        self.status = status
        self.mapping = mapping
        self.defaults = defaults
        self.rep = rep
        self.cancel = cancel
        self.lock = threading.Lock()
        self.done = 0
        groups = _contexts(items)
        self.senders = [_Sender(node, groups, use_tls) for _ in range(max(1, associations))]
        self.retired: list[_Sender] = []

    def _count(self, text: str, nbytes: int = 0) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        self.rep.advanced(done, len(self.items), text, nbytes=nbytes)

    def handle(self, sender: _Sender, item: StoreItem) -> None:
        res = self.result
        pid = item.inst.patient_id
        if self.cancel.cancelled or res.aborted or pid in res.stopped_patients:
            with self.lock:
                res.not_sent += 1
            self._count("")
            return
        name = Path(item.path).name
        try:
            payload, ts = _payload(item, self.mapping, self.defaults)
            status, comment = sender.send(item, payload, ts)
            if sender.note:
                self.rep.message(f"warning: {item.path}: {sender.note}", "warning")
        except AssociationUnavailable as exc:
            if any(s.assocs for s in self.senders if s is not sender and s not in self.retired):
                raise _Retired(str(exc)) from None  # another one got through: the node takes fewer
            with self.lock:
                if not res.aborted:
                    res.aborted = str(exc)
                res.not_sent += 1
            self.cancel.cancel()
            self._count("")
            return
        except NetError as exc:
            with self.lock:
                if not res.aborted:
                    res.aborted = f"{exc} (sending {name})" if isinstance(exc, PeerAborted) else str(exc)
                res.not_sent += 1
            self.cancel.cancel()
            self._count("")
            return
        except (OSError, ValueError) as exc:
            status, comment = -1, str(getattr(exc, "strerror", None) or exc)
        category = status_category(status) if status >= 0 else FAILURE
        text = describe_status(status) if status >= 0 else comment
        if comment and status >= 0:
            text += f" ({comment})"
        if category in (SUCCESS, WARNING):
            with self.lock:
                if category == SUCCESS:
                    res.stored += 1
                else:
                    res.warned += 1
            if category == WARNING:
                self.rep.message(f"warning: {item.path}: {text}", "warning")
            try:
                self.status.add(item.uid, item.path)
            except StatusFileError as exc:  # full disk: stop; what is confirmed so far is in the file
                with self.lock:
                    res.aborted = res.aborted or str(exc)
                    res.status_file_failed = True
                self.cancel.cancel()
        else:
            with self.lock:
                res.failed.append(Failure(item.path, item.uid, text, status if status >= 0 else None))
                if item.critical and pid not in res.stopped_patients:
                    res.stopped_patients[pid] = f"{item.category} {item.path} refused: {text}"
            self.rep.message(f"failed: {item.path}: {text}", "error")
            if item.critical:
                self.rep.message(f"patient {pid or '<no id>'}: {item.category} refused, "
                                 "the rest of this patient is not sent", "error")
        self._count(name, nbytes=len(payload) if category != FAILURE else 0)

    def run_stage(self, stage: list[StoreItem]) -> None:
        group_of = self.senders[0].group_of
        stage.sort(key=lambda it: group_of.get(it.inst.sop_class_uid, 0))  # order within a stage is free
        if len(self.senders) == 1 or len(stage) == 1:
            for item in stage:
                self.handle(self.senders[0], item)
            return
        queue = deque(stage)

        def worker(sender: _Sender) -> None:
            while True:
                with self.lock:
                    if not queue:
                        return
                    item = queue.popleft()
                try:
                    self.handle(sender, item)
                except _Retired as exc:
                    with self.lock:
                        queue.appendleft(item)
                        self.retired.append(sender)
                    log.info("parallel association refused: %s", exc)
                    return

        threads = [threading.Thread(target=worker, args=(s,), daemon=True)
                   for s in self.senders[: min(len(self.senders), len(stage))]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.retired:
            live = [s for s in self.senders if s not in self.retired]
            self.rep.message(f"note: {self.node.called_ae} took only {len(live)} association(s) at a time; "
                             f"continuing with {len(live)} instead of {len(self.senders)}", "warning")
            self.senders = live
            self.retired = []
            while queue:  # what the retired senders gave back
                self.handle(self.senders[0], queue.popleft())

    def abort_all(self) -> None:
        """From another thread: close every socket so a blocked send or read returns now."""
        for s in self.senders:
            for a in list(s.assocs.values()):
                a.abort()

    def run(self) -> None:
        stage: list[StoreItem] = []
        try:
            for item in self.items:
                if stage and item.stage != stage[0].stage:
                    self.run_stage(stage)
                    stage = []
                stage.append(item)
            if stage:
                self.run_stage(stage)
        finally:
            for s in self.senders:
                if self.result.aborted:
                    s.abort()
                else:
                    s.close()


def store(
    node: NodeConfig,
    plan: StorePlan,
    *,
    status_file: str | Path | None = None,
    associations: int = 1,
    mapping: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    known_machines: Collection[str] | None = None,
    use_tls: bool | None = None,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> StoreResult:
    """Send ``plan.items`` in order; never raises for peer trouble, see the result.

    Nothing is sent when a plan to send has a machine problem. Items in the
    status file are skipped. ``KeyboardInterrupt`` in the calling thread
    cancels after the instances in flight, like ``cancel``.
    """
    t0 = time.monotonic()
    mapping = dict(mapping or {})
    defaults = dict(defaults or {})
    known = known_machines if known_machines is not None else node.machines
    cancel = cancel or CancelToken()
    rep = Reporter("store", sink)
    result = StoreResult(total=len(plan.items), skipped=list(plan.skipped))
    done_uids, done_paths = read_status_file(status_file)
    todo = [it for it in plan.items if it.uid not in done_uids and it.path not in done_paths]
    result.already = len(plan.items) - len(todo)
    for it in todo:
        if it.category == "plan":
            result.problems.extend(plan_problems(it.inst, mapping, defaults, known))
    if result.problems:
        result.elapsed = time.monotonic() - t0
        return result
    for it in todo:
        if not it.transfer_syntax:
            try:
                it.transfer_syntax = _sniff_transfer_syntax(it.path)
            except Exception:  # noqa: BLE001 - reported when sending
                it.transfer_syntax = IMPLICIT_LE
    rep.started(len(todo), f"{node.called_ae}@{node.host}:{node.port}")
    if not todo:
        rep.finished(0, 0, "nothing to send")
        result.elapsed = time.monotonic() - t0
        return result
    status = _StatusFile(status_file)
    run = _Run(node, todo, result, status, associations, mapping, defaults, use_tls, rep, cancel)
    engine = threading.Thread(target=run.run, name="dicomtools-store", daemon=True)
    engine.start()
    try:
        while engine.is_alive():
            try:
                engine.join(0.2)
            except KeyboardInterrupt:
                cancel.cancel()
                rep.message("interrupted: stopping after the instances in flight", "warning")
                engine.join(0.4)
                if engine.is_alive():  # a node that does not answer: cut the associations
                    run.abort_all()
    finally:
        engine.join()
        status.close()
    result.cancelled = cancel.cancelled and not result.aborted
    result.elapsed = time.monotonic() - t0
    rep.finished(run.done, len(todo), result.summary())
    return result
