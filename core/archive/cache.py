"""On-disk index of what scans and searches read, so a second look at a folder is instant.

SQLite (stdlib) in the user's cache folder, keyed by absolute path and
validated by size and modification time on every use, so a changed file is
never answered from the cache. WAL mode and a busy timeout let two processes
share one cache; a corrupt cache file is moved aside and rebuilt with a
warning, never trusted and never fatal.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from sys import intern

from dicomtools.core.archive.model import InstanceSummary, UnreadableFile
from dicomtools.core.archive.reasons import ReasonKind
from dicomtools.core.config_path import default_cache_folder
from dicomtools.core.lazylog import get_logger
from dicomtools.core.records import NamedTuple

TYPE_CHECKING = False  # typing and pathlib are not imported at run time (see dicomtools.core.records)
if TYPE_CHECKING:
    from typing import Any

log = get_logger(__name__)

_SHARED_FIELDS = (
    "sop_class_uid", "patient_id", "patient_name", "study_instance_uid", "series_instance_uid",
    "modality", "frame_of_reference_uid", "series_description", "series_number", "study_date",
    "study_description", "transfer_syntax_uid",
)

# 4: unreadable rows carry their ReasonKind; 5: stamps add inode and ctime, per-folder snapshots
SCHEMA_VERSION = 5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    unreadable TEXT,
    summary BLOB,
    kind TEXT
);
CREATE TABLE IF NOT EXISTS elements (
    path TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (path, key)
);
CREATE TABLE IF NOT EXISTS folders (key TEXT PRIMARY KEY, snapshot BLOB NOT NULL);
"""
_DROP = "DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS elements; DROP TABLE IF EXISTS folders;"


def _select_in(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...], keys: list[str]) -> Iterator[Any]:
    """Run ``sql`` (with an ``IN ({marks})`` clause) over ``keys`` in chunks below SQLite's variable limit."""
    for i in range(0, len(keys), 900):
        chunk = keys[i : i + 900]
        yield from conn.execute(sql.format(marks=",".join("?" * len(chunk))), [*params, *chunk])


def abs_paths(paths: Iterable[str]) -> list[str]:
    """``os.path.abspath`` of each path, normalising each folder once, not each file.

    A warm scan looks up every file of the archive: per file, abspath cost
    as much as the SQLite query. The file name is appended to its folder's
    absolute path; a name that normalisation could change ('.', '..', '')
    takes the plain abspath.
    """
    folders: dict[str, str] = {}
    out: list[str] = []
    sep, alt = os.sep, os.altsep
    for p in paths:
        folder, _, name = p.rpartition(sep)
        if name in ("", ".", "..") or (alt and alt in name) or (p.startswith(sep) and not folder.strip(sep)):
            out.append(os.path.abspath(p))
            continue
        prefix = folders.get(folder)
        if prefix is None:
            base = os.path.abspath(folder) if folder else os.getcwd()
            prefix = folders[folder] = base if base.endswith(sep) else base + sep
        out.append(prefix + name)
    return out


def storable(path: str) -> bool:
    """SQLite text is UTF-8: a path with undecodable bytes (surrogate escapes) is never cached, just read."""
    if path.isascii():
        return True
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return True


class FileStamp(NamedTuple):
    """What identifies one version of a file (a tuple: a warm scan makes one per file).

    Size and mtime alone miss a file replaced by another of the same size with
    its mtime copied over (``cp -p``, ``rsync -t``, ``touch -r``): the inode
    changes on a replace-by-rename and the ctime on any write or utime, and
    neither can be set back by a user. A chmod also moves ctime: a harmless miss.
    """

    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int

    @classmethod
    def of(cls, path: str) -> FileStamp | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


class IndexCache:
    """The index; one instance per process (and per thread: connections are not shared)."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        # text paths: pathlib costs ~2.5 ms to import, a tenth of a warm show's own time
        self.folder = os.fspath(folder) if folder is not None else default_cache_folder()
        self.path = os.path.join(self.folder, "index.sqlite")
        self._local = threading.local()
        self.hits = 0
        self.misses = 0
        self._open()

    # -- connection handling ------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        os.makedirs(self.folder, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            # An index written by another version: start it again (it is only a cache).
            log.info("index cache %s has schema %s, rebuilding as %s", self.path, row[0], SCHEMA_VERSION)
            conn.executescript(_DROP)
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        conn.execute("SELECT count(*) FROM files LIMIT 1").fetchone()
        return conn

    def _open(self) -> None:
        try:
            self._local.conn = self._connect()
        except sqlite3.DatabaseError as exc:
            self._rebuild(exc)

    def _rebuild(self, exc: Exception) -> None:
        """Move a broken cache aside and start empty; the scan itself is unaffected."""
        log.warning("index cache %s is unusable (%s); rebuilding it", self.path, exc)
        stamp = time.strftime("%Y%m%d%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            old = self.path + suffix
            if os.path.exists(old):
                try:
                    os.replace(old, f"{self.path}.corrupt-{stamp}{suffix}")
                except OSError:
                    try:
                        os.unlink(old)
                    except FileNotFoundError:
                        pass
        self._local.conn = self._connect()

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self._open()
            conn = self._local.conn
        return conn

    def _run(self, fn: Any) -> Any:
        """Run a DB action; on corruption rebuild once and retry."""
        try:
            return fn(self.conn)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            self._rebuild(exc)
            return fn(self.conn)

    def _write_rows(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """One write transaction (taken at once, so a second process waits instead of failing late)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        self._run(write)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- summaries ----------------------------------------------------------
    def lookup(
        self, paths: Sequence[str]
    ) -> tuple[dict[str, InstanceSummary | UnreadableFile], dict[str, FileStamp]]:
        """Fresh cached results for ``paths`` (as given), and the stamps of the rest.

        A path whose size or mtime differs from the cached row is a miss.
        """
        stamps: dict[str, FileStamp] = {}
        keys: dict[str, str] = {}
        for p, abs_path in zip(paths, abs_paths(paths), strict=True):
            stamp = FileStamp.of(p)
            if stamp is not None:
                stamps[p] = stamp
                if storable(abs_path):
                    keys[abs_path] = p
        rows: dict[str, tuple[Any, ...]] = {}

        def fetch(conn: sqlite3.Connection) -> None:
            sql = (
                "SELECT path, size, mtime_ns, ino, ctime_ns, unreadable, summary, kind"
                " FROM files WHERE path IN ({marks})"
            )
            for row in _select_in(conn, sql, (), list(keys)):
                rows[row[0]] = row[1:]

        self._run(fetch)
        # per-file rows are pickled summaries; pickle is imported only here and in store():
        # a warm scan answered by folder snapshots (marshal) needs neither (~0.9 ms of start)
        import pickle

        found: dict[str, InstanceSummary | UnreadableFile] = {}
        for abs_path, given in keys.items():
            row = rows.get(abs_path)
            if row is None or row[:4] != stamps[given]:
                continue
            try:
                if row[4] is not None:
                    found[given] = UnreadableFile(given, row[4], ReasonKind.parse(row[6]))
                else:
                    summary = pickle.loads(row[5] or b"")  # noqa: S301 - our own cache file
                    if not isinstance(summary, InstanceSummary):
                        continue
                    summary.path = given
                    for name in _SHARED_FIELDS:  # one string object per series, as a fresh scan has
                        setattr(summary, name, intern(getattr(summary, name)))
                    found[given] = summary
            except Exception:  # a damaged row is a miss, not an error
                continue
        self.hits += len(found)
        self.misses += len(stamps) - len(found)
        return found, {p: s for p, s in stamps.items() if p not in found}

    def store(self, results: Iterable[InstanceSummary | UnreadableFile], stamps: dict[str, FileStamp]) -> None:
        import pickle  # see lookup()

        rows: list[tuple[Any, ...]] = []
        for item in results:
            stamp = stamps.get(item.path)
            if stamp is None:
                continue
            if not storable(item.path):
                continue
            if isinstance(item, InstanceSummary):
                if (item.size, item.mtime_ns) != (stamp.size, stamp.mtime_ns):
                    continue  # changed while we read it: do not cache
                rows.append((os.path.abspath(item.path), *stamp, None, pickle.dumps(item), None))
            elif item.kind.transient:
                continue  # may read next time (I/O error, permission), or not about the content
            else:
                rows.append((os.path.abspath(item.path), *stamp, item.reason, None, item.kind.value))
        if not rows:
            return

        self._write_rows(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, ino, ctime_ns, unreadable, summary, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    # -- element values for searches ------------------------------------------
    @staticmethod
    def stamps(paths: Sequence[str]) -> dict[str, FileStamp]:
        out: dict[str, FileStamp] = {}
        for p in paths:
            stamp = FileStamp.of(p)
            if stamp is not None:
                out[p] = stamp
        return out

    def lookup_elements(self, stamps: dict[str, FileStamp], key: str) -> dict[str, Any]:
        """Cached payloads for one expression key, only for files unchanged since they were stored."""
        import json  # here: only search stores element payloads (show's warm start-up skips ~1.5 ms)

        keys = {k: p for k, p in zip(abs_paths(stamps), stamps, strict=True) if storable(k)}
        out: dict[str, Any] = {}

        def fetch(conn: sqlite3.Connection) -> None:
            sql = (
                "SELECT path, size, mtime_ns, ino, ctime_ns, payload FROM elements"
                " WHERE key = ? AND path IN ({marks})"
            )
            for path, *stamp, payload in _select_in(conn, sql, (key,), list(keys)):
                given = keys[path]
                if tuple(stamp) == stamps[given]:
                    out[given] = json.loads(payload)

        self._run(fetch)
        return out

    def store_elements(self, key: str, values: dict[str, Any], stamps: dict[str, FileStamp]) -> None:
        import json

        rows = [
            (os.path.abspath(p), key, *stamps[p], json.dumps(v))
            for p, v in values.items()
            if p in stamps and storable(p) and FileStamp.of(p) == stamps[p]
        ]
        if not rows:
            return

        self._write_rows(
            "INSERT OR REPLACE INTO elements (path, key, size, mtime_ns, ino, ctime_ns, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    # -- per-folder snapshots ----------------------------------------------------
    def lookup_snapshots(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored snapshot blobs of these folder keys (see :mod:`.snapshot`): one query for many folders."""
        out: dict[str, bytes] = {}

        def fetch(conn: sqlite3.Connection) -> None:
            out.clear()
            wanted = [k for k in keys if storable(k)]
            for key, blob in _select_in(conn, "SELECT key, snapshot FROM folders WHERE key IN ({marks})", (), wanted):
                out[key] = blob

        self._run(fetch)
        return out

    def store_snapshots(self, rows: Sequence[tuple[str, bytes]]) -> None:
        rows = [r for r in rows if storable(r[0])]
        if rows:
            self._write_rows("INSERT OR REPLACE INTO folders (key, snapshot) VALUES (?, ?)", rows)

    def forget_missing(self, root: str, present: Iterable[str], known_rows: int | None = None) -> int:
        """Drop rows of files under ``root`` that no longer exist, and the snapshots of its folders that
        hold none now (a deleted patient folder); returns how many file rows.

        ``known_rows``: how many of ``present`` were just found in the index.
        When the index holds no more rows under ``root`` than that, none is
        stale, and one count replaces reading every path back (a warm scan).
        """
        present = list(present)
        base = os.path.abspath(root).rstrip(os.sep) + os.sep
        span = (base, base[:-1] + chr(ord(os.sep) + 1))

        def prune(conn: sqlite3.Connection) -> int:
            if known_rows is not None:
                (count,) = conn.execute("SELECT count(*) FROM files WHERE path >= ? AND path < ?", span).fetchone()
                if count <= known_rows:
                    return 0
            keep = set(abs_paths(present))
            rows = conn.execute("SELECT path FROM files WHERE path >= ? AND path < ?", span).fetchall()
            gone = [(r[0],) for r in rows if r[0] not in keep]
            if gone:
                # folder snapshots (key: folder NUL scope) of folders under root that hold no file now
                top = base[:-1]
                holding = {os.path.dirname(p) for p in keep}
                keys = conn.execute("SELECT key FROM folders WHERE key >= ? AND key < ?",
                                    (top + "\0", span[1])).fetchall()
                empty = [(k,) for (k,) in keys
                         if (f := k.split("\0", 1)[0]) not in holding and (f == top or f.startswith(base))]
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("DELETE FROM files WHERE path = ?", gone)
                conn.executemany("DELETE FROM elements WHERE path = ?", gone)
                conn.executemany("DELETE FROM folders WHERE key = ?", empty)
                conn.execute("COMMIT")
            return len(gone)

        return int(self._run(prune))
