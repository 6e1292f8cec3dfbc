"""Tag expressions for search and filtering: a parser and a matcher over pydicom datasets.

One expression is ``PATH [OP [VALUE]]``. ``PATH`` is one or more tag steps joined by
``/`` (each step ``(gggg,eeee)``, ``gggg,eeee``, ``ggggeeee`` or a DICOM keyword); every
step but the last must be a sequence, and the expression holds if it holds in any item.
Operators: none (element present), ``=?`` (present, show its values), ``=`` (equals,
with DICOM ``*``/``?`` wildcards; ``=`` alone matches a present, empty element), ``!=``,
``~`` (regular expression, searched), ``<``, ``<=``, ``>``, ``>=`` (numbers, DA/TM/DT).

The module is pure: matching works on an in-memory :class:`pydicom.Dataset` and never
does I/O, so the CLI search, the index cache and the TUI filter share it.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence

from dicomtools.core.dicom.common_vrs import COMMON_VRS
from dicomtools.core.dicom.text import value_strings as element_strings
from dicomtools.core.errors import DicomToolsError, ExitStatus
from dicomtools.core.lazylog import ready
from dicomtools.core.records import NamedTuple
from dicomtools.core.search import dictionary

TYPE_CHECKING = False  # typing is not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset


def _datadict() -> Any:
    """pydicom's dictionary, imported only for what the table in
    :mod:`~dicomtools.core.search.dictionary` lacks (repeating groups, keyword
    suggestions): a search that names public tags never imports pydicom."""
    ready()  # pydicom logs by itself: its records meet the CLI's handlers
    from pydicom import datadict

    return datadict


def _dataset_class() -> type[Dataset]:
    from pydicom.dataset import Dataset

    return Dataset


def keyword_for_tag(tag: int) -> str:
    found = dictionary.entry(tag)
    if found is not None:
        return found[1]
    if (tag >> 16) % 2:  # private: pydicom's answer too
        return ""
    return str(_datadict().keyword_for_tag(tag) or "")


def dictionary_VR(tag: int) -> str:  # noqa: N802 - pydicom's name
    """pydicom's dictionary VR of ``tag``; raises KeyError for a tag it does not know."""
    vr = COMMON_VRS.get(tag)
    if vr is None:
        found = dictionary.entry(tag)
        if found is None and (tag >> 16) % 2:
            raise KeyError(f"private tag {tag:08X} is not in the DICOM dictionary")
        vr = found[0] if found is not None else str(_datadict().dictionary_VR(tag))
    return vr

OPS = ("present", "show", "eq", "ne", "regex", "lt", "le", "gt", "ge")
_OP_TEXT = {"eq": "=", "ne": "!=", "regex": "~", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_OP_CHARS = "=!~<>"

SPECIFIC_CHARACTER_SET = 0x00080005
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{4},?[0-9A-Fa-f]{4}", re.ASCII)
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9]*", re.ASCII)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_DATEISH = re.compile(r"\d[\d\-:.]*", re.ASCII)

# VRs whose leading spaces are insignificant too (PS3.5 6.2); all VRs drop trailing padding.
_LEADING_INSIGNIFICANT = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "SH", "TM", "UI"})
_DATE_VRS = frozenset({"DA", "TM", "DT"})


class ExprError(DicomToolsError, ValueError):
    """A malformed expression: ``message`` says what is wrong, ``position`` (0-based) where."""

    exit_status = ExitStatus.USAGE

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        if self.position > 0:
            return f"{self.message} (at column {self.position + 1})"
        return self.message


# The records are NamedTuples, not dataclasses: importing dataclasses (with inspect) and
# creating a class cost ~6 ms of a ~80 ms warm search.


class TagStep(NamedTuple):
    """One step of a path: the tag number and the text the user wrote for it."""

    tag: int
    text: str

    @property
    def keyword(self) -> str:
        return keyword_for_tag(self.tag) or ""

    @property
    def is_private(self) -> bool:
        return bool((self.tag >> 16) & 1)


class Match(NamedTuple):
    """The distinct values (in the order found) of the elements that made an expression hold."""

    values: list[str]


class Expression(NamedTuple):
    """A parsed expression; ``path_text`` is the path as written, used as the output key.

    ``pattern`` is compiled from ``op`` and ``value`` (equal sources give equal patterns).
    """

    source: str
    path: tuple[TagStep, ...]
    op: str
    value: str | None = None
    path_text: str = ""
    pattern: re.Pattern[str] | None = None

    @property
    def top_level_tag(self) -> int:
        return self.path[0].tag

    @property
    def has_wildcards(self) -> bool:
        value = self.value or ""
        return self.op in ("eq", "ne") and any(c in value for c in "*?")

    def evaluate(self, ds: Dataset) -> Match | None:
        """Return the values that made the expression hold in ``ds``, or None."""
        found = False
        values: list[str] = []
        for elem in iter_elements(ds, self.path):
            held = self._test(elem)
            if held is not None:
                found = True
                values.extend(held)
        return Match(_distinct(values)) if found else None

    def evaluate_strings(self, vr: str, strings: list[str] | None) -> Match | None:
        """Evaluate a single-step expression on an element given as its value strings.

        ``strings`` is None when the element is absent; the fast search path uses
        this to skip building a pydicom dataset.
        """
        if strings is None:
            return None
        held = self._test_strings(vr, strings)
        return None if held is None else Match(_distinct(held))

    def evaluate_elements(self, vr: str, elements: Iterable[list[str]]) -> Match | None:
        """:meth:`evaluate` on the leaf elements a path reached, each given as its value strings.

        The fast search path walks sequence items read from the bytes and hands
        over what it found, in file order, as :func:`iter_elements` would.
        """
        found = False
        values: list[str] = []
        for strings in elements:
            held = self._test_strings(vr, strings)
            if held is not None:
                found = True
                values.extend(held)
        return Match(_distinct(values)) if found else None

    def _test(self, elem: DataElement) -> list[str] | None:
        return self._test_strings(str(elem.VR), element_strings(elem))

    def _test_strings(self, vr: str, strings: list[str]) -> list[str] | None:
        vals = [_normalize(v, vr) for v in strings]
        empty = not vals or all(v == "" for v in vals)
        op = self.op
        if op in ("present", "show"):
            return vals or [""]
        if op == "regex":
            assert self.pattern is not None
            held = [v for v in (vals or [""]) if self.pattern.search(v)]
            return held or None
        if op in ("eq", "ne"):
            if self.value == "":
                if op == "eq":
                    return [""] if empty else None
                return None if empty else vals
            assert self.pattern is not None
            hits = [v for v in vals if self.pattern.fullmatch(v)]
            if op == "eq":
                return hits or None
            return None if hits else (vals or [""])
        assert self.value is not None
        held = [v for v in vals if _compare(vr, v, op, self.value)]
        return held or None


def parse(text: str) -> Expression:
    """Parse one expression; raise :class:`ExprError` with a one-line message on bad input."""
    cut = next((i for i, c in enumerate(text) if c in _OP_CHARS), len(text))
    path_part = text[:cut]
    if not path_part.strip():
        if cut < len(text):
            raise ExprError(f"missing tag before '{text[cut]}'", cut)
        raise ExprError("empty expression; expected a tag like (0010,0020) or PatientID", 0)
    path = _parse_path(path_part)
    op, value, value_pos = _parse_operator(text, cut)
    pattern: re.Pattern[str] | None = None
    if op == "regex":
        assert value is not None
        try:
            with warnings.catch_warnings():  # "possible nested set" and the like: not errors
                warnings.simplefilter("ignore")
                pattern = re.compile(value)
        except re.error as exc:
            raise ExprError(f"bad regular expression: {exc.msg}", value_pos + (exc.pos or 0)) from None
        except (OverflowError, RecursionError, ValueError) as exc:
            raise ExprError(f"bad regular expression: {exc}", value_pos) from None
    elif op in ("eq", "ne") and value:
        pattern = wildcard_regex(value)
    elif op in ("lt", "le", "gt", "ge"):
        assert value is not None
        if not value:
            raise ExprError(f"'{_OP_TEXT[op]}' needs a value", value_pos)
        if not (_NUMBER.fullmatch(value) or _DATEISH.fullmatch(value)):
            raise ExprError(
                f"'{_OP_TEXT[op]}' needs a number or a date/time like 20240101, got {value!r}",
                value_pos,
            )
    return Expression(text, path, op, value, path_part.strip(), pattern)


def parse_all(texts: Iterable[str]) -> list[Expression]:
    return [parse(t) for t in texts]


def _parse_path(part: str) -> tuple[TagStep, ...]:
    steps: list[TagStep] = []
    pos = 0
    pieces = part.split("/")
    for n, piece in enumerate(pieces):
        lead = len(piece) - len(piece.lstrip())
        where = pos + lead
        token = piece.strip()
        if not token:
            raise ExprError("empty step in tag path (use one '/' between tags)", where)
        tag = _parse_tag(token, where)
        if n < len(pieces) - 1:
            vr = _dictionary_vr(tag)
            if vr is not None and vr != "SQ":
                name = keyword_for_tag(tag) or token
                raise ExprError(f"{name} {_fmt_tag(tag)} is not a sequence, so no '/' after it", where)
        steps.append(TagStep(tag, token))
        pos += len(piece) + 1
    return tuple(steps)


def _parse_tag(token: str, where: int) -> int:
    if token.startswith("(") or token.endswith(")"):
        if not (token.startswith("(") and token.endswith(")")):
            raise ExprError("unbalanced parentheses around tag", where)
        inner = token[1:-1].replace(" ", "")
        if "," not in inner or not _HEX_TAG.fullmatch(inner):
            raise ExprError("tag needs 4+4 hex digits", where)
        return int(inner.replace(",", ""), 16)
    if _HEX_TAG.fullmatch(token):
        return int(token.replace(",", ""), 16)
    if "," in token or token[:1].isdigit():
        raise ExprError("tag needs 4+4 hex digits", where)
    if not _KEYWORD.fullmatch(token):
        raise ExprError(f"not a tag or keyword: {token!r}", where)
    tag = dictionary.tag_for_keyword(token)
    if tag is None:
        tag = _datadict().keyword_dict.get(token)
    if tag is None:
        tag = _lower_keywords().get(token.lower())
    if tag is None:
        import difflib  # only for the error message (start-up time)

        close = difflib.get_close_matches(token, _all_keywords(), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ExprError(f"unknown keyword {token!r}{hint}", where)
    return tag


def _parse_operator(text: str, cut: int) -> tuple[str, str | None, int]:
    """Return (op, value, position of the value) for the text from ``cut`` on."""
    if cut >= len(text):
        return "present", None, cut
    c = text[cut]
    two = text[cut : cut + 2]
    if c == "!":
        if two != "!=":
            raise ExprError("'!' must be followed by '='", cut)
        op, start = "ne", cut + 2
    elif two in ("<=", ">="):
        op, start = ("le" if c == "<" else "ge"), cut + 2
    elif c in "<>":
        op, start = ("lt" if c == "<" else "gt"), cut + 1
    elif c == "~":
        op, start = "regex", cut + 1
    else:
        op, start = "eq", cut + 1
    raw = text[start:]
    value = raw.strip()
    where = start + (len(raw) - len(raw.lstrip()))
    if op == "eq" and value == "?":
        return "show", None, where
    return op, value, where


def wildcard_regex(value: str) -> re.Pattern[str]:
    """DICOM wildcard matching (PS3.4 C.2.2.2.4): ``*`` any run of characters, ``?`` one."""
    parts = ("." if ch == "?" else ".*" if ch == "*" else re.escape(ch) for ch in value)
    return re.compile("".join(parts), re.DOTALL)


def iter_elements(ds: Dataset, path: Sequence[TagStep]) -> Iterator[DataElement]:
    """Yield the leaf element of ``path`` in every sequence item it reaches."""
    step = path[0]
    if step.tag not in ds:
        meta = getattr(ds, "file_meta", None)  # group 0002 lives there in a read file
        if step.tag >> 16 != 2 or meta is None or step.tag not in meta:
            return
        ds = meta
    elem = ds[step.tag]
    if len(path) == 1:
        yield elem
        return
    if elem.VR != "SQ" or not elem.value:
        return
    for item in elem.value:
        if isinstance(item, _dataset_class()):
            yield from iter_elements(item, path[1:])


# Text VRs whose value is never split on backslashes.
SINGLE_VALUED_TEXT = frozenset({"LT", "ST", "UT", "UR"})


def text_strings(vr: str, text: str) -> list[str]:
    """The value strings pydicom would give for a text element whose decoded value is ``text``."""
    parts = [text] if vr in SINGLE_VALUED_TEXT else text.split("\\")
    out = [p.rstrip(" \x00") if vr in SINGLE_VALUED_TEXT else p.strip(" \x00") for p in parts]
    return [] if out == [""] else out


def _normalize(value: str, vr: str) -> str:
    value = value.rstrip(" \x00")
    return value.lstrip(" ") if vr in _LEADING_INSIGNIFICANT else value


def _compare(vr: str, value: str, op: str, target: str) -> bool:
    a: str | float | None
    b: str | float | None
    if vr in _DATE_VRS:
        a, b = _datetime_key(vr, value), _datetime_key(vr, target)
    else:
        a, b = _number(value), _number(target)
    if a is None or b is None:
        return False
    if op == "lt":
        return a < b  # type: ignore[operator]
    if op == "le":
        return a <= b  # type: ignore[operator]
    if op == "gt":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def _number(text: str) -> float | None:
    text = text.strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def _datetime_key(vr: str, text: str) -> str | None:
    """A fixed-width digit string that sorts like the DA/TM/DT it stands for."""
    text = text.strip()
    if vr == "DT":
        m = re.fullmatch(r"([\d\-:T ]+?)(\.\d{1,6})?([+-]\d{4})?", text, re.ASCII)
        if not m:
            return None
        main = re.sub(r"[\-:T ]", "", m.group(1))
        frac = (m.group(2) or ".")[1:]
        return main.ljust(14, "0")[:14] + frac.ljust(6, "0") if main.isdigit() else None
    if vr == "TM":
        main, _, frac = text.replace(":", "").partition(".")
        if not main.isdigit() or (frac and not frac.isdigit()):
            return None
        return main.ljust(6, "0")[:6] + frac.ljust(6, "0")[:6]
    digits = re.sub(r"[\-.]", "", text)
    return digits.ljust(8, "0")[:8] if digits.isascii() and digits.isdigit() else None


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _dictionary_vr(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _fmt_tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@functools.cache
def _all_keywords() -> tuple[str, ...]:
    return tuple(sorted(k for k in _datadict().keyword_dict if k))


@functools.cache
def _lower_keywords() -> dict[str, int]:
    return {k.lower(): t for k, t in _datadict().keyword_dict.items() if k}


def matches_all(exprs: Sequence[Expression], ds: Dataset) -> dict[str, list[str]] | None:
    """Evaluate every expression (AND); return values keyed by path text, or None.

    Two expressions on the same path (``StudyDate>=2024`` and ``StudyDate<2025``)
    share one key; their values are merged.
    """
    out: dict[str, list[str]] = {}
    for expr in exprs:
        m = expr.evaluate(ds)
        if m is None:
            return None
        out[expr.path_text] = _distinct(out.get(expr.path_text, []) + m.values)
    return out


def needed_top_level_tags(exprs: Iterable[Expression]) -> list[int]:
    """The top-level tags a reader must keep to evaluate ``exprs``, sorted.

    For a private data element its private creator (gggg,00xx) is added, so the
    reader can resolve the element's VR in implicit-VR files.
    """
    tags: set[int] = set()
    for expr in exprs:
        tag = expr.top_level_tag
        tags.add(tag)
        group, elem = tag >> 16, tag & 0xFFFF
        if group & 1 and elem >= 0x1000:
            tags.add((group << 16) | (elem >> 8))
    return sorted(tags)


def describe(expr: Expression) -> str:
    """A short human form, e.g. ``PatientID = Phantom-1`` for logs and the TUI."""
    names = "/".join(s.keyword or _fmt_tag(s.tag) for s in expr.path)
    if expr.op == "present":
        return f"{names} present"
    if expr.op == "show":
        return f"{names} = ?"
    return f"{names} {_OP_TEXT[expr.op]} {expr.value}"


def suggest(prefix: str, limit: int = 20) -> list[str]:
    """Keywords for a filter input: prefix matches first, then substring matches.

    A hex prefix (``300A``, ``(300a,00b``) also lists keywords whose tag starts with it.
    """
    text = prefix.strip()
    if not text:
        return list(_all_keywords()[:limit])
    low = text.lower()
    out = [k for k in _all_keywords() if k.lower().startswith(low)]
    if len(out) < limit:
        seen = set(out)
        out += [k for k in _all_keywords() if low in k.lower() and k not in seen]
    hexpart = re.sub(r"[(),\s]", "", text)
    if re.fullmatch(r"[0-9A-Fa-f]{1,8}", hexpart, re.ASCII) and len(out) < limit:
        seen = set(out)
        out += [
            k
            for k, t in sorted(_datadict().keyword_dict.items(), key=lambda kv: kv[1])
            if k and f"{t:08X}".startswith(hexpart.upper()) and k not in seen
        ]
    return out[:limit]
