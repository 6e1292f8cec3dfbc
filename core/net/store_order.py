"""The order ``store`` sends in: per patient and plan, ARIA's import order, in stages."""

from __future__ import annotations

import filecmp
from collections.abc import Mapping, Sequence

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.lazylog import get_logger
from dicomtools.core.tree import MissingInfo, Node, NodeKind, PatientTree, PlanInfo, build_forest

log = get_logger(__name__)

CRITICAL = frozenset({"plan", "dose"})


class StoreItem:
    """One instance to send (plain slotted classes here: no dataclass on the store path)."""

    __slots__ = ("inst", "category", "stage", "transfer_syntax")

    def __init__(self, inst: InstanceSummary, category: str, stage: int, transfer_syntax: str = "") -> None:
        self.inst = inst
        self.category = category  # image, struct, plan, cbct, dose, rt-image, record, reg, other
        self.stage = stage  # items of one stage may go in parallel; stages go in order
        self.transfer_syntax = transfer_syntax

    def __repr__(self) -> str:
        return f"StoreItem({self.category} stage {self.stage}: {self.path})"

    @property
    def uid(self) -> str:
        return self.inst.sop_instance_uid

    @property
    def path(self) -> str:
        return self.inst.path

    @property
    def critical(self) -> bool:
        return self.category in CRITICAL


class StorePlan:
    def __init__(self) -> None:
        self.items: list[StoreItem] = []
        self.skipped: list[tuple[InstanceSummary, str]] = []  # not sent, why
        self.warnings: list[str] = []
        # files sharing a SOP Instance UID with different content (also in ``skipped``): named always
        self.conflicts: list[tuple[InstanceSummary, str]] = []


SERIES = (NodeKind.IMAGE, NodeKind.CBCT)
# what an unconnected object is filed as with --include-all
_UNCONNECTED_CATEGORY = {NodeKind.DOSE: "dose", NodeKind.REG: "reg", NodeKind.RT_IMAGE: "rt-image",
                         NodeKind.RECORD: "record"}


def _kids(node: Node, *kinds: NodeKind) -> list[Node]:
    return [c for c in node.children if c.kind in kinds]


def _is_related(node: Node) -> bool:
    """A plan shown below the plan that references it (sent before it)."""
    return isinstance(node.info, PlanInfo | MissingInfo) and node.info.related


def _series_of_structs(structs: Sequence[Node]) -> list[InstanceSummary]:
    return [i for s in structs for c in _kids(s, *SERIES) for i in c.instances]


def _sorted_plans(plans: list[Node]) -> list[Node]:
    """Referenced plans before the plans that reference them (verification -> treatment)."""
    uid_of = {id(p): (p.plan.sop_instance_uid if p.plan else "") for p in plans}
    by_uid = {uid_of[id(p)]: p for p in plans}
    out: list[Node] = []
    seen: set[int] = set()

    def visit(p: Node, depth: int = 0) -> None:
        if id(p) in seen or depth > 50:
            return
        seen.add(id(p))
        refs = p.plan.referenced_plans if p.plan else ()
        for ref in refs:
            other = by_uid.get(ref)
            if other is not None:
                visit(other, depth + 1)
        out.append(p)

    for p in plans:
        visit(p)
    return out


class _Orderer:
    def __init__(self, include_all: bool) -> None:
        self.include_all = include_all
        self.plan = StorePlan()
        self.stage = 0
        self.placed: set[str] = set()

    def add(self, category: str, instances: Sequence[InstanceSummary]) -> None:
        """``instances`` as a stage of their own, after everything placed so far."""
        self.add_stage([(category, instances)])

    def add_stage(self, groups: Sequence[tuple[str, Sequence[InstanceSummary]]]) -> None:
        """Several categories as one stage: none of them refers to another, so they may go in parallel."""
        fresh: list[tuple[str, InstanceSummary]] = []
        for category, instances in groups:
            for inst in instances:
                if inst.sop_instance_uid in self.placed:
                    continue
                self.placed.add(inst.sop_instance_uid)
                if inst.truncated:
                    self.plan.skipped.append((inst, "pixel data truncated (file cut short), not sent"))
                    continue
                fresh.append((category, inst))
        if not fresh:
            return
        self.stage += 1
        self.plan.items.extend(StoreItem(i, category, self.stage, i.transfer_syntax_uid) for category, i in fresh)

    def hold(self, instances: Sequence[InstanceSummary], why: str) -> None:
        for inst in instances:
            if inst.sop_instance_uid not in self.placed:
                self.placed.add(inst.sop_instance_uid)
                self.plan.skipped.append((inst, why))

    def registrations(self, group: Node) -> None:
        for reg in _kids(group, NodeKind.REG):
            structs = _kids(reg, NodeKind.STRUCT)
            self.add("image", [i for c in _kids(reg, *SERIES) for i in c.instances])
            self.add("image", _series_of_structs(structs))
            self.add("struct", [i for s in structs for i in s.instances])
            if self.include_all:
                self.add("reg", reg.instances)

    def _before(self, plan: Node) -> list[tuple[str, list[InstanceSummary]]]:
        """What must be stored before ``plan``, stage by stage: its structure sets' images, the
        structure sets, the plans it references."""
        structs = _kids(plan, NodeKind.STRUCT)
        related = [c for c in plan.children if c.kind.is_plan and _is_related(c)]
        return [
            ("image", _series_of_structs(structs)),
            ("struct", [i for s in structs for i in s.instances]),
            ("plan", [i for r in related for i in r.instances]),
        ]

    def _dependants(self, plan: Node) -> list[tuple[str, list[InstanceSummary]]]:
        """What refers to the plan (and to what went before it) but not to each other."""
        out = [
            ("cbct", [i for c in _kids(plan, NodeKind.CBCT) for i in c.instances]),
            ("dose", [i for c in _kids(plan, NodeKind.DOSE) for i in c.instances]),
        ]
        if self.include_all:
            out.append(("rt-image", [i for n in plan.walk() if n.kind is NodeKind.RT_IMAGE for i in n.instances]))
            out.append(("record", [i for n in plan.walk() if n.kind is NodeKind.RECORD for i in n.instances]))
        return out

    def _joins(self, plan: Node, before: list[tuple[str, list[InstanceSummary]]], group: Sequence[Node]) -> bool:
        """``plan`` may share ``group``'s stage: everything it needs (``before``) went before, and it
        refers to no plan of the group (a verification plan waits for the plan it verifies)."""
        if any(i.sop_instance_uid not in self.placed for _, needed in before for i in needed):
            return False
        in_group = {i.sop_instance_uid for p in group for i in p.instances}
        return not in_group.intersection(plan.plan.referenced_plans if plan.plan else ())

    def plans(self, plans: Sequence[Node]) -> None:
        """Each plan after what it needs; a plan that needs nothing more shares the stage of the plan
        before it, and their dependants (CBCT, doses, RT images, records) share the next one, so
        parallel associations send a patient's plans and their dependants together."""
        group: list[Node] = []
        for plan in plans:
            before = self._before(plan)
            if group and self._joins(plan, before, group):
                group.append(plan)
                continue
            self._plan_group(group)
            for category, needed in before:
                self.add(category, needed)
            group = [plan]
        self._plan_group(group)

    def _plan_group(self, group: Sequence[Node]) -> None:
        """The plans of ``group`` as one stage, their dependants as the next, then their registrations."""
        if not group:
            return
        self.add_stage([("plan", p.instances) for p in group])
        self.add_stage([d for p in group for d in self._dependants(p)])
        for p in group:
            for registrations in _kids(p, NodeKind.REGISTRATIONS):
                self.registrations(registrations)

    def unconnected(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            if node.kind.is_series:
                self.add("image", node.instances)
            elif node.kind is NodeKind.STRUCT:
                self.add("image", _series_of_structs([node]))
                self.add("struct", node.instances)
        for node in nodes:
            if node.kind is NodeKind.DOSE and not self.include_all:
                why = node.note or "its plan is not in the set"
                self.hold(node.instances, f"dose not sent: {why}; ARIA refuses a dose without its plan "
                                          "(--include-all sends it anyway)")
            elif self.include_all:
                category = _UNCONNECTED_CATEGORY.get(node.kind, "other")
                self.add(category, [i for n in node.walk() for i in n.instances])

    def patient(self, tree: PatientTree) -> None:
        self.plans(_sorted_plans(tree.plans))
        self.unconnected(tree.unconnected)
        rest = [i for i in tree.all_instances() if i.sop_instance_uid not in self.placed]
        if self.include_all:
            self.add("other", rest)
        else:
            self.hold(rest, "REG, RT image, record or other object: sent only with --include-all")


def order_for_store(forest: Sequence[PatientTree], include_all: bool = False) -> StorePlan:
    """Turn reference trees into the ordered, staged list of instances to send."""
    orderer = _Orderer(include_all)
    for tree in forest:
        orderer.patient(tree)
    for inst, why in orderer.plan.skipped:
        if why.startswith(("dose not sent", "pixel data")):
            orderer.plan.warnings.append(f"{inst.path}: {why}")
    return orderer.plan


def plan_store(
    instances: Sequence[InstanceSummary],
    default_machines: Mapping[str, str] | None = None,
    include_all: bool = False,
) -> StorePlan:
    """What ``store`` sends, for the CLI and the TUI alike: conflicts held back, then the tree's order.

    One function so both faces hold back the same files: two different files with
    one SOP Instance UID are named (``conflicts``) and neither is sent.
    """
    kept, conflicts = split_conflicts(instances)
    plan = order_for_store(build_forest(kept, default_machines), include_all=include_all)
    plan.skipped.extend(conflicts)
    plan.conflicts = conflicts
    return plan


def split_conflicts(
    instances: Sequence[InstanceSummary],
) -> tuple[list[InstanceSummary], list[tuple[InstanceSummary, str]]]:
    """(instances to order, held back with why): files sharing a SOP Instance UID with different content.

    Sending one of them would let the node keep whichever came first, silently;
    neither is sent and each is named. Identical copies are one instance.
    """
    by_uid: dict[str, list[InstanceSummary]] = {}
    for inst in instances:
        by_uid.setdefault(inst.sop_instance_uid, []).append(inst)
    keep: list[InstanceSummary] = []
    held: list[tuple[InstanceSummary, str]] = []
    for uid, group in by_uid.items():
        group = sorted(group, key=lambda i: i.path)
        first = group[0]
        try:
            differ = [i for i in group[1:] if not filecmp.cmp(first.path, i.path, shallow=False)]
        except OSError:
            differ = group[1:]
        if not differ:
            keep.append(first)
            continue
        others = ", ".join(i.path for i in group if i is not first)
        for inst in group:
            partner = others if inst is first else first.path
            held.append((inst, f"not sent: SOP Instance UID {uid} is also in {partner} with different content"))
    return keep, held
