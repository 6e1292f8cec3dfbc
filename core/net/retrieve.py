"""``retrieve``: one patient's plans and everything they reference, from a node to a folder.

C-FIND the patient's studies and series; C-MOVE into our own Storage SCP
(or C-GET over the same association) into a temporary folder inside the
target; build the reference tree from what arrived; keep the wanted plans'
subtrees (or everything); move them into the target with a new Patient
ID/Name applied when asked; remove the temporary folder always.

Selective retrieval, when the node answers series-level queries with
Modality and a plan filter is given: the RTPLAN series first, then the RT
object series (structure sets, doses, records, RT images, registrations),
then the image series the chosen plans' structure sets and registrations
name, then one sample instance of every other image series (a CBCT names
its plan only inside its instances) and the whole series when the sample
belongs to a chosen plan. When unsure, the whole patient is fetched.
"""

from __future__ import annotations

import copy
import csv
import datetime as _dt
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: stale temp folders are found by age only
    fcntl = None  # type: ignore[assignment]

from pydicom.dataset import Dataset
from pynetdicom import build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from dicomtools.core.atomic import atomic_writer
from dicomtools.core.config import NodeConfig
from dicomtools.core.model import HALCYON_PLAN, InstanceSummary, UnreadableFile
from dicomtools.core.net.assoc import (
    NetError,
    associate,
    make_ae,
    release,
    scp_tls_context,
    tls_args,
)
from dicomtools.core.net.files import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE
from dicomtools.core.net.find import PatientQuery, SeriesInfo, find_instances, query_patient
from dicomtools.core.net.status import FAILURE, PENDING, WARNING, describe_status, status_category
from dicomtools.core.net.storescp import StorageSCP, file_meta, plausible_uid, safe_uid_name
from dicomtools.core.net.ul import ClientAssociation, request_association
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter
from dicomtools.core.scan import read_summary
from dicomtools.core.tree import PatientTree, build_forest, is_image

log = logging.getLogger(__name__)

MOVE_MODELS = {"P": PatientRootQueryRetrieveInformationModelMove, "S": StudyRootQueryRetrieveInformationModelMove}
GET_MODELS = {"P": PatientRootQueryRetrieveInformationModelGet, "S": StudyRootQueryRetrieveInformationModelGet}
FIND_CONTEXTS = [PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind]
RT_OBJECT_MODALITIES = ("RTSTRUCT", "RTDOSE", "RTRECORD", "RTIMAGE", "REG")

# Storage classes offered for C-GET (SCP role): what an RT archive holds.
GET_STORAGE_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.66",  # Raw Data
    "1.2.840.10008.5.1.4.1.1.66.1",  # Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.3",  # Deformable Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.481.4",  # RT Beams Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT Plan
    "1.2.840.10008.5.1.4.1.1.481.6",  # RT Brachy Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.7",  # RT Treatment Summary Record
    "1.2.840.10008.5.1.4.1.1.481.8",  # RT Ion Plan
    "1.2.840.10008.5.1.4.1.1.481.9",  # RT Ion Beams Treatment Record
    "1.2.840.10008.5.1.4.1.1.481.10",  # RT Physician Intent
    "1.2.840.10008.5.1.4.1.1.481.11",  # RT Segment Annotation
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    HALCYON_PLAN,
]
GET_TRANSFER_SYNTAXES = [
    EXPLICIT_LE,
    IMPLICIT_LE,
    DEFLATED_LE,
    EXPLICIT_BE,
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.5",  # RLE
]

FILE_PREFIX = {"RTPLAN": "RP", "RTSTRUCT": "RS", "RTDOSE": "RD", "RTIMAGE": "RI", "RTRECORD": "RT", "REG": "RE"}


@dataclass
class RetrieveOptions:
    patient_id: str
    out_dir: str | Path
    plan_ids: list[str] = field(default_factory=list)  # RT Plan Label or plan SOP Instance UID
    only_approved: bool = False
    new_patient_id: str | None = None
    new_patient_name: str | None = None
    method: str = "move"  # "move" or "get"
    scp_port: int = 104
    scp_bind: str = ""  # "" = the local address used to reach the node
    use_tls: bool | None = None
    selective: bool = True
    default_machines: dict[str, str] = field(default_factory=dict)
    # dicomtools.core.anonymize.AnonymizeSettings: anonymize while saving (new ID/name from it)
    anonymize: Any = None


@dataclass
class FetchOutcome:
    what: str
    status: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0
    received: int = 0  # distinct instances that arrived for this request
    duplicates: int = 0  # arrivals of an instance already received in this request
    expected: int | None = None


@dataclass
class RetrieveResult:
    patient_id: str
    query: PatientQuery | None = None
    fetches: list[FetchOutcome] = field(default_factory=list)
    selective: bool = False
    saved: list[InstanceSummary] = field(default_factory=list)
    forest: list[PatientTree] = field(default_factory=list)  # tree of what was saved
    chosen_plans: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and not self.cancelled

    @property
    def received(self) -> int:
        return sum(f.received for f in self.fetches)

    @property
    def reported(self) -> int:
        return sum(f.completed + f.warning for f in self.fetches)

    def summary(self) -> str:
        failed = sum(f.failed for f in self.fetches)
        how = "selective" if self.selective else "whole patient"
        return (f"{len(self.saved)} instances saved; {self.received} received / {self.reported} reported "
                f"by the node ({failed} failed sub-operations, {len(self.fetches)} requests, {how})")


# ------------------------------------------------------------------ selection


def _plan_matches(inst: InstanceSummary, plan_ids: Sequence[str], only_approved: bool) -> bool:
    if plan_ids and inst.plan_label not in plan_ids and inst.sop_instance_uid not in plan_ids:
        return False
    return not only_approved or inst.approval_status.upper() == "APPROVED"


def select(forest: Sequence[PatientTree], plan_ids: Sequence[str], only_approved: bool) -> tuple[list[InstanceSummary], list[str], list[str]]:
    """(instances to save, chosen plan labels, problems) for the filters.

    No filter: everything of the patient, unconnected data included. With a
    filter: the chosen plans and their subtrees only.
    """
    if not plan_ids and not only_approved:
        return [i for t in forest for i in t.all_instances()], [], []
    chosen: list[str] = []
    seen: set[str] = set()
    out: list[InstanceSummary] = []
    found_ids: set[str] = set()
    for tree in forest:
        for node in tree.plans:
            if not node.instances:
                continue
            plan = node.instances[0]
            if not _plan_matches(plan, plan_ids, only_approved):
                continue
            found_ids.update({plan.plan_label, plan.sop_instance_uid} & set(plan_ids))
            chosen.append(plan.plan_label or plan.sop_instance_uid)
            for inst in node.subtree_instances():
                if inst.sop_instance_uid not in seen:
                    seen.add(inst.sop_instance_uid)
                    out.append(inst)
    problems = []
    available = sorted({n.instances[0].plan_label or n.instances[0].sop_instance_uid
                        for t in forest for n in t.plans if n.instances})
    for pid in plan_ids:
        if pid not in found_ids:
            extra = " that is approved" if only_approved else ""
            problems.append(f"no plan with label or UID {pid!r}{extra} (plans: {', '.join(available) or 'none'})")
    if not plan_ids and only_approved and not chosen:
        problems.append(f"no approved plan (plans: {', '.join(available) or 'none'})")
    return out, chosen, problems


# ------------------------------------------------------------------ fetching


class _Fetcher:
    """C-MOVE into our SCP (over the lean UL) or C-GET (pynetdicom), with counting."""

    def __init__(self, job: _Job, model: str, scp: StorageSCP | None, getter: _GetWriter | None) -> None:
        self.job = job
        self.model = model
        self.method = job.opts.method
        self.node = job.node
        self.dest_ae = job.node.calling_ae
        self.scp = scp
        self.getter = getter
        self.lean: ClientAssociation | None = None

    def _arrivals(self) -> list[str]:
        """SOP Instance UIDs written so far, in arrival order (append-only)."""
        if self.scp is not None:
            return self.scp.stats.arrivals
        assert self.getter is not None
        return self.getter.arrivals

    def _move_assoc(self) -> ClientAssociation:
        if self.lean is None:
            n = self.node
            contexts = [(str(MOVE_MODELS[k]), IMPLICIT_LE) for k in ("P", "S")]
            self.lean = request_association(
                n.host, n.port, n.calling_ae, n.called_ae, contexts,
                connect_timeout=n.connect_timeout, acse_timeout=n.acse_timeout,
                dimse_timeout=n.dimse_timeout, tls=self.job.tls)
        return self.lean

    def close(self, abort: bool = False) -> None:
        if self.lean is not None:
            if abort:
                self.lean.abort()
            else:
                self.lean.release()
            self.lean = None

    def _move(self, ident: Dataset, what: str) -> tuple[int, int, int, int, str]:
        a = self._move_assoc()
        model = str(MOVE_MODELS[self.model])
        cx = a.context_for(model, IMPLICIT_LE)
        if cx is None:
            raise NetError(f"{self.node.called_ae} does not accept C-MOVE with this query model")
        data = encode(ident, True, True, False)
        if data is None:
            raise NetError(f"cannot encode the C-MOVE identifier for {what}")
        try:
            st = a.c_move(cx, model, data, self.dest_ae, cancelled=lambda: self.job.cancel.cancelled)
        except NetError as exc:
            self.close(abort=True)
            raise NetError(f"C-MOVE {what}: {exc}") from None
        if self.scp is not None:
            self.scp.flush()
        return st.status, st.completed, st.failed, st.warning, st.comment

    def _get(self, ident: Dataset, what: str) -> tuple[int, int, int, int, str]:
        final: Dataset | None = None
        for status, _ in self.job.find_assoc().send_c_get(ident, GET_MODELS[self.model]):
            if "Status" not in status:
                raise NetError(f"C-GET {what}: no response from the node within {self.node.dimse_timeout:g} s "
                               "(dimse_timeout), or the association was aborted")
            if status_category(int(status.Status)) == PENDING:
                if self.job.cancel.cancelled:
                    self.job.find_assoc().send_c_cancel(1, None)
                continue
            final = status
        assert final is not None
        return (int(final.Status), int(final.get("NumberOfCompletedSuboperations", 0) or 0),
                int(final.get("NumberOfFailedSuboperations", 0) or 0),
                int(final.get("NumberOfWarningSuboperations", 0) or 0), str(final.get("ErrorComment", "") or ""))

    def fetch(self, ident: Dataset, what: str, expected: int | None = None) -> FetchOutcome:
        before = len(self._arrivals())
        out = FetchOutcome(what, expected=expected)
        if self.method == "move":
            code, out.completed, out.failed, out.warning, comment = self._move(ident, what)
        else:
            code, out.completed, out.failed, out.warning, comment = self._get(ident, what)
        out.status = code
        # Count distinct instances: a peer that sends one instance twice must not
        # hide one it never sent.
        arrived = self._arrivals()[before:]
        out.received = len(set(arrived))
        out.duplicates = len(arrived) - out.received
        if status_category(code) == FAILURE and out.completed == 0 and out.received == 0:
            hint = ""
            if self.method == "move" and (code == 0xA801 or 0xC000 <= code <= 0xCFFF):
                port = self.scp.port if self.scp is not None else "?"
                hint = (f"; does {self.node.called_ae} know our AE title {self.dest_ae!r} as a move "
                        f"destination (this host, port {port})?")
            if self.method == "get" and code == 0xA702:
                hint = "; the node could not open storage sub-operations (SCP role not accepted?)"
            raise NetError(f"C-{self.method.upper()} {what} refused: {describe_status(code)}"
                           + (f" ({comment})" if comment else "") + hint)
        return out


class _GetWriter:
    """EVT_C_STORE handler for C-GET: writes the encoded data set as received."""

    def __init__(self, out_dir: Path, source_ae: str) -> None:
        self.out_dir = out_dir
        self.source_ae = source_ae
        self.arrivals: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> int:
        req = event.request
        uid = str(req.AffectedSOPInstanceUID or "")
        cls = str(req.AffectedSOPClassUID or "")
        ts = str(event.context.transfer_syntax)
        try:
            data = event.encoded_dataset(include_meta=False)
            with atomic_writer(self.out_dir / safe_uid_name(uid)) as fh:
                fh.write(file_meta(cls, uid, ts, self.source_ae))
                fh.write(data)
        except OSError as exc:
            log.error("cannot write %s: %s", uid, exc)
            return 0xA700
        with self.lock:
            self.arrivals.append(uid)
        return 0x0000


def _ident(model: str, level: str, patient_id: str, study: str = "", series: str = "", sop: str = "") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    if model == "P" or level == "PATIENT":
        ds.PatientID = patient_id
    if level in ("STUDY", "SERIES", "IMAGE"):
        ds.StudyInstanceUID = study
    if level in ("SERIES", "IMAGE"):
        ds.SeriesInstanceUID = series
    if level == "IMAGE":
        ds.SOPInstanceUID = sop
    return ds


# ------------------------------------------------------------------ saving


def _target_name(inst: InstanceSummary) -> str:
    prefix = FILE_PREFIX.get(inst.modality.upper(), inst.modality.upper() or "OT")
    prefix = "".join(c for c in prefix if c.isalnum()) or "OT"
    return f"{prefix}.{safe_uid_name(inst.sop_instance_uid)}"


def _save(selected: Sequence[InstanceSummary], out: Path, new_id: str | None, new_name: str | None,
          rep: Reporter, cancel: CancelToken) -> list[InstanceSummary]:
    saved: list[InstanceSummary] = []
    rep.started(len(selected), "saving")
    for n, inst in enumerate(selected, 1):
        if cancel.cancelled:
            break
        target = out / _target_name(inst)
        if new_id is None and new_name is None:
            os.replace(inst.path, target)  # same file system: the temp folder is inside `out`
        else:
            from pydicom import dcmread

            ds = dcmread(inst.path)
            if new_id is not None:
                ds.PatientID = new_id
            if new_name is not None:
                ds.PatientName = new_name
            # rewrite inside the temporary folder, then move: `out` never holds a partial file
            with atomic_writer(inst.path) as fh:
                ds.save_as(fh, enforce_file_format=True)
            os.replace(inst.path, target)
        copy = InstanceSummary(**{f: getattr(inst, f) for f in inst.__dataclass_fields__})
        copy.path = str(target)
        if new_id is not None:
            copy.patient_id = new_id
        if new_name is not None:
            copy.patient_name = new_name
        saved.append(copy)
        rep.advanced(n, len(selected), target.name)
    return saved


def _save_anonymized(selected: Sequence[InstanceSummary], out: Path, settings: Any,
                     sink: ProgressSink | None, cancel: CancelToken, problems: list[str]) -> list[InstanceSummary]:
    """Anonymize from the temporary folder into ``out`` (the anonymizer's tree layout).

    An instance the anonymizer could not copy is a problem (exit 1); the others are still saved.
    """
    from dicomtools.core.anonymize import anonymize_files

    report = anonymize_files([i.path for i in selected], str(out), settings, sink=sink, cancel=cancel)
    by_path = {i.path: i for i in selected}  # the temporary path means nothing once it is gone
    for bad in report.not_copied:
        inst = by_path.get(bad.path)
        what = f"{inst.modality} instance {inst.sop_instance_uid}" if inst is not None else bad.path
        problems.append(f"not copied: {what}: {bad.reason}")
    saved = [read_summary(o.dest) for o in report.written]
    return [s for s in saved if isinstance(s, InstanceSummary)]


def write_anonymization_map(out: Path, rows: Iterable[tuple[str, str, str, str]]) -> Path:
    """Append (original ID, original name, new ID, new name, UTC time) rows; sensitive file."""
    path = out / "anonymization_map.csv"
    old = path.read_bytes() if path.exists() else b""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if not old:
        w.writerow(["original_patient_id", "original_patient_name", "new_patient_id", "new_patient_name", "utc_time"])
    for row in rows:
        w.writerow([*row, stamp])
    with atomic_writer(path) as fh:
        fh.write(old + buf.getvalue().encode("utf-8"))
    return path


# ------------------------------------------------------------------ the job


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
        self._assoc: Association | None = None
        self.getter: _GetWriter | None = None
        tls_node = node
        if opts.use_tls is not None and opts.use_tls != node.tls.enabled:
            tls_node = copy.deepcopy(node)
            tls_node.tls.enabled = opts.use_tls
        self.tls = tls_args(tls_node)
        self.scp_tls = scp_tls_context(tls_node)

    def summarize(self, path: str) -> InstanceSummary | None:
        s = read_summary(path)
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
        if out.failed:
            r.problems.append(f"{out.what}: {out.failed} sub-operations failed ({describe_status(out.status)})")
        reported = out.completed + out.warning
        arrivals = out.received + out.duplicates
        twice = f" ({out.duplicates} sent twice)" if out.duplicates else ""
        if arrivals < reported:
            r.problems.append(f"{out.what}: the node reported {reported} sent, {arrivals} arrived")
        elif out.expected is not None and out.received < out.expected and not out.failed:
            # distinct instances: one sent twice must not hide one never sent
            r.problems.append(f"{out.what}: C-FIND listed {out.expected} instances, {out.received} arrived{twice}")
        elif out.duplicates:
            r.notes.append(f"{out.what}: {out.duplicates} instances arrived twice (kept once)")
        if arrivals > reported:
            r.notes.append(f"{out.what}: {arrivals} instances arrived, the node reported {reported}")
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
                members = find_instances(self.find_assoc(), f.model, opts.patient_id, s.study_uid, s.series_uid)
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

    # -- the pynetdicom association for C-FIND (and C-GET), opened when needed
    def find_assoc(self) -> Association:
        if self._assoc is None or not self._assoc.is_established:
            node, opts = self.node, self.opts
            ae = make_ae(node.calling_ae, node)
            ext_neg: list[Any] = []
            handlers: list[Any] = []
            contexts = [build_context(c) for c in FIND_CONTEXTS]
            if opts.method == "get":
                assert self.getter is not None
                contexts += [build_context(GET_MODELS["P"]), build_context(GET_MODELS["S"])]
                for cls in GET_STORAGE_CLASSES:
                    contexts.append(build_context(cls, GET_TRANSFER_SYNTAXES))
                    ext_neg.append(build_role(cls, scp_role=True))
                handlers.append((evt.EVT_C_STORE, self.getter))
            self._assoc = associate(ae, node, contexts, ext_neg=ext_neg or None, evt_handlers=handlers,
                                    use_tls=opts.use_tls)
        return self._assoc

    def release_find(self) -> None:
        """Release the pynetdicom association: its polling threads slow a bulk C-MOVE down."""
        if self.opts.method == "move" and self._assoc is not None:
            release(self._assoc)
            self._assoc = None

    def run(self) -> RetrieveResult:
        node, opts, rep, r = self.node, self.opts, self.rep, self.result
        scp: StorageSCP | None = None
        f: _Fetcher | None = None
        failed = True
        if opts.method == "get":
            self.getter = _GetWriter(self.tmp, node.called_ae)
        try:
            assoc = self.find_assoc()
            q = query_patient(assoc, opts.patient_id)
            r.query = q
            if not q.studies:
                raise NetError(f"patient {opts.patient_id!r} not found on {node.called_ae}@{node.host}:{node.port}")
            rep.message(f"patient {opts.patient_id} {q.patient_name}: {len(q.studies)} studies, "
                        f"{len(q.series)} series")
            if opts.method == "move":
                sock = assoc.dul.socket.socket if assoc.dul.socket is not None else None
                local, peer = (sock.getsockname()[0], sock.getpeername()[0]) if sock is not None else ("127.0.0.1", "")
                allowed = ({peer} | _addresses(node.host)) - {""}

                def received(rec: Any) -> None:
                    self.summarize(rec.path)
                    rep.advanced(scp.count if scp is not None else 0, q.instance_count)

                scp = StorageSCP(node.calling_ae, self.tmp, host=opts.scp_bind or local, port=opts.scp_port,
                                 allowed_aes={node.called_ae}, allowed_hosts=allowed, on_received=received,
                                 network_timeout=node.network_timeout, ssl_context=self.scp_tls)
                scp.start()
            f = _Fetcher(self, q.model, scp, self.getter)
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
            failed = False
        finally:
            # On Ctrl-C or a lost peer: abort, never wait for a polite release.
            if f is not None:
                f.close(abort=failed)
            if self._assoc is not None:
                if failed:
                    self._assoc.abort()
                else:
                    release(self._assoc)
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


TEMP_PREFIX = ".dicomtools-retrieve-"
_LOCK_NAME = ".lock"
_UNLOCKED_GRACE = 600.0  # a temp folder without a lock file is stale after this many seconds


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


def retrieve(
    node: NodeConfig,
    opts: RetrieveOptions,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """Run the whole retrieve; raises :class:`NetError` when the node refuses us.

    Problems that leave data missing are listed in ``result.problems`` (exit
    non-zero). The temporary folder is removed in every case, also on
    ``KeyboardInterrupt``.
    """
    cancel = cancel or CancelToken()
    rep = Reporter("retrieve", sink)
    out = Path(opts.out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temp_folders(out):
        rep.message(f"removed {stale}: left by an interrupted retrieve")
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=out))
    lock: BinaryIO | None = None
    try:
        lock = _lock_temp_folder(tmp)
        job = _Job(node, opts, tmp, rep, cancel)
        result = job.run()
        job.read_new()
        result.problems.extend(f"received an unreadable file: {why}" for why in job.unreadable.values())
        result.problems.extend(job.rejected.values())
        forest = build_forest(job.summaries.values(), opts.default_machines)
        others = [t.patient_id for t in forest if t.patient_id != opts.patient_id]
        if others:
            result.problems.append(f"the node sent instances of other patients: {', '.join(others)} (ignored)")
        forest = [t for t in forest if t.patient_id == opts.patient_id]
        selected, chosen, problems = select(forest, opts.plan_ids, opts.only_approved)
        result.chosen_plans = chosen
        result.problems.extend(problems)
        if opts.anonymize is not None:
            result.saved = _save_anonymized(selected, out, opts.anonymize, sink, cancel, result.problems)
            original_name = next((i.patient_name for i in selected if i.patient_name), "")
            write_anonymization_map(out, [(opts.patient_id, original_name, opts.anonymize.new_patient_id,
                                           opts.anonymize.new_patient_name)])
        else:
            result.saved = _save(selected, out, opts.new_patient_id, opts.new_patient_name, rep, cancel)
        result.forest = build_forest(result.saved, opts.default_machines)
        result.cancelled = cancel.cancelled
        rep.finished(len(result.saved), len(selected), result.summary())
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if lock is not None:
            lock.close()
        if created:
            try:
                out.rmdir()  # only when nothing was saved
            except OSError:
                pass
