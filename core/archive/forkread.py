"""Read batches on every core with plain ``os.fork``: cheap enough for a 1,000-file scan.

Why not the process pool (:mod:`.pool`): importing ``concurrent.futures`` and
``multiprocessing`` and starting its manager thread costs ~20 ms, and pickling
through its queues more; below ~8,000 files that lost to reading serially. Here
the caller writes the batch numbers into one pipe and forks; each process (the
caller included) takes the next number from that pipe (a 4-byte read from a
pipe is atomic), so a loaded core simply takes fewer batches. Children send
``marshal``-ed results back on their own pipe; the caller hands them over in
batch order. When no batch number is left, the caller also reads the batches
children took but have not sent (the first result counts): a child that gets no
core on a busy machine, or dies, never makes the caller wait.

Only for a single-threaded caller (the CLI): forking a process that runs other
threads can copy a lock some thread holds. ``work`` must return what ``marshal``
writes (tuples, lists, str, int, None): rows, not objects.
"""

from __future__ import annotations

import marshal
import os
import signal
import threading
from collections.abc import Callable, Sequence

from dicomtools.core.progress import CancelToken

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

_INDEX = 4  # bytes of a batch number in the task pipe
_FRAME = 8  # batch number + payload length, before each result
PIPE_BYTES = 1 << 20  # a bigger result pipe: a child rarely waits for the caller to drain it
MAX_TASKS = 16384  # every batch number fits in the task pipe's 64 KiB before any process reads


def available() -> bool:
    """True where this module may be used: ``os.fork`` exists and no other thread runs."""
    return hasattr(os, "fork") and threading.active_count() == 1


def _child(task_r: int, out_w: int, batches: Sequence[Any], work: Callable[[Any], list[Any]]) -> None:
    """A child's whole life: take batch numbers until the pipe is empty, send each result, exit."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends a child at once; the caller cleans up
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked across the fork (run_forked)
        while True:
            data = os.read(task_r, _INDEX)
            if len(data) < _INDEX:
                break
            i = int.from_bytes(data, "little")
            payload = marshal.dumps(work(batches[i]))
            view = memoryview(i.to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload)
            while view:
                view = view[os.write(out_w, view) :]
        os.close(out_w)  # the caller sees the end now, not after this process has torn down its memory
        code = 0
    finally:
        os._exit(code)  # never return into the caller's stack, never flush its buffers


class _Inbox:
    """What one child has sent so far, cut into (batch number, rows) frames."""

    __slots__ = ("fd", "buf", "open")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.open = True

    def pull(self, results: dict[int, list[Any]], block: bool) -> None:
        """Read what is there (all of it until EOF when ``block``) and decode the whole frames."""
        while self.open:
            try:
                chunk = os.read(self.fd, PIPE_BYTES)
            except BlockingIOError:
                if not block:
                    break
                os.set_blocking(self.fd, True)
                continue
            if not chunk:
                self.open = False
                break
            self.buf += chunk
        buf = self.buf
        pos = 0
        while len(buf) - pos >= _FRAME:
            size = int.from_bytes(buf[pos + 4 : pos + 8], "little")
            end = pos + _FRAME + size
            if end > len(buf):
                break
            i = int.from_bytes(buf[pos : pos + 4], "little")
            if i not in results:  # this process may have read it too, and first
                results[i] = marshal.loads(buf[pos + _FRAME : end])
            pos = end
        if pos:
            del buf[:pos]


def run_forked(
    batches: Sequence[Any],
    work: Callable[[Any], list[Any]],
    children: int,
    take: Callable[[list[Any]], None],
    cancel: CancelToken | None = None,
    *,
    here: Callable[[Any], list[Any]] | None = None,
    decode: Callable[[list[Any]], list[Any]] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> bool:
    """Read every batch in this process and ``children`` forked ones; ``take`` each result in batch order.

    A child runs ``work(batch)`` (plain rows); this process runs ``here(batch)``
    (default ``work``), and hands a child's rows through ``decode`` first, so
    ``take`` sees one kind of result. ``meanwhile`` runs here once the children
    are reading, before this process takes a batch (the children take more
    batches while it runs). Returns True when cancelled (the children are
    killed). At most :data:`MAX_TASKS` batches.
    """
    local = here or work
    n = len(batches)
    if n > MAX_TASKS:
        raise ValueError(f"{n} batches: at most {MAX_TASKS}")
    task_r, task_w = os.pipe()
    try:
        os.write(task_w, b"".join(i.to_bytes(_INDEX, "little") for i in range(n)))
    finally:
        os.close(task_w)  # an empty pipe now reads as the end: every process stops there
    pids: list[int] = []
    inboxes: list[_Inbox] = []
    results: dict[int, list[Any]] = {}
    next_take = 0

    mine: set[int] = set()  # batches read here: their results need no decoding

    def hand_over() -> None:
        nonlocal next_take
        while next_take in results:
            got = results.pop(next_take)
            take(got if decode is None or next_take in mine else decode(got))
            next_take += 1

    try:
        for _ in range(children):
            out_r, out_w = os.pipe()
            try:
                import fcntl

                fcntl.fcntl(out_w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            except (ImportError, AttributeError, OSError):
                pass  # the default 64 KiB pipe works, with a little more waiting
            # SIGINT held back across the fork: a Ctrl-C landing in the child before it has
            # set its own handler would raise into this caller's stack, in the child
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                pid = os.fork()
            except OSError:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(out_r)
                os.close(out_w)
                break  # fewer readers, same result
            if pid == 0:
                os.close(out_r)
                _child(task_r, out_w, batches, work)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(out_w)
            os.set_blocking(out_r, False)
            pids.append(pid)
            inboxes.append(_Inbox(out_r))
        if meanwhile is not None:
            meanwhile()
        while True:
            if cancel is not None and cancel.cancelled:
                return True
            data = os.read(task_r, _INDEX)
            if len(data) < _INDEX:
                break
            i = int.from_bytes(data, "little")
            results[i] = local(batches[i])
            mine.add(i)
            for inbox in inboxes:
                inbox.pull(results, block=False)
            hand_over()
        # No number left: a batch a child took and has not sent yet is read here as well, and
        # the first result counts. A child that got no core (a busy machine), or died, never
        # makes this process wait; reading is deterministic, so either result is the same.
        for i in range(next_take, n):
            if cancel is not None and cancel.cancelled:
                return True
            for inbox in inboxes:
                inbox.pull(results, block=False)
            if i not in results:
                results[i] = local(batches[i])
                mine.add(i)
            hand_over()
        return False
    finally:
        os.close(task_r)
        for inbox in inboxes:
            os.close(inbox.fd)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)  # done, cancelled or failed: what it still does is not wanted
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
