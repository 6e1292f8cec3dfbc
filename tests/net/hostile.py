"""Small misbehaving DICOM peers for the fault tests, on 127.0.0.1 and free ports.

Written with pynetdicom where it can misbehave enough, with raw sockets where
it cannot (a full accept queue for connect timeouts, a listener that never
speaks, a data set cut off in the middle of a C-STORE):

* :class:`QRPeer` - a Q/R SCP (C-ECHO, C-FIND, C-MOVE, C-GET) over a list of
  data sets whose C-MOVE sub-operations are sent by hand, so they can lie:
  report more or fewer sub-operations than sent, send an instance twice, send
  another patient's instance, send path-like SOP Instance UIDs, abort in the
  middle of a data set, try an intruder association first, never answer.
  The reported counts come from a private sink SCP that pynetdicom's own
  C-MOVE machinery stores into, so the final response carries exactly the
  numbers a test asks for.
* :class:`StoragePeer` - a Storage SCP (TLS optional) that records what it
  confirmed; with ``abort_after`` it aborts (A-ABORT and a closed socket) in
  the middle of the data set that follows.
* :class:`HangingSCP` - accepts associations, then never answers a request.
* :class:`MuteListener` - accepts TCP connections and never says a word.
* :class:`FullBacklog` - a listening port whose accept queue is full, so a
  connect hangs until the caller's connect timeout.

Everything is stopped by ``stop()``; use them as context managers.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID
from pynetdicom import AE, build_context, evt
from pynetdicom.dsutils import encode
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from dicomtools.core.net.assoc import guard_response_race

HOST = "127.0.0.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
COMPRESSED = ["1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
              "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90",
              "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5"]
ABORT_PDU = struct.pack(">BBI", 0x07, 0, 4) + b"\x00\x00\x00\x00"

LEVEL_KEY = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
             "IMAGE": "SOPInstanceUID"}
MATCH_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def load(paths: list[Path]) -> list[Dataset]:
    return [dcmread(p) for p in paths]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port`` (from /proc/net/tcp*)."""
    found: set[str] = set()
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state = cols[1], cols[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(addr_hex)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def write_node_config(path: Path, port: int, called_ae: str, scp_port: int, *, timeout: float = 5.0,
                      ae_title: str = "DICOMTOOLS", scp_bind: str = "", tls: dict[str, Any] | None = None,
                      **node: Any) -> Path:
    """A preset with one node ``[nodes.peer]`` and short timeouts (the tests stay fast)."""
    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    values: dict[str, Any] = {"host": HOST, "port": port, "called_ae": called_ae, "connect_timeout": timeout,
                              "acse_timeout": timeout, "dimse_timeout": timeout, "network_timeout": timeout}
    values.update(node)
    lines = ["[local]", f"ae_title = {val(ae_title)}", f"scp_port = {scp_port}", f"scp_bind = {val(scp_bind)}",
             "", "[nodes.peer]"]
    lines += [f"{k} = {val(v)}" for k, v in values.items()]
    if tls:
        lines += ["", "[nodes.peer.tls]"] + [f"{k} = {val(v)}" for k, v in tls.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------ raw helpers


def encode_command(elements: dict[str, Any]) -> bytes:
    """A DIMSE command set (implicit VR little endian, group length first) built with pydicom."""
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    body = encode(ds, True, True, False)
    assert body is not None
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def pdata(context_id: int, fragment: bytes, command: bool, last: bool) -> bytes:
    header = (0x01 if command else 0x00) | (0x02 if last else 0x00)
    return (struct.pack(">BBI", 0x04, 0, len(fragment) + 6) + struct.pack(">IBB", len(fragment) + 2, context_id, header)
            + fragment)


def assoc_socket(assoc: Any) -> socket.socket:
    return assoc.dul.socket.socket  # type: ignore[no-any-return]


def _nodelay(event: Any) -> None:
    """Without TCP_NODELAY every pynetdicom C-STORE waits ~40 ms for a delayed ACK.

    Also guards pynetdicom's reactor race (a response dropped while a
    send_*() waits for it), so the peers misbehave only as told.
    """
    with contextlib.suppress(OSError, AttributeError):
        assoc_socket(event.assoc).setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    guard_response_race(event.assoc)


def _sop(item: Dataset | RawStore) -> tuple[str, str]:
    """(SOP Class UID, announced SOP Instance UID) of what a sub-operation sends."""
    if isinstance(item, RawStore):
        return str(item.dataset.SOPClassUID), item.announce
    return str(item.SOPClassUID), str(item.SOPInstanceUID)


# ------------------------------------------------------------------ Q/R peer


@dataclass
class RawStore:
    """A C-STORE written byte by byte: ``announce`` in the command, ``dataset`` as the data set.

    For what pynetdicom refuses to send: a backslash in a UID, a command that
    names one instance and a data set that holds another.
    """

    announce: str
    dataset: Dataset


@dataclass
class MoveFaults:
    """How the next C-MOVEs misbehave; the default is an honest peer."""

    report: int | None = None  # completed sub-operations to report (None: what was really stored)
    report_failed: int = 0  # failed sub-operations to report on top
    skip: int = 0  # do not send the last ``skip`` matching instances
    duplicate: int = 0  # send the first ``duplicate`` instances twice
    # sent after the matches: data sets (another patient) or RawStore (UIDs pynetdicom won't send)
    extra: list[Dataset | RawStore] = field(default_factory=list)
    abort_at: int | None = None  # cut the sub-association in the middle of this (0-based) C-STORE
    hang: bool = False  # never send the final C-MOVE response
    intruder_ae: str | None = None  # first try a sub-association with this calling AE title
    intruder_bind: str | None = None  # ... or from this source address (calling AE as usual)
    intruder_sends: list[Dataset] | None = None  # what the intruder stores (default: the first match)
    on_move: Callable[[], None] | None = None  # called when a C-MOVE arrives (inspect our SCP meanwhile)


@dataclass
class MoveLog:
    requests: int = 0
    stored: list[str] = field(default_factory=list)  # SOP Instance UIDs confirmed by the destination
    statuses: list[int] = field(default_factory=list)
    intruder_accepted: list[bool] = field(default_factory=list)


class QRPeer:
    """A pynetdicom Q/R SCP over in-memory data sets; C-MOVE misbehaves as ``faults`` says."""

    def __init__(self, datasets: list[Dataset], destinations: dict[str, tuple[str, int]], *,
                 aet: str = "HOSTILE", ssl_context: Any = None, sub_tls: Any = None,
                 models: list[Any] | None = None, get_refuses: set[str] | None = None,
                 image_classes: bool = True, max_associations: int = 10) -> None:
        self.datasets = datasets
        self.models = models  # the Q/R contexts it accepts (default: FIND, MOVE, GET in both roots)
        self.get_refuses = get_refuses or set()  # storage classes it refuses as C-GET sub-operations
        self.image_classes = image_classes  # False: no SOP Class UID at IMAGE level (as dcmqrscp)
        self.max_associations = max_associations
        self.destinations = destinations
        self.aet = aet
        self.faults = MoveFaults()
        self.log = MoveLog()
        self.ssl_context = ssl_context
        self.sub_tls = sub_tls  # tls_args for the sub-associations to the move destination
        self.port = free_port()
        self._stop = threading.Event()
        self._servers: list[Any] = []
        self.sink_port = 0

    # -- lifecycle
    def start(self) -> QRPeer:
        ae = AE(ae_title=self.aet)
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 10
        ae.maximum_associations = self.max_associations
        ae.add_supported_context(Verification)
        for cx in self.models or (
                PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind,
                PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelMove,
                PatientRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelGet):
            ae.add_supported_context(cx)
        classes = sorted({str(ds.SOPClassUID) for ds in self.datasets} - self.get_refuses)
        for cls in classes:
            # every syntax a C-GET may bring, so the data sets are sent as they are held
            ae.add_supported_context(cls, [EXPLICIT_LE, IMPLICIT_LE, *COMPRESSED], scu_role=False, scp_role=True)
        handlers = [(evt.EVT_C_ECHO, lambda e: 0x0000), (evt.EVT_C_FIND, self._find),
                    (evt.EVT_C_MOVE, self._move), (evt.EVT_C_GET, self._get), (evt.EVT_CONN_OPEN, _nodelay)]
        kwargs: dict[str, Any] = {"block": False, "evt_handlers": handlers}
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        self._servers.append(ae.start_server((HOST, self.port), **kwargs))
        # the private sink that pynetdicom's C-MOVE machinery stores its dummy sub-operations into
        sink = AE(ae_title="SINK")
        sink.add_supported_context(SecondaryCaptureImageStorage, IMPLICIT_LE)
        self.sink_port = free_port()

        def sink_store(event: Any) -> int:
            return 0xA700 if event.dataset.PatientID == "FAIL" else 0x0000

        self._servers.append(sink.start_server((HOST, self.sink_port), block=False,
                                               evt_handlers=[(evt.EVT_C_STORE, sink_store),
                                                             (evt.EVT_CONN_OPEN, _nodelay)]))
        return self

    def stop(self) -> None:
        self._stop.set()
        for server in self._servers:
            server.shutdown()
        self._servers.clear()

    def __enter__(self) -> QRPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- matching
    def _matches(self, ident: Dataset) -> list[Dataset]:
        out = []
        for ds in self.datasets:
            ok = True
            for key in MATCH_KEYS:
                want = str(ident.get(key, "") or "")
                if want and want != "*" and str(ds.get(key, "")) != want:
                    ok = False
                    break
            if ok:
                out.append(ds)
        return out

    def _find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        ident = event.identifier
        level = str(ident.QueryRetrieveLevel)
        key = LEVEL_KEY[level]
        groups: dict[str, list[Dataset]] = {}
        for ds in self._matches(ident):
            groups.setdefault(str(ds.get(key, "")), []).append(ds)
        for members in groups.values():
            rsp = Dataset()
            rsp.QueryRetrieveLevel = level
            for elem in ident:
                if elem.keyword == "QueryRetrieveLevel":
                    continue
                if elem.keyword == "NumberOfSeriesRelatedInstances":
                    rsp.NumberOfSeriesRelatedInstances = len(members)
                elif elem.keyword == "ModalitiesInStudy":
                    rsp.ModalitiesInStudy = "\\".join(sorted({str(m.Modality) for m in members}))
                elif elem.keyword == "SOPClassesInStudy":
                    rsp.SOPClassesInStudy = sorted({str(m.SOPClassUID) for m in members})
                elif elem.keyword == "SOPClassUID" and not self.image_classes:
                    rsp.SOPClassUID = ""
                elif elem.keyword:
                    setattr(rsp, elem.keyword, members[0].get(elem.keyword, ""))
            yield 0xFF00, rsp

    def _get(self, event: Any) -> Iterator[Any]:
        matches = self._matches(event.identifier)
        yield len(matches)
        for ds in matches:
            yield 0xFF00, ds

    def _move(self, event: Any) -> Iterator[Any]:
        self.log.requests += 1
        f = self.faults
        if f.on_move is not None:
            f.on_move()
        if f.hang:
            self._stop.wait(120)
            return
        dest = self.destinations.get(str(event.move_destination).strip())
        if dest is None:
            yield None, None
            return
        matches = self._matches(event.identifier)
        if f.skip:
            matches = matches[: len(matches) - f.skip]
        sends: list[Dataset | RawStore] = [*matches[: f.duplicate], *matches, *f.extra]
        stored = self._suboperations(event.assoc, dest, str(event.move_destination).strip(), sends)
        report = f.report if f.report is not None else stored
        # pynetdicom's C-MOVE SCP counts what its sub-operations return: let it store
        # `report` successes and `report_failed` failures into our sink so the final
        # response carries exactly those numbers.
        yield HOST, self.sink_port, {"contexts": [build_context(SecondaryCaptureImageStorage, IMPLICIT_LE)],
                                     "evt_handlers": [(evt.EVT_CONN_OPEN, _nodelay)]}
        yield report + f.report_failed
        for n in range(report + f.report_failed):
            dummy = Dataset()
            dummy.SOPClassUID = SecondaryCaptureImageStorage
            dummy.SOPInstanceUID = f"1.2.3.999.{n + 1}"
            dummy.PatientID = "OK" if n < report else "FAIL"
            dummy.file_meta = FileMetaDataset()
            dummy.file_meta.TransferSyntaxUID = UID(IMPLICIT_LE)
            yield 0xFF00, dummy

    def _sub_assoc(self, dest: tuple[str, int], called: str, contexts: list[Any], calling: str | None = None,
                   bind: str | None = None) -> Any:
        ae = AE(ae_title=calling or self.aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        kwargs: dict[str, Any] = {"ae_title": called, "contexts": contexts,
                                  "evt_handlers": [(evt.EVT_CONN_OPEN, _nodelay)]}
        if bind is not None:
            kwargs["bind_address"] = (bind, 0)
        if self.sub_tls is not None:
            kwargs["tls_args"] = self.sub_tls
        return ae.associate(dest[0], dest[1], **kwargs)

    def _suboperations(self, parent: Any, dest: tuple[str, int], called: str, sends: list[Dataset | RawStore]) -> int:
        f = self.faults
        classes = sorted({_sop(item)[0] for item in [*sends, *(f.intruder_sends or [])]}) \
            or [str(SecondaryCaptureImageStorage)]
        contexts = [build_context(c, [EXPLICIT_LE]) for c in classes]
        if f.intruder_ae or f.intruder_bind:
            intruder = self._sub_assoc(dest, called, contexts, calling=f.intruder_ae, bind=f.intruder_bind)
            self.log.intruder_accepted.append(bool(intruder.is_established))
            if intruder.is_established:
                for ds in (f.intruder_sends if f.intruder_sends is not None else sends[:1]):
                    intruder.send_c_store(ds)
                intruder.release()
        if not sends:
            return 0
        assoc = self._sub_assoc(dest, called, contexts)
        if not assoc.is_established:
            return 0
        stored = 0
        try:
            for n, ds in enumerate(sends):
                if f.abort_at is not None and n == f.abort_at:
                    assert isinstance(ds, Dataset)
                    self._cut_mid_dataset(assoc, ds)
                    return stored
                status = self._raw_store(assoc, ds, n) if isinstance(ds, RawStore) else \
                    int(assoc.send_c_store(ds).get("Status", 0xFFFF))
                self.log.statuses.append(status)
                if status == 0x0000:
                    stored += 1
                    self.log.stored.append(_sop(ds)[1])
                if not assoc.is_established:
                    return stored
        finally:
            if assoc.is_established:
                assoc.release()
        return stored

    @staticmethod
    def _raw_store(assoc: Any, item: RawStore, n: int) -> int:
        ds = item.dataset
        cx = next(c for c in assoc.accepted_contexts if str(c.abstract_syntax) == str(ds.SOPClassUID))
        ts = cx.transfer_syntax[0]
        cmd = encode_command({"AffectedSOPClassUID": str(ds.SOPClassUID), "CommandField": 0x0001,
                              "MessageID": 0xF000 + n, "Priority": 0, "CommandDataSetType": 0x0000,
                              "AffectedSOPInstanceUID": item.announce})
        data = encode(ds, ts.is_implicit_VR, ts.is_little_endian, False)
        assert data is not None
        # pause pynetdicom's reactor as its own send_*() do, or it takes the response off the queue
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.0001)
        try:
            assoc_socket(assoc).sendall(pdata(cx.context_id, cmd, True, True) + pdata(cx.context_id, data, False, True))
            _, rsp = assoc.dimse.get_msg(True)  # the C-STORE-RSP, queued by pynetdicom's DIMSE provider
        finally:
            assoc._reactor_checkpoint.set()
        return int(rsp.command_set.Status) if rsp is not None else 0xFFFF

    @staticmethod
    def _cut_mid_dataset(assoc: Any, ds: Dataset) -> None:
        """Send the C-STORE command and half the data set, then A-ABORT and close."""
        cls = str(ds.SOPClassUID)
        cx = next(c for c in assoc.accepted_contexts if str(c.abstract_syntax) == cls)
        ts = cx.transfer_syntax[0]
        cmd = encode_command({"AffectedSOPClassUID": cls, "CommandField": 0x0001, "MessageID": 999,
                              "Priority": 0, "CommandDataSetType": 0x0000,
                              "AffectedSOPInstanceUID": str(ds.SOPInstanceUID)})
        data = encode(ds, ts.is_implicit_VR, ts.is_little_endian, False)
        assert data is not None
        sock = assoc_socket(assoc)
        sock.sendall(pdata(cx.context_id, cmd, True, True) + pdata(cx.context_id, data[: len(data) // 2], False, False))
        time.sleep(0.2)  # let the half data set arrive before the abort
        sock.sendall(ABORT_PDU)
        assoc.abort()


# ------------------------------------------------------------------ store-side peers


class StoragePeer:
    """Storage SCP recording the SOP Instance UIDs it confirmed, in order.

    With ``abort_after`` it confirms that many instances, then aborts as soon
    as the first data set fragment of the next one arrives (its max PDU is
    small, so a data set always spans several PDUs): A-ABORT on the wire,
    socket closed, from an EVT_PDU_RECV hook. ``once``: only the first time.
    """

    def __init__(self, abort_after: int | None = None, aet: str = "STOREPEER", max_pdu: int = 4096,
                 once: bool = True, ssl_context: Any = None) -> None:
        self.abort_after = abort_after
        self.aet = aet
        self.max_pdu = max_pdu
        self.once = once
        self.ssl_context = ssl_context
        self.port = free_port()
        self.stored: list[str] = []
        self.aborted = 0
        self._server: Any = None
        self._lock = threading.Lock()
        self._cut: set[int] = set()

    def start(self) -> StoragePeer:
        ae = AE(ae_title=self.aet)
        ae.maximum_pdu_size = self.max_pdu
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 10
        from pynetdicom import AllStoragePresentationContexts

        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(str(cx.abstract_syntax), [EXPLICIT_LE, IMPLICIT_LE])
        handlers: list[Any] = [(evt.EVT_C_STORE, self._store), (evt.EVT_PDU_RECV, self._pdu),
                               (evt.EVT_CONN_OPEN, _nodelay)]
        self._server = ae.start_server((HOST, self.port), block=False, evt_handlers=handlers,
                                       ssl_context=self.ssl_context)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> StoragePeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _store(self, event: Any) -> int:
        with self._lock:
            if id(event.assoc) not in self._cut:  # the store in flight at the abort never got its answer
                self.stored.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    def _pdu(self, event: Any) -> None:
        pdu = event.pdu
        if self.abort_after is None or not isinstance(pdu, P_DATA_TF) or (self.once and self.aborted):
            return
        with self._lock:
            due = len(self.stored) >= self.abort_after
        if not due:
            return
        for item in pdu.presentation_data_value_items:
            header = (item.presentation_data_value or b"\x00")[0]
            if not header & 0x01 and not header & 0x02:  # a data set fragment, not the last one
                sock = assoc_socket(event.assoc)
                with self._lock:
                    self._cut.add(id(event.assoc))
                    self.aborted += 1  # before the abort: the client may look as soon as it sees it
                with contextlib.suppress(OSError):
                    sock.sendall(ABORT_PDU)
                    sock.shutdown(socket.SHUT_RDWR)
                return


class HangingSCP:
    """Accepts associations (Verification, storage, Q/R) and never answers a request."""

    def __init__(self, aet: str = "HANGING") -> None:
        self.aet = aet
        self.port = free_port()
        self._stop = threading.Event()
        self._server: Any = None
        self.requests = 0

    def start(self) -> HangingSCP:
        ae = AE(ae_title=self.aet)
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 60
        from pynetdicom import AllStoragePresentationContexts

        ae.add_supported_context(Verification)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(str(cx.abstract_syntax), [EXPLICIT_LE, IMPLICIT_LE])
        for cx in (PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind,
                   PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelMove):
            ae.add_supported_context(cx)

        def hang(event: Any) -> Any:
            self.requests += 1
            self._stop.wait(60)
            return 0xC000

        def hang_find(event: Any) -> Iterator[Any]:
            self.requests += 1
            self._stop.wait(60)
            yield 0xC000, None

        handlers: list[Any] = [(evt.EVT_C_ECHO, hang), (evt.EVT_C_STORE, hang), (evt.EVT_C_FIND, hang_find)]
        self._server = ae.start_server((HOST, self.port), block=False, evt_handlers=handlers)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> HangingSCP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MuteListener:
    """Accepts TCP connections and never sends a byte (no A-ASSOCIATE-AC, ever)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def start(self) -> MuteListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for c in self.accepted:
            c.close()
        self.sock.close()

    def __enter__(self) -> MuteListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FullBacklog:
    """A port that never completes a TCP handshake: listen(0), never accept, queue filled."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(0)
        self.port = int(self.sock.getsockname()[1])
        self.fillers: list[socket.socket] = []

    def start(self) -> FullBacklog:
        for _ in range(4):  # the first completes into the queue, the rest fill the SYN side
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                c.connect((HOST, self.port))
            self.fillers.append(c)
        time.sleep(0.05)
        return self

    def stop(self) -> None:
        for c in self.fillers:
            c.close()
        self.sock.close()

    def __enter__(self) -> FullBacklog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
