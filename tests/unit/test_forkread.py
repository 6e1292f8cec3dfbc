"""Forked readers (the CLI's cold scan): same results, same order, nothing lost when a child fails."""

from __future__ import annotations

import marshal
import os

import pytest

import dicomtools.core.archive.scan as scan_mod
import dicomtools.core.archive.summarize as summarize
from dicomtools.core.archive import forkread
from dicomtools.core.archive.model import BeamInfo, InstanceSummary
from dicomtools.core.phantom.manifest import PhantomManifest
from dicomtools.core.progress import CancelToken, RecordingSink


def _square_rows(batch: list[int]) -> list[tuple[int, int]]:
    return [(x, x * x) for x in batch]


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.parametrize("children", [1, 3])
def test_every_batch_is_taken_once_in_order(children: int) -> None:
    batches = [list(range(i * 5, i * 5 + 5)) for i in range(40)]
    taken: list[list[tuple[int, int]]] = []
    cancelled = forkread.run_forked(batches, _square_rows, children, taken.append)
    assert not cancelled
    assert taken == [_square_rows(b) for b in batches]
    assert _no_children_left()


def test_the_caller_decodes_only_what_children_sent() -> None:
    parent = os.getpid()
    batches = [[i] for i in range(60)]
    taken: list[list[str]] = []
    forkread.run_forked(
        batches,
        lambda b: [("child" if os.getpid() != parent else "here", b[0])],
        1,
        taken.append,
        here=lambda b: [f"here:{b[0]}"],
        decode=lambda rows: [f"{who}:{n}" for who, n in rows],
    )
    assert [t[0].split(":")[1] for t in taken] == [str(i) for i in range(60)]
    assert {t[0].split(":")[0] for t in taken} <= {"here", "child"}


@pytest.mark.parametrize("how", ["raises", "dies"])
def test_a_failing_child_costs_time_not_results(how: str) -> None:
    parent = os.getpid()

    def work(batch: list[int]) -> list[tuple[int, int]]:
        if os.getpid() != parent and batch[0] >= 10:
            if how == "raises":
                raise RuntimeError("child broke")
            os._exit(3)
        return _square_rows(batch)

    batches = [[i] for i in range(50)]
    taken: list[list[tuple[int, int]]] = []
    assert not forkread.run_forked(batches, work, 2, taken.append)
    assert taken == [_square_rows(b) for b in batches]
    assert _no_children_left()


def test_a_child_that_never_sends_is_not_waited_for() -> None:
    """A child that gets no core (here: hangs) must not hold the caller: it reads the batch too."""
    import time

    parent = os.getpid()

    def work(batch: list[int]) -> list[tuple[int, int]]:
        if os.getpid() != parent:
            time.sleep(600)  # killed when the caller is done
        return _square_rows(batch)

    batches = [[i] for i in range(20)]
    taken: list[list[tuple[int, int]]] = []
    assert not forkread.run_forked(batches, work, 1, taken.append)
    assert taken == [_square_rows(b) for b in batches]
    assert _no_children_left()


def test_cancel_stops_and_reaps_the_children() -> None:
    token = CancelToken()
    taken: list[list[tuple[int, int]]] = []

    def take(rows: list[tuple[int, int]]) -> None:
        taken.append(rows)
        token.cancel()

    batches = [[i] for i in range(2000)]
    assert forkread.run_forked(batches, _square_rows, 1, take, token)
    assert 0 < len(taken) < len(batches)
    assert _no_children_left()


def test_too_many_batches_are_refused_before_forking() -> None:
    with pytest.raises(ValueError):
        forkread.run_forked([[0]] * (forkread.MAX_TASKS + 1), _square_rows, 1, lambda rows: None)


def test_rows_survive_marshal_with_beams(phantom: PhantomManifest) -> None:
    paths = [os.path.join(phantom.root, rel) for rel in phantom.files]
    direct = summarize.read_batch(paths)
    rows = marshal.loads(marshal.dumps(summarize.read_batch_rows(paths)))
    back = summarize.rows_to_results(rows)
    assert back == direct
    with_beams = [s for s in back if isinstance(s, InstanceSummary) and s.beams]
    assert with_beams and all(isinstance(b, BeamInfo) for s in with_beams for b in s.beams)


def test_forked_scan_equals_the_serial_scan(phantom: PhantomManifest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_mod, "FORK_THRESHOLD", 1)
    monkeypatch.setattr(scan_mod, "FORK_BATCH", 2)
    calls: list[int] = []
    real = forkread.run_forked

    def counted(batches: list[list[str]], *args: object, **kwargs: object) -> bool:
        calls.append(len(batches))
        return real(batches, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(forkread, "run_forked", counted)
    forked_batches: list[list[str]] = []
    sink = RecordingSink()
    forked = scan_mod.scan(phantom.root, workers=2, sink=sink,
                           on_batch=lambda good: forked_batches.append([s.path for s in good]))
    single = scan_mod.scan(phantom.root, workers=1)
    assert len(calls) == 1 and calls[0] > 2  # really forked, in several batches
    assert forked.instances == single.instances  # same objects' values, same order
    assert forked.unreadable == single.unreadable
    assert [p for batch in forked_batches for p in batch] == [s.path for s in single.instances]
    done = [e.done for e in sink.events if e.kind == "advanced"]
    assert done == sorted(done) and done[-1] == forked.files_seen


@pytest.mark.parametrize("workers", [1, 2])
def test_meanwhile_runs_once_forked_or_not(phantom: PhantomManifest, monkeypatch: pytest.MonkeyPatch,
                                           workers: int) -> None:
    """show's own preparation runs once: while the forked readers read, or after a serial scan."""
    monkeypatch.setattr(scan_mod, "FORK_THRESHOLD", 1)
    seen: list[int] = []
    result = scan_mod.scan(phantom.root, workers=workers, meanwhile=lambda: seen.append(len(seen)))
    assert seen == [0] and result.instances
