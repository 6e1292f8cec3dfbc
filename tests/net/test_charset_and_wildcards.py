"""Non-ASCII identifiers and IDs holding wildcard characters, against dcmqrscp and Orthanc.

Before: C-FIND and C-MOVE identifiers carried no Specific Character Set, so
``Jörg-1`` matched nothing on a UTF-8 dcmqrscp and a name search sent ``ř``
as ``?`` (a wildcard); an ID with ``*`` or ``?`` was refused outright.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.cli.main import main
from dicomtools.core.config import NodeConfig
from dicomtools.core.net.session import find_patients
from dicomtools.core.phantom import write_ct_series
from tests.net import peers
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

UTF8_ID = "Jörg-1"
UTF8_NAME = "Dvořák^Jörg"
WILD_IDS = ["AB*1", "AB?1", "ABX1"]  # ABX1 matches the first two read as wildcards


def utf8_series(root: Path, pid: str, name: str, count: int = 3, seed: int = 0) -> list[Path]:
    files = write_ct_series(root, count, patient_id="PLACEHOLDER", seed=seed)
    for p in files:
        ds = dcmread(p)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientID, ds.PatientName = pid, name
        ds.save_as(p)
    return files


@pytest.fixture(scope="module")
def qr_utf8(tmp_path_factory: pytest.TempPathFactory, scp_port: int) -> Iterator[tuple[peers.Dcmqrscp, set[str]]]:
    root = tmp_path_factory.mktemp("utf8")
    peer = peers.Dcmqrscp.start(root / "qr", hosts={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        files = utf8_series(root / "src", UTF8_ID, UTF8_NAME)
        files += utf8_series(root / "other", "Jorg-1", "Dvorak^Jorg", 2, seed=3)  # the ASCII look-alike
        r = peers.storescu(peer.port, peer.aet, files, extra=["-R"])
        assert r.returncode == 0, r.stderr[-500:]
        yield peer, {str(dcmread(p).SOPInstanceUID) for p in files[:3]}
    finally:
        peer.stop()


def saved_uids(out: Path) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in out.iterdir() if p.suffix == ".dcm"}


def test_utf8_patient_id_from_dcmqrscp(qr_utf8: tuple[peers.Dcmqrscp, set[str]], tmp_path: Path, scp_port: int,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    peer, uids = qr_utf8
    out = tmp_path / "out"
    rc = main(["retrieve", "--patientId", UTF8_ID, "--path", str(out), "--hostName", peers.HOST, "--hostPort",
               str(peer.port), "--calledAet", peer.aet, "--callingAet", OUR_AE, "--scpPort", str(scp_port)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err + cap.out
    assert saved_uids(out) == uids
    assert {str(dcmread(p).PatientName) for p in out.iterdir()} == {UTF8_NAME}


def test_name_search_sends_the_letter_not_a_wildcard(qr_utf8: tuple[peers.Dcmqrscp, set[str]]) -> None:
    peer, _ = qr_utf8
    node = NodeConfig(port=peer.port, called_ae=peer.aet, calling_ae=OUR_AE)
    rows = find_patients(node, patient_name="Dvořák*")
    assert [(r.patient_id, r.patient_name) for r in rows] == [(UTF8_ID, UTF8_NAME)]


@pytest.fixture(scope="module")
def orthanc_wild(tmp_path_factory: pytest.TempPathFactory, scp_port: int) -> Iterator[tuple[peers.Orthanc, dict[str, set[str]]]]:
    root = tmp_path_factory.mktemp("wild")
    peer = peers.Orthanc.start(root / "orthanc", modalities={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        uids: dict[str, set[str]] = {}
        for n, pid in enumerate(WILD_IDS):
            files = write_ct_series(root / f"p{n}", 2, patient_id=pid, seed=10 + n)
            peer.upload(files)
            uids[pid] = {str(dcmread(p).SOPInstanceUID) for p in files}
        yield peer, uids
    finally:
        peer.stop()


@pytest.mark.parametrize("pid", WILD_IDS)
@pytest.mark.parametrize("method", ["move", "get"])
def test_ids_with_wildcard_characters_are_matched_exactly(orthanc_wild: tuple[peers.Orthanc, dict[str, set[str]]],
                                                          tmp_path: Path, scp_port: int, pid: str, method: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    peer, uids = orthanc_wild
    out = tmp_path / "out"
    extra = ["--useGet"] if method == "get" else ["--scpPort", str(scp_port)]
    rc = main(["retrieve", "--patientId", pid, "--path", str(out), "--hostName", peers.HOST, "--hostPort",
               str(peer.port), "--calledAet", peer.aet, "--callingAet", OUR_AE, *extra])
    cap = capsys.readouterr()
    assert rc == 0, cap.err + cap.out
    assert saved_uids(out) == uids[pid]
