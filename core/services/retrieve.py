"""Retrieve one patient (or some plans) for the TUI, renamed or anonymized on the way.

The same steps as ``dicomtools retrieve`` (``core.net.retrieve`` with the
anonymizer from ``core.services.anonymize``), with the form's values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from dicomtools.core.config import Config, NodeConfig
from dicomtools.core.progress import CancelToken, ProgressSink

log = logging.getLogger(__name__)


@dataclass
class RetrieveRequest:
    patient_id: str
    plan_uids: list[str]  # empty: whole patient
    dest: str
    new_patient_id: str | None = None
    new_patient_name: str | None = None
    anonymize: bool = False


@dataclass
class RetrieveOutcome:
    request: RetrieveRequest
    result: Any = None  # core RetrieveResult
    problems: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        if self.result is None:
            return "nothing retrieved"
        text = self.result.summary()
        if self.request.anonymize:
            text += "; anonymized"
        if self.problems:
            text += f"; {len(self.problems)} problem(s)"
        return text


def run_retrieve(
    node: NodeConfig,
    config: Config,
    req: RetrieveRequest,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
    temp_dirs: list[str] | None = None,
) -> RetrieveOutcome:
    """Retrieve one patient (or some plans) into ``req.dest``, renamed or anonymized on the way.

    Anonymization is the retrieve's own (as ``retrieve --anonymize``): original data
    only ever sits in the retrieve's temporary folder, and ``anonymization_map.csv``
    is appended in ``req.dest``. Raises ``NetError`` when the node refuses us.
    ``temp_dirs`` is accepted for callers that track temporary folders; the
    retrieve removes its own.
    """
    from dicomtools.core.net.retrieve import RetrieveOptions, retrieve
    from dicomtools.core.services.anonymize import RetrieveAnonymizer

    out = RetrieveOutcome(req)
    settings = None
    if req.anonymize:
        if not (req.new_patient_id and req.new_patient_name):
            raise ValueError("anonymization needs a new Patient ID and a new Patient Name")
        settings = RetrieveAnonymizer(
            req.new_patient_id, req.new_patient_name,
            profile=config.anonymize.profile, options=config.anonymize.options or None,
        )
    opts = RetrieveOptions(
        patient_id=req.patient_id,
        out_dir=req.dest,
        plan_ids=list(req.plan_uids),
        new_patient_id=None if req.anonymize else req.new_patient_id,
        new_patient_name=None if req.anonymize else req.new_patient_name,
        method=node.retrieve_method,
        scp_port=config.local.scp_port,
        scp_bind=config.local.scp_bind,
        default_machines=dict(config.machines.defaults),
        anonymize=settings,
    )
    out.result = retrieve(node, opts, sink=sink, cancel=cancel)
    out.problems.extend(out.result.problems)
    out.cancelled = out.result.cancelled
    return out
