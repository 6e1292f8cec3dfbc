"""Indented JSON, byte for byte what ``json.dumps(obj, indent=2, ensure_ascii=False)`` writes, faster.

The JSON tree of ``show`` is a public contract, so its bytes must not change;
but Python 3.11's C encoder does no indenting, and the pure-Python one spends
most of its time in nested generators (~5 ms per 1,000 instances, more than
building the tree). This writer joins each container's text as soon as it is
done, escaping strings with the C escaper (taken from ``_json``: the ``json``
package is imported only for) any value it does not know (a non-string key,
another type), which hands the whole object to :func:`json.dumps`.
"""

from __future__ import annotations

from collections.abc import Callable

try:  # the C escaper json.encoder uses, without importing the json package (~1.5 ms of start-up)
    from _json import encode_basestring
except ImportError:  # pragma: no cover - CPython always builds _json
    from json.encoder import py_encode_basestring as encode_basestring

from dicomtools.core.errors import DicomToolsError

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any


class _Unknown(DicomToolsError):
    """A value outside JSON's plain types: let the standard encoder decide."""


class Made:
    """A value whose indented text its producer writes itself (a long list of same-shaped objects).

    ``text(indent)`` gives what :func:`dumps_indented` would write for ``plain()``
    at that indent; ``plain()`` is the value itself, for the standard encoder.
    """

    __slots__ = ("text", "plain")

    def __init__(self, text: Callable[[str], str], plain: Callable[[], Any]) -> None:
        self.text = text
        self.plain = plain


def _float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise _Unknown
    return float.__repr__(value)


def _text(value: Any, indent: str) -> str:
    """One value's text; each container is joined as soon as it is done, so the
    pieces of 100,000 instances never live at once (peak memory ~ the output)."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _float(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = indent + "  "
        glue = ",\n" + inner
        # one flat list joined once: each level copies its children's text once, not five times
        pieces = ["{\n", inner]
        for key, item in value.items():
            if type(key) is not str:
                raise _Unknown
            pieces += (encode_basestring(key), ": ", _text(item, inner), glue)
        pieces[-1] = "\n" + indent + "}"
        return "".join(pieces)
    if kind is Made:
        try:
            return value.text(indent)  # type: ignore[no-any-return]
        except TypeError:  # a value of an unexpected type inside
            raise _Unknown from None
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = indent + "  "
        glue = ",\n" + inner
        pieces = ["[\n", inner]
        for item in value:
            pieces += (_text(item, inner), glue)
        pieces[-1] = "\n" + indent + "]"
        return "".join(pieces)
    raise _Unknown


def dumps_indented(obj: Any) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False)``, the same text."""
    try:
        return _text(obj, "")
    except (_Unknown, RecursionError):
        import json

        return json.dumps(obj, indent=2, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if type(value) is Made:
        return value.plain()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
