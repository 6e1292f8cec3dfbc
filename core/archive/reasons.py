"""Why a file is not an instance: one list, shared by every command and the index cache."""

from __future__ import annotations

from enum import Enum


class ReasonKind(Enum):
    """The kinds of "unreadable"; the text shown to the user carries the detail."""

    EMPTY = "empty"
    TEXT = "text"
    JPEG = "jpeg"
    PDF = "pdf"
    NOT_DICOM = "not-dicom"
    TRUNCATED_HEADER = "truncated-header"
    DICOMDIR = "dicomdir"
    NO_SOP_UIDS = "no-sop-uids"
    CORRUPT = "corrupt"
    TOO_LARGE = "too-large"
    TRUNCATED_PIXELS = "truncated-pixels"  # readable, but a command refuses to copy it
    CANNOT_READ = "cannot-read"  # I/O error, permission: may be gone next time
    WALK = "walk"  # symlink loops, broken links, folders that cannot be listed
    OTHER = "other"

    @property
    def transient(self) -> bool:
        """True when the same bytes may give another verdict later (never cached)."""
        return self in (ReasonKind.CANNOT_READ, ReasonKind.WALK)

    @classmethod
    def parse(cls, value: str | None) -> ReasonKind:
        try:
            return cls(value)
        except ValueError:
            return cls.OTHER
