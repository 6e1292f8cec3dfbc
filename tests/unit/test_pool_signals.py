"""Pool workers leave Ctrl-C to the caller from their first instruction (no traceback from a worker)."""

from __future__ import annotations

import signal
import time

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


def _reader_state(_batch: object) -> list[object]:
    return [str(signal.getsignal(signal.SIGINT)), signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())]


def test_forked_readers_take_ctrl_c_as_the_default_and_the_caller_keeps_its_mask() -> None:
    from dicomtools.core.archive import forkread

    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    got: list[list[object]] = []
    def here(_batch: object) -> list[object]:
        time.sleep(0.005)  # the caller is slow: the child surely takes batches
        return ["here"]

    # the caller reads too: only the children's results come through decode
    forkread.run_forked([0] * 64, _reader_state, 1, got.append, here=here, decode=lambda rows: ["child", *rows])
    children = [r for r in got if r[0] == "child"]
    assert children, "no batch was read by the child"
    for r in children:
        assert r[1:] == [str(signal.SIG_DFL), False]  # a Ctrl-C ends the child at once
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
