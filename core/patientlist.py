"""Patient lists for batch retrieve: plain text, CSV, or the seed's hand-off JSON.

Pure parsing (text in, entries out) so the CLI and the TUI read a list the
same way. The three forms are told apart by content, not by the file name:
users rename exports.

* text: one Patient ID per line; blank lines and lines starting with ``#``
  are ignored; an ID may contain spaces (only the ends are stripped).
* CSV: a header row with ``PatientId`` and optionally ``PlanId`` (any case,
  spaces/underscores ignored; comma, semicolon or tab); several rows of one
  patient are several plans; an empty PlanId means the whole patient.
* JSON: ``{"Patients": [{"PatientId", "IsSelected", "Plans": [{"PlanId",
  "CourseId", "IsSelected"}]}]}`` as exported by ARIA's patient-browser
  script; selected patients with their selected plans, none = whole patient.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dicomtools.core.errors import DicomToolsError, ExitStatus

MAX_ID = 64  # Patient ID is LO: 64 characters


class PatientListError(DicomToolsError):
    """A list we cannot use; the message is one line naming file and line."""

    exit_status = ExitStatus.USAGE


class ListFormat(Enum):
    TEXT = "text"
    CSV = "CSV"
    JSON = "hand-off JSON"


@dataclass(frozen=True)
class PatientEntry:
    """One patient to retrieve; no plan IDs means the whole patient."""

    patient_id: str
    plan_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatientList:
    format: ListFormat
    entries: tuple[PatientEntry, ...]


def _check_id(value: str, where: str, what: str = "Patient ID") -> str:
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PatientListError(f"{where}: {what} {value!r} contains a control character")
    if "\\" in value:
        raise PatientListError(f"{where}: {what} {value!r} contains a backslash (a DICOM value separator)")
    if len(value) > MAX_ID:
        raise PatientListError(f"{where}: {what} is longer than {MAX_ID} characters")
    return value


class _Collector:
    """Entries in first-seen order; repeated patients merge, whole patient wins."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.plans: dict[str, list[str] | None] = {}

    def add(self, pid: str, plan: str | None) -> None:
        if pid not in self.plans:
            self.order.append(pid)
            self.plans[pid] = [] if plan else None
        current = self.plans[pid]
        if current is None or not plan:
            self.plans[pid] = None
        elif plan not in current:
            current.append(plan)

    def entries(self) -> tuple[PatientEntry, ...]:
        return tuple(PatientEntry(p, tuple(self.plans[p] or ())) for p in self.order)


def _looks_csv(lines: list[str]) -> bool:
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            head = line.strip().lstrip("\ufeff")
            norm = [_norm(c) for c in _split_header(head)]
            return "patientid" in norm and len(norm) > 1 or head.lower().replace(" ", "") == "patientid"
    return False


def _split_header(line: str) -> list[str]:
    for sep in (",", ";", "\t"):
        if sep in line:
            return line.split(sep)
    return [line]


def _norm(col: str) -> str:
    return col.strip().strip('"').replace(" ", "").replace("_", "").lower()


def _parse_text(name: str, lines: list[str]) -> tuple[PatientEntry, ...]:
    got = _Collector()
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        got.add(_check_id(line, f"{name}:{n}"), None)
    return got.entries()


def _parse_csv(name: str, text: str) -> tuple[PatientEntry, ...]:
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    delimiter = next((s for s in (",", ";", "\t") if s in first), ",")
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    header = [_norm(c) for c in next(reader)]
    pid_col = header.index("patientid")
    plan_col = header.index("planid") if "planid" in header else None
    got = _Collector()
    for row in reader:
        where = f"{name}:{reader.line_num}"
        if not any(c.strip() for c in row):
            continue
        if len(row) <= pid_col or not row[pid_col].strip():
            raise PatientListError(f"{where}: row has no PatientId")
        plan = row[plan_col] if plan_col is not None and len(row) > plan_col else ""
        plan = _check_id(plan, where, "PlanId") if plan.strip() else ""
        got.add(_check_id(row[pid_col], where), plan or None)
    return got.entries()


def _get(obj: dict[str, Any], key: str) -> Any:
    """JSON keys as the export writes them, tolerating other casing."""
    if key in obj:
        return obj[key]
    lower = key.lower()
    return next((v for k, v in obj.items() if k.lower() == lower), None)


def _parse_json(name: str, text: str) -> tuple[PatientEntry, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PatientListError(f"{name}: invalid JSON: {exc.msg} (line {exc.lineno})") from None
    patients = _get(data, "Patients") if isinstance(data, dict) else None
    if not isinstance(patients, list):
        raise PatientListError(f'{name}: expected {{"Patients": [...]}} (the hand-off JSON)')
    got = _Collector()
    for i, p in enumerate(patients):
        where = f"{name}: Patients[{i}]"
        if not isinstance(p, dict):
            raise PatientListError(f"{where}: expected an object")
        if _get(p, "IsSelected") is not True:
            continue
        pid = _get(p, "PatientId")
        if not isinstance(pid, str) or not pid.strip():
            raise PatientListError(f"{where}: PatientId missing or not a string")
        pid = _check_id(pid, where)
        plans = _get(p, "Plans") or []
        if not isinstance(plans, list):
            raise PatientListError(f"{where}: Plans must be a list")
        chosen = []
        for j, plan in enumerate(plans):
            if isinstance(plan, dict) and _get(plan, "IsSelected") is True:
                plan_id = _get(plan, "PlanId")
                if not isinstance(plan_id, str) or not plan_id.strip():
                    raise PatientListError(f"{where}.Plans[{j}]: PlanId missing or not a string")
                chosen.append(_check_id(plan_id, f"{where}.Plans[{j}]", "PlanId"))
        if not chosen:
            got.add(pid, None)
        for plan_id in chosen:
            got.add(pid, plan_id)
    return got.entries()


def parse_patient_list(text: str, name: str = "<list>") -> PatientList:
    """Entries of a list in any of the three forms; raises :class:`PatientListError`."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if text.lstrip().startswith(("{", "[")):
        fmt, entries = ListFormat.JSON, _parse_json(name, text)
    elif _looks_csv(lines):
        fmt, entries = ListFormat.CSV, _parse_csv(name, text)
    else:
        fmt, entries = ListFormat.TEXT, _parse_text(name, lines)
    if not entries:
        what = "no selected patient" if fmt is ListFormat.JSON else "no Patient ID"
        raise PatientListError(f"{name}: {what} in the list")
    return PatientList(fmt, entries)


def load_patient_list(path: str | os.PathLike[str]) -> PatientList:
    """Read and parse a list file (UTF-8, a BOM allowed)."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise PatientListError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if b"\0" in raw[:4096]:
        raise PatientListError(f"{name}: not a text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # Windows exports; IDs are ASCII in practice
    return parse_patient_list(text, name)
