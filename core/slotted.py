"""Value equality and ``repr`` for plain slotted classes: what ``@dataclass`` gave, without it.

Why: the records on every command's start-up path (scan summaries, tree nodes)
stopped being dataclasses, because importing :mod:`dataclasses` and creating
each class cost more than reading hundreds of files. Each such class still
compared and printed field by field; this base does it once, over the class's
``__slots__`` (its fields, in order), read with one ``operator.attrgetter``.
"""

from __future__ import annotations

import operator

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any, ClassVar


class Slotted:
    """Fields = ``__slots__``; ``==`` compares them (same class only), ``repr`` shows them; unhashable."""

    __slots__: tuple[str, ...] = ()
    _values_of: ClassVar[Any]  # attrgetter of every field, in order: one C call per comparison

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        first, *rest = cls.__slots__  # two or more: attrgetter of one name would not return a tuple
        assert rest, f"{cls.__name__}: a Slotted class has at least two fields"
        cls._values_of = operator.attrgetter(first, *rest)

    def _values(self) -> tuple[Any, ...]:
        """Every field, in ``__slots__`` order."""
        return self._values_of(self)  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values_of(self) == self._values_of(other)  # type: ignore[no-any-return]

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value: as a dataclass with eq

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in zip(self.__slots__, self._values(), strict=True))
        return f"{type(self).__name__}({inner})"
