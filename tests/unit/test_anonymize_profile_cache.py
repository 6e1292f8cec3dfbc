"""The parsed-profile cache: same profile as a fresh parse, never trusts a corrupt or stale entry."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

from dicomtools.core.anonymize.profile import PROFILE_PACKAGE, ProfileError, parse_profile_toml
from dicomtools.core.anonymize.profile_cache import cache_folder, cache_key, parse_cached
from dicomtools.core.anonymize.profile_files import load_profile
from dicomtools.core.config_path import default_cache_dir


def _shipped(name: str) -> str:
    return (resources.files(PROFILE_PACKAGE) / f"{name}.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["aria", "basic"])
def test_cached_profile_equals_a_fresh_parse(tmp_path: Path, name: str) -> None:
    text = _shipped(name)
    fresh = parse_profile_toml(text, f"{name}.toml")
    first = parse_cached(text, f"{name}.toml", tmp_path)  # parses and writes
    assert list(tmp_path.iterdir()) == [tmp_path / f"{cache_key(text, f'{name}.toml')}.json"]
    second = parse_cached(text, f"{name}.toml", tmp_path)  # from the file
    assert first == fresh and second == fresh
    for options in (None, {"RetainUIDs", "CleanDesc"}, {"RetainSafePrivate", "RetainLongModifDates"}):
        a, b = fresh.compile(options), second.compile(options)
        assert (a.exact, a.masks, a.creators, a.private_action, a.options) == (
            b.exact, b.masks, b.creators, b.private_action, b.options)


@pytest.mark.parametrize("junk", [b"", b"{not json", b"[1, 2]", b'{"format": 1, "rules": [[1]]}',
                                  b'{"format": 999}', b"\xff\xfe\x00garbage"])
def test_a_corrupt_cache_file_is_ignored_and_rewritten(tmp_path: Path, junk: bytes) -> None:
    text = _shipped("basic")
    entry = tmp_path / f"{cache_key(text, 'basic.toml')}.json"
    entry.write_bytes(junk)
    got = parse_cached(text, "basic.toml", tmp_path)
    assert got == parse_profile_toml(text, "basic.toml")
    assert entry.read_bytes() != junk  # rewritten with the good parse
    assert parse_cached(text, "basic.toml", tmp_path) == got


def test_an_edited_file_gets_a_new_entry_and_errors_are_not_cached(tmp_path: Path) -> None:
    good = '''format = "dicomtools-anonymization-profile"
format_version = 1
name = "mine"
rules = [ { tag = "(0010,0010)", action = "Z" } ]
'''
    p = parse_cached(good, "mine.toml", tmp_path)
    assert p.rules[0].action == "Z"
    edited = good.replace('action = "Z"', 'action = "X"')
    assert parse_cached(edited, "mine.toml", tmp_path).rules[0].action == "X"
    assert len(list(tmp_path.iterdir())) == 2
    with pytest.raises(ProfileError, match="unknown action"):
        parse_cached(good.replace('"Z"', '"Q"'), "mine.toml", tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_an_unwritable_cache_folder_only_costs_the_parse(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert parse_cached(_shipped("basic"), "basic.toml", blocker / "sub") == load_profile("basic")


def test_the_cache_lives_beside_the_index_cache_and_load_profile_uses_it() -> None:
    assert cache_folder() == default_cache_dir() / "profiles"
    load_profile("aria")
    assert cache_folder().is_dir() and os.listdir(cache_folder())


IOD_CLASSES = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.5.1.4.1.1.481.3",
               "1.2.840.10008.5.1.4.1.1.481.2", "1.2.840.10008.5.1.4.1.1.88.22", "1.2.246.352.70.1.70"]


def test_iod_answers_from_the_cache_equal_the_table() -> None:
    from dicomtools.core.anonymize import iod
    from dicomtools.core.anonymize.engine import Anonymizer
    from dicomtools.core.anonymize.uidmap import UidMap

    keywords = Anonymizer(load_profile("aria").compile(None), UidMap(), "A", "B").typed_keywords
    for sop in IOD_CLASSES:
        fresh = iod._iod_types(sop, keywords)
        iod.iod_types.cache_clear()
        first = iod.iod_types(sop, keywords)  # writes the entry
        entry = iod._cache_file(sop, keywords)
        assert entry is not None and entry.is_file()
        iod.iod_types.cache_clear()
        cached = iod.iod_types(sop, keywords)  # reads it
        for got in (first, cached):
            assert (got is None) == (fresh is None)
            if got is not None and fresh is not None:
                assert (got.iod, got.types) == (fresh.iod, fresh.types)
        entry.write_bytes(b'{"format": 1, "iod": "X", "types": [[1, 2]]}')  # foreign: ignored, rewritten
        iod.iod_types.cache_clear()
        again = iod.iod_types(sop, keywords)
        assert (again.types if again else None) == (fresh.types if fresh else None)
    assert iod.iod_types(IOD_CLASSES[-1], keywords) is None  # a private class
