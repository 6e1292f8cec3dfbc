"""The standard's tables shipped with the profiles (``profiles/standard/*.tsv``), read once.

- PS3.15 2026c Table E.1-1 as published: what the built-in profiles are generated
  from (see :mod:`tsv_import`) and what the conformance tests compare them with.
- Table E.3.10-1, the private attributes the standard lists as safe: what the
  Retain Safe Private Option keeps (a private rule whose action is ``C``).
"""

from __future__ import annotations

import csv
import io
import logging
from functools import lru_cache
from importlib import resources

log = logging.getLogger(__name__)

PACKAGE = "dicomtools.profiles"
TABLE_E1_1 = "ps3.15-2026c-table-e1-1.tsv"
TABLE_E3_10_1 = "ps3.15-2026c-table-e3.10-1-safe-private.tsv"
EDITION = "2026c"


def read_tsv(name: str) -> list[dict[str, str]]:
    """The rows of one packaged table (header row = keys)."""
    text = (resources.files(PACKAGE) / "standard" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


@lru_cache(maxsize=1)
def safe_private() -> frozenset[tuple[int, int, str]]:
    """Table E.3.10-1 as (group, element low byte, private creator) triples."""
    out: set[tuple[int, int, str]] = set()
    for row in read_tsv(TABLE_E3_10_1):
        tag = row["data_element"].strip("() ")
        group, element = tag.split(",")
        out.add((int(group, 16), int(element[2:], 16), row["private_creator"].strip()))
    return frozenset(out)


def is_safe_private(group: int, element: int, creator: str) -> bool:
    """Whether private element ``(group, xxEE)`` of ``creator`` is listed as safe (block-relative)."""
    return (group, element & 0xFF, creator.strip()) in safe_private()
