"""The preset file: local AE, DICOM nodes, machine mappings, anonymization, logging.

One TOML file (default ``$XDG_CONFIG_HOME/dicomtools/config.toml``), read with
``tomllib`` and written with ``tomli-w`` so the CLI (``dicomtools config``)
and the TUI settings screen share one code path. Unknown keys and wrong types
are rejected with one line naming the file and the dotted key, because a typo
in a hand-edited preset must not silently fall back to a default.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING, Any

# tomllib, tomli_w and atomic (tempfile) are imported where used: a command run without a
# preset file reads no TOML and writes nothing (~10 ms of every network command's start).
# The tables are plain classes (config_model): no dataclass on any command's start-up path.
from dicomtools.core.config_model import (  # noqa: F401 - re-exported: importers name them from here
    DEFAULT_AE_TITLE,
    DEFAULT_SCP_PORT,
    AnonymizeConfig,
    LocalConfig,
    LoggingConfig,
    MachinesConfig,
    NodeConfig,
    ReceiveConfig,
    Table,
    TlsConfig,
)
from dicomtools.core.config_path import default_config_file
from dicomtools.core.errors import DicomToolsError, ExitStatus
from dicomtools.core.lazylog import get_logger

if TYPE_CHECKING:
    from pathlib import Path

log = get_logger(__name__)

RETRIEVE_METHODS = ("move", "get")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(DicomToolsError):
    """A missing or invalid preset; the message is one line naming file and key."""

    exit_status = ExitStatus.USAGE


class Config(Table):
    """The whole preset; ``path`` is where it was read from (not stored in the file, not compared)."""

    _not_compared = ("path",)

    def __init__(self, *, local: LocalConfig | None = None, nodes: dict[str, NodeConfig] | None = None,
                 machines: MachinesConfig | None = None, anonymize: AnonymizeConfig | None = None,
                 logging: LoggingConfig | None = None, receive: ReceiveConfig | None = None,
                 path: Path | None = None) -> None:
        self.local = local if local is not None else LocalConfig()
        self.nodes: dict[str, NodeConfig] = nodes if nodes is not None else {}
        self.machines = machines if machines is not None else MachinesConfig()
        self.anonymize = anonymize if anonymize is not None else AnonymizeConfig()
        self.logging = logging if logging is not None else LoggingConfig()
        self.receive = receive if receive is not None else ReceiveConfig()
        self.path = path

    def node(self, name: str) -> NodeConfig:
        try:
            return self.nodes[name]
        except KeyError:
            where = self.path or default_config_path()
            known = ", ".join(sorted(self.nodes)) or "none defined"
            raise ConfigError(f"{where}: no node [nodes.{name}] (known: {known})") from None


def parse_pairs(text: str | list[str] | None) -> dict[str, str]:
    """``A=B C=D`` (one string or several) -> dict; raises ValueError naming the bad part.

    The one parser of machine mappings and defaults: the CLI options, the TUI's
    Store and Settings fields all go through it.
    """
    items = [text] if isinstance(text, str) else list(text or [])
    out: dict[str, str] = {}
    for item in items:
        for part in item.split():
            key, sep, value = part.partition("=")
            if not sep or not key or not value:
                raise ValueError(f"{part!r}: expected NAME=VALUE, e.g. RDS=HALCYON")
            out[key] = value
    return out


def default_config_path() -> Path:
    # pathlib is imported where a Path is made: `-h` and `--version` make none (~3 ms)
    from pathlib import Path

    return Path(default_config_file())


# ---------------------------------------------------------------- reading


def _check_value(src: Path, key: str, value: Any, default: Any, annotation: str) -> Any:
    """Validate one scalar/list/dict value against the table field's type."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{src}: key '{key}': expected {expected}, got {value!r}")

    if annotation == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if annotation == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if annotation == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return list(value)
    if annotation == "dict[str, str]":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad("a table of strings")
        return dict(value)
    raise ConfigError(f"{src}: key '{key}': unsupported type {annotation}")  # pragma: no cover


_NESTED = {"TlsConfig": TlsConfig}


def _build(cls: type[Table], data: Any, src: Path, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: key '{prefix}': expected a table, got {data!r}")
    fields = cls.field_types()
    obj = cls()
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        ann = fields.get(key) if key != "path" else None
        if ann is None:
            raise ConfigError(f"{src}: unknown key '{dotted}'")
        if ann in _NESTED:
            setattr(obj, key, _build(_NESTED[ann], value, src, dotted))
        else:
            setattr(obj, key, _check_value(src, dotted, value, getattr(obj, key), ann))
    return obj


def _validate(cfg: Config, src: Path) -> None:
    if cfg.logging.level.upper() not in LOG_LEVELS:
        raise ConfigError(f"{src}: key 'logging.level': expected one of {', '.join(LOG_LEVELS)}")
    cfg.logging.level = cfg.logging.level.upper()
    _check_ae(src, "local.ae_title", cfg.local.ae_title)
    _check_port(src, "local.scp_port", cfg.local.scp_port)
    for name, node in cfg.nodes.items():
        p = f"nodes.{name}"
        _check_port(src, f"{p}.port", node.port)
        _check_ae(src, f"{p}.called_ae", node.called_ae)
        if node.calling_ae:
            _check_ae(src, f"{p}.calling_ae", node.calling_ae)
        if node.retrieve_method not in RETRIEVE_METHODS:
            raise ConfigError(f"{src}: key '{p}.retrieve_method': expected 'move' or 'get'")
        if not node.host:
            raise ConfigError(f"{src}: key '{p}.host': must not be empty")
    rc = cfg.receive
    _check_port(src, "receive.port", rc.port)
    if rc.ae_title:
        _check_ae(src, "receive.ae_title", rc.ae_title)
    for name in rc.nodes:
        if name not in cfg.nodes:
            raise ConfigError(f"{src}: key 'receive.nodes': no node [nodes.{name}]")


def _check_port(src: Path | str, key: str, port: int) -> None:
    if not 0 < port < 65536:
        raise ConfigError(f"{src}: key '{key}': port {port} out of range 1-65535")


def _check_ae(src: Path | str, key: str, ae: str) -> None:
    if not ae.strip() or len(ae) > 16 or "\\" in ae or not ae.isascii():
        raise ConfigError(f"{src}: key '{key}': AE title {ae!r} must be 1-16 ASCII characters")


def config_from_dict(data: dict[str, Any], src: Path | str = "<config>") -> Config:
    """Build a typed :class:`Config` from parsed TOML, rejecting unknown keys."""
    from pathlib import Path

    src = Path(src)
    cfg = Config()
    top = {"local", "nodes", "machines", "anonymize", "logging", "receive"}
    for key, value in data.items():
        if key not in top:
            raise ConfigError(f"{src}: unknown key '{key}'")
        if key == "nodes":
            if not isinstance(value, dict):
                raise ConfigError(f"{src}: key 'nodes': expected a table of [nodes.NAME]")
            cfg.nodes = {
                str(name): _build(NodeConfig, node, src, f"nodes.{name}")
                for name, node in value.items()
            }
        else:
            cls = {
                "local": LocalConfig,
                "machines": MachinesConfig,
                "anonymize": AnonymizeConfig,
                "logging": LoggingConfig,
                "receive": ReceiveConfig,
            }[key]
            setattr(cfg, key, _build(cls, value, src, key))
    _validate(cfg, src)
    cfg.path = src
    return cfg


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the preset; the default path may be missing (defaults), an explicit one may not."""
    from pathlib import Path

    explicit = path is not None
    p = Path(path) if path is not None else default_config_path()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{p}: config file not found") from None
        cfg = Config()
        cfg.path = p
        return cfg
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    import tomllib

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return config_from_dict(data, p)


# ---------------------------------------------------------------- writing


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain dict for TOML; empty optional tables (TLS off, no mapping) are omitted."""
    out: dict[str, Any] = {
        "local": cfg.local.as_dict(),
        "logging": cfg.logging.as_dict(),
        "anonymize": cfg.anonymize.as_dict(),
        "machines": cfg.machines.as_dict(),
    }
    nodes: dict[str, Any] = {}
    for name, node in cfg.nodes.items():
        d = node.as_dict()
        if node.tls == TlsConfig():
            d.pop("tls")
        nodes[name] = d
    out["nodes"] = nodes
    if cfg.receive != ReceiveConfig():
        rc = cfg.receive.as_dict()
        if cfg.receive.tls == TlsConfig():
            rc.pop("tls")
        out["receive"] = rc
    return out


def dumps(cfg: Config) -> str:
    import tomli_w

    return tomli_w.dumps(config_to_dict(cfg))


def save_config(cfg: Config, path: str | os.PathLike[str] | None = None) -> Path:
    """Write atomically; the previous file is kept as ``<name>.bak``.

    The round trip is checked before writing so a preset that could not be
    read back never replaces a good one.
    """
    import tomllib
    from pathlib import Path

    from dicomtools.core.atomic import atomic_write_bytes

    p = Path(path) if path is not None else (cfg.path or default_config_path())
    text = dumps(cfg)
    config_from_dict(tomllib.loads(text), p)  # refuse to write what we could not read
    if p.exists():
        atomic_write_bytes(p.with_name(p.name + ".bak"), p.read_bytes())
    atomic_write_bytes(p, text.encode("utf-8"))
    cfg.path = p
    return p


# ---------------------------------------------------------------- resolving


def resolve_node(
    cfg: Config,
    name: str | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    calling_ae: str | None = None,
    called_ae: str | None = None,
) -> NodeConfig:
    """The node to talk to: the named preset (or defaults) with explicit values on top.

    The returned copy always has ``calling_ae`` filled (node override, else
    ``[local] ae_title``), so network code never looks at two places.
    """
    node = copy.deepcopy(cfg.node(name)) if name else NodeConfig()
    if host is not None:
        node.host = host
    if port is not None:
        node.port = port
    if called_ae is not None:
        node.called_ae = called_ae
    if calling_ae is not None:
        node.calling_ae = calling_ae
    if not node.calling_ae:
        node.calling_ae = cfg.local.ae_title
    where = "command line" if name is None else f"{cfg.path}: [nodes.{name}]"
    _check_port(where, "port", node.port)
    _check_ae(where, "called AE title", node.called_ae)
    _check_ae(where, "calling AE title", node.calling_ae)
    return node


EXAMPLE = """\
# dicomtools preset. Written by `dicomtools config init`; edit freely or use
# `dicomtools config add-node`. Unknown keys are rejected.

[local]
ae_title = "DICOMTOOLS"      # our calling AE title, also the AE title of our Storage SCP
scp_port = 11112             # our Storage SCP port for C-MOVE (104 needs root)
scp_bind = ""                # interface to listen on; "" = the address used to reach the node

[logging]
level = "WARNING"            # DEBUG, INFO, WARNING, ERROR

[machines]
# Treatment Machine Name rewrites applied to the copy of each plan sent by `store`
mapping = { }                # e.g. { TrueBeam1 = "TB1" }
# fill an empty Treatment Machine Name from the beam's Manufacturer's Model Name
defaults = { }               # e.g. { RDS = "HALCYON" }

[anonymize]
profile = "aria"
options = ["CleanDesc", "RetainDeviceIdent"]

# [receive]                  # `dicomtools receive`: our Storage SCP service
# ae_title = ""              # "" = [local] ae_title
# bind = "127.0.0.1"         # listen address; set the LAN address to receive from other hosts
# port = 11112
# folder = ""                # default --path
# allow = ["ORTHANC@127.0.0.1"]   # callers allowed (AE or AE@HOST); with nodes below
# nodes = ["aria"]           # preset nodes allowed to send (their called_ae and host)
# [receive.tls]              # our certificate for TLS callers; ca verifies theirs
# enabled = true
# ca = "/etc/dicomtools/ca.pem"
# cert = "/etc/dicomtools/receive.pem"
# key = "/etc/dicomtools/receive.key"

# [nodes.aria]
# host = "aria-dicom.example.org"
# port = 57347
# called_ae = "VMSDBD"
# calling_ae = ""            # overrides [local] ae_title for this node
# retrieve_method = "move"   # "get" when the firewall blocks our SCP port
# connect_timeout = 10.0
# acse_timeout = 30.0
# dimse_timeout = 120.0
# network_timeout = 120.0
# max_pdu = 0                # 0 = unlimited
# machines = ["TB1", "HALCYON"]   # known machine names; empty = accept any
# [nodes.aria.tls]
# enabled = true
# ca = "/etc/dicomtools/ca.pem"
# cert = ""
# key = ""
"""


def write_example(path: str | os.PathLike[str] | None = None, force: bool = False) -> Path:
    """Write the commented example preset (``config init``); refuses to overwrite unless forced."""
    import tomllib
    from pathlib import Path

    from dicomtools.core.atomic import atomic_write_bytes

    p = Path(path) if path is not None else default_config_path()
    if p.exists() and not force:
        raise ConfigError(f"{p}: already exists (use --force to overwrite; a .bak is kept)")
    config_from_dict(tomllib.loads(EXAMPLE), p)
    if p.exists():
        atomic_write_bytes(p.with_name(p.name + ".bak"), p.read_bytes())
    atomic_write_bytes(p, EXAMPLE.encode("utf-8"))
    return p
