"""Fetching: C-MOVE into our SCP, or C-GET, both over the lean UL, with counting."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.files import IMPLICIT_LE
from dicomtools.core.net.ident import encode_identifier
from dicomtools.core.net.retrieve_get import GetPlan, GetWriter
from dicomtools.core.net.retrieve_model import GET_MODELS, MOVE_MODELS, FetchOutcome
from dicomtools.core.net.status import FAILURE, describe_status, status_category
from dicomtools.core.net.ul import ClientAssociation, NoContextAccepted, request_association
from dicomtools.core.net.ul_get import accepted_classes, c_get

log = logging.getLogger(__name__)

Ident = dict[str, str]  # a C-MOVE / C-GET identifier: keyword -> value (see :mod:`ident`)

if TYPE_CHECKING:
    from dicomtools.core.net.retrieve_job import _Job
    from dicomtools.core.net.storescp import StorageSCP

class _Fetcher:
    """C-MOVE into our SCP or C-GET (both over the lean UL), with counting."""

    def __init__(self, job: _Job, model: str, scp: StorageSCP | None, getter: GetWriter | None) -> None:
        self.job = job
        self.model = model
        self.method = job.opts.method
        self.node = job.node
        self.dest_ae = job.node.calling_ae
        self.scp = scp
        self.getter = getter
        self.lean: ClientAssociation | None = None
        self.plan: GetPlan | None = None
        self.get_assocs: dict[int, ClientAssociation] = {}

    def write_error(self) -> str:
        if self.scp is not None:
            return self.scp.stats.write_error
        return self.getter.write_error if self.getter is not None else ""

    def stop_requested(self) -> bool:
        """Ctrl-C, or a local write failure (full disk): cancel the transfer."""
        return self.job.cancel.cancelled or bool(self.write_error())

    def conflicts(self) -> list[str]:
        if self.scp is not None:
            return list(self.scp.stats.conflicts)
        return list(self.getter.conflicts) if self.getter is not None else []

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
                dimse_timeout=n.dimse_timeout, tls=self.job.tls, max_pdu=n.max_pdu)
        return self.lean

    def choose_move_model(self, preferred: str) -> None:
        """The query model for C-MOVE: the one C-FIND used when accepted, else the other root."""
        try:
            a = self._move_assoc()
            ok = [k for k in (preferred, "S" if preferred == "P" else "P")
                  if a.context_for(str(MOVE_MODELS[k]), IMPLICIT_LE)]
        except NoContextAccepted:
            ok = []
        if not ok:
            self.close(abort=True)
            raise NetError(f"{self.node.called_ae} does not support C-MOVE (it accepted neither Patient Root nor "
                           "Study Root MOVE); use C-GET (--useGet, or retrieve_method = \"get\" in the preset)")
        self.model = ok[0]

    def prepare_get(self, plan: GetPlan) -> None:
        """Open one association per class group; choose the model; name the classes the node refused."""
        self.plan = plan
        for gi in range(len(plan.groups)):
            a = self._get_assoc(gi)
            accepted = accepted_classes(a)
            if gi == 0:
                ok = [k for k in (self.model, "S" if self.model == "P" else "P") if str(GET_MODELS[k]) in accepted]
                if not ok:
                    raise NetError(f"{self.node.called_ae} does not support C-GET (it accepted neither Patient Root "
                                   "nor Study Root GET); use C-MOVE (leave out --useGet, retrieve_method = \"move\")")
                self.model = ok[0]
            plan.refused.update(c for c in plan.groups[gi] if c not in accepted)

    def _get_assoc(self, group: int) -> ClientAssociation:
        """The C-GET association of a class group, opened (again) when needed."""
        a = self.get_assocs.get(group)
        if a is None or a.conn.closed:
            assert self.plan is not None
            a = self.job.get_assoc(group, self.plan)
            self.get_assocs[group] = a
        return a

    def close_get(self) -> None:
        """Release the C-GET associations (a node taking one at a time then answers a C-FIND)."""
        for a in self.get_assocs.values():
            a.release()
        self.get_assocs.clear()

    def close(self, abort: bool = False) -> None:
        for a in self.get_assocs.values():
            if abort:
                a.abort()
            else:
                a.release()
        self.get_assocs.clear()
        if self.lean is not None:
            if abort:
                self.lean.abort()
            else:
                self.lean.release()
            self.lean = None

    def _request(self, a: Any, model: str, verb: str, ident: Ident, what: str) -> tuple[int, bytes]:
        """The accepted context for ``model`` and the encoded identifier, or one line why not."""
        cx = a.context_for(model, IMPLICIT_LE)
        if cx is None:
            raise NetError(f"{self.node.called_ae} does not accept {verb} with this query model")
        try:
            return cx, encode_identifier(ident)
        except UnicodeEncodeError:
            raise NetError(f"cannot encode the {verb} identifier for {what}") from None

    def _move(self, ident: Ident, what: str) -> tuple[int, int, int, int, str]:
        a = self._move_assoc()
        model = str(MOVE_MODELS[self.model])
        cx, data = self._request(a, model, "C-MOVE", ident, what)
        try:
            st = a.c_move(cx, model, data, self.dest_ae, cancelled=self.stop_requested)
        except NetError as exc:
            self.close(abort=True)
            raise NetError(f"C-MOVE {what}: {exc}") from None
        if self.scp is not None:
            self.scp.flush()
        return st.status, st.completed, st.failed, st.warning, st.comment

    def _get(self, ident: Ident, what: str, group: int = 0) -> tuple[int, int, int, int, str]:
        assert self.getter is not None
        a = self._get_assoc(group)
        model = str(GET_MODELS[self.model])
        cx, data = self._request(a, model, "C-GET", ident, what)
        try:
            st = c_get(a, cx, model, data, self.getter, cancelled=self.stop_requested,
                       after_response=self.getter.flush)
        except NetError as exc:
            self.close(abort=True)
            raise NetError(f"C-GET {what}: {exc}") from None
        return st.status, st.completed, st.failed, st.warning, st.comment

    def _get_split(self, ident: Ident, what: str, out: FetchOutcome) -> tuple[int, int, int, int, str]:
        """C-GET one request as series (or instances) on the association holding their classes."""
        plan = self.plan
        assert plan is not None
        level = ident["QueryRetrieveLevel"]
        series = [s for s in self.job.series_list() if s.study_uid == ident.get("StudyInstanceUID")
                  and (level == "STUDY" or s.series_uid == ident.get("SeriesInstanceUID"))]
        pid = self.job.opts.patient_id
        totals: list[Any] = [0x0000, 0, 0, 0, ""]
        skipped = 0

        def run(ident2: Ident, group: int) -> None:
            code, c, f, w, comment = self._get(ident2, what, group)
            totals[1] += c
            totals[2] += f
            totals[3] += w
            if status_category(code) != "success" and status_category(totals[0]) != FAILURE:
                totals[0], totals[4] = code, comment

        for s in series:
            members = plan.members.get(s.series_uid, [])
            if level == "IMAGE":
                members = [m for m in members if m.sop_instance_uid == ident.get("SOPInstanceUID")]
            groups = {plan.group_of(m.sop_class_uid) for m in members}
            refused = [m for m in members if m.sop_class_uid in plan.refused]
            if level != "IMAGE" and len(groups) == 1 and not refused and None not in groups:
                run(_ident(self.model, "SERIES", pid, s.study_uid, s.series_uid), groups.pop() or 0)
                continue
            skipped += len(refused)
            for m in members:
                gi = plan.group_of(m.sop_class_uid)
                if m.sop_class_uid in plan.refused or gi is None or self.stop_requested():
                    continue
                run(_ident(self.model, "IMAGE", pid, s.study_uid, s.series_uid, m.sop_instance_uid), gi)
        if out.expected is not None:
            out.expected -= skipped  # named once per class by the job
        return int(totals[0]), int(totals[1]), int(totals[2]), int(totals[3]), str(totals[4])

    def fetch(self, ident: Ident, what: str, expected: int | None = None) -> FetchOutcome:
        before = len(self._arrivals())
        out = FetchOutcome(what, expected=expected)
        if self.method == "move":
            code, out.completed, out.failed, out.warning, comment = self._move(ident, what)
        elif self.plan is None or self.plan.simple():
            code, out.completed, out.failed, out.warning, comment = self._get(ident, what)
        else:
            code, out.completed, out.failed, out.warning, comment = self._get_split(ident, what, out)
        out.status = code
        if self.write_error():
            raise NetError(f"cannot save what {self.node.called_ae} sends: {self.write_error()}; "
                           f"the transfer was stopped and nothing was saved")
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


def _ident(model: str, level: str, patient_id: str, study: str = "", series: str = "", sop: str = "") -> Ident:
    ds: Ident = {"QueryRetrieveLevel": level}
    if model == "P" or level == "PATIENT":
        ds["PatientID"] = patient_id
    if level in ("STUDY", "SERIES", "IMAGE"):
        ds["StudyInstanceUID"] = study
    if level in ("SERIES", "IMAGE"):
        ds["SeriesInstanceUID"] = series
    if level == "IMAGE":
        ds["SOPInstanceUID"] = sop
    return ds


