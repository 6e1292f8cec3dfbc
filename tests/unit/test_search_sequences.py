"""Sequence paths (``BeamSequence/TreatmentMachineName``) evaluated on header bytes give pydicom's answers.

Every path through public sequences to a text leaf that occurs in pydicom's own
test files, the phantom and the realistic benchmark archive is searched with
several operators on the fast path and compared, expression by expression, with
the same expression evaluated on the dataset pydicom reads. Hand-made oddities
(a binary VR declared for a text element, padding, empty items, a cut at every
byte) must fall back or be judged as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomtools.core.archive.model import RT_PLAN, UnreadableFile
from dicomtools.core.archive.read import read_instance
from dicomtools.core.phantom.manifest import PhantomManifest
from dicomtools.core.search import expr as expr_mod
from dicomtools.core.search import fastpath
from dicomtools.core.search import folder as search_mod
from tests.pydicom_files import pydicom_corpus

ROOT = Path(__file__).resolve().parents[2]
OPS = ["=?", "", "=", "!=", "=*1*", "~^[A-Z]", "=TB1"]
MAX_DEPTH = 3


def _fmt(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _paths(ds: Dataset, prefix: tuple[int, ...] = ()) -> Iterator[tuple[int, ...]]:
    """Every path (top-level sequence .. text leaf) the fast path may answer, as found in ``ds``."""
    for elem in ds:
        tag = int(elem.tag)
        vr = fastpath._public_vr(tag)
        if vr == "SQ" and elem.VR == "SQ" and len(prefix) < MAX_DEPTH:
            for item in elem.value:
                yield from _paths(item, (*prefix, tag))
        elif prefix and vr in fastpath.SEQUENCE_LEAF_VRS and tag != fastpath.SPECIFIC_CHARACTER_SET:
            yield (*prefix, tag)


def _pydicom_values(ds: Dataset, e: expr_mod.Expression) -> list[str] | None:
    m = e.evaluate(ds)
    return None if m is None else list(m.values)


def _simple(ds: Dataset, e: expr_mod.Expression) -> bool:
    """Every leaf the path reaches holds one ASCII value (what the fast parser keeps)."""
    return all(elem.VM <= 1 and str(elem.value).isascii() for elem in expr_mod.iter_elements(ds, e.path))


def _compare_file(path: str, all_simple_fast: bool = False) -> tuple[int, int]:
    """(paths answered on the fast path, paths in all); asserts every answer equals pydicom's.

    A path whose leaf is multi-valued or non-ASCII in some item is left to pydicom.
    """
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        paths = sorted(set(_paths(ds)))
    except Exception:
        return 0, 0  # pydicom itself cannot read it: nothing to compare with
    fast_n = total = 0
    for p in paths:
        exprs = [expr_mod.parse("/".join(_fmt(t) for t in p) + op) for op in OPS]
        plan = fastpath.plan(exprs)
        assert plan is not None, p
        tags = expr_mod.needed_top_level_tags(exprs)
        found = read_instance(path, plan.flat, plan.sequences, tags=tags, specs=plan.specs)
        if isinstance(found, UnreadableFile):
            continue
        total += 1
        if found.fast is None:
            assert not (all_simple_fast and _simple(ds, exprs[0])), (path, exprs[0].source)
            continue
        got = fastpath.evaluate(exprs, found)
        for e, values in zip(exprs, got, strict=True):
            assert values == _pydicom_values(ds, e), (os.path.basename(path), e.source)
        fast_n += 1
        # the whole search of the file agrees too (several expressions ANDed)
        outcome = search_mod.search_file(path, exprs[:3], tags)
        assert outcome.values == expr_mod.matches_all(exprs[:3], ds), (path, exprs[0].source)
    return fast_n, total


def test_every_pydicom_test_file_agrees() -> None:
    fast_n = total = 0
    for path in pydicom_corpus():
        f, t = _compare_file(path)
        fast_n += f
        total += t
    assert fast_n > 300 and fast_n > total * 3 // 4, (fast_n, total)


def test_every_phantom_file_agrees(phantom: PhantomManifest) -> None:
    fast_n = total = 0
    for rel in phantom.files:
        f, t = _compare_file(os.path.join(phantom.root, rel))
        fast_n += f
        total += t
    assert fast_n > 500 and fast_n > total * 3 // 4, (fast_n, total)


def test_realistic_archive_objects_agree_on_the_fast_path(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from realistic_archive import Sizes, make_realistic
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    make_realistic(tmp_path / "arch", Sizes.small(patients=1))
    files = sorted(p for p in (tmp_path / "arch").rglob("*") if p.is_file() and not p.name.startswith("."))
    kinds = set()
    for path in files:
        f, t = _compare_file(str(path), all_simple_fast=True)
        assert f >= t - 3, path  # only multi-valued leaves (ContourData, LeafJawPositions...) need pydicom
        if t:
            kinds.add(pydicom.dcmread(path, stop_before_pixels=True).Modality)
    assert {"RTPLAN", "RTSTRUCT", "RTDOSE", "RTIMAGE", "RTRECORD"} <= kinds, kinds
    result = search_mod.search(str(tmp_path / "arch"), ["BeamSequence/TreatmentMachineName=?"], workers=1)
    assert result.matched == 2 and set(result.statistics["BeamSequence/TreatmentMachineName"]) == {"TrueBeam1"}


def _plan_file(implicit: bool = False, **beam: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = RT_PLAN
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.SOPClassUID = RT_PLAN
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientID = "SEQ"
    items = []
    for n, machine in enumerate(("TB1", "TB2 ", " TB1"), 1):
        item = Dataset()
        item.BeamNumber = str(n)
        item.TreatmentMachineName = machine
        cp = Dataset()
        cp.ControlPointIndex = 0
        cp.GantryAngle = "180.0"
        item.ControlPointSequence = Sequence([cp])
        items.append(item)
    for keyword, value in beam.items():
        setattr(items[0], keyword, value)
    items.append(Dataset())  # an empty item
    ds.BeamSequence = Sequence(items)
    ds.FractionGroupSequence = Sequence([])
    return ds


@pytest.mark.parametrize("implicit", [False, True])
def test_hand_made_plan_agrees(tmp_path: Path, implicit: bool) -> None:
    path = tmp_path / "rp.dcm"
    _plan_file(implicit, BeamName="").save_as(path, enforce_file_format=True, implicit_vr=implicit)
    f, t = _compare_file(str(path))
    assert f == t > 0
    exprs = [expr_mod.parse(text) for text in (
        "BeamSequence/ControlPointSequence/GantryAngle=?", "BeamSequence/TreatmentMachineName=TB1",
        "BeamSequence/BeamName=", "FractionGroupSequence/FractionGroupNumber", "PatientID=SEQ",
    )]
    outcome = search_mod.search_file(str(path), exprs, expr_mod.needed_top_level_tags(exprs))
    assert outcome.per_expr == (["180.0"], ["TB1"], [""], None, ["SEQ"])


def test_a_binary_vr_declared_inside_an_item_goes_to_pydicom(tmp_path: Path) -> None:
    """(300A,00B2) written with VR US: pydicom reads a number, so the fast path must not read text."""
    ds = _plan_file()
    ds.BeamSequence[0]["TreatmentMachineName"].VR = "US"
    ds.BeamSequence[0].TreatmentMachineName = 0x3142  # the bytes b"B1": ASCII, yet not text
    path = tmp_path / "rp.dcm"
    ds.save_as(path, enforce_file_format=True)
    e = expr_mod.parse("BeamSequence/TreatmentMachineName=?")
    plan = fastpath.plan([e])
    assert plan is not None
    found = read_instance(str(path), plan.flat, plan.sequences, tags=[e.top_level_tag], specs=plan.specs)
    assert not isinstance(found, UnreadableFile) and found.fast is None
    outcome = search_mod.search_file(str(path), [e], [e.top_level_tag])
    assert outcome.values == {"BeamSequence/TreatmentMachineName": ["12610", "TB2", "TB1"]}


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        ("BeamSequence/ReferencedPatientSetupNumber=?", True),  # IS
        ("BeamSequence/ControlPointSequence/BeamLimitingDevicePositionSequence/LeafJawPositions=*1*", True),  # DS
        ("BeamSequence/BeamDescription=?", False),  # ST keeps leading spaces
        ("ReferencedPatientSequence/PatientName=?", False),  # PN drops '=' groups
        ("BeamSequence/FinalCumulativeMetersetWeight>1", False),  # a comparison reads the VR
        ("BeamSequence/ControlPointSequence/TableTopPitchAngle=?", False),  # a binary VR (FL)
        ("BeamSequence/ControlPointSequence/GantryAngle=?", True),  # DS, two sequences deep
        ("(300B,0010)/(0010,0020)=?", False),  # a private sequence
        ("BeamSequence/(0009,1001)=?", False),  # a private leaf
        ("BeamSequence/SpecificCharacterSet=?", False),  # an item's own character set
    ],
)
def test_which_paths_take_the_fast_path(text: str, fast: bool) -> None:
    assert (fastpath.plan([expr_mod.parse(text)]) is not None) == fast


def test_a_cut_inside_a_searched_sequence_is_judged_as_before(tmp_path: Path) -> None:
    """Cut at every byte from the Beam Sequence on: the fast plan gives pydicom's path verdict and values."""
    path = tmp_path / "rp.dcm"
    _plan_file().save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    start = data.find(bytes.fromhex("0a30b000"))
    assert start > 0
    cut = tmp_path / "cut.dcm"
    e = expr_mod.parse("BeamSequence/TreatmentMachineName=?")
    tags = [e.top_level_tag]
    for n in range(start, len(data)):
        cut.write_bytes(data[:n])
        fast = search_mod.search_file(str(cut), [e], tags)
        slow = search_mod.search_file(str(cut), [e], tags, None)
        assert (fast.dicom, fast.reason, fast.values) == (slow.dicom, slow.reason, slow.values), n
