"""Element values as text in the file's own character set: what name and leak checks compare.

pydicom's ``PersonName`` iterates over its *characters*, and ISO 2022 text
(Japanese IR 87, Korean IR 149) is 7-bit bytes that look like ASCII. Joining
the first gives ``M\\ü\\l\\l\\e\\r``; decoding the second as ASCII gives escape
sequences. Either way no comparison with the original name can match, so
names leaked silently. Everything here returns decoded Unicode values.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName

# VRs whose raw bytes are text (ASCII fast path allowed when there is no ISO 2022 escape).
STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
                      "UR", "UT"})
_ESC = 0x1B


def values_of(value: Any) -> list[str]:
    """The values of an already decoded element value, each as one string (a name is one value)."""
    if value is None:
        return []
    if isinstance(value, PersonName | str):
        return [str(value)]
    if isinstance(value, bytes | bytearray):
        return [bytes(value).decode("latin-1").strip("\0 ")]
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def element_values(ds: Dataset, tag: int) -> list[str]:
    """The values of ``tag`` in ``ds``, decoded with the data set's character set; [] when absent.

    Raw ASCII values without an escape byte are split directly (no pydicom
    conversion: the common case, and cheap); anything else goes through
    pydicom. A value pydicom cannot decode gives [] (the caller reports the
    file elsewhere).
    """
    elem = ds._dict.get(BaseTag(tag))
    if elem is None:
        return []
    raw = elem.value
    if elem.is_raw and isinstance(raw, bytes) and elem.VR in STRING_VRS and raw.isascii() and _ESC not in raw:
        text = raw.decode("ascii").rstrip("\0 ")
        return [v.strip(" \0") for v in text.split("\\")] if text else []
    try:
        value = ds[tag].value
    except Exception:  # pydicom raises many types on a damaged value
        return []
    return values_of(value)


def element_text(ds: Dataset, tag: int) -> str:
    """``tag``'s values joined by backslash; '' when absent or undecodable.

    The one value-to-text reader of the anonymizer: the engine, the batch run,
    the leak checker and the path namer all read values through it.
    """
    return "\\".join(element_values(ds, tag))


def name_groups(name: str) -> list[list[str]]:
    """A PN value as its groups (alphabetic, ideographic, phonetic), each a list of non-empty components."""
    return [[c.strip() for c in group.split("^") if c.strip()] for group in name.split("=")]


_TRANSLIT = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "œ": "oe", "Œ": "oe",
                           "ð": "d", "Ð": "d", "đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th",
                           "ı": "i"})
_TRANSLIT_CASED = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE",
                                 "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ı": "i"})


def transliterate(text: str) -> str:
    """Latin letters without accents, case kept: ``Größe`` -> ``Grosse``; other scripts unchanged."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).translate(_TRANSLIT_CASED))
    return "".join(c for c in text if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Lower case, compatibility forms unified, accents dropped: ``Müller`` and ``MULLER`` fold alike."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).translate(_TRANSLIT))
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


def spellings(word: str) -> set[str]:
    """Folded spellings a name word takes in file names and free text: ``Müller`` -> muller, mueller, m_ller."""
    out = {fold(word)}
    german = word.translate(_GERMAN)
    out.add(fold(german))
    if not word.isascii() and any(c.isascii() and c.isalnum() for c in word):
        out.add(fold("".join(c if c.isascii() else "_" for c in word)))  # what ASCII-only tools made of it
    return {s for s in out if s}


def has_unspaced_script(text: str) -> bool:
    """Whether ``text`` holds CJK / kana / Hangul, written without spaces between words."""
    return any(ord(c) >= 0x2E80 and unicodedata.category(c).startswith("L") for c in text)


def iter_elements(ds: Dataset) -> Iterator[DataElement]:
    """The data set's elements, decoded; one pydicom cannot decode is skipped, not fatal."""
    for key in list(ds._dict):
        try:
            yield ds[key]
        except Exception:  # a damaged element: the rest of the data set is still checked
            continue


def peek_elements(ds: Dataset) -> Iterator[DataElement]:
    """The data set's elements decoded without storing the decoded form back into ``ds``.

    Why not :func:`iter_elements` on a data set that will be written: pydicom
    writes a decoded element re-encoded (an explicit UN as its dictionary VR,
    a value without its odd padding), so collecting --verify's identifiers
    from the original changed the output's bytes. Looking must not.
    """
    charset = getattr(ds, "original_character_set", None) or ds._character_set
    for key, elem in list(ds._dict.items()):
        if isinstance(elem, RawDataElement):
            if elem.value is None and elem.length != 0:  # a deferred read: only pydicom's own access loads it
                try:
                    yield ds[key]
                except Exception:
                    pass
                continue
            try:
                elem = convert_raw_data_element(elem, encoding=charset if key != 0x00080005 else None, ds=ds)
            except Exception:  # a damaged element: the rest of the data set is still checked
                continue
        yield elem


def contains_word(haystack: str, needle: str) -> bool:
    """``needle`` in ``haystack`` (both folded) not glued to letters or digits on either side.

    Needles in scripts written without spaces match anywhere.
    """
    if has_unspaced_script(needle):
        return needle in haystack
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before = haystack[start - 1] if start else " "
        after = haystack[end] if end < len(haystack) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        start = haystack.find(needle, start + 1)
    return False
