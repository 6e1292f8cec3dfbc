"""File and folder names made from text a peer or a list sent us.

A Patient ID may hold spaces, slashes, ``..`` or control characters; a name
built from it must never be a path and two IDs must never share one folder.
Text that is already a plain name is kept as is (users find their patients);
anything changed gets a short hash of the original so ``A B`` and ``A_B``
stay apart.
"""

from __future__ import annotations

import re

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._^-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._^-]+")
MAX_NAME = 80


def _digest(text: str) -> str:
    import hashlib  # here: loading OpenSSL's hashes costs ~2-4 ms of every start that parses `receive`

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_name(text: str, empty: str = "_no-id") -> str:
    """A single path component for ``text``; unchanged when it is already plain.

    Changed (or empty) text gets ``-<8 hex>`` from its SHA-256, so different
    inputs give different names. Never ``.``/``..``, never starts with a dot
    (our own hidden files do), never longer than ``MAX_NAME``.
    """
    if len(text) <= MAX_NAME and _PLAIN.fullmatch(text):
        return text
    if not text.strip():
        return f"{empty}-{_digest(text)}"
    cleaned = _UNSAFE.sub("_", text.strip()).strip("._") or "_"
    return f"{cleaned[: MAX_NAME - 9]}-{_digest(text)}"


def numbered(base: str, n: int, total: int, sep: str) -> str:
    """``A`` -> ``A-01`` (``sep`` '-') or ``B^01`` (``sep`` '^'): list position, zero-padded."""
    width = max(2, len(str(total)))
    return f"{base}{sep}{n:0{width}d}"


def printable(text: str, limit: int = 200) -> str:
    """Text from a peer or a file, safe for a terminal (the one sanitizer), cut at ``limit``."""
    from dicomtools.core.dicom.text import sanitize

    return sanitize(text[:limit]) + ("…" if len(text) > limit else "")
