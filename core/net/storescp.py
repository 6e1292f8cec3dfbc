"""Our Storage SCP: the C-MOVE destination of ``retrieve``.

Accepts associations only from the expected peer (AE title and host), writes
each received data set to disk as received (no decode), under a name derived
from the sanitized SOP Instance UID, atomically (temp name, then rename), and
keeps count so the caller can compare with what C-MOVE reported. In the
retrieve's private temporary folder (``scratch``) a data set is held, answered,
then written under its name there (see :mod:`arrival`). Runs its accept loop
and one thread per association in the background.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dicomtools.core.net.arrival import (  # noqa: F401 - plausible_uid re-exported for older importers
    OnWritten,
    Written,
    file_meta,
    hold,
    plausible_uid,
    report_written,
    safe_uid_name,
    write_arrival,
    write_problem,
    write_received,
)
from dicomtools.core.net.assoc import NetError
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
from dicomtools.core.net.transcode import prefer_lossless
from dicomtools.core.net.ul import (
    C_ECHO_RQ,
    C_STORE_RQ,
    OUR_MAX_PDU,
    Connection,
    PeerAborted,
    PeerReleased,
    cmd_str,
    cmd_us,
    echo_rsp,
    store_rsp,
)

if TYPE_CHECKING:
    import ssl  # only with TLS, by whoever builds the context (~5 ms of start-up otherwise)

log = logging.getLogger(__name__)

def _any_lossless_first(_abstract_syntax: str, offered: Sequence[str]) -> str:
    """Every abstract syntax; of its transfer syntaxes the lossless one (we never decode)."""
    return prefer_lossless(offered)


@dataclass(frozen=True, slots=True)
class Received:
    sop_instance_uid: str
    sop_class_uid: str
    path: str
    nbytes: int
    calling_ae: str
    move_originator_id: int | None = None


@dataclass
class ScpStats:
    received: dict[str, Received] = field(default_factory=dict)  # by SOP Instance UID
    duplicates: int = 0
    # every instance written, in arrival order (duplicates included): callers count
    # the distinct instances one request brought, so a resent one never hides a missing one
    arrivals: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line per instance we could not write
    write_error: str = ""  # the first local write failure (full disk...): the transfer must stop
    conflicts: list[str] = field(default_factory=list)  # a second, different copy of an instance
    refused: list[str] = field(default_factory=list)  # associations we turned away, with reason


class StorageSCP:
    """A background Storage SCP writing into ``out_dir``.

    ``allowed_aes`` / ``allowed_hosts``: when given, only those calling AE
    titles / peer IP addresses may associate; everyone else is rejected
    (calling AE not recognised) and listed in ``stats.refused``.
    ``scratch``: ``out_dir`` is a private temporary folder whose files the
    caller moves out when complete (the retrieve's): arrivals are written
    straight under their names there (see :func:`arrival.write_new`), and
    ``on_written`` gets each new file's first bytes (its header, read from
    memory instead of the file), after the C-STORE response.
    """

    def __init__(
        self,
        ae_title: str,
        out_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed_aes: Collection[str] | None = None,
        allowed_hosts: Collection[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_received: Callable[[Received], None] | None = None,
        network_timeout: float = 120.0,
        max_pdu: int = 0,
        scratch: bool = False,
        on_written: OnWritten | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.out_dir = Path(out_dir)
        self._dir = str(self.out_dir)
        self.host = host
        self.requested_port = port
        self.allowed_aes = {a.strip() for a in allowed_aes} if allowed_aes is not None else None
        self.allowed_hosts = set(allowed_hosts) if allowed_hosts is not None else None
        self.ssl_context = ssl_context
        self.on_received = on_received
        self.network_timeout = network_timeout
        self.max_pdu = max_pdu if max_pdu > 0 else OUR_MAX_PDU  # announced to senders
        self.scratch = scratch
        self.on_written = on_written
        self.stats = ScpStats()
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._inflight = 0  # instances answered and not yet written (scratch folder only)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._conns: set[Connection] = set()
        self._stopping = threading.Event()
        self.port = 0

    # -- lifecycle
    def start(self) -> StorageSCP:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            sock = listen(self.host, self.requested_port, 16)
        except PermissionError:
            raise NetError(
                f"cannot listen on {self.host}:{self.requested_port}: permission denied "
                "(ports below 1024 need root; set [local] scp_port = 11112 or use --scpPort)"
            ) from None
        except OSError as exc:
            raise NetError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}") from None
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_loop, name="dicomtools-scp", daemon=True)
        self._thread.start()
        log.info("Storage SCP %s listening on %s:%d", self.ae_title, self.host, self.port)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):  # wakes accept() now, not after its 0.2 s poll
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.abort()
        for w in list(self._workers):
            w.join(5)

    def __enter__(self) -> StorageSCP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every instance answered so far is on disk (in a scratch folder the
        answer goes first; the mover's final response can overtake the last write)."""
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout if timeout is not None
                                else self.network_timeout)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.stats.received)

    def received_uids(self) -> set[str]:
        with self._lock:
            return set(self.stats.received)

    # -- serving
    def _accept_loop(self) -> None:
        assert self._sock is not None
        accept_loop(self._sock, self._stopping, self._serve, "dicomtools-scp-assoc", self._workers)

    def _serve(self, client: socket.socket, host: str) -> None:
        try:
            client = prepare(client, host, self.network_timeout, self.ssl_context)
        except HandshakeFailed as exc:
            self._refuse(str(exc))
            client.close()
            return
        conn = Connection(client)
        with self._lock:
            self._conns.add(conn)
        try:
            accepted = self._negotiate(conn, host)
            if accepted is not None:
                calling, contexts = accepted
                self._dimse_loop(conn, calling, contexts)
        except PeerReleased:
            pass
        except (PeerAborted, TimeoutError, OSError) as exc:
            if not self._stopping.is_set():
                log.info("association from %s ended: %s", host, exc)
        except NetError as exc:
            log.warning("association from %s: %s", host, exc)
            conn.abort()
        except Exception:  # noqa: BLE001 - never let a bad peer kill the SCP thread silently
            log.exception("Storage SCP: unexpected error serving %s", host)
            conn.abort()
        finally:
            conn.close()
            with self._lock:
                self._conns.discard(conn)

    def _refuse(self, why: str) -> None:
        with self._lock:
            self.stats.refused.append(why)
        log.warning("Storage SCP refused association: %s", why)

    def _negotiate(self, conn: Connection, peer_host: str) -> tuple[str, ContextTable] | None:
        rq = read_associate_rq(conn)
        calling, called = rq.calling, rq.called
        reject: tuple[int, str] | None = None
        if self.allowed_hosts is not None and peer_host not in self.allowed_hosts:
            reject = (1, f"host {peer_host} is not the expected peer ({', '.join(sorted(self.allowed_hosts))})")
        elif called != self.ae_title.strip():
            reject = (7, f"called AE title {called!r} is not ours ({self.ae_title!r})")
        elif self.allowed_aes is not None and calling not in self.allowed_aes:
            reject = (3, f"calling AE title {calling!r} from {peer_host} is not the expected peer")
        if reject is not None:
            self._refuse(reject[1])  # before answering, so the record is there when the peer sees it
            conn.send(reject_pdu(reject[0]))
            conn.close()
            return None
        # We never decode, so any transfer syntax can be written as received.
        contexts = accept(conn, rq, _any_lossless_first, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, self.max_pdu)
        return calling, contexts

    def _dimse_loop(self, conn: Connection, calling: str, contexts: ContextTable) -> None:
        while not self._stopping.is_set():
            cx_id, cmd = conn.read_command()
            field_ = cmd_us(cmd, 0x00000100)
            msg_id = cmd_us(cmd, 0x00000110, 0)
            if field_ == C_ECHO_RQ:
                conn.send_message(cx_id, echo_rsp(msg_id))
                continue
            if field_ != C_STORE_RQ:
                raise NetError(f"unsupported DIMSE command 0x{field_:04X} from {calling}")
            sop_class = cmd_str(cmd, 0x00000002)
            sop_uid = cmd_str(cmd, 0x00001000)
            frags = iter(conn.iter_dataset())
            held: list[bytes] = []
            rest = hold(held, frags) if self.scratch else frags
            if rest is None:
                # Held whole in a scratch folder: answer first (the peer waits for nothing else), then
                # name, File Meta and write while the peer prepares the next instance. A failed write
                # sets stats.write_error, which fails the retrieve.
                with self._idle:
                    self._inflight += 1
                try:
                    conn.send_message(cx_id, store_rsp(msg_id, sop_class, sop_uid, 0x0000))
                    arrival, meta = self._arrival(calling, cmd, cx_id, contexts, sop_class, sop_uid)
                    held.insert(0, meta)
                    self._after(arrival, *self._store(arrival, held, None)[2:])
                finally:
                    with self._idle:
                        self._inflight -= 1
                        self._idle.notify_all()
                continue
            arrival, meta = self._arrival(calling, cmd, cx_id, contexts, sop_class, sop_uid)
            status, comment, rec, done = self._store(arrival, [meta, *held], rest)
            conn.send_message(cx_id, store_rsp(msg_id, sop_class, sop_uid, status, comment))
            self._after(arrival, rec, done)  # after the response: the peer prepares the next instance meanwhile

    def _arrival(self, calling: str, cmd: dict[int, bytes], cx_id: int, contexts: ContextTable, sop_class: str,
                 sop_uid: str) -> tuple[_Arrival, bytes]:
        """Who sent what, where it goes, and its File Meta header (the first part written)."""
        ts = contexts.get(cx_id, ("", "1.2.840.10008.1.2"))[1]
        target = os.path.join(self._dir, safe_uid_name(sop_uid))
        arrival = _Arrival(calling, sop_class, sop_uid, target, cmd_us(cmd, 0x00001031, -1))
        return arrival, file_meta(sop_class, sop_uid, ts, calling)

    def _after(self, arrival: _Arrival, rec: Received | None, done: Written | None) -> None:
        try:
            if done is not None:
                report_written(self.on_written, arrival.target, done)
            if rec is not None and self.on_received is not None:
                self.on_received(rec)
        except Exception:  # noqa: BLE001 - a progress sink must not fail a transfer
            log.debug("on_received failed", exc_info=True)

    def _store(self, a: _Arrival, parts: list[bytes], rest: Iterator[bytes] | None
               ) -> tuple[int, str, Received | None, Written | None]:
        """Write one arrival and count it: (status, comment, the new record, how it was written)."""
        try:
            done = write_arrival(a.target, parts, rest, self.scratch)
        except OSError as exc:
            with self._lock:
                self.stats.failed.append(f"{a.sop_uid}: cannot write: {exc.strerror or exc}")
                self.stats.write_error = self.stats.write_error or write_problem(exc, self.out_dir.parent)
            for _ in rest or ():  # read the rest of this data set so the association stays in step
                pass
            return 0xA700, "out of resources: cannot write file", None, None
        with self._lock:
            self.stats.arrivals.append(a.sop_uid)
            if done.how == "differs":
                self.stats.conflicts.append(f"instance {a.sop_uid} arrived a second time with different content "
                                            f"(from {a.calling}): the first copy was kept, the second not saved")
                return 0x0000, "", None, None
            rec = Received(a.sop_uid, a.sop_class, a.target, done.size - len(parts[0]), a.calling,
                           a.move_id if a.move_id >= 0 else None)
            if a.sop_uid in self.stats.received:
                self.stats.duplicates += 1
            self.stats.received.setdefault(a.sop_uid, rec)
        return 0x0000, "", rec, done


@dataclass(frozen=True, slots=True)
class _Arrival:
    """Who sent which instance, and where it goes."""

    calling: str
    sop_class: str
    sop_uid: str
    target: str  # a str, not a Path: pathlib costs ~5 us an instance
    move_id: int
