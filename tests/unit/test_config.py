"""The TOML preset: typed load, one-line errors naming file and key, atomic save with .bak."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dicomtools.core.config import (
    EXAMPLE,
    Config,
    ConfigError,
    NodeConfig,
    TlsConfig,
    config_from_dict,
    default_config_path,
    load_config,
    resolve_node,
    save_config,
    write_example,
)

FULL = """
[local]
ae_title = "RTPHYS"
scp_port = 11112
scp_bind = "127.0.0.1"

[logging]
level = "info"

[machines]
mapping = { TrueBeam1 = "TB1" }
defaults = { RDS = "HALCYON" }

[anonymize]
profile = "basic"
options = ["CleanDesc"]

[nodes.aria]
host = "aria.example.org"
port = 57347
called_ae = "VMSDBD"
calling_ae = "RTPHYS2"
retrieve_method = "get"
connect_timeout = 5
machines = ["TB1", "HALCYON"]

[nodes.aria.tls]
enabled = true
ca = "/etc/ca.pem"
"""


def test_full_file_is_typed(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(FULL)
    cfg = load_config(p)
    assert cfg.path == p
    assert (cfg.local.ae_title, cfg.local.scp_port, cfg.local.scp_bind) == ("RTPHYS", 11112, "127.0.0.1")
    assert cfg.logging.level == "INFO"
    assert cfg.machines.mapping == {"TrueBeam1": "TB1"} and cfg.machines.defaults == {"RDS": "HALCYON"}
    aria = cfg.nodes["aria"]
    assert isinstance(aria.connect_timeout, float) and aria.connect_timeout == 5.0
    assert aria.tls == TlsConfig(enabled=True, ca="/etc/ca.pem")
    assert aria.machines == ["TB1", "HALCYON"] and aria.retrieve_method == "get"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[local]\nae_titel = 'X'\n", "unknown key 'local.ae_titel'"),
        ("[nodes.a]\nhost='h'\nport=1\ncalled_ae='A'\n[nodes.a.tls]\nenabeld = true\n", "unknown key 'nodes.a.tls.enabeld'"),
        ("[extra]\n", "unknown key 'extra'"),
        ("[local]\nscp_port = '104'\n", "key 'local.scp_port': expected an integer"),
        ("[local]\nscp_port = 70000\n", "key 'local.scp_port': port 70000 out of range"),
        ("[nodes.a]\nhost='h'\nport=1\ncalled_ae='WAY-TOO-LONG-AE-TITLE'\n", "key 'nodes.a.called_ae': AE title"),
        ("[nodes.a]\nhost='h'\nport=1\ncalled_ae='A'\nretrieve_method='ftp'\n", "key 'nodes.a.retrieve_method'"),
        ("[nodes.a]\nmachines = 'TB1'\n", "key 'nodes.a.machines': expected a list of strings"),
        ("[machines]\nmapping = { A = 1 }\n", "key 'machines.mapping': expected a table of strings"),
        ("[logging]\nlevel = 'LOUD'\n", "key 'logging.level'"),
        ("[nodes]\na = 1\n", "key 'nodes.a': expected a table"),
        ("not toml at all [", "invalid TOML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    line = str(err.value)
    assert line.startswith(f"{p}: ") and message in line and "\n" not in line


def test_missing_default_file_gives_defaults_explicit_missing_is_an_error(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_path() == tmp_path / "xdg" / "dicomtools" / "config.toml"
    cfg = load_config()
    assert cfg.nodes == {} and cfg.local.scp_port == 11112 and cfg.path == default_config_path()
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_save_round_trip_keeps_bak(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "c.toml"
    p.parent.mkdir()
    p.write_text(FULL)
    cfg = load_config(p)
    cfg.nodes["orthanc"] = NodeConfig(host="127.0.0.1", port=4242, called_ae="ORTHANC")
    save_config(cfg)
    assert (p.parent / "c.toml.bak").read_text() == FULL
    again = load_config(p)
    assert again == cfg and again.nodes["orthanc"].port == 4242
    assert "tls" not in tomllib.loads(p.read_text())["nodes"]["orthanc"]  # default TLS left out
    assert sorted(x.name for x in p.parent.iterdir()) == ["c.toml", "c.toml.bak"]  # no temp files left


def test_save_refuses_what_it_could_not_read_back(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(FULL)
    cfg = load_config(p)
    cfg.nodes["bad"] = NodeConfig(port=0)
    with pytest.raises(ConfigError, match="port 0 out of range"):
        save_config(cfg)
    assert p.read_text() == FULL


def test_resolve_node_overrides_and_calling_ae() -> None:
    cfg = config_from_dict(tomllib.loads(FULL))
    node = resolve_node(cfg, "aria", port=104, called_ae="OTHER")
    assert (node.host, node.port, node.called_ae, node.calling_ae) == ("aria.example.org", 104, "OTHER", "RTPHYS2")
    assert cfg.nodes["aria"].port == 57347  # the preset is not modified
    plain = resolve_node(cfg, None, host="h", port=11112, called_ae="X")
    assert plain.calling_ae == "RTPHYS"  # from [local]
    with pytest.raises(ConfigError, match=r"no node \[nodes.pacs\] \(known: aria\)"):
        resolve_node(cfg, "pacs")
    with pytest.raises(ConfigError, match="calling AE title"):
        resolve_node(cfg, "aria", calling_ae="X" * 17)


def test_example_is_valid_and_documented(tmp_path: Path) -> None:
    cfg = config_from_dict(tomllib.loads(EXAMPLE))
    assert cfg == Config(local=cfg.local) and cfg.local.scp_port == 11112
    p = write_example(tmp_path / "c.toml")
    assert p.read_text() == EXAMPLE
    with pytest.raises(ConfigError, match="already exists"):
        write_example(p)
    commented = [line.lstrip("# ").split(" =")[0] for line in EXAMPLE.splitlines() if line.startswith("# ") and " = " in line]
    assert {f for f in NodeConfig.field_types() if f != "tls"} <= set(commented)
