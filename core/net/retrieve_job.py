"""One retrieve run: query, start our SCP, fetch (whole patient or selective), check the counts."""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicomtools.core.archive.model import InstanceSummary, UnreadableFile
from dicomtools.core.archive.summarize import read_summary, summary_from_head
from dicomtools.core.config import NodeConfig
from dicomtools.core.net.arrival import plausible_uid, safe_uid_name
from dicomtools.core.net.assoc import TRANSIENT_RETRIES, NetError, scp_tls_context, tls_args
from dicomtools.core.net.files import IMPLICIT_LE
from dicomtools.core.net.find import (
    InstanceInfo,
    PatientQuery,
    SeriesInfo,
    find_instances,
    query_patient,
    sop_classes_in_study,
)
from dicomtools.core.net.retrieve_fetch import (
    _Fetcher,
    _ident,
)
from dicomtools.core.net.retrieve_get import (
    GET_STORAGE_CLASSES,
    GET_TRANSFER_SYNTAXES,
    MAX_CONTEXTS,
    GetPlan,
    GetWriter,
    class_name,
    get_contexts,
    plan_get,
)
from dicomtools.core.net.retrieve_model import (
    FIND_CONTEXTS,
    GET_MODELS,
    RT_OBJECT_MODALITIES,
    FetchOutcome,
    RetrieveOptions,
    RetrieveResult,
)
from dicomtools.core.net.retrieve_select import select
from dicomtools.core.net.status import WARNING, describe_status, status_category
from dicomtools.core.net.ul import ClientAssociation, TransientReject, request_association
from dicomtools.core.net.ul_find import LeanFind, find_contexts
from dicomtools.core.progress import CancelToken, Reporter
from dicomtools.core.tree import build_forest, is_image

if TYPE_CHECKING:
    from dicomtools.core.net.storescp import StorageSCP

log = logging.getLogger(__name__)


class _Job:
    def __init__(self, node: NodeConfig, opts: RetrieveOptions, tmp: Path, rep: Reporter, cancel: CancelToken) -> None:
        self.node = node
        self.opts = opts
        self.tmp = tmp
        self.rep = rep
        self.cancel = cancel
        self.result = RetrieveResult(opts.patient_id)
        self.summaries: dict[str, InstanceSummary] = {}
        self.unreadable: dict[str, str] = {}
        self.rejected: dict[str, str] = {}  # received files never saved: path -> why
        self.lock = threading.Lock()
        self.fetched_series: set[str] = set()
        self._assoc: LeanFind | None = None
        self.fetcher: _Fetcher | None = None
        self.getter: GetWriter | None = None
        tls_node = node
        if opts.use_tls is not None and opts.use_tls != node.tls.enabled:
            tls_node = copy.deepcopy(node)
            tls_node.tls.enabled = opts.use_tls
        self.tls = tls_args(tls_node)
        self.scp_tls = scp_tls_context(tls_node)

    def summarize(self, path: str) -> InstanceSummary | None:
        return self._keep(path, read_summary(path))

    def summarize_head(self, path: str, head: bytes, size: int, mtime_ns: int) -> bool:
        """An arrival's summary from the bytes just written; False when they fall short (read_new reads
        the file then, unless the writer offers all it held)."""
        s = summary_from_head(path, head, size, mtime_ns)
        if s is not None:
            self._keep(path, s)
        return s is not None

    def _keep(self, path: str, s: InstanceSummary | UnreadableFile) -> InstanceSummary | None:
        with self.lock:
            if isinstance(s, UnreadableFile):
                self.unreadable[path] = s.reason
                return None
            why = _uid_problem(s, path)
            if why:
                self.rejected[path] = why
                return None
            self.summaries[path] = s
            return s

    def read_new(self) -> list[InstanceSummary]:
        """Summaries of received files not read yet (the SCP reads most as they arrive)."""
        new = []
        for entry in os.scandir(self.tmp):
            if entry.name.startswith(".") or entry.path in self.summaries or entry.path in self.unreadable \
                    or entry.path in self.rejected:
                continue
            s = self.summarize(entry.path)
            if s is not None:
                new.append(s)
        return new

    def check(self, out: FetchOutcome) -> None:
        r = self.result
        r.fetches.append(out)
        reported = out.completed + out.warning
        arrivals = out.received + out.duplicates
        twice = f" ({out.duplicates} sent twice)" if out.duplicates else ""
        failed = f"; {out.failed} sub-operations failed ({describe_status(out.status)})" if out.failed else ""
        if out.expected is not None and out.received < out.expected:
            # the real count of what is missing (distinct instances: one sent twice hides none)
            r.problems.append(f"{out.what}: C-FIND listed {out.expected} instances, {out.received} arrived{twice} "
                              f"({out.expected - out.received} missing{failed})")
        elif out.failed:
            r.problems.append(f"{out.what}: {out.failed} sub-operations failed ({describe_status(out.status)})")
        if arrivals < reported:
            r.problems.append(f"{out.what}: the node reported {reported} sent, {arrivals} arrived")
        elif out.duplicates and not (out.expected is not None and out.received < out.expected):
            r.notes.append(f"{out.what}: {out.duplicates} instances arrived twice (kept once)")
        announced = max(reported, out.expected) if out.expected is not None else reported
        if out.received > announced:
            # more than C-FIND listed and the node reported: someone else called our SCP as the node
            r.problems.append(f"{out.what}: {out.received} instances arrived, the node reported {reported}"
                              + (f" and C-FIND listed {out.expected}" if out.expected is not None else "")
                              + " (another sender using the node's AE title?)")
        elif out.received > reported:
            r.notes.append(f"{out.what}: {out.received} instances arrived, the node reported {reported}")
        if status_category(out.status) == WARNING and not out.failed:
            r.notes.append(f"{out.what}: {describe_status(out.status)}")

    def series_fetch(self, f: _Fetcher, s: SeriesInfo) -> None:
        if s.series_uid in self.fetched_series or self.cancel.cancelled:
            return
        self.fetched_series.add(s.series_uid)
        what = f"series {s.modality or '?'} {s.series_uid}"
        self.rep.message(f"retrieving {what} ({s.count if s.count is not None else '?'} instances)")
        self.check(f.fetch(_ident(f.model, "SERIES", self.opts.patient_id, s.study_uid, s.series_uid),
                           what, s.count))

    def whole_patient(self, f: _Fetcher, q: PatientQuery) -> None:
        for st in q.studies:
            if self.cancel.cancelled:
                return
            counts = [s.count for s in st.series]
            expected = sum(c for c in counts if c is not None) if counts and None not in counts else None
            what = f"study {st.study_uid}"
            self.rep.message(f"retrieving {what} ({expected if expected is not None else '?'} instances)")
            self.check(f.fetch(_ident(f.model, "STUDY", self.opts.patient_id, st.study_uid), what, expected))

    def selective(self, f: _Fetcher, q: PatientQuery) -> None:
        opts = self.opts
        series = q.series
        for s in series:
            if s.modality == "RTPLAN":
                self.series_fetch(f, s)
        self.read_new()
        forest = build_forest(self.summaries.values(), opts.default_machines)
        _, chosen, _ = select(forest, opts.plan_ids, opts.only_approved)
        if not chosen:
            return  # select() on the final tree reports what is missing
        for s in series:
            if s.modality in RT_OBJECT_MODALITIES:
                self.series_fetch(f, s)
        self.read_new()
        images = [s for s in series if s.modality not in RT_OBJECT_MODALITIES + ("RTPLAN",)]
        by_uid = {s.series_uid: s for s in images}
        wanted, _, _ = select(build_forest(self.summaries.values(), opts.default_machines),
                              opts.plan_ids, opts.only_approved)
        named: set[str] = set()
        for inst in wanted:
            named.update(inst.referenced_series)
            named.update(inst.reg_referenced_series)
        for uid in sorted(named & set(by_uid)):
            self.series_fetch(f, by_uid[uid])
        # the rest: one sample each, decided by the tree
        sampled: set[str] = set()
        for s in images:
            if s.series_uid in self.fetched_series or self.cancel.cancelled:
                continue
            try:
                members = find_instances(self.find_assoc(), q.model, opts.patient_id, s.study_uid, s.series_uid)
            except NetError as exc:
                log.info("image-level C-FIND failed (%s); fetching the whole series", exc)
                members = []
            if not members:
                self.series_fetch(f, s)
                continue
            what = f"sample of series {s.modality} {s.series_uid}"
            self.check(f.fetch(_ident(f.model, "IMAGE", opts.patient_id, s.study_uid, s.series_uid,
                                      members[0].sop_instance_uid), what, 1))
            sampled.add(s.series_uid)
        self.read_new()
        wanted, _, _ = select(build_forest(self.summaries.values(), opts.default_machines),
                              opts.plan_ids, opts.only_approved)
        need = {i.series_instance_uid for i in wanted if is_image(i)}
        for uid in sorted(need & sampled):
            self.series_fetch(f, by_uid[uid])

    # -- C-FIND and C-GET over the lean UL (opened when needed; C-GET one per class group)
    def find_assoc(self) -> LeanFind:
        if self._assoc is None or not self._assoc.is_established:
            if self.fetcher is not None:
                self.fetcher.close_get()  # a node taking one association at a time answers the C-FIND
            self._assoc = LeanFind(self._lean(find_contexts(FIND_CONTEXTS)), self.node.dimse_timeout)
        return self._assoc

    def get_assoc(self, group: int, plan: GetPlan) -> ClientAssociation:
        if self._assoc is not None:  # a node taking one association at a time: free it for the C-GET
            self._assoc.release()
            self._assoc = None
        contexts = [(str(GET_MODELS["P"]), IMPLICIT_LE), (str(GET_MODELS["S"]), IMPLICIT_LE),
                    *get_contexts(plan.groups[group], plan.syntaxes)]
        return self._lean(contexts, plan.groups[group])

    def _lean(self, contexts: list[tuple[str, str]], scp_roles: list[str] | None = None) -> ClientAssociation:
        n = self.node
        for attempt in range(TRANSIENT_RETRIES + 1):
            try:
                return request_association(
                    n.host, n.port, n.calling_ae, n.called_ae, contexts,
                    connect_timeout=n.connect_timeout, acse_timeout=n.acse_timeout,
                    dimse_timeout=n.dimse_timeout, tls=self.tls, max_pdu=n.max_pdu, scp_roles=scp_roles or ())
            except TransientReject:
                if attempt == TRANSIENT_RETRIES:
                    raise
                # a node that counts the association just released a moment longer takes the next later
                time.sleep(0.3 * (attempt + 1))
        raise AssertionError("unreachable")

    def series_list(self) -> list[SeriesInfo]:
        return self.result.query.series if self.result.query is not None else []

    def _classes_in_study(self, q: PatientQuery) -> set[str]:
        """Every study's SOP Classes in Study; empty when one study does not say."""
        found: set[str] = set()
        for st in q.studies:
            try:
                classes = sop_classes_in_study(self.find_assoc(), q.model, self.opts.patient_id, st.study_uid)
            except NetError as exc:
                log.info("SOP Classes in Study not answered (%s)", exc)
                return set()
            if not classes:
                return set()
            found |= classes
        return found

    def get_plan(self, q: PatientQuery, quick: bool = True) -> GetPlan:
        """The SOP classes each series holds, grouped into associations.

        ``quick``: when the studies' SOP Classes in Study fit one association with
        every transfer syntax, they are proposed as they are (one C-FIND per study,
        not one response per instance); the caller asks again with ``quick=False``
        (IMAGE-level C-FIND per series) when the node refuses one of them.
        """
        if quick:
            classes = self._classes_in_study(q)
            if classes and len(classes) * len(GET_TRANSFER_SYNTAXES) + 4 <= MAX_CONTEXTS:
                return GetPlan([sorted(classes)], GET_TRANSFER_SYNTAXES, False, {}, in_study=True, quick=True)
        members: dict[str, list[InstanceInfo]] = {}
        for s in q.series:
            try:
                members[s.series_uid] = find_instances(self.find_assoc(), q.model, self.opts.patient_id,
                                                       s.study_uid, s.series_uid)
            except NetError as exc:
                log.info("image-level C-FIND failed (%s): proposing the usual classes", exc)
                members = {}
                break
        in_study: set[str] = set()
        if not members or any(not i.sop_class_uid for lst in members.values() for i in lst):
            for st in q.studies:
                try:
                    in_study |= sop_classes_in_study(self.find_assoc(), q.model, self.opts.patient_id,
                                                     st.study_uid)
                except NetError as exc:
                    log.info("SOP Classes in Study not answered (%s)", exc)
                    in_study = set()
                    break
        plan = plan_get(members, GET_STORAGE_CLASSES, reserved=4, in_study=sorted(in_study))
        if plan.in_study:
            self.result.notes.append("the node listed no SOP class per instance: the study's SOP Classes in "
                                     "Study were proposed")
        elif not plan.listed:
            self.result.notes.append("the node listed no SOP classes at image level: the usual RT classes "
                                     "were proposed, uncompressed only")
        return plan

    def name_refused(self, plan: GetPlan) -> None:
        if plan.in_study:
            for cls in sorted(plan.refused):
                self.result.problems.append(f"the node refused SOP class {class_name(cls)} ({cls}) for C-GET: "
                                            "its instances were not retrieved")
            return
        if not plan.listed:
            return  # the fallback list: a refused class may hold nothing of this patient
        for cls in sorted(plan.refused):
            n = sum(1 for lst in plan.members.values() for i in lst if i.sop_class_uid == cls)
            self.result.problems.append(f"the node refused SOP class {class_name(cls)} ({cls}) for C-GET: "
                                        f"{n} instance{'s' if n != 1 else ''} not retrieved")

    def release_find(self) -> None:
        """Release the C-FIND association before a bulk C-MOVE: a node may take one at a time."""
        if self.opts.method == "move" and self._assoc is not None:
            self._assoc.release()
            self._assoc = None

    def run(self) -> RetrieveResult:
        node, opts, rep, r = self.node, self.opts, self.rep, self.result
        scp: StorageSCP | None = None
        f: _Fetcher | None = None
        failed = True
        if opts.method == "get":
            self.getter = GetWriter(self.tmp, node.called_ae, on_written=self.summarize_head)
        try:
            assoc = self.find_assoc()
            q = query_patient(assoc, opts.patient_id)
            r.query = q
            if not q.studies:
                raise NetError(f"patient {opts.patient_id!r} not found on {node.called_ae}@{node.host}:{node.port}")
            rep.message(f"patient {opts.patient_id} {q.patient_name}: {len(q.studies)} studies, "
                        f"{len(q.series)} series")
            if opts.method == "move":
                try:
                    sock = assoc.assoc.conn.sock
                    local, peer = sock.getsockname()[0], sock.getpeername()[0]
                except OSError:
                    local, peer = "127.0.0.1", ""
                allowed = ({peer} | _addresses(node.host)) - {""}

                # C-MOVE only: C-GET needs no listener
                from dicomtools.core.net.storescp import StorageSCP

                def received(rec: Any) -> None:
                    rep.advanced(scp.count if scp is not None else 0, q.instance_count)

                # the temporary folder is private: arrivals go straight under their names, summaries from memory
                # (what summarize_head cannot read from the header in memory, read_new reads from the file)
                scp = StorageSCP(node.calling_ae, self.tmp, host=opts.scp_bind or local, port=opts.scp_port,
                                 allowed_aes={node.called_ae}, allowed_hosts=allowed, on_received=received,
                                 network_timeout=node.network_timeout, ssl_context=self.scp_tls,
                                 max_pdu=node.max_pdu, scratch=True, on_written=self.summarize_head)
                scp.start()
            f = _Fetcher(self, q.model, scp, self.getter)
            self.fetcher = f
            if opts.method == "move":
                f.choose_move_model(q.model)
            else:
                plan = self.get_plan(q)
                f.prepare_get(plan)
                if plan.quick and plan.refused:  # which instances are held back: ask per instance
                    f.close_get()
                    plan = self.get_plan(q, quick=False)
                    f.prepare_get(plan)
                self.name_refused(plan)
            filtered = bool(opts.plan_ids or opts.only_approved)
            rep.started(q.instance_count, "retrieving")
            if filtered and opts.selective and q.series_modality_known:
                r.selective = True
                self.selective(f, q)
            else:
                if filtered and opts.selective:
                    r.notes.append("the node did not return Modality for every series: whole patient retrieved")
                self.release_find()
                self.whole_patient(f, q)
            if scp is not None:
                scp.flush()
                r.notes.extend(f"refused association: {why}" for why in scp.stats.refused)
                r.problems.extend(scp.stats.failed)
            r.problems.extend(f.conflicts())
            failed = False
        finally:
            # On Ctrl-C or a lost peer: abort, never wait for a polite release.
            if f is not None:
                f.close(abort=failed)
            if self._assoc is not None:
                if failed:
                    self._assoc.abort()
                else:
                    self._assoc.release()
                self._assoc = None
            if scp is not None:
                scp.stop()
        return r


def _uid_problem(inst: InstanceSummary, path: str) -> str:
    """Why a received instance must not be saved: a UID that is no UID, or not the one announced.

    The received file is named after the SOP Instance UID of the C-STORE
    request; the data set must carry the same one, else a peer could slip
    another instance (or a path-like name) past the checks.
    """
    uid = inst.sop_instance_uid
    if not plausible_uid(uid):
        return f"refused an instance with an invalid SOP Instance UID {uid[:80]!r}"
    announced = os.path.basename(path)
    if safe_uid_name(uid) != announced:
        return f"refused instance {uid}: the C-STORE request announced {announced.removesuffix('.dcm')[:80]!r}"
    return ""


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()


