"""Attribute Types per IOD, from the standard's tables as highdicom ships them.

PS3.15 E.3.1 chooses a combined action (``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``)
by the attribute's Type in the object's IOD, at the place it occurs (top
level or inside a given sequence): Type 1 needs a dummy, Type 2 may be empty,
Type 3 may go. Those Types are not written by hand here: highdicom carries
the standard's IOD -> module and module -> attribute tables; :mod:`iod_build`
derives from them the compact table shipped as package data
(``profiles/standard/iod-attribute-types.tsv``, a test keeps it equal to what
the pinned highdicom gives). Reading it costs milliseconds; a module's
attributes are decoded only when an object of an IOD that uses it is seen
(and only the keywords asked for are kept).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag

from dicomtools.core.errors import DicomToolsError

log = logging.getLogger(__name__)

PACKAGE = "dicomtools.profiles"
FILE_NAME = "iod-attribute-types.tsv"  # written by iod_build from the pinned highdicom
# Strictest first: where modules disagree (or a module appears twice), the stricter Type counts.
_STRICTNESS = {"1": 0, "1C": 1, "2": 2, "2C": 3, "3": 4}

Path_ = tuple[str, ...]  # keywords of the enclosing sequences, outermost first


class IodDataError(DicomToolsError, RuntimeError):
    """The packaged IOD attribute-Type table is missing or unreadable (a broken install)."""


class _Table:
    """The packaged table: SOP class -> IOD, IOD -> modules, module -> its (still encoded) attributes."""

    def __init__(self, text: str) -> None:
        self.sop: dict[str, str] = {}
        self.iods: dict[str, list[str]] = {}
        self.encoded: dict[str, str] = {}
        for line in text.splitlines():
            kind, _, rest = line.partition("\t")
            name, _, value = rest.partition("\t")
            if kind == "S":
                self.sop[name] = value
            elif kind == "I":
                self.iods[name] = value.split()
            elif kind == "M":
                self.encoded[name] = value


@lru_cache(maxsize=1)
def _table() -> _Table:
    try:
        text = (resources.files(PACKAGE) / "standard" / FILE_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IodDataError(f"the standard's IOD table {FILE_NAME} is missing or unreadable: {exc}") from None
    return _Table(text)


def _module(name: str, keywords: frozenset[str]) -> dict[tuple[Path_, str], str]:
    """One module's Types of ``keywords`` by (sequence path, keyword) (format: :func:`iod_build.build`)."""
    index: dict[tuple[Path_, str], str] = {}
    place: list[str] = []
    for entry in _table().encoded.get(name, "").split():
        text, _, typ = entry.partition("=")
        place[int(text[0]):] = text[1:].split("/")  # the shared count is one digit (paths are shallower)
        if place[-1] in keywords:
            index[(tuple(place[:-1]), place[-1])] = typ
    return index


class IodTypes:
    """The Types of some attributes in one IOD, by (sequence path, keyword)."""

    def __init__(self, iod: str, types: dict[tuple[Path_, str], str]) -> None:
        self.iod = iod
        self.types = types

    def type_of(self, path: Path_, keyword: str) -> str | None:
        """The attribute's Type at that place, or None when the IOD does not have it there."""
        return self.types.get((path, keyword))


@lru_cache(maxsize=256)
def iod_types(sop_class_uid: str, keywords: frozenset[str]) -> IodTypes | None:
    """Types (1, 1C, 2, 2C) of ``keywords`` in the IOD of ``sop_class_uid``; None for a class the tables lack.

    An attribute absent from the result is Type 3 or not in the IOD at that place (the same choice).
    The answer is kept in the user's cache folder: reading the 1.7 MB table
    costs every run ~5 ms before its first file, for the same few answers.
    """
    cache = _cache_file(sop_class_uid, keywords)
    if cache is not None:
        from dicomtools.core.anonymize.profile_cache import load_entry

        try:
            return _from_plain(load_entry(cache))
        except (TypeError, ValueError, KeyError):  # missing, corrupt or foreign: read the table
            pass
    found = _iod_types(sop_class_uid, keywords)
    if cache is not None:
        from dicomtools.core.anonymize.profile_cache import save_entry

        save_entry(cache, {"format": 1, "iod": found.iod, "types": [[list(p), k, t] for (p, k), t in found.types.items()]}
                   if found is not None else {"format": 1, "iod": None})
    return found


def _cache_file(sop_class_uid: str, keywords: frozenset[str]) -> Path | None:
    """The cache entry for this question, keyed by the table file (size, mtime), our version and the question."""
    import hashlib
    import os

    from dicomtools.core import __version__
    from dicomtools.core.anonymize.profile_cache import cache_folder

    try:
        st = os.stat(str(resources.files(PACKAGE) / "standard" / FILE_NAME))
    except (OSError, TypeError):  # not a plain file (a zip): no cache
        return None
    key = "\0".join([__version__, str(st.st_size), str(st.st_mtime_ns), sop_class_uid, *sorted(keywords)])
    return cache_folder() / f"iod-{hashlib.blake2b(key.encode('utf-8', 'replace'), digest_size=20).hexdigest()}.json"


def _from_plain(data: Any) -> IodTypes | None:
    if not isinstance(data, dict) or data.get("format") != 1:
        raise ValueError("not a cached IOD answer")
    iod = data["iod"]
    if iod is None:
        return None
    types: dict[tuple[Path_, str], str] = {}
    for path, kw, typ in data["types"]:
        if not (isinstance(kw, str) and isinstance(typ, str) and all(isinstance(p, str) for p in path)):
            raise TypeError("bad entry")
        types[(tuple(path), kw)] = typ
    return IodTypes(str(iod), types)


def _iod_types(sop_class_uid: str, keywords: frozenset[str]) -> IodTypes | None:
    table = _table()
    iod = table.sop.get(sop_class_uid.strip("\0 "))
    if iod is None:
        return None
    types: dict[tuple[Path_, str], str] = {}
    for module in table.iods.get(iod, []):
        for key, typ in _module(module, keywords).items():
            old = types.get(key)
            if old is None or _STRICTNESS.get(typ, 9) < _STRICTNESS.get(old, 9):
                types[key] = typ
    log.debug("IOD %s: Types of %d attribute places", iod, len(types))
    return IodTypes(iod, types)


def choose(cell: str, attr_type: str | None) -> str:
    """The single action of a combined cell for an attribute of this Type (PS3.15 E.3.1).

    Type 1/1C: D where the cell has it (else Z); Type 2/2C: Z where the cell has it
    (else D); Type 3 or not in the IOD: the cell's first action.
    """
    actions = cell.split("/")
    if cell == "X/Z/U*":
        return "U*"
    base = (attr_type or "3").rstrip("C")
    if base == "1":
        for want in ("D", "Z"):
            if want in actions:
                return want
    elif base == "2":
        for want in ("Z", "D"):
            if want in actions:
                return want
    return actions[0]


def conform(action: str, attr_type: str | None) -> str:
    """A single action made to keep the object valid: nothing identifying survives either way.

    The table's ``X`` on an attribute the IOD needs at that place would leave an invalid
    object (dciodvfy: "Missing attribute Type 2 Required"), so, as E.3.1 does for
    combined cells: ``X`` becomes ``Z`` where the attribute is Type 2/2C and ``D`` where
    it is Type 1/1C, and ``Z`` becomes ``D`` where it is Type 1/1C.
    """
    base = (attr_type or "3").rstrip("C")
    if base == "1" and action in ("X", "Z"):
        return "D"
    if base == "2" and action == "X":
        return "Z"
    return action


def keyword(tag: int) -> str:
    """The keyword of a standard tag ('' when pydicom does not know it)."""
    return keyword_for_tag(tag) or ""
