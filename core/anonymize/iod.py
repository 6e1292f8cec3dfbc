"""Attribute Types per IOD, from the standard's tables as highdicom ships them.

PS3.15 E.3.1 chooses a combined action (``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``)
by the attribute's Type in the object's IOD, at the place it occurs (top
level or inside a given sequence): Type 1 needs a dummy, Type 2 may be empty,
Type 3 may go. Those Types are not written by hand here: highdicom carries
the standard's IOD -> module and module -> attribute tables (with the
sequence path of every attribute) as JSON data, which this module reads
directly from the installed package (without importing highdicom, whose
import pulls numpy and Pillow). Only the attributes a profile has combined
cells for are indexed, so the 22 MB table is parsed once and dropped.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydicom.datadict import keyword_for_tag

from dicomtools.core.errors import DicomToolsError

log = logging.getLogger(__name__)

# Strictest first: where modules disagree (or a module appears twice), the stricter Type counts.
_STRICTNESS = {"1": 0, "1C": 1, "2": 2, "2C": 3, "3": 4}

Path_ = tuple[str, ...]  # keywords of the enclosing sequences, outermost first


class IodDataError(DicomToolsError, RuntimeError):
    """highdicom's standard tables are not installed or not readable."""


def _data_dir() -> Path:
    spec = importlib.util.find_spec("highdicom")
    if spec is None or spec.origin is None:
        raise IodDataError("the package 'highdicom' (the standard's IOD tables) is not installed")
    return Path(spec.origin).parent / "_standard"


@lru_cache(maxsize=1)
def _iod_maps() -> tuple[dict[str, str], dict[str, list[str]]]:
    """SOP Class UID -> IOD name, IOD name -> module keys."""
    root = _data_dir()
    sop = json.loads((root / "sop_class_iod_map.json").read_text(encoding="utf-8"))
    iods = json.loads((root / "iod_module_map.json").read_text(encoding="utf-8"))
    return sop, {name: [m["key"] for m in mods] for name, mods in iods.items()}


_lock = threading.Lock()
_module_index: dict[str, dict[tuple[Path_, str], str]] = {}
_indexed: set[str] = set()


def _ensure_indexed(keywords: frozenset[str]) -> None:
    """Index the module tables for these attribute keywords (parsed once per new keyword set)."""
    missing = keywords - _indexed
    if not missing:
        return
    with _lock:
        missing = keywords - _indexed
        if not missing:
            return
        def keep(obj: dict[str, Any]) -> dict[str, Any] | None:
            # drop every attribute we do not need while parsing: the whole table never lives at once
            return obj if "keyword" not in obj or obj["keyword"] in missing else None

        text = (_data_dir() / "module_attribute_map.json").read_text(encoding="utf-8")
        data = json.loads(text, object_hook=keep)
        del text
        for module, attributes in data.items():
            index = _module_index.setdefault(module, {})
            for attr in attributes:
                if attr is not None:
                    key = (tuple(attr["path"]), attr["keyword"])
                    old = index.get(key)
                    if old is None or _STRICTNESS.get(attr["type"], 9) < _STRICTNESS.get(old, 9):
                        index[key] = attr["type"]
        _indexed.update(missing)
        log.debug("indexed IOD attribute types for %d keywords", len(missing))


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
    """Types of ``keywords`` in the IOD of ``sop_class_uid``; None for a class the tables lack."""
    sop, iods = _iod_maps()
    iod = sop.get(sop_class_uid.strip("\0 "))
    if iod is None:
        return None
    _ensure_indexed(keywords)
    types: dict[tuple[Path_, str], str] = {}
    for module in iods.get(iod, []):
        for key, typ in _module_index.get(module, {}).items():
            old = types.get(key)
            if old is None or _STRICTNESS.get(typ, 9) < _STRICTNESS.get(old, 9):
                types[key] = typ
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
