"""Recursive file walk with a case-insensitive name glob and symlink-loop safety."""

from __future__ import annotations

import fnmatch
import operator
import os
from collections.abc import Callable, Iterator

from dicomtools.core.lazylog import get_logger

log = get_logger(__name__)

ErrorHandler = Callable[[str, str], None]
_name = operator.attrgetter("name")


def is_own_artefact(name: str) -> bool:
    """Our temp files (atomic writes in progress) and marker/status files are never data."""
    return (name.startswith(".part-") and name.endswith(".tmp")) or name.startswith(".dicomtools")


def name_matcher(pattern: str | None) -> Callable[[str], bool]:
    """Return a predicate for file names; ``None``, ``*`` and ``*.*`` match everything.

    ``*.*`` is the seed tool's default and there means "all files", also those
    without an extension, so it is treated as ``*``.
    """
    if not pattern or pattern in ("*", "*.*"):
        return lambda name: True
    pat = pattern.lower()
    return lambda name: fnmatch.fnmatchcase(name.lower(), pat)


def iter_files(
    root: str, pattern: str | None = None, on_error: ErrorHandler | None = None
) -> Iterator[str]:
    """Yield file paths below ``root`` (root joined with the relative path), sorted per folder.

    Directory symlinks are followed once; a link back to a folder already being
    walked is reported through ``on_error`` as a loop and skipped. Permission
    errors are reported and skipped, never raised.
    """
    everything = not pattern or pattern in ("*", "*.*")
    match = name_matcher(pattern)
    report = on_error or (lambda p, r: log.warning("%s: %s", p, r))
    if os.path.isfile(root):
        if match(os.path.basename(root)):
            yield root
        return
    seen: set[tuple[int, int]] = set()

    def walk(folder: str) -> Iterator[str]:
        try:
            st = os.stat(folder)
        except OSError as exc:
            report(folder, f"cannot open folder: {exc.strerror or exc}")
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:
            report(folder, "symlink loop: folder already visited, skipped")
            return
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=_name)
        except OSError as exc:
            report(folder, f"cannot list folder: {exc.strerror or exc}")
            return
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=True):
                    subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    name = entry.name
                    # our artefacts all start with a dot: most names skip the call
                    if (everything or match(name)) and not (name[0] == "." and is_own_artefact(name)):
                        yield entry.path
                elif entry.is_symlink():
                    report(entry.path, "broken symlink, skipped")
            except OSError as exc:
                report(entry.path, f"cannot stat: {exc.strerror or exc}")
        for sub in subdirs:
            yield from walk(sub)

    yield from walk(root)
