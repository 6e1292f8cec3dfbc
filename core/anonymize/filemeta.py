"""The preamble and file meta an anonymized file is written with: ours, never the original's.

The 128-byte preamble is free for any use and real files carry text in it
("PREAMBLE PID4711X Mueller"); the file meta names the sending software and
station and may hold Private Information (0002,0102). So the preamble is
zeroed and the meta is written anew: our Implementation Class UID and
Version Name, the (remapped) SOP Class/Instance UIDs, the data set's
transfer syntax, and the station AE titles only as far as the profile left
them (the engine applied it to the original meta first), cleaned of any
original identifier when retained.
"""

from __future__ import annotations

from collections.abc import Callable

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomtools.core import __version__
from dicomtools.core.anonymize.values import put_raw, put_text
from dicomtools.core.anonymize.valuetext import element_text

# 2.25 + the UUID5 of "dicomtools" in the URL namespace: stable, and ours alone.
IMPLEMENTATION_CLASS_UID = "2.25.174436938364488486066723882798707503181"
IMPLEMENTATION_VERSION_NAME = f"DICOMTOOLS_{__version__}"[:16]
PREAMBLE = b"\0" * 128
# Source, Sending and Receiving AE Titles: kept only where the profile kept them.
_AE_TITLES = (0x00020016, 0x00020017, 0x00020018)


def _ae_title(value: str) -> str:
    """An AE title as the standard allows it: printable ASCII without backslash, 16 characters."""
    return "".join(c for c in value if c.isascii() and c.isprintable() and c != "\\").strip()[:16]


class WriteOnceFileMeta(FileMetaDataset):
    """A file meta built for one write, which pydicom need not protect from itself.

    ``dcmwrite`` deep-copies the file meta so the caller's stays untouched
    (0.1 ms a small file, a tenth of a plain read + write). This one is
    made fresh for the write and dropped after it, so its copy is itself.
    """

    def __deepcopy__(self, memo: dict[int, object]) -> WriteOnceFileMeta:
        return self


def fresh_file_meta(ds: Dataset, clean: Callable[[str], str] | None = None) -> FileMetaDataset:
    """A new file meta for ``ds`` (already anonymized; its old meta, if any, already passed the profile).

    ``clean`` rewrites a retained AE title (a station named after a person keeps no name).
    """
    old = getattr(ds, "file_meta", None)
    meta = WriteOnceFileMeta()
    # encoded values, as the engine writes them: pydicom writes them as they are (same bytes, a fifth of the time)
    put_raw(meta, 0x00020000, "UL", b"\0\0\0\0")  # group length: recomputed by pydicom on write
    put_raw(meta, 0x00020001, "OB", b"\x00\x01")
    put_text(meta, 0x00020002, "UI", element_text(ds, 0x00080016))
    put_text(meta, 0x00020003, "UI", element_text(ds, 0x00080018))
    syntax = element_text(old, 0x00020010) if old is not None else ""
    if not syntax:
        implicit, little = ds.original_encoding
        syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    put_text(meta, 0x00020010, "UI", syntax)
    put_text(meta, 0x00020012, "UI", IMPLEMENTATION_CLASS_UID)
    put_text(meta, 0x00020013, "SH", IMPLEMENTATION_VERSION_NAME)
    if old is not None:
        for tag in _AE_TITLES:
            title = element_text(old, tag)
            title = _ae_title(clean(title) if clean is not None and title else title)
            if title:
                meta[tag] = DataElement(tag, "AE", title)
    return meta


def prepare_for_writing(ds: Dataset, clean: Callable[[str], str] | None = None) -> None:
    """Zero the preamble and replace the file meta (in place, just before the write)."""
    ds.file_meta = fresh_file_meta(ds, clean)
    ds.preamble = PREAMBLE
