"""Read batches of files on all cores, with the calling process working too.

Worker processes take batches from the front; while it waits, the caller
steals not-yet-started batches from the back and reads them itself, so the
pool's start-up time is not dead time and two cores mean two readers. A pool
that cannot start or dies only slows things down: undelivered batches are
read in-process. Results are handed over in batch order.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from dicomtools.core.progress import CancelToken

log = logging.getLogger(__name__)

T = TypeVar("T")


def make_pool(workers: int, preload: str) -> ProcessPoolExecutor:
    """forkserver: safe when the caller has threads (the TUI, pynetdicom), cheap per worker."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([preload])
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


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
            futures[i] = pool.submit(fn, batch, *extra)
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
