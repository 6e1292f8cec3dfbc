"""receive's pure parts: allow-list decisions and where a hostile instance may be filed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.net.receive.allow import AllowError, AllowList, parse_rule
from dicomtools.core.net.receive.filing import (
    MARKER,
    Disposition,
    Filer,
    instance_name,
    relative_folder,
)
from dicomtools.core.net.storescp import file_meta


def fake_resolve(host: str) -> frozenset[str]:
    return frozenset({"192.0.2.7"}) if host == "pacs.example" else frozenset({host})


def test_allow_list_rules() -> None:
    allow = AllowList.build([parse_rule("ORTHANC@pacs.example", fake_resolve), parse_rule("ARIA")])
    assert allow.refusal("ORTHANC", "192.0.2.7") is None
    assert allow.refusal("ARIA", "203.0.113.9") is None
    assert allow.refusal("ORTHANC", "127.0.0.1") == (
        1, "calling AE title 'ORTHANC' is allowed only from pacs.example, not from 127.0.0.1")
    assert allow.refusal("NOBODY", "192.0.2.7") == (3, "calling AE title 'NOBODY' is not in the allow-list")
    assert AllowList().open and AllowList().refusal("ANY", "1.2.3.4") is None
    assert str(allow) == "ORTHANC@pacs.example, ARIA"
    for bad in ("", "@host", "A" * 17, "A\\B", "A@"):
        with pytest.raises(AllowError):
            parse_rule(bad, fake_resolve)


def test_hostile_text_never_becomes_a_path() -> None:
    s = InstanceSummary(path="", sop_instance_uid="../../etc/passwd", sop_class_uid="1.2",
                        study_instance_uid="/abs", series_instance_uid="1.2\x1b[2J", modality="../RT\nPLAN",
                        study_date="2024/01/01")
    folder, name = relative_folder(s), instance_name(s)
    for part in [*folder.split("/"), name]:
        assert part not in ("", ".", "..") and "\\" not in part and part.isprintable()
    assert folder.count("/") == 1 and "/" not in name


def stage_file(filer: Filer, source: str, pid: str, uid: str | None = None) -> tuple[Disposition, str]:
    ds = dcmread(source)
    ds.PatientID = pid
    if uid:
        ds.SOPInstanceUID = uid
    from pynetdicom.dsutils import encode

    data = encode(ds, False, True)
    assert data is not None
    ts = "1.2.840.10008.1.2.1"
    staged = filer.stage(file_meta(str(ds.SOPClassUID), str(ds.SOPInstanceUID), ts, "T"), ts)
    staged.write(data)
    staged.close()
    filed = filer.file(staged, str(ds.SOPInstanceUID))
    return filed.disposition, filed.path


def test_patients_never_share_a_folder(tmp_path: Path) -> None:
    src = get_testdata_file("rtplan.dcm")
    assert src is not None
    (tmp_path / "A_B").mkdir()  # a folder someone else made, no marker
    filer = Filer(tmp_path)
    filer.start()
    d1, p1 = stage_file(filer, src, "A_B", "1.2.3.1")
    d2, p2 = stage_file(filer, src, "A B", "1.2.3.2")
    d3, p3 = stage_file(filer, src, "A_B", "1.2.3.3")
    assert d1 is d2 is d3 is Disposition.STORED
    top = {Path(p).relative_to(tmp_path).parts[0] for p in (p1, p2, p3)}
    assert len(top) == 2 and "A_B" not in top  # the foreign folder is left alone
    for name in top:
        assert (tmp_path / name / MARKER).read_text() in ("A_B", "A B")
    assert Path(p1).parent.parent.parent == Path(p3).parent.parent.parent


def test_announced_uid_must_match(tmp_path: Path) -> None:
    src = get_testdata_file("rtplan.dcm")
    assert src is not None
    filer = Filer(tmp_path)
    filer.start()
    ds = dcmread(src)
    ts = "1.2.840.10008.1.2.1"
    from pynetdicom.dsutils import encode

    staged = filer.stage(file_meta(str(ds.SOPClassUID), "9.9.9", ts, "T"), ts)
    staged.write(encode(ds, False, True) or b"")
    staged.close()
    filed = filer.file(staged, "9.9.9")
    assert filed.disposition is Disposition.FAILED and "SOP Instance UID differs from the C-STORE request" in filed.reason
    assert not list(tmp_path.rglob("*.dcm")) and not list(filer.incoming.iterdir())


def test_duplicates(tmp_path: Path) -> None:
    src = get_testdata_file("rtplan.dcm")
    assert src is not None
    filer = Filer(tmp_path)
    filer.start()
    d1, p1 = stage_file(filer, src, "A", "1.2.3.9")
    d2, p2 = stage_file(filer, src, "A", "1.2.3.9")
    assert (d1, d2) == (Disposition.STORED, Disposition.IDENTICAL) and p1 == p2
    d3, p3 = stage_file(filer, src, "B", "1.2.3.9")  # same UID, other patient: reported, own folder
    assert d3 is Disposition.DIFFERENT and Path(p3).relative_to(tmp_path).parts[0] == "B"
    assert len(list(tmp_path.rglob("*.dcm"))) == 2 and not list(filer.incoming.iterdir())


@pytest.mark.parametrize("implicit, little, ts", [(True, True, "1.2.840.10008.1.2"),
                                                  (False, True, "1.2.840.10008.1.2.1"),
                                                  (False, False, "1.2.840.10008.1.2.2")])
def test_own_sop_instance_uid_in_every_uncompressed_encoding(implicit: bool, little: bool, ts: str) -> None:
    from pynetdicom.dsutils import encode

    from dicomtools.core.net.receive.filing import own_sop_instance_uid

    src = get_testdata_file("rtplan.dcm")
    assert src is not None
    ds = dcmread(src)
    data = encode(ds, implicit, little)
    assert data is not None
    assert own_sop_instance_uid(data, ts) == str(ds.SOPInstanceUID)
    del ds.SOPInstanceUID
    assert own_sop_instance_uid(encode(ds, implicit, little) or b"", ts) == ""
    assert own_sop_instance_uid(data[:20], ts) is None  # too short to tell: pydicom decides
    assert own_sop_instance_uid(data, "1.2.840.10008.1.2.1.99") is None  # deflated
