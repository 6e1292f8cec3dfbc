"""What D and C do to a whole sequence: a dummy sequence, SR content items, annotations.

PS3.15 applies an action on a sequence to the sequence *and everything in
it*; keeping a ``D`` sequence and only walking into it let free text such as
an SR TEXT item ("Patient Jürgen Müller PID4711X, born 19610302") through.

- ``D`` on a sequence of SR content items (Content Sequence, Acquisition
  Context Sequence...): the items whose value is free (TEXT, PNAME, DATE,
  DATETIME, TIME, UIDREF) are removed with everything below them; coded,
  numeric, reference and container items stay (walked by the profile; a
  local code's meaning is cleaned as below), so the document keeps its structure.
- ``D`` on any other sequence: a dummy of the same shape; every value inside
  that can carry identity (text, names, dates, times) becomes a dummy, UIDs
  get their new UID, private elements go; codes strings (CS), numbers and
  binary data stay so the items remain valid (a presentation state keeps its
  annotation positions, its text becomes ``ANONYMIZED``).
- ``C`` (Clean Structured Content, Clean Graphics): the profile applies inside,
  then content items are cleaned: TEXT values become a dummy, and the meaning
  of a code from a local coding scheme (``99…``, ``L``, ``LOCAL``) too, since
  local meanings are free text; PNAME, DATE, DATETIME, TIME and UIDREF values
  are handled by their own rows of Table E.1-1 (dummy, date options, new UID).
"""

from __future__ import annotations

from typing import Protocol

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomtools.core.anonymize.values import DUMMY_BYTES, TEXT_VRS, put_raw
from dicomtools.core.anonymize.valuetext import element_text

VALUE_TYPE = 0x0040A040
TEXT_VALUE = 0x0040A160
CONCEPT_NAME = 0x0040A043
CONCEPT_CODE = 0x0040A168
CODE_MEANING = 0x00080104
CODING_SCHEME = 0x00080102
FREE_VALUE_TYPES = frozenset({"TEXT", "PNAME", "DATE", "DATETIME", "TIME", "UIDREF"})
_TIME_VRS = frozenset({"DA", "DT", "TM"})


class Walker(Protocol):
    """The engine as these functions need it."""

    remap_unlisted: bool  # False under Retain UIDs

    def walk(self, ds: Dataset, path: tuple[str, ...]) -> None: ...

    def remap(self, ds: Dataset, key: int, tag: int) -> None: ...

    def vr_of(self, ds: Dataset, tag: int) -> str: ...


def holds_content_items(seq: Sequence) -> bool:
    """Whether the items are SR content items (they carry a Value Type)."""
    return any(VALUE_TYPE in item._dict for item in seq)


def value_type(item: Dataset) -> str:
    return element_text(item, VALUE_TYPE).strip().upper()


def dummy_sequence(engine: Walker, seq: Sequence) -> None:
    """Replace every identifying value inside ``seq`` (any depth) by a dummy, in place."""
    for item in seq:
        _dummy_item(engine, item)


def _dummy_item(engine: Walker, item: Dataset) -> None:
    for key in list(item._dict):
        tag = int(key)
        if tag & 0x10000:
            del item._dict[key]
            continue
        vr = engine.vr_of(item, tag)
        if vr == "SQ":
            dummy_sequence(engine, item[key].value or Sequence())
        elif vr == "UI":
            if engine.remap_unlisted:
                engine.remap(item, key, tag)
        elif (vr in TEXT_VRS or vr in _TIME_VRS) and element_text(item, tag):
            put_raw(item, key, vr, DUMMY_BYTES[vr])


def drop_free_items(engine: Walker, seq: Sequence, path: tuple[str, ...]) -> Sequence:
    """``D`` on content items: the free-valued ones go, the rest are walked by the profile."""
    kept = Sequence([item for item in seq if value_type(item) not in FREE_VALUE_TYPES])
    for item in kept:
        engine.walk(item, path)
        _clean_codes(item)
    return kept


def clean_content_items(engine: Walker, seq: Sequence, path: tuple[str, ...]) -> None:
    """``C`` on content items: the profile inside, then TEXT values and local code meanings."""
    for item in seq:
        engine.walk(item, path)
        if value_type(item) == "TEXT" and TEXT_VALUE in item._dict:
            put_raw(item, TEXT_VALUE, "UT", DUMMY_BYTES["UT"])
        _clean_codes(item)


def _clean_codes(item: Dataset) -> None:
    for code_seq in (CONCEPT_NAME, CONCEPT_CODE):
        if code_seq in item._dict:
            for code in item[code_seq].value or ():
                clean_local_meaning(code)


def clean_local_meaning(code: Dataset) -> None:
    """A code of a local scheme (``99…``, ``L``, ``LOCAL``) keeps its value but not its free-text meaning."""
    scheme = element_text(code, CODING_SCHEME).strip().upper()
    if (scheme.startswith("99") or scheme in ("L", "LOCAL")) and element_text(code, CODE_MEANING):
        put_raw(code, CODE_MEANING, "LO", DUMMY_BYTES["LO"])
