"""Association setup shared by echo, find, move/get and store.

Two things every caller needs and pynetdicom does not do by itself:

* ``TCP_NODELAY`` on every socket. Without it Nagle's algorithm plus delayed
  ACKs cost ~40-90 ms per DIMSE message; a 2,000-file store takes minutes
  instead of seconds (measured with pynetdicom 3.0.4 and dcmtk 3.6.7).
* One clear line when an association fails: refused connection, unknown
  host, timeout, or rejection with the peer's reason.
"""

from __future__ import annotations

import copy
import socket
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dicomtools.core.config import NodeConfig
from dicomtools.core.errors import DicomToolsError
from dicomtools.core.lazylog import get_logger

if TYPE_CHECKING:  # imported where used: ``store`` (lean UL only) never loads pynetdicom
    import ssl

    from pynetdicom import AE, evt
    from pynetdicom.association import Association
    from pynetdicom.presentation import PresentationContext

log = get_logger(__name__)

# Big PDUs mean fewer fragments per C-STORE; pynetdicom's default is 16 KiB.
DEFAULT_MAX_PDU = 4 * 1024 * 1024
TRANSIENT_RETRIES = 3  # a rejected-transient association request is tried again this often


class NetError(DicomToolsError):
    """A network operation that failed in a way the user can act on; one line."""


def set_nodelay(sock: Any) -> None:
    """Disable Nagle's algorithm on a (possibly TLS-wrapped) TCP socket."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError) as exc:  # closed already, or not TCP
        log.debug("TCP_NODELAY not set: %s", exc)


def _assoc_socket(assoc: Association) -> Any:
    dul_sock = getattr(assoc.dul, "socket", None)
    return getattr(dul_sock, "socket", None)


def on_conn_open_nodelay(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler: both for associations we request and ones our SCP accepts."""
    sock = _assoc_socket(event.assoc)
    if sock is not None:
        set_nodelay(sock)


def guard_response_race(assoc: Association) -> None:
    """Give a DIMSE response the reactor grabbed back to the ``send_*()`` waiting for it.

    pynetdicom 3.0's association reactor can take a response off the DIMSE
    queue in the instant between a ``send_*()`` pausing it and the pause
    taking effect; it then logs "Received unexpected C-FIND service message",
    drops the response, and the caller waits ``dimse_timeout`` for nothing
    (pynetdicom issues #435, #875). Seen here under load in C-FIND and
    C-STORE. While a ``send_*()`` is in progress (reactor checkpoint cleared)
    a response is put back at the front of the queue instead.
    """
    serve = getattr(assoc, "_serve_request", None)
    checkpoint = getattr(assoc, "_reactor_checkpoint", None)
    q = getattr(getattr(assoc, "dimse", None), "msg_queue", None)
    if serve is None or checkpoint is None or q is None:  # pragma: no cover - other pynetdicom
        return

    def guarded(msg: Any, context_id: int) -> None:
        if not checkpoint.is_set() and not msg.is_valid_request:
            with q.mutex:
                q.queue.appendleft((context_id, msg))
                q.not_empty.notify()
            return
        serve(msg, context_id)

    assoc._serve_request = guarded  # type: ignore[method-assign]


def make_ae(ae_title: str, node: NodeConfig | None = None) -> AE:
    """An AE with the node's timeouts and a large receive PDU."""
    from pynetdicom import AE

    ae = AE(ae_title=ae_title)
    if node is not None:
        ae.connection_timeout = node.connect_timeout
        ae.acse_timeout = node.acse_timeout
        ae.dimse_timeout = node.dimse_timeout
        ae.network_timeout = node.network_timeout
        ae.maximum_pdu_size = node.max_pdu if node.max_pdu > 0 else 0
    else:
        ae.maximum_pdu_size = 0
    return ae


def tls_args(node: NodeConfig) -> tuple[ssl.SSLContext, str] | None:
    """``(context, server_hostname)`` for pynetdicom when the node uses TLS."""
    if not node.tls.enabled:
        return None
    import ssl  # here, not at the top: ~5 ms of every plain-TCP command's start

    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=node.tls.ca or None
        )
        ctx.check_hostname = node.tls.check_hostname
        if node.tls.cert:
            ctx.load_cert_chain(node.tls.cert, node.tls.key or None)
    except OSError as exc:  # ssl.SSLError is one
        raise NetError(f"TLS setup for {node.host}: {exc}") from None
    return ctx, node.host


def scp_tls_context(node: NodeConfig) -> ssl.SSLContext | None:
    """Server context for our Storage SCP when the node uses TLS and gives us a certificate.

    C-MOVE sub-operations then arrive over TLS too: we present the node's
    ``cert``/``key`` and require the node's certificate, verified with ``ca``.
    Without a certificate of our own our SCP cannot speak TLS: None.
    """
    if not node.tls.enabled or not node.tls.cert:
        return None
    import ssl

    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=node.tls.ca or None)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(node.tls.cert, node.tls.key or None)
    except OSError as exc:  # ssl.SSLError is one
        raise NetError(f"TLS setup for our Storage SCP ({node.tls.cert}): {exc}") from None
    return ctx


def _connection_problem(node: NodeConfig) -> str:
    """Why a TCP connection could not be made; probed only after a failure."""
    where = f"{node.host}:{node.port}"
    try:
        with socket.create_connection((node.host, node.port), timeout=node.connect_timeout):
            pass
    except socket.gaierror:
        return f"unknown host {node.host!r}"
    except ConnectionRefusedError:
        return f"connection refused by {where} (is the DICOM service running on that port?)"
    except TimeoutError:
        return f"no answer from {where} within {node.connect_timeout:g} s (firewall or wrong host?)"
    except OSError as exc:
        return f"cannot connect to {where}: {exc.strerror or exc}"
    if node.tls.enabled:
        return f"TLS handshake with {where} failed: {_tls_problem(node) or 'no reason given'} ({TLS_HINT})"
    return f"connection to {where} closed before the association started"


TLS_HINT = "check [nodes.NAME.tls] ca, cert and key, and that the port speaks TLS"


def _tls_problem(node: NodeConfig) -> str:
    """The handshake error itself (untrusted certificate, client certificate refused...), probed
    again; empty when the handshake works."""
    try:
        args = tls_args(node)
    except NetError:
        return ""
    if args is None:
        return ""
    return tls_probe(node.host, node.port, *args, timeout=node.connect_timeout)


def tls_probe(host: str, port: int, ctx: ssl.SSLContext, server_name: str, timeout: float = 5.0) -> str:
    """Handshake once more, only to name what went wrong; empty when nothing did."""
    import ssl

    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                # TLS 1.3 reports a refused client certificate only at the first read
                tls.settimeout(min(timeout, 2.0))
                tls.recv(1)
    except ssl.SSLError as exc:
        return tls_error_text(exc)
    except OSError:
        pass
    return ""


def is_tls_error(exc: BaseException) -> bool:
    """An ``ssl.SSLError``, without importing ssl (no TLS socket exists unless it was)."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLError)


def is_tls_socket(sock: socket.socket) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(sock, ssl.SSLSocket)


def tls_error_text(exc: BaseException) -> str:
    """``certificate verify failed: unable to get local issuer certificate``-style text."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    reason = getattr(exc, "reason", None)
    if reason:
        return str(reason).replace("_", " ").lower()
    return str(exc) or type(exc).__name__


def associate(
    ae: AE,
    node: NodeConfig,
    contexts: Sequence[PresentationContext] | None = None,
    *,
    ext_neg: list[Any] | None = None,
    evt_handlers: list[Any] | None = None,
    max_pdu: int = DEFAULT_MAX_PDU,
    use_tls: bool | None = None,
) -> Association:
    """Request an association; return it established or raise :class:`NetError`.

    ``contexts`` defaults to the AE's requested contexts. ``use_tls`` forces
    TLS on/off regardless of the node's setting (``--useTls``).
    """
    from pynetdicom import evt
    from pynetdicom.pdu_primitives import A_ABORT, A_ASSOCIATE, A_P_ABORT

    state: dict[str, Any] = {"opened": False, "reject": None, "answered": False, "closed": False}

    def opened(event: evt.Event) -> None:
        state["opened"] = True
        on_conn_open_nodelay(event)
        guard_response_race(event.assoc)

    def acse_recv(event: evt.Event) -> None:
        prim = getattr(event, "primitive", None)
        if isinstance(prim, A_ASSOCIATE):
            state["answered"] = True
            if prim.result in (0x01, 0x02):
                state["reject"] = prim
        elif isinstance(prim, A_ABORT | A_P_ABORT) and not state["answered"]:
            state["closed"] = True  # the peer hung up (or aborted) before answering

    handlers = [(evt.EVT_CONN_OPEN, opened), (evt.EVT_ACSE_RECV, acse_recv)]
    handlers += list(evt_handlers or [])
    tls_node = node
    if use_tls is not None and use_tls != node.tls.enabled:
        tls_node = copy.deepcopy(node)
        tls_node.tls.enabled = use_tls
    kwargs: dict[str, Any] = {
        "ae_title": node.called_ae,
        "max_pdu": node.max_pdu if node.max_pdu > 0 else max_pdu,  # the preset's max_pdu wins
        "ext_neg": ext_neg,
        "evt_handlers": handlers,
        "tls_args": tls_args(tls_node),
    }
    if contexts is not None:
        kwargs["contexts"] = list(contexts)
    for attempt in range(TRANSIENT_RETRIES + 1):
        try:
            assoc = ae.associate(node.host, node.port, **kwargs)
        except socket.gaierror:
            raise NetError(f"unknown host {node.host!r}") from None
        except (OSError, ValueError) as exc:
            raise NetError(f"cannot associate with {node.host}:{node.port}: {exc}") from None
        prim = state["reject"]
        if not (assoc.is_rejected and prim is not None and prim.result == 0x02) or attempt == TRANSIENT_RETRIES:
            break
        # rejected-transient (local limit, congestion): a node that counts the association we
        # just released for a moment longer takes the next one a little later
        log.debug("association rejected (transient): retrying")
        time.sleep(0.3 * (attempt + 1))
        state.update(opened=False, reject=None, answered=False, closed=False)
    if assoc.is_established:
        sock = _assoc_socket(assoc)
        if sock is not None:
            set_nodelay(sock)
        return assoc
    who = f"{node.called_ae}@{node.host}:{node.port}"
    if assoc.is_rejected:
        prim = state["reject"]
        reason = prim.reason_str if prim is not None else "no reason given"
        hint = ""
        if prim is not None and prim.result_source == 1 and prim.diagnostic == 7:
            hint = f" (check the called AE title {node.called_ae!r})"
        elif prim is not None and prim.result_source == 1 and prim.diagnostic == 3:
            hint = f" (the peer does not know our AE title {node.calling_ae!r}; ask to have it added)"
        raise NetError(f"association rejected by {who}: {reason}{hint}")
    if not state["opened"]:
        raise NetError(_connection_problem(tls_node))
    if not state["answered"] and state["closed"]:
        why = _tls_problem(tls_node) if tls_node.tls.enabled else ""
        if why:
            raise NetError(f"TLS handshake with {node.host}:{node.port} failed: {why} ({TLS_HINT})")
        raise NetError(f"{who} closed the connection before answering the association request "
                       "(is it a DICOM port? TLS expected? does it accept connections from this host?)")
    if not state["answered"]:
        raise NetError(f"no answer to the association request from {who} within {node.acse_timeout:g} s "
                       "(is it a DICOM port? TLS expected?)")
    if assoc.is_aborted:
        raise NetError(
            f"association aborted by {who} (no acceptable presentation context, or the peer refused us)"
        )
    raise NetError(f"no answer to the association request from {who} within {node.acse_timeout:g} s")


def release(assoc: Association | None) -> None:
    """Release politely; abort when the peer is already gone. Never raises."""
    if assoc is None:
        return
    try:
        if assoc.is_established:
            assoc.release()
        if assoc.is_established:
            assoc.abort()
    except Exception:  # noqa: BLE001 - best effort on teardown
        log.debug("release failed", exc_info=True)
