"""``retrieve`` over the lean Upper Layer: C-GET and C-MOVE from Orthanc load neither pydicom,
pynetdicom nor numpy (an import assertion, not a timing one), and what arrives is saved byte for
byte whether it was held whole before the answer or written as it streamed in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from dicomtools.core.cli.main import main
from dicomtools.core.net import arrival
from dicomtools.core.phantom import write_ct_series
from tests.net import peers
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net

PID = "LEAN-RET"
COUNT = 6

PROBE = """
import json, sys
from dicomtools.core.cli.main import main
code = main(sys.argv[1:])
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[peers.Orthanc, int, list[Path]]]:
    work = tmp_path_factory.mktemp("lean-retrieve")
    files = write_ct_series(work / "src", COUNT, patient_id=PID)
    scp_port = peers.free_port()
    orthanc = peers.Orthanc.start(work / "orthanc", modalities={"dicomtools": (OUR_AE, peers.HOST, scp_port)})
    try:
        orthanc.upload(files)
        yield orthanc, scp_port, files
    finally:
        orthanc.stop()


def _argv(orthanc: peers.Orthanc, scp_port: int, out: Path, method: str) -> list[str]:
    how = ["--useGet"] if method == "get" else ["--scpPort", str(scp_port)]
    return ["retrieve", "--patientId", PID, "--path", str(out), "--force", "--hostName", peers.HOST,
            "--hostPort", str(orthanc.port), "--calledAet", orthanc.aet, "--callingAet", OUR_AE, *how]


def _same_instances(out: Path, files: list[Path]) -> None:
    saved = {str(dcmread(p).SOPInstanceUID): p for p in out.glob("CT.*.dcm")}
    assert len(saved) == len(files)
    for f in files:
        sent = dcmread(f)
        got = dcmread(saved[str(sent.SOPInstanceUID)])
        assert got == sent  # every element, pixel data included
        assert got.file_meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_loads_neither_pydicom_pynetdicom_nor_numpy(node: tuple[peers.Orthanc, int, list[Path]],
                                                             tmp_path: Path, method: str) -> None:
    orthanc, scp_port, files = node
    out = tmp_path / "out"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               TCP_NODELAY="1")
    done = subprocess.run([sys.executable, "-c", PROBE, *_argv(orthanc, scp_port, out, method)],
                          capture_output=True, text=True, env=env, timeout=120)
    line = [x for x in done.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, done.stderr
    result = json.loads(line[-1][len("PROBE "):])
    assert result["code"] == 0, done.stdout + done.stderr
    assert f"{COUNT} instances saved" in done.stdout
    heavy = sorted({m.split(".")[0] for m in result["modules"]} & {"pydicom", "pynetdicom", "numpy"})
    assert heavy == []
    _same_instances(out, files)
    assert not list(out.glob(".dicomtools-retrieve-*"))


@pytest.mark.parametrize("method", ["get", "move"])
@pytest.mark.parametrize("hold_max", [arrival.HOLD_MAX, 100])
def test_held_and_streamed_arrivals_are_saved_as_sent(node: tuple[peers.Orthanc, int, list[Path]], tmp_path: Path,
                                                      method: str, hold_max: int, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``hold_max`` 100: every data set is bigger, so each is written as it arrives, before the answer."""
    orthanc, scp_port, files = node
    monkeypatch.setattr(arrival, "HOLD_MAX", hold_max)
    out = tmp_path / "out"
    assert main(_argv(orthanc, scp_port, out, method)) == 0, capsys.readouterr()
    assert f"{COUNT} instances saved" in capsys.readouterr().out
    _same_instances(out, files)


@pytest.mark.parametrize("method", ["get", "move"])
def test_a_real_process_writes_everything_before_its_quick_exit(node: tuple[peers.Orthanc, int, list[Path]],
                                                                tmp_path: Path, method: str) -> None:
    """retrieve ends its process without interpreter tear-down: the tree and summary are whole on stdout,
    every file saved as sent, the temporary folder and its lock gone."""
    orthanc, scp_port, files = node
    out = tmp_path / "out"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               TCP_NODELAY="1")
    done = subprocess.run([sys.executable, "-m", "dicomtools.core", *_argv(orthanc, scp_port, out, method),
                           "--showTree"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Patient") and PID in lines[0], done.stdout
    assert f"{COUNT} instances saved" in lines[-1] and done.stdout.endswith("whole patient)\n")
    _same_instances(out, files)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
