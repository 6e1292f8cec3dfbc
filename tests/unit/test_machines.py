"""Machine names: defaults from the model, mapping, problems, rewriting a copy of the plan."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomtools.core.archive.model import BeamInfo, InstanceSummary
from dicomtools.core.net.machines import (
    apply_to_dataset,
    mapped_dataset_bytes,
    needs_rewrite,
    plan_problems,
    resolve_machine,
)
from dicomtools.core.phantom.manifest import PhantomManifest


def plan(*beams: tuple[str, str]) -> InstanceSummary:
    return InstanceSummary(path="/x/RP.dcm", sop_instance_uid="1.2.3", sop_class_uid="1.2.840.10008.5.1.4.1.1.481.5",
                           plan_label="P1", beams=tuple(BeamInfo(n + 1, f"B{n + 1}", "TREATMENT", m, model)
                                                       for n, (m, model) in enumerate(beams)))


def test_resolve_machine() -> None:
    assert resolve_machine("TrueBeam1", "TDS", {"TrueBeam1": "TB1"}, {}) == "TB1"
    assert resolve_machine("", "RDS", {}, {"RDS": "HALCYON"}) == "HALCYON"
    assert resolve_machine("", "RDS", {"HALCYON": "HAL2"}, {"RDS": "HALCYON"}) == "HAL2"  # defaults, then mapping
    assert resolve_machine("", "RDS", {}, {}) == ""
    assert resolve_machine("A", "RDS", {}, {"RDS": "HALCYON"}) == "A"  # a name present is kept


def test_problems_say_what_to_add() -> None:
    empty = plan(("", "RDS"), ("", "RDS"))
    probs = plan_problems(empty, {}, {})
    assert [p.reason for p in probs] == ["empty", "empty"]
    assert "P1" in probs[0].message() and "--defaultMachines RDS=MACHINE" in probs[0].message()
    assert plan_problems(empty, {}, {"RDS": "HALCYON"}) == []
    unknown = plan(("TrueBeam1", "TDS"))
    probs = plan_problems(unknown, {}, {}, known=["TB1"])
    assert probs[0].reason == "unknown" and "--machineMapping TrueBeam1=MACHINE" in probs[0].message()
    assert plan_problems(unknown, {"TrueBeam1": "TB1"}, {}, known=["TB1"]) == []
    assert plan_problems(unknown, {}, {}, known=[]) == []  # no list in the preset: any name is fine
    nothing = plan(("", ""))
    assert "cannot be mapped" in plan_problems(nothing, {}, {})[0].message()


def test_needs_rewrite() -> None:
    assert not needs_rewrite(plan(("TB1", "TDS")), {"Other": "X"}, {"RDS": "H"})
    assert needs_rewrite(plan(("TB1", "TDS")), {"TB1": "TB2"}, {})
    assert needs_rewrite(plan(("", "RDS")), {}, {"RDS": "H"})


def test_apply_to_nested_items() -> None:
    ds = Dataset()
    b1, b2, ion = Dataset(), Dataset(), Dataset()
    b1.TreatmentMachineName = "TrueBeam1"
    b2.TreatmentMachineName = ""
    b2.ManufacturerModelName = "RDS"
    ion.TreatmentMachineName = "GANTRY1"
    ds.BeamSequence = Sequence([b1, b2])
    ds.IonBeamSequence = Sequence([ion])
    outer = Dataset()
    outer.TreatmentMachineName = "TrueBeam1"
    ds.ReferencedRTPlanSequence = Sequence([outer])  # "wherever else the plan names the machine"
    changed = apply_to_dataset(ds, {"TrueBeam1": "TB1", "GANTRY1": "G1"}, {"RDS": "HALCYON"})
    assert changed == 4
    assert [b.TreatmentMachineName for b in ds.BeamSequence] == ["TB1", "HALCYON"]
    assert ds.IonBeamSequence[0].TreatmentMachineName == "G1"
    assert ds.ReferencedRTPlanSequence[0].TreatmentMachineName == "TB1"


@pytest.mark.parametrize("label", ["PLAN_A", "PLAN_B", "PROTON_1"])
def test_mapped_bytes_leave_source_untouched(phantom: PhantomManifest, label: str) -> None:
    path = next(Path(phantom.root).rglob(f"RP.{label}.dcm"))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    data, ts, changes = mapped_dataset_bytes(str(path), {"TrueBeam1": "TB1", "GANTRY1": "G1"}, {"RDS": "HALCYON"})
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert changes >= 1
    src = dcmread(path)
    assert ts == str(src.file_meta.TransferSyntaxUID)
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    fp = DicomBytesIO(data)
    got = read_dataset(fp, ts == "1.2.840.10008.1.2", True)
    beams = list(got.get("BeamSequence", [])) + list(got.get("IonBeamSequence", []))
    assert {str(b.TreatmentMachineName) for b in beams} <= {"TB1", "HALCYON", "G1"}
    assert str(got.SOPInstanceUID) == str(src.SOPInstanceUID)


def test_grouped_messages_name_all_beams() -> None:
    from dicomtools.core.net.machines import group_messages

    lines = group_messages(plan_problems(plan(("", "RDS"), ("", "RDS"), ("TB9", "TDS")), {}, {}, known=["TB1"]))
    assert len(lines) == 2
    assert "beams B1, B2: Treatment Machine Name is empty (model 'RDS')" in lines[0]
    assert "beam B3: machine 'TB9' is not known" in lines[1]
