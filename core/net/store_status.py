"""The store status file: one confirmed instance per line, appended and flushed, so a rerun resumes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TextIO

from dicomtools.core.lazylog import get_logger
from dicomtools.core.net.assoc import NetError

log = get_logger(__name__)


def read_status_file(path: str | Path | None) -> tuple[set[str], set[str]]:
    """(SOP Instance UIDs, paths) already stored; a torn last line is ignored."""
    uids: set[str] = set()
    paths: set[str] = set()
    if path is None:
        return uids, paths
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return uids, paths
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # written while the process died
        line = line.rstrip("\r\n")
        if not line or line.startswith("#"):
            continue
        if "\t" in line:
            uid, p = line.split("\t", 1)
            uids.add(uid)
            paths.add(p)
        else:
            paths.add(line)  # the seed tool's format: one stored file per line
    return uids, paths


class StatusFileError(NetError):
    """The status file cannot be written (full disk, read-only): stop, a rerun resumes."""


class _StatusFile:
    def __init__(self, path: str | Path | None) -> None:
        self._fh: TextIO | None = None
        self._lock = threading.Lock()
        self.path = str(path)
        if path is not None:
            p = Path(path)
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                needs_newline = p.exists() and p.stat().st_size > 0 and not p.read_bytes().endswith(b"\n")
                # An append-only log, flushed per line: rewriting it atomically for
                # every instance would be quadratic, and a torn last line is ignored.
                self._fh = open(p, "a", encoding="utf-8")  # noqa: SIM115
                if needs_newline:
                    self._fh.write("\n")
            except OSError as exc:
                raise StatusFileError(f"cannot write the status file {p}: {exc.strerror or exc}") from None

    def add(self, uid: str, path: str) -> None:
        if self._fh is None:
            return
        with self._lock:
            try:
                self._fh.write(f"{uid}\t{path}\n")
                self._fh.flush()
            except OSError as exc:
                raise StatusFileError(f"cannot write the status file {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass  # a line that could not be written: a torn last line is ignored on reading
