"""Which received instances to keep: the chosen plans and their subtrees, or everything."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.tree import PatientTree

log = logging.getLogger(__name__)


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
            plan = node.plan
            if plan is None:
                continue
            if not _plan_matches(plan, plan_ids, only_approved):
                continue
            found_ids.update({plan.plan_label, plan.sop_instance_uid} & set(plan_ids))
            chosen.append(plan.plan_label or plan.sop_instance_uid)
            for inst in node.subtree_instances():
                if inst.sop_instance_uid not in seen:
                    seen.add(inst.sop_instance_uid)
                    out.append(inst)
    problems = []
    available = sorted({n.plan.plan_label or n.plan.sop_instance_uid
                        for t in forest for n in t.plans if n.plan is not None})
    for pid in plan_ids:
        if pid not in found_ids:
            extra = " that is approved" if only_approved else ""
            problems.append(f"no plan with label or UID {pid!r}{extra} (plans: {', '.join(available) or 'none'})")
    if not plan_ids and only_approved and not chosen:
        problems.append(f"no approved plan (plans: {', '.join(available) or 'none'})")
    return out, chosen, problems


