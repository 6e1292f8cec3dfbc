"""pydicom's data dictionary (tag, VR, keyword) read without importing pydicom.

Importing pydicom costs 0.1-0.3 s, more than the rest of a warm search or of a
search on a small folder, which needs only the keyword or VR of the few tags
it names. ``dictionary.tsv`` is generated from the installed pydicom
(``python -m dicomtools.core.search.dictionary``) and
``tests/unit/test_search_dictionary.py`` checks it against pydicom byte for byte
and entry for entry. What it does not hold (repeating groups like (60xx,3000),
a newer pydicom's additions) the callers still ask pydicom.

Lookups are substring searches in the table's text (tens of microseconds),
so no dict of 5,000 entries is built for a command that asks about two tags.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping

TABLE_FILE = os.path.join(os.path.dirname(__file__), "dictionary.tsv")


@functools.cache
def _text() -> str:
    """The whole table, with a leading newline so every row starts after one."""
    with open(TABLE_FILE, encoding="ascii") as fh:
        return "\n" + fh.read()


@functools.lru_cache(maxsize=4096)
def entry(tag: int) -> tuple[str, str] | None:
    """``(VR, keyword)`` of a tag in the main dictionary (pydicom's strings), or None."""
    if not 0 <= tag <= 0xFFFFFFFF:
        return None
    text = _text()
    at = text.find(f"\n{tag:08X}\t")
    if at < 0:
        return None
    row = text[at + 1 : text.index("\n", at + 1)]
    _, vr, keyword = row.split("\t")
    return vr, keyword


@functools.lru_cache(maxsize=1024)
def tag_for_keyword(keyword: str) -> int | None:
    """The tag of an exact (case-sensitive) keyword, or None."""
    if not keyword or not keyword.isalnum() or not keyword.isascii():
        return None
    text = _text()
    at = text.find(f"\t{keyword}\n")
    if at < 0:
        return None
    start = text.rfind("\n", 0, at) + 1
    return int(text[start : start + 8], 16)


def render(dictionary: Mapping[int, tuple[str, str, str, str, str]]) -> str:
    """The table's text for pydicom's ``DicomDictionary``: ``TAG<tab>VR<tab>keyword``, by tag."""
    return "".join(f"{tag:08X}\t{e[0]}\t{e[4]}\n" for tag, e in sorted(dictionary.items()))


def main() -> int:
    """Regenerate ``dictionary.tsv`` from the installed pydicom (after a pydicom upgrade)."""
    from pydicom.datadict import DicomDictionary

    text = render(DicomDictionary)
    tmp = TABLE_FILE + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n") as fh:
        fh.write(text)
    os.replace(tmp, TABLE_FILE)
    sys.stdout.write(f"{TABLE_FILE}: {text.count(chr(10))} entries\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
