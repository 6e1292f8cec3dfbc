"""The preset tables are plain classes now (no dataclass at start-up): they must behave as the
dataclasses did for every reader of a preset (equality, no shared mutable defaults, deep copies,
the dict written to TOML, the field types the loader checks)."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from dicomtools.core.config import (
    AnonymizeConfig,
    Config,
    NodeConfig,
    ReceiveConfig,
    TlsConfig,
    config_from_dict,
    config_to_dict,
)


def test_equality_is_by_value_and_ignores_the_path() -> None:
    assert NodeConfig(port=4242) == NodeConfig(port=4242)
    assert NodeConfig(port=4242) != NodeConfig(port=4243)
    assert NodeConfig(tls=TlsConfig(enabled=True)) != NodeConfig()
    assert NodeConfig() != TlsConfig()  # another table is never equal
    assert Config(path=Path("a.toml")) == Config(path=Path("b.toml"))
    assert Config(nodes={"x": NodeConfig()}) != Config()
    with pytest.raises(TypeError):
        hash(NodeConfig())  # mutable and compared by value: unhashable, as an eq dataclass


def test_no_shared_mutable_defaults() -> None:
    a, b = NodeConfig(), NodeConfig()
    a.machines.append("TB1")
    a.tls.enabled = True
    assert b.machines == [] and not b.tls.enabled
    r1, r2 = AnonymizeConfig(), AnonymizeConfig()
    r1.options.append("X")
    assert r2.options == ["CleanDesc", "RetainDeviceIdent"]
    c1, c2 = Config(), Config()
    c1.nodes["x"] = NodeConfig()
    c1.machines.mapping["A"] = "B"
    assert c2.nodes == {} and c2.machines.mapping == {}


def test_copies_pickles_and_repr() -> None:
    node = NodeConfig(host="pacs", port=104, machines=["TB1"], tls=TlsConfig(enabled=True, ca="ca.pem"))
    deep = copy.deepcopy(node)
    assert deep == node and deep.machines is not node.machines and deep.tls is not node.tls
    assert pickle.loads(pickle.dumps(node)) == node
    assert repr(TlsConfig()) == "TlsConfig(enabled=False, ca='', cert='', key='', check_hostname=True)"


def test_field_types_drive_the_loader() -> None:
    assert NodeConfig.field_types()["machines"] == "list[str]"
    assert NodeConfig.field_types()["tls"] == "TlsConfig"
    assert list(TlsConfig.field_types()) == ["enabled", "ca", "cert", "key", "check_hostname"]
    data = {"nodes": {"pacs": {"host": "h", "port": 11112, "called_ae": "PACS", "machines": ["TB1"],
                               "tls": {"enabled": True, "ca": "ca.pem"}}},
            "receive": {"allow": ["A@h"], "tls": {"cert": "c.pem"}}}
    cfg = config_from_dict(data)
    assert cfg.nodes["pacs"] == NodeConfig(host="h", port=11112, called_ae="PACS", machines=["TB1"],
                                           tls=TlsConfig(enabled=True, ca="ca.pem"))
    assert cfg.receive == ReceiveConfig(allow=["A@h"], tls=TlsConfig(cert="c.pem"))
    out = config_to_dict(cfg)
    assert out["nodes"]["pacs"]["tls"] == {"enabled": True, "ca": "ca.pem", "cert": "", "key": "",
                                           "check_hostname": True}
    assert out["receive"]["allow"] == ["A@h"] and out["receive"]["allow"] is not cfg.receive.allow
    assert config_from_dict(out) == cfg


def test_loading_the_preset_module_imports_no_dataclasses() -> None:
    code = "import sys, dicomtools.core.config; print('dataclasses' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
