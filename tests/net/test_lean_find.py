"""C-FIND over our own Upper Layer: the same answers as over pynetdicom, from a real Orthanc,
and neither pydicom nor pynetdicom (nor numpy) imported to get them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from dicomtools.core.config import NodeConfig
from dicomtools.core.net.assoc import associate, make_ae, release
from dicomtools.core.net.find import find_instances, query_patient
from dicomtools.core.net.qr_models import FIND_CONTEXTS
from tests.net import peers
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

PID = "PHANTOM-001"
PLAN_KEYS = ["RTPlanLabel", "ApprovalStatus", "RTPlanDate"]

PROBE = """
import dataclasses, json, sys
from dicomtools.core.net.find import find_instances, query_patient
from dicomtools.core.net.qr_models import FIND_CONTEXTS
from dicomtools.core.net.ul import request_association
from dicomtools.core.net.ul_find import LeanFind, find_contexts
port, aet, ours, pid, keys = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(",")
a = LeanFind(request_association("127.0.0.1", port, ours, aet, find_contexts(FIND_CONTEXTS)), 30)
q = query_patient(a, pid)
plans = [dataclasses.asdict(i) for s in q.series if s.modality == "RTPLAN"
         for i in find_instances(a, q.model, pid, s.study_uid, s.series_uid, keys)]
a.release()
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pydicom", "pynetdicom", "numpy"))
print(json.dumps({"query": dataclasses.asdict(q), "plans": plans, "heavy": heavy}))
"""


def test_same_answers_as_pynetdicom_without_importing_it(orthanc_loaded: peers.Orthanc) -> None:
    node = NodeConfig(port=orthanc_loaded.port, called_ae=orthanc_loaded.aet, calling_ae=OUR_AE)
    ae = make_ae(OUR_AE, node)
    for cx in FIND_CONTEXTS:
        ae.add_requested_context(cx)
    assoc = associate(ae, node)
    try:
        q = query_patient(assoc, PID)
        plans = [dataclasses.asdict(i) for s in q.series if s.modality == "RTPLAN"
                 for i in find_instances(assoc, q.model, PID, s.study_uid, s.series_uid, PLAN_KEYS)]
    finally:
        release(assoc)
    done = subprocess.run([sys.executable, "-c", PROBE, str(orthanc_loaded.port), orthanc_loaded.aet, OUR_AE, PID,
                           ",".join(PLAN_KEYS)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lean = json.loads(done.stdout)
    assert lean["heavy"] == []
    assert q.studies and plans and plans[0]["plan_label"]
    assert lean["query"] == dataclasses.asdict(q)
    assert lean["plans"] == plans
