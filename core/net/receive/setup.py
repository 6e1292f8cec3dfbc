"""The ``receive`` settings from the preset plus options: one code path for the CLI and the TUI."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dicomtools.core.config import Config, ConfigError, TlsConfig
from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.receive.allow import (
    AllowError,
    AllowList,
    AllowRule,
    check_ae,
    parse_rule,
    resolve,
)
from dicomtools.core.net.receive.server import ReceiveServer


@dataclass
class ReceiveSettings:
    ae_title: str
    path: Path
    bind: str = "127.0.0.1"
    port: int = 11112
    allow: AllowList = field(default_factory=AllowList)
    ssl_context: ssl.SSLContext | None = None
    tls_from: str = ""  # where the TLS settings came from, for the start line

    def server(self, **callbacks: object) -> ReceiveServer:
        return ReceiveServer(self.ae_title, self.path, host=self.bind, port=self.port, allow=self.allow,
                             ssl_context=self.ssl_context, **callbacks)  # type: ignore[arg-type]


def server_tls_context(tls: TlsConfig, where: str) -> ssl.SSLContext:
    """Our certificate and key; with ``ca`` every caller must show a certificate it signed."""
    if not tls.cert:
        raise NetError(f"{where}: TLS needs our certificate (cert, key) to accept callers")
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.ca or None)
        ctx.verify_mode = ssl.CERT_REQUIRED if tls.ca else ssl.CERT_NONE
        ctx.load_cert_chain(tls.cert, tls.key or None)
    except (OSError, ssl.SSLError) as exc:
        raise NetError(f"{where}: TLS setup ({tls.cert}): {exc}") from None
    return ctx


def settings_from(
    cfg: Config,
    *,
    path: str | None = None,
    port: int | None = None,
    ae_title: str | None = None,
    bind: str | None = None,
    allow: Sequence[str] = (),
    nodes: Sequence[str] = (),
    use_tls: bool | None = None,
) -> ReceiveSettings:
    """Options over ``[receive]`` over ``[local]``; raises ConfigError/AllowError/NetError (one line)."""
    rc = cfg.receive
    folder = path or rc.folder
    if not folder:
        raise ConfigError("no folder to file into: give --path DIR (or set [receive] folder)")
    ae = check_ae(ae_title or rc.ae_title or cfg.local.ae_title, "--aeTitle")
    rules: list[AllowRule] = [parse_rule(text) for text in [*rc.allow, *allow]]
    node_names = [*rc.nodes, *nodes]
    for name in node_names:
        node = cfg.node(name)
        rules.append(AllowRule(node.called_ae.strip(), node.host, resolve(node.host)))
    tls_cfg, tls_from = rc.tls, f"{cfg.path}: [receive.tls]"
    if use_tls and not (tls_cfg.enabled and tls_cfg.cert):
        source = next((n for n in node_names if cfg.nodes[n].tls.enabled and cfg.nodes[n].tls.cert), None)
        if source is None:
            raise NetError("--useTls: no certificate for our service in [receive.tls] or a --node's [nodes.NAME.tls]")
        tls_cfg, tls_from = cfg.nodes[source].tls, f"{cfg.path}: [nodes.{source}.tls]"
    wanted = use_tls if use_tls is not None else tls_cfg.enabled
    ctx = server_tls_context(tls_cfg, tls_from) if wanted else None
    p = port if port is not None else rc.port
    if not 0 <= p < 65536:
        raise AllowError(f"--port {p}: out of range 0-65535")
    return ReceiveSettings(ae, Path(folder), bind if bind is not None else rc.bind, p, AllowList.build(rules),
                           ctx, tls_from if ctx is not None else "")
