"""Real-peer fixtures: Orthanc and dcmtk on 127.0.0.1, free ports, TCP_NODELAY=1, stopped by PID.

A missing binary fails the test (``PeerMissing``), it never skips: CI installs
dcmtk and orthanc, and a network suite that silently skips proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.archive.scan import scan
from dicomtools.core.phantom import PhantomManifest, generate
from dicomtools.core.tree import PatientTree, build_forest
from tests.net import peers

OUR_AE = "DICOMTOOLS"


@dataclass
class Archive:
    root: Path
    manifest: PhantomManifest
    instances: list[InstanceSummary]
    forest: list[PatientTree]

    def patient(self, pid: str) -> PatientTree:
        return next(t for t in self.forest if t.patient_id == pid)

    def sendable(self) -> list[InstanceSummary]:
        """Every readable, complete instance (what a PACS copy should hold)."""
        return [i for i in self.instances if not i.truncated and i.patient_id]


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    root = tmp_path_factory.mktemp("phantom")
    manifest = generate(root, patients=2, seed=0)
    result = scan(str(root), workers=1)
    return Archive(root, manifest, result.instances, build_forest(result.instances, {"RDS": "HALCYON"}))


@pytest.fixture(scope="session")
def scp_port() -> int:
    """The port our Storage SCP uses for C-MOVE in this session (Orthanc knows it)."""
    return peers.free_port()


def write_config(path: Path, nodes: dict[str, tuple[str, int]], scp_port: int, **local: object) -> Path:
    lines = ["[local]", f'ae_title = "{OUR_AE}"', f"scp_port = {scp_port}"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in local.items()]
    for name, (aet, port) in nodes.items():
        lines += ["", f"[nodes.{name}]", 'host = "127.0.0.1"', f"port = {port}", f'called_ae = "{aet}"',
                  "dimse_timeout = 30.0", "network_timeout = 30.0"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def orthanc_loaded(tmp_path_factory: pytest.TempPathFactory, archive: Archive, scp_port: int) -> Iterator[peers.Orthanc]:
    """Orthanc holding the whole phantom archive, uploaded over REST (not through our store)."""
    work = tmp_path_factory.mktemp("orthanc-loaded")
    peer = peers.Orthanc.start(work, modalities={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        peer.upload([Path(i.path) for i in archive.sendable()])
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="module")
def orthanc_empty(tmp_path_factory: pytest.TempPathFactory, scp_port: int) -> Iterator[peers.Orthanc]:
    work = tmp_path_factory.mktemp("orthanc-empty")
    peer = peers.Orthanc.start(work, modalities={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def orthanc(orthanc_empty: peers.Orthanc) -> peers.Orthanc:
    """The module's Orthanc, emptied for this test."""
    orthanc_empty.clear()
    return orthanc_empty


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[peers.StoreSCP]:
    peer = peers.StoreSCP.start(tmp_path / "storescp")
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def config_for(tmp_path: Path, scp_port: int):  # type: ignore[no-untyped-def]
    def make(**nodes: tuple[str, int]) -> Path:
        return write_config(tmp_path / "config.toml", nodes, scp_port)

    return make
