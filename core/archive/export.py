"""Copy files of marked plans into a folder, keeping their paths below the browsed root.

It reports through a progress sink,
honours a cancel token, writes every file atomically and never overwrites a
different file already there.
"""

from __future__ import annotations

import filecmp
import logging
import os
from dataclasses import dataclass, field

from dicomtools.core.atomic import atomic_writer
from dicomtools.core.progress import CancelToken, ProgressSink, Reporter

log = logging.getLogger(__name__)

CHUNK = 1 << 20


@dataclass
class ExportResult:
    dest: str
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # identical file already there
    failed: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        text = f"{len(self.copied)} copied, {len(self.skipped)} already there, {len(self.failed)} failed"
        return text + (" (cancelled)" if self.cancelled else "")


def target_path(path: str, root: str | None, dest: str) -> str:
    """Where ``path`` goes: its path relative to ``root`` under ``dest`` (else its name)."""
    rel = os.path.basename(path)
    if root:
        try:
            candidate = os.path.relpath(path, root)
        except ValueError:
            candidate = rel
        if not candidate.startswith(".."):
            rel = candidate
    return os.path.join(dest, rel)


def export_files(
    paths: list[str],
    dest: str,
    root: str | None = None,
    *,
    sink: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    rep = Reporter("export", sink)
    result = ExportResult(dest)
    unique = list(dict.fromkeys(paths))
    rep.started(len(unique), dest)
    nbytes = 0
    for done, src in enumerate(unique, start=1):
        if cancel is not None and cancel.cancelled:
            result.cancelled = True
            break
        target = target_path(src, root, dest)
        try:
            if os.path.exists(target):
                if filecmp.cmp(src, target, shallow=False):
                    result.skipped.append(src)
                else:
                    result.failed.append((src, f"a different file exists: {target}"))
                continue
            with open(src, "rb") as fin, atomic_writer(target) as fout:
                while chunk := fin.read(CHUNK):
                    fout.write(chunk)
                    nbytes += len(chunk)
            result.copied.append(src)
        except OSError as exc:
            result.failed.append((src, exc.strerror or str(exc)))
            rep.message(f"{src}: {exc.strerror or exc}", "warning")
        rep.advanced(done, len(unique), os.path.basename(src), nbytes=nbytes)
    rep.finished(len(result.copied) + len(result.skipped), len(unique), result.summary())
    log.info("export to %s: %s", dest, result.summary())
    return result
