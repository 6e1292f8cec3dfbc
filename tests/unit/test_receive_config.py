"""The [receive] preset section: strict like the others, round-trips, feeds the service settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomtools.core.config import ConfigError, load_config, save_config
from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.receive.allow import AllowError
from dicomtools.core.net.receive.setup import settings_from

GOOD = """
[local]
ae_title = "LOCALAE"
[receive]
port = 11200
folder = "/data/in"
allow = ["STORESCU@127.0.0.1", "ARIA"]
nodes = ["pacs"]
[nodes.pacs]
host = "127.0.0.1"
port = 4242
called_ae = "PACS"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_receive_section_round_trip_and_settings(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.receive.port == 11200 and cfg.receive.nodes == ["pacs"] and cfg.receive.bind == "127.0.0.1"
    again = load_config(save_config(cfg, tmp_path / "copy.toml"))
    assert again.receive == cfg.receive
    s = settings_from(cfg, allow=["EXTRA"])
    assert s.ae_title == "LOCALAE" and s.port == 11200 and str(s.path) == "/data/in"
    assert str(s.allow) == "STORESCU@127.0.0.1, ARIA, EXTRA, PACS@127.0.0.1"
    assert s.allow.refusal("PACS", "127.0.0.1") is None and s.allow.refusal("PACS", "10.1.1.1") is not None
    assert s.ssl_context is None
    assert settings_from(cfg, path="/x", port=0, ae_title="OTHER").ae_title == "OTHER"


@pytest.mark.parametrize("extra, message", [
    ("[receive]\nprot = 1\n", "unknown key 'receive.prot'"),
    ("[receive]\nnodes = [\"nope\"]\n", "key 'receive.nodes': no node [nodes.nope]"),
    ("[receive]\nport = 0\n", "key 'receive.port'"),
    ("[receive]\nae_title = \"WAY-TOO-LONG-AE-TITLE\"\n", "key 'receive.ae_title'"),
    ("[receive.tls]\nenabled = \"yes\"\n", "key 'receive.tls.enabled'"),
])
def test_bad_receive_section(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(write(tmp_path, extra))


def test_settings_errors_are_one_line(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    cfg.receive.folder = ""
    with pytest.raises(ConfigError, match="give --path DIR"):
        settings_from(cfg)
    with pytest.raises(AllowError, match="does not resolve"):
        settings_from(cfg, path="/x", allow=["A@no-such-host.invalid"])
    with pytest.raises(NetError, match="no certificate for our service"):
        settings_from(cfg, path="/x", use_tls=True)
    cfg.receive.tls.enabled = True
    cfg.receive.tls.cert = str(tmp_path / "missing.pem")
    with pytest.raises(NetError, match="TLS setup"):
        settings_from(cfg, path="/x")
