"""``echo`` against Orthanc and dcmtk, and the messages when it cannot work."""

from __future__ import annotations

import pytest

from dicomtools.core.cli.main import main
from tests.net import peers
from tests.net.conftest import OUR_AE

pytestmark = pytest.mark.net


def test_echo_orthanc_by_node(orthanc_empty: peers.Orthanc, config_for, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(orthanc=(orthanc_empty.aet, orthanc_empty.port))
    assert main(["echo", "--config", str(cfg), "--node", "orthanc", "--count", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith(f"C-ECHO ORTHANC@127.0.0.1:{orthanc_empty.port} as {OUR_AE}: success")
    assert " ms" in out[0]


def test_echo_storescp_with_seed_options(storescp: peers.StoreSCP, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["echo", "--host-name", peers.HOST, "--host-port", str(storescp.port),
                 "--called-aet", storescp.aet, "--calling-aet", "ME"]) == 0
    assert "as ME: success" in capsys.readouterr().out


def test_option_overrides_node(orthanc_empty: peers.Orthanc, config_for, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(orthanc=(orthanc_empty.aet, orthanc_empty.port))
    assert main(["echo", "--config", str(cfg), "--node", "orthanc", "--calledAet", "WRONG"]) == 1
    err = capsys.readouterr().err
    assert "association rejected by WRONG@" in err and "Called AE title not recognised" in err


def test_refused_connection(capsys: pytest.CaptureFixture[str]) -> None:
    port = peers.free_port()
    assert main(["echo", "--hostName", peers.HOST, "--hostPort", str(port), "--calledAet", "X"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"dicomtools echo: connection refused by 127.0.0.1:{port} (is the DICOM service running on that port?)")


def test_unknown_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["echo", "--hostName", "no-such-host.invalid", "--hostPort", "104", "--calledAet", "X"]) == 1
    assert "unknown host 'no-such-host.invalid'" in capsys.readouterr().err


def test_no_answer_times_out(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """A port that accepts TCP but never speaks DICOM: the ACSE timeout, in one line."""
    import socket

    srv = socket.socket()
    srv.bind((peers.HOST, 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[nodes.mute]\nhost = "127.0.0.1"\nport = {port}\ncalled_ae = "MUTE"\nacse_timeout = 0.5\n')
    try:
        assert main(["echo", "--config", str(cfg), "--node", "mute"]) == 1
    finally:
        srv.close()
    assert "no answer to the association request from MUTE@127.0.0.1" in capsys.readouterr().err
