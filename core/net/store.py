"""``store``: send a folder to a node in the order ARIA accepts, resumable, machine-mapped.

Order per patient and plan: the structure set's image series, the structure
set, referenced plans, the plan (with the plans that need nothing more), then
as one stage their CBCT series and doses (with ``include_all`` also their RT
images and records; see :mod:`.store_order`), then registered series and
their structure sets (and the REG itself with ``include_all``); after all
plans the unconnected series and structure sets. A plan or dose the peer
refuses stops that patient (its dependants would be refused too).

Each item is sent as the encoded bytes of its file (no decode, no
re-encode) over :mod:`ul`; only plans whose machine names change are
re-encoded, in memory. Confirmed instances are appended to the status file
and flushed one by one, so a rerun with the same file continues where the
last one stopped.

Speed: each association has one C-STORE in flight (DICOM allows no more
without asynchronous-operations negotiation); the next file is read while
the peer stores the last, so a round trip costs the peer's time plus a
write. Stages are barriers: with ``associations`` > 1 the instances of a
stage go to whichever association is free, largest first.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import NamedTuple

from dicomtools.core.archive.model import InstanceSummary
from dicomtools.core.config import NodeConfig
from dicomtools.core.errors import DicomToolsError
from dicomtools.core.lazylog import get_logger
from dicomtools.core.net.assoc import NetError
from dicomtools.core.net.files import IMPLICIT_LE
from dicomtools.core.net.machines import MachineProblem, plan_problems
from dicomtools.core.net.status import FAILURE, SUCCESS, WARNING, describe_status, status_category
from dicomtools.core.net.store_order import (  # noqa: F401 - re-exported
    CRITICAL,
    StoreItem,
    StorePlan,
    order_for_store,
)
from dicomtools.core.net.store_send import (  # noqa: F401 - MAX_CONTEXTS re-exported
    MAX_CONTEXTS,
    AssociationUnavailable,
    InFlight,
    Ready,
    Sender,
    context_groups,
    read_payload,
    sniff_transfer_syntax,
)
from dicomtools.core.net.store_status import (  # noqa: F401 - re-exported
    StatusFileError,
    _StatusFile,
    read_status_file,
)
from dicomtools.core.net.ul import PeerAborted
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

log = get_logger(__name__)


class Failure(NamedTuple):
    path: str
    uid: str
    text: str
    status: int | None = None


class StoreResult:
    """What a store did (a plain class: no dataclass on the store path, ~0.3 ms each at start-up)."""

    def __init__(self, total: int = 0, skipped: list[tuple[InstanceSummary, str]] | None = None) -> None:
        self.total = total  # instances in the ordered list
        self.stored = 0
        self.warned = 0
        self.already = 0  # in the status file from an earlier run
        self.not_sent = 0  # held back: patient stopped, cancelled, connection lost
        self.failed: list[Failure] = []
        self.stopped_patients: dict[str, str] = {}
        self.problems: list[MachineProblem] = []
        self.skipped: list[tuple[InstanceSummary, str]] = skipped if skipped is not None else []
        self.cancelled = False
        self.aborted = ""
        self.status_file_failed = False  # the status file could not be written (full disk)
        self.elapsed = 0.0

    @property
    def ok(self) -> bool:
        return not (self.failed or self.stopped_patients or self.problems or self.cancelled
                    or self.aborted or self.not_sent)

    def summary(self) -> str:
        parts = [f"{self.stored} stored", f"{self.already} skipped (already stored)",
                 f"{self.warned} warned", f"{len(self.failed)} failed"]
        if self.not_sent:
            parts.append(f"{self.not_sent} not sent")
        held = len(self.skipped)
        if held:
            parts.append(f"{held} left out")
        rate = (self.stored + self.warned) / self.elapsed if self.elapsed > 0 else 0.0
        return ", ".join(parts) + f" in {self.elapsed:.1f} s ({rate:.0f}/s)"


class _Retired(DicomToolsError):
    """A parallel sender whose association the node would not take: its item goes back."""

    def __init__(self, text: str, item: StoreItem) -> None:
        super().__init__(text)
        self.item = item


class _Run:
    def __init__(self, node: NodeConfig, items: list[StoreItem], result: StoreResult, status: _StatusFile,
                 associations: int, mapping: Mapping[str, str], defaults: Mapping[str, str],
                 use_tls: bool | None, rep: Reporter, cancel: CancelToken) -> None:
        self.node = node
        self.items = items
        self.result = result
        self.status = status
        self.mapping = mapping
        self.defaults = defaults
        self.rep = rep
        self.cancel = cancel
        self.lock = threading.Lock()
        self.done = 0
        groups = context_groups(items)
        self.senders = [Sender(node, groups, use_tls) for _ in range(max(1, associations))]
        self.retired: list[Sender] = []

    def _count(self, text: str, nbytes: int = 0) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        self.rep.advanced(done, len(self.items), text, nbytes=nbytes)

    def _held(self, item: StoreItem) -> bool:
        """Count ``item`` as not sent when the run or its patient has stopped."""
        res = self.result
        if not (self.cancel.cancelled or res.aborted or item.inst.patient_id in res.stopped_patients):
            return False
        with self.lock:
            res.not_sent += 1
        self._count("")
        return True

    def _lost(self, exc: NetError, item: StoreItem) -> None:
        """The connection broke sending or confirming ``item``: stop the run."""
        res = self.result
        with self.lock:
            if not res.aborted:
                name = Path(item.path).name
                res.aborted = f"{exc} (sending {name})" if isinstance(exc, PeerAborted) else str(exc)
            res.not_sent += 1
        self.cancel.cancel()
        self._count("")

    def _send(self, sender: Sender, item: StoreItem, payload: bytes | memoryview, ts: str) -> InFlight | None:
        """Send one request, opening its association if needed; None when ``item`` is already
        accounted for (failed or not sent)."""
        try:
            ready = self._prepare(sender, item, payload, ts)
        except AssociationUnavailable as exc:
            if any(s.assocs for s in self.senders if s is not sender and s not in self.retired):
                raise _Retired(str(exc), item) from None  # another one got through: the node takes fewer
            with self.lock:
                if not self.result.aborted:
                    self.result.aborted = str(exc)
                self.result.not_sent += 1
            self.cancel.cancel()
            self._count("")
            return None
        except NetError as exc:
            self._lost(exc, item)
            return None
        return self._transmit(ready) if ready is not None else None

    def _prepare(self, sender: Sender, item: StoreItem, payload: bytes | memoryview, ts: str) -> Ready | None:
        """Encode the request (on an open association unless :meth:`_send` lets it open one);
        None when ``item`` is accounted for (cannot go)."""
        try:
            ready = sender.prepare(item, payload, ts)
        except (OSError, ValueError) as exc:  # re-encoding for the node failed
            self._account(item, -1, str(getattr(exc, "strerror", None) or exc), 0)
            return None
        if isinstance(ready, tuple):
            self._account(item, ready[0], ready[1], 0)
            return None
        return ready

    def _transmit(self, ready: Ready) -> InFlight | None:
        try:
            return Sender.transmit(ready)
        except NetError as exc:
            self._lost(exc, ready.item)
            return None

    def _reply(self, sent: InFlight) -> tuple[int, str] | None:
        """The peer's (status, comment) for ``sent``; None when the connection broke (accounted)."""
        try:
            return Sender.finish(sent)
        except NetError as exc:
            self._lost(exc, sent.item)
            return None

    def _finish(self, sent: InFlight) -> None:
        reply = self._reply(sent)
        if reply is not None:
            self._settle(sent, reply)

    def _settle(self, sent: InFlight, reply: tuple[int, str], recorded: bool = False) -> None:
        if sent.note:
            self.rep.message(f"warning: {sent.item.path}: {sent.note}", "warning")
        self._account(sent.item, reply[0], reply[1], sent.nbytes, recorded)

    def _record(self, item: StoreItem, status: int) -> None:
        """The status-file line of a confirmed instance (a full disk stops the run)."""
        if status < 0 or status_category(status) not in (SUCCESS, WARNING):
            return
        try:
            self.status.add(item.uid, item.path)
        except StatusFileError as exc:
            with self.lock:
                self.result.aborted = self.result.aborted or str(exc)
                self.result.status_file_failed = True
            self.cancel.cancel()

    def _account(self, item: StoreItem, status: int, comment: str, nbytes: int, recorded: bool = False) -> None:
        """Count one instance's outcome; ``recorded``: its status-file line is written already."""
        res = self.result
        pid = item.inst.patient_id
        category = status_category(status) if status >= 0 else FAILURE
        text = describe_status(status) if status >= 0 else comment
        if comment and status >= 0:
            text += f" ({comment})"
        if category in (SUCCESS, WARNING):
            with self.lock:
                if category == SUCCESS:
                    res.stored += 1
                else:
                    res.warned += 1
            if category == WARNING:
                self.rep.message(f"warning: {item.path}: {text}", "warning")
            if not recorded:
                self._record(item, status)  # full disk: stop; what is confirmed so far is in the file
        else:
            with self.lock:
                res.failed.append(Failure(item.path, item.uid, text, status if status >= 0 else None))
                if item.critical and pid not in res.stopped_patients:
                    res.stopped_patients[pid] = f"{item.category} {item.path} refused: {text}"
            self.rep.message(f"failed: {item.path}: {text}", "error")
            if item.critical:
                self.rep.message(f"patient {pid or '<no id>'}: {item.category} refused, "
                                 "the rest of this patient is not sent", "error")
        self._count(Path(item.path).name, nbytes=nbytes if category != FAILURE else 0)

    def work(self, sender: Sender, take: Callable[[], StoreItem | None]) -> None:
        """Send what ``take`` hands out over ``sender``, one request in flight.

        While the peer works on the previous instance the next file is read and its
        request encoded (a plan re-encoded); when the answer comes, its status-file
        line is written, the next request leaves, and only then is the answer
        counted and reported: the round trip carries none of our per-instance work.
        A refused plan or dose still stops its patient before anything after it is sent.
        """
        sent: InFlight | None = None
        try:
            while (item := take()) is not None:
                if sent is not None and (sent.item.critical or sender.switches(item.inst.sop_class_uid)):
                    self._finish(sent)
                    sent = None
                if self._held(item):
                    continue
                try:
                    payload, ts = read_payload(item, self.mapping, self.defaults)
                except (OSError, ValueError) as exc:
                    self._account(item, -1, str(getattr(exc, "strerror", None) or exc), 0)
                    continue
                if sent is None:
                    sent = self._send(sender, item, payload, ts)
                    continue
                ready = self._prepare(sender, item, payload, ts)  # on ``sent``'s open association
                reply = self._reply(sent)
                if reply is None:  # connection lost: the run is cancelled, ``item`` is not sent
                    sent = None
                    if ready is not None:
                        self._held(item)
                    continue
                self._record(sent.item, reply[0])
                following = self._transmit(ready) if ready is not None and not self._held(item) else None
                self._settle(sent, reply, recorded=True)
                sent = following
        finally:
            if sent is not None:
                self._finish(sent)

    def run_stage(self, stage: list[StoreItem]) -> None:
        group_of = self.senders[0].group_of
        if len(self.senders) == 1 or len(stage) == 1:
            stage.sort(key=lambda it: group_of.get(it.inst.sop_class_uid, 0))  # order within a stage is free
            items = iter(stage)
            self.work(self.senders[0], lambda: next(items, None))
            return
        # Largest first: the associations then finish the stage at about the same time.
        stage.sort(key=lambda it: (group_of.get(it.inst.sop_class_uid, 0), -it.inst.size))
        queue = deque(stage)

        def take() -> StoreItem | None:
            with self.lock:
                return queue.popleft() if queue else None

        def worker(sender: Sender) -> None:
            try:
                self.work(sender, take)
            except _Retired as exc:
                with self.lock:
                    queue.appendleft(exc.item)
                    self.retired.append(sender)
                log.info("parallel association refused: %s", exc)

        threads = [threading.Thread(target=worker, args=(s,), daemon=True)
                   for s in self.senders[: min(len(self.senders), len(stage))]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.retired:
            live = [s for s in self.senders if s not in self.retired]
            self.rep.message(f"note: {self.node.called_ae} took only {len(live)} association(s) at a time; "
                             f"continuing with {len(live)} instead of {len(self.senders)}", "warning")
            self.senders = live
            self.retired = []
            self.work(self.senders[0], take)  # what the retired senders gave back

    def abort_all(self) -> None:
        """From another thread: close every socket so a blocked send or read returns now."""
        for s in self.senders:
            for a in list(s.assocs.values()):
                a.abort()

    def run(self) -> None:
        stage: list[StoreItem] = []
        try:
            for item in self.items:
                if stage and item.stage != stage[0].stage:
                    self.run_stage(stage)
                    stage = []
                stage.append(item)
            if stage:
                self.run_stage(stage)
        finally:
            for s in self.senders:
                if self.result.aborted:
                    s.abort()
                else:
                    s.close()


def store(
    node: NodeConfig,
    plan: StorePlan,
    *,
    status_file: str | Path | None = None,
    associations: int = 1,
    mapping: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    known_machines: Collection[str] | None = None,
    use_tls: bool | None = None,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> StoreResult:
    """Send ``plan.items`` in order; never raises for peer trouble, see the result.

    Nothing is sent when a plan to send has a machine problem. Items in the
    status file are skipped. ``KeyboardInterrupt`` in the calling thread
    cancels after the instances in flight, like ``cancel``.
    """
    t0 = time.monotonic()
    mapping = dict(mapping or {})
    defaults = dict(defaults or {})
    known = known_machines if known_machines is not None else node.machines
    cancel = cancel or CancelToken()
    rep = Reporter("store", sink)
    result = StoreResult(total=len(plan.items), skipped=list(plan.skipped))
    done_uids, done_paths = read_status_file(status_file)
    todo = [it for it in plan.items if it.uid not in done_uids and it.path not in done_paths]
    result.already = len(plan.items) - len(todo)
    for it in todo:
        if it.category == "plan":
            result.problems.extend(plan_problems(it.inst, mapping, defaults, known))
    if result.problems:
        result.elapsed = time.monotonic() - t0
        return result
    for it in todo:
        if not it.transfer_syntax:
            try:
                it.transfer_syntax = sniff_transfer_syntax(it.path)
            except Exception:  # noqa: BLE001 - reported when sending
                it.transfer_syntax = IMPLICIT_LE
    rep.started(len(todo), f"{node.called_ae}@{node.host}:{node.port}")
    if not todo:
        rep.finished(0, 0, "nothing to send")
        result.elapsed = time.monotonic() - t0
        return result
    status = _StatusFile(status_file)
    run = _Run(node, todo, result, status, associations, mapping, defaults, use_tls, rep, cancel)
    engine = threading.Thread(target=run.run, name="dicomtools-store", daemon=True)
    engine.start()
    try:
        while engine.is_alive():
            try:
                engine.join(0.2)
            except KeyboardInterrupt:
                cancel.cancel()
                rep.message("interrupted: stopping after the instances in flight", "warning")
                engine.join(0.4)
                if engine.is_alive():  # a node that does not answer: cut the associations
                    run.abort_all()
    finally:
        engine.join()
        status.close()
    result.cancelled = cancel.cancelled and not result.aborted
    result.elapsed = time.monotonic() - t0
    rep.finished(run.done, len(todo), result.summary())
    return result
