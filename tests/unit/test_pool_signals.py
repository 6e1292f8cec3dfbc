"""Pool workers leave Ctrl-C to the caller from their first instruction (no traceback from a worker)."""

from __future__ import annotations

import signal

from dicomtools.core.archive.pool import make_pool, submit_first


def _state() -> tuple[object, bool]:
    return signal.getsignal(signal.SIGINT), signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_workers_ignore_sigint_and_the_caller_gets_it_back() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    pool = make_pool(2, __name__)
    try:
        first = submit_first(pool, _state)
        # SIGINT was blocked across the fork and ignored, then unblocked, in the worker
        assert first.result(timeout=60) == (signal.SIG_IGN, False)
        assert pool.submit(_state).result(timeout=60) == (signal.SIG_IGN, False)
    finally:
        pool.shutdown(wait=True)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before  # the caller's mask is restored
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
