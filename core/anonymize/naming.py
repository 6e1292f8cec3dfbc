"""Keeping original identifiers out of output file and folder names, in any script.

A folder of the input may be named ``Müller_Jürgen``, ``MUELLER J``,
``M_ller`` (what ASCII-only tools made of it) or ``山田太郎_やまだ``; a plan
label may be ``Jürgen Müller``. Names are compared *folded* (case, accents
and compatibility forms unified) with an index back into the original text,
so a match in any spelling is replaced in place and the rest of the name
survives. Latin name words match as whole words (a short given name must not
mangle other words); words of scripts written without spaces (CJK, kana,
Hangul) match anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from dicomtools.core.anonymize.needles import is_placeholder, is_registered_uid
from dicomtools.core.anonymize.uidmap import UidMap
from dicomtools.core.anonymize.valuetext import (
    element_values,
    fold,
    has_unspaced_script,
    name_groups,
    spellings,
    transliterate,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_UID_TOKEN = re.compile(r"\d+(?:\.\d+){3,}")
_WORD = re.compile(r"[^\W_]+")
_ID_TAGS = (0x00100020, 0x00101000, 0x00080050, 0x00101002)  # Patient ID, Other IDs, Accession (+ seq ignored)
_BIRTH_DATE = 0x00100030
_DICT_PN: frozenset[int] | None = None


def safe_name(text: str, fallback: str) -> str:
    """A file-system-safe ASCII form of ``text``: accents dropped (``Müller`` -> ``Muller``), the rest ``_``."""
    s = _UNSAFE.sub("_", transliterate(text).strip()).strip("._")
    return s[:64] if s else fallback


def _pn_tags() -> frozenset[int]:
    global _DICT_PN
    if _DICT_PN is None:
        from pydicom.datadict import DicomDictionary

        _DICT_PN = frozenset(t for t, entry in DicomDictionary.items() if entry[0] == "PN")
    return _DICT_PN


@dataclass(frozen=True, slots=True)
class Originals:
    """The identifiers of one original data set that may show up in a path."""

    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # PN values, all groups
    dates: tuple[str, ...] = ()  # birth date


def path_identifiers(ds: Dataset) -> Originals:
    """Patient IDs, accession number, birth date and every top-level person name of an original."""
    ids = [v for t in _ID_TAGS for v in element_values(ds, t)]
    pn = _pn_tags()
    names = [v for key in ds._dict if int(key) in pn for v in element_values(ds, int(key))]
    return Originals(tuple(ids), tuple(names), tuple(element_values(ds, _BIRTH_DATE)))


@dataclass
class PathNames:
    """Folded needle -> (replacement, whole word only), learned from every original of the run."""

    needles: dict[str, tuple[str, bool]] = field(default_factory=dict)
    _cache: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict, repr=False)
    _seen: set[tuple[Originals, str, str]] = field(default_factory=set, repr=False)

    def add(self, found: Originals, new_id: str, new_name: str) -> None:
        """Learn the identifiers of one original; the slices of a series repeat them, learned once."""
        key = (found, new_id, new_name)
        if key in self._seen:
            return  # every needle it would give is already there (first one wins)
        self._seen.add(key)
        before = len(self.needles)
        self._learn(found, new_id, new_name)
        if len(self.needles) != before:
            self._cache.clear()  # only new needles can change a name's spans

    def merge(self, other: PathNames) -> None:
        """Learn what ``other`` learned, after what this one knows (first needle wins, as in :meth:`add`)."""
        before = len(self.needles)
        for needle, value in other.needles.items():
            self.needles.setdefault(needle, value)
        self._seen |= other._seen
        if len(self.needles) != before:
            self._cache.clear()

    def _learn(self, found: Originals, new_id: str, new_name: str) -> None:
        sid, sname = safe_name(new_id, "ANON"), safe_name(new_name, "ANON")
        keep = {fold(new_id), fold(new_name)}
        for value in found.ids:
            f = fold(value.strip())
            if f and f not in keep and not is_placeholder(value):
                # digits only: whole numbers (an ID must not be found inside the digits of a new UID)
                self.needles.setdefault(f, (sid, len(f) < 4 or f.isdigit()))
                sf = fold(safe_name(value, ""))
                if sf and sf != f:
                    self.needles.setdefault(sf, (sid, len(sf) < 4 or sf.isdigit()))
        for date in found.dates:
            d = date.strip()
            if len(d) == 8 and d.isdigit() and not is_placeholder(d):
                for form in (d, f"{d[:4]}-{d[4:6]}-{d[6:]}", f"{d[:4]}_{d[4:6]}_{d[6:]}", f"{d[:4]}.{d[4:6]}.{d[6:]}"):
                    self.needles.setdefault(form, ("DOB", True))
        for name in found.names:
            if is_placeholder(name) or fold(name) in keep:
                continue
            for group in name_groups(name):
                for component in group[:3]:  # family, given, middle; not prefixes or suffixes
                    self._add_component(component, sname)
                if len(group) >= 2 and has_unspaced_script("".join(group[:2])):  # 山田太郎: one name
                    self.needles.setdefault(fold("".join(group[:2])), (sname, False))

    def _add_component(self, component: str, replacement: str) -> None:
        if is_placeholder(component):
            return
        if has_unspaced_script(component):
            f = fold(component.replace(" ", ""))
            if f:
                self.needles.setdefault(f, (replacement, False))
            for run in re.findall(r"[^\W\d_]+", component):  # each run of letters on its own, too
                if has_unspaced_script(run) and len(run) >= 2:
                    self.needles.setdefault(fold(run), (replacement, False))
            return
        for word in _WORD.findall(component):
            if len(word) >= 2 and not is_placeholder(word):
                for s in spellings(word):
                    self.needles.setdefault(s, (replacement, True))

    # -- matching -------------------------------------------------------------------------------
    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping (start, end, replacement) in ``text`` where an identifier sits, longest first.

        Cached per text: the files of one folder share its name.
        """
        cached = self._cache.get(text)
        if cached is None:
            cached = self._cache[text] = self._find(text)
        return cached

    def _find(self, text: str) -> list[tuple[int, int, str]]:
        folded, index = _folded(text)
        found: list[tuple[int, int, str]] = []
        for needle, (replacement, whole) in self.needles.items():
            start = folded.find(needle)
            while start >= 0:
                end = start + len(needle)
                if not whole or (_edge(folded, start - 1) and _edge(folded, end)):
                    found.append((index[start], index[end - 1] + 1, replacement))
                start = folded.find(needle, start + 1)
        found.sort(key=lambda s: (s[0] - s[1], s[0]))
        chosen: list[tuple[int, int, str]] = []
        for span in found:
            if all(span[1] <= c[0] or span[0] >= c[1] for c in chosen):
                chosen.append(span)
        return sorted(chosen)

    def contains(self, text: str) -> bool:
        return bool(self._spans(text))

    def rewrite(self, component: str, uid_map: UidMap | None) -> str:
        """``component`` with every original identifier replaced (UIDs by their new UID, given the map)."""

        def uid(m: re.Match[str]) -> str:
            token = m.group(0)
            assert uid_map is not None
            new = uid_map.uids.get(token)
            if new is None and not is_registered_uid(token) and len(token) >= 16:  # a UID no file named
                new = uid_map.map(token)
            return new or token

        out = _UID_TOKEN.sub(uid, component) if uid_map is not None else component
        for start, end, replacement in reversed(self._spans(out)):
            out = out[:start] + replacement + out[end:]
        return out


def _folded(text: str) -> tuple[str, list[int]]:
    """``fold(text)`` with, per folded character, the index of the original character it came from."""
    parts: list[str] = []
    index: list[int] = []
    for i, c in enumerate(text):
        f = fold(c)
        parts.append(f)
        index.extend([i] * len(f))
    return "".join(parts), index


def _edge(folded: str, i: int) -> bool:
    """Whether position ``i`` is outside ``folded`` or not a letter/digit (a word boundary)."""
    return i < 0 or i >= len(folded) or not folded[i].isalnum()

