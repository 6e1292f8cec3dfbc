"""``dicomtools echo``: C-ECHO a node and print the round-trip time."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dicomtools.core.cli.common import RunError, add_option
from dicomtools.core.cli.config import add_node_options, node_from_args, node_title
from dicomtools.core.errors import ExitStatus


def register(sub: Any) -> None:
    p = sub.add_parser("echo", help="C-ECHO a DICOM node (connectivity and AE titles)",
                       description="Associate, send C-ECHO, release; print the times. A refusal says why.")
    add_node_options(p)
    add_option(p, "--count", type=int, default=1, metavar="N", help="echo N times [default: 1]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `echo -h` must not import pynetdicom (start-up speed).
    from dicomtools.core.net.assoc import NetError
    from dicomtools.core.net.echo import echo
    from dicomtools.core.net.status import describe_status

    _, node = node_from_args(args)
    worst = ExitStatus.OK
    for _ in range(max(1, args.count)):
        try:
            res = echo(node, use_tls=args.useTls)
        except NetError as exc:
            raise RunError(str(exc)) from None
        state = "success" if res.ok else describe_status(res.status)
        sys.stdout.write(
            f"C-ECHO {node_title(node)} as {node.calling_ae}: {state}, "
            f"association {res.associate_ms:.1f} ms, echo {res.echo_ms:.1f} ms\n"
        )
        worst = worst or (ExitStatus.OK if res.ok else ExitStatus.FAILED)
    return worst
