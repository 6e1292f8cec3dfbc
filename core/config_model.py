"""The preset's tables as plain classes, not dataclasses.

Why: every network command imports them at start-up, and ``import dataclasses``
(it brings inspect, ast, dis: ~4 ms) plus creating a dataclass (~0.3 ms each)
cost more than the C-STORE of a small file. Each table's typed ``__init__`` is
its one list of fields: the keywords, their defaults and their types, which the
preset loader reads to check a TOML value (:meth:`Table.field_types`).
Equality and ``repr`` behave as the dataclasses' did.
"""

from __future__ import annotations

from typing import Any

DEFAULT_AE_TITLE = "DICOMTOOLS"
DEFAULT_SCP_PORT = 11112  # the one default (config init, README, TUI); 104 needs root

_FIELD_TYPES: dict[type, dict[str, str]] = {}


class Table:
    """Fields = the keyword parameters of ``__init__``; equality, repr and ``as_dict`` over them."""

    _not_compared: tuple[str, ...] = ()

    @classmethod
    def field_types(cls) -> dict[str, str]:
        """Field name -> annotation text without ``| None`` ("bool", "list[str]", "TlsConfig"), in order."""
        known = _FIELD_TYPES.get(cls)
        if known is None:
            ann = {k: str(v) for k, v in cls.__init__.__annotations__.items() if k != "return"}
            known = _FIELD_TYPES[cls] = {k: v.removesuffix(" | None") for k, v in ann.items()}
        return known

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.field_types() if f not in self._not_compared)

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as the dataclasses were

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.field_types())
        return f"{type(self).__name__}({inner})"

    def as_dict(self) -> dict[str, Any]:
        """Like ``dataclasses.asdict``: nested tables as dicts, containers copied."""
        return {f: _plain(getattr(self, f)) for f in self.field_types()}


def _plain(value: Any) -> Any:
    if isinstance(value, Table):
        return value.as_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class TlsConfig(Table):
    """TLS for one node: CA bundle to verify the peer, optional client certificate."""

    def __init__(self, *, enabled: bool = False, ca: str = "", cert: str = "", key: str = "",
                 check_hostname: bool = True) -> None:
        self.enabled = enabled
        self.ca = ca
        self.cert = cert
        self.key = key
        self.check_hostname = check_hostname


class NodeConfig(Table):
    """One remote DICOM node (PACS, ARIA DICOM service, Orthanc...)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 104, called_ae: str = "ANY-SCP",
                 calling_ae: str = "", retrieve_method: str = "move", connect_timeout: float = 10.0,
                 acse_timeout: float = 30.0, dimse_timeout: float = 120.0, network_timeout: float = 120.0,
                 max_pdu: int = 0, machines: list[str] | None = None, tls: TlsConfig | None = None) -> None:
        self.host = host
        self.port = port
        self.called_ae = called_ae
        self.calling_ae = calling_ae  # overrides [local] ae_title for this node when set
        self.retrieve_method = retrieve_method  # "move" (needs our SCP port reachable) or "get"
        self.connect_timeout = connect_timeout
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.network_timeout = network_timeout
        self.max_pdu = max_pdu  # 0 = no limit on what we receive
        self.machines: list[str] = machines if machines is not None else []  # known treatment machines, [] = any
        self.tls = tls if tls is not None else TlsConfig()


class LocalConfig(Table):
    """Our own side: calling AE title and the Storage SCP used by C-MOVE."""

    def __init__(self, *, ae_title: str = DEFAULT_AE_TITLE, scp_port: int = DEFAULT_SCP_PORT,
                 scp_bind: str = "") -> None:
        self.ae_title = ae_title
        self.scp_port = scp_port
        # Interface our Storage SCP binds to. Empty = the local address we use to
        # reach the node (never 0.0.0.0 unless written here explicitly).
        self.scp_bind = scp_bind


class MachinesConfig(Table):
    """Treatment machine fixes applied to plans sent by ``store``."""

    def __init__(self, *, mapping: dict[str, str] | None = None, defaults: dict[str, str] | None = None) -> None:
        self.mapping: dict[str, str] = mapping if mapping is not None else {}  # Treatment Machine Name A -> B
        self.defaults: dict[str, str] = defaults if defaults is not None else {}  # model (0008,1090) -> machine


class AnonymizeConfig(Table):
    def __init__(self, *, profile: str = "aria", options: list[str] | None = None) -> None:
        self.profile = profile
        self.options: list[str] = options if options is not None else ["CleanDesc", "RetainDeviceIdent"]


class ReceiveConfig(Table):
    """The ``receive`` service: where it listens, who may send to it."""

    def __init__(self, *, ae_title: str = "", bind: str = "127.0.0.1", port: int = 11112, folder: str = "",
                 allow: list[str] | None = None, nodes: list[str] | None = None,
                 tls: TlsConfig | None = None) -> None:
        self.ae_title = ae_title  # "" = [local] ae_title
        self.bind = bind  # loopback unless set: a service open to the network is a choice
        self.port = port
        self.folder = folder  # default --path ("path" names the preset file itself)
        self.allow: list[str] = allow if allow is not None else []  # "AE" or "AE@HOST"
        self.nodes: list[str] = nodes if nodes is not None else []  # preset nodes allowed to send (AE and host)
        self.tls = tls if tls is not None else TlsConfig()  # our certificate/key; ca verifies callers


class LoggingConfig(Table):
    def __init__(self, *, level: str = "WARNING") -> None:
        self.level = level
