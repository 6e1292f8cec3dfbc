"""Indented JSON, byte for byte what ``json.dumps(obj, indent=2, ensure_ascii=False)`` writes, faster.

The JSON tree of ``show`` is a public contract, so its bytes must not change;
but Python 3.11's C encoder does no indenting, and the pure-Python one spends
most of its time in nested generators (~5 ms per 1,000 instances, more than
building the tree). This writer appends to one list with the C string
escaper; any value it does not know (a non-string key, another type) makes it
hand the whole object to :func:`json.dumps`.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # the C escaper when available
from typing import Any


class _Unknown(Exception):
    """A value outside JSON's plain types: let the standard encoder decide."""


def _float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise _Unknown
    return float.__repr__(value)


def _write(value: Any, out: list[str], indent: str) -> None:
    kind = type(value)
    if kind is str:
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is float:
        out.append(_float(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = indent + "  "
        sep = "{\n" + inner
        for key, item in value.items():
            if type(key) is not str:
                raise _Unknown
            out.append(sep)
            out.append(encode_basestring(key))
            out.append(": ")
            _write(item, out, inner)
            sep = ",\n" + inner
        out.append("\n" + indent + "}")
    elif kind is list or kind is tuple:
        if not value:
            out.append("[]")
            return
        inner = indent + "  "
        sep = "[\n" + inner
        for item in value:
            out.append(sep)
            _write(item, out, inner)
            sep = ",\n" + inner
        out.append("\n" + indent + "]")
    else:
        raise _Unknown


def dumps_indented(obj: Any) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False)``, the same text."""
    out: list[str] = []
    try:
        _write(obj, out, "")
    except (_Unknown, RecursionError):
        return json.dumps(obj, indent=2, ensure_ascii=False)
    return "".join(out)
