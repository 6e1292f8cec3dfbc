"""The fast search path: expressions evaluated on element bytes, without pydicom.

pydicom costs ~0.2 s to import and builds a dataset per file; a search asks
for one or two elements. When every expression is a public text element at the
top level, or a path through public sequences to one (``BeamSequence/
TreatmentMachineName``), the archive's fast parser reads just those from the
header bytes (sequence items by a spec, control points and contours skipped by
length, pixel data never read) and this module evaluates the expressions on
them. Anything the fast parser is unsure of sends the file to pydicom, so the
fast path answers as pydicom does or not at all (equivalence tests:
``tests/unit/test_search_fastpath.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence

from dicomtools.core.archive import fastread
from dicomtools.core.archive.fastread import Item, SequenceSpec
from dicomtools.core.archive.read import Instance
from dicomtools.core.dicom.text import pn_text
from dicomtools.core.records import NamedTuple
from dicomtools.core.search import expr as expr_mod
from dicomtools.core.search.expr import Expression

SPECIFIC_CHARACTER_SET = 0x00080005

# VRs the fast reader hands over as raw bytes (text; decoded here as pydicom decodes them).
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
# VRs pydicom decodes with the Specific Character Set (the rest are default repertoire).
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})

# Leaf VRs of a sequence path answered from the fast parser's items. An item keeps a
# value only when it is ASCII, single-valued and of a text VR, stripped of spaces and
# NULs on both ends: what ``text_strings`` gives for these VRs, whatever text VR the
# file declares. PN (drops trailing '=' groups) and LT/ST/UT/UR (keep leading spaces)
# would differ, so those go to pydicom.
SEQUENCE_LEAF_VRS = TEXT_VRS - {"PN", "LT", "ST", "UT", "UR"}
# Operators whose answer on such values does not depend on the VR (comparisons read
# DA/TM/DT otherwise than numbers, and a file may declare another VR than the dictionary).
_VR_FREE_OPS = frozenset({"present", "show", "eq", "ne", "regex"})


class ReadPlan(NamedTuple):
    """What the fast parser must read for a set of expressions.

    ``flat``: top-level text elements kept as raw bytes; ``sequences``: top-level
    sequences read by ``specs`` (inner tag -> None for a value, or a nested spec).
    """

    flat: frozenset[int]
    sequences: frozenset[int] = frozenset()
    specs: Mapping[int, SequenceSpec] | None = None


def _public_vr(tag: int) -> str | None:
    """The dictionary VR of a public data element, None for private, meta, item or unknown tags."""
    group = tag >> 16
    if group % 2 == 1 or group in (0x0002, 0xFFFE):
        return None
    try:
        return expr_mod.dictionary_VR(tag)
    except KeyError:
        return None


@functools.lru_cache(maxsize=64)
def flat_tags(tags: tuple[int, ...]) -> frozenset[int] | None:
    """The tags as a set when every one is a public text element, else None."""
    for tag in tags:
        if tag != SPECIFIC_CHARACTER_SET and _public_vr(tag) not in TEXT_VRS:
            return None
    return frozenset(tags) - {SPECIFIC_CHARACTER_SET}


def _sequence_path_ok(e: Expression) -> bool:
    """A path through public sequences to a leaf the items answer exactly (see SEQUENCE_LEAF_VRS)."""
    if e.op not in _VR_FREE_OPS:
        return False
    *steps, leaf = e.path
    if any(_public_vr(s.tag) != "SQ" for s in steps):
        return False
    return leaf.tag != SPECIFIC_CHARACTER_SET and _public_vr(leaf.tag) in SEQUENCE_LEAF_VRS


def plan(exprs: Sequence[Expression]) -> ReadPlan | None:
    """The fast read plan for ``exprs``, or None when a file must be read by pydicom."""
    flat = flat_tags(tuple(expr_mod.needed_top_level_tags(e for e in exprs if len(e.path) == 1)))
    if flat is None:
        return None
    specs: dict[int, dict[int, object]] = {}
    for e in exprs:
        if len(e.path) == 1:
            continue
        if not _sequence_path_ok(e):
            return None
        spec = specs.setdefault(e.top_level_tag, {})
        for step in e.path[1:-1]:
            inner = spec.setdefault(step.tag, {})
            assert isinstance(inner, dict)  # an SQ step is never also a leaf (VRs differ)
            spec = inner
        spec[e.path[-1].tag] = None
    if set(specs) & flat:
        return None  # a tag both flat and a sequence: pydicom decides
    return ReadPlan(flat, frozenset(specs), specs or None)  # type: ignore[arg-type]


def _leaves(items: list[Item], path: Sequence[int]) -> Iterator[list[str]]:
    """The value strings of the leaf in every item ``path`` reaches, in file order."""
    tag = path[0]
    for item in items:
        value = item.get(tag)
        if value is None:
            continue
        if len(path) == 1:
            if isinstance(value, str):
                yield [value] if value else []
        elif isinstance(value, list):
            yield from _leaves(value, path[1:])


def _flat_strings(hdr: fastread.FastHeader, tag: int, identity: dict[int, str], codec: str) -> tuple[str, list[str]] | None:
    """(VR, value strings) of a top-level element as pydicom decodes it, None when absent."""
    raw = hdr.raw.get(tag)
    if raw is None and identity.get(tag):
        raw = (b"UI", identity[tag].encode("ascii", errors="replace"))
    if raw is None:
        return None
    vr = raw[0].decode("ascii") if raw[0] else expr_mod.dictionary_VR(tag)  # implicit VR: look it up
    text = raw[1].decode(codec if vr in _CHARSET_VRS else "latin_1", errors="replace")
    strings = expr_mod.text_strings(vr, text)
    if vr == "PN":  # as pydicom decodes it: no trailing empty component groups
        strings = [pn_text(v) for v in strings]
    return vr, strings


def evaluate(exprs: Sequence[Expression], found: Instance) -> list[list[str] | None]:
    """Each expression's values on a fast-read instance (None where it does not hold)."""
    hdr = found.fast
    assert hdr is not None
    codec = fastread.SIMPLE_CHARSETS.get(hdr.values.get(SPECIFIC_CHARACTER_SET, ""), "ascii")
    # SOP UIDs the data set lacks come from the file meta, as in every command.
    identity = {0x00080016: found.sop_class_uid, 0x00080018: found.sop_instance_uid}
    per_expr: list[list[str] | None] = []
    for e in exprs:
        if len(e.path) == 1:
            got = _flat_strings(hdr, e.top_level_tag, identity, codec)
            m = None if got is None else e.evaluate_strings(*got)
        else:
            items = hdr.items.get(e.top_level_tag, [])
            leaf_vr = expr_mod.dictionary_VR(e.path[-1].tag)
            m = e.evaluate_elements(leaf_vr, _leaves(items, [s.tag for s in e.path[1:]]))
        per_expr.append(None if m is None else list(m.values))
    return per_expr
