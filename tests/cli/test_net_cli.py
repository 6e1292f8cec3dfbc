"""Network commands at the command-line level: options, presets, messages, exit codes.

Peers here are in-process (our own Storage SCP answers C-ECHO); the real
Orthanc/dcmtk runs are in tests/net.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dicomtools.core.cli.main import build_parser, main
from dicomtools.core.net.storescp import StorageSCP


def test_config_init_show_add_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "dt" / "config.toml"
    assert main(["config", "--config", str(cfg), "init"]) == 0
    assert "[local]" in cfg.read_text() and "# [nodes.aria]" in cfg.read_text()
    assert main(["config", "init", "--config", str(cfg)]) == 2  # exists already
    assert "already exists" in capsys.readouterr().err
    assert main(["config", "add-node", "aria", "--config", str(cfg), "--host-name", "127.0.0.1", "--hostPort", "5678",
                 "--calledAet", "VMSDBD", "--machines", "TB1", "HALCYON", "--retrieveMethod", "get"]) == 0
    data = tomllib.loads(cfg.read_text())
    assert data["nodes"]["aria"] == {
        "host": "127.0.0.1", "port": 5678, "called_ae": "VMSDBD", "calling_ae": "", "retrieve_method": "get",
        "connect_timeout": 10.0, "acse_timeout": 30.0, "dimse_timeout": 120.0, "network_timeout": 120.0,
        "max_pdu": 0, "machines": ["TB1", "HALCYON"]}
    assert (tmp_path / "dt" / "config.toml.bak").exists()  # the commented example, kept
    assert "# [nodes.aria]" in (tmp_path / "dt" / "config.toml.bak").read_text()
    assert main(["config", "add-node", "aria", "--config", str(cfg), "--host", "h", "--port", "1",
                 "--calledAet", "X"]) == 1
    assert "exists (use --force" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["config", "--config", str(cfg), "show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {cfg}\n") and 'called_ae = "VMSDBD"' in out


def test_default_config_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["config", "show", "--path-only"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "dicomtools" / "config.toml")


def test_invalid_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[nodes.aria]\nhost = "x"\nport = 104\ncalled_ae = "A"\nhots = "typo"\n')
    assert main(["echo", "--config", str(cfg), "--node", "aria"]) == 2
    err = capsys.readouterr().err
    assert err == f"dicomtools echo: {cfg}: unknown key 'nodes.aria.hots'\n"


def test_unknown_node_lists_known(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[nodes.aria]\nhost = "x"\nport = 104\ncalled_ae = "A"\n')
    assert main(["store", "--path", str(tmp_path), "--config", str(cfg), "--node", "pacs"]) == 2
    assert "no node [nodes.pacs] (known: aria)" in capsys.readouterr().err


def test_missing_node_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["echo", "--hostName", "127.0.0.1"]) == 2
    assert "give --node NAME" in (err := capsys.readouterr().err) and "--hostPort, --calledAet" in err


@pytest.mark.parametrize("spelling", ["camel", "kebab"])
def test_seed_option_spellings(spelling: str) -> None:
    camel = ["--path", "p", "--searchPattern", "*.dcm", "--statusFileName", "s.txt", "--machineMapping", "A=B", "C=D",
             "--defaultMachines", "RDS=HALCYON", "--hostName", "h", "--hostPort", "104", "--callingAet", "ME",
             "--calledAet", "YOU", "--showMessages", "false"]
    kebab = ["--path", "p", "--search-pattern", "*.dcm", "--status-file-name", "s.txt", "--machine-mapping", "A=B",
             "C=D", "--default-machines", "RDS=HALCYON", "--host-name", "h", "--host-port", "104",
             "--calling-aet", "ME", "--called-aet", "YOU", "--show-messages", "false"]
    args = build_parser().parse_args(["store", *(camel if spelling == "camel" else kebab)])
    assert (args.searchPattern, args.statusFileName, args.hostPort, args.callingAet, args.calledAet) == (
        "*.dcm", "s.txt", 104, "ME", "YOU")
    assert args.machineMapping == ["A=B", "C=D"] and args.showMessages is False
    r = build_parser().parse_args(["retrieve", "--patient-id", "P", "--path", "o", "--plan-id", "X", "--only-approved-plans",
                                   "--use-get", "--scp-port", "11112", "--new-patient-id", "N", "--use-tls"])
    assert (r.patientId, r.planId, r.onlyApprovedPlans, r.useGet, r.scpPort, r.newPatientId, r.useTls) == (
        "P", ["X"], True, True, 11112, "N", True)


def test_echo_our_scp_with_node_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    with StorageSCP("ECHOSCP", tmp_path / "in") as scp:
        cfg.write_text('[local]\nae_title = "LOCALAE"\n[nodes.scp]\nhost = "127.0.0.1"\nport = 1\n'
                       'called_ae = "ECHOSCP"\n')
        assert main(["echo", "--config", str(cfg), "--node", "scp", "--hostPort", str(scp.port)]) == 0
    assert f"C-ECHO ECHOSCP@127.0.0.1:{scp.port} as LOCALAE: success" in capsys.readouterr().out


def test_store_dry_run_prints_order(phantom_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "--path", str(phantom_root), "--dryRun", "--hostName", "127.0.0.1", "--hostPort", "1",
                 "--calledAet", "X", "--showMessages", "false"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cats = [line.split()[1] for line in lines[:-1]]
    first_plan = cats.index("plan")
    assert cats[0] == "image" and "struct" in cats[:first_plan] and cats[first_plan + 1] in ("cbct", "dose", "plan")
    assert lines[-1].endswith("left out")


def test_store_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "--path", str(tmp_path / "nope"), "--hostName", "h", "--hostPort", "1",
                 "--calledAet", "X"]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_retrieve_refuses_non_empty_path_without_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "x").write_text("x")
    assert main(["retrieve", "--patientId", "P", "--path", str(out), "--hostName", "127.0.0.1", "--hostPort", "1",
                 "--calledAet", "X"]) == 1
    assert "exists and is not empty (use --force to write into it)" in capsys.readouterr().err
