"""PHI safety of the logs: with --anonymize, no record at INFO or above names the patient."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dicomtools.core.cli.main import main
from tests.net import peers
from tests.net.conftest import OUR_AE, write_config

pytestmark = pytest.mark.net

PID, NAME = "PHANTOM-001", "PHANTOM^ALPHA"
IDENTIFIERS = (PID, NAME, "ALPHA", NAME.replace("^", " "))


def _leaks(records: list[logging.LogRecord]) -> list[str]:
    out = []
    for r in records:
        if r.levelno < logging.INFO:
            continue
        text = r.getMessage()
        if any(ident in text for ident in IDENTIFIERS):
            out.append(f"{r.name} {r.levelname}: {text}")
    return out


@pytest.mark.parametrize("method", [[], ["--useGet"]])
def test_retrieve_anonymize_logs_no_identity(
    orthanc_loaded: peers.Orthanc, tmp_path: Path, scp_port: int, caplog: pytest.LogCaptureFixture, method: list[str]
) -> None:
    config = write_config(tmp_path / "c.toml", {"orthanc": (orthanc_loaded.aet, orthanc_loaded.port)}, scp_port)
    config.write_text(config.read_text() + '\n[logging]\nlevel = "INFO"\n')
    caplog.set_level(logging.INFO)
    logging.getLogger("pynetdicom").setLevel(logging.INFO)
    rc = main(["retrieve", "--config", str(config), "--patientId", PID, "--path", str(tmp_path / "out"), "--hostName", peers.HOST,
               "--hostPort", str(orthanc_loaded.port), "--calledAet", orthanc_loaded.aet, "--callingAet", OUR_AE,
               "--scpPort", str(scp_port), "--anonymize", "--newPatientId", "ANON-9", "--newPatientName", "ANON^NINE",
               *method])
    assert rc == 0
    if not method:  # C-MOVE runs our SCP, which logs at INFO: the check is not vacuous
        assert any(r.levelno >= logging.INFO for r in caplog.records)
    assert _leaks(caplog.records) == []


def test_anonymize_command_logs_no_identity(phantom_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rc = main(["anonymize", "--path", str(phantom_root), "--out", str(tmp_path / "anon"),
               "--newPatientId", "ANON-9", "--newPatientName", "ANON^NINE", "--verify"])
    assert rc == 0
    assert _leaks(caplog.records) == []
