"""The order ``store`` sends in (a pure function of the reference trees): ARIA's stages.

Each stage goes out only after the one before it is confirmed; what one stage holds may go
over parallel associations. Checked on the phantom generator's patients (plans with CBCT,
doses, DRRs, portal images and treatment records; a verification plan that references another).
"""

from __future__ import annotations

import pytest

from dicomtools.core.archive.scan import scan
from dicomtools.core.net.store_order import StorePlan, order_for_store
from dicomtools.core.phantom import generate
from dicomtools.core.phantom.manifest import PhantomManifest
from dicomtools.core.tree import build_forest


@pytest.fixture(scope="module")
def ordered(tmp_path_factory: pytest.TempPathFactory) -> tuple[PhantomManifest, StorePlan, dict[str, str]]:
    root = tmp_path_factory.mktemp("phantom")
    manifest = generate(root, patients=2, seed=0)
    instances = scan(str(root), workers=1).instances
    series = {i.sop_instance_uid: i.series_instance_uid for i in instances}
    return manifest, order_for_store(build_forest(instances, {"RDS": "HALCYON"}), include_all=True), series


def test_images_then_structure_set_then_plan_then_what_refers_to_the_plan(
    ordered: tuple[PhantomManifest, StorePlan, dict[str, str]],
) -> None:
    manifest, plan, series = ordered
    stage = {it.uid: it.stage for it in plan.items}
    checked = 0
    for pm in manifest.patients.values():
        for p in pm.plans.values():
            s = stage[p.sop_uid]
            if p.structure_set_uid:
                images = [stage[u] for u, sr in series.items() if sr == p.image_series_uid and u in stage]
                assert max(images) < stage[p.structure_set_uid] < s
            for ref in p.referenced_plan_uids:
                assert stage[ref] < s
            refer = [*p.dose_uids, *(u for us in p.drr_uids_by_beam.values() for u in us),
                     *(u for us in p.record_uids_by_beam.values() for u in us)]
            assert all(stage[u] > s for u in refer)
            checked += len(refer)
    assert checked > 10


def test_a_plans_cbct_doses_rt_images_and_records_share_one_stage(
    ordered: tuple[PhantomManifest, StorePlan, dict[str, str]],
) -> None:
    """They refer to the plan, not to each other: sent together, parallel associations overlap them."""
    manifest, plan, series = ordered
    stage = {it.uid: it.stage for it in plan.items}
    category = {it.uid: it.category for it in plan.items}
    shared = 0
    for pm in manifest.patients.values():
        for p in pm.plans.values():
            cbct = {stage[u] for u, sr in series.items() if p.cbct_series_uid and sr == p.cbct_series_uid}
            if not (cbct and p.dose_uids) or min(cbct) < stage[p.sop_uid]:
                continue  # no CBCT or dose, or the CBCT went with a plan before this one
            records = [u for us in p.record_uids_by_beam.values() for u in us]
            together = {*cbct, *(stage[u] for u in p.dose_uids), *(stage[u] for u in records)}
            assert together == {stage[p.sop_uid] + 1}
            kinds = {category[u] for u, s in stage.items() if s == stage[p.sop_uid] + 1}
            assert {"cbct", "dose"} <= kinds
            shared += 1
    assert shared >= 1


def test_plans_that_need_nothing_more_share_a_stage_and_a_verification_plan_waits(
    ordered: tuple[PhantomManifest, StorePlan, dict[str, str]],
) -> None:
    """A patient's plans on one structure set go together, their doses together after them; a plan
    that references another (the QA plan) goes in a later stage than the plan it verifies."""
    manifest, plan, _ = ordered
    stage = {it.uid: it.stage for it in plan.items}
    for pm in manifest.patients.values():
        on_one_set: dict[str, list[str]] = {}
        for p in pm.plans.values():
            if p.structure_set_uid and not p.referenced_plan_uids:
                on_one_set.setdefault(p.structure_set_uid, []).append(p.sop_uid)
        together = max(on_one_set.values(), key=len)
        assert len(together) >= 2
        assert len({stage[u] for u in together}) == 1
        plan_stage = stage[together[0]]
        doses = [u for p in pm.plans.values() if p.sop_uid in together for u in p.dose_uids]
        assert len(doses) >= 2 and {stage[u] for u in doses} == {plan_stage + 1}
        waiting = [p for p in pm.plans.values() if p.referenced_plan_uids]
        assert waiting
        for p in waiting:
            assert stage[p.sop_uid] > max(stage[r] for r in p.referenced_plan_uids)
