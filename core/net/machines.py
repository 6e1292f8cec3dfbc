"""Treatment machine names in plans: checks before a store, rewrites in the copy sent.

``--defaultMachines RDS=HALCYON`` fills an empty Treatment Machine Name
(300A,00B2) from the beam's Manufacturer's Model Name (0008,1090);
``--machineMapping A=B`` then renames. Both act on an in-memory copy of the
plan that is sent; the source file is never modified.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, NamedTuple

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.lazylog import get_logger, ready

if TYPE_CHECKING:  # pydicom only when a plan is rewritten: ``store`` starts without it
    from pydicom.dataset import Dataset

log = get_logger(__name__)

MACHINE_NAME = 0x300A00B2  # (300A,00B2) Treatment Machine Name
MODEL_NAME = 0x00081090  # (0008,1090) Manufacturer's Model Name


class MachineProblem(NamedTuple):
    """A plan that cannot be sent as is, with what to add to fix it."""

    plan_label: str
    plan_uid: str
    path: str
    beam: str
    machine: str  # after defaults and mapping ("" when still empty)
    model: str
    reason: str  # "empty" or "unknown"

    def message(self) -> str:
        plan = f"plan {self.plan_label or self.plan_uid} ({self.path})"
        if self.reason == "empty":
            if self.model:
                return (
                    f"{plan}, beam {self.beam}: Treatment Machine Name is empty (model {self.model!r}); "
                    f"add --defaultMachines {_token(self.model)}=MACHINE"
                )
            return (
                f"{plan}, beam {self.beam}: Treatment Machine Name and machine model are empty; "
                "the plan cannot be mapped"
            )
        return (
            f"{plan}, beam {self.beam}: machine {self.machine!r} is not known to the node; "
            f"add --machineMapping {_token(self.machine)}=MACHINE"
        )


def group_messages(problems: Collection[MachineProblem]) -> list[str]:
    """One line per plan and machine/model, naming all its beams (for the CLI and the TUI)."""
    groups: dict[tuple[str, str, str, str, str], list[str]] = {}
    first: dict[tuple[str, str, str, str, str], MachineProblem] = {}
    for p in problems:
        key = (p.plan_uid, p.path, p.machine, p.model, p.reason)
        groups.setdefault(key, []).append(p.beam)
        first.setdefault(key, p)
    out = []
    for key, beams in groups.items():
        p = first[key]
        text = p.message()
        if len(beams) > 1:
            text = text.replace(f", beam {p.beam}:", f", beams {', '.join(beams)}:", 1)
        out.append(text)
    return out


def _token(name: str) -> str:
    return f'"{name}"' if any(c.isspace() for c in name) else name


def resolve_machine(machine: str, model: str, mapping: Mapping[str, str], defaults: Mapping[str, str]) -> str:
    """Default (from the model) when empty, then mapping; same rule as the tree shows."""
    name = machine.strip() or defaults.get(model.strip(), "")
    return mapping.get(name, name)


def plan_problems(
    plan: InstanceSummary,
    mapping: Mapping[str, str],
    defaults: Mapping[str, str],
    known: Collection[str] | None = None,
) -> list[MachineProblem]:
    """Every beam whose machine is empty after defaults and mapping, or unknown to the node."""
    problems: list[MachineProblem] = []
    for beam in plan.beams:
        name = resolve_machine(beam.machine, beam.machine_model, mapping, defaults)
        label = beam.name or str(beam.number)
        if not name:
            problems.append(MachineProblem(plan.plan_label, plan.sop_instance_uid, plan.path, label,
                                           "", beam.machine_model, "empty"))
        elif known and name not in known:
            problems.append(MachineProblem(plan.plan_label, plan.sop_instance_uid, plan.path, label,
                                           name, beam.machine_model, "unknown"))
    return problems


def needs_rewrite(plan: InstanceSummary, mapping: Mapping[str, str], defaults: Mapping[str, str]) -> bool:
    return any(
        resolve_machine(b.machine, b.machine_model, mapping, defaults) != b.machine for b in plan.beams
    ) or bool(mapping and not plan.beams)


def apply_to_dataset(ds: Dataset, mapping: Mapping[str, str], defaults: Mapping[str, str]) -> int:
    """Rewrite every Treatment Machine Name in ``ds`` (beam, ion beam, anywhere nested).

    An empty name is filled from the Manufacturer's Model Name of the same
    item. Returns the number of elements changed.
    """
    changed = 0

    def visit(item: Dataset) -> None:
        nonlocal changed
        if MACHINE_NAME in item:
            old = str(item[MACHINE_NAME].value or "")
            model = str(item[MODEL_NAME].value or "") if MODEL_NAME in item else ""
            new = resolve_machine(old, model, mapping, defaults)
            if new != old.strip():
                item[MACHINE_NAME].value = new
                changed += 1
        for elem in item:
            if elem.VR == "SQ":
                for sub in elem.value:
                    visit(sub)

    visit(ds)
    return changed


def mapped_dataset_bytes(path: str, mapping: Mapping[str, str], defaults: Mapping[str, str]) -> tuple[bytes, str, int]:
    """Read a plan, apply the machine rules, return (data set bytes, transfer syntax, changes).

    The data set is re-encoded in the file's own transfer syntax, so only the
    machine names differ from the source.
    """
    ready()  # pydicom logs by itself: its records meet the CLI's handlers
    from pydicom import dcmread
    from pynetdicom.dsutils import encode

    ds = dcmread(path, force=True)
    changes = apply_to_dataset(ds, mapping, defaults)
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else ""
    implicit, little = ds.original_encoding
    if implicit is None:
        implicit, little = True, True
    if not ts:
        ts = "1.2.840.10008.1.2" if implicit else ("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")
    data = encode(ds, bool(implicit), bool(little), ts == "1.2.840.10008.1.2.1.99")
    if data is None:
        raise ValueError(f"{path}: cannot re-encode the plan after machine mapping")
    return data, ts, changes
