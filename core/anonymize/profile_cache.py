"""The parsed form of a profile file, kept in the user's cache folder between runs.

Parsing the shipped TOML profiles (~660 rules) costs ~15-25 ms of every
``anonymize`` start, more than anonymizing twenty small files. The parsed
rules are plain data, so they are saved as JSON keyed by a hash of the file's
text, its name and our version: an edited file or a new release never meets
a stale entry. A cache file that cannot be read, is corrupt or holds anything
but the expected shape is ignored and rewritten; a cache folder we cannot
write to only costs the parse. Written atomically (temp + rename).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from dicomtools.core import __version__
from dicomtools.core.anonymize.profile import (
    FORMAT_VERSION,
    Profile,
    Rule,
    TagSpec,
    parse_profile_toml,
)
from dicomtools.core.config_path import default_cache_dir

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the saved shape changes


def cache_folder() -> Path:
    """Where parsed profiles live: ``profiles/`` in the same base as the index cache."""
    return default_cache_dir() / "profiles"


def cache_key(text: str, path: str) -> str:
    head = f"{CACHE_FORMAT}\0{FORMAT_VERSION}\0{__version__}\0{path}\0".encode()
    return hashlib.blake2b(head + text.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


def to_plain(profile: Profile) -> dict[str, Any]:
    rules = [
        [r.spec.kind, r.spec.value, r.spec.mask, r.spec.creator, r.action, r.name,
         [list(o) for o in r.options], r.line, r.last_wins]
        for r in profile.rules
    ]
    return {
        "format": CACHE_FORMAT, "name": profile.name, "title": profile.title, "description": profile.description,
        "source": profile.source, "profile_version": profile.profile_version, "codes": list(profile.codes),
        "default_options": list(profile.default_options), "not_claimed": list(profile.not_claimed),
        "path": profile.path, "rules": rules,
    }


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def from_plain(data: Any) -> Profile:
    """The profile saved by :func:`to_plain`; TypeError/ValueError for anything else."""
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        raise ValueError("not a parsed profile of this format")
    rules: list[Rule] = []
    for kind, value, mask, creator, action, name, options, line, last_wins in data["rules"]:
        if not (isinstance(value, int) and isinstance(mask, int) and isinstance(line, int)
                and isinstance(last_wins, bool)):
            raise TypeError("bad rule")
        pairs = tuple((_str(o), _str(a)) for o, a in options)
        rules.append(Rule(TagSpec(_str(kind), value, mask, _str(creator)), _str(action), _str(name), pairs, line,
                          last_wins))
    if not rules:
        raise ValueError("no rules")
    return Profile(
        name=_str(data["name"]), title=_str(data["title"]), description=_str(data["description"]),
        source=_str(data["source"]), profile_version=_str(data["profile_version"]), codes=_strs(data["codes"]),
        default_options=_strs(data["default_options"]), not_claimed=_strs(data["not_claimed"]),
        rules=rules, path=_str(data["path"]),
    )


def load_entry(cache: Path) -> Any:
    """A cache file's JSON, or None when it is missing, unreadable or corrupt (then it is rewritten)."""
    try:
        return json.loads(cache.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # corrupt or foreign
        log.debug("cache file %s ignored: %s", cache, exc)
        return None


def parse_cached(text: str, path: str, folder: Path | None = None) -> Profile:
    """:func:`parse_profile_toml` of ``text``, from the cache when an entry for this exact text exists."""
    cache = (folder or cache_folder()) / f"{cache_key(text, path)}.json"
    data = load_entry(cache)
    if data is not None:
        try:
            return from_plain(data)
        except (ValueError, TypeError, KeyError) as exc:  # foreign shape: parse and rewrite
            log.debug("profile cache %s ignored: %s", cache, exc)
    profile = parse_profile_toml(text, path)  # a ProfileError is not cached: the file gets fixed
    save_entry(cache, to_plain(profile))
    return profile


def save_entry(cache: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically; a folder we cannot write to only costs the next run the work."""
    from dicomtools.core.atomic import atomic_write_bytes

    try:
        atomic_write_bytes(cache, json.dumps(data, separators=(",", ":")).encode("utf-8"))
    except OSError as exc:  # a read-only home: the next run parses again
        log.debug("cache file %s not written: %s", cache, exc)
