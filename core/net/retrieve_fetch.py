"""Fetching: C-MOVE into our SCP over the lean UL, or C-GET over pynetdicom, with counting."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from dicomtools.core.atomic import atomic_writer
from dicomtools.core.model import HALCYON_PLAN
from dicomtools.core.net.assoc import (
    NetError,
)
from dicomtools.core.net.files import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE
from dicomtools.core.net.retrieve_model import GET_MODELS, MOVE_MODELS, FetchOutcome
from dicomtools.core.net.status import FAILURE, PENDING, describe_status, status_category
from dicomtools.core.net.storescp import StorageSCP, file_meta, safe_uid_name
from dicomtools.core.net.ul import ClientAssociation, request_association

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from dicomtools.core.net.retrieve_job import _Job

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


