"""``dicomtools receive``: a Storage SCP service filing what arrives under DIR/<Patient ID>/.

Runs until Ctrl-C or SIGTERM, then stops accepting, lets every association
finish the instance in flight and exits 0. One line per association as it
ends; ``--showTree`` prints the reference tree of each patient it touched.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from dicomtools.core.cli.common import RunError, UsageError, add_option
from dicomtools.core.cli.config import load_from_args
from dicomtools.core.config import ConfigError
from dicomtools.core.safename import printable

if TYPE_CHECKING:  # the network stack is imported by run(): `receive -h` stays light (start-up speed)
    from dicomtools.core.net.receive import AssociationReport
    from dicomtools.core.net.receive.setup import ReceiveSettings

GRACE_SECONDS = 30.0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "receive",
        help="run a Storage SCP that files what arrives under --path/<Patient ID>/",
        description="Accept C-ECHO and C-STORE from allowed callers and file each instance atomically under "
        "DIR/<Patient ID>/<study>/<series>/ until Ctrl-C or SIGTERM.",
    )
    add_option(p, "--path", default=None, help="folder to file into [default: [receive] folder]")
    add_option(p, "--port", type=int, default=None, help="port to listen on [default: [receive] port, 11112]")
    add_option(p, "--aeTitle", default=None, metavar="AE", help="our AE title [default: [receive]/[local] ae_title]")
    add_option(p, "--bind", default=None, metavar="ADDR",
               help="address to listen on [default: [receive] bind, 127.0.0.1]")
    add_option(p, "--allow", nargs="+", action="extend", default=[], metavar="AE[@HOST]",
               help="callers allowed to send (AE title, optionally from HOST only)")
    add_option(p, "--node", nargs="+", action="extend", default=[], metavar="NAME",
               help="preset nodes allowed to send (their AE title and host)")
    add_option(p, "--config", metavar="FILE", default=None, help="preset file")
    add_option(p, "--useTls", action="store_true", default=None,
               help="accept TLS only ([receive.tls], else the certificate of a --node)")
    add_option(p, "--showTree", action="store_true", help="print each patient's tree when its association ends")
    add_option(p, "--ascii", action="store_true", help="ASCII tree lines")
    p.set_defaults(func=run)


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Printer:
    """Lines from association threads, one at a time, flushed (a pipe or log file sees them live)."""

    def __init__(self, settings: ReceiveSettings, show_tree: bool, ascii: bool) -> None:
        self.settings = settings
        self.show_tree = show_tree
        self.ascii = ascii
        self.lock = threading.Lock()
        self.total = 0
        self.associations = 0
        self.refused = 0

    def write(self, text: str, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        with self.lock:
            stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            stream.flush()

    def association(self, r: AssociationReport) -> None:
        with self.lock:
            self.total += r.instances
            self.associations += 1
            total, assocs = self.total, self.associations
        patients = ", ".join(f"{printable(pid) or '<no id>'}: {n}" for pid, n in r.patients.items())
        folders = ", ".join(f"{f}/" for f in dict.fromkeys(r.folders.values()))
        dup = f"; {_n(r.identical, 'identical duplicate')} not written again" if r.identical else ""
        line = (f"{r.calling_ae}@{r.host}: {_n(r.instances, 'instance')}"
                + (f" ({patients}) into {folders}" if patients else "")
                + dup + (f"; {len(r.failed)} failed" if r.failed else "")
                + f"; {r.seconds:.1f} s, {r.ended} | total {_n(total, 'instance')}, {_n(assocs, 'association')}")
        self.write(line)
        for d in r.different:
            self.write(f"  duplicate SOP Instance UID with different bytes, kept beside: {d}")
        for f in r.failed:
            self.write(f"  failed: {printable(f)}", err=True)
        if self.show_tree and r.folders:
            self._trees(sorted(set(r.folders.values())))

    def _trees(self, folders: list[str]) -> None:
        from dicomtools.core.archive.scan import scan
        from dicomtools.core.render.forest import render_tree
        from dicomtools.core.tree import build_forest

        for folder in folders:
            result = scan(str(self.settings.path / folder), workers=1)
            text = render_tree(build_forest(result.instances), ascii=self.ascii)
            with self.lock:
                sys.stdout.write(text)
                sys.stdout.flush()

    def refused_line(self, why: str) -> None:
        with self.lock:
            self.refused += 1
        self.write(f"refused {why}")


def run(args: argparse.Namespace) -> int:
    from dicomtools.core.net.assoc import NetError
    from dicomtools.core.net.receive import AllowError
    from dicomtools.core.net.receive.filing import INCOMING
    from dicomtools.core.net.receive.setup import settings_from

    cfg = load_from_args(args)
    try:
        settings = settings_from(cfg, path=args.path, port=args.port, ae_title=args.aeTitle, bind=args.bind,
                                 allow=args.allow, nodes=args.node, use_tls=args.useTls)
    except (ConfigError, AllowError) as exc:
        raise UsageError(str(exc)) from None
    except NetError as exc:
        raise RunError(str(exc)) from None
    if settings.path.exists() and not settings.path.is_dir():
        raise RunError(f"--path {str(settings.path)!r} exists and is not a folder")
    out = _Printer(settings, args.showTree, args.ascii)
    server = settings.server(on_association=out.association, on_refused=out.refused_line)
    try:
        removed = server.start()
    except NetError as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"cannot use --path {settings.path}: {exc.strerror or exc}") from None
    if removed:
        out.write(f"removed {len(removed)} partial files left in {INCOMING} by an interrupted receive", err=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        tls = f", TLS ({settings.tls_from})" if settings.ssl_context is not None else ""
        out.write(f"receive: {settings.ae_title} listening on {settings.bind}:{server.port}{tls}, filing into "
                  f"{settings.path}/<Patient ID>/<study>/<series>/ (Ctrl-C or SIGTERM stops)")
        if settings.allow.open:
            out.write("warning: no allow-list (--allow, --node or [receive] allow/nodes): accepting any caller",
                      err=True)
        else:
            out.write(f"accepting only {settings.allow}")
        while not stop.wait(0.5):
            pass
        out.write("stopping: no new associations; finishing the instances in flight")
        late = server.stop(GRACE_SECONDS)
        if late:
            out.write(f"{late} associations still busy after {GRACE_SECONDS:g} s: aborted, their partial "
                      "instance discarded", err=True)
    finally:
        if not server.stopping:  # an exception above: never leave the port open
            server.stop(0)
        for s, handler in previous.items():
            signal.signal(s, handler)
    out.write(f"receive: stopped; {_n(out.total, 'instance')} in {_n(out.associations, 'association')}"
              + (f", {out.refused} refused" if out.refused else ""))
    return 0
