"""``dicomtools config show|init|add-node`` and the node options every network command shares.

The shared part (``add_node_options`` / ``node_from_args``) lives here because
it is about the preset: ``--config FILE`` and ``--node NAME`` pick a node
from it, and the seed's ``--hostName --hostPort --callingAet --calledAet``
override its values (or replace it when no node is named).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dicomtools.core.cli.common import RunError, UsageError, add_option
from dicomtools.core.config import (
    Config,
    ConfigError,
    NodeConfig,
    TlsConfig,
    dumps,
    load_config,
    resolve_node,
    save_config,
    write_example,
)
from dicomtools.core.config_path import default_config_file
from dicomtools.core.errors import ExitStatus
from dicomtools.core.lazylog import get_logger, ready, when_ready

log = get_logger(__name__)


# ------------------------------------------------------------------ shared options


def add_config_option(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    # On the verbs, SUPPRESS keeps a --config given before the verb from being reset.
    add_option(parser, "--config", metavar="FILE", default=argparse.SUPPRESS if suppress else None,
               help=f"preset file [default: {default_config_file()}]")


def add_node_options(parser: argparse.ArgumentParser, tls: bool = True) -> None:
    """--config, --node and the seed's connection options (camelCase and kebab-case)."""
    g = parser.add_argument_group("node (a preset from the config file, or explicit values)")
    add_option(g, "--config", metavar="FILE", default=None,
               help=f"preset file [default: {default_config_file()}]")
    add_option(g, "--node", metavar="NAME", default=None, help="node from the preset, e.g. aria")
    add_option(g, "--hostName", metavar="HOST", default=None, help="host of the DICOM service (overrides the node)")
    add_option(g, "--hostPort", metavar="PORT", type=int, default=None, help="port of the DICOM service")
    add_option(g, "--callingAet", metavar="AET", default=None, help="our AE title [default: [local] ae_title]")
    add_option(g, "--calledAet", metavar="AET", default=None, help="AE title of the DICOM service")
    if tls:
        add_option(g, "--useTls", action="store_true", default=None,
                   help="use TLS (CA/certificate from the node's [nodes.NAME.tls])")


def _log_levels(level: str) -> None:
    import logging

    logging.getLogger().setLevel(level)
    # pynetdicom logs every refusal at ERROR; we report those ourselves in one line
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


def load_from_args(args: argparse.Namespace, lazy_logging: bool = False) -> Config:
    """The preset; its log level applied now, or with ``lazy_logging`` when something first logs
    (a command whose library calls go through ``lazylog.ready()`` first: no logging import)."""
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not getattr(args, "debug", False):
        level = cfg.logging.level
        if lazy_logging:
            when_ready(lambda: _log_levels(level))  # after the CLI's deferred set-up, queued before it
        else:
            ready()  # the CLI's deferred logging set-up first, so the preset's level is not reset by it
            _log_levels(level)
    return cfg


def node_from_args(args: argparse.Namespace, lazy_logging: bool = False) -> tuple[Config, NodeConfig]:
    cfg = load_from_args(args, lazy_logging)
    if args.node is None and (args.hostName is None or args.hostPort is None or args.calledAet is None):
        missing = [o for o, v in (("--hostName", args.hostName), ("--hostPort", args.hostPort),
                                  ("--calledAet", args.calledAet)) if v is None]
        raise UsageError(f"give --node NAME (a preset in {cfg.path}) or {', '.join(missing)}")
    try:
        node = resolve_node(cfg, args.node, host=args.hostName, port=args.hostPort,
                            calling_ae=args.callingAet, called_ae=args.calledAet)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return cfg, node


def node_title(node: NodeConfig) -> str:
    return f"{node.called_ae}@{node.host}:{node.port}"


# ------------------------------------------------------------------ the command


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="show or edit the preset file (nodes, local AE, machines)",
                       description="Show, create or extend the TOML preset used by echo, store and retrieve.")
    add_config_option(p)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    s = verbs.add_parser("show", help="print the effective preset as TOML")
    add_config_option(s, suppress=True)
    s.add_argument("--path-only", action="store_true", help="print only the file's path")
    i = verbs.add_parser("init", help="write a commented example preset")
    add_config_option(i, suppress=True)
    i.add_argument("--force", action="store_true", help="overwrite an existing file (a .bak is kept)")
    a = verbs.add_parser("add-node", help="add or replace a [nodes.NAME] entry")
    add_config_option(a, suppress=True)
    a.add_argument("name", help="node name, e.g. aria")
    add_option(a, "--hostName", "--host", dest="host", required=True, metavar="HOST")
    add_option(a, "--hostPort", "--port", dest="port", type=int, required=True, metavar="PORT")
    add_option(a, "--calledAet", dest="called_ae", required=True, metavar="AET")
    add_option(a, "--callingAet", dest="calling_ae", default="", metavar="AET",
               help="our AE title for this node [default: [local] ae_title]")
    add_option(a, "--retrieveMethod", dest="retrieve_method", choices=["move", "get"], default="move")
    add_option(a, "--machines", nargs="+", default=[], metavar="NAME",
               help="treatment machines the node knows; store refuses plans naming others")
    add_option(a, "--maxPdu", dest="max_pdu", type=int, default=0, metavar="BYTES")
    add_option(a, "--tlsCa", dest="tls_ca", default="", metavar="FILE", help="CA bundle; enables TLS")
    add_option(a, "--tlsCert", dest="tls_cert", default="", metavar="FILE")
    add_option(a, "--tlsKey", dest="tls_key", default="", metavar="FILE")
    a.add_argument("--force", action="store_true", help="replace an existing node of that name")
    p.set_defaults(func=run)


def _config_arg(args: argparse.Namespace) -> str | None:
    return getattr(args, "config", None)


def run(args: argparse.Namespace) -> int:
    verb = getattr(args, "verb", None) or "show"
    try:
        if verb == "init":
            path = write_example(_config_arg(args), force=args.force)
            sys.stdout.write(f"wrote {path}\n")
            return ExitStatus.OK
        cfg = load_config(_config_arg(args))
        if verb == "show":
            if getattr(args, "path_only", False):
                sys.stdout.write(f"{cfg.path}\n")
                return ExitStatus.OK
            exists = cfg.path is not None and cfg.path.exists()
            sys.stdout.write(f"# {cfg.path}{'' if exists else ' (not found: built-in defaults)'}\n")
            sys.stdout.write(dumps(cfg))
            return ExitStatus.OK
        if verb == "add-node":
            if args.name in cfg.nodes and not args.force:
                raise RunError(f"{cfg.path}: node [nodes.{args.name}] exists (use --force to replace it)")
            tls = TlsConfig()
            if args.tls_ca or args.tls_cert:
                tls = TlsConfig(enabled=True, ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)
            cfg.nodes[args.name] = NodeConfig(
                host=args.host, port=args.port, called_ae=args.called_ae, calling_ae=args.calling_ae,
                retrieve_method=args.retrieve_method, machines=list(args.machines), max_pdu=args.max_pdu,
                tls=tls,
            )
            path = save_config(cfg)
            sys.stdout.write(f"added [nodes.{args.name}] to {path}\n")
            return ExitStatus.OK
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    raise UsageError(f"unknown verb {verb!r}")  # pragma: no cover - argparse restricts it
