"""``NamedTuple`` for the records on the start-up path, without importing :mod:`typing` at run time.

Why: importing ``typing`` costs ~1.4 ms, and ``typing.NamedTuple`` compiles each
field's annotation (a string under ``from __future__ import annotations``) into a
``ForwardRef``: ~0.2 ms a class, ~3.5 ms for the dozen records a cold ``show``
creates, 7 % of a 1,000-file show. mypy sees ``typing.NamedTuple`` (the name
``TYPE_CHECKING`` is true for it); at run time the same class statement builds
the same :func:`collections.namedtuple`, with the class body's defaults, methods
and docstring, as ``typing`` does.

Modules on that path also write ``TYPE_CHECKING = False`` and import their
annotation-only names from ``typing`` under it, for the same reason.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    # What typing.NamedTuple refuses to have overwritten, and what it does not copy.
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields",
                             "_field_defaults", "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _Builder(type):
        """``class X(NamedTuple): a: int; b: str = ""`` makes ``collections.namedtuple("X", "a b")``."""

        def __new__(mcs, name, bases, ns):  # noqa: N804  (a metaclass)
            if not bases:  # NamedTuple itself
                return super().__new__(mcs, name, bases, ns)
            if bases != (NamedTuple,):
                raise TypeError(f"{name}: a NamedTuple has no other base")
            fields = list(ns.get("__annotations__", {}))
            defaults = []
            for field in fields:
                if field in ns:
                    defaults.append(ns[field])
                elif defaults:
                    raise TypeError(f"{name}: non-default field {field!r} after a default")
            cls = collections.namedtuple(name, fields, defaults=defaults, module=ns["__module__"])
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"{name}: cannot overwrite NamedTuple attribute {key}")
                if key not in _SPECIAL and key not in fields:
                    setattr(cls, key, value)
            cls.__annotations__ = dict(ns.get("__annotations__", {}))
            return cls

    class NamedTuple(metaclass=_Builder):
        """Base of a record class; the class statement returns a ``collections.namedtuple``."""
