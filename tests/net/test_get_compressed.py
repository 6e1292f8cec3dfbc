"""C-GET of what a PACS really holds: compressed syntaxes and SOP classes outside the RT list.

Before: one context per class from a fixed list, so Orthanc had to transcode
(it cannot for JPEG 2000 and gave up on the rest of the study) and a
Presentation State or Key Object Selection failed the whole request. Now every
instance arrives in the syntax the node holds it in, and a class the node
refuses is named while the rest is saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from dicomtools.core.cli.main import main
from dicomtools.core.net.retrieve_get import GET_TRANSFER_SYNTAXES, class_groups
from dicomtools.core.phantom import write_ct_series
from tests.net import hostile, peers
from tests.net.compressed import GSPS, Study, make_study
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

PID = "COMPRESSED-1"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return make_study(tmp_path_factory.mktemp("compressed"), PID)


@pytest.fixture(scope="module")
def orthanc_compressed(tmp_path_factory: pytest.TempPathFactory, study: Study) -> Iterator[peers.Orthanc]:
    peer = peers.Orthanc.start(tmp_path_factory.mktemp("orthanc-compressed"))
    try:
        peer.upload(study.files)  # over REST: Orthanc keeps each file as it is
        yield peer
    finally:
        peer.stop()


def cli(port: int, aet: str, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = main(["retrieve", "--patientId", PID, "--path", str(out), "--hostName", peers.HOST, "--hostPort", str(port),
               "--calledAet", aet, "--callingAet", OUR_AE, *extra])
    cap = capsys.readouterr()
    return rc, cap.err + cap.out


def held(out: Path) -> dict[str, str]:
    return {str(ds.SOPInstanceUID): str(ds.file_meta.TransferSyntaxUID)
            for ds in (dcmread(p, stop_before_pixels=True) for p in out.iterdir() if p.suffix == ".dcm")}


def test_c_get_brings_every_syntax_and_class_as_held(orthanc_compressed: peers.Orthanc, study: Study,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc, text = cli(orthanc_compressed.port, orthanc_compressed.aet, out, capsys, "--useGet")
    assert rc == 0, text
    assert held(out) == study.syntax  # all 13, none transcoded
    for p in out.iterdir():
        ds = dcmread(p)
        if "PixelData" in ds and ds.SOPClassUID != GSPS:
            assert ds.pixel_array.size > 0  # complete and decodable


def test_refused_class_is_named_and_the_rest_saved(study: Study, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    datasets = hostile.load(study.files)
    peer = hostile.QRPeer(datasets, {}, get_refuses={GSPS}).start()
    try:
        rc, text = cli(peer.port, peer.aet, tmp_path / "out", capsys, "--useGet")
    finally:
        peer.stop()
    assert rc == 1, text
    assert "Grayscale Softcopy Presentation State Storage" in text and GSPS in text
    assert "1 instance not retrieved" in text
    want = {u for u, c in study.sop_class.items() if c != GSPS}
    assert set(held(tmp_path / "out")) == want


def test_classes_from_sop_classes_in_study(study: Study, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A node that lists no SOP Class UID per instance but SOP Classes in Study: those are proposed."""
    peer = hostile.QRPeer(hostile.load(study.files), {}, get_refuses={GSPS}, image_classes=False).start()
    try:
        rc, text = cli(peer.port, peer.aet, tmp_path / "out", capsys, "--useGet")
    finally:
        peer.stop()
    assert rc == 1, text
    assert "SOP Classes in Study were proposed" in text
    assert f"refused SOP class Grayscale Softcopy Presentation State Storage ({GSPS})" in text
    assert "C-FIND listed 13 instances, 12 arrived (1 missing" in text
    want = {u: ts for u, ts in study.syntax.items() if study.sop_class[u] != GSPS}
    assert held(tmp_path / "out") == want  # every other instance, as held


def test_c_get_from_a_node_taking_one_association(study: Study, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """C-FIND and C-GET share the first association: a node that takes one at a time still works."""
    peer = hostile.QRPeer(hostile.load(study.files), {}, max_associations=1).start()
    try:
        rc, text = cli(peer.port, peer.aet, tmp_path / "out", capsys, "--useGet", "--planId", "NOPE")
        assert "no plan with label" in text  # selective: C-FIND between the fetches, same association
        rc, text = cli(peer.port, peer.aet, tmp_path / "all", capsys, "--useGet")
    finally:
        peer.stop()
    assert rc == 0, text
    assert held(tmp_path / "all") == study.syntax


def test_many_classes_are_split_over_associations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """14 classes x 13 syntaxes do not fit in 128 contexts: two associations, everything saved."""
    base = hostile.load(write_ct_series(tmp_path / "src", 14, patient_id=PID))
    classes = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.7",
               "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.1",
               "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.12.1",
               "1.2.840.10008.5.1.4.1.1.481.1", "1.2.840.10008.5.1.4.1.1.77.1.4", "1.2.840.10008.5.1.4.1.1.13.1.3",
               "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.481.2"]
    for ds, cls in zip(base, classes, strict=True):
        ds.SOPClassUID = cls
        ds.file_meta.MediaStorageSOPClassUID = cls
    assert len(class_groups(classes, len(GET_TRANSFER_SYNTAXES), 4)) == 2
    peer = hostile.QRPeer(base, {}).start()
    try:
        rc, text = cli(peer.port, peer.aet, tmp_path / "out", capsys, "--useGet")
    finally:
        peer.stop()
    assert rc == 0, text
    assert set(held(tmp_path / "out")) == {str(d.SOPInstanceUID) for d in base}


@pytest.mark.parametrize("method", ["get", "move"])
def test_patient_root_find_with_study_root_retrieve(study: Study, tmp_path: Path, method: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A node with Patient Root FIND but only Study Root GET/MOVE: the retrieve falls back to Study Root."""
    datasets = hostile.load(write_ct_series(tmp_path / "src", 3, patient_id=PID))
    scp_port = hostile.free_port()
    peer = hostile.QRPeer(datasets, {OUR_AE: (hostile.HOST, scp_port)}, models=[
        PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelGet,
        StudyRootQueryRetrieveInformationModelMove]).start()
    try:
        extra = ["--useGet"] if method == "get" else ["--scpPort", str(scp_port)]
        rc, text = cli(peer.port, peer.aet, tmp_path / "out", capsys, *extra)
    finally:
        peer.stop()
    assert rc == 0, text
    assert set(held(tmp_path / "out")) == {str(d.SOPInstanceUID) for d in datasets}


@pytest.mark.parametrize("method", ["get", "move"])
def test_node_without_the_retrieve_method_says_so(study: Study, tmp_path: Path, method: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    datasets = hostile.load(study.files[:1])
    models = [PatientRootQueryRetrieveInformationModelFind]
    models.append(StudyRootQueryRetrieveInformationModelMove if method == "get"
                  else StudyRootQueryRetrieveInformationModelGet)
    peer = hostile.QRPeer(datasets, {}, models=models).start()
    try:
        extra = ["--useGet"] if method == "get" else ["--scpPort", str(hostile.free_port())]
        rc, text = cli(peer.port, peer.aet, tmp_path / "out", capsys, *extra)
    finally:
        peer.stop()
    assert rc == 1
    other = "C-MOVE" if method == "get" else "C-GET"
    assert f"does not support C-{method.upper()}" in text and f"use {other}" in text, text
    assert "Traceback" not in text and "ValueError" not in text
