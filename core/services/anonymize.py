"""Anonymizing what a retrieve saves: the anonymizer handed to ``core.net.retrieve`` from above.

``retrieve --anonymize``, ``retrieve --patientList --anonymize`` and the TUI's
Retrieve screen build one here, so ``core.net`` needs no import of ``core.anonymize``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from dicomtools.core.anonymize.run import AnonymizeSettings, anonymize_files
from dicomtools.core.progress import CancelToken, ProgressSink

log = logging.getLogger(__name__)


@dataclass
class RetrieveAnonymizer(AnonymizeSettings):
    """The anonymizer's settings plus the one call a retrieve makes (``SaveAnonymized``).

    A subclass, not a wrapper: a batch retrieve renames it per patient
    (:meth:`for_patient`) and keeps the rest (profile, options, shared UID map).
    """

    def for_patient(self, new_patient_id: str, new_patient_name: str) -> RetrieveAnonymizer:
        return replace(self, new_patient_id=new_patient_id, new_patient_name=new_patient_name)

    def save(self, paths: list[str], out_dir: str, sink: ProgressSink | None,
             cancel: CancelToken | None) -> tuple[list[str], list[tuple[str, str]]]:
        report = anonymize_files(paths, out_dir, self, sink=sink, cancel=cancel)
        return [o.dest for o in report.written], [(bad.path, bad.reason) for bad in report.not_copied]
