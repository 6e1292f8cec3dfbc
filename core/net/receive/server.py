"""The ``receive`` Storage SCP: C-ECHO and C-STORE from allowed callers, filed as they arrive.

Built on the lean Upper Layer of :mod:`dicomtools.core.net.ul` (data sets go
to disk as received, never decoded) like the C-MOVE destination in
:mod:`dicomtools.core.net.storescp`, but as a long-running service: callers
are checked against ``AE[@HOST]`` rules, each association is reported when
it ends (who, how many, which patients), and :meth:`ReceiveServer.stop`
stops accepting, lets every association finish the instance in flight
(answering it), then aborts them.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dicomtools.core.net.arrival import file_meta
from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.receive.allow import AllowList
from dicomtools.core.net.receive.filing import Disposition, Filed, Filer
from dicomtools.core.net.scp_negotiate import (
    ContextResult,
    ContextTable,
    HandshakeFailed,
    accept,
    accept_loop,
    listen,
    prepare,
    read_associate_rq,
    reject_pdu,
)
from dicomtools.core.net.ul import (
    C_ECHO_RQ,
    C_STORE_RQ,
    OUR_MAX_PDU,
    PDU_ABORT,
    Connection,
    PeerAborted,
    PeerReleased,
    cmd_str,
    cmd_us,
    echo_rsp,
    store_rsp,
)
from dicomtools.core.safename import printable

log = logging.getLogger(__name__)

VERIFICATION = "1.2.840.10008.1.1"
DICOM_ROOT = "1.2.840.10008."
STORAGE_ROOT = "1.2.840.10008.5.1.4.1.1."  # nearly every standard storage class
# The standard storage classes outside STORAGE_ROOT (pynetdicom's storage list, checked by a test):
# written out so the service starts without importing pynetdicom, pydicom and numpy (~0.25 s).
STORAGE_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.34.7",  # RT Beams Delivery Instruction
    "1.2.840.10008.5.1.4.34.10",  # RT Brachy Application Setup Delivery Instruction
})
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700


def is_storage_class(uid: str) -> bool:
    """Standard storage classes, and every private class (vendors' RT objects are private storage)."""
    return uid in STORAGE_CLASSES or uid.startswith(STORAGE_ROOT) or not uid.startswith(DICOM_ROOT)


@dataclass
class AssociationReport:
    """What one association brought; handed to ``on_association`` when it ends."""

    calling_ae: str
    host: str
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    stored: int = 0
    identical: int = 0
    different: list[str] = field(default_factory=list)  # "new path (first: old path)"
    failed: list[str] = field(default_factory=list)
    patients: dict[str, int] = field(default_factory=dict)  # Patient ID -> instances
    folders: dict[str, str] = field(default_factory=dict)  # Patient ID -> folder name
    ended: str = "released"

    @property
    def instances(self) -> int:
        return self.stored + self.identical + len(self.different)

    def add(self, filed: Filed) -> None:
        if filed.disposition is Disposition.FAILED:
            self.failed.append(filed.reason)
            return
        if filed.disposition is Disposition.IDENTICAL:
            self.identical += 1
        elif filed.disposition is Disposition.DIFFERENT:
            self.different.append(f"{filed.path} (first: {filed.reason})")
        else:
            self.stored += 1
        assert filed.summary is not None
        pid = filed.summary.patient_id
        self.patients[pid] = self.patients.get(pid, 0) + 1
        self.folders[pid] = filed.patient_folder


def _storage_as_offered(abstract_syntax: str, offered: Sequence[str]) -> str | None:
    """Verification and storage only; the first offered syntax, as data sets are written as received."""
    return offered[0] if abstract_syntax == VERIFICATION or is_storage_class(abstract_syntax) else None


def _quickack(sock: socket.socket) -> None:
    """ACK at once (Linux): a sender without TCP_NODELAY otherwise holds each data set back
    until our delayed ACK of its command (~40 ms per instance: 22/s instead of 800/s, measured
    with dcmtk storescu). The kernel clears the flag again after a while, so it is set per message."""
    opt = getattr(socket, "TCP_QUICKACK", None)
    if opt is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, opt, 1)
    except OSError:
        pass


class _Peer:
    """One accepted connection and whether it is inside a message right now."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.busy = False
        self.kicked = False


class ReceiveServer:
    def __init__(
        self,
        ae_title: str,
        out_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 11112,
        allow: AllowList | None = None,
        ssl_context: ssl.SSLContext | None = None,
        network_timeout: float = 120.0,
        on_association: Callable[[AssociationReport], None] | None = None,
        on_instance: Callable[[AssociationReport, Filed], None] | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.ae_title = ae_title.strip()
        self.filer = Filer(out_dir)
        self.host = host
        self.requested_port = port
        self.port = 0
        self.allow = allow or AllowList()
        self.ssl_context = ssl_context
        self.network_timeout = network_timeout
        self.on_association = on_association
        self.on_instance = on_instance
        self.on_refused = on_refused
        self._sock: socket.socket | None = None
        self._accept: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._peers: set[_Peer] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.total = 0  # instances acknowledged, all associations
        self.associations = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> list[str]:
        """Listen; returns the stale staging files removed. Raises :class:`NetError`."""
        removed = self.filer.start()
        try:
            sock = listen(self.host, self.requested_port, 32)
        except OSError as exc:
            hint = " (ports below 1024 need root)" if isinstance(exc, PermissionError) else ""
            raise NetError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}{hint}") from None
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._accept = threading.Thread(target=self._accept_loop, name="dicomtools-receive", daemon=True)
        self._accept.start()
        return removed

    def stop(self, grace: float = 30.0) -> int:
        """Stop accepting; idle associations are aborted now, busy ones after their instance.

        Returns the number of associations still busy after ``grace`` seconds
        (aborted then, their partial instance discarded).
        """
        self._stopping.set()
        if self._accept is not None:
            self._accept.join(5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._lock:
            peers = list(self._peers)
        for p in peers:
            with p.lock:
                if not p.busy:
                    self._kick(p)
        end = time.monotonic() + grace
        for w in list(self._workers):
            w.join(max(0.0, end - time.monotonic()))
        late = [w for w in self._workers if w.is_alive()]
        if late:
            with self._lock:
                peers = list(self._peers)
            for p in peers:
                self._kick(p)
            for w in late:
                w.join(5)
        return len(late)

    @staticmethod
    def _kick(p: _Peer) -> None:
        """A-ABORT and shut the socket down; the association's own thread notices and closes."""
        if p.kicked:
            return
        p.kicked = True
        sock = p.conn.sock
        try:
            if not isinstance(sock, ssl.SSLSocket):  # never write to TLS from a second thread
                sock.sendall(struct.pack(">BBI", PDU_ABORT, 0, 4) + b"\0\0\0\0")
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # ------------------------------------------------------------ serving
    def _accept_loop(self) -> None:
        assert self._sock is not None
        accept_loop(self._sock, self._stopping, self._serve, "dicomtools-receive-assoc", self._workers)

    def _serve(self, client: socket.socket, host: str) -> None:
        try:
            client = prepare(client, host, self.network_timeout, self.ssl_context)
        except HandshakeFailed as exc:
            self._refused(str(exc))
            client.close()
            return
        peer = _Peer(Connection(client))
        with self._lock:
            self._peers.add(peer)
        report: AssociationReport | None = None
        try:
            calling = self._negotiate(peer.conn, host)
            if calling is not None:
                report = AssociationReport(printable(calling, 16), host)
                with self._lock:
                    self.associations += 1
                self._dimse_loop(peer, report)
        except PeerReleased:
            pass
        except (PeerAborted, TimeoutError, OSError, ValueError) as exc:
            if report is not None:
                report.ended = "stopped by us" if peer.kicked else f"aborted ({exc})"
        except NetError as exc:
            log.warning("association from %s: %s", host, exc)
            if report is not None:
                report.ended = f"aborted: {exc}"
            peer.conn.abort()
        except Exception as exc:  # noqa: BLE001 - a bad peer must never kill the service
            log.exception("receive: unexpected error serving %s", host)
            if report is not None:
                report.ended = f"aborted: {type(exc).__name__}"
            peer.conn.abort()
        finally:
            peer.conn.close()
            with self._lock:
                self._peers.discard(peer)
            if report is not None:
                report.seconds = time.monotonic() - report.started
                if self.on_association is not None:
                    self.on_association(report)

    def _refused(self, why: str) -> None:
        log.info("receive refused: %s", why)
        if self.on_refused is not None:
            self.on_refused(printable(why))

    def _negotiate(self, conn: Connection, host: str) -> str | None:
        rq = read_associate_rq(conn)
        calling, called = rq.calling, rq.called
        reject: tuple[int, str] | None = None
        if self._stopping.is_set():
            reject = (1, f"{calling!r} from {host}: arrived while stopping")
        elif called != self.ae_title:
            reject = (7, f"{calling!r} from {host} called {called!r}, we are {self.ae_title!r}")
        else:
            why = self.allow.refusal(calling, host)
            if why is not None:
                reject = (why[0], f"{calling!r} from {host}: {why[1]}")
        if reject is not None:
            self._refused(reject[1])
            conn.send(reject_pdu(reject[0]))
            return None
        contexts = accept(conn, rq, _storage_as_offered, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, OUR_MAX_PDU)
        conn.contexts = contexts  # type: ignore[attr-defined]
        return calling

    def _dimse_loop(self, peer: _Peer, report: AssociationReport) -> None:
        conn = peer.conn
        contexts: ContextTable = conn.contexts  # type: ignore[attr-defined]
        while True:
            _quickack(conn.sock)
            cx_id, cmd = conn.read_command()
            with peer.lock:
                if peer.kicked:  # stop() found us idle: this command came too late
                    raise PeerAborted("stopping")
                peer.busy = True  # from here on stop() lets this message finish
            field_ = cmd_us(cmd, 0x00000100)
            msg_id = cmd_us(cmd, 0x00000110, 0)
            if field_ == C_ECHO_RQ:
                conn.send_message(cx_id, echo_rsp(msg_id))
            elif field_ == C_STORE_RQ:
                self._store(conn, cx_id, cmd, contexts, report)
            else:
                raise NetError(f"unsupported DIMSE command 0x{field_:04X} from {report.calling_ae}")
            with peer.lock:
                peer.busy = False
                if self._stopping.is_set():
                    self._kick(peer)
                    raise PeerAborted("stopping")

    def _store(self, conn: Connection, cx_id: int, cmd: dict[int, bytes], contexts: ContextTable,
               report: AssociationReport) -> None:
        msg_id = cmd_us(cmd, 0x00000110, 0)
        sop_class = cmd_str(cmd, 0x00000002)
        sop_uid = cmd_str(cmd, 0x00001000)
        ts = contexts.get(cx_id, ("", "1.2.840.10008.1.2"))[1]
        try:
            staged = self.filer.stage(file_meta(sop_class, sop_uid, ts, report.calling_ae), ts)
        except OSError as exc:
            for _ in conn.iter_dataset():  # keep the association in step
                pass
            filed = Filed(Disposition.FAILED, reason=f"{sop_uid}: cannot write: {exc.strerror or exc}")
        else:
            error: OSError | None = None
            try:
                for frag in conn.iter_dataset():
                    if error is None:
                        try:
                            staged.write(frag)
                        except OSError as exc:  # disk full: read on, answer with a failure
                            error = exc
                if error is None:
                    staged.close()
            except BaseException:
                staged.discard()  # the peer went away mid-instance: nothing under a final name
                raise
            if error is not None:
                staged.discard()
                filed = Filed(Disposition.FAILED, reason=f"{sop_uid}: cannot write: {error.strerror or error}")
            else:
                try:
                    filed = self.filer.file(staged, sop_uid)
                except OSError as exc:
                    staged.discard()
                    filed = Filed(Disposition.FAILED, reason=f"{sop_uid}: cannot write: {exc.strerror or exc}")
        report.add(filed)
        if filed.disposition is Disposition.FAILED:
            status = STATUS_OUT_OF_RESOURCES if "cannot write" in filed.reason else STATUS_CANNOT_UNDERSTAND
            comment = filed.reason.encode("ascii", "replace").decode("ascii")
        else:
            status, comment = 0x0000, ""
            with self._lock:
                self.total += 1
        conn.send_message(cx_id, store_rsp(msg_id, sop_class, sop_uid, status, comment))
        if self.on_instance is not None:
            try:
                self.on_instance(report, filed)
            except Exception:  # noqa: BLE001 - a display must not fail a transfer
                log.debug("on_instance failed", exc_info=True)
