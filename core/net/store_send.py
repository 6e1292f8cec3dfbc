"""The sending half of ``store``: presentation contexts, payloads, one worker's associations.

Split from :mod:`store` (which orders, accounts and runs the workers) so each
stays small: what goes on the wire for one instance lives here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dicomtools.core.config import NodeConfig
from dicomtools.core.lazylog import get_logger, ready
from dicomtools.core.net.assoc import NetError, tls_args
from dicomtools.core.net.files import (
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    UNCOMPRESSED,
    split_meta,
)
from dicomtools.core.net.machines import mapped_dataset_bytes, needs_rewrite
from dicomtools.core.net.store_order import StoreItem
from dicomtools.core.net.transcode import even_deflated, fallback_for, reencode
from dicomtools.core.net.ul import ClientAssociation, request_association

log = get_logger(__name__)

MAX_CONTEXTS = 128


def sniff_transfer_syntax(path: str) -> str:
    """Transfer syntax of a file without File Meta (old exports): as pydicom guesses it."""
    ready()  # pydicom logs by itself: its records meet the CLI's handlers
    from pydicom import dcmread

    ds = dcmread(path, force=True, stop_before_pixels=True)
    implicit, little = ds.original_encoding
    if implicit is None or implicit:
        return IMPLICIT_LE
    return EXPLICIT_LE if little else EXPLICIT_BE


def context_groups(items: Sequence[StoreItem]) -> list[list[tuple[str, str]]]:
    """One context per (SOP class, transfer syntax) present plus an Implicit VR fallback
    per class; split into groups of at most 128, all contexts of a class in one group."""
    per_class: dict[str, list[str]] = {}
    for it in items:
        lst = per_class.setdefault(it.inst.sop_class_uid, [])
        if it.transfer_syntax not in lst:
            lst.append(it.transfer_syntax)
    groups: list[list[tuple[str, str]]] = [[]]
    for cls in sorted(per_class):
        syntaxes = list(per_class[cls])
        if not any(ts in UNCOMPRESSED for ts in syntaxes):
            syntaxes += [EXPLICIT_LE, IMPLICIT_LE]  # to re-encode into when the node refuses the stored one
        elif IMPLICIT_LE not in syntaxes:
            syntaxes.append(IMPLICIT_LE)
        ctx = [(cls, ts) for ts in syntaxes]
        if len(groups[-1]) + len(ctx) > MAX_CONTEXTS:
            groups.append([])
        groups[-1].extend(ctx)
    return [g for g in groups if g]


class InFlight:
    """A C-STORE request sent whose response is still to be read (:meth:`Sender.finish`).

    Not a tuple: :meth:`Sender.prepare` answers (status, comment) when nothing can be sent."""

    __slots__ = ("item", "assoc", "msg_id", "nbytes", "note")

    def __init__(self, item: StoreItem, assoc: ClientAssociation, msg_id: int, nbytes: int, note: str = "") -> None:
        self.item = item
        self.assoc = assoc
        self.msg_id = msg_id
        self.nbytes = nbytes
        self.note = note  # a warning about it (a lossy image decompressed to fit the node)


class Ready(InFlight):
    """A C-STORE request encoded, to go out as soon as the peer answered the last one."""

    __slots__ = ("parts",)

    def __init__(self, item: StoreItem, assoc: ClientAssociation, msg_id: int, parts: list[bytes | memoryview],
                 nbytes: int, note: str = "") -> None:
        super().__init__(item, assoc, msg_id, nbytes, note)
        self.parts = parts


class AssociationUnavailable(NetError):
    """Our association request was not answered or refused (no data was in flight)."""


class Sender:
    """One worker's associations (one per context group), opened on first use."""

    def __init__(self, node: NodeConfig, groups: list[list[tuple[str, str]]], use_tls: bool | None) -> None:
        self.node = node
        self.groups = groups
        self.group_of = {cls: gi for gi, g in enumerate(groups) for cls, _ in g}
        self.assocs: dict[int, ClientAssociation] = {}
        tls_node = node
        if use_tls is not None and use_tls != node.tls.enabled:
            import copy

            tls_node = copy.deepcopy(node)
            tls_node.tls.enabled = use_tls
        self.tls = tls_args(tls_node)

    def assoc(self, cls: str) -> ClientAssociation:
        gi = self.group_of[cls]
        a = self.assocs.get(gi)
        if a is None:
            # One association at a time: many SCPs (dcmtk storescp without --fork)
            # serve one association after the other, so a second one would wait.
            self.close()
            n = self.node
            try:
                a = request_association(
                    n.host, n.port, n.calling_ae, n.called_ae, self.groups[gi],
                    connect_timeout=n.connect_timeout, acse_timeout=n.acse_timeout,
                    dimse_timeout=n.dimse_timeout, tls=self.tls, max_pdu=n.max_pdu,
                )
            except NetError as exc:
                raise AssociationUnavailable(str(exc)) from None
            self.assocs[gi] = a
        return a

    def switches(self, cls: str) -> bool:
        """Whether sending ``cls`` needs another association (closing the open one)."""
        return self.group_of[cls] not in self.assocs

    def prepare(self, item: StoreItem, payload: bytes | memoryview, ts: str) -> Ready | tuple[int, str]:
        """Encode the C-STORE request for :meth:`transmit` (opening the association if needed).

        Done while the peer still stores the previous instance, the encoding (and a
        re-encoding for the node) costs the round trip nothing.
        """
        cls = item.inst.sop_class_uid
        a = self.assoc(cls)
        cx = a.context_for(cls, ts)
        note = ""
        if cx is None:
            fb_ts = fallback_for([t for (k, t) in a.accepted if k == cls])
            cx = a.context_for(cls, fb_ts) if fb_ts else None
            if cx is None:
                return -1, f"the peer accepts no transfer syntax we offered for SOP class {cls}"
            payload, note = reencode(item.path, ts, fb_ts)
            ts = fb_ts
        data = even_deflated(payload, ts)
        msg_id, parts = a.prepare_store(cx, cls, item.uid, data)
        return Ready(item, a, msg_id, parts, len(data), note)

    @staticmethod
    def transmit(ready: Ready) -> InFlight:
        ready.assoc.conn.send_framed(ready.parts)
        ready.parts = []  # sent: the file's bytes can go
        return ready

    @staticmethod
    def finish(sent: InFlight) -> tuple[int, str]:
        return sent.assoc.store_response(sent.msg_id)

    def close(self) -> None:
        for a in self.assocs.values():
            a.release()
        self.assocs.clear()

    def abort(self) -> None:
        for a in self.assocs.values():
            a.abort()
        self.assocs.clear()


def read_payload(item: StoreItem, mapping: Mapping[str, str], defaults: Mapping[str, str]) -> tuple[bytes | memoryview, str]:
    if item.category == "plan" and needs_rewrite(item.inst, mapping, defaults):
        data, ts, _ = mapped_dataset_bytes(item.path, mapping, defaults)
        return data, ts
    with open(item.path, "rb") as fh:
        raw = fh.read()
    meta = split_meta(raw)
    if meta is None:
        return raw, item.transfer_syntax or IMPLICIT_LE
    if meta.offset >= len(raw):
        raise ValueError("no data set after the file meta (file cut short)")
    return memoryview(raw)[meta.offset :], meta.transfer_syntax_uid or item.transfer_syntax
