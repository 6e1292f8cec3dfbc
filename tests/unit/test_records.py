"""``dicomtools.core.records.NamedTuple``: the class statement must give what ``typing.NamedTuple`` gives.

The records on the start-up path use it so that no run imports :mod:`typing`; each
behaviour below is checked against ``typing.NamedTuple`` on the same class body.
"""

from __future__ import annotations

import pickle
import typing

import pytest

from dicomtools.core import records


class Ours(records.NamedTuple):
    """A beam, as an example record."""

    number: int | None
    name: str = ""
    machines: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.number}:{self.name}"

    def renamed(self, name: str) -> Ours:
        return self._replace(name=name)


class Theirs(typing.NamedTuple):
    """A beam, as an example record."""

    number: int | None
    name: str = ""
    machines: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.number}:{self.name}"

    def renamed(self, name: str) -> Theirs:
        return self._replace(name=name)


def test_it_is_not_typing_at_run_time() -> None:
    assert records.NamedTuple is not typing.NamedTuple
    assert type(Ours) is type  # a plain namedtuple class, no metaclass of ours left on it


@pytest.mark.parametrize("args", [(1,), (2, "A"), (3, "B", ("TB1",)), (None,)])
def test_fields_defaults_and_methods_match_typing(args: tuple[object, ...]) -> None:
    ours, theirs = Ours(*args), Theirs(*args)  # type: ignore[arg-type]
    assert tuple(ours) == tuple(theirs)
    assert ours._fields == theirs._fields == ("number", "name", "machines")
    assert ours._field_defaults == theirs._field_defaults
    assert ours._asdict() == theirs._asdict()
    assert ours.label == theirs.label
    assert tuple(ours.renamed("X")) == tuple(theirs.renamed("X"))
    assert isinstance(ours.renamed("X"), Ours)
    assert repr(ours).replace("Ours", "T") == repr(theirs).replace("Theirs", "T")
    assert hash(ours) == hash(theirs)


def test_class_attributes_match_typing() -> None:
    assert Ours.__doc__ == Theirs.__doc__
    assert Ours.__module__ == Theirs.__module__ == __name__
    assert Ours.__qualname__ == "Ours"
    assert list(Ours.__annotations__) == list(Theirs.__annotations__)
    assert Ours.__mro__[1:] == Theirs.__mro__[1:] == (tuple, object)


def test_pickles_by_name() -> None:
    one = Ours(4, "D", ("M",))
    assert pickle.loads(pickle.dumps(one)) == one
    assert type(pickle.loads(pickle.dumps(one))) is Ours


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default field 'b'"):
        class Bad(records.NamedTuple):
            a: int = 0
            b: int


def test_namedtuple_internals_cannot_be_overwritten() -> None:
    with pytest.raises(AttributeError, match="_replace"):
        class Bad(records.NamedTuple):
            a: int

            def _replace(self) -> None: ...
