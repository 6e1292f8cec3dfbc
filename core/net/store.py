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

from dicomtools.core.config import NodeConfig
from dicomtools.core.model import InstanceSummary
from dicomtools.core.net.assoc import NetError, tls_args
from dicomtools.core.net.files import (
    DEFLATED_LE,
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
from dicomtools.core.net.ul import ClientAssociation, PeerAborted, request_association
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter
from dicomtools.core.tree import PLAN_KINDS, Node, PatientTree

log = logging.getLogger(__name__)

MAX_CONTEXTS = 128
CRITICAL = frozenset({"plan", "dose"})


# ------------------------------------------------------------------ ordering


@dataclass
class StoreItem:
    inst: InstanceSummary
    category: str  # image, struct, plan, cbct, dose, rt-image, record, reg, other
    stage: int  # items of one stage may go in parallel; stages go in order
    transfer_syntax: str = ""

    @property
    def uid(self) -> str:
        return self.inst.sop_instance_uid

    @property
    def path(self) -> str:
        return self.inst.path

    @property
    def critical(self) -> bool:
        return self.category in CRITICAL


@dataclass
class StorePlan:
    items: list[StoreItem] = field(default_factory=list)
    skipped: list[tuple[InstanceSummary, str]] = field(default_factory=list)  # not sent, why
    warnings: list[str] = field(default_factory=list)


def _kids(node: Node, *kinds: str) -> list[Node]:
    return [c for c in node.children if c.kind in kinds]


def _series_of_structs(structs: Sequence[Node]) -> list[InstanceSummary]:
    return [i for s in structs for c in _kids(s, "Image", "CBCT") for i in c.instances]


def _sorted_plans(plans: list[Node]) -> list[Node]:
    """Referenced plans before the plans that reference them (verification -> treatment)."""
    uid_of = {id(p): (p.instances[0].sop_instance_uid if p.instances else "") for p in plans}
    by_uid = {uid_of[id(p)]: p for p in plans}
    out: list[Node] = []
    seen: set[int] = set()

    def visit(p: Node, depth: int = 0) -> None:
        if id(p) in seen or depth > 50:
            return
        seen.add(id(p))
        refs = p.instances[0].referenced_plans if p.instances else ()
        for ref in refs:
            other = by_uid.get(ref)
            if other is not None:
                visit(other, depth + 1)
        out.append(p)

    for p in plans:
        visit(p)
    return out


class _Orderer:
    def __init__(self, include_all: bool) -> None:
        self.include_all = include_all
        self.plan = StorePlan()
        self.stage = 0
        self.placed: set[str] = set()

    def add(self, category: str, instances: Sequence[InstanceSummary]) -> None:
        fresh = []
        for inst in instances:
            if inst.sop_instance_uid in self.placed:
                continue
            self.placed.add(inst.sop_instance_uid)
            if inst.truncated:
                self.plan.skipped.append((inst, "pixel data truncated (file cut short), not sent"))
                continue
            fresh.append(inst)
        if not fresh:
            return
        self.stage += 1
        self.plan.items.extend(StoreItem(i, category, self.stage, i.transfer_syntax_uid) for i in fresh)

    def hold(self, instances: Sequence[InstanceSummary], why: str) -> None:
        for inst in instances:
            if inst.sop_instance_uid not in self.placed:
                self.placed.add(inst.sop_instance_uid)
                self.plan.skipped.append((inst, why))

    def registrations(self, group: Node) -> None:
        for reg in _kids(group, "REG"):
            structs = _kids(reg, "RT-Struct")
            self.add("image", [i for c in _kids(reg, "Image", "CBCT") for i in c.instances])
            self.add("image", _series_of_structs(structs))
            self.add("struct", [i for s in structs for i in s.instances])
            if self.include_all:
                self.add("reg", reg.instances)

    def plan_node(self, plan: Node) -> None:
        structs = _kids(plan, "RT-Struct")
        self.add("image", _series_of_structs(structs))
        self.add("struct", [i for s in structs for i in s.instances])
        related = [c for c in plan.children if c.kind in PLAN_KINDS and c.fields.get("related")]
        self.add("plan", [i for r in related for i in r.instances])
        self.add("plan", plan.instances)
        self.add("cbct", [i for c in _kids(plan, "CBCT") for i in c.instances])
        self.add("dose", [i for c in _kids(plan, "RT-Dose") for i in c.instances])
        images = [i for n in plan.walk() if n.kind == "RT-Image" for i in n.instances]
        records = [i for n in plan.walk() if n.kind == "RT-Record" for i in n.instances]
        if self.include_all:
            self.add("rt-image", images)
            self.add("record", records)
        for group in _kids(plan, "Registrations"):
            self.registrations(group)

    def unconnected(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            if node.kind in ("Image", "CBCT"):
                self.add("image", node.instances)
            elif node.kind == "RT-Struct":
                self.add("image", _series_of_structs([node]))
                self.add("struct", node.instances)
        for node in nodes:
            if node.kind == "RT-Dose" and not self.include_all:
                why = node.note or "its plan is not in the set"
                self.hold(node.instances, f"dose not sent: {why}; ARIA refuses a dose without its plan "
                                          "(--include-all sends it anyway)")
            elif self.include_all:
                category = {"RT-Dose": "dose", "REG": "reg", "RT-Image": "rt-image",
                            "RT-Record": "record"}.get(node.kind, "other")
                self.add(category, [i for n in node.walk() for i in n.instances])

    def patient(self, tree: PatientTree) -> None:
        for plan in _sorted_plans(tree.plans):
            self.plan_node(plan)
        self.unconnected(tree.unconnected)
        rest = [i for i in tree.all_instances() if i.sop_instance_uid not in self.placed]
        if self.include_all:
            self.add("other", rest)
        else:
            self.hold(rest, "REG, RT image, record or other object: sent only with --include-all")


def order_for_store(forest: Sequence[PatientTree], include_all: bool = False) -> StorePlan:
    """Turn reference trees into the ordered, staged list of instances to send."""
    orderer = _Orderer(include_all)
    for tree in forest:
        orderer.patient(tree)
    for inst, why in orderer.plan.skipped:
        if why.startswith(("dose not sent", "pixel data")):
            orderer.plan.warnings.append(f"{inst.path}: {why}")
    return orderer.plan


# ------------------------------------------------------------------ status file


def read_status_file(path: str | Path | None) -> tuple[set[str], set[str]]:
    """(SOP Instance UIDs, paths) already stored; a torn last line is ignored."""
    uids: set[str] = set()
    paths: set[str] = set()
    if path is None:
        return uids, paths
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return uids, paths
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # written while the process died
        line = line.rstrip("\r\n")
        if not line or line.startswith("#"):
            continue
        if "\t" in line:
            uid, p = line.split("\t", 1)
            uids.add(uid)
            paths.add(p)
        else:
            paths.add(line)  # the seed tool's format: one stored file per line
    return uids, paths


class _StatusFile:
    def __init__(self, path: str | Path | None) -> None:
        self._fh = None
        self._lock = threading.Lock()
        if path is not None:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = p.exists() and p.stat().st_size > 0 and not p.read_bytes().endswith(b"\n")
            # An append-only log, flushed per line: rewriting it atomically for
            # every instance would be quadratic, and a torn last line is ignored.
            self._fh = open(p, "a", encoding="utf-8")  # noqa: SIM115
            if needs_newline:
                self._fh.write("\n")

    def add(self, uid: str, path: str) -> None:
        if self._fh is None:
            return
        with self._lock:
            self._fh.write(f"{uid}\t{path}\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


# ------------------------------------------------------------------ sending


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
        for fallback in (IMPLICIT_LE, EXPLICIT_LE):
            if fallback not in syntaxes:
                syntaxes.append(fallback)
                break
        ctx = [(cls, ts) for ts in syntaxes]
        if len(groups[-1]) + len(ctx) > MAX_CONTEXTS:
            groups.append([])
        groups[-1].extend(ctx)
    return [g for g in groups if g]


class _Sender:
    """One worker's associations (one per context group), opened on first use."""

    def __init__(self, node: NodeConfig, groups: list[list[tuple[str, str]]], use_tls: bool | None) -> None:
        self.node = node
        self.groups = groups
        self.group_of = {cls: gi for gi, g in enumerate(groups) for cls, _ in g}
        self.assocs: dict[int, ClientAssociation] = {}
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
            a = request_association(
                n.host, n.port, n.calling_ae, n.called_ae, self.groups[gi],
                connect_timeout=n.connect_timeout, acse_timeout=n.acse_timeout,
                dimse_timeout=n.dimse_timeout, tls=self.tls,
            )
            self.assocs[gi] = a
        return a

    def send(self, item: StoreItem, payload: bytes | memoryview, ts: str) -> tuple[int, str]:
        cls = item.inst.sop_class_uid
        a = self.assoc(cls)
        cx = a.context_for(cls, ts)
        if cx is None:
            fb_ts, cx = next(((t, c) for (k, t), c in a.accepted.items() if k == cls and t in UNCOMPRESSED), ("", None))
            if cx is None:
                return -1, f"the peer accepts no transfer syntax we offered for SOP class {cls}"
            payload = _reencode(item.path, ts, fb_ts)
        return a.c_store(cx, cls, item.uid, payload)

    def close(self) -> None:
        for a in self.assocs.values():
            a.release()
        self.assocs.clear()

    def abort(self) -> None:
        for a in self.assocs.values():
            a.abort()
        self.assocs.clear()


def _reencode(path: str, ts: str, target: str) -> bytes:
    """Decode and re-encode for a peer that refused the stored transfer syntax."""
    from pydicom import dcmread
    from pynetdicom.dsutils import encode

    ds = dcmread(path, force=True)
    if ts not in UNCOMPRESSED and ts != DEFLATED_LE:
        try:
            ds.decompress()
        except Exception as exc:  # noqa: BLE001 - codecs may be missing
            raise ValueError(f"peer refused the compressed transfer syntax and decompression failed: {exc}") from None
    data = encode(ds, target == IMPLICIT_LE, target != EXPLICIT_BE, False)
    if data is None:
        raise ValueError("cannot re-encode the data set")
    return data


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
        if category == SUCCESS:
            with self.lock:
                res.stored += 1
            self.status.add(item.uid, item.path)
        elif category == WARNING:
            with self.lock:
                res.warned += 1
            self.status.add(item.uid, item.path)
            self.rep.message(f"warning: {item.path}: {text}", "warning")
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
                self.handle(sender, item)

        threads = [threading.Thread(target=worker, args=(s,), daemon=True)
                   for s in self.senders[: min(len(self.senders), len(stage))]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

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
    finally:
        engine.join()
        status.close()
    result.cancelled = cancel.cancelled and not result.aborted
    result.elapsed = time.monotonic() - t0
    rep.finished(run.done, len(todo), result.summary())
    return result
