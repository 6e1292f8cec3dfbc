"""Read batches of files on all cores, with the calling process working too.

Worker processes take batches from the front; while it waits, the caller
steals not-yet-started batches from the back and reads them itself, so the
pool's start-up time is not dead time and two cores mean two readers. A pool
that cannot start or dies only slows things down: undelivered batches are
read in-process. Results are handed over in batch order.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dicomtools.core.lazylog import get_logger
from dicomtools.core.progress import CancelToken

if TYPE_CHECKING:  # imported when a pool starts: a serial scan must not pay ~15 ms for them
    from concurrent.futures import Future, ProcessPoolExecutor

log = get_logger(__name__)

T = TypeVar("T")


def start_method(available: Sequence[str]) -> str:
    """``fork`` while this process has one thread, else ``forkserver`` (or ``spawn``).

    fork starts a worker in ~15 ms against ~250 ms for a forkserver (which
    imports the reader anew), but forking a process that runs other threads
    (the TUI, pynetdicom) can copy a lock some thread holds: only the CLI,
    single-threaded when it scans, gets fork.
    """
    if "fork" in available and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in available else "spawn"


def _worker_ignores_ctrl_c() -> None:
    """Pool initializer: Ctrl-C is the caller's to handle (it cancels and shuts the pool down).

    Without it a worker hit by Ctrl-C while it waits for its first batch
    printed a KeyboardInterrupt traceback. SIGINT is blocked from before the
    fork (:func:`submit_first`) until it is ignored here, so none slips in.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def make_pool(workers: int, preload: str) -> ProcessPoolExecutor:
    """A pool started the cheapest safe way (see :func:`start_method`); submit first with :func:`submit_first`."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = start_method(multiprocessing.get_all_start_methods())
    log.debug("reader pool: %d %s workers", workers, method)
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload([preload])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_ignores_ctrl_c)


def submit_first(pool: ProcessPoolExecutor, fn: Callable[..., T], *args: Any) -> Future[T]:
    """``pool.submit`` with SIGINT held back while it starts the workers (see :func:`_worker_ignores_ctrl_c`).

    The caller gets a Ctrl-C typed meanwhile as soon as the mask is restored.
    """
    if threading.current_thread() is not threading.main_thread():
        return pool.submit(fn, *args)  # only the main thread receives SIGINT
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return pool.submit(fn, *args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def run_batches(
    batches: Sequence[Any],
    fn: Callable[..., list[T]],
    extra: tuple[Any, ...],
    workers: int,
    take: Callable[[list[T]], None],
    cancel: CancelToken | None = None,
) -> bool:
    """Apply ``fn(batch, *extra)`` to every batch; ``take`` each result in order.

    Returns True when cancelled. ``workers`` counts worker processes besides the caller.
    """
    n = len(batches)
    results: list[list[T] | None] = [None] * n
    futures: list[Future[list[T]] | None] = [None] * n
    pool: ProcessPoolExecutor | None = None
    try:
        pool = make_pool(workers, fn.__module__)
        for i, batch in enumerate(batches):
            futures[i] = submit_first(pool, fn, batch, *extra) if i == 0 else pool.submit(fn, batch, *extra)
    except Exception as exc:
        log.warning("reader processes unavailable (%s); reading in this process", exc)
    steal = n - 1
    try:
        for i in range(n):
            while results[i] is None:
                if cancel is not None and cancel.cancelled:
                    return True
                fut = futures[i]
                if fut is None:
                    results[i] = fn(batches[i], *extra)
                    break
                if fut.done() or steal <= i:
                    try:
                        results[i] = fut.result()
                    except Exception as exc:  # a dead worker must not lose the batch
                        log.warning("reader process failed (%s); reading its batch here", exc)
                        results[i] = fn(batches[i], *extra)
                    break
                # The next result is not ready: read a batch from the back ourselves.
                victim = futures[steal]
                if victim is not None and victim.cancel():
                    results[steal] = fn(batches[steal], *extra)
                    futures[steal] = None
                steal -= 1
            take(results[i] or [])
            results[i] = None
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return False
