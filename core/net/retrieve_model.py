"""Options and results of a retrieve: what was asked, fetched, saved and what went wrong."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.net.find import PatientQuery
from dicomtools.core.net.qr_models import (  # noqa: F401 - re-exported for fetch and the retrieve job
    FIND_CONTEXTS,
    GET_MODELS,
    MOVE_MODELS,
)
from dicomtools.core.progress import CancelToken, ProgressSink
from dicomtools.core.tree import PatientTree, build_forest

log = logging.getLogger(__name__)

RT_OBJECT_MODALITIES = ("RTSTRUCT", "RTDOSE", "RTRECORD", "RTIMAGE", "REG")

FILE_PREFIX = {"RTPLAN": "RP", "RTSTRUCT": "RS", "RTDOSE": "RD", "RTIMAGE": "RI", "RTRECORD": "RT", "REG": "RE"}


class SaveAnonymized(Protocol):
    """What ``retrieve`` calls to anonymize its files on their way into the target folder.

    Networking moves files; what is done to them is decided above it: the use-case
    layer (``core.services.anonymize.RetrieveAnonymizer``) builds one and hands it in.
    """

    @property
    def new_patient_id(self) -> str: ...

    @property
    def new_patient_name(self) -> str: ...

    def save(self, paths: list[str], out_dir: str, sink: ProgressSink | None,
             cancel: CancelToken | None) -> tuple[list[str], list[tuple[str, str]]]:
        """Anonymize ``paths`` into ``out_dir``: (written files, [(source path, why not copied)])."""
        ...

    def for_patient(self, new_patient_id: str, new_patient_name: str) -> SaveAnonymized:
        """The same anonymizer (profile, options, UID map) naming another patient: a batch retrieves many."""
        ...


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
    # anonymize while saving (the new ID/name come from it); built by core.services
    anonymize: SaveAnonymized | None = None


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
    chosen_plans: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False
    default_machines: dict[str, str] = field(default_factory=dict, repr=False)  # for the tree's machine names
    _forest: list[PatientTree] | None = field(default=None, repr=False, compare=False)

    @property
    def forest(self) -> list[PatientTree]:
        """The tree of what was saved, built on first use: most runs never look (~2 ms a thousand)."""
        if self._forest is None:
            self._forest = build_forest(self.saved, self.default_machines)
        return self._forest

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


