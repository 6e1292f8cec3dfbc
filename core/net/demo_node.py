"""The embedded demo node of ``dicomtools demo``: a small Q/R + Storage SCP on loopback.

It serves the phantom archive (C-ECHO, C-FIND at patient/study/series/image
level, C-GET, C-MOVE to our own AE) and accepts C-STORE into a scratch folder,
so Retrieve and Store can be tried with no PACS at hand. It is a demo peer,
not a PACS: an in-memory index built with ``core.scan``, wildcard matching
only. (A candidate for ``core/net`` if the CLI or the tests want it too.)
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.atomic import atomic_writer

log = logging.getLogger(__name__)

DEMO_AE = "DEMOPACS"

# keyword -> InstanceSummary attribute, for matching and for answers
ATTRS = {
    "PatientID": "patient_id",
    "PatientName": "patient_name",
    "StudyInstanceUID": "study_instance_uid",
    "StudyDate": "study_date",
    "StudyDescription": "study_description",
    "SeriesInstanceUID": "series_instance_uid",
    "Modality": "modality",
    "SeriesDescription": "series_description",
    "SeriesNumber": "series_number",
    "SOPInstanceUID": "sop_instance_uid",
    "SOPClassUID": "sop_class_uid",
    "InstanceNumber": "instance_number",
    "RTPlanLabel": "plan_label",
    "RTPlanDate": "plan_date",
    "ApprovalStatus": "approval_status",
}
LEVEL_KEYS = {
    "PATIENT": ("PatientID",),
    "STUDY": ("PatientID", "StudyInstanceUID"),
    "SERIES": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}
LEVEL_ATTRS = {
    "PATIENT": {"PatientID", "PatientName"},
    "STUDY": {"PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyDescription"},
    "SERIES": {"PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesDescription",
               "SeriesNumber"},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def value_matches(pattern: str, value: str, uid: bool) -> bool:
    """DICOM matching: empty = any; UIDs exact (a list with backslashes); else wildcards."""
    pattern = pattern.strip()
    if not pattern or pattern == "*":
        return True
    if uid:
        return value in pattern.split("\\")
    return fnmatch.fnmatchcase(value.upper(), pattern.upper())


@dataclass
class DemoNode:
    """Start with :meth:`start`; ``port`` and ``ae_title`` are what a preset node needs."""

    roots: list[str]
    storage: str
    ae_title: str = DEMO_AE
    port: int = 0
    destinations: dict[str, tuple[str, int]] = field(default_factory=dict)  # C-MOVE targets
    index: dict[str, InstanceSummary] = field(default_factory=dict)
    _server: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _own_storage: bool = False

    @classmethod
    def start(cls, root: str, storage: str | None = None, port: int | None = None,
              destinations: dict[str, tuple[str, int]] | None = None) -> DemoNode:
        own = storage is None
        storage = storage or tempfile.mkdtemp(prefix="dicomtools-demo-node-")
        node = cls([root], storage, port=port or free_port(), destinations=dict(destinations or {}))
        node._own_storage = own
        node.load()
        node.serve()
        return node

    # ------------------------------------------------------------------ index
    def load(self) -> None:
        from dicomtools.core.archive.scan import scan

        for folder in [*self.roots, self.storage]:
            for inst in scan(folder, workers=1).instances:
                if inst.patient_id and not inst.truncated:
                    self.index[inst.sop_instance_uid] = inst
        log.info("demo node: %d instances", len(self.index))

    def matches(self, ident: Any) -> tuple[str, list[InstanceSummary]]:
        level = str(ident.get("QueryRetrieveLevel", "") or "").upper()
        tests = []
        for keyword, attr in ATTRS.items():
            if keyword in ident:
                pattern = ident.get(keyword)
                text = "" if pattern is None else str(pattern)
                if text and text != "*":
                    tests.append((attr, text, keyword.endswith("UID")))
        with self._lock:
            items = list(self.index.values())
        hits = [i for i in items if all(value_matches(p, str(getattr(i, a)), u) for a, p, u in tests)]
        return level, sorted(hits, key=lambda i: (i.patient_id, i.study_instance_uid, i.series_instance_uid,
                                                   i.instance_number.zfill(8), i.sop_instance_uid))

    # ------------------------------------------------------------------ handlers
    def on_find(self, event: Any) -> Iterator[tuple[int, Any]]:
        from pydicom.dataset import Dataset

        ident = event.identifier
        level, hits = self.matches(ident)
        if level not in LEVEL_KEYS:
            yield 0xC000, None
            return
        groups: dict[tuple[str, ...], list[InstanceSummary]] = {}
        for inst in hits:
            key = tuple(str(getattr(inst, ATTRS[k])) for k in LEVEL_KEYS[level])
            groups.setdefault(key, []).append(inst)
        allowed = LEVEL_ATTRS.get(level)
        for members in groups.values():
            first = members[0]
            out = Dataset()
            out.QueryRetrieveLevel = level
            for elem in ident:
                keyword = elem.keyword
                if keyword in ("QueryRetrieveLevel", "") or keyword == "SpecificCharacterSet":
                    continue
                attr = ATTRS.get(keyword)
                if attr is not None and (allowed is None or keyword in allowed):
                    setattr(out, keyword, str(getattr(first, attr)))
                elif keyword == "NumberOfSeriesRelatedInstances" and level == "SERIES":
                    out.NumberOfSeriesRelatedInstances = str(len(members))
                elif keyword == "ModalitiesInStudy" and level == "STUDY":
                    out.ModalitiesInStudy = sorted({m.modality for m in members if m.modality})
                else:
                    setattr(out, keyword, "")
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, out

    def _datasets(self, hits: list[InstanceSummary]) -> Iterator[Any]:
        from pydicom import dcmread

        for inst in hits:
            yield dcmread(inst.path)

    def on_get(self, event: Any) -> Iterator[Any]:
        _, hits = self.matches(event.identifier)
        yield len(hits)
        for ds in self._datasets(hits):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    def on_move(self, event: Any) -> Iterator[Any]:
        from pynetdicom import build_context

        dest = event.move_destination.decode("ascii", "replace").strip() if isinstance(
            event.move_destination, bytes) else str(event.move_destination).strip()
        target = self.destinations.get(dest)
        if target is None:
            log.warning("demo node: unknown move destination %r", dest)
            yield None, None
            return
        _, hits = self.matches(event.identifier)
        classes = sorted({(i.sop_class_uid, i.transfer_syntax_uid or "1.2.840.10008.1.2.1") for i in hits})
        contexts = [build_context(cls, [ts, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]) for cls, ts in classes]
        yield target[0], target[1], {"contexts": contexts[:128]}
        yield len(hits)
        for ds in self._datasets(hits):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    def on_store(self, event: Any) -> int:
        from dicomtools.core.archive.summarize import read_summary

        ds = event.dataset
        ds.file_meta = event.file_meta
        uid = str(ds.SOPInstanceUID)
        path = os.path.join(self.storage, f"{uid}.dcm" if uid.replace(".", "").isdigit() else "x.dcm")
        with atomic_writer(path) as fh:
            ds.save_as(fh, enforce_file_format=True)
        summary = read_summary(path)
        if isinstance(summary, InstanceSummary):
            with self._lock:
                self.index[summary.sop_instance_uid] = summary
        return 0x0000

    # ------------------------------------------------------------------ server
    def serve(self) -> None:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        from dicomtools.core.net.qr_models import ALL_QR_MODELS

        ae = AE(self.ae_title)
        ae.add_supported_context(Verification)
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax is not None:
                ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES, scp_role=True, scu_role=True)
        for cls in ALL_QR_MODELS:
            ae.add_supported_context(cls)
        handlers: list[Any] = [
            (evt.EVT_C_FIND, self.on_find),
            (evt.EVT_C_GET, self.on_get),
            (evt.EVT_C_MOVE, self.on_move),
            (evt.EVT_C_STORE, self.on_store),
        ]
        self._server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)
        log.info("demo node %s listening on 127.0.0.1:%d", self.ae_title, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._own_storage:
            shutil.rmtree(self.storage, ignore_errors=True)
